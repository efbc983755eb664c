# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health-gated rollout: converge step by step, stop at the first step that is not healthy.

    ocs-rollout [-i INVENTORY] [--racks r01,r02] [--allow-warnings] [--settle SECONDS] [ansible-playbook args...]

Steps (:func:`steps`): each spine alone, then each NAT gateway alone, then
each rack (its ToRs and hypervisors together), in that order; ``--racks``
rolls out only those racks. The whole fabric is validated first: an invalid
inventory stops the rollout before any host (exit 1).

Each step runs ``ocs.l3.site --limit <its hosts>`` (the converge, with all its
ordering, guards and checks), then ``ocs.l3.status`` on its hosts and on the
spines, until :func:`gate` finds nothing wrong or ``--settle`` seconds have
passed (sessions take a few seconds to come up). The gate:

- every host of the step has no critical deviation (nor a warning, unless
  ``--allow-warnings``): its expected sessions Established with their
  prefixes, each instance whose tap exists routed on it, its chains present,
  dnsmasq serving;
- a rack step: on every spine, each session to the rack's ToRs is
  Established and receives at least the prefixes expected of it (the rack's
  aggregates).

The NAT and filter chains are checked by the converge itself (the modules
compare what they applied with the kernel's and fail otherwise).

A failed converge or gate stops the rollout with a report naming the step,
the host and what is wrong; later steps are never touched. Exit 0 all steps
healthy, 1 invalid inventory or a converge failed, 2 a step unhealthy.

Why a tool and not one playbook: site.yml is several plays whose order
(tier by tier, handlers flushed between them) is part of its correctness; a
playbook cannot repeat a sequence of plays per rack and stop at the first
unhealthy one, so the tool runs it once per step.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time

from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.host_status import ESTABLISHED
from ansible_collections.ocs.l3.plugins.plugin_utils.drift import ansible_playbook, playbook_env
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input
from ansible_collections.ocs.l3.plugins.plugin_utils.status import run_status


def steps(fab, racks=None):
    """[(name, [host names])] in rollout order; ``racks``: only these racks (ids), no spine or gateway."""
    if racks is not None:
        unknown = sorted(set(racks) - set(fab.racks))
        if unknown:
            raise FabricError(["rollout: --racks names %s, not a rack of ocs_racks (%s)"
                               % (", ".join(unknown), ", ".join(sorted(fab.racks)))])
    out = []
    if racks is None:
        out += [("spine %s" % h.name, [h.name]) for h in sorted(fab.by_role["spine"], key=lambda h: h.name)]
        out += [("gateway %s" % h.name, [h.name]) for h in sorted(fab.by_role["nat_gateway"], key=lambda h: h.name)]
    for rid in sorted(fab.racks):
        if racks is not None and rid not in racks:
            continue
        rack = fab.racks[rid]
        hosts = sorted(t.name for t in rack.tors) + sorted(h.name for h in rack.hypervisors)
        if hosts:
            out.append(("rack %s" % rid, hosts))
    return out


def gate(doc, hosts, spines, allow_warnings=False):
    """What is wrong after a step, as lines naming host and problem ([] = healthy).

    ``doc``: the status summary (host_status.summary) of the step's hosts and the
    spines; ``hosts``: the step's hosts; ``spines``: spine names whose sessions to
    the step's hosts are checked (for a rack step)."""
    bad = ("critical",) if allow_warnings else ("critical", "warning")
    reports = {r["host"]: r for r in doc["reports"]}
    out = []
    for host in hosts:
        rep = reports.get(host)
        if rep is None:
            out.append("%s: no status" % host)
            continue
        out += ["%s: %s %s: %s" % (host, d["severity"], d["what"], d["detail"])
                for d in rep["deviations"] if d["severity"] in bad]
    for spine in spines:
        rows = (reports.get(spine) or {}).get("values", {}).get("sessions")
        if rows is None:
            out.append("%s: no status" % spine)
            continue
        for row in rows:
            if row.get("peer_host") not in hosts:
                continue
            if row["state"] != ESTABLISHED:
                out.append("%s: session %s (%s) is %s" % (spine, row["peer"], row["peer_host"], row["state"]))
            elif row["received"] < row["expected_received"]:
                out.append("%s: session %s (%s) carries %d prefixes, at least %d expected (the rack's aggregates)"
                           % (spine, row["peer"], row["peer_host"], row["received"], row["expected_received"]))
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ocs-rollout", description=__doc__.split("\n\n", maxsplit=1)[0])
    p.add_argument("-i", "--inventory", required=True, help="the inventory (file or directory)")
    p.add_argument("--racks", help="roll out only these racks (comma-separated ids), no spine or gateway")
    p.add_argument("--allow-warnings", action="store_true", help="a warning does not stop the rollout")
    p.add_argument("--settle", type=int, default=45,
                   help="seconds a step may take to become healthy after its converge (default 45)")
    return p.parse_known_args(argv)


def _run(cmd, out):
    proc = subprocess.run(cmd, env=playbook_env(), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        out.write(proc.stdout[-6000:] + proc.stderr[-3000:])
    return proc.returncode


def run_step(name, hosts, args, opts, spines, out):
    """Converge one step and wait for it to be healthy: (exit code, problems); 0 healthy,
    1 the converge failed, 2 not healthy after ``opts.settle`` seconds."""
    limit = ",".join(hosts)
    if _run([ansible_playbook(), "-i", opts.inventory, "ocs.l3.site", "--limit", limit] + args, out) != 0:
        return 1, ["the converge of %s failed (ocs.l3.site --limit %s), see above" % (name, limit)]
    watch = sorted(set(hosts) | set(spines))
    end = time.monotonic() + opts.settle
    while True:
        dummy, doc = run_status(["-i", opts.inventory, "--limit", ",".join(watch)] + args, out=io.StringIO())
        problems = gate(doc, hosts, spines, opts.allow_warnings) if doc else ["no status summary"]
        if not problems or time.monotonic() >= end:
            return (2 if problems else 0), problems
        time.sleep(5)


def main(argv, out=None):
    out = out or sys.stdout
    opts, args = parse_args(argv)
    try:
        fab = build(load_fabric_input(opts.inventory))
        plan = steps(fab, opts.racks.split(",") if opts.racks else None)
    except FabricError as exc:
        out.write("ocs-rollout: nothing touched: %s\n" % exc)
        return 1
    spines = sorted(h.name for h in fab.by_role["spine"])
    for i, (name, hosts) in enumerate(plan, 1):
        out.write("step %d/%d: %s (%s)\n" % (i, len(plan), name, ", ".join(hosts)))
        out.flush()
        code, problems = run_step(name, hosts, args, opts, spines if name.startswith("rack ") else [], out)
        if code:
            out.write("ocs-rollout: stopped at step %d/%d, %s, not healthy:\n" % (i, len(plan), name))
            out.write("".join("  %s\n" % p for p in problems))
            later = [n for n, dummy in plan[i:]]
            out.write("not touched: %s\n" % (", ".join(later) if later else "nothing (it was the last step)"))
            return code
        out.write("  healthy\n")
    out.write("ocs-rollout: %d steps, all healthy\n" % len(plan))
    return 0
