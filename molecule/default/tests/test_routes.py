"""Route tables in the kernels: what each tier holds (and does not)."""

import ipaddress

import pytest

import fabric
from fabric import FAB, HYPERVISORS, INSTANCES, TORS, ip, json_of

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
    assert (ip(inst.gateway), inst.subnet.prefixlen) in have
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
    """Every instance /32 of the rack via its hypervisor; the dual-homed
    hypervisor's via both of its links (ECMP)."""
    table = fabric.rack_routes(tor.rack)
    for prefix, hops in sorted(table.items()):
        if hops == ["blackhole"]:
            continue
        routes = json_of(tor.name, "ip -4 -j route show exact %s" % prefix)
        assert len(routes) == 1 and _hops(routes[0]) == sorted(hops), (tor.name, prefix, routes)


@FRR
def test_spine_holds_rack_subnets_and_no_instance_route():
    for spine in FAB.by_role["spine"]:
        routes = json_of(spine.name, "ip -4 -j route show")
        dsts = {r["dst"]: r for r in routes}
        for tor in TORS:
            for net in tor.rack.instance_subnets:
                assert net.text in dsts, (spine.name, net.text)
                up = [ip(u.address) for u in tor.uplinks]
                assert set(_hops(dsts[net.text])) <= set(up), (spine.name, net.text, dsts[net.text])
        fixed = {ip(i.ip) for i in INSTANCES}
        leaked = [d for d in dsts if d.endswith("/32") and d[:-3] in fixed] + [d for d in dsts if d in fixed]
        assert not leaked, "%s holds instance /32s %s" % (spine.name, leaked)


@FRR
def test_dual_homed_hypervisor_uses_both_uplinks():
    for hv in HYPERVISORS:
        peers = sorted(ip(u.peer) for u in hv.uplinks if u.peer is not None)
        if len(peers) < 2:
            continue
        routes = json_of(hv.name, "ip -4 -j route show default")
        assert len(routes) == 1 and _hops(routes[0]) == peers, (hv.name, routes)


@FRR
@pytest.mark.parametrize("node", [h for h in FAB.hosts.values() if h.uplinks], ids=lambda h: h.name)
def test_bgp_sessions_established(node):
    data = json_of(node.name, "vtysh -c 'show bgp ipv4 unicast summary json'")
    peers = data.get("peers", {})
    for up in node.uplinks:
        if up.peer is None:
            continue
        assert peers.get(ip(up.peer), {}).get("state") == "Established", (node.name, ip(up.peer), peers)


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
