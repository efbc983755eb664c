"""ocs-l3: the fabric model and the computation of every rendered artifact.

Plain Python + netaddr. Nothing here imports Ansible: filter and action plugins
are thin adapters over these functions, and the unit tests call them directly.
"""

from .errors import FabricError  # noqa: F401

ROUTE_PROTOCOL = 211
"""Route protocol number that tags every route this project installs."""

ROUTE_PROTOCOL_NAME = "ocs"
