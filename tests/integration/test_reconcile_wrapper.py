"""tools/ocs-reconcile: one run at a time, leases of failed runs broken, every run logged.

ansible-playbook is replaced by a stand-in (OCS_ANSIBLE_PLAYBOOK) that records its
arguments, sleeps and exits with a chosen code: this tests the wrapper's own logic.
"""

import json
import os
import subprocess
import time

from helpers import ROOT

WRAPPER = os.path.join(ROOT, "tools", "ocs-reconcile")
FAKE = r"""#!/bin/bash
printf '%s\n' "$@" > "$FAKE_DIR/args.$$"
printf '%s' "$ANSIBLE_CONFIG" > "$FAKE_DIR/config.$$"
if [ -n "${FAKE_DAEMON:-}" ]; then setsid sleep "$FAKE_DAEMON" >/dev/null 2>&1 < /dev/null & fi
sleep "${FAKE_SLEEP:-0}"
exit "${FAKE_RC:-0}"
"""


def _env(tmp_path, **kw):
    fake = tmp_path / "ansible-playbook"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    env = dict(os.environ, OCS_STATE_DIR=str(tmp_path / "state"), OCS_LOG=str(tmp_path / "log" / "reconcile.log"),
               OCS_ANSIBLE_PLAYBOOK=str(fake), FAKE_DIR=str(tmp_path))
    env.update({k: str(v) for k, v in kw.items()})
    return env


def _start(env):
    return subprocess.Popen([WRAPPER, "-i", "inv"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _calls(tmp_path):
    return [p.read_text().split("\n") for p in sorted(tmp_path.glob("args.*"), key=os.path.getmtime)]


def _break_owners(args):
    return json.loads(args[args.index("-e", args.index("-e") + 1) + 1])["ocs_guard_break_owners"]


def test_second_run_exits_at_once_while_the_first_runs(tmp_path):
    env = _env(tmp_path, FAKE_SLEEP=3)
    first = _start(env)
    time.sleep(1)
    second = subprocess.run([WRAPPER, "-i", "inv"], env=env, capture_output=True, text=True, timeout=30)
    assert second.returncode == 0 and "another reconcile holds" in second.stdout
    assert first.wait(timeout=30) == 0
    assert len(_calls(tmp_path)) == 1  # only one converge ran
    log = (tmp_path / "log" / "reconcile.log").read_text()
    assert " start " in log and " end " in log and "rc=0" in log and "another reconcile holds" in log


def test_failed_runs_leases_are_broken_by_the_next_run(tmp_path):
    assert subprocess.run([WRAPPER, "-i", "inv"], env=_env(tmp_path, FAKE_RC=2), capture_output=True,
                          timeout=30).returncode == 2
    failed_args = _calls(tmp_path)[0]
    failed_id = failed_args[failed_args.index("-e") + 1].split("=", 1)[1]
    assert _break_owners(failed_args) == []
    assert subprocess.run([WRAPPER, "-i", "inv"], env=_env(tmp_path), capture_output=True,
                          timeout=30).returncode == 0
    assert _break_owners(_calls(tmp_path)[1]) == [failed_id]  # the failed run's leases are broken
    assert subprocess.run([WRAPPER, "-i", "inv"], env=_env(tmp_path), capture_output=True,
                          timeout=30).returncode == 0
    assert _break_owners(_calls(tmp_path)[2]) == []  # a successful run clears the list
    assert "rc=2" in (tmp_path / "log" / "reconcile.log").read_text()


def test_ansible_config_is_the_callers_or_the_projects(tmp_path):
    env = _env(tmp_path)
    env.pop("ANSIBLE_CONFIG", None)
    assert subprocess.run([WRAPPER, "-i", "inv"], env=env, capture_output=True, timeout=30).returncode == 0
    env["ANSIBLE_CONFIG"] = str(tmp_path / "molecule.cfg")
    assert subprocess.run([WRAPPER, "-i", "inv"], env=env, capture_output=True, timeout=30).returncode == 0
    seen = [p.read_text() for p in sorted(tmp_path.glob("config.*"), key=os.path.getmtime)]
    assert seen == [os.path.join(ROOT, "ansible.cfg"), str(tmp_path / "molecule.cfg")]


def test_a_process_that_outlives_the_run_does_not_hold_the_lock(tmp_path):
    """ssh's ControlPersist master or podman's conmon outlive a run: they must
    not inherit the wrapper's lock, or the next run would think one is going."""
    env = _env(tmp_path, FAKE_DAEMON=20)
    out = tmp_path / "out"
    try:
        for _ in range(2):  # output to a file: the daemon may keep a pipe open, not the lock
            with open(out, "w") as fh:
                assert subprocess.run([WRAPPER, "-i", "inv"], env=env, stdout=fh, stderr=subprocess.STDOUT,
                                      timeout=30).returncode == 0
        assert "another reconcile holds" not in out.read_text(), out.read_text()
        assert len(_calls(tmp_path)) == 2
    finally:
        subprocess.run(["pkill", "-f", "^sleep 20$"], check=False)
