# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fabric status over push: ocs-status [--json] [-i INVENTORY] [ansible-playbook args...].

Runs the playbook ocs.l3.status (each host's ocs-l3-status collector, module
ocs_status), then prints its summary as a table, worst first (or, --json, the
JSON document: {reports, worst, exit_code, counts}). Exit 0 ok or info, 1
warning, 2 critical (a host that gave no status is critical). Pull mode is
each host's own timer (ocs-l3-status.timer, node_exporter textfile).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from ansible_collections.ocs.l3.plugins.module_utils.host_status import table
from ansible_collections.ocs.l3.plugins.plugin_utils.drift import ansible_playbook, playbook_args, playbook_env


def run_status(args, out=None, as_json=False):
    """Run the playbook with ``args``; print the summary; return (exit code, summary or None)."""
    out = out or sys.stdout
    fd, path = tempfile.mkstemp(prefix="ocs-status-", suffix=".json")
    os.close(fd)
    os.unlink(path)
    try:
        proc = subprocess.run([ansible_playbook(), "ocs.l3.status", "-e", "ocs_status_json=%s" % path]
                              + playbook_args(args), env=playbook_env(), capture_output=True, text=True,
                              check=False)
        try:
            with open(path) as fh:
                doc = json.load(fh)
        except (OSError, ValueError):
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            sys.stderr.write("ocs-status: the playbook produced no summary (rc %d)\n" % proc.returncode)
            return 2, None
    finally:
        if os.path.exists(path):
            os.unlink(path)
    out.write(json.dumps(doc, indent=1, sort_keys=True) + "\n" if as_json else table(doc["reports"]))
    return doc["exit_code"], doc


def main(argv):
    args = list(argv)
    as_json = "--json" in args
    if as_json:
        args.remove("--json")
    code, dummy = run_status(args, as_json=as_json)
    return code
