"""The FRR load benchmark still runs (tiny rack, real FRR under watchfrr; no timing is asserted here).

The real run is `make bench-frr` (1 rack x 20 hypervisors x 1,000 instances); its
figures are in docs/performance.md ("FRR load of dense configs").
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT


def test_frr_load_bench_runs_at_tiny_size(tmp_path):
    if os.geteuid() != 0 or not shutil.which("vtysh") or not os.path.exists("/usr/lib/frr/frr-reload.py"):
        pytest.fail("this test needs root, frr and frr-pythontools (make validate installs them)")
    cmd = [sys.executable, os.path.join(ROOT, "bench", "frr_load.py"), "--tiny", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["rack"] == {"hypervisors": 2, "instances_per_hypervisor": 50, "instances": 100}
    assert data["all_good"] is True
    [case] = data["cases"]
    assert case["case"] == "merged" and [r["host"] for r in case["runs"]] == ["tor-r01"]
    for run in case["runs"]:
        assert list(run["steps"]) == ["first", "noop", "+1 adjacent", "+1 apart"]
        assert run["watchfrr"] is True
        for name, step in run["steps"].items():
            assert step["ok"] and not step["recovered"], (run["host"], name, step)
            assert step["pids_unchanged"] and step["watchfrr_actions"] == [] and step["watchfrr_all_up"], step
            assert step["prefix_lists_equal"] and step["prefix_list_entries_running"] > 0, step
            assert step["changed"] is (name != "noop"), (run["host"], name, step)
        assert run["steps"]["+1 apart"]["lines_to_add"] >= 1
    # the ToR's config is the merged one: fewer prefix-list lines than instances
    tor = case["runs"][0]
    assert tor["prefix_list_lines"] < data["rack"]["instances"]
    assert "PIDs same" in proc.stdout
