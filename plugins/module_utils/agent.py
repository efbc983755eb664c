# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host agent's rendered settings (controller side; the hosts read them with ``host_state``).

A hypervisor's ``agent.conf`` carries what the agent and the boot restore
need from the fabric and cannot find in the other files: the instance
interface prefix (a tap with the prefix and no lines is an unknown instance;
at boot, lines of absent taps are normal) and, on a dual-stack hypervisor whose
rack has IPv6 instance subnets, what its router advertisements carry.

Why the agent advertises too: dnsmasq keeps one unsolicited-RA timer per
``dhcp-range``, and each time it fires sends the RA on the first interface
that holds an address of the range (``radv.c``: ``iface_search``), so of the
many taps sharing a subnet's gateway address only one gets periodic RAs; the
others hear one only when their guest solicits. A guest solicits when its link
comes up, and after the router lifetime (``constants.RA_ROUTER_LIFETIME``)
without another RA its default route expires. The agent therefore sends every
IPv6 tap the same RA (flags, MTU, lifetime, RDNSS, DNSSL) when it serves the
tap and every ``constants.RA_INTERVAL`` (3/4 to 1 times); dnsmasq still answers
solicitations.
"""

from .addr import ntoa6
from .artifact import Artifact
from .constants import AGENT_CONFIG_PATH
from .host_state import config_text, ra_option_lifetime


def ra_settings(fab, host):
    """What the agent's router advertisements on ``host``'s taps carry (dnsmasq's, dhcp.config6_lines),
    or None where dnsmasq sends none (an IPv4-only fabric, a rack without IPv6 instance subnets)."""
    if not (fab.dual_stack and host.rack.instance_subnets6):
        return None
    return {"mtu": fab.mtu, "dns_lifetime": ra_option_lifetime(fab.dhcp_lease_time),
            "rdnss": [ntoa6(ip) for ip in fab.dns_servers6],
            "dnssl": [fab.domain] if fab.dns_servers6 and fab.domain else []}


def artifacts(fab, host):
    """``agent.conf`` of a hypervisor (the agent runs on hypervisors only)."""
    if host.role != "hypervisor":
        return []
    conf = config_text(fab.instance_ifname_prefix, ra_settings(fab, host))
    return [Artifact(AGENT_CONFIG_PATH, "agent", "ocs_agent", "etc/ocs-l3/agent.conf.j2",
                     {"_ocs_agent_config_text": conf})]
