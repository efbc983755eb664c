#!/usr/bin/env python3
"""Benchmark of the host agent (ocs-l3-agent) on a real kernel, in a scratch network namespace (root).

Measures, with the agent run as installed (system python3 -S, only the host
library on PYTHONPATH):

* latency: time from `ip link add TAP ... ; ip link set TAP up` (one `ip -batch`)
  to the tap's /32 route being present, over --rounds recreations of the same tap
  (the VM restart case); p50, p95, max;
* burst: --burst taps created at once (a power failure), time until every /32 is
  present and how many batches the agent used;
* idle cost: the agent's RSS and the CPU time it used while idle for --idle seconds.

    .venv/bin/python bench/agent.py                      # 30 rounds, burst 1000, 10 s idle
    .venv/bin/python bench/agent.py --window 0.02 --rounds 50
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

from ansible_collections.ocs.l3.plugins.module_utils import constants
from ansible_collections.ocs.l3.plugins.plugin_utils import host_library

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else shutil.which("python3")
TICKS = os.sysconf("SC_CLK_TCK")


def sh(*cmd, data=None):
    return subprocess.run(cmd, input=data, capture_output=True, text=True, check=True).stdout


def state_for(taps):
    lines = []
    for i, tap in enumerate(taps):
        net = 1 + i // 250
        lines.append("address replace 198.19.%d.1/24 dev %s noprefixroute" % (net, tap))
        lines.append("route replace 198.19.%d.%d/32 dev %s proto %d scope link"
                     % (net, 2 + i % 250, tap, constants.ROUTE_PROTOCOL))
    return "\n".join(lines) + "\n"


def route_count(ns, dev=None):
    args = ["ip", "-n", ns, "-4", "route", "show", "proto", str(constants.ROUTE_PROTOCOL)]
    if dev:
        args += ["dev", dev]
    return len([ln for ln in sh(*args).splitlines() if ln.strip()])


def wait(pred, timeout):
    t0 = time.monotonic()
    while not pred():
        if time.monotonic() - t0 > timeout:
            raise SystemExit("timed out after %.1f s" % timeout)
    return time.monotonic() - t0


def cpu_rss(pid):
    with open("/proc/%d/stat" % pid) as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / TICKS
    with open("/proc/%d/status" % pid) as fh:
        rss = next(int(ln.split()[1]) for ln in fh if ln.startswith("VmRSS:"))
    return cpu, rss


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--burst", type=int, default=1000)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--window", type=float, default=0.1)
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces)")

    tmp = tempfile.mkdtemp(prefix="ocs-agent-bench-")
    ns = "ocs-bench-%s" % uuid.uuid4().hex[:6]
    archive = host_library.write_archive(tmp)  # what the role installs: ocs-l3.pyz
    taps = ["tapbench%06d" % i for i in range(max(args.burst, 1))]
    state = os.path.join(tmp, "state")
    os.makedirs(state)
    with open(os.path.join(state, "agent.conf"), "w") as fh:
        fh.write("instance_ifname_prefix=tap\n")
    with open(os.path.join(state, "routes.batch"), "w") as fh:
        fh.write(state_for(taps))
    sh("ip", "netns", "add", ns)
    proc = None
    try:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        proc = subprocess.Popen(["ip", "netns", "exec", ns, PYTHON, "-S", archive, "agent",
                                 "--state-dir", state, "--window", str(args.window)],
                                env=dict(PATH=os.environ["PATH"]),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        log = []
        threading.Thread(target=lambda: [log.append(ln.rstrip()) for ln in proc.stdout], daemon=True).start()
        wait(lambda: any(ln.startswith("started:") for ln in log), 10)

        tap = taps[0]
        latencies = []
        for _ in range(args.rounds):
            t0 = time.monotonic()
            sh("ip", "-n", ns, "-batch", "-", data="link add %s type veth peer name pb\nlink set %s up\n" % (tap, tap))
            wait(lambda: route_count(ns, tap) == 1, 10)
            latencies.append(time.monotonic() - t0)
            sh("ip", "-n", ns, "link", "del", tap)

        burst = None
        if args.burst:
            batch = "".join("link add %s type veth peer name pb%s\n" % (t, t[-6:]) for t in taps)
            batch += "".join("link set %s up\n" % t for t in taps)
            before = len([ln for ln in log if ln.startswith("batch: ")])
            t0 = time.monotonic()
            sh("ip", "-n", ns, "-batch", "-", data=batch)
            created = time.monotonic() - t0
            wait(lambda: route_count(ns) == len(taps), 120)
            burst = dict(taps=len(taps), created_s=round(created, 3), all_served_s=round(time.monotonic() - t0, 3),
                         batches=len([ln for ln in log if ln.startswith("batch: ")]) - before)

        time.sleep(1)
        cpu0, rss0 = cpu_rss(proc.pid)
        time.sleep(args.idle)
        cpu1, rss1 = cpu_rss(proc.pid)
        res = dict(
            window_s=args.window, rounds=len(latencies),
            latency_p50_ms=round(statistics.median(latencies) * 1000, 1),
            latency_p95_ms=round(pct(latencies, 95) * 1000, 1), latency_max_ms=round(max(latencies) * 1000, 1),
            burst=burst, idle_s=args.idle, idle_cpu_s=round(cpu1 - cpu0, 3), rss_kib=rss1,
            python=sys.version.split()[0] if PYTHON == sys.executable else PYTHON)
    finally:
        if proc:
            proc.kill()
            proc.wait()
        subprocess.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    print("agent: window %.3f s; tap creation -> /32 present over %d recreations: p50 %.1f ms, p95 %.1f ms, "
          "max %.1f ms" % (res["window_s"], res["rounds"], res["latency_p50_ms"], res["latency_p95_ms"],
                           res["latency_max_ms"]))
    if burst:
        print("burst: %(taps)d taps created in %(created_s).3f s, all served after %(all_served_s).3f s, "
              "in %(batches)d batches" % burst)
    print("idle %.0f s: %.3f s CPU, RSS %d KiB" % (res["idle_s"], res["idle_cpu_s"], res["rss_kib"]))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
