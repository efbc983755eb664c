# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-host kernel routes, as ``ip -batch`` lines in one canonical form.

The host-side module ``ocs_route_table`` reads the kernel's routes of protocol
:data:`ocs_l3.ROUTE_PROTOCOL` back into exactly this form, so that a line
present in both means "nothing to do" and a no-op reconcile touches nothing.

Canonical lines (sorted by destination)::

    address replace 198.19.1.1/24 dev tap1a2b3c4d5e6 noprefixroute
    route replace 198.19.1.10/32 dev tap1a2b3c4d5e6 proto 211 scope link
    route replace 198.19.1.10/32 via 198.18.1.21 proto 211
    route replace 198.19.1.10/32 proto 211 nexthop via 198.18.1.21 nexthop via 198.18.1.121
    route replace blackhole 198.19.1.0/24 proto 211
    route replace default via 198.18.1.1 proto 211

and, for an instance with an ``ip6`` (dual-stack fabric), after the IPv4 lines (sorted by
family, then destination)::

    address replace 2001:db8:0:1::1/64 dev tap1a2b3c4d5e6 nodad noprefixroute
    address replace fe80::1/64 dev tap1a2b3c4d5e6 nodad
    route replace 2001:db8:0:1::c613:10a/128 dev tap1a2b3c4d5e6 proto 211 metric 1024
    route replace 2001:db8:0:1::c613:10a/128 via 2001:db8:ffff::21 dev eth1 proto 211 metric 1024 onlink
    route replace default proto 211 metric 1024 nexthop via 2001:db8:ffff::1 dev eth0 onlink nexthop via ...
    address replace 2001:db8:ffff::21/128 dev eth0 nodad
    route replace blackhole 2001:db8:0:1::/64 proto 211 metric 1024
"""

from .addr import from_ntoa6, ntoa, ntoa6
from .announce import loopback
from .artifact import Artifact, text
from .constants import GATEWAY6_LINK_LOCAL, ROUTE_PROTOCOL, ROUTE_PROTOCOL_NAME, ROUTES_PATH, RT_PROTOS_PATH
from .model import gateway6_of
from .route_table import ROUTE6_METRIC, owned_line

OWNED_COMMENT = "# /32 addresses on lo inside these ranges are ocs-l3's: removed when not listed below"


def _via(dst, hops):
    hops = sorted(set(hops))
    if len(hops) == 1:
        return "route replace %s via %s proto %d" % (dst, ntoa(hops[0]), ROUTE_PROTOCOL)
    return "route replace %s proto %d %s" % (
        dst, ROUTE_PROTOCOL, " ".join("nexthop via %s" % ntoa(h) for h in hops))


def _dev(dst, dev):
    return "route replace %s dev %s proto %d scope link" % (dst, dev, ROUTE_PROTOCOL)


def _proto6():
    return "proto %d metric %d" % (ROUTE_PROTOCOL, ROUTE6_METRIC)


def _sort_key(line):
    parts = line.split()
    # ("address"|"route", family and destination as int tuple) keeps output stable:
    # IPv4 (then an IPv4 default) first, exactly as before IPv6, then IPv6.
    dst = parts[3] if parts[2] == "blackhole" else parts[2]
    if dst == "default":
        return (parts[0], 3 if ":" in line else 1, 0, 0, line)
    ip, dummy, plen = dst.partition("/")
    if ":" in ip:  # our own lines: canonical text (from_ntoa6 is the fast reader of it)
        return (parts[0], 2, from_ntoa6(ip), int(plen or 128), line)
    a, b, c, d = (int(x) for x in ip.split("."))
    return (parts[0], 0, (a << 24) | (b << 16) | (c << 8) | d, int(plen or 32), line)


def instance6_lines(inst):
    """An instance's IPv6 port, when it has an ``ip6`` in an IPv6 subnet of its hypervisor's rack:
    the router's link-local address (the same on every tap; without ``noprefixroute``: it carries
    fe80::/64 to the tap even where the kernel made no link-local address of its own), the
    subnet's IPv6 gateway address (``noprefixroute``: dnsmasq builds the tap's DHCPv6 range from
    it, no subnet route), both ``nodad`` (the instance cannot disable them by answering duplicate
    address detection), and the instance /128 on its tap."""
    rack = inst.hypervisor.rack
    net = rack.subnet6_of(inst.ip6) if inst.ip6 is not None and rack is not None else None
    if net is None:
        return []
    tap = inst.interface
    return [
        "address replace %s/64 dev %s nodad" % (GATEWAY6_LINK_LOCAL, tap),
        "address replace %s/%d dev %s nodad noprefixroute" % (ntoa6(gateway6_of(net)), net.prefixlen, tap),
        "route replace %s/128 dev %s %s" % (ntoa6(inst.ip6), tap, _proto6()),
    ]


def hypervisor_lines(fab, host):
    """Instance ports of a hypervisor: the gateway IP on each tap
    (noprefixroute), each instance /32 on its tap, in host NAT mode each
    floating /32 on its tap too; in static routing mode a default route via
    the uplink peers (ECMP when dual-homed). An instance with an ``ip6``: its
    IPv6 port too (instance6_lines)."""
    # The instance lines with their _sort_key made from the ints they print (not read back).
    keyed = {}
    for inst in host.instances:
        line = "address replace %s/%d dev %s noprefixroute" % (ntoa(inst.gateway_ip), inst.subnet.prefixlen,
                                                               inst.interface)
        keyed[line] = ("address", 0, inst.gateway_ip, inst.subnet.prefixlen, line)
        line = _dev("%s/32" % ntoa(inst.ip), inst.interface)
        keyed[line] = ("route", 0, inst.ip, 32, line)
        if inst.floating_ip is not None and fab.nat_mode == "host":
            line = _dev("%s/32" % ntoa(inst.floating_ip), inst.interface)
            keyed[line] = ("route", 0, inst.floating_ip, 32, line)
    lines = [line for inst in host.instances for line in instance6_lines(inst)]
    if host.public_address is not None and fab.nat_mode == "host":
        lines.append(public_address_line(host))
    if fab.routing_mode == "static":
        hops = [up.peer for up in host.uplinks if up.peer is not None]
        if not hops and host.rack is not None:
            hops = [t.address for t in host.rack.tors]
        if hops:
            lines.append(_via("default", hops))
        lines += default6_lines(host)
    lines += link6_address_lines(host)
    for line in lines:
        keyed[line] = _sort_key(line)
    return [key[-1] for key in sorted(keyed.values())]


def default6_lines(hv):
    """Static routing mode: a hypervisor with an IPv6 instance routes IPv6 to its rack's ToRs, by
    their ``ocs_address6``, on each of its uplinks to that ToR (ECMP over several), ``onlink``: the
    ToR's address is a /128 on its downlinks (link6_address_lines), in no prefix of the link. The
    counterpart of the ToR's /128s via the hypervisor's ``ocs_address6`` (static6_lines).
    Validated: such a hypervisor, its ToRs and their links have what this needs
    (validate_topology.static6)."""
    if not any(inst.ip6 is not None for inst in hv.instances):
        return []
    tors = {t.name: t.address6 for t in (hv.rack.tors if hv.rack is not None else []) if t.address6 is not None}
    hops = sorted({(tors[up.peer_host], up.interface) for up in hv.uplinks if up.peer_host in tors})
    return [_onlink6("default", hops)] if hops else []


def _onlink6(dst, hops):
    """An IPv6 route over on-link next hops [(address6 int, interface)], sorted as the kernel's
    route reads back (route_table.canonical_route)."""
    if len(hops) == 1:
        return "route replace %s via %s dev %s %s onlink" % (dst, ntoa6(hops[0][0]), hops[0][1], _proto6())
    return "route replace %s %s %s" % (dst, _proto6(), " ".join(
        "nexthop via %s dev %s onlink" % (ntoa6(ip), dev) for ip, dev in hops))


def link6_address_lines(host):
    """A hypervisor's or ToR's ``ocs_address6`` as a /128 on each of its rack links (a hypervisor's
    uplinks, a ToR's downlinks), without duplicate address detection (one address on several
    links): the next hop of static mode's IPv6 routes, answering neighbour discovery there, and
    the connected route by which BGP announces it (``network``). None for other roles."""
    if host.address6 is None or host.role not in ("hypervisor", "tor"):
        return []
    links = host.uplinks if host.role == "hypervisor" else host.downlinks
    return ["address replace %s/128 dev %s nodad" % (ntoa6(host.address6), dev)
            for dev in sorted({link.interface for link in links})]


def public_address_line(host):
    """The SNAT source of a hypervisor (host NAT mode) or NAT gateway, as a
    /32 on ``lo``: BGP announces it, replies to SNATed flows come back to it."""
    return "address replace %s/32 dev lo" % ntoa(host.public_address)


def gateway_lines(fab, host):
    """A NAT gateway's own public address."""
    return [public_address_line(host)] if host.public_address is not None else []


def next_hops(hv, tor):
    """Addresses through which ``tor`` reaches hypervisor ``hv``: the addresses
    of hv's uplinks that peer with this ToR, else its fabric address."""
    hops = [up.address for up in hv.uplinks if up.address is not None and up.peer_host == tor.name]
    return hops or [hv.address]


def tor_lines(fab, host):
    """The rack's route table on its ToR: a blackhole per instance subnet
    (what the ToR announces to the spines; unassigned addresses go nowhere,
    never back up a default route), and in static routing mode every instance
    /32 (and host-NAT floating /32 and public address, and a hypervisor's
    loopback address) via its hypervisor. IPv6 likewise: a blackhole per IPv6
    instance subnet, its ``ocs_address6`` on its downlinks and, in static mode,
    each instance /128 via its hypervisor's ``ocs_address6``, on-link (BGP
    carries IPv6 across the fabric)."""
    rack = host.rack
    lines = ["route replace blackhole %s proto %d" % (net.text, ROUTE_PROTOCOL) for net in rack.instance_subnets]
    lines += ["route replace blackhole %s %s" % (net.text, _proto6()) for net in rack.instance_subnets6]
    lines += link6_address_lines(host)
    if fab.routing_mode == "static":
        for hv in rack.hypervisors:
            hops = next_hops(hv, host)
            for inst in hv.instances:
                lines.append(_via("%s/32" % ntoa(inst.ip), hops))
                if inst.floating_ip is not None and fab.nat_mode == "host":
                    lines.append(_via("%s/32" % ntoa(inst.floating_ip), hops))
            if hv.public_address is not None and fab.nat_mode == "host":
                lines.append(_via("%s/32" % ntoa(hv.public_address), hops))
            lo = loopback(hv)
            if lo is not None:  # a hypervisor address on no link: routed like its instances
                lines.append(_via(lo.text, hops))
            lines += static6_lines(hv, host)
    return sorted(set(lines), key=_sort_key)


def static6_lines(hv, tor):
    """``tor``'s static IPv6 routes to hypervisor ``hv``'s instances: each /128 via its
    ``ocs_address6``, ``onlink`` on each of the ToR's downlinks whose network holds one of hv's
    uplink addresses to it (none without: validate_topology.static6 says so)."""
    if hv.address6 is None:
        return []
    addrs = [up.address for up in hv.uplinks if up.peer_host == tor.name and up.address is not None]
    hops = sorted({(hv.address6, d.interface) for d in tor.downlinks
                   if d.net is not None and any(a in d.net for a in addrs)})
    if not hops:
        return []
    return [_onlink6("%s/128" % ntoa6(inst.ip6), hops) for inst in hv.instances if inst.ip6 is not None]


def host_lines(fab, host):
    """Route lines for any host (empty for roles that only route by BGP)."""
    if host.role == "hypervisor":
        return hypervisor_lines(fab, host)
    if host.role == "tor":
        return tor_lines(fab, host)
    if host.role == "nat_gateway":
        return gateway_lines(fab, host)
    return []


def owned_lines(fab, host):
    """The floating ranges as the file's owned ranges on ``lo`` (every host with a route table,
    whether or not it lists a public address now: a hypervisor whose public /32 goes away
    when nat_mode becomes gateway still says which /32s on lo are ours, so the stale one is
    removed; an operator's own loopbacks outside them are never touched)."""
    if not fab.floating_ranges:
        return []
    return [OWNED_COMMENT] + [owned_line(net.text, "lo") for net in fab.floating_ranges]


def rack_table(fab, rack, tor=None):
    """The per-rack route table as data: {prefix: [next hops]} for every
    instance /32 of the rack, and each instance subnet as ``blackhole``.
    The next hops are the hypervisors' link addresses toward ``tor`` (the
    table that ToR holds), or toward every ToR of the rack when None."""
    table = {net.text: ["blackhole"] for net in rack.instance_subnets}
    tors = [tor] if tor is not None else rack.tors
    for hv in rack.hypervisors:
        hops = sorted({ntoa(a) for t in tors for a in next_hops(hv, t)})
        for inst in hv.instances:
            table["%s/32" % ntoa(inst.ip)] = hops
    return table


def artifacts(fab, host):
    """Route files of ToRs, hypervisors and NAT gateways: the protocol name and the table."""
    if host.role not in ("hypervisor", "tor", "nat_gateway"):
        return []
    return [
        Artifact(RT_PROTOS_PATH, "iproute2", "ocs_routes", "etc/iproute2/rt_protos.d/ocs-l3.conf.j2",
                 {"_ocs_routes_protocol": str(ROUTE_PROTOCOL), "_ocs_routes_protocol_name": ROUTE_PROTOCOL_NAME}),
        Artifact(ROUTES_PATH, "routes", "ocs_routes", "etc/ocs-l3/routes.batch.j2",
                 {"_ocs_routes_text": text(owned_lines(fab, host) + host_lines(fab, host))}),
    ]
