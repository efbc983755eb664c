"""The NAT tier (nat_mode gateway) under ECMP, with real flows from `ext`.

The scenario's inventory is in host mode, so verify skips these;
side_effect.yml converges the fabric in gateway mode and runs the tests that
depend on the modes again (OCS_TEST_INVENTORY), these included. ext spreads its flows over
both gateways and the spine spreads the replies over both (ECMP hashed on
ports: molecule.yml), so a flow's request and reply often cross different
gateways: only stateless translation lets every flow complete.
"""

import json
import time

import pytest

import fabric
from fabric import EXT, EXT_PUBLIC, FAB, INSTANCES, ip, json_of, run, wait_for

pytestmark = pytest.mark.skipif(FAB.nat_mode != "gateway",
                                reason="nat_mode host here: side_effect.yml runs this in gateway mode")

GATEWAYS = sorted(FAB.by_role["nat_gateway"], key=lambda h: h.name)
FLOATING = sorted(ip(i.floating_ip) for i in INSTANCES if i.floating_ip is not None)
SPINE = FAB.by_role["spine"][0].name


def _counters(gw):
    """{rule comment: packets} of the gateway's stateless chain."""
    data = json_of(gw.name, "nft -j list chain ip ocs_natgw raw_prerouting")
    out = {}
    for item in data.get("nftables", []):
        rule = item.get("rule")
        if rule and rule.get("comment"):
            out[rule["comment"]] = sum(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
    return out


def _flows(seconds, per_target):
    """Parallel TCP flows from ext's public address to every floating IP."""
    targets = FLOATING * per_target
    res = run(EXT, "/usr/local/bin/ocs-probe flows %s %s %d %s"
              % (seconds, EXT_PUBLIC, fabric.ECHO_PORT, " ".join(targets)))
    assert res.rc == 0, res.stderr
    return len(targets), json.loads(res.stdout)


def _hops(name, prefix):
    routes = json_of(name, "ip -4 -j route show exact %s" % prefix)
    hops = set()
    for r in routes:
        hops.update(h["gateway"] for h in r.get("nexthops", []) if "gateway" in h)
        if "gateway" in r:
            hops.add(r["gateway"])
    return hops


def _edge_paths():
    """(spine's default, ext's route to the floating range): the gateways in each."""
    return _hops(SPINE, "default"), _hops(EXT, FAB.floating_ranges[0].text)


def _expected(gateways):
    """What _edge_paths() shows with ``gateways`` up: their addresses on their
    links to the spine, and on their own links to ext (the border)."""
    border = {peer for peer, dummy in FAB.border_peers}
    spine = {ip(u.address) for g in gateways for u in g.uplinks if u.peer_host == SPINE}
    edge = {ip(u.address) for g in gateways for u in g.uplinks if u.peer in border}
    return spine, edge


def test_both_gateways_are_ecmp_paths():
    want = _expected(GATEWAYS)
    assert all(len(side) == len(GATEWAYS) for side in want), want
    wait_for("both gateways in the spine's default and ext's floating route", lambda: _edge_paths() == want)


def test_parallel_flows_complete_through_both_gateways(leases):
    before = {g.name: _counters(g) for g in GATEWAYS}
    n, out = _flows(1, 6)
    assert n >= 20
    assert not out["failed"], "flows failed: %s" % out["failed"]
    assert len(out["ok"]) == n
    # Each instance saw ext's own address: inbound is never source-NATed.
    assert {seen for _, seen in out["ok"]} == {EXT_PUBLIC}, out["ok"]
    # Both gateways translated both ways: the flows really were spread.
    for g in GATEWAYS:
        after = _counters(g)
        for comment in ("inbound", "outbound"):
            assert after[comment] > before[g.name][comment], (g.name, comment, before[g.name], after)


def test_flows_survive_a_gateway_going_down(leases):
    """One gateway dies (its link goes down): flows that were open, some
    through it, complete through the other once the edge withdraws its
    routes (hold time 9 s), and new flows work; then it comes back."""
    dead = GATEWAYS[0]
    gws = _expected(GATEWAYS)
    alive = _expected([g for g in GATEWAYS if g is not dead])
    wait_for("both gateways in use", lambda: _edge_paths() == gws)
    unit = "ocs-test-long-flows"
    run(EXT, "systemctl reset-failed %s 2>/dev/null; rm -f /run/%s.json" % (unit, unit))
    start = run(EXT, "systemd-run --unit=%s --collect /bin/sh -c '/usr/local/bin/ocs-probe flows 20 %s %d %s "
                     ">/run/%s.json'" % (unit, EXT_PUBLIC, fabric.ECHO_PORT, " ".join(FLOATING * 2), unit))
    assert start.rc == 0, start.stderr
    time.sleep(2)
    down = " && ".join("ip link set dev %s down" % up.interface for up in dead.uplinks)
    try:
        assert run(dead.name, down).rc == 0
        wait_for("the edge to route around %s" % dead.name, lambda: _edge_paths() == alive)
        n, out = _flows(1, 6)
        assert not out["failed"] and len(out["ok"]) == n, "new flows failed: %s" % out["failed"]
        wait_for("the long flows to end", lambda: run(EXT, "systemctl is-active --quiet %s" % unit).rc != 0, 90)
        res = run(EXT, "cat /run/%s.json" % unit)
        assert res.rc == 0, res.stderr
        long_flows = json.loads(res.stdout)
        assert not long_flows["failed"], "open flows broke: %s" % long_flows["failed"]
        assert len(long_flows["ok"]) == 2 * len(FLOATING)
    finally:
        run(dead.name, down.replace(" down", " up"))
    wait_for("%s back in the spine's default and ext's route" % dead.name, lambda: _edge_paths() == gws, 90)
