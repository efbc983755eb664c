"""The run lease's decision rule (the module's pure part)."""

import importlib.util
import os

from fabric_data import ROOT

_spec = importlib.util.spec_from_file_location(
    "ocs_host_lock", os.path.join(ROOT, "roles/ocs_guard/library/ocs_host_lock.py"))
lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock)


def test_free_mine_busy_take():
    assert lock.decide(None, "a", 100, []) == "free"
    assert lock.decide({"owner": "a", "expires": 200}, "a", 100, []) == "mine"
    assert lock.decide({"owner": "b", "expires": 200}, "a", 100, []) == "busy"
    assert lock.decide({"owner": "b", "expires": 100}, "a", 100, []) == "take"  # expired
    assert lock.decide({"owner": "b", "expires": 200}, "a", 100, ["b"]) == "take"  # known dead
