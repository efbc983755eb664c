"""Route tables in the kernels: what each tier holds (and does not)."""

import ipaddress

import pytest

import fabric
from fabric import FAB, HYPERVISORS, INSTANCES, TORS, ip, json_of, wait_for
from ansible_collections.ocs.l3.plugins.module_utils.frr import POLICIES

FRR = fabric.LANDED


def _hops(route):
    if "nexthops" in route:
        return sorted(h["gateway"] for h in route["nexthops"])
    return [route["gateway"]] if "gateway" in route else []


@pytest.mark.parametrize("inst", INSTANCES, ids=lambda i: i.name)
def test_hypervisor_routes_instance_on_its_tap(inst):
    hv = inst.hypervisor.name
    want = ["%s/32" % ip(inst.ip)] + (["%s/32" % ip(inst.floating_ip)]
                                      if inst.floating_ip is not None and FAB.nat_mode == "host" else [])
    for dst in want:
        routes = json_of(hv, "ip -4 -j route show exact %s" % dst)
        assert [(r.get("dev"), r.get("scope")) for r in routes] == [(inst.interface, "link")], (hv, dst, routes)
    addrs = json_of(hv, "ip -4 -j addr show dev %s" % inst.interface)
    have = {(a["local"], a["prefixlen"]) for d in addrs for a in d.get("addr_info", [])}
    assert (ip(inst.gateway_ip), inst.subnet.prefixlen) in have
    # noprefixroute: the tap carries no subnet route (instances are /32s).
    assert not json_of(hv, "ip -4 -j route show exact %s dev %s" % (inst.subnet.text, inst.interface))


@pytest.mark.parametrize("tor", TORS, ids=lambda h: h.name)
def test_tor_blackholes_rack_subnets(tor):
    for net in tor.rack.instance_subnets:
        routes = json_of(tor.name, "ip -4 -j route show exact %s" % net.text)
        assert routes and routes[0].get("type") == "blackhole", (net.text, routes)


@FRR
@pytest.mark.parametrize("tor", TORS, ids=lambda h: h.name)
def test_tor_holds_rack_instance_routes(tor):
    """Every instance /32 of the rack via its hypervisor's link(s) to this ToR
    (ECMP for a hypervisor with two links to it). Learned by BGP, or in
    routing_mode static a route of the ToR's table (protocol ocs), and only
    that one (the other mode's route is gone)."""
    table = fabric.rack_routes(tor.rack, tor)
    proto = "bgp" if FAB.routing_mode == "bgp" else "ocs"
    for prefix, hops in sorted(table.items()):
        if hops == ["blackhole"]:
            continue
        routes = json_of(tor.name, "ip -4 -j route show exact %s" % prefix)
        assert len(routes) == 1 and _hops(routes[0]) == sorted(hops), (tor.name, prefix, routes)
        assert routes[0].get("protocol") == proto, (tor.name, prefix, routes)


@FRR
def test_spine_holds_rack_subnets_and_no_instance_route():
    """Each rack's instance subnets via every ToR of the rack (ECMP). Instance
    /32s only from racks with two or more ToRs (then via the rack's ToRs:
    frr.rack_instances), never from a rack with one."""
    for spine in FAB.by_role["spine"]:
        routes = json_of(spine.name, "ip -4 -j route show")
        dsts = {r["dst"]: r for r in routes}
        for rack in FAB.racks.values():
            up = sorted(ip(u.address) for t in rack.tors for u in t.uplinks if u.peer_host == spine.name)
            for net in rack.instance_subnets:
                assert net.text in dsts, (spine.name, net.text)
                assert _hops(dsts[net.text]) == up, (spine.name, net.text, dsts[net.text])
            for inst in (i for hv in rack.hypervisors for i in hv.instances):
                route = dsts.get(ip(inst.ip)) or dsts.get(ip(inst.ip) + "/32")
                if len(rack.tors) < 2:
                    assert route is None, "%s holds the instance /32 of %s" % (spine.name, inst.name)
                else:
                    assert route is not None and set(_hops(route)) <= set(up), (spine.name, inst.name, route)


@FRR
def test_dual_homed_hypervisor_uses_both_uplinks():
    for hv in HYPERVISORS:
        peers = sorted(ip(u.peer) for u in hv.uplinks if u.peer is not None)
        if len(peers) < 2:
            continue
        routes = json_of(hv.name, "ip -4 -j route show default")
        assert len(routes) == 1 and _hops(routes[0]) == peers, (hv.name, routes)


def _sessions(node):
    """The BGP sessions the model gives this host (by peer address or interface)."""
    return sorted(n.key for n in POLICIES[node.role](FAB, node).neighbors)


@FRR
@pytest.mark.parametrize("node", [h for h in FAB.hosts.values() if h.uplinks], ids=lambda h: h.name)
def test_bgp_sessions_established(node):
    """Exactly the sessions of the modes the inventory sets (no BGP on
    hypervisors in routing_mode static; the border on the spines in nat_mode
    host, on the NAT gateways in gateway mode), each Established."""
    data = json_of(node.name, "vtysh -c 'show bgp ipv4 unicast summary json'")
    peers = data.get("peers", {})
    assert sorted(peers) == _sessions(node), (node.name, sorted(peers))
    down = {p: v.get("state") for p, v in peers.items() if v.get("state") != "Established"}
    assert not down, (node.name, down)


@FRR
def test_ext_learns_floating_and_public_addresses_by_bgp():
    bgp = [r["dst"] for r in json_of(fabric.EXT, "ip -4 -j route show proto bgp")]
    want = [ip(i.floating_ip) for i in INSTANCES if i.floating_ip is not None]
    want += [ip(h.public_address) for h in FAB.hosts.values() if h.public_address is not None]
    missing = [a for a in want if not fabric.covered(a, [d if "/" in d else d + "/32" for d in bgp])]
    assert not missing, "ext has no BGP route to %s (BGP routes: %s)" % (missing, bgp)
    internal = [d for d in bgp if any(ipaddress.ip_network(d if "/" in d else d + "/32").overlaps(n)
                                      for n in fabric.INTERNAL)]
    assert not internal, "ext learned internal prefixes %s" % internal


DUAL = [h for h in HYPERVISORS if len([u for u in h.uplinks if u.peer is not None]) > 1]


@FRR
@pytest.mark.skipif(FAB.routing_mode != "bgp", reason="routing_mode static: static routes do not see a dead link")
@pytest.mark.parametrize("hv", DUAL, ids=lambda h: h.name)
def test_dual_homed_hypervisor_survives_an_uplink_down(hv, leases):
    """One uplink of a hypervisor with two goes down (in rack r01 each goes
    to another ToR): once BGP has withdrawn that path (at once on the
    hypervisor, within the 9 s hold time on the far ToR), its instances are
    reachable over the other link, from another rack and from ext (the
    spines follow the instance /32s to the ToR that still reaches it); then
    the link comes back and its session is Established again and the far
    ToR routes the instances again. (Not checked: the kernel's nexthop
    groups regaining both nexthops after the flap, see the README.)"""
    keep, lose = hv.uplinks[0], hv.uplinks[1]
    far = lose.peer_host
    mine = [i for i in INSTANCES if i.hypervisor.name == hv.name]

    def routed_at(tor, link):
        return all([_hops(r) for r in json_of(tor, "ip -4 -j route show exact %s/32" % ip(i.ip))] == [[ip(link.address)]]
                   for i in mine)

    def around():
        return ([_hops(r) for r in json_of(hv.name, "ip -4 -j route show default")] == [[ip(keep.peer)]]
                and all(not json_of(far, "ip -4 -j route show exact %s/32" % ip(i.ip)) for i in mine)
                if far != keep.peer_host else routed_at(far, keep))

    def back():
        peers = json_of(hv.name, "vtysh -c 'show bgp ipv4 unicast summary json'").get("peers", {})
        if peers.get(ip(lose.peer), {}).get("state") != "Established":
            return False
        if far != keep.peer_host:
            return routed_at(far, lose) and routed_at(keep.peer_host, keep)
        both = sorted([ip(keep.address), ip(lose.address)])
        return all(_hops(r) == both for i in mine for r in json_of(far, "ip -4 -j route show exact %s/32" % ip(i.ip)))

    wait_for("both sessions and both paths before the test", back)
    try:
        assert fabric.run(hv.name, "ip link set dev %s down" % lose.interface).rc == 0
        wait_for("BGP to route around %s" % lose.interface, around)
        other = next(i for i in INSTANCES if i.hypervisor.rack.id != hv.rack.id)
        for inst in mine:
            for attempt in range(4):  # several flows: ECMP at the spine must not pick the far ToR
                ok, out = fabric.ping(None, ip(inst.ip), inst=other)
                assert ok, out
            rc, seen = fabric.echo(None, ip(inst.ip), inst=other)
            assert rc == 0 and seen == ip(other.ip), seen
            if inst.floating_ip is not None:
                rc, seen = fabric.echo(fabric.EXT, ip(inst.floating_ip), source=fabric.EXT_PUBLIC)
                assert rc == 0 and seen == fabric.EXT_PUBLIC, seen
    finally:
        fabric.run(hv.name, "ip link set dev %s up" % lose.interface)
    wait_for("the session and the far ToR's route back", back, 90)
