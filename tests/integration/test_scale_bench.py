"""The scale benchmark still runs (at a tiny size; no timing is asserted here).

The real run is `make bench` (10k, 100k and 500k instances); its figures are
in docs/performance.md.
"""

import json
import os
import subprocess
import sys

from helpers import ROOT


def test_bench_runs_at_tiny_size(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "run.py"), "--sizes", "2x2x3,3x2x3", "--tiny",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "results.json").read_text())
    assert [r["instances"] for r in data["sizes"]] == [12, 18]
    assert all(r["render_s"] > 0 and r["lib"]["files"] > 0 for r in data["sizes"])
    dense = data["dense"]
    assert dense["routes_installed"] > 0 and dense["routes_module_commands"] == dense["route_lines"]
    assert dense["noop_changed"] is False and dense["noop_state_identical"] is True
    assert data["dnsmasq"][0]["same_pid_after_sighup"] is True
    assert (tmp_path / "scale.png").stat().st_size > 0
    assert "dense hypervisor" in proc.stdout


def test_render_step_bench_runs_with_workers():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "render_loop.py"), "--racks", "2",
                           "--hypervisors", "3", "--instances", "4", "--workers", "1,2"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if "workers" in line]
    changed = [int(line.rsplit(", ", 1)[1].split()[0]) for line in lines]
    assert len(lines) == 4 and changed[0] == changed[2] > 0 and changed[1] == changed[3] == 0
