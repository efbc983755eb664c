"""The run lease's decision rule (the module's pure part)."""


from ansible_collections.ocs.l3.plugins.modules import ocs_host_lock as lock



def test_free_mine_busy_take():
    assert lock.decide(None, "a", 100, []) == "free"
    assert lock.decide({"owner": "a", "expires": 200}, "a", 100, []) == "mine"
    assert lock.decide({"owner": "b", "expires": 200}, "a", 100, []) == "busy"
    assert lock.decide({"owner": "b", "expires": 100}, "a", 100, []) == "take"  # expired
    assert lock.decide({"owner": "b", "expires": 200}, "a", 100, ["b"]) == "take"  # known dead


def test_wait_die_orders_concurrent_runs():
    """Two runs wanting the same hosts never wait for each other in a cycle:
    the older run waits for a younger holder, the younger gives way to an older one."""
    older = {"owner": "run-old", "expires": 200, "started": 10.0}
    younger = {"owner": "run-new", "expires": 200, "started": 20.0}
    assert lock.decide(older, "run-new", 100, [], started=20.0) == "yield"
    assert lock.decide(younger, "run-old", 100, [], started=10.0) == "busy"
    # a tie is broken by the run id; leases without a start time (older releases) are waited for
    assert lock.decide({"owner": "a", "expires": 200, "started": 5.0}, "b", 100, [], started=5.0) == "yield"
    assert lock.decide({"owner": "b", "expires": 200, "started": 5.0}, "a", 100, [], started=5.0) == "busy"
    assert lock.decide({"owner": "b", "expires": 200}, "a", 100, [], started=5.0) == "busy"
    assert lock.decide(older, "run-new", 100, []) == "busy"  # no start time given: wait, as before
    # expired or known-dead leases are taken whatever their age
    assert lock.decide(dict(older, expires=100), "run-new", 100, [], started=20.0) == "take"


def _lock_module(tmp_path, owner, **params):
    """The module run as Ansible runs it (its arguments as JSON on stdin): its result."""
    import json
    import os
    import subprocess
    import sys
    args = {"ANSIBLE_MODULE_ARGS": dict({"owner": owner, "path": str(tmp_path / "run.lease")}, **params)}
    res = subprocess.run([sys.executable, lock.__file__], input=json.dumps(args), capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), timeout=60)
    return json.loads(res.stdout)


def test_module_reports_how_long_it_waited_and_whether_it_gave_way(tmp_path):
    import json
    import time
    free = _lock_module(tmp_path, "run-a", started=20.0)
    assert free["waited"] == 0.0 and "waited_for" not in free and not free.get("failed")
    # held by an older run: this younger one gives way at once, saying so
    gave = _lock_module(tmp_path, "run-b", started=30.0)
    assert gave["failed"] and gave["gave_way"] is True and gave["owner"] == "run-a"
    # held by a younger run whose lease expires in 2 s: the older one waits for it, and says how long
    (tmp_path / "run.lease").write_text(json.dumps({"owner": "run-y", "taken": int(time.time()),
                                                     "expires": int(time.time()) + 2, "started": 40.0}))
    waited = _lock_module(tmp_path, "run-o", started=10.0, wait=30)
    assert not waited.get("failed") and waited["waited_for"] == "run-y" and 1.0 <= waited["waited"] < 30
    assert waited["previous_owner"] == "run-y"
    # the wait runs out: failed, with the time waited and the holder
    out = _lock_module(tmp_path, "run-z", started=5.0, wait=1)
    assert out["failed"] and out["owner"] == "run-o" and out["waited"] >= 1 and out["waited_for"] == "run-o"
