"""ocs.l3.ocs_install through Ansible (action + module, two module runs when content is needed):
the alternate content a host wants while its flag file exists (the FRR role's drained frr.conf),
validation before anything is installed, and a second run that changes nothing."""

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
    assert conf.read_text() == "router bgp 1\n" and oct(conf.stat().st_mode & 0o777) == "0o640"
    assert not run(tmp_path)["changed"]
    # drained: the flag exists, the module wants the alternate and the action sends it
    (tmp_path / "drain.json").write_text("{}")
    drained = run(tmp_path)
    assert drained["changed"] and drained["changed_files"] == [str(conf)]
    assert conf.read_text() == "router bgp 1\n bgp graceful-shutdown\n"
    assert not run(tmp_path)["changed"]  # stays drained, nothing to do
    # undrained: back to the plain content
    (tmp_path / "drain.json").unlink()
    assert run(tmp_path)["changed_files"] == [str(conf)] and conf.read_text() == "router bgp 1\n"


def test_content_that_fails_validation_installs_nothing(tmp_path):
    run(tmp_path)
    (tmp_path / "daemons").write_text("old\n")
    res = run(tmp_path, plain="no such line\\n")
    assert res["failed"] and "frr.conf: failed to validate (grep -q router %s, exit 1)" in res["msg"]
    assert (tmp_path / "frr.conf").read_text() == "router bgp 1\n"
    assert (tmp_path / "daemons").read_text() == "old\n"  # the other file of the call was not installed either
