# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host agent's rendered settings (controller side; the hosts read them with ``host_state``).

A hypervisor's ``agent.conf`` carries what the agent and the boot restore
need from the fabric and cannot find in the other files: the instance
interface prefix (a tap with the prefix and no lines is an unknown instance;
at boot, lines of absent taps are normal).
"""

from .artifact import Artifact
from .constants import AGENT_CONFIG_PATH
from .host_state import config_text


def artifacts(fab, host):
    """``agent.conf`` of a hypervisor (the agent runs on hypervisors only)."""
    if host.role != "hypervisor":
        return []
    return [Artifact(AGENT_CONFIG_PATH, "agent", "ocs_agent", "etc/ocs-l3/agent.conf.j2",
                     {"_ocs_agent_config_text": config_text(fab.instance_ifname_prefix)})]
