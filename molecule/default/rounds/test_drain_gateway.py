"""Round 4 of side_effect.yml (nat_mode gateway), DRAIN A GATEWAY (issue 17):
gw-01 is drained and undrained with playbooks/drain.yml while long flows
run through the NAT tier both ways.

What must happen, and is checked exactly:
- floating-IP flows (ext -> each floating IP): the tier translates them
  statelessly, so every one survives the drain, wherever it was hashed;
- outbound flows of instances with a floating IP: translated statelessly
  too (they leave as their floating IP), so every one survives;
- SNAT flows (instances without a floating IP -> ext): a gateway translates
  them statefully (its conntrack holds the port mapping). Once drained, gw-01
  stops being the spine's default, so the next packets of a flow gw-01
  translated leave through gw-02, which has no mapping for them: such flows
  break. Flows gw-02 translated survive. No sync of conntrack state between gateways
  exists (README, known issues): drain a gateway when its SNAT flows may
  be cut, as a gateway failure would cut them.
After the drain the spine's default and ext's route to the floating range
use only gw-02; after the undrain both gateways again."""

import json
import os
import subprocess
import sys
import time

from fabric import ECHO_PORT, EXT, EXT_PUBLIC, FAB, INSTANCES, ip, json_of, run, wait_for
from harness import BASE, inventory_args

GATEWAYS = sorted(FAB.by_role["nat_gateway"], key=lambda h: h.name)
DRAINED, OTHER = GATEWAYS[0], GATEWAYS[1]
SPINE = FAB.by_role["spine"][0].name
FLOATING = sorted(ip(i.floating_ip) for i in INSTANCES if i.floating_ip is not None)
SNATTED = [i for i in INSTANCES if i.floating_ip is None]
SECONDS = 60
UNIT = "ocs-test-gw-drain"


def playbook(*args):
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook")] + inventory_args(BASE) + ["ocs.l3.drain"]
    res = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=600)
    return res.returncode, " ".join((res.stdout + res.stderr).split())


def hops(host, prefix):
    out = set()
    for r in json_of(host, "ip -4 -j route show exact %s" % prefix):
        out |= {r["gateway"]} if "gateway" in r else {h["gateway"] for h in r.get("nexthops", [])}
    return out


def edge(gateways):
    """(spine's default, ext's floating range): the addresses of ``gateways`` as each sees them."""
    border = {peer for peer, dummy in FAB.border_peers}
    return ({ip(u.address) for g in gateways for u in g.uplinks if u.peer_host == SPINE},
            {ip(u.address) for g in gateways for u in g.uplinks if u.peer in border})


def paths():
    return hops(SPINE, "default"), hops(EXT, FAB.floating_ranges[0].text)


def spawn(host, unit, cmd):
    run(host, "systemctl reset-failed %s 2>/dev/null; rm -f /run/%s.json" % (unit, unit))
    assert run(host, "systemd-run --unit=%s --collect /bin/sh -c '%s >/run/%s.json'" % (unit, cmd, unit)).rc == 0


def result(host, unit):
    wait_for("%s on %s to end" % (unit, host), lambda: run(host, "systemctl is-active --quiet %s" % unit).rc != 0,
             SECONDS + 60)
    res = run(host, "cat /run/%s.json" % unit)
    assert res.rc == 0, res.stderr
    return json.loads(res.stdout)


def snat_owner(inst):
    """The gateway whose conntrack holds the instance's flow to ext (its SNAT mapping)."""
    owners = [g.name for g in GATEWAYS
              if run(g.name, "conntrack -L -p tcp -s %s -d %s --dport %d" % (ip(inst.ip), EXT_PUBLIC, ECHO_PORT))
              .stdout.count("ESTABLISHED")]
    assert len(owners) == 1, (inst.name, owners)
    return owners[0]


def test_drain_a_gateway_with_flows_open(leases):
    assert FAB.nat_mode == "gateway" and len(GATEWAYS) >= 2 and FLOATING and SNATTED
    wait_for("both gateways at the edge", lambda: paths() == edge(GATEWAYS))
    spawn(EXT, UNIT, "/usr/local/bin/ocs-probe flows %d %s %d %s"
          % (SECONDS, EXT_PUBLIC, ECHO_PORT, " ".join(FLOATING * 4)))
    for inst in INSTANCES:
        spawn(inst.hypervisor.name, "%s-%s" % (UNIT, inst.name), "ip netns exec %s /usr/local/bin/ocs-probe flows %d "
              "%s %d %s" % (inst.name, SECONDS, ip(inst.ip), ECHO_PORT, EXT_PUBLIC))
    time.sleep(3)
    owner = {inst.name: snat_owner(inst) for inst in SNATTED}

    rc, out = playbook("-e", "ocs_drain_hosts=%s" % DRAINED.name)
    assert rc == 0, out[-3000:]
    wait_for("the edge to use only %s" % OTHER.name, lambda: paths() == edge([OTHER]), 15)

    floating = result(EXT, UNIT)
    assert not floating["failed"] and len(floating["ok"]) == 4 * len(FLOATING), floating
    failed = {i.name for i in INSTANCES if result(i.hypervisor.name, "%s-%s" % (UNIT, i.name))["failed"]}
    assert failed == {name for name, gw in owner.items() if gw == DRAINED.name}, (failed, owner)

    # a new SNAT flow after the drain goes through the other gateway and completes
    inst = SNATTED[0]
    res = run(inst.hypervisor.name, "ip netns exec %s /usr/local/bin/ocs-probe ask %s %d"
              % (inst.name, EXT_PUBLIC, ECHO_PORT))
    assert res.rc == 0 and res.stdout.strip() == ip(OTHER.public_address), (res.stdout, res.stderr)

    rc, out = playbook("-e", "ocs_drain_hosts=%s" % DRAINED.name, "-e", "ocs_drain_state=undrained")
    assert rc == 0, out[-3000:]
    wait_for("both gateways at the edge again", lambda: paths() == edge(GATEWAYS), 15)
