# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fabric model's entry point: load, validate and index the inventory once.

Input is plain data, as Ansible (or :mod:`ocs_l3.inventory`) hands it over::

    {
      "groups":   {"spines": [...], "tors": [...], "hypervisors": [...], "nat_gateways": [...]},
      "hostvars": {"hv-r01-01": {"ocs_address": ..., "ocs_rack": ..., "ocs_instances": [...]}, ...},
      "racks":    <ocs_racks>,
      "fabric":   <ocs_fabric>,
      "instances_records": None | [(where, record), ...],   # from ocs_fabric.instances_file
    }

:func:`build` validates *everything* and either returns a :class:`Fabric` or
raises :class:`~ocs_l3.errors.FabricError` listing every problem, each naming
the object and the field. Cost is linear in hosts + instances: each check is a
dict lookup or a sort, never a scan of all instances per host.

The parts: :mod:`model` (the classes), :mod:`check` (the problem collector,
locations and field parsers), and one validator per object kind, run in this
order (each needs the ones before): :mod:`validate_settings` (with
:mod:`validate_bgp`'s session knobs), :mod:`validate_racks`,
:mod:`validate_hosts`, :mod:`validate_instances`, :mod:`validate_policy`, then
:mod:`validate_bgp`'s checks across hosts (unnumbered uplinks, per-link passwords). The IPv6 fields
(optional, validated, not yet rendered: docs/ipv6.md) are :mod:`validate_ip6`'s, called by the
validators of settings, racks, hosts and instances. The names other code imports from here stay here.
"""

from . import validate_bgp, validate_ip6, validate_settings, validate_topology
from .addr import Net
from .check import LABEL_RE as _LABEL_RE
from .check import Checker
from .errors import FabricError
from .model import (GROUP_OF_ROLE, HOST_KEYS, ROLE_GROUPS, ROLE_OF_GROUP, Downlink, Fabric, Host, Instance, Rack,
                    Uplink, default_ifname, infrastructure, infrastructure6)
from .validate_bgp import BGP_KEYS
from .validate_hosts import DOWNLINK_KEYS, UPLINK_KEYS, hosts, role_groups
from .validate_instances import FILE_INSTANCE_KEYS, INSTANCE_KEYS, instances
from .validate_policy import HOST_SERVICE_KEYS, INSTANCE_SERVICE_KEYS, policy
from .validate_racks import RACK_KEYS, racks
from .validate_settings import DHCP_LEASE_MAX, DHCP_LEASE_MIN, FABRIC_KEYS, METADATA_KEYS, settings


def build(data):
    """Validate the whole fabric; return a :class:`Fabric` or raise FabricError."""
    chk = Checker()
    fab = Fabric()
    if not isinstance(data, dict):
        raise FabricError(["fabric input must be a mapping"])
    groups = data.get("groups") or {}
    hostvars = data.get("hostvars") or {}
    if not isinstance(groups, dict):
        raise FabricError(["groups must be a mapping of group name to host names"])
    if not isinstance(hostvars, dict):
        raise FabricError(["hostvars must be a mapping of host name to its variables"])
    groups = role_groups(chk, groups)
    settings(chk, fab, data.get("fabric"), groups)
    racks(chk, fab, data.get("racks"))
    hosts(chk, fab, groups, hostvars)
    instances(chk, fab, hostvars, data.get("instances_records"))
    policy(chk, fab, data.get("fabric"))
    fab.infrastructure = infrastructure(fab)
    fab.infrastructure6 = infrastructure6(fab)
    validate_bgp.unnumbered(chk, fab)
    validate_bgp.link_passwords(chk, fab)
    validate_topology.rack_tors(chk, fab)
    validate_topology.static_numbered(chk, fab)
    if fab.dual_stack:
        validate_ip6.border_links6(chk, fab)
        validate_ip6.link_local_sessions(chk, fab)
        validate_topology.static6(chk, fab)
    if fab.nat_mode == "gateway":
        validate_settings.gateway_mode(chk, fab, groups)
    if chk.problems:
        raise FabricError(chk.problems)
    return fab


__all__ = ["build", "Fabric", "Host", "Instance", "Rack", "Uplink", "Downlink", "Net", "default_ifname",
           "HOST_KEYS", "ROLE_GROUPS", "ROLE_OF_GROUP", "GROUP_OF_ROLE", "FABRIC_KEYS", "RACK_KEYS", "INSTANCE_KEYS",
           "FILE_INSTANCE_KEYS", "UPLINK_KEYS", "DOWNLINK_KEYS", "METADATA_KEYS", "BGP_KEYS", "HOST_SERVICE_KEYS",
           "INSTANCE_SERVICE_KEYS", "DHCP_LEASE_MIN", "DHCP_LEASE_MAX", "_LABEL_RE"]
