"""Round 7 of side_effect.yml, DRAIN (issue 17): tor-r01, one of rack r01's two
ToRs, is drained and undrained with playbooks/drain.yml while long TCP
flows run both ways through the rack (ext to the floating IPs of r01's
instances, r01's instances to ext through SNAT). In between: a converge of
tor-r01 does not undrain it, and draining the other ToR is refused. What is
checked is forwarding, not BGP's opinion: the kernel routes of the spine (the
rack's subnets) and of the rack's hypervisors (the default).

Runs with $OCS_SE_INVENTORY, molecule's inventory (connection settings), and
the environment molecule gives ansible-playbook."""

import json
import os
import subprocess
import sys
import time

from fabric import ECHO_PORT, EXT, EXT_PUBLIC, FAB, ip, json_of, run, wait_for
from harness import BASE, inventory_args

BUILD = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp"), "build")
TOR, OTHER = "tor-r01", "tor-r01b"
SPINE = FAB.by_role["spine"][0].name
RACK = FAB.hosts[TOR].rack
HYPERVISORS = [hv.name for hv in RACK.hypervisors]
INSTANCES = [i for hv in RACK.hypervisors for i in hv.instances]
FLOATING = sorted(ip(i.floating_ip) for i in INSTANCES if i.floating_ip is not None)
SECONDS = 80
UNIT = "ocs-test-drain-flows"


def playbook(name, *args):
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook")] + inventory_args(BASE) + ["ocs.l3." + name]
    res = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=900)
    # Ansible's output wraps long messages: compare with whitespace collapsed
    return res.returncode, " ".join((res.stdout + res.stderr).split())


def addresses_of(tor, seen_from):
    """The addresses by which ``seen_from`` routes to ``tor``: tor's uplink
    addresses toward a spine, the peers of a hypervisor's uplinks to tor."""
    host = FAB.hosts[seen_from]
    if host.role == "spine":
        return {ip(up.address) for up in FAB.hosts[tor].uplinks if up.peer_host == seen_from}
    return {ip(up.peer) for up in host.uplinks if up.peer_host == tor}


def nexthops(host, prefix):
    routes = json_of(host, "ip -4 -j route show exact %s" % prefix)
    hops = set()
    for r in routes:
        hops |= {r["gateway"]} if "gateway" in r else {h["gateway"] for h in r.get("nexthops", [])}
    return hops


def forwarding():
    """{(host, prefix): next hops} of the paths a ToR drain must move."""
    out = {(SPINE, net.text): nexthops(SPINE, net.text) for net in RACK.instance_subnets}
    out.update({(hv, "default"): nexthops(hv, "default") for hv in HYPERVISORS})
    return out


def both():
    return {(h, p): addresses_of(TOR, h) | addresses_of(OTHER, h) for h, p in forwarding()}


def only_other():
    return {(h, p): addresses_of(OTHER, h) for h, p in forwarding()}


def drained(host):
    flag = run(host, "test -e /etc/ocs-l3/drain.json").rc == 0
    running = " bgp graceful-shutdown" in run(host, "vtysh -c 'show running-config'").stdout.splitlines()
    return flag, running


def start_flows():
    """ext -> every floating IP of the rack; each instance of the rack -> ext (SNAT)."""
    run(EXT, "systemctl reset-failed %s 2>/dev/null; rm -f /run/%s.json" % (UNIT, UNIT))
    cmd = "/usr/local/bin/ocs-probe flows %d %s %d %s" % (SECONDS, EXT_PUBLIC, ECHO_PORT, " ".join(FLOATING))
    assert run(EXT, "systemd-run --unit=%s --collect /bin/sh -c '%s >/run/%s.json'" % (UNIT, cmd, UNIT)).rc == 0
    for inst in INSTANCES:
        cmd = "ip netns exec %s /usr/local/bin/ocs-probe flows %d %s %d %s" % (
            inst.name, SECONDS, ip(inst.ip), ECHO_PORT, EXT_PUBLIC)
        unit = "%s-%s" % (UNIT, inst.name)
        run(inst.hypervisor.name, "systemctl reset-failed %s 2>/dev/null; rm -f /run/%s.json" % (unit, unit))
        assert run(inst.hypervisor.name, "systemd-run --unit=%s --collect /bin/sh -c '%s >/run/%s.json'"
                   % (unit, cmd, unit)).rc == 0


def flow_results():
    where = [(EXT, UNIT)] + [(i.hypervisor.name, "%s-%s" % (UNIT, i.name)) for i in INSTANCES]
    out = {"ok": [], "failed": []}
    for host, unit in where:
        wait_for("%s on %s to end" % (unit, host),
                 lambda: run(host, "systemctl is-active --quiet %s" % unit).rc != 0, SECONDS + 60)
        res = run(host, "cat /run/%s.json" % unit)
        assert res.rc == 0, (host, unit, res.stderr)
        data = json.loads(res.stdout)
        out["ok"] += data["ok"]
        out["failed"] += [(host, f) for f in data["failed"]]
    return out


def test_bad_requests_change_nothing():
    rc, out = playbook("drain", "-e", "ocs_drain_hosts=tor-r99")
    assert rc != 0 and "drain: tor-r99 is not a fabric host" in out, out[-2000:]
    rc, out = playbook("drain", "-e", "ocs_drain_hosts=%s" % TOR, "-e", "ocs_drain_state=undrained")
    assert rc == 0 and "%s is not drained: nothing to do" % TOR in out, out[-2000:]
    assert all(drained(name) == (False, False) for name in FAB.hosts)


def test_drain_a_tor_with_flows_open(leases):
    assert FLOATING and INSTANCES
    wait_for("ECMP over both ToRs of %s" % RACK.id, lambda: forwarding() == both())
    start_flows()
    time.sleep(3)

    rc, out = playbook("drain", "-e", "ocs_drain_hosts=%s" % TOR, "-e", "ocs_drain_reason=molecule")
    assert rc == 0, out[-3000:]
    assert drained(TOR) == (True, True)
    # the playbook returned once BGP moved; the kernel follows within a second
    wait_for("the spine and the rack's hypervisors to use only %s" % OTHER, lambda: forwarding() == only_other(), 10)

    # the other ToR is now the rack's last live path
    rc, out = playbook("drain", "-e", "ocs_drain_hosts=%s" % OTHER)
    assert rc != 0 and "drain: %s is the last live path of rack %s" % (OTHER, RACK.id) in out, out[-2000:]
    assert drained(OTHER) == (False, False)

    # a converge in between keeps the drain, and changes nothing on the ToR (the render
    # step, on the controller, may report its build directory changed)
    rc, out = playbook("site", "--limit", TOR, "-e", "ocs_render_build_dir=%s" % BUILD)
    assert rc == 0, out[-3000:]
    assert "changed: [%s]" % TOR not in out, out[-3000:]
    assert drained(TOR) == (True, True)
    assert forwarding() == only_other()

    rc, out = playbook("drain", "-e", "ocs_drain_hosts=%s" % TOR, "-e", "ocs_drain_state=undrained")
    assert rc == 0, out[-3000:]
    assert drained(TOR) == (False, False)
    wait_for("ECMP over both ToRs again", lambda: forwarding() == both(), 10)

    result = flow_results()
    assert not result["failed"], "flows broke during the drain: %s" % result["failed"]
    assert len(result["ok"]) == len(FLOATING) + len(INSTANCES)
