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
"""

from .addr import ntoa
from .announce import loopback
from .artifact import Artifact, text
from .constants import ROUTE_PROTOCOL, ROUTE_PROTOCOL_NAME, ROUTES_PATH, RT_PROTOS_PATH
from .route_table import owned_line

OWNED_COMMENT = "# /32 addresses on lo inside these ranges are ocs-l3's: removed when not listed below"


def _via(dst, hops):
    hops = sorted(set(hops))
    if len(hops) == 1:
        return "route replace %s via %s proto %d" % (dst, ntoa(hops[0]), ROUTE_PROTOCOL)
    return "route replace %s proto %d %s" % (
        dst, ROUTE_PROTOCOL, " ".join("nexthop via %s" % ntoa(h) for h in hops))


def _dev(dst, dev):
    return "route replace %s dev %s proto %d scope link" % (dst, dev, ROUTE_PROTOCOL)


def _sort_key(line):
    parts = line.split()
    # ("address"|"route", destination as int tuple) keeps output stable.
    dst = parts[3] if parts[2] == "blackhole" else parts[2]
    if dst == "default":
        return (parts[0], 1, 0, 0, line)
    ip, dummy, plen = dst.partition("/")
    a, b, c, d = (int(x) for x in ip.split("."))
    return (parts[0], 0, (a << 24) | (b << 16) | (c << 8) | d, int(plen or 32), line)


def hypervisor_lines(fab, host):
    """Instance ports of a hypervisor: the gateway IP on each tap
    (noprefixroute), each instance /32 on its tap, in host NAT mode each
    floating /32 on its tap too; in static routing mode a default route via
    the uplink peers (ECMP when dual-homed)."""
    lines = []
    for inst in host.instances:
        lines.append("address replace %s/%d dev %s noprefixroute"
                     % (ntoa(inst.gateway_ip), inst.subnet.prefixlen, inst.interface))
        lines.append(_dev("%s/32" % ntoa(inst.ip), inst.interface))
        if inst.floating_ip is not None and fab.nat_mode == "host":
            lines.append(_dev("%s/32" % ntoa(inst.floating_ip), inst.interface))
    if host.public_address is not None and fab.nat_mode == "host":
        lines.append(public_address_line(host))
    if fab.routing_mode == "static":
        hops = [up.peer for up in host.uplinks if up.peer is not None]
        if not hops and host.rack is not None:
            hops = [t.address for t in host.rack.tors]
        if hops:
            lines.append(_via("default", hops))
    return sorted(set(lines), key=_sort_key)


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
    loopback address) via its hypervisor."""
    rack = host.rack
    lines = ["route replace blackhole %s proto %d" % (net.text, ROUTE_PROTOCOL) for net in rack.instance_subnets]
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
    return sorted(set(lines), key=_sort_key)


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
                 {"_ocs_routes_protocol": ROUTE_PROTOCOL, "_ocs_routes_protocol_name": ROUTE_PROTOCOL_NAME}),
        Artifact(ROUTES_PATH, "routes", "ocs_routes", "etc/ocs-l3/routes.batch.j2",
                 {"_ocs_routes_text": text(owned_lines(fab, host) + host_lines(fab, host))}),
    ]
