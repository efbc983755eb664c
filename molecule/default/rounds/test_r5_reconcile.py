"""Round 5, RECONCILE: tools/ocs-reconcile and its drift report against a live
host, hv-r01-01, the way cron runs them (own state dir and log here;
molecule's ansible.cfg through $ANSIBLE_CONFIG):

(a) a reconcile is killed (SIGKILL, its whole process group) mid-play, after it
    took the host's run lease; the lease stays held (the module it had started on
    the host runs to its end: the round waits for it);
(b) an operator deletes an instance route and one of our NAT rules;
(c) the drift report exits 2 and its JSON names the host and the tasks that
    would change; it changes nothing;
(d) the next reconcile breaks the killed run's lease and converges;
(e) the drift report then exits 0 with nothing drifted."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from fabric import FAB, ROOT, wait_for
from harness import BASE, BIN, BUILD, EPH, Vm, ok, routes, run

HV = "hv-r01-01"
WRAPPER = os.path.join(ROOT, "tools", "ocs-reconcile")
STATE_DIR = os.path.join(EPH, "reconcile-state")
ENV = dict(os.environ, OCS_STATE_DIR=STATE_DIR, OCS_LOG=os.path.join(EPH, "reconcile.log"),
           PATH=BIN + os.pathsep + os.environ.get("PATH", ""))
ARGS = ["-i", BASE[0], "--", "--limit", HV, "-e", "ocs_render_build_dir=%s" % BUILD]
FIRST = Vm.of(FAB.hosts[HV].instances[0])
STATE = {}

pytestmark = pytest.mark.usefixtures("leases")


def reconcile(*extra, check=False):
    res = subprocess.run([WRAPPER] + (["--check"] if check else []) + ARGS + list(extra), env=ENV,
                         capture_output=True, text=True, timeout=900)
    return res.returncode, res.stdout + res.stderr


def lease_owner():
    res = run(HV, "cat /run/ocs-l3/run.lease")
    return json.loads(res.stdout).get("owner") if res.rc == 0 and res.stdout.strip() else None


def unfinished():
    with open(os.path.join(STATE_DIR, "unfinished")) as fh:
        return fh.read().split()


def drift_report(name):
    path = os.path.join(EPH, "drift-%s.json" % name)
    rc, out = reconcile("--report-json", path, check=True)
    with open(path) as fh:
        return rc, json.load(fh), out


def test_round5_a_reconcile_killed_mid_play_leaves_its_lease_held():
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    with open(os.path.join(EPH, "reconcile-killed.out"), "w") as out:
        proc = subprocess.Popen([WRAPPER] + ARGS, env=ENV, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        wait_for("the reconcile to take %s's lease" % HV,
                 lambda: os.path.exists(os.path.join(STATE_DIR, "unfinished")) and unfinished()
                 and lease_owner() == unfinished()[-1], 120)
        time.sleep(3)  # into the roles: mid-play
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    STATE["killed"] = unfinished()[-1]
    # The kill does not reach the module the run had started on the host (`podman exec -i HV
    # /bin/sh -c '/usr/bin/python3 && sleep 0'`, pipelined): it runs to its end, and one that
    # applies the routes or the NAT rules after (b) deletes one would hide that drift. Wait until
    # none has run for 5 s (an action plugin may run a second module after a first one ends; the
    # bracket keeps pgrep from matching the shell that runs it).

    def quiet():
        for dummy in range(10):
            if run(HV, "pgrep -f 'python[3] && sleep 0'").rc != 1:
                return False
            time.sleep(0.5)
        return True
    wait_for("the killed run's modules on %s to end" % HV, quiet, 300)
    assert lease_owner() == STATE["killed"]


def test_round5_the_drift_report_names_the_host_and_what_would_change():
    ok(HV, "ip route del %s/32" % FIRST.address)
    ok(HV, "iptables -w -t nat -D OCS-FLOAT-DNAT 1")
    rc, report, out = drift_report("drifted")
    assert rc == 2 and list(report["drift"]) == [HV] and report["failed"] == {}, out[-3000:]
    tasks = report["drift"][HV]
    assert any("kernel routes" in t for t in tasks) and any("NAT chains" in t for t in tasks), tasks
    assert routes(HV, "%s/32" % FIRST.address) == [], "the drift report changed the host"


def test_round5_the_next_reconcile_breaks_the_killed_runs_lease_and_converges():
    assert STATE["killed"] in unfinished()
    rc, out = reconcile("-e", "ocs_guard_wait=30")
    assert rc == 0, out[-3000:]
    assert unfinished() == []


def test_round5_the_drift_report_is_clean_and_the_host_repaired():
    rc, report, out = drift_report("clean")
    assert rc == 0 and report["drift"] == {} and report["failed"] == {} and report["checked"] == [HV], out[-3000:]
    assert [r.get("dev") for r in routes(HV, "%s/32" % FIRST.address)] == [FIRST.interface]
    assert ("-d %s/32" % FIRST.floating) in ok(HV, "iptables -w -t nat -S OCS-FLOAT-DNAT")
    assert lease_owner() is None
