"""The ocs_agent role for real, without touching this machine: a private mount namespace with
overlays on /usr/lib and /etc, so everything the role writes lands in the overlays' upper
directories (the test reads them afterwards). Units are not enabled (no systemd here:
``ocs_agent_manage_service: false``); the molecule fabric runs them under systemd."""

import os
import re
import shutil
import subprocess

import pytest

from helpers import BIN, EXAMPLE, ROOT, ansible_env
from ansible_collections.ocs.l3.plugins.module_utils import constants
from ansible_collections.ocs.l3.plugins.module_utils.host_state import parse_config
from ansible_collections.ocs.l3.plugins.plugin_utils import host_library

PLAY = """---
- name: Render
  hosts: all
  gather_facts: false
  roles:
    - role: ocs.l3.ocs_render
- name: Boot restore and host agent
  hosts: tor-r01:hv-r01-01
  gather_facts: false
  roles:
    - role: ocs.l3.ocs_agent
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    if not shutil.which("unshare"):
        pytest.fail("this test needs unshare (util-linux)")
    tmp = tmp_path_factory.mktemp("role")
    (tmp / "play.yml").write_text(PLAY)
    # One host at a time, each twice: both write the same paths of this one machine
    # (/etc/ocs-l3/expected.json), so run in parallel they would overwrite each other.
    cmd = " ".join([os.path.join(BIN, "ansible-playbook"), "-i", EXAMPLE, str(tmp / "play.yml"),
                    "--limit", "{host}", "-e", "ocs_render_build_dir=%s" % (tmp / "build"),
                    "-e", "ansible_connection=local", "-e", "ansible_python_interpreter=%s" % os.path.join(BIN, "python"),
                    "-e", "ocs_agent_manage_service=false"])
    script = "set -e\n"
    for d in ("usr/lib", "etc"):
        script += "mkdir -p {t}/up/{d} {t}/work/{d}\n".format(t=tmp, d=d)
        script += "mount -t overlay overlay -o lowerdir=/{d},upperdir={t}/up/{d},workdir={t}/work/{d} /{d}\n".format(
            t=tmp, d=d)
    for host in ("tor-r01", "hv-r01-01"):
        run = cmd.format(host=host)
        script += "{cmd} >> {t}/first.log 2>&1\n{cmd} >> {t}/second.log 2>&1\n".format(cmd=run, t=tmp)
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "bash", "-c", script], cwd=ROOT,
                          env=ansible_env(), capture_output=True, text=True, timeout=600)
    logs = {n: (tmp / ("%s.log" % n)).read_text() if (tmp / ("%s.log" % n)).exists() else "" for n in
            ("first", "second")}
    assert proc.returncode == 0, proc.stderr + logs["first"][-3000:] + logs["second"][-3000:]
    return tmp, logs


def recap(log):
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+: ok=\d+\s+changed=(\d+)", log, re.M)}


def test_the_role_installs_the_library_executables_units_and_config(installed):
    tmp, logs = installed
    up = tmp / "up"
    archive = up / constants.HOST_ARCHIVE_PATH.lstrip("/")
    # one file, the render's build of this collection; run by the interpreter the units name
    assert sorted(os.listdir(up / "usr/lib/ocs-l3")) == ["ocs-l3.pyz"]
    assert archive.read_bytes() == host_library.archive_bytes()
    assert os.stat(archive).st_mode & 0o777 == 0o644
    units = up / "etc/systemd/system"
    restore = (units / "ocs-l3-restore.service").read_text()
    assert "Type=oneshot" in restore and "RemainAfterExit=yes" in restore
    assert re.search(r"^Before=.*\bfrr\.service\b.*\bocs-dhcp\.service\b", restore, re.M)
    assert "ExecStart=/usr/bin/python3 /usr/lib/ocs-l3/ocs-l3.pyz restore\n" in restore
    dropin = (units / "frr.service.d/ocs-l3-restore.conf").read_text()
    assert "Requires=ocs-l3-restore.service" in dropin and "After=ocs-l3-restore.service" in dropin
    agent = (units / "ocs-l3-agent.service").read_text()  # the hypervisor's
    assert "Restart=always" in agent and "/usr/lib/ocs-l3/ocs-l3.pyz agent --window 0.1" in agent
    # the example is dual-stack: the RA settings the agent's router advertisements carry
    conf = parse_config((up / "etc/ocs-l3/agent.conf").read_text(), "agent.conf")
    assert conf == {"instance_ifname_prefix": "tap", "ra_mtu": 1450, "ra_dns_lifetime": 43200}, conf


def test_the_second_run_changes_nothing(installed):
    dummy, logs = installed
    assert recap(logs["first"])["hv-r01-01"] > 0
    assert recap(logs["second"]) == {"hv-r01-01": 0, "tor-r01": 0}, logs["second"][-2000:]


def test_the_installed_restore_runs_on_the_system_python(installed, netns):
    """The installed copy, not the checkout: system python3 -S, the archive alone."""
    tmp, dummy = installed
    up = tmp / "up"
    state = tmp / "build" / "hv-r01-01" / "etc" / "ocs-l3"
    proc = subprocess.run(["ip", "netns", "exec", netns, "/usr/bin/python3", "-S",
                           str(up / constants.HOST_ARCHIVE_PATH.lstrip("/")), "restore", "--check", "--state-dir",
                           str(state)],
                          env=dict(PATH=os.environ["PATH"]),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "routes: would apply:" in proc.stdout and proc.stdout.splitlines()[-1].startswith("restore: ")
