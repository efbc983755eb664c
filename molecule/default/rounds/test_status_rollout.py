"""Round 8 of side_effect.yml, STATUS, METRICS, ROLLOUT (issue 17):

- tools/ocs-status exits 0 on the converged fabric;
- a BGP session shut at a ToR: ocs-status exits 2 naming the ToR and the
  hypervisor, each with that session, as critical; the hypervisor's
  ocs_l3.prom (written by ocs-l3-status on the host, read back and parsed)
  counts one established session less, that session 0, one critical more;
- tools/ocs-rollout over racks r01 and r02 with tor-r01's BGP to the spine
  cut (a foreign DROP rule): it stops at rack r01 naming tor-r01's session,
  and rack r02 is not touched (its hosts' last-reconcile stamps unchanged);
  healed, the same rollout of r01 passes (the positive control)."""

import json
import os
import subprocess
import sys

from fabric import FAB, ROOT, ip, run, wait_for

sys.path.insert(0, os.path.join(ROOT, "tests"))
from prom import metric, parse_prom  # noqa: E402

INVENTORY = os.environ["OCS_SE_INVENTORY"]  # conftest.py refuses to run without it
BUILD = os.path.join(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/tmp"), "build")
HV = FAB.hosts["hv-r02-01"]
TOR = FAB.hosts["tor-r02"]
BROKEN = FAB.hosts["tor-r01"]
SPINE = FAB.by_role["spine"][0]
STAMP = "/etc/ocs-l3/reconciled"
PROM_DIR = "/run/ocs-test-prom"


def tool(name, *args):
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tools", name)] + list(args),
                         capture_output=True, text=True, timeout=1200)
    return res.returncode, res.stdout, res.stderr


def status():
    rc, out, err = tool("ocs-status", "--json", "-i", INVENTORY)
    assert out.startswith("{"), (rc, out[-2000:], err[-2000:])
    return rc, json.loads(out)


def critical(doc):
    return sorted((d["host"], d["what"], d["detail"]) for r in doc["reports"] for d in r["deviations"]
                  if d["severity"] == "critical")


def prom(host):
    res = run(host.name, "mkdir -p {0}; /usr/local/sbin/ocs-l3-status --quiet --prom {0}; cat {0}/ocs_l3.prom"
              .format(PROM_DIR))
    return parse_prom(res.stdout)


def session_key(tor, hv):
    """The hypervisor's address by which the ToR knows it, and the ToR's by which the hypervisor knows it."""
    up = next(u for u in hv.uplinks if u.peer_host == tor.name)
    return ip(up.address), ip(up.peer)


def vtysh(host, *cmds):
    res = run(host.name, "vtysh " + " ".join("-c '%s'" % c for c in cmds))
    assert res.rc == 0, res.stderr


def test_status_is_ok_on_the_converged_fabric():
    rc, doc = status()
    assert rc == 0 and doc["worst"] in ("ok", "info"), critical(doc) or doc["counts"]
    assert {r["host"] for r in doc["reports"]} == set(FAB.hosts)


def test_a_shut_session_is_critical_and_counted():
    hv_addr, tor_addr = session_key(TOR, HV)
    before = prom(HV)
    vtysh(TOR, "conf t", "router bgp %d" % TOR.asn, "neighbor %s shutdown" % hv_addr)
    try:
        wait_for("the session to be down at %s" % HV.name,
                 lambda: metric(prom(HV), "ocs_l3_bgp_session_established", peer=tor_addr, peer_host=TOR.name) == 0,
                 30)
        rc, doc = status()
        assert rc == 2 and doc["worst"] == "critical"
        hosts = {(host, what) for host, what, detail in critical(doc) if hv_addr in detail or tor_addr in detail}
        assert hosts == {(TOR.name, "bgp-session"), (HV.name, "bgp-session")}, critical(doc)
        after = prom(HV)
        assert metric(after, "ocs_l3_bgp_sessions_established") == metric(before, "ocs_l3_bgp_sessions_established") - 1
        assert metric(before, "ocs_l3_bgp_session_established", peer=tor_addr, peer_host=TOR.name) == 1
        assert metric(after, "ocs_l3_deviations", severity="critical") == \
            metric(before, "ocs_l3_deviations", severity="critical") + 1
    finally:
        vtysh(TOR, "conf t", "router bgp %d" % TOR.asn, "no neighbor %s shutdown" % hv_addr)
    wait_for("the session back", lambda: metric(prom(HV), "ocs_l3_bgp_sessions_established")
             == metric(before, "ocs_l3_bgp_sessions_established"), 60)


def stamps(hosts):
    return {h: run(h, "stat -c %%Y %s" % STAMP).stdout.strip() for h in hosts}


def test_rollout_stops_at_the_unhealthy_rack_and_leaves_the_next_untouched():
    uplink = next(u for u in BROKEN.uplinks if u.peer_host == SPINE.name)
    cut = ("iptables -w -t raw -%s PREROUTING -i {0} -p tcp --dport 179 -j DROP && "
           "iptables -w -t raw -%s PREROUTING -i {0} -p tcp --sport 179 -j DROP").format(uplink.interface)
    r02 = [h.name for h in FAB.racks["r02"].tors + FAB.racks["r02"].hypervisors]
    before = stamps(r02)
    assert all(before.values()), before
    assert run(BROKEN.name, cut % ("I", "I")).rc == 0
    try:
        rc, out, err = tool("ocs-rollout", "-i", INVENTORY, "--racks", "r01,r02", "--settle", "20",
                            "-e", "ocs_render_build_dir=%s" % BUILD)
        assert rc == 2, (rc, out[-3000:], err[-2000:])
        assert "ocs-rollout: stopped at step 1/2, rack r01, not healthy:" in out, out[-3000:]
        assert "\n  %s: critical bgp-session: %s (%s" % (BROKEN.name, ip(uplink.peer), SPINE.name) in out, out[-3000:]
        assert "not touched: rack r02" in out
        assert stamps(r02) == before
    finally:
        run(BROKEN.name, cut % ("D", "D"))
    rc, out, err = tool("ocs-rollout", "-i", INVENTORY, "--racks", "r01", "-e", "ocs_render_build_dir=%s" % BUILD)
    assert rc == 0 and "ocs-rollout: 1 steps, all healthy" in out, (rc, out[-3000:], err[-2000:])
