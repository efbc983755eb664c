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


def test_rollback_problem_refuses_only_an_older_run():
    assert lock.rollback_problem(None, 5) is None  # the host has no record yet
    assert lock.rollback_problem(5, None) is None  # a run outside git: no generation to compare
    assert lock.rollback_problem(5, 5) is None and lock.rollback_problem(4, 5) is None
    assert lock.rollback_problem(6, 5) == ("this host has applied generation 6, newer than this run's 5: "
                                           "refusing to roll it back (run from an up-to-date inventory)")


def test_acquire_refuses_an_older_generation_and_takes_nothing(tmp_path):
    gen = tmp_path / "state" / "generation"
    gen.parent.mkdir()
    gen.write_text("200\n")
    old = _lock_module(tmp_path, "run-old", generation=100, generation_file=str(gen))
    assert old["failed"] and "applied generation 200, newer than this run's 100" in old["msg"]
    assert old["host_generation"] == 200
    assert not (tmp_path / "run.lease").exists()  # the lease was not taken
    assert gen.read_text() == "200\n"
    new = _lock_module(tmp_path, "run-new", generation=200, generation_file=str(gen))
    assert not new.get("failed") and new["host_generation"] == 200 and (tmp_path / "run.lease").exists()
    # a host without a record (first run) or a corrupt one is not refused
    gen.write_text("garbage")
    assert _lock_module(tmp_path, "run-new", generation=1, generation_file=str(gen))["host_generation"] is None


def test_release_records_the_generation_and_the_time_then_gives_the_lease_back(tmp_path):
    import os
    import time
    gen, done = tmp_path / "state" / "generation", tmp_path / "state" / "reconciled"
    files = dict(generation_file=str(gen), reconciled_file=str(done))
    _lock_module(tmp_path, "run-a")
    first = _lock_module(tmp_path, "run-a", state="released", generation=7, **files)
    assert first["changed"] and gen.read_text() == "7\n" and done.exists()
    assert oct(os.stat(str(gen)).st_mode & 0o777) == "0o644"
    assert not (tmp_path / "run.lease").exists()
    # the same generation again: no change, but the time of the run is recorded
    os.utime(str(done), (1, 1))
    _lock_module(tmp_path, "run-b")
    again = _lock_module(tmp_path, "run-b", state="released", generation=7, **files)
    assert not again["changed"] and os.stat(str(done)).st_mtime > time.time() - 60
    # check mode (record=false): nothing written, the lease still given back
    _lock_module(tmp_path, "run-c")
    dry = _lock_module(tmp_path, "run-c", state="released", generation=8, record=False, **files)
    assert not dry["changed"] and gen.read_text() == "7\n" and not (tmp_path / "run.lease").exists()
    # a run whose lease another run took over records nothing and leaves that run's lease alone
    _lock_module(tmp_path, "run-d")
    lost = _lock_module(tmp_path, "run-e", state="released", generation=8, **files)
    assert lost["failed"] and "taken over by run run-d" in lost["msg"] and lost["owner"] == "run-d"
    assert gen.read_text() == "7\n" and (tmp_path / "run.lease").exists()
