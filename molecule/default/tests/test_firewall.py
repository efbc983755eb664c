"""Tenant isolation (role ocs_firewall) with real packets: an instance that
spoofs another instance's fixed IP gets nothing through (the hypervisor's
OCS-ANTISPOOF drop counter counts it, no connection exists beyond its tap),
and an instance cannot open TCP to its hypervisor's sshd port (a listener
that prepare.yml runs on port 22) or to bgpd (179), while DHCP, ping to the
gateway and metadata (test_dhcp.py, test_nat.py) keep working."""

import random
import shlex

import pytest

import fabric
from fabric import FAB, INSTANCES, ip, run

FIREWALL = fabric.LANDED

# UDP port of the probe (nothing listens: only conntrack sees the datagrams).
PROBE_PORT = 7778


def _counter(hv, chain, comment):
    """Packets counted by the rule of `chain` that carries `comment`."""
    res = run(hv, "iptables -w -L %s -n -v -x" % chain)
    assert res.rc == 0, res.stderr
    hits = [line.split() for line in res.stdout.splitlines() if ("/* %s */" % comment) in line]
    assert len(hits) == 1, "%s: no single %s rule in %s:\n%s" % (hv, comment, chain, res.stdout)
    return int(hits[0][0])


def _other_hypervisor_pair():
    """(spoofer, victim, target): victim on the spoofer's hypervisor, target on another hypervisor."""
    for a in INSTANCES:
        for b in INSTANCES:
            if b is a or b.hypervisor.name != a.hypervisor.name:
                continue
            for c in INSTANCES:
                if c.hypervisor.name != a.hypervisor.name:
                    return a, b, c
    raise AssertionError("the scenario needs two instances on one hypervisor and one elsewhere")


# From (source, sport) inside the instance: a TCP connect to the target's echo
# probe (prints OPEN when it is answered) and 5 UDP datagrams to PROBE_PORT.
_PROBE = """
import socket, sys
src, sport, dst, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((src, sport))
for _ in range(5):
    u.sendto(b"x", (dst, %d))
t = socket.socket()
t.settimeout(2)
t.bind((src, sport))
try:
    t.connect((dst, port))
    print("OPEN", t.recv(100).decode().strip())
except OSError as e:
    print("closed", e)
""" % PROBE_PORT


def _probe(inst, src, sport, dst):
    res = fabric.in_ns(inst, "python3", "-c", _PROBE, src, sport, dst, fabric.ECHO_PORT)
    assert res.rc == 0, res.stderr
    return res.stdout.strip()


def _tracked(hv, src, sport):
    """conntrack entries (TCP or UDP) whose original direction is src:sport."""
    res = run(hv, "conntrack -L -s %s 2>/dev/null" % src)
    return [line for line in res.stdout.splitlines() if " sport=%d " % sport in line.split("src=", 1)[1][:80]]


@FIREWALL
def test_spoofed_source_gets_nothing_through(leases):
    spoofer, victim, target = _other_hypervisor_pair()
    hv, thv = spoofer.hypervisor.name, target.hypervisor.name
    own, stolen, dst = ip(spoofer.ip), ip(victim.ip), ip(target.ip)
    sport = random.randint(20000, 29999)
    # Control: from its own address both probes arrive (the target's hypervisor tracks them).
    out = _probe(spoofer, own, sport, dst)
    assert out.startswith("OPEN"), "control probe %s -> %s failed: %s" % (own, dst, out)
    assert len(_tracked(thv, own, sport)) == 2, run(thv, "conntrack -L -s %s" % own).stdout
    before = _counter(hv, "OCS-ANTISPOOF", "ocs-spoof")
    ns = shlex.quote(spoofer.name)
    assert run(hv, "ip -n %s addr add %s/32 dev eth0" % (ns, stolen)).rc == 0
    try:
        out = _probe(spoofer, stolen, sport + 1, dst)
    finally:
        run(hv, "ip -n %s addr del %s/32 dev eth0" % (ns, stolen))
    assert not out.startswith("OPEN"), "a connection from a spoofed source succeeded: %s" % out
    after = _counter(hv, "OCS-ANTISPOOF", "ocs-spoof")
    assert after >= before + 6, "OCS-ANTISPOOF on %s counted %d -> %d" % (hv, before, after)
    for where in (hv, thv):
        assert not _tracked(where, stolen, sport + 1), "spoofed packets passed %s" % where


def _one_per_hypervisor():
    seen, out = set(), []
    for inst in INSTANCES:
        if inst.hypervisor.name not in seen:
            seen.add(inst.hypervisor.name)
            out.append(inst)
    return out


@FIREWALL
@pytest.mark.parametrize("inst", _one_per_hypervisor(), ids=lambda i: i.name)
def test_instance_cannot_reach_hypervisor_services(inst, leases):
    hv = inst.hypervisor.name
    # The services are there: a listener on 22 (prepare.yml) and bgpd on 179
    # (no bgpd listens in routing_mode static).
    ports = (22, 179) if FAB.routing_mode == "bgp" else (22,)
    listening = run(hv, "ss -Hltn '( sport = :22 or sport = :179 )'").stdout
    assert all(":%d " % p in listening for p in ports), "%s listens on: %s" % (hv, listening)
    targets = [ip(inst.hypervisor.address), ip(inst.gateway_ip)]
    probes = " ".join("%s:%d" % (t, p) for t in targets for p in ports)
    before = _counter(hv, "OCS-INPUT", "ocs-protect-host")
    # All probes in parallel (each waits for its 3 s connect timeout); prints the ones that connected.
    script = ("for tp in %s; do (/usr/local/bin/ocs-probe ask ${tp%%:*} ${tp#*:} >/dev/null 2>&1 "
              "&& echo OPEN $tp) & done; wait" % probes)
    res = fabric.in_ns(inst, "sh", "-c", script)
    assert "OPEN" not in res.stdout, "%s reached its hypervisor: %s" % (inst.name, res.stdout)
    after = _counter(hv, "OCS-INPUT", "ocs-protect-host")
    assert after >= before + len(targets) * len(ports), "OCS-INPUT drop on %s counted %d -> %d" % (hv, before, after)


@FIREWALL
@pytest.mark.parametrize("inst", INSTANCES, ids=lambda i: i.name)
def test_instance_pings_its_gateway(inst, leases):
    ok, out = fabric.ping(None, ip(inst.gateway_ip), inst=inst)
    assert ok, out
