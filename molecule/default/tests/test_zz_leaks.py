"""Runs last (file order): after all the traffic above, no packet with an
internal source reached the internet (ext's OCS-LEAK chain, prepare.yml)."""

import fabric
from fabric import EXT, FAB, INSTANCES, in_ns, json_of, run
from ansible_collections.ocs.l3.plugins.module_utils.announce import fabric_space

EDGE_TIERS = sorted(FAB.by_role["spine"] + FAB.by_role["nat_gateway"], key=lambda h: h.name)


def _unassigned():
    """The last host address of an internal range outside everything the fabric owns."""
    for net in reversed(fabric.INTERNAL):
        address = str(net[-2])
        if not fabric.covered(address, fabric_space(FAB)):
            return address
    raise AssertionError("no unassigned internal address in %s" % fabric.INTERNAL)


def test_unassigned_internal_addresses_never_take_the_default(leases):
    """Spines and gateways hold the border's default: an internal address that
    nothing serves is refused there (FRR's reject route), never sent to the
    internet with an internal source. The packets are sent here, before
    test_no_internal_source_reached_ext reads ext's counters; the control is a
    public address, which does take the default."""
    target = _unassigned()
    for host in EDGE_TIERS:
        res = run(host.name, "ip -4 route get %s" % target)
        assert res.rc != 0 and "No route to host" in res.stderr, (host.name, res.stdout, res.stderr)
        control = run(host.name, "ip -4 route get %s" % fabric.EXT_PUBLIC)
        assert control.rc == 0 and " via " in control.stdout, (host.name, control.stdout, control.stderr)
    inst = INSTANCES[0]
    res = in_ns(inst, "ping -n -c 2 -i 0.2 -W 1 %s" % target)
    assert res.rc != 0 and " 0 received" in res.stdout, res.stdout
    for host in EDGE_TIERS:
        assert run(host.name, "ping -n -c 1 -W 1 %s" % target).rc != 0, host.name


def test_no_internal_source_reached_ext():
    res = run(EXT, "iptables -t raw -L OCS-LEAK -n -v -x")
    assert res.rc == 0, res.stderr
    drops = [line.split() for line in res.stdout.splitlines() if " DROP " in " %s " % line]
    assert len(drops) == len(fabric.INTERNAL), res.stdout
    assert all(d[0] == "0" for d in drops), "packets with internal sources reached ext:\n" + res.stdout


def test_ext_routes_only_public_ranges():
    """ext, the internet, has no route into the internal ranges (besides its links)."""
    routes = [r["dst"] for r in json_of(EXT, "ip -4 -j route show")]
    links = [link["net"] for link in fabric.EXT_VARS["ocs_test_ext_links"]]
    bad = [d for d in routes if d not in links and d != "default"
           and any(fabric.covered(d.split("/")[0], [str(n)]) for n in fabric.INTERNAL)]
    assert not bad and "default" not in routes, routes
