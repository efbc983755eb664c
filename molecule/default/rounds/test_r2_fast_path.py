"""Round 2b, FAST PATH (issue 19, item 4): tools/ocs-change converges only the
hosts whose files a change touches, and on them only the roles that print
those files, after validating the whole new fabric.

(a) An instance with a floating IP is added to hv-r01-01 (override inventory
    ``fast-path``; its VM exists first): the tool names the hosts (the
    hypervisor, its rack's ToRs, the spine) and the run serves the instance:
    lease, /32, and ext reaches it through its floating IP.
(b) A full site.yml (every role) of those hosts with the same inventory then
    changes nothing: the fast path's end state is the full run's. (That the
    hosts it left alone have no file that differs is the plan's, unit-tested.)
(c) The VM is deleted and the tool applies the base inventory again: its DHCP
    entry, its /32 (hypervisor and ToRs) and its floating IP are gone.
The time of each fast run is printed (docs/performance.md has the measure
against site.yml --limit)."""

import json
import os
import subprocess
import time

import pytest

from fabric import EXT, EXT_PUBLIC, ROOT, wait_for
from harness import BASE, BIN, BUILD, EPH, FABRIC_HOSTS, Run, Vm, base_yaml, ok, overlay, playbook, routes, run

HV = "hv-r01-01"
VM = Vm(HV, "vm-r01-01-c", "tap-r0101c", "02:00:c6:13:01:20", "198.19.1.32", floating="203.0.113.150")
STATE = {}

pytestmark = pytest.mark.usefixtures("leases")


def ocs_change(old, new, name):
    """tools/ocs-change OLD NEW (each the base plus its overlays); (targets, Run of its playbook, seconds)."""
    def args(flag, sources):
        return [sources[0]] if len(sources) == 1 else [sources[0]] + [a for s in sources[1:] for a in (flag, s)]
    targets = os.path.join(EPH, "change-%s.json" % name)
    old_args, new_args = args("--old-overlay", old), args("--new-overlay", new)
    cmd = ([os.path.join(BIN, "python"), os.path.join(ROOT, "tools", "ocs-change"), "--json", targets]
           + old_args[1:] + new_args[1:] + [old_args[0], new_args[0], "--", "-e", "ocs_render_build_dir=%s" % BUILD])
    began = time.monotonic()
    res = subprocess.run(cmd, env=dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1"),
                         capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - began
    lines = res.stdout.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("{")), len(lines))
    print("\n".join(lines[:start]))
    print("ocs-change %s: %.1f s" % (name, seconds))
    with open(targets) as fh:
        return json.load(fh), Run(res.returncode, "\n".join(lines[start:]), res.stderr), seconds


def test_round2b_fast_path_adds_an_instance_with_a_floating_ip():
    base_instances = base_yaml("host_vars/%s.yml" % HV)["ocs_instances"]
    new = {"name": VM.name, "mac": VM.mac, "ip": VM.address, "floating_ip": VM.floating, "interface": VM.interface}
    STATE["new"] = overlay("fast-path", host_vars={HV: {"ocs_instances": base_instances + [new]}})
    VM.up(fresh=True)
    target, res, seconds = ocs_change(BASE, STATE["new"], "add")
    assert res.rc == 0, res.brief()
    assert target["hosts"] == [HV, "spine1", "tor-r01", "tor-r01b"], target
    assert sorted(res.stats) == target["hosts"], "the run touched other hosts: %s" % sorted(res.stats)
    STATE["hosts"] = target["hosts"]
    wait_for("%s served" % VM.name, lambda: VM.routed() and VM.routed(VM.floating) and VM.leased(), 60)

    def from_ext():
        res = run(EXT, "/usr/local/bin/ocs-probe ask %s 7777 %s" % (VM.floating, EXT_PUBLIC))
        return res.rc == 0 and res.stdout.strip() == EXT_PUBLIC
    wait_for("ext to reach %s through %s" % (VM.name, VM.floating), from_ext, 60)


def test_round2b_a_full_run_afterwards_changes_nothing():
    res = playbook("ocs.l3.site", "--limit", ",".join(STATE["hosts"]), "-e", "ocs_render_build_dir=%s" % BUILD,
                   inventories=STATE["new"])
    assert res.rc == 0, res.brief()
    changed = {h: s["changed"] for h, s in res.stats.items() if s["changed"] and h in FABRIC_HOSTS}
    detail = {h: [name for _p, name, hosts in res.tasks() if hosts.get(h, {}).get("changed")] for h in changed}
    assert changed == {}, "the full run changed what the fast path left: %s" % detail


def test_round2b_fast_path_removes_it_again():
    VM.down()
    target, res, seconds = ocs_change(STATE["new"], BASE, "remove")
    assert res.rc == 0 and target["hosts"] == [HV, "spine1", "tor-r01", "tor-r01b"], res.brief()
    hosts_file = ok(HV, "cat /etc/ocs-l3/dhcp-hosts")
    assert VM.mac not in hosts_file and (VM.address + ",") not in hosts_file
    assert VM.floating not in ok(HV, "iptables-save -t nat")
    for host in [HV, "tor-r01", "tor-r01b"]:
        wait_for("%s's /32 gone at %s" % (VM.name, host), lambda: routes(host, "%s/32" % VM.address) == [], 20)
