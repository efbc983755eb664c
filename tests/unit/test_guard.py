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
