# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ingress anti-spoofing at the edge (BCP 38): where the internet enters, and what it may not claim.

A *border link* is an uplink whose ``peer`` is one of ``ocs_fabric.border_peers``:
spines have them (the edge in ``nat_mode: host``), NAT gateways have them in
``nat_mode: gateway`` (then they are the edge). On a border link no packet may
carry, as its source, an address the fabric owns: an instance address (the
racks' instance subnets), a floating IP or public address (``floating_ranges``),
or any other internal address (``internal_ranges`` and the fabric's
infrastructure). Such a packet is forged: it is dropped and counted before
conntrack and before any translation of a floating IP, so a forged datagram
never reaches an instance through its floating IP.

Exempt on each border link: the addresses of the border peers that lie on it
(the uplink's own ``peer`` always; other border peers inside the link's
network), i.e. the BGP session and the router's own ICMP. The host's *own*
address on the link is not exempt: a packet that arrives from the border with
the host's own address as its source is forged too (the kernel would drop it
as a martian anyway; here it is counted).

Where the rules live (both before conntrack, priority raw, and before any DNAT):

- spines: iptables table raw, chain ``OCS-EDGE``, entered by the first rule of
  ``OCS-NOTRACK`` (the one jump of ours in raw ``PREROUTING``), so it runs
  before the notrack rule and before nat ``PREROUTING``;
- NAT gateways in gateway mode: the first rules of the ``ocs_natgw`` table's
  ``raw_prerouting`` chain, the chain that rewrites floating IPs. iptables'
  raw table and an nftables chain of priority raw share priority -300, and the
  kernel runs hooks of equal priority in registration order; rule order in
  one chain is guaranteed, so the drop sits in the translating chain itself.

IPv6 (a dual-stack fabric, issue 21): on a spine's border link with an ``address6`` (the link of
an IPv6 border session), the same in ip6tables' raw table: no source inside the racks'
``instance_subnets6``, ``internal_ranges6`` or an IPv6 border link network, except the border
peers' ``address6`` on that link. Link-local sources (the border router's neighbour discovery)
are not in those networks and pass. Other hosts' IPv6 files declare ``OCS-EDGE`` empty and never
jump to it.
"""

from .addr import collapse, collapse6


def border_set(fab):
    """The border peers' addresses (ints)."""
    return {ip for ip, dummy in fab.border_peers}


def border_links(fab, host):
    """The host's uplinks to a border peer, in inventory order."""
    border = border_set(fab)
    return [up for up in host.uplinks if up.peer is not None and up.peer in border]


def spoofed_sources(fab):
    """[Net], collapsed: every source the border may never use (instance subnets, floating
    ranges, internal ranges, the infrastructure)."""
    nets = [n for r in fab.racks.values() for n in r.instance_subnets]
    nets += list(fab.floating_ranges) + list(fab.internal_ranges) + list(fab.infrastructure)
    return collapse(nets) if nets else []


def exempt(fab, link):
    """Sorted addresses (ints) allowed as a source on border ``link``: its peer and the other
    border peers on its network."""
    out = {link.peer}
    if link.net is not None:
        out |= {ip for ip in border_set(fab) if ip in link.net}
    return sorted(out)


def edge_entries(fab, host):
    """[(interface, [exempt addresses], [Net])] of the host's border links (empty: not an edge host)."""
    links = border_links(fab, host)
    if not links:
        return []
    sources = spoofed_sources(fab)
    return [(up.interface, exempt(fab, up), sources) for up in links]


def spoofed_sources6(fab):
    """[Net6], collapsed: every IPv6 source the border may never use (the racks' instance subnets,
    internal_ranges6, the IPv6 border link networks)."""
    nets = [n for r in fab.racks.values() for n in r.instance_subnets6] + list(fab.internal_ranges6)
    nets += [up.net6 for h in fab.hosts.values() for up in h.uplinks if up.net6 is not None]
    return collapse6(nets) if nets else []


def edge_entries6(fab, host):
    """[(interface, [exempt IPv6 addresses], [Net6])] of the host's IPv6 border links (those with an
    ``address6``; empty: no IPv6 edge here)."""
    links = [up for up in border_links(fab, host) if up.net6 is not None]
    if not links:
        return []
    sources = spoofed_sources6(fab)
    return [(up.interface, sorted(ip6 for ip6, dummy, dummy2, dummy3 in fab.border_peers6 if ip6 in up.net6), sources)
            for up in links]
