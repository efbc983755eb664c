"""IPv6 across the fabric and to the edge (issue 21) on the dual-stack container fabric: every
fabric session carries the IPv6 family, spine1 has an IPv6 session with ext on its border link
(ocs_fabric.border_peers[0].address6), ext has an IPv6 "internet" address on lo.

- instances on other hypervisors and in the other rack reach each other over IPv6 (ping6, TCP),
  with their own sources;
- every IPv6 instance reaches ext's IPv6 address (ping6, TCP, seen with its own address: no NAT);
  ext opens TCP to exactly the instances the inbound policy opens (a floating IP), and not to the
  others (the control that the policy holds), while its pings reach every one;
- the spine holds each rack's IPv6 subnet, no instance /128 of a one-ToR rack (a two-ToR rack's, as
  for IPv4); ext receives exactly the racks'
  IPv6 subnets from the spine (ext accepts everything, so what it holds is what the spine sends);
- a packet from ext forging an instance's source never reaches an instance (spine1's
  ``ocs-edge-spoof`` counts it), the same packet with ext's own source arrives;
- each ToR's and hypervisor's IPv6 routes (protocol 211) are exactly its route file's, and its
  ocs_address6 is on its rack links: in routing_mode static the ToR's /128s via each hypervisor's
  ocs_address6 and the hypervisor's default via its ToRs', on-link.

Round 4 runs this file again in nat_mode gateway and routing_mode static: there the border has no
IPv6 session (docs/ipv6.md), so the border's tests are skipped, and the hypervisors run no BGP."""

import ipaddress

import pytest

from fabric import (ECHO_PORT, EXT, EXT_PUBLIC6, EXT_VARS, FAB, INSTANCES, arrived6, count6, in_ns, ip6, json_of, ping, run,
                    wait_for, wait_for_dhcpv6)
from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa, ntoa6
from ansible_collections.ocs.l3.plugins.module_utils.firewall import open_inbound6
from ansible_collections.ocs.l3.plugins.module_utils.route_table import canonical_route
from ansible_collections.ocs.l3.plugins.module_utils.routes import host_lines
from ansible_collections.ocs.l3.plugins.module_utils.constants import ROUTE_PROTOCOL

V6 = [i for i in INSTANCES if i.ip6 is not None]
SPINE = FAB.by_role["spine"][0].name
SPINE_PEER6 = next(link["peer6"] for link in EXT_VARS["ocs_test_ext_links"] if link["host"] == SPINE)
RACKS = sorted({hv.rack.id: hv.rack for hv in FAB.by_role["hypervisor"]}.items())
RACK_SUBNETS6 = sorted(n.text for dummy, rack in RACKS for n in rack.instance_subnets6)
COUNT_PORT = 7003  # the target counts UDP to this port in its raw PREROUTING (before any filter)
BORDER6 = bool(FAB.border_peers6)
needs_border6 = pytest.mark.skipif(not BORDER6, reason="no IPv6 border session here (nat_mode gateway: docs/ipv6.md)")
BGP_NODES = [h for h in FAB.hosts.values() if h.uplinks and not (h.role == "hypervisor" and FAB.routing_mode == "static")]


def _pairs():
    """For each IPv6 instance: one on another hypervisor of its rack and one in another rack."""
    out = []
    for a in V6:
        same = [b for b in V6 if b.hypervisor.rack is a.hypervisor.rack and b.hypervisor is not a.hypervisor]
        other = [b for b in V6 if b.hypervisor.rack is not a.hypervisor.rack]
        out += [(a, b[0]) for b in (same, other) if b]
    return out


PAIRS = _pairs()


def routes6(host, extra=""):
    """{destination (with /128 spelled out): route} of ``host``'s IPv6 routes ``extra`` selects."""
    out = {}
    for r in json_of(host, "ip -6 -j route show %s" % extra):
        dst = r["dst"] if "/" in r["dst"] or r["dst"] == "default" else r["dst"] + "/128"
        out[dst] = r
    return out


@pytest.fixture(scope="module")
def ready(leases):
    """The IPv6 instances hold their addresses, the border session is up and carries the racks."""
    wait_for_dhcpv6(V6)
    wait_for("the racks' IPv6 subnets at %s" % SPINE, lambda: set(RACK_SUBNETS6) <= set(routes6(SPINE, "proto bgp")),
             90)
    if BORDER6:
        wait_for("ext's IPv6 session with %s" % SPINE, lambda: json_of(
            EXT, "vtysh -c 'show bgp neighbors %s json'" % SPINE_PEER6)[SPINE_PEER6]["bgpState"]
            == "Established", 90)
        wait_for("the racks' IPv6 subnets at ext", lambda: set(RACK_SUBNETS6) <= set(routes6(EXT, "proto bgp")), 60)
    return True


def test_the_fabric_has_what_these_tests_need():
    assert EXT_PUBLIC6 and len(RACK_SUBNETS6) >= 2 and PAIRS
    assert any(open_inbound6(FAB, i) for i in V6) and any(not open_inbound6(FAB, i) for i in V6)


@pytest.mark.parametrize("node", BGP_NODES, ids=lambda h: h.name)
def test_every_fabric_session_carries_ipv6_and_the_spine_has_its_border6_session(ready, node):
    """The IPv6 family on each of the node's IPv4 fabric sessions (not on the IPv4 border session),
    and on a spine the IPv6 border session of each border peer with an address6; all Established."""
    v4 = json_of(node.name, "vtysh -c 'show bgp ipv4 unicast summary json'").get("peers", {})
    v6 = json_of(node.name, "vtysh -c 'show bgp ipv6 unicast summary json'").get("peers", {})
    border4 = {ntoa(address) for address, dummy in FAB.border_peers}
    border6 = {ntoa6(peer[0]) for peer in FAB.border_peers6} if node.role == "spine" else set()
    assert sorted(v6) == sorted((set(v4) - border4) | border6), (node.name, sorted(v4), sorted(v6))
    down = {p: v.get("state") for p, v in v6.items() if v.get("state") != "Established"}
    assert not down, (node.name, down)


def test_the_spine_holds_the_racks_ipv6_subnets_and_an_instance_128_only_from_a_two_tor_rack(ready):
    """Each rack's IPv6 subnet; an instance /128 of a one-ToR rack never; of a two-ToR rack each
    IPv6 instance's /128, as for IPv4 (the spine follows an instance to the ToR that still reaches
    it: test_routes.py), and nothing else inside a rack subnet."""
    held = routes6(SPINE, "proto bgp")
    assert set(RACK_SUBNETS6) <= set(held), sorted(held)
    inside = sorted(d for d in held if d.endswith("/128") and
                    any(ipaddress.ip_address(d[:-4]) in ipaddress.ip_network(n) for n in RACK_SUBNETS6))
    want = sorted("%s/128" % ip6(i) for i in V6 if len(i.hypervisor.rack.tors) > 1)
    assert inside == want, "instance /128s on the spine: %s, expected %s" % (inside, want)
    assert any(len(rack.tors) == 1 and rack.instance_subnets6 for dummy, rack in RACKS)  # the "never" case exists


@needs_border6
def test_the_border_receives_exactly_the_racks_ipv6_subnets(ready):
    got = json_of(EXT, "vtysh -c 'show bgp ipv6 unicast neighbors %s routes json'" % SPINE_PEER6)
    assert sorted(got["routes"]) == RACK_SUBNETS6, sorted(got["routes"])


@pytest.mark.parametrize("a, b", PAIRS, ids=lambda i: i.name)
def test_ping6_and_tcp_across_hypervisors_and_racks(ready, a, b):
    ok, out = ping(None, ip6(b), inst=a)
    assert ok, out
    res = in_ns(a, "/usr/local/bin/ocs-probe ask %s %d --peer" % (ip6(b), ECHO_PORT))
    assert res.rc == 0, res.stderr
    # the probe answers with the source it saw: the sender's own address
    assert ip6(a) in res.stdout and res.stdout.split()[-1] == ip6(b), res.stdout


@needs_border6
@pytest.mark.parametrize("inst", V6, ids=lambda i: i.name)
def test_ipv6_to_ext_and_from_ext_as_the_inbound_policy_says(ready, inst):
    ok, out = ping(None, EXT_PUBLIC6, inst=inst)
    assert ok, out
    res = in_ns(inst, "/usr/local/bin/ocs-probe ask %s %d" % (EXT_PUBLIC6, ECHO_PORT))
    assert res.rc == 0 and res.stdout.strip() == ip6(inst), (res.stdout, res.stderr)  # no NAT for IPv6
    ok, out = ping(EXT, ip6(inst), source=EXT_PUBLIC6)  # echo requests always pass
    assert ok, out
    res = run(EXT, "/usr/local/bin/ocs-probe ask %s %d %s" % (ip6(inst), ECHO_PORT, EXT_PUBLIC6))
    if open_inbound6(FAB, inst):
        assert res.rc == 0 and res.stdout.strip() == EXT_PUBLIC6, (res.stdout, res.stderr)
    else:
        assert res.rc != 0, "ext opened a TCP flow to %s, whose inbound IPv6 is closed: %s" % (inst.name, res.stdout)


@needs_border6
def test_a_forged_instance_source_from_ext_never_reaches_an_instance(ready):
    target = next(i for i in V6 if open_inbound6(FAB, i))
    forged = next(i for i in V6 if i is not target)
    rule = "PREROUTING -p udp --dport %d -m comment --comment ocs-test-arrived-ext" % COUNT_PORT

    def arrived():
        return arrived6(target, COUNT_PORT, "ocs-test-arrived-ext")

    assert in_ns(target, "ip6tables -t raw -A %s" % rule).rc == 0
    added = run(EXT, "ip -6 address add %s/128 dev lo nodad" % ip6(forged))
    assert added.rc == 0, added.stderr
    try:
        before, dropped = arrived(), count6(SPINE, "ocs-edge-spoof", "raw")
        for source in (ip6(forged), EXT_PUBLIC6):
            run(EXT, "/usr/local/bin/ocs-probe ask %s %d %s --udp --no-reply" % (ip6(target), COUNT_PORT, source))
        wait_for("the control (ext's own source) at %s" % target.name, lambda: arrived() == before + 1, 10)
        assert count6(SPINE, "ocs-edge-spoof", "raw") >= dropped + 1
        assert arrived() == before + 1  # the forged one never came
    finally:
        run(EXT, "ip -6 address del %s/128 dev lo" % ip6(forged))
        in_ns(target, "ip6tables -t raw -D %s" % rule)


@pytest.mark.parametrize("node", [h for h in FAB.hosts.values() if h.role in ("tor", "hypervisor")],
                         ids=lambda h: h.name)
def test_each_hosts_ipv6_routes_are_its_route_files_and_its_address6_is_on_its_rack_links(ready, node):
    """The kernel's IPv6 routes of protocol 211, read back as the module does, are exactly the IPv6
    route lines the model renders for the host (in routing_mode static: a ToR's instance /128s via
    each hypervisor's ocs_address6 and a hypervisor's default via its ToRs', on-link); the host's
    ocs_address6 is on each link its file names."""
    lines = host_lines(FAB, node)
    want = sorted(ln for ln in lines if ln.startswith("route ") and ":" in ln)
    have = sorted(canonical_route(dict(e, family="inet6"), ROUTE_PROTOCOL)
                  for e in json_of(node.name, "ip -6 -j route show proto %d" % ROUTE_PROTOCOL))
    assert have == want, (node.name, have, want)
    if FAB.routing_mode == "static":
        assert any(" onlink" in ln for ln in want), (node.name, want)  # what this round is for
    for ln in lines:
        if ln.startswith("address ") and node.address6 is not None and ntoa6(node.address6) in ln:
            dev = ln.split()[4]
            held = {a["local"] for link in json_of(node.name, "ip -6 -j addr show dev %s" % dev)
                    for a in link.get("addr_info", [])}
            assert ntoa6(node.address6) in held, (node.name, dev, held)
