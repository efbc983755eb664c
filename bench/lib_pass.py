#!/usr/bin/env python3
"""One library pass over an inventory directory, in its own process (so that
its peak RSS is its own): load, validate (fabric.build), compute every host's
artifacts (artifacts.fabric_artifacts). Prints one JSON object.

    .venv/bin/python bench/lib_pass.py build/bench/100k/inventory
"""

import json
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input  # noqa: E402


def main(path):
    t0 = time.perf_counter()
    data = load_fabric_input(path)
    t1, c1 = time.perf_counter(), time.process_time()
    fab = build(data)
    t2, c2 = time.perf_counter(), time.process_time()
    plans = fabric_artifacts(fab)
    t3, c3 = time.perf_counter(), time.process_time()
    files = sum(len(v) for v in plans.values())
    size = sum(len(str(v)) for arts in plans.values() for a in arts for v in a.vars.values())
    out = {"instances": fab.instance_count, "hosts": len(fab.hosts), "files": files, "artifact_chars": size,
           "load_s": round(t1 - t0, 3), "validate_s": round(t2 - t1, 3), "compute_s": round(t3 - t2, 3),
           # CPU seconds of this process (on a shared machine, steadier than the wall times)
           "validate_cpu_s": round(c2 - c1, 3), "compute_cpu_s": round(c3 - c2, 3),
           "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
