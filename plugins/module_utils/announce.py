# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fabric's own prefixes: who originates each one, and the exact list
every tier below the spines accepts.

Infrastructure (host addresses, link networks, rack host subnets) is routed
through the fabric like instance space, so that a hypervisor reaches a
hypervisor of another rack, a spine's link or a NAT gateway without any
default route, and never through the border. It is never announced to the
border (the border route-maps list only floating space).

Who originates what (``frr.py`` prints it)::

    ToR          its rack's host_subnet, as an aggregate built from its
                 downlink networks and its hypervisors' loopback /32s
    spine        the link networks it is the upper end of (its downlinks
                 and every lower host's uplink that peers with it) and its
                 address when no such link carries it
    NAT gateway  its address when no link of its own carries it
    hypervisor   its address when no link of its own carries it (it
                 lies in the rack's host_subnet: the ToR aggregates it)

A link network belongs to its upper end, so two hosts never originate the
same one unless they share a LAN (two spines on one segment: the same
prefix from both, which is the truth).
"""

from .addr import Net, collapse
from .memo import per_fabric


def _h(ip):
    return Net(ip, 32)


def own_link_nets(host):
    """Networks of the host's own downlinks (a ToR or a spine is their upper end)."""
    return [d.net for d in host.downlinks if d.net is not None]


def loopback(host, nets=()):
    """The host's address as a /32 when it is not the address of one of its
    links and no network in ``nets`` (what it originates) holds it, else None."""
    if host.address is None:
        return None
    for link in list(host.uplinks) + list(host.downlinks):
        if link.address == host.address:
            return None
    if any(host.address in net for net in nets):
        return None
    return _h(host.address)


class Index:
    """Per fabric, computed once: {host name: [Net it originates]} and the
    fabric-wide infrastructure list the ToRs and NAT gateways accept."""

    def __init__(self, fab):
        upper = {}  # spine name -> nets of lower hosts' uplinks peering with it
        for host in fab.hosts.values():
            for up in host.uplinks:
                if up.peer_host is not None and up.net is not None:
                    upper.setdefault(up.peer_host, []).append(up.net)
        self.origin = {}
        for host in fab.hosts.values():
            nets = own_link_nets(host)
            if host.role == "spine":
                nets = nets + upper.get(host.name, [])
            nets = _unique(nets)
            lo = loopback(host, nets)
            self.origin[host.name] = nets + ([lo] if lo is not None else [])
        fabric = [r.host_subnet for r in fab.racks.values() if r.host_subnet is not None]
        for host in fab.by_role["spine"] + fab.by_role["nat_gateway"]:
            fabric += self.origin[host.name]
        self.fabric = _unique(fabric)
        # Collapsed: every rack's instance subnets, the infrastructure, the floating ranges.
        space = [n for r in fab.racks.values() for n in r.instance_subnets] + self.fabric + list(fab.floating_ranges)
        self.space = collapse(space) if space else []


def _unique(nets):
    return sorted(set(nets), key=lambda n: (n.first, n.prefixlen))


@per_fabric
def index(fab):
    return Index(fab)


def origin(fab, host):
    """The infrastructure prefixes ``host`` originates (texts, sorted): link
    networks it is the upper end of and its loopback /32. A ToR's are the
    contributors of its host_subnet aggregate."""
    return [n.text for n in index(fab).origin.get(host.name, [])]


def fabric_space(fab):
    """Texts, collapsed: every rack's instance subnets, the infrastructure and the floating ranges."""
    return [n.text for n in index(fab).space]


def fabric_infra(fab):
    """Every rack's host_subnet and what spines and NAT gateways originate (texts, sorted)."""
    return [n.text for n in index(fab).fabric]
