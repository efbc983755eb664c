#!/usr/bin/env python3
"""The render loop of ``ocs_render`` alone: every host's files printed with skeletons (as shipped)
and, for comparison, every file printed through the templar (as before; issue 19, item 6).
With ``--workers``, instead: the render's whole per-host step (compute, print, compare with the
build directory, stage) into a build directory, once per worker count given, twice each (into an
empty directory, then again with nothing changed).

    .venv/bin/python bench/render_loop.py --racks 10     # 10 x 20 x 50 = 10k instances
    .venv/bin/python bench/render_loop.py --racks 100 --workers 1,2
"""

import argparse
import os
import tempfile
import time

from ansible_collections.ocs.l3.plugins.action import ocs_render
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts, host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.plugin_utils import render
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input
from ansible_collections.ocs.l3.tools import gen_fabric as gen


def every_file(templar, plans):
    for host, artifacts in plans.items():
        for art in artifacts:
            path = os.path.join(render.ROLES_DIR, art.role, "templates", art.template)
            with open(path) as fh:
                source = render.trust_as_template(fh.read())
            render._print(templar, path, source, dict(art.vars), render.MANAGED, host)  # pylint: disable=protected-access


def per_host_step(args, counts):
    with tempfile.TemporaryDirectory() as tmp:
        gen.generate(os.path.join(tmp, "inv"), args.racks, args.hypervisors, args.instances)
        fab = build(load_fabric_input(os.path.join(tmp, "inv")))
        templar = render.offline_templar()
        names = sorted(fab.hosts)
        for workers in counts:
            out = os.path.join(tmp, "build-%d" % workers)
            for run in ("empty build directory", "nothing changed"):
                cache = {}

                def produce(host, cache=cache):
                    return render.render_host(templar, host, host_artifacts(fab, fab.hosts[host]), None, cache)

                t0, c0 = time.perf_counter(), time.process_time()
                changed, manifest, dummy = ocs_render._write(out, fab, names, produce, full=True, workers=workers)
                print("%d hosts, workers %d, %s: %.2f s wall, %.2f s CPU in this process, %d files changed"
                      % (len(names), workers, run, time.perf_counter() - t0, time.process_time() - c0, len(changed)),
                      flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--racks", type=int, default=10)
    ap.add_argument("--hypervisors", type=int, default=20)
    ap.add_argument("--instances", type=int, default=50)
    ap.add_argument("--workers", help="comma-separated worker counts: time the whole per-host step with each")
    args = ap.parse_args()
    if args.workers:
        return per_host_step(args, [int(w) for w in args.workers.split(",")])
    with tempfile.TemporaryDirectory() as tmp:
        gen.generate(os.path.join(tmp, "inv"), args.racks, args.hypervisors, args.instances)
        plans = fabric_artifacts(build(load_fabric_input(os.path.join(tmp, "inv"))))
    templar = render.offline_templar()
    files = sum(len(a) for a in plans.values())
    t0 = time.perf_counter()
    cache = {}
    for host, artifacts in plans.items():
        render.render_host(templar, host, artifacts, None, cache)
    t1 = time.perf_counter()
    every_file(templar, plans)
    t2 = time.perf_counter()
    print("%d hosts, %d files: skeletons %.2f s (%.3f ms a file), every file printed %.2f s (%.3f ms a file)"
          % (len(plans), files, t1 - t0, 1000 * (t1 - t0) / files, t2 - t1, 1000 * (t2 - t1) / files))


if __name__ == "__main__":
    main()
