"""The run lease module against real processes: two runs never interleave."""

import json
import os
import subprocess
import threading
import time

from helpers import BIN, ansible_env



def lease(path, owner, **kw):
    args = " ".join(["path=%s" % path, "owner=%s" % owner] + ["%s=%s" % (k, v) for k, v in kw.items()])
    cmd = [os.path.join(BIN, "ansible"), "localhost", "-c", "local", "-i", "localhost,",
           "-m", "ocs.l3.ocs_host_lock", "-a", args, "-e", "ansible_python_interpreter=%s" % os.path.join(BIN, "python")]
    env = ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS="1", ANSIBLE_STDOUT_CALLBACK="json")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    return json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def test_second_run_waits_then_fails_naming_the_holder(tmp_path):
    path = str(tmp_path / "run.lease")
    assert not lease(path, "run-a").get("failed")
    res = lease(path, "run-b", wait=2)
    assert res["failed"] and "another ocs-l3 run (run-a) holds this host's lease" in res["msg"]
    assert not lease(path, "run-a").get("failed")  # the holder may take it again
    assert not lease(path, "run-a", state="released")["changed"]  # run bookkeeping, not a change
    assert not os.path.exists(path)
    assert not lease(path, "run-b").get("failed")  # free now


def test_waiting_run_gets_the_lease_when_released(tmp_path):
    path = str(tmp_path / "run.lease")
    lease(path, "run-a")
    threading.Timer(3, lambda: lease(path, "run-a", state="released")).start()
    start = time.monotonic()
    res = lease(path, "run-b", wait=60)
    assert not res.get("failed"), res
    assert time.monotonic() - start >= 2  # it waited instead of interleaving
    assert json.load(open(path))["owner"] == "run-b"


def test_dead_or_expired_holder_is_taken_over(tmp_path):
    path = str(tmp_path / "run.lease")
    lease(path, "run-a")
    res = lease(path, "run-b", wait=0, break_owners="run-a")
    assert not res.get("failed") and res["previous_owner"] == "run-a"
    lease(path, "run-b", state="released")
    lease(path, "run-c", ttl=0)  # a lease that has already expired
    assert lease(path, "run-d", wait=0)["previous_owner"] == "run-c"
