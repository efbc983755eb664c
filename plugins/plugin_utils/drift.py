# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drift report: what would a converge change, per host? Exit 2 on drift.

    ocs-drift [-i INVENTORY] [--report-json FILE] [ansible-playbook args...]

Runs the playbook ocs.l3.site in check mode with diffs (every task of the project
supports check mode) and the JSON callback, then prints, per host, each task
that would change something, with its diff when there is one. Exit codes:
0 converged, 2 drift, 1 a host failed or was unreachable (Ansible's own exit
code does not tell drift from convergence). ``--report-json FILE`` also writes
the report as data for monitoring: ``{"checked": [hosts], "drift": {host:
[task names]}, "failed": {host: [task names]}}``. $ANSIBLE_CONFIG is used when
set (default: the project's ansible.cfg). The controller-side render step
reports no change in check mode: it is recomputed on every run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def report(data, out=sys.stdout):
    """(drift, failed) from the JSON callback's output; prints the report."""
    drift, failed = {}, set()
    for play in data.get("plays", []):
        for task in play.get("tasks", []):
            name = task["task"]["name"]
            for host, res in task.get("hosts", {}).items():
                if res.get("failed") or res.get("unreachable"):
                    failed.add(host)
                    print("FAILED  %s: %s: %s" % (host, name, res.get("msg", "")), file=out)
                if res.get("changed"):
                    drift.setdefault(host, []).append((name, res.get("diff")))
    for host in sorted(drift):
        print("DRIFT   %s: %d task(s) would change" % (host, len(drift[host])), file=out)
        for name, diff in drift[host]:
            print("  - %s" % name, file=out)
            for d in diff if isinstance(diff, list) else [diff] if diff else []:
                if isinstance(d, dict) and ("before" in d or "after" in d):
                    print("      before: %r" % (str(d.get("before", ""))[:300],), file=out)
                    print("      after:  %r" % (str(d.get("after", ""))[:300],), file=out)
    stats = data.get("stats", {})
    print("%d host(s) checked, %d drifted, %d failed" % (len(stats), len(drift), len(failed)), file=out)
    return drift, failed


def report_data(data):
    """The report as data: hosts checked, and per host the tasks that would change or failed."""
    drift, failed = {}, {}
    for play in data.get("plays", []):
        for task in play.get("tasks", []):
            for host, res in task.get("hosts", {}).items():
                if res.get("failed") or res.get("unreachable"):
                    failed.setdefault(host, []).append(task["task"]["name"])
                if res.get("changed"):
                    drift.setdefault(host, []).append(task["task"]["name"])
    return {"checked": sorted(data.get("stats", {})), "drift": drift, "failed": failed}


def split_report_json(argv):
    """(path or None, the other arguments): ``--report-json FILE`` taken out of ``argv``."""
    args, path = list(argv), None
    if "--report-json" in args:
        i = args.index("--report-json")
        if i + 1 >= len(args):
            raise SystemExit("ocs-drift: --report-json needs a file name")
        path = args[i + 1]
        del args[i:i + 2]
    return path, args


def playbook_args(argv):
    """``argv`` with ``-i`` the example inventory when none is given (the tools' default)."""
    args = list(argv)
    example = os.path.join(COLLECTION_ROOT, "inventory", "example")
    if "-i" not in args and os.path.isdir(example):
        args = ["-i", example] + args
    return args


def playbook_env(**extra):
    """The environment of a tool's ansible-playbook: $ANSIBLE_CONFIG when set, else the project's ansible.cfg."""
    env = dict(os.environ, **extra)
    cfg = os.path.join(COLLECTION_ROOT, "ansible.cfg")
    if not os.environ.get("ANSIBLE_CONFIG") and os.path.isfile(cfg):
        env["ANSIBLE_CONFIG"] = cfg
    return env


def ansible_playbook():
    """ansible-playbook beside this Python (the project's venv), else the one on PATH."""
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    return exe if os.path.exists(exe) else "ansible-playbook"


def main(argv):
    report_json, argv = split_report_json(argv)
    args = playbook_args(argv)
    env = playbook_env(ANSIBLE_STDOUT_CALLBACK="json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    proc = subprocess.run([ansible_playbook(), "ocs.l3.site", "--check", "--diff"] + args,
                          env=env, capture_output=True, text=True, check=False)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        sys.stderr.write(proc.stdout + proc.stderr)
        return 1
    drift, failed = report(data)
    if report_json:
        with open(report_json, "w") as fh:
            json.dump(report_data(data), fh, indent=1, sort_keys=True)
    if failed:
        return 1
    return 2 if drift else 0
