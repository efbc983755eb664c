"""Topology truth (issue 15) on point-to-point links, with real packets.

No link above the racks is shared (molecule.yml), so a prefix nobody
announces has no connected route to hide behind:

- every rack's instance and host subnets reach the spine from each of the
  rack's ToRs (r01 has two: ECMP);
- hypervisors reach hypervisors of the other rack, and the spine's loopback
  (the metadata target and DNS server), through the fabric: with the
  border's default withdrawn (the control: the internet is unreachable
  then, so the default really is gone);
- the border cannot forge the source of an instance: a datagram from ext
  with an instance's fixed IP as its source, sent to a floating IP, never
  reaches the instance and is counted at the spine's edge, while the same
  datagram from ext's own address arrives (the positive control).
"""

import shlex
import time

import pytest

import fabric
from fabric import EXT, EXT_PUBLIC, FAB, INSTANCES, echo, in_ns, ip, json_of, ping, run, wait_for

BASE_MODES = FAB.nat_mode == "host" and FAB.routing_mode == "bgp"
pytestmark = pytest.mark.skipif(not BASE_MODES, reason="the base modes (nat_mode host, routing_mode bgp) only")

SPINE = FAB.by_role["spine"][0]
SPINE_LINK = next(link for link in fabric.EXT_VARS["ocs_test_ext_links"] if link["host"] == SPINE.name)
EXT_ASN = fabric.EXT_VARS["ocs_test_ext_asn"]
PROBE_PORT = 7999  # UDP, nothing listens: counted by a rule in the instance's namespace


def _hops(route):
    if "nexthops" in route:
        return sorted(h["gateway"] for h in route["nexthops"])
    return [route["gateway"]] if "gateway" in route else []


def _route(name, dst):
    routes = json_of(name, "ip -4 -j route show exact %s" % dst)
    return routes[0] if routes else None


def test_spine_reaches_each_rack_through_every_tor_of_it():
    for rack in FAB.racks.values():
        tors = sorted(ip(up.address) for t in rack.tors for up in t.uplinks if up.peer_host == SPINE.name)
        assert len(tors) == len(rack.tors)
        for net in [n.text for n in rack.instance_subnets] + [rack.host_subnet.text]:
            wait_for("%s via %s at %s" % (net, tors, SPINE.name),
                     lambda: (lambda r: r and _hops(r) == tors)(_route(SPINE.name, net)), 30)


def _border_default(on):
    run(EXT, "vtysh -c 'configure terminal' -c 'router bgp %d' -c 'address-family ipv4 unicast' "
             "-c '%sneighbor %s default-originate'" % (EXT_ASN, "" if on else "no ", SPINE_LINK["peer"]))


@pytest.fixture
def without_border_default():
    hvs = [h.name for h in FAB.by_role["hypervisor"]]
    _border_default(False)
    try:
        wait_for("no default route on the spine and the hypervisors",
                 lambda: all(_route(n, "0.0.0.0/0") is None for n in [SPINE.name] + hvs), 60)
        yield
    finally:
        _border_default(True)
        wait_for("the default back on every hypervisor", lambda: all(_route(n, "0.0.0.0/0") for n in hvs), 60)


def test_hypervisors_reach_the_other_rack_and_the_spine_without_a_default(without_border_default):
    racks = sorted(FAB.racks.values(), key=lambda r: r.id)
    assert len(racks) >= 2
    # control: with the default gone, the internet is unreachable
    src = racks[0].hypervisors[0]
    assert not ping(src.name, EXT_PUBLIC)[0], "the default is not gone: %s still reaches ext" % src.name
    for a, b in ((racks[0], racks[1]), (racks[1], racks[0])):
        for hv in a.hypervisors:
            for other in b.hypervisors:
                ok, out = ping(hv.name, ip(other.address))
                assert ok, "%s cannot reach %s (%s) through the fabric:\n%s" % (
                    hv.name, other.name, ip(other.address), out)
        ok, out = ping(a.hypervisors[0].name, ip(SPINE.address))
        assert ok, "%s cannot reach the spine's loopback %s:\n%s" % (a.hypervisors[0].name, ip(SPINE.address), out)


def test_instances_reach_metadata_and_dns_through_the_fabric(leases):
    target = ip(FAB.metadata["target"])
    dns = [ip(a) for a in FAB.dns_servers]
    assert target == ip(SPINE.address) and dns == [target]
    for hv in FAB.by_role["hypervisor"]:
        route = _route(hv.name, "%s/32" % target) or _route(hv.name, target)
        assert route and route.get("protocol") == "bgp" and route.get("dst") != "default", (hv.name, route)
    for inst in INSTANCES:
        rc, seen = echo(None, dns[0], port=53, inst=inst)
        assert rc == 0 and seen == ip(inst.ip), "%s to DNS %s: %s" % (inst.name, dns[0], seen)
        rc, seen = echo(None, ip(FAB.metadata["ip"]), port=FAB.metadata["port"], inst=inst)
        assert rc == 0 and seen == ip(inst.ip), "%s to metadata: %s" % (inst.name, seen)


def _count(inst, source):
    res = in_ns(inst, "iptables -w -t raw -L PREROUTING -n -v -x")
    assert res.rc == 0, res.stderr
    return sum(int(line.split()[0]) for line in res.stdout.splitlines()
               if "ocs-test-probe" in line and (" %s " % source) in line)


def _edge_drops():
    res = run(SPINE.name, "iptables -w -t raw -L OCS-EDGE -n -v -x")
    assert res.rc == 0, res.stderr
    return sum(int(line.split()[0]) for line in res.stdout.splitlines() if "/* ocs-edge-spoof */" in line)


def _send(source, target, bind_local):
    script = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((%r, 0)); "
              "[s.sendto(b'probe', (%r, %d)) for _ in range(3)]" % (source, target, PROBE_PORT))
    if bind_local:
        return run(EXT, "ip address add %s/32 dev lo && python3 -c %s; rc=$?; ip address del %s/32 dev lo; exit $rc"
                   % (source, shlex.quote(script), source))
    return run(EXT, "python3 -c %s" % shlex.quote(script))


def test_the_border_cannot_forge_an_instance_source(leases):
    inst = next(i for i in INSTANCES if i.floating_ip is not None)
    forged = ip(next(i for i in INSTANCES if i.hypervisor is not inst.hypervisor).ip)
    fip = ip(inst.floating_ip)
    for source in (forged, EXT_PUBLIC):
        rule = "PREROUTING -p udp --dport %d -s %s -m comment --comment ocs-test-probe" % (PROBE_PORT, source)
        assert in_ns(inst, "iptables -w -t raw -A %s" % rule).rc == 0
    try:
        drops = _edge_drops()
        # positive control: ext's own address reaches the instance through its floating IP
        assert _send(EXT_PUBLIC, fip, False).rc == 0
        wait_for("the control datagram at %s" % inst.name, lambda: _count(inst, EXT_PUBLIC) >= 1, 10)
        # the same datagram forging another instance's fixed IP never arrives
        res = _send(forged, fip, True)
        assert res.rc == 0, res.stderr
        time.sleep(2)  # the control arrived within a second
        assert _count(inst, forged) == 0, "a datagram from ext forging %s reached %s" % (forged, inst.name)
        wait_for("the spine's edge counter", lambda: _edge_drops() >= drops + 3, 10)
    finally:
        for source in (forged, EXT_PUBLIC):
            in_ns(inst, "iptables -w -t raw -D PREROUTING -p udp --dport %d -s %s -m comment --comment ocs-test-probe"
                  % (PROBE_PORT, source))
