# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the IPv6 side of a dual-stack fabric, every field of it optional:
``ocs_fabric.internal_ranges6``, ``inbound6`` and ``dns_servers6``, a rack's ``instance_subnets6`` and
``instance_ip6_from_ip4``, a host's ``ocs_address6``, an instance's ``ip6`` and ``inbound6``.
The validators of each object kind call in here; see docs/ipv6.md.

A fabric without ``internal_ranges6`` is IPv4-only (``Fabric.dual_stack``
false): no other IPv6 field may be set (``instance_subnets6`` and
``ocs_address6`` say they require ``internal_ranges6``; an ``ip6`` is outside
its rack's, then empty, ``instance_subnets6``), and the validator's messages,
the names of known fields in an unknown-field message included
(:func:`listed`), are exactly those of an IPv4-only validator. IPv6 is
validated and rendered (docs/ipv6.md).

Every IPv6 address and network is global: none touches multicast (ff00::/8),
link-local (fe80::/10), loopback, unspecified or IPv4-mapped (::ffff:0:0/96)
addresses (``addr.SPECIAL6``); documentation (2001:db8::/32) and unique local
(fd00::/8) ones are fine. IPv6 ints live in dicts of their own, apart from the
IPv4 ones (the same int may be an address of both families).

Bounds of a rack's IPv6 instance subnet: from a /48 (what RFC 6177 gives a
whole site: a rack never needs more, and a wider one is more likely a typo
that swallows its neighbours) to a /120 (256 addresses, the IPv6 counterpart
of a small IPv4 rack subnet; longer ones leave too few addresses to plan with).

The derivation switch, ``instance_ip6_from_ip4``, is a rack key, not a
fabric-wide setting: it derives from the rack's own first ``instance_subnets6``
network, whose length (/96 or shorter, so that the IPv4 address fits in the
low 32 bits) is the rack's to get right, and a fleet can turn it on rack by
rack (a rack whose instances carry explicit addresses keeps them). An explicit
``ip6`` always wins, and a derived address is checked like a given one.
"""

import bisect

from .addr import DIGITS_RE, Net6, aton6, ntoa, ntoa6, special6
from .check import Place, ip6_field, net6_items, overlaps, show, where
from .model import SERVED6_PLEN, gateway6_of

FABRIC_KEYS6 = {"internal_ranges6", "inbound6", "dns_servers6"}
RACK_KEYS6 = {"instance_subnets6", "instance_ip6_from_ip4"}
INSTANCE_KEYS6 = {"ip6", "inbound6"}
SUBNET6_WIDEST, SUBNET6_NARROWEST = 48, 120
"""The prefix lengths a rack's IPv6 instance subnet may have (see above)."""
DERIVE_NARROWEST = 96
"""With ``instance_ip6_from_ip4``, the first IPv6 instance subnet is a /96 or shorter."""
SERVED_BITS = 128 - SERVED6_PLEN
"""The host bits of the /64 a wider subnet is served in (``model.SERVED6_PLEN``): an ip6 shares the rest with its subnet."""
_REQUIRES = "requires ocs_fabric.internal_ranges6 (the fabric's IPv6 ranges)"
INBOUND6 = ("floating", "open", "closed")
"""``ocs_fabric.inbound6``: who may open IPv6 flows to instances from outside the fabric (firewall.py)."""
INBOUND6_INSTANCE = ("open", "closed")
"""An instance's own ``inbound6``: it overrides the fabric's."""


def listed(known, keys6, dual_stack):
    """The fields an unknown-field message names: the IPv6 ones (``keys6``) only in a dual-stack
    fabric (in an IPv4-only one they are not usable, and the message stays what it was)."""
    return known if dual_stack else known - keys6


def derived(net, ip):
    """The IPv6 int an instance of IPv4 int ``ip`` gets in the Net6 ``net`` (a /96 or shorter):
    the network with the IPv4 address as its low 32 bits (2001:db8:0:1::/64 and 198.19.1.10 give
    2001:db8:0:1::c613:10a)."""
    return net.first | ip


def internal_ranges6(chk, fab, data):
    """ocs_fabric.internal_ranges6: global IPv6 networks, not overlapping each other."""
    place = where("ocs_fabric", "internal_ranges6")
    items = net6_items(chk, place, data.get("internal_ranges6"))
    fab.internal_ranges6 = [net for dummy, net in items]
    for (la, a), (lb, b) in overlaps(items):
        chk.add(where(place, lb), "%s overlaps %s %s" % (b.text, where("internal_ranges6", la), a.text))


def rack6(chk, fab, rw, spec, all_nets6):
    """(IPv6 instance subnets [Net6], ip6_from_ip4) of one rack; each network given joins
    ``all_nets6`` [(where, Net6)] for the checks across racks (:func:`rack_networks6`)."""
    raw = spec.get("instance_subnets6")
    place = where(rw, "instance_subnets6")
    if isinstance(raw, list) and raw and not fab.dual_stack:
        chk.add(place, _REQUIRES)
    subnets = []
    for i, net in net6_items(chk, place, raw):
        if net.prefixlen < SUBNET6_WIDEST:
            chk.add(where(place, i), "%s is larger than a /%d" % (net.text, SUBNET6_WIDEST))
        elif net.prefixlen > SUBNET6_NARROWEST:
            chk.add(where(place, i), "%s is smaller than a /%d" % (net.text, SUBNET6_NARROWEST))
        else:
            subnets.append(net)
        all_nets6.append((where(place, i), net))
    whole = isinstance(raw, list) and len(subnets) == len(raw)
    return subnets, _ip6_from_ip4(chk, rw, spec, subnets, whole)


def _ip6_from_ip4(chk, rw, spec, subnets, whole):
    """instance_ip6_from_ip4: a bool; when true the rack has IPv6 instance subnets, all valid
    (``whole``), the first a /96 or shorter."""
    value = spec.get("instance_ip6_from_ip4", False)
    place = where(rw, "instance_ip6_from_ip4")
    if not isinstance(value, bool):
        chk.add(place, "%s must be true or false" % show(value))
        return False
    if not value:
        return False
    if not spec.get("instance_subnets6"):
        chk.add(place, "is true, but the rack has no instance_subnets6 (the derived addresses lie in the first)")
        return False
    if not whole:
        return False  # the problem of instance_subnets6 is reported
    if subnets[0].prefixlen > DERIVE_NARROWEST:
        chk.add(place, "is true, but instance_subnets6[0] %s is longer than a /%d (an instance's IPv4 address "
                "fills the low 32 bits of its derived address)" % (subnets[0].text, DERIVE_NARROWEST))
        return False
    return True


def rack_networks6(chk, fab, all_nets6):
    """No rack IPv6 network overlaps another; each is inside internal_ranges6."""
    for (la, a), (lb, b) in overlaps(all_nets6):
        chk.add(lb, "%s overlaps %s %s" % (b.text, la, a.text))
    if not fab.internal_ranges6:
        return  # no valid range to be inside: reported (a problem of internal_ranges6, or _REQUIRES)
    for label, net in all_nets6:
        if not any(net.within(i) for i in fab.internal_ranges6):
            chk.add(label, "%s is not inside internal_ranges6 [%s]"
                    % (net.text, ", ".join(i.text for i in fab.internal_ranges6)))


def host_addresses6(chk, fab, hostvars):
    """Each host's optional ocs_address6 (``Host.address6``): a global IPv6 address, unique among
    hosts, inside internal_ranges6 and in no rack's IPv6 instance subnet (those are instances')."""
    owners = {}  # IPv6 int -> host location
    rack_nets = sorted((n.first, n.last, n.text, r.id) for r in fab.racks.values() for n in r.instance_subnets6)
    firsts = [item[0] for item in rack_nets]
    for host in fab.hosts.values():
        value = (hostvars.get(host.name) or {}).get("ocs_address6")
        hw = where(host.group, host.name)
        place = where(hw, "ocs_address6")
        host.address6 = ip6_field(chk, place, value)
        if host.address6 is None:
            continue
        if not fab.dual_stack:
            chk.add(place, _REQUIRES)
            continue
        problem = _host6_problem(fab, host.address6, hw, owners)
        if problem is None:
            i = bisect.bisect_right(firsts, host.address6) - 1
            if i >= 0 and host.address6 <= rack_nets[i][1]:
                problem = "lies in rack %s instance_subnets6 %s (instance addresses)" % (
                    rack_nets[i][3], rack_nets[i][2])
        if problem is not None:
            chk.add(place, "%s %s" % (ntoa6(host.address6), problem))


def _host6_problem(fab, ip6, hw, owners):
    special = special6(ip6)
    if special is not None:
        return "is %s" % special
    if ip6 in owners:
        return "is also the ocs_address6 of %s" % owners[ip6]
    owners[ip6] = hw
    if fab.internal_ranges6 and not any(ip6 in i for i in fab.internal_ranges6):
        return "is not inside internal_ranges6"
    return None


def address6(chk, place, value):
    """A global IPv6 address of a dual-stack fabric's setting (an IPv6 instance service, a DNS
    server) as an int, or None (reported: not an address, or not a global one)."""
    ip6 = ip6_field(chk, place, value, required=True)
    if ip6 is None:
        return None
    special = special6(ip6)
    if special is not None:
        chk.add(place, "%s is %s" % (ntoa6(ip6), special))
        return None
    return ip6


def dns_servers6(chk, fab, data):
    """ocs_fabric.dns_servers6 (``Fabric.dns_servers6``): the instances' IPv6 resolvers, global IPv6
    addresses (DHCPv6 option 23 and the RAs' RDNSS, dhcp.py); only in a dual-stack fabric."""
    value = data.get("dns_servers6")
    place = where("ocs_fabric", "dns_servers6")
    if value is None:
        return
    if not fab.dual_stack:
        chk.add(place, _REQUIRES)
    elif not isinstance(value, list):
        chk.add(place, "must be a list of IPv6 addresses, got %s" % show(value))
    else:
        found = (address6(chk, where(place, i), item) for i, item in enumerate(value))
        fab.dns_servers6 = [ip6 for ip6 in found if ip6 is not None]


def instance_ip6(chk, seen, label, host, value, ip):
    """(ip6 or None, ok): the instance's IPv6 address, ``value`` or, when that is absent and its
    rack has instance_ip6_from_ip4, derived from its IPv4 address ``ip`` (None when that one is
    not valid: nothing is derived); global, in an IPv6 instance subnet of its hypervisor's rack,
    not the subnet's first address, unique. ``seen.ips6`` (IPv6 int -> where) is filled in;
    ``seen.host_addrs6`` holds the hosts' ocs_address6."""
    rack = host.rack
    place = Place(where, label, "ip6")
    if value is None:
        if ip is None or rack is None or not rack.ip6_from_ip4:
            return None, True
        ip6 = derived(rack.instance_subnets6[0], ip)
    else:
        ip6 = ip6_field(chk, place, value)
        if ip6 is None:
            return None, False
        special = special6(ip6)
        if special is not None:
            chk.add(place, "%s is %s" % (ntoa6(ip6), special))
            return ip6, False
        if rack is None:
            return ip6, True
    problem = _instance6_problem(seen, rack, ip6)
    if problem is None:
        seen.ips6[ip6] = label
        return ip6, True
    shown = ntoa6(ip6) if value is not None else "%s (derived from ip %s)" % (ntoa6(ip6), ntoa(ip))
    chk.add(place, "%s %s" % (shown, problem))
    return ip6, False


def _instance6_problem(seen, rack, ip6):
    subnet = rack.subnet6_of(ip6)
    if subnet is None:
        return "is outside rack %s instance_subnets6 [%s]" % (
            rack.id, ", ".join(n.text for n in rack.instance_subnets6))
    if ip6 == subnet.first:
        return "is the subnet-router anycast address of %s (its first address)" % subnet.text
    if ip6 == gateway6_of(subnet):
        return "is the gateway address of %s (every tap's, its second address)" % subnet.text
    if ip6 >> SERVED_BITS != subnet.first >> SERVED_BITS:
        return "is outside %s/%d, the first /%d of %s (DHCPv6 serves a subnet wider than a /%d in its first only)" % (
            ntoa6(subnet.first), SERVED6_PLEN, SERVED6_PLEN, subnet.text, SERVED6_PLEN)
    if ip6 in seen.ips6:
        return "is also the ip6 of %s" % seen.ips6[ip6]
    if ip6 in seen.host_addrs6:
        return "is also the ocs_address6 of host %s" % seen.host_addrs6[ip6].name
    return None


def inbound6(chk, fab, data):
    """ocs_fabric.inbound6 (``Fabric.inbound6``): floating (the default: an instance with a floating
    IP is reachable from outside the fabric on its ip6 as on its floating IP, the others only on
    flows they opened), open (every instance) or closed (none); only in a dual-stack fabric."""
    place = where("ocs_fabric", "inbound6")
    value = data.get("inbound6")
    if value is None:
        return
    if not fab.dual_stack:
        chk.add(place, _REQUIRES)
    elif value not in INBOUND6:
        chk.add(place, "%s must be floating, open or closed" % show(value))
    else:
        fab.inbound6 = value


def instance_inbound6(chk, fab, label, value, has_ip6):
    """(inbound6 or None, ok): an instance's own inbound6, open or closed (it overrides the
    fabric's); only in a dual-stack fabric, on an instance with an ip6 (``has_ip6``: false only
    when it has none, not when its ip6 has a problem of its own)."""
    if value is None:
        return None, True
    place = where(label, "inbound6")
    if not fab.dual_stack:
        chk.add(place, _REQUIRES)
    elif value not in INBOUND6_INSTANCE:
        chk.add(place, "%s must be open or closed (or left out: ocs_fabric.inbound6 decides)" % show(value))
    elif not has_ip6:
        chk.add(place, "is %s, but the instance has no ip6" % value)
    else:
        return value, True
    return None, False


# --- IPv6 across the fabric (issue 21): border sessions, link-local sessions -----------------

LINK_KEYS6 = {"address6"}
"""The IPv6 field of an ``ocs_uplinks`` entry (a border link's) and of a ``border_peers`` entry."""


def iface_addr6(chk, place, value):
    """A border link's IPv6 address in CIDR notation (``2001:db8:ff::1/64``) -> (IPv6 int, Net6),
    or (None, None) after reporting: global, not the network's subnet-router anycast address."""
    if value is None:
        return None, None
    addr, dummy, plen = value.partition("/") if isinstance(value, str) else ("", "", "")
    ip = aton6(addr)
    if ip is None or not DIGITS_RE.fullmatch(plen) or len(plen) > 3 or not 1 <= int(plen) <= 128:
        chk.add(place, "%s is not an IPv6 interface address in CIDR notation (address/len)" % show(value))
        return None, None
    prefixlen = int(plen)
    net = Net6(ip & (((1 << 128) - 1) ^ ((1 << (128 - prefixlen)) - 1)), prefixlen)
    problem = special6(ip)
    if problem is None and ip == net.first and prefixlen < 127:
        problem = "the subnet-router anycast address of %s" % net.text
    if problem is not None:
        chk.add(place, "%s is %s" % (ntoa6(ip), problem))
        return None, None
    return ip, net


def border_peer6(chk, fab, pw, peer, ip, asn, index):
    """A border peer's optional ``address6`` (dual stack): the IPv6 session with that peer, on the
    IPv6 network of the spines' border links to it, into ``fab.border_peers6``."""
    value = peer.get("address6")
    if value is None:
        return
    place = where(pw, "address6")
    ip6 = ip6_field(chk, place, value)
    if ip6 is None:
        return
    problem = special6(ip6)
    problem = "is " + problem if problem is not None else None
    if problem is None and any(ip6 == other for other, dummy, dummy2, dummy3 in fab.border_peers6):
        problem = "is listed twice"
    if problem is not None:
        chk.add(place, "%s %s" % (ntoa6(ip6), problem))
    elif ip is not None and asn is not None:
        fab.border_peers6.append((ip6, asn, ip, index))


def border_links6(chk, fab):
    """An uplink's ``address6`` only on a border link; each border peer with an ``address6`` is
    reached on an IPv6 border link of every spine linked to it (nat_mode host: the spines are the
    IPv6 edge; the NAT gateways carry no IPv6 border session)."""
    border = {ip for ip, dummy in fab.border_peers}
    for host in fab.hosts.values():
        for i, up in enumerate(host.uplinks):
            if up.address6 is not None and (up.peer not in border or host.role != "spine"):
                chk.add(where(host.group, host.name, "ocs_uplinks", i, "address6"),
                        "is only for a spine's border link (an uplink whose peer is a border peer): the fabric's "
                        "links carry IPv6 on their IPv4 sessions (docs/ipv6.md)")
    for ip6, dummy, ip, index in fab.border_peers6:
        place = where("ocs_fabric", "border_peers", index, "address6")
        if fab.nat_mode != "host":
            chk.add(place, "%s needs nat_mode host: the spines are the IPv6 edge (NAT gateways carry no IPv6 "
                    "border session)" % ntoa6(ip6))
            continue
        links = [(spine, i, up) for spine in sorted(fab.by_role["spine"], key=lambda h: h.name)
                 for i, up in enumerate(spine.uplinks) if up.peer == ip]
        if not links:
            chk.add(place, "%s: no spine has a border link to %s (the IPv6 session runs on it)"
                    % (ntoa6(ip6), ntoa(ip)))
        for spine, i, up in links:
            if up.net6 is None or ip6 not in up.net6 or ip6 == up.address6:
                has = "has none" if up.net6 is None else "is %s/%d" % (ntoa6(up.address6), up.net6.prefixlen)
                chk.add(where(spine.group, spine.name, "ocs_uplinks", i, "address6"),
                        "must be an IPv6 address of the spine on the network of border peer %s's address6 %s "
                        "(its IPv6 session runs on this border link, %s); it %s"
                        % (ntoa(ip), ntoa6(ip6), up.interface, has))


def link_local_sessions(chk, fab):
    """Dual stack: an unnumbered downlink (``host`` named) carries that host's BGP session, IPv6
    included, over link-local addresses; the host must have an unnumbered uplink (else the
    interface carries no link to it: no session, no IPv6)."""
    for host in fab.hosts.values():
        for i, down in enumerate(host.downlinks):
            other = fab.hosts.get(down.host) if down.host is not None else None
            if other is not None and not any(up.peer is None for up in other.uplinks):
                chk.add(where(host.group, host.name, "ocs_downlinks", i, "host"),
                        "%s has no unnumbered uplink (no peer): %s carries no link to it, so no BGP session and "
                        "no IPv6 (link-local) runs there" % (other.name, down.interface))
