"""The firewall preflight (no lock-out) reads the address a run comes from where it is: SSH_CLIENT
in the connection's own session. With ansible_become, sudo's env_reset drops SSH_CLIENT from a
command run through it: before the fix, such a run read nothing and passed unchecked, so a run from
outside the management ranges applied a host policy that cut it (and every later run) off.

Run locally (connection local, SSH_CLIENT in the environment as sshd sets it) with a real sudo;
ANSIBLE_BECOME_ALLOW_SAME_USER makes Ansible go through sudo although the test runs as root, as a
run with ansible_user=admin and ansible_become does on a host."""

import json
import os
import shutil
import subprocess

import pytest

from helpers import BIN, ansible_env

PLAY = """
- hosts: localhost
  gather_facts: false
  vars:
    _ocs_render_result: {policy: {host_policy: true, management_ranges: ["198.18.0.0/15"]}}
  tasks:
    - name: preflight
      ansible.builtin.include_role:
        name: ocs.l3.ocs_firewall
        tasks_from: preflight
"""


def run(tmp_path, ssh_client=None, become=False, *extra):
    if shutil.which("sudo") is None:
        pytest.fail("this test needs sudo (make apt installs it)")
    play = tmp_path / "play.yml"
    play.write_text(PLAY)
    # become as an operator sets it: inventory variables (they beat the become keyword of a task)
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": os.path.join(BIN, "python"),
        "ansible_become": become, "ansible_become_method": "sudo"}}}}))
    env = ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json",
                      ANSIBLE_BECOME_ALLOW_SAME_USER="true")
    env.pop("SSH_CLIENT", None)
    if ssh_client:
        env["SSH_CLIENT"] = ssh_client
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", str(inventory)] + list(extra) + [str(play)],
                          env=env, capture_output=True, text=True, timeout=300)
    out = json.loads(proc.stdout)
    results = [h["localhost"] for p in out["plays"] for t in p["tasks"] for h in [t["hosts"]] if "localhost" in h]
    failed = [r.get("msg", "") for r in results if r.get("failed")]
    return proc.returncode, failed, results


def test_a_run_from_outside_the_ranges_is_refused_with_and_without_become(tmp_path):
    for become in (False, True):
        rc, failed, results = run(tmp_path, "203.0.113.9 50022 22", become)
        assert rc != 0 and len(failed) == 1, (become, failed)
        assert "this run comes from 203.0.113.9, outside ocs_fabric.management_ranges (198.18.0.0/15)" in failed[0]
    # the address was read in the connection's session, not through sudo
    read = [r for r in results if "stdout" in r]
    assert read and read[0]["stdout"].split()[0] == "203.0.113.9"


def test_a_run_from_inside_the_ranges_passes_with_become(tmp_path):
    rc, failed, dummy = run(tmp_path, "198.18.0.5 50022 22", True)
    assert rc == 0 and failed == []


def test_over_ssh_an_address_that_cannot_be_read_fails_closed(tmp_path):
    # Connection local without SSH_CLIENT (pull mode, the reconcile timer): nothing to check, the run goes on.
    rc, failed, dummy = run(tmp_path, None, True)
    assert rc == 0 and failed == []
    # Over SSH (the role's own test of the connection, forced here) an empty SSH_CLIENT is refused.
    rc, failed, dummy = run(tmp_path, None, True, "-e", "_ocs_firewall_over_ssh=true")
    assert rc != 0 and "SSH_CLIENT is empty on the host" in failed[0]
    assert "set ocs_firewall_controller_address" in failed[0]
