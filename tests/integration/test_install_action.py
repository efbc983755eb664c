"""ocs.l3.ocs_install through Ansible (action + module: one module run with the content when the
task's files are small, else checksums first and a second run with the content that is needed):
the alternate content a host wants while its flag file exists (the FRR role's drained frr.conf),
validation before anything is installed, a second run that changes nothing, and the units brought up
once every file is in place (a systemctl on PATH that records what it was asked)."""

import json
import os
import subprocess

from helpers import BIN, ansible_env

PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: install
      ocs.l3.ocs_install:
        owner: "{{ lookup('env', 'USER') or 'root' }}"
        group: "{{ lookup('env', 'OCS_TEST_GROUP') }}"
        files:
          - dest: "%(dir)s/daemons"
            content: "zebra=yes\\n"
            mode: "0640"
          - dest: "%(dir)s/frr.conf"
            content: "%(plain)s"
            mode: "0640"
            validate: grep -q router %%s
            alternate:
              if_exists: "%(dir)s/drain.json"
              content: "%(drained)s"
      register: out
    - name: result
      ansible.builtin.debug:
        var: out
"""


def run(tmp_path, plain="router bgp 1\\n", drained="router bgp 1\\n bgp graceful-shutdown\\n"):
    import grp
    import pwd
    play = tmp_path / "play.yml"
    play.write_text(PLAY % dict(dir=tmp_path, plain=plain, drained=drained))
    env = ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json",
                      USER=pwd.getpwuid(os.getuid()).pw_name, OCS_TEST_GROUP=grp.getgrgid(os.getgid()).gr_name)
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=%s" % os.path.join(BIN, "python"), str(play)],
                          env=env, capture_output=True, text=True, timeout=300)
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_the_alternate_is_installed_while_its_flag_exists_and_a_second_run_changes_nothing(tmp_path):
    conf = tmp_path / "frr.conf"
    first = run(tmp_path)
    assert first["changed"] and first["changed_files"] == sorted([str(tmp_path / "daemons"), str(conf)])
    assert first["module_runs"] == 1  # small files: the content went with the checksums
    assert conf.read_text() == "router bgp 1\n" and oct(conf.stat().st_mode & 0o777) == "0o640"
    assert not run(tmp_path)["changed"]
    # drained: the flag exists, the module takes the alternate sent with it
    (tmp_path / "drain.json").write_text("{}")
    drained = run(tmp_path)
    assert drained["changed"] and drained["changed_files"] == [str(conf)] and drained["module_runs"] == 1
    assert conf.read_text() == "router bgp 1\n bgp graceful-shutdown\n"
    assert not run(tmp_path)["changed"]  # stays drained, nothing to do
    # undrained: back to the plain content
    (tmp_path / "drain.json").unlink()
    assert run(tmp_path)["changed_files"] == [str(conf)] and conf.read_text() == "router bgp 1\n"


def test_large_files_go_checksums_first_and_their_content_only_when_it_differs(tmp_path):
    from ansible_collections.ocs.l3.plugins.module_utils.install import INLINE_BYTES
    pad = "! pad\\n" * (INLINE_BYTES // 6 + 1)  # a dense ToR's frr.conf: more than is sent inline
    conf = tmp_path / "frr.conf"
    first = run(tmp_path, plain="router bgp 1\\n" + pad, drained="router bgp 1\\n bgp graceful-shutdown\\n" + pad)
    assert first["changed"] and first["module_runs"] == 2 and conf.stat().st_size > INLINE_BYTES
    again = run(tmp_path, plain="router bgp 1\\n" + pad, drained="router bgp 1\\n bgp graceful-shutdown\\n" + pad)
    assert not again["changed"] and again["module_runs"] == 1  # nothing differs: no content shipped
    (tmp_path / "drain.json").write_text("{}")
    drained = run(tmp_path, plain="router bgp 1\\n" + pad, drained="router bgp 1\\n bgp graceful-shutdown\\n" + pad)
    assert drained["changed_files"] == [str(conf)] and drained["module_runs"] == 2
    assert conf.read_text().startswith("router bgp 1\n bgp graceful-shutdown\n! pad\n")


def test_content_that_fails_validation_installs_nothing(tmp_path):
    run(tmp_path)
    (tmp_path / "daemons").write_text("old\n")
    res = run(tmp_path, plain="no such line\\n")
    assert res["failed"] and "frr.conf: failed to validate (grep -q router %s, exit 1)" in res["msg"]
    assert (tmp_path / "frr.conf").read_text() == "router bgp 1\n"
    assert (tmp_path / "daemons").read_text() == "old\n"  # the other file of the call was not installed either


UNITS_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: install
      ocs.l3.ocs_install:
        owner: "{{ lookup('env', 'USER') or 'root' }}"
        group: "{{ lookup('env', 'OCS_TEST_GROUP') }}"
        files:
          - dest: "%(dir)s/app.conf"
            content: "%(content)s"
            mode: "0644"
            validate: grep -q ok %%s
        units:
          - name: app.service
          - name: other.service
            manage: false
      environment:
        PATH: "%(dir)s/bin:{{ lookup('env', 'PATH') }}"
      register: out
"""

# Answers from files (the unit's state), and logs each call with app.conf's content at that moment.
SYSTEMCTL = """#!/bin/sh
d=%(dir)s
echo "$* [$(cat $d/app.conf 2>/dev/null)]" >> $d/calls
case "$1" in
  is-enabled) cat $d/enabled 2>/dev/null || echo disabled ;;
  is-active) cat $d/active 2>/dev/null || echo inactive ;;
  enable) echo enabled > $d/enabled ;;
  start) echo active > $d/active ;;
  *) exit 1 ;;
esac
"""


def run_units(tmp_path, content):
    import grp
    import pwd
    (tmp_path / "bin").mkdir(exist_ok=True)
    fake = tmp_path / "bin" / "systemctl"
    fake.write_text(SYSTEMCTL % dict(dir=tmp_path))
    fake.chmod(0o755)
    play = tmp_path / "units.yml"
    play.write_text(UNITS_PLAY % dict(dir=tmp_path, content=content))
    env = ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json",
                      USER=pwd.getpwuid(os.getuid()).pw_name, OCS_TEST_GROUP=grp.getgrgid(os.getgid()).gr_name)
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=%s" % os.path.join(BIN, "python"), str(play)],
                          env=env, capture_output=True, text=True, timeout=300)
    calls = (tmp_path / "calls").read_text().splitlines() if (tmp_path / "calls").exists() else []
    (tmp_path / "calls").unlink(missing_ok=True)
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"], calls


def test_units_come_up_after_the_files_and_only_where_they_are_not(tmp_path):
    # First run: the file is new (its content goes with the checksums: one module run); the unit is
    # enabled and started after the file is in place.
    res, calls = run_units(tmp_path, "ok 1\\n")
    assert res["changed"] and res["unit_actions"] == ["enable app.service", "start app.service"]
    assert calls == ["is-enabled app.service [ok 1]", "is-active app.service [ok 1]",
                     "enable app.service [ok 1]", "start app.service [ok 1]"]
    # Converged: two queries, no change; the unmanaged unit is never asked about.
    res, calls = run_units(tmp_path, "ok 1\\n")
    assert not res["changed"] and res["unit_actions"] == [] and calls == [
        "is-enabled app.service [ok 1]", "is-active app.service [ok 1]"]
    # A stopped unit is started even when no file changed (drift repair).
    (tmp_path / "active").write_text("failed\n")
    res, calls = run_units(tmp_path, "ok 1\\n")
    assert res["changed"] and res["changed_files"] == [] and res["unit_actions"] == ["start app.service"]
    # A file that fails validation: nothing installed, no unit touched.
    (tmp_path / "active").write_text("inactive\n")
    res, calls = run_units(tmp_path, "bad\\n")
    assert res["failed"] and "failed to validate" in res["msg"] and calls == []
    assert (tmp_path / "app.conf").read_text() == "ok 1\n"


APPLY_PLAY = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: install and apply
      ocs.l3.ocs_iptables_chains:
        install:
          directories: ["%(dir)s/state"]
          files:
            - dest: "%(dir)s/state/nat.rules"
              src: "%(dir)s/nat.rules"
              mode: "0644"
              validate: iptables-restore --test %%s
        src: "%(dir)s/state/nat.rules"
        jumps: [{chain: PREROUTING, target: OCS-PREROUTING}]
        conntrack: false
      register: out
      ignore_errors: true
    - name: live
      ansible.builtin.command: iptables-save -t nat
      changed_when: false
"""
NAT_RULES = "*nat\n:OCS-PREROUTING - [0:0]\n-A OCS-PREROUTING -d %s/32 -j DNAT --to-destination 198.18.7.5\nCOMMIT\n"


def test_an_apply_module_installs_and_applies_its_file_in_one_module_run(tmp_path):
    """ocs_iptables_chains with ``install`` (the NAT and firewall roles' one task): the file installed
    (validated) and applied in one module run, a second run changes nothing, a file that fails
    validation installs nothing and applies nothing. In a private network (and mount) namespace."""
    play = tmp_path / "apply.yml"
    play.write_text(APPLY_PLAY % dict(dir=tmp_path))
    cmd = [os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % os.path.join(BIN, "python"), str(play)]
    run = " ".join(cmd)
    steps = ["cp {t}/rules{i} {t}/nat.rules; {run} > {t}/out{i}.json".format(t=tmp_path, i=i, run=run)
             for i in range(3)]
    steps.append("cp {t}/rules3 {t}/nat.rules; {run} --check --diff > {t}/out3.json".format(t=tmp_path, run=run))
    script = "; ".join(["set -e", "mount -t tmpfs tmpfs /run", "ip link set lo up"] + steps)
    texts = [NAT_RULES % "203.0.113.5", NAT_RULES % "203.0.113.5", NAT_RULES % "203.0.113.6" + "x\n",
             NAT_RULES % "203.0.113.5" + "# a comment only: the live chains stay equal\n"]
    for i, rules in enumerate(texts):
        (tmp_path / ("rules%d" % i)).write_text(rules)
    env = ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    proc = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", "bash", "-c", script],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = [json.loads((tmp_path / ("out%d.json" % i)).read_text())["plays"][0]["tasks"] for i in range(3)]
    res = [(r[0]["hosts"]["localhost"],
            [ln for ln in r[1]["hosts"]["localhost"]["stdout_lines"] if not ln.startswith("#")]) for r in runs]
    installed = str(tmp_path / "state" / "nat.rules")
    first, live = res[0]
    assert first["changed"] and first["module_runs"] == 1, first
    assert first["changed_files"] == [str(tmp_path / "state"), installed]  # the directory made, the file
    assert "-A OCS-PREROUTING -d 203.0.113.5/32 -j DNAT --to-destination 198.18.7.5" in live
    assert "-A PREROUTING -j OCS-PREROUTING" in live
    again, live2 = res[1]
    assert not again["changed"] and again["changed_files"] == [] and live2 == live
    bad, live3 = res[2]
    assert bad["failed"] and "nat.rules: failed to validate" in bad["msg"], bad
    assert (tmp_path / "state" / "nat.rules").read_text() == NAT_RULES % "203.0.113.5" and live3 == live
    # check mode with --diff: a file that would change, whose rules would not, is named in the diff
    check = json.loads((tmp_path / "out3.json").read_text())["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert check["changed"] and check["changed_files"] == [installed], check
    assert check["diff"][-1] == {"prepared": "would change: %s" % installed}, check["diff"]
    assert (tmp_path / "state" / "nat.rules").read_text() == NAT_RULES % "203.0.113.5"  # nothing written
