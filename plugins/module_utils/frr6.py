# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The IPv6 family of each host's BGP, on a dual-stack fabric (issue 21; docs/ipv6.md).

Sessions: the IPv6 family rides the fabric's existing sessions (``address-family ipv6
unicast``, ``neighbor GROUP activate``): a link with no IPv6 address of its own carries the
routes with the sender's link-local address as next hop, which zebra installs on the session's
interface. That works on the fabric's shared link segments (a ToR's /25 to all its
hypervisors, the spines' segment to the ToRs and gateways), where an interface session
(``neighbor IF interface``) could reach only one neighbor. The IPv4 family keeps every line it
had. The one new session is the border's: ``border_peers[].address6`` over the spines' border
links' ``address6`` (peer-group ``BORDER6``, IPv6 only).

Exact prefix-lists, from the inventory, as for IPv4 (names ``OCS6-*``, route-maps ``OCS6-IN-*`` /
``OCS6-OUT-*``)::

    hypervisor  announces its instances' /128s (what its routes put on their taps) and its
                ocs_address6 /128; accepts ::/0 and anything inside internal_ranges6
    ToR         accepts from each hypervisor exactly its /128s; announces to the spines its rack's
                instance_subnets6 as aggregates (only while a /128 stands behind one: a
                hypervisor's in BGP mode, a kernel route in static mode) and its rack's
                ocs_address6 /128s; relays to its hypervisors ::/0, every rack's subnets and
                the infrastructure
    spine       accepts from each ToR its rack's subnets and host /128s, from each NAT gateway its
                ocs_address6, from the border ::/0 only; announces to the ToRs and gateways the
                fabric's IPv6 (and ::/0), to the border **only** the racks' instance_subnets6
                (exactly, each while a ToR announces it): infrastructure never leaves the fabric
    NAT gateway announces its ocs_address6; accepts the racks' subnets and the infrastructure
                (no IPv6 NAT: IPv6 never goes through a gateway)

Infrastructure (IPv6) is every host's ``ocs_address6``, routed as /128s inside the fabric.
"""

from .addr import compact_hosts6, from_ntoa6, ntoa6
from . import frr as _frr
from .memo import per_fabric

REJECT_DISTANCE = 250  # as IPv4's: an unassigned internal address never follows the default


def _h6(ip6):
    return "%s/128" % ntoa6(ip6)


def _order(texts):
    """IPv6 prefixes (texts ocs-l3 printed) sorted as FRR's table prints them, no repeats."""
    def key(t):
        ip, dummy, plen = t.partition("/")
        return (from_ntoa6(ip), int(plen))
    return sorted(set(texts), key=key)


def owned6(hv):
    """The /128s hypervisor ``hv`` announces: its instances' ip6 in its rack's IPv6 subnets (what
    routes.instance6_lines puts on their taps)."""
    rack = hv.rack
    return [_h6(ip) for ip in sorted({i.ip6 for i in hv.instances
                                      if i.ip6 is not None and rack is not None and rack.subnet6_of(i.ip6) is not None})]


def origin6(host):
    return [_h6(host.address6)] if host.address6 is not None else []


def rack_nets6(rack):
    return [n.text for n in rack.instance_subnets6]


@per_fabric
def _fabric_lists(fab):
    return {"racks": _order(n.text for r in fab.racks.values() for n in r.instance_subnets6),
            "infra": _order(t for h in fab.hosts.values() for t in origin6(h))}


def rack_subnets6(fab):
    return list(_fabric_lists(fab)["racks"])


def rack_hosts6(rack):
    """The ocs_address6 /128s of a rack's ToRs and hypervisors (its ToRs announce them)."""
    return _order(t for h in list(rack.tors) + list(rack.hypervisors) for t in origin6(h))


def rack_instances6(rack):
    """Two or more ToRs: the rack's /128s go to the spines too (see frr.rack_instances)."""
    if len(rack.tors) < 2:
        return []
    return ["%s ge 128" % n.text for n in rack.instance_subnets6]


def infra6(fab):
    """Every host's ocs_address6 /128 (the fabric's IPv6 infrastructure), sorted."""
    return list(_fabric_lists(fab)["infra"])


def fabric6(fab):
    """What the spines hand down in IPv6: ::/0 (the border's) and every rack's instance subnets."""
    return ["::/0"] + rack_subnets6(fab)


def rack_kernel6(rack):
    """Static mode: the /128s of a rack's table (routes.static6_lines: its instances' ip6)."""
    return [_h6(ip) for ip in sorted({i.ip6 for hv in rack.hypervisors if hv.address6 is not None
                                      for i in hv.instances if i.ip6 is not None})]


def _groups(pol):
    return {g.name: g for g in pol.groups}


def _hypervisor(fab, host, pol):
    own = pol.plist6("OCS6-OWN", owned6(host) + origin6(host))
    accept = pol.plist6("OCS6-FROM-TOR", ["::/0"] + ["%s le 128" % r.text for r in fab.internal_ranges6])
    group = _groups(pol).get("TOR")
    if group is not None:
        group.rmap_in6, group.rmap_out6 = pol.rmap6("OCS6-IN-TOR", accept), pol.rmap6("OCS6-OUT-TOR", own)
    pol.networks6 = pol.prefix_lists6[own]


def _tor(fab, host, pol):
    rack = host.rack
    nets = pol.plist6("OCS6-RACK-NETS", rack_nets6(rack))
    hosts = pol.plist6("OCS6-RACK-HOSTS", rack_hosts6(rack))
    inst = pol.plist6("OCS6-RACK-INSTANCES", rack_instances6(rack))
    fabric = pol.plist6("OCS6-FABRIC", fabric6(fab))
    infra = pol.plist6("OCS6-INFRA", infra6(fab))
    groups = _groups(pol)
    groups["SPINE"].rmap_in6 = pol.rmap6("OCS6-IN-SPINE", fabric, infra)
    groups["SPINE"].rmap_out6 = pol.rmap6("OCS6-OUT-SPINE", nets, hosts, inst)
    pol.networks6 = origin6(host)
    pol.aggregates6 = pol.prefix_lists6[nets]
    if fab.routing_mode == "static":
        kernel = pol.plist6("OCS6-RACK-KERNEL", rack_kernel6(rack))
        pol.redistribute6.append("redistribute kernel route-map %s" % pol.rmap6("OCS6-IN-KERNEL", kernel))
        return
    relay = pol.plist6("OCS6-TO-HV", fabric6(fab) + infra6(fab))
    groups["HV"].rmap_out6 = pol.rmap6("OCS6-OUT-HV", relay)
    by_host = {hv.name: hv for hv in rack.hypervisors}
    for n in pol.neighbors:
        if n.group == "HV":
            hv = by_host[n.host]
            own = pol.plist6("OCS6-HV-%s" % hv.name, owned6(hv) + origin6(hv))
            n.rmap_in6 = pol.rmap6("OCS6-IN-HV-%s" % hv.name, own)


def _spine(fab, host, pol):
    fabric = pol.plist6("OCS6-FABRIC", fabric6(fab))
    infra = pol.plist6("OCS6-INFRA", infra6(fab))
    racks = pol.plist6("OCS6-RACKS", rack_subnets6(fab))
    groups = _groups(pol)
    groups["TOR"].rmap_out6 = pol.rmap6("OCS6-OUT-FABRIC", fabric, infra)
    if "GW" in groups:
        groups["GW"].rmap_out6 = pol.rmap6("OCS6-OUT-GW", racks, infra)
    rmaps = {}
    for rack in sorted(fab.racks.values(), key=lambda r: r.id):
        rmaps[rack.id] = pol.rmap6(
            "OCS6-IN-RACK-%s" % rack.id, pol.plist6("OCS6-RACK-%s-NETS" % rack.id, rack_nets6(rack)),
            pol.plist6("OCS6-RACK-%s-HOSTS" % rack.id, rack_hosts6(rack)),
            pol.plist6("OCS6-RACK-%s-INSTANCES" % rack.id, rack_instances6(rack)))
    for n in pol.neighbors:
        other = fab.hosts.get(n.host) if n.host else None
        if n.group == "TOR" and other is not None:
            n.rmap_in6 = rmaps[other.rack.id]
        elif n.group == "GW" and other is not None:
            n.rmap_in6 = pol.rmap6("OCS6-IN-GW-%s" % other.name, pol.plist6("OCS6-GW-%s" % other.name, origin6(other)))
    _border6(fab, host, pol, racks)
    pol.networks6 = origin6(host)
    pol.statics6 = ["ipv6 route %s reject %d" % (r.text, REJECT_DISTANCE) for r in fab.internal_ranges6]


def _border6(fab, host, pol, racks):
    """The IPv6 border sessions of a spine: each border peer with an ``address6`` on one of its
    border links' IPv6 networks (validated), in peer-group BORDER6 (IPv6 only), with that peer's
    session settings."""
    peers = sorted((ip6, asn, ip) for ip6, asn, ip, dummy in fab.border_peers6
                   if any(up.net6 is not None and ip6 in up.net6 for up in host.uplinks))
    if not peers or fab.nat_mode != "host":
        return
    group = _frr.Group("BORDER6", None, None, fabric=False)
    group.rmap_in6 = pol.rmap6("OCS6-IN-BORDER", pol.plist6("OCS6-DEFAULT", ["::/0"]))
    group.rmap_out6 = pol.rmap6("OCS6-OUT-BORDER", racks)
    pol.groups.append(group)
    border = [_frr.Neighbor(ntoa6(ip6), False, asn, "BORDER6", session=_frr.border_session(fab, ip))
              for ip6, asn, ip in peers]
    _frr._border_multipath(pol, border)
    pol.neighbors += border


def _gateway(fab, host, pol):
    own = pol.plist6("OCS6-OWN", origin6(host))
    racks = pol.plist6("OCS6-RACKS", rack_subnets6(fab))
    infra = pol.plist6("OCS6-INFRA", infra6(fab))
    group = _groups(pol).get("SPINE")
    if group is not None:
        group.rmap_in6 = pol.rmap6("OCS6-IN-SPINE", racks, infra)
        group.rmap_out6 = pol.rmap6("OCS6-OUT-SPINE", own)
    pol.networks6 = origin6(host)
    pol.statics6 = ["ipv6 route %s reject %d" % (r.text, REJECT_DISTANCE) for r in fab.internal_ranges6]


def add(fab, host, pol):
    """Add the IPv6 family to the IPv4 policy ``pol`` of ``host`` (a dual-stack fabric)."""
    if host.role == "hypervisor":
        if fab.routing_mode == "bgp":
            _hypervisor(fab, host, pol)
    else:
        {"tor": _tor, "spine": _spine, "nat_gateway": _gateway}[host.role](fab, host, pol)


def compact6(entries):
    """The entries of an IPv6 prefix-list with its /128s merged into aligned blocks (``B ge 128``),
    as frr.compact does for IPv4; other entries keep their order, first."""
    hosts, other = [], []
    for e in entries:
        (hosts if e.endswith("/128") else other).append(e)
    return other + compact_hosts6([from_ntoa6(e[:-4]) for e in hosts])
