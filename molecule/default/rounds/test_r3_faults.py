"""Round 3, FAULTS THAT KEEP THE OLD STATE (hv-r01-01 and hv-r01-02).

(a) A run whose rendered files the daemons reject: site.yml with ../fault-play.yml
    inserted after the render, which corrupts hv-r01-02's dnsmasq.conf and
    hv-r01-01's frr.conf in the build dir. Validation must refuse them: each
    host fails at the task installing that file, the old files stay, dnsmasq
    keeps its PID and answers, no BGP session resets. The run leaves its host
    leases held (run id se-broken), as a killed run would.
(b) ocs-dhcp is killed on hv-r01-01 and FRR stopped on hv-r01-02, then two runs
    start at once (se-a, se-b; both break se-broken's leases, as
    tools/ocs-reconcile does for a dead run). Wait-die: the older waits for the
    younger's leases (both succeed, one says it waited) or the younger gives way
    (it fails at the lease, saying so); never both stuck. The daemons are back.
(c) LOCK-OUT (issue 14): a run whose management ranges exclude the address it
    comes from is refused before any host is touched, naming the address and
    the ranges; every host's filter and raw tables stay as they were. (Molecule
    reaches the containers with podman exec: the run's address is given as
    ocs_firewall_controller_address, as SSH_CLIENT would give it.)

The results are read from each run's JSON (harness.playbook): the failed task
and its message per host, the lease module's ``waited`` and ``gave_way``."""

import os

import pytest
import yaml

from fabric import FAB, ROOT, SCENARIO, wait_for
from harness import (BUILD, EPH, FABRIC_HOSTS, Vm, all_established, base_yaml, bgp_peers, files_sha256, finish,
                     main_pid, ok, playbook, rules, sessions_reset, start_playbook)

HOSTS = ["hv-r01-01", "hv-r01-02"]
LIMIT = ",".join(HOSTS)
CONFIGS = ["/etc/ocs-l3/dnsmasq.conf", "/etc/frr/frr.conf"]
LEASE_TASK = "Take this host's run lease"
STATE = {}

pytestmark = pytest.mark.usefixtures("leases")


def _state(host):
    return {"sha256": files_sha256(host, *CONFIGS), "dnsmasq": main_pid(host, "ocs-dhcp"), "bgp": bgp_peers(host)}


def test_round3a_a_run_with_files_the_daemons_reject_fails_at_their_install():
    STATE["before"] = {h: _state(h) for h in HOSTS}
    with open(os.path.join(ROOT, "playbooks", "site.yml")) as fh:
        site = yaml.safe_load(fh)
    with open(os.path.join(SCENARIO, "fault-play.yml")) as fh:
        fault = yaml.safe_load(fh)
    path = os.path.join(EPH, "site-fault.yml")
    with open(path, "w") as fh:
        yaml.safe_dump([site[0]] + fault + site[1:], fh, sort_keys=False)
    res = playbook(path, "--limit", LIMIT, "-e", "ocs_render_run_id=se-broken", "-e", "ocs_render_build_dir=%s" % BUILD)
    failures = res.failures()
    assert res.rc != 0 and sorted(failures) == HOSTS, res.brief()
    assert failures["hv-r01-02"][0].startswith("Install the DHCP host file, the dnsmasq configuration") and \
        "/etc/ocs-l3/dnsmasq.conf: failed to validate" in failures["hv-r01-02"][1], failures
    assert failures["hv-r01-01"][0].startswith("Install the FRR daemons file and frr.conf") and \
        "failed to validate" in failures["hv-r01-01"][1], failures
    assert all(res.stats[h]["failures"] == 1 for h in HOSTS), res.stats


def test_round3a_the_old_files_stay_and_the_daemons_keep_serving():
    for host in HOSTS:
        before, after = STATE["before"][host], _state(host)
        assert after["sha256"] == before["sha256"], "%s: a rejected file was installed" % host
        assert before["dnsmasq"] > 0 and after["dnsmasq"] == before["dnsmasq"], "%s: dnsmasq restarted" % host
        assert sessions_reset(before["bgp"], after["bgp"], uptime_grew=False) == [], host
    # DHCP still answers on the host whose dnsmasq.conf was rejected
    Vm.of(FAB.hosts["hv-r01-02"].instances[-1]).renew_from_lease_file()


def test_round3b_two_runs_at_once_after_daemons_died():
    ok("hv-r01-01", "systemctl kill ocs-dhcp")
    wait_for("ocs-dhcp to be dead", lambda: not main_pid("hv-r01-01", "ocs-dhcp"), 10)
    ok("hv-r01-02", "systemctl stop frr")
    runs = {}
    for name in ("a", "b"):
        runs[name] = start_playbook("ocs.l3.site", "--limit", LIMIT, "-e", "ocs_render_run_id=se-%s" % name,
                                    "-e", '{"ocs_guard_break_owners": ["se-broken"]}',
                                    "-e", "ocs_render_build_dir=%s" % BUILD)
    done = {name: finish(proc) for name, proc in runs.items()}
    leases = {name: run.results(LEASE_TASK) for name, run in done.items()}
    rcs = sorted(run.rc for run in done.values())
    waited = [res.get("waited", 0) for results in leases.values() for res in results.values()]
    gave_way = [name for name, results in leases.items() if any(r.get("gave_way") for r in results.values())]
    detail = {name: (run.rc, {h: {k: r.get(k) for k in ("waited", "waited_for", "gave_way", "msg")}
                               for h, r in leases[name].items()}) for name, run in done.items()}
    # wait-die: both succeed and one waited for the other, or one gave way (rc 2, failing only at the lease)
    if rcs == [0, 0]:
        assert max(waited) >= 5, "neither run waited for the other: %s" % detail
    else:
        assert rcs == [0, 2] and len(gave_way) == 1, "runs stuck or failed: %s" % detail
        loser = done[gave_way[0]]
        assert {task for task, _msg in loser.failures().values()} == {
            LEASE_TASK + " (waits for another run) and refuse an older inventory"}, loser.brief()


def test_round3b_the_daemons_are_back_and_the_leases_given_back():
    for host in HOSTS:
        ok(host, "systemctl is-active ocs-dhcp frr")
        ok(host, "test ! -e /run/ocs-l3/run.lease")
        wait_for("%s's sessions" % host, lambda: all_established(host), 30)
    Vm.of(FAB.hosts["hv-r01-01"].instances[0]).renew_from_lease_file()


def _firewall(host):
    return [line for line in rules(host, "filter", "raw") if line.startswith(("-A", ":OCS"))]


def test_round3c_a_run_that_the_host_policy_would_cut_off_is_refused():
    before = {h: _firewall(h) for h in FABRIC_HOSTS}
    ranges = ", ".join(base_yaml("group_vars/all/fabric.yml")["ocs_fabric"]["management_ranges"])
    res = playbook("ocs.l3.site", "-e", "ocs_firewall_controller_address=203.0.113.9",
                   "-e", "ocs_render_build_dir=%s-lockout" % BUILD)
    expected = "this run comes from 203.0.113.9, outside ocs_fabric.management_ranges (%s)" % ranges
    assert res.rc != 0 and any(expected in msg for _task, msg in res.failures().values()), res.brief()
    assert res.results(LEASE_TASK) == {}, "a host was touched (its lease taken)"
    for host in FABRIC_HOSTS:
        after = _firewall(host)
        assert after == before[host] and any("OCS-HOST" in line for line in after), \
            "%s: the refused run changed the firewall" % host

