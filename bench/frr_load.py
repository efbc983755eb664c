#!/usr/bin/env python3
"""ocs-l3 FRR load benchmark: dense frr.conf files through the reload module, on real FRR.

    .venv/bin/python bench/frr_load.py           # 1 rack x 20 hypervisors x 1,000 instances (make bench-frr)
    .venv/bin/python bench/frr_load.py --tiny    # 1 rack x 2 x 50, merged, ToR only (the integration test)

A dense rack is generated (tools/gen_fabric.py), read (inventory.load_fabric_input)
and built (fabric.build); the ToR's and one hypervisor's frr.conf are rendered
with frr.config_lines and applied, with the managed header, by the collection's
own module plugins/modules/ocs_frr_reload.py (run as Ansible runs it: an args
file), to zebra, staticd and bgpd running in a network namespace of their own
under watchfrr (pathspace ``-N``: sockets in /var/run/frr/<ps>/, watchfrr's
``write integrated`` into /etc/frr/<ps>/; both removed afterwards). watchfrr
keeps its packaged defaults (90 s unresponsiveness timeout); its start, stop
and restart commands go through a script that logs every call.

For the ToR and for the hypervisor (the rack's last one), per case:

* first load: empty -> full config, wall time of the module;
* no-op: the same config again (the module must report nothing changed);
* one instance added on that hypervisor, next to its block (adjacent), then
  one more at an address apart from it (apart): a reload of a one-instance
  difference each.

After every load: every daemon's PID (and watchfrr's) unchanged, watchfrr ran
no start/stop/restart command, ``show running-config`` holds exactly the
prefix-list entries of the file.

Cases: ``merged`` (the rendering as shipped: exact /32s merged into aligned
``B ge 32`` blocks); ``before`` (frr.compact monkeypatched to identity in this
process: one line per /32) and ``scattered`` (instance IPs shuffled across
the rack's hypervisors before fabric.build, fixed and floating: merging finds few blocks). The
ToR's first load of those two would take many minutes, so it is measured on
the first ``--before-limit`` hypervisors' share of the rack only and
extrapolated linearly in prefix-list lines (said so in the table); their
hypervisor is measured in full.

Needs root. Writes <out>/results.json.
"""

import argparse
import copy
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

from ansible_collections.ocs.l3.plugins.module_utils import frr
from ansible_collections.ocs.l3.plugins.module_utils.addr import aton, ntoa
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input
from ansible_collections.ocs.l3.tools.gen_fabric import generate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
MODULE = os.path.join(ROOT, "plugins", "modules", "ocs_frr_reload.py")
FRR_BIN = "/usr/lib/frr"
DAEMONS = ("zebra", "staticd", "bgpd")
HEADER = "#\n# Managed by ocs-l3 (Ansible)\n#\n"  # as the template prints it
_COMPACT = frr.compact

CTL = """#!/bin/sh
# watchfrr's start/stop/restart command for this bench: log the call, then do it.
echo "$(date +%s.%N) $1 $2" >> {run}/watchfrr-actions.log
case "$1" in
  stop|restart) [ -f {run}/$2.pid ] && kill "$(cat {run}/$2.pid)"; sleep 1 ;;
esac
case "$1" in
  start|restart) exec ip netns exec {ns} {bin}/$2 -d -N {ps} -f {run}/$2.conf -i {run}/$2.pid -A 127.0.0.1 ;;
esac
"""


def sh(*cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit("%s failed (rc %d): %s" % (" ".join(cmd[:6]), proc.returncode,
                                                      (proc.stderr or proc.stdout)[-2000:]))
    return proc.stdout


def wait_for(pred, what, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.2)
    raise SystemExit("gave up waiting for %s" % what)


class Router:
    """zebra, staticd and bgpd in network namespace ``ps``, pathspace ``ps``, under watchfrr."""

    def __init__(self, tag, watchfrr=True):
        self.ps = "ocs-fl%d-%s" % (os.getpid(), tag)
        self.run = "/var/run/frr/" + self.ps
        self.etc = "/etc/frr/" + self.ps  # watchfrr's `write integrated` (frr-reload.py's `vtysh write`)
        self.watchfrr = watchfrr and os.path.exists(os.path.join(FRR_BIN, "watchfrr"))
        self.started = False

    def pidfile(self, daemon):
        return os.path.join(self.run, daemon + ".pid")

    def __enter__(self):
        sh("ip", "netns", "add", self.ps)
        self.started = True
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        self.pids0 = self.pids()
        return self

    def _start(self):
        sh("ip", "-n", self.ps, "link", "set", "lo", "up")
        for d in (self.run, self.etc):
            os.makedirs(d)
            shutil.chown(d, "frr", "frr")
        if os.path.exists("/etc/frr/vtysh.conf"):
            shutil.copy("/etc/frr/vtysh.conf", self.etc)
        for daemon in DAEMONS:
            conf = os.path.join(self.run, daemon + ".conf")
            open(conf, "w").close()
            shutil.chown(conf, "frr", "frr")
            sh("ip", "netns", "exec", self.ps, os.path.join(FRR_BIN, daemon), "-d", "-N", self.ps, "-f", conf,
               "-i", self.pidfile(daemon), "-A", "127.0.0.1")
            wait_for(lambda: os.path.exists(self.pidfile(daemon)), "%s started" % daemon)
        if self.watchfrr:
            ctl = os.path.join(self.run, "ctl.sh")
            with open(ctl, "w") as fh:
                fh.write(CTL.format(run=self.run, ns=self.ps, ps=self.ps, bin=FRR_BIN))
            os.chmod(ctl, 0o755)
            sh(os.path.join(FRR_BIN, "watchfrr"), "-d", "-N", self.ps, "-p", self.pidfile("watchfrr"),
               "-s", ctl + " start %s", "-k", ctl + " stop %s", "-r", ctl + " restart %s", *DAEMONS)
            wait_for(lambda: self.watchfrr_states() == {d: "Up" for d in DAEMONS}, "watchfrr: every daemon Up")

    def __exit__(self, *exc):
        if not self.started:
            return
        for name in ("watchfrr",) + DAEMONS[::-1]:
            pid = self._pid(name)
            if pid:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                for _ in range(50):
                    try:
                        os.kill(pid, 0)
                    except ProcessLookupError:
                        break
                    time.sleep(0.1)
                else:
                    os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", self.ps], capture_output=True)
        shutil.rmtree(self.run, ignore_errors=True)
        shutil.rmtree(self.etc, ignore_errors=True)

    def _pid(self, name):
        try:
            with open(self.pidfile(name)) as fh:
                return int(fh.read().strip())
        except (OSError, ValueError):
            return None

    def pids(self):
        names = DAEMONS + (("watchfrr",) if self.watchfrr else ())
        out = {}
        for name in names:
            pid = self._pid(name)
            alive = pid is not None and os.path.exists("/proc/%d" % pid)
            out[name] = pid if alive else None
        return out

    def vtysh(self, *cmds):
        args = ["vtysh", "--vty_socket", self.run]
        for c in cmds:
            args += ["-c", c]
        return sh(*args)

    def watchfrr_states(self):
        try:
            return dict(re.findall(r"^\s+(%s)\s+(\S+)\s*$" % "|".join(DAEMONS), self.vtysh("show watchfrr"), re.M))
        except SystemExit:
            return {}

    def watchfrr_actions(self):
        try:
            with open(os.path.join(self.run, "watchfrr-actions.log")) as fh:
                return fh.read().splitlines()
        except OSError:
            return []

    def load(self, lines):
        """Write frr.conf (managed header + lines) and run the reload module on it; the measurement."""
        src = os.path.join(self.run, "frr.conf")
        with open(src, "w") as fh:
            fh.write(HEADER + "\n".join(lines) + "\n")
        args = os.path.join(self.run, "args.json")
        with open(args, "w") as fh:
            json.dump({"ANSIBLE_MODULE_ARGS": {"src": src, "vty_socket": self.run}}, fh)
        t0 = time.perf_counter()
        proc = subprocess.run([PY, MODULE, args], capture_output=True, text=True, timeout=7200)
        secs = time.perf_counter() - t0
        try:
            res = json.loads(proc.stdout)
        except ValueError:
            res = {"failed": True, "msg": (proc.stderr or proc.stdout)[-2000:]}
        running = self.vtysh("show running-config")
        want = sorted(ln for ln in lines if ln.startswith("ip prefix-list "))
        have = sorted(re.sub(r" seq \d+ ", " ", ln) for ln in running.splitlines() if ln.startswith("ip prefix-list "))
        pids = self.pids()
        return {"seconds": round(secs, 3), "ok": not res.get("failed"), "msg": res.get("msg"),
                "changed": res.get("changed"), "recovered": bool(res.get("recovered")),
                "lines_to_add": len(res.get("lines_to_add") or []),
                "lines_to_delete": len(res.get("lines_to_delete") or []),
                "soft_in": len(res.get("soft_in") or []),
                "prefix_list_entries": len(want), "prefix_list_entries_running": len(have),
                "prefix_lists_equal": have == want,
                "pids_unchanged": pids == self.pids0 and None not in pids.values(),
                "watchfrr_actions": self.watchfrr_actions(),
                "watchfrr_all_up": (self.watchfrr_states() == {d: "Up" for d in DAEMONS}) if self.watchfrr else None,
                "loadavg": round(os.getloadavg()[0], 2)}


# --------------------------------------------------------------------------- data


def rack_data(out, hypervisors, instances, scatter=False, keep=None, seed=1):
    """Input data of one generated rack; ``scatter``: instance IPs (fixed, and floating) shuffled
    across its hypervisors (gen_fabric hands both out in instance order: contiguous per hypervisor);
    ``keep``: only the first ``keep`` hypervisors keep instances."""
    inv = os.path.join(out, "inventory-%dx%d" % (hypervisors, instances))
    generate(inv, racks=1, hypervisors=hypervisors, instances=instances, seed=seed, force=True)
    data = load_fabric_input(inv)
    recs = data["instances_records"]
    if scatter:  # fixed IPs, and floating IPs among the instances that have one
        rng = random.Random(seed)
        for key in ("ip", "floating_ip"):
            owners = [r for _, r in recs if r.get(key)]
            ips = [r[key] for r in owners]
            rng.shuffle(ips)
            for r, ip in zip(owners, ips):
                r[key] = ip
    if keep is not None:
        hvs = data["groups"]["hypervisors"][:keep]
        data["instances_records"] = [(w, r) for w, r in recs if r["hypervisor"] in hvs]
    return data


def add_instance(data, hv, where):
    """A copy of ``data`` with one more instance on ``hv``: at the address after its
    highest (``adjacent``) or at a free address that touches none of its own
    (``apart``); None when there is no such address."""
    recs = data["instances_records"]
    used = {aton(r["ip"]) for _, r in recs}
    mine = {aton(r["ip"]) for _, r in recs if r["hypervisor"] == hv}
    net, plen = data["racks"][frr_rack(data, hv)]["instance_subnets"][0].split("/")
    first, last = aton(net) + 2, aton(net) + (1 << (32 - int(plen))) - 2  # gateway .1, broadcast
    if where == "adjacent":
        ip = max(mine) + 1
        if ip in used or ip > last:
            return None
    else:
        cands = [a for a in range(last, first, -1) if a not in used and a - 1 not in mine and a + 1 not in mine]
        if not cands:
            return None
        ip = cands[0]
    new = copy.copy(data)
    n = len(recs)
    new["instances_records"] = recs + [("bench[%d]" % n, {
        "hypervisor": hv, "name": "vm-bench-%s-%d" % (where, n), "ip": ntoa(ip),
        "mac": "02:fe:00:%02x:%02x:%02x" % (n >> 16 & 255, n >> 8 & 255, n & 255)})]
    return new


def frr_rack(data, hv):
    return data["hostvars"][hv]["ocs_rack"]


def configs(data, hosts, merged=True):
    """{host: frr.conf lines}, with the /32s merged (as shipped) or not (frr.compact = identity)."""
    frr.compact = _COMPACT if merged else list
    try:
        fab = build(data)
        return {h: frr.config_lines(fab, fab.hosts[h]) for h in hosts}
    finally:
        frr.compact = _COMPACT


def plist_lines(lines):
    return sum(1 for ln in lines if ln.startswith("ip prefix-list "))


# --------------------------------------------------------------------------- runs


def sequence(tag, host, steps, watchfrr):
    """Load ``steps`` ([(name, lines)], the first from empty) into a fresh router."""
    out = {"host": host, "config_lines": len(steps[0][1]), "prefix_list_lines": plist_lines(steps[0][1]),
           "steps": {}}
    with Router(tag, watchfrr) as router:
        out["watchfrr"] = router.watchfrr
        for name, lines in steps:
            r = router.load(lines)
            out["steps"][name] = r
            print("   %-10s %-9s %8.2f s  changed=%s add=%d del=%d pids_unchanged=%s prefix-lists equal=%s%s"
                  % (host, name, r["seconds"], r["changed"], r["lines_to_add"], r["lines_to_delete"],
                     r["pids_unchanged"], r["prefix_lists_equal"],
                     "" if r["ok"] else "  FAILED: %s" % r["msg"]), flush=True)
            if not r["ok"]:
                break
    return out


def full_case(name, data, hosts, hv, merged, watchfrr):
    """Each of ``hosts``: first load, no-op, +1 instance on ``hv`` adjacent to its block, +1 apart."""
    base = configs(data, hosts, merged)
    seq = {h: [("first", base[h]), ("noop", base[h])] for h in hosts}
    cur = data
    for where in ("adjacent", "apart"):
        nxt = add_instance(cur, hv, where)
        if nxt is None:
            continue
        cur = nxt
        conf = configs(cur, hosts, merged)
        for h in hosts:
            seq[h].append(("+1 " + where, conf[h]))
    return {"case": name, "runs": [sequence("%s%d" % (name[:3], i), h, seq[h], watchfrr)
                                   for i, h in enumerate(hosts)]}


def capped_tor(name, out, hvs, insts, limit, merged, scatter, watchfrr, tor):
    """The ToR's first load for the first ``limit`` hypervisors' share of the rack,
    extrapolated linearly in prefix-list lines to the full rack."""
    full = configs(rack_data(out, hvs, insts, scatter=scatter), (tor,), merged)[tor]
    part = configs(rack_data(out, hvs if scatter else limit, insts, scatter=scatter, keep=limit if scatter else None),
                   (tor,), merged)[tor]
    run = sequence("%sc" % name[:3], tor, [("first", part)], watchfrr)
    first = run["steps"]["first"]
    n_part, n_full = plist_lines(part), plist_lines(full)
    return {"case": name, "measured_hypervisors": limit, "measured": run,
            "full_config_lines": len(full), "full_prefix_list_lines": n_full,
            "per_prefix_list_line_ms": round(1000 * first["seconds"] / max(n_part, 1), 2),
            "extrapolated_first_s": round(first["seconds"] * n_full / max(n_part, 1), 1)}


# --------------------------------------------------------------------------- report


def good(name, step):
    """A load that succeeded with no daemon restarted, no watchfrr action, the
    file's prefix-list entries running; a no-op changed nothing."""
    return bool(step["ok"] and step["pids_unchanged"] and step["prefix_lists_equal"] and not step["watchfrr_actions"]
                and not step["recovered"] and (name != "noop" or step["changed"] is False))


def row(case, r, note=""):
    s = r["steps"]

    def t(k):
        return "%.2f" % s[k]["seconds"] if k in s else "-"
    ok = all(good(k, x) for k, x in s.items())
    return (case, r["host"], str(r["config_lines"]), str(r["prefix_list_lines"]), t("first") + note, t("+1 adjacent"),
            t("+1 apart"), t("noop"), "yes" if ok else "NO")


def table(data):
    rows = [("case", "host", "lines", "plist lines", "first load s", "+1 adjacent s", "+1 apart s", "no-op s",
             "PIDs same, no watchfrr action, plists equal")]
    for c in data["cases"]:
        for r in c.get("runs", []):
            rows.append(row(c["case"], r))
        if "measured" in c:
            m = c["measured"]
            rows.append(row(c["case"], m, " (%d hv)" % c["measured_hypervisors"]))
            rows.append((c["case"], m["host"], str(c["full_config_lines"]), str(c["full_prefix_list_lines"]),
                         "~%.0f (extrapolated, %.1f ms/line)" % (c["extrapolated_first_s"],
                                                                 c["per_prefix_list_line_ms"]),
                         "-", "-", "-", "-"))
    w = [max(len(rw[i]) for rw in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w[i]) if i < 2 else c.rjust(w[i]) for i, c in enumerate(rw)) for rw in rows]
    return "\n".join(out + ["", "watchfrr: %s; load average %s -> %s, %d CPUs" % (
        "used (packaged defaults)" if data["watchfrr"] else "NOT used (PIDs checked only)",
        data["machine"]["loadavg_start"], data["machine"]["loadavg_end"], data["machine"]["nproc"])])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hypervisors", type=int, default=20, help="hypervisors of the rack")
    ap.add_argument("--instances", type=int, default=1000, help="instances per hypervisor")
    ap.add_argument("--before-limit", type=int, default=1,
                    help="hypervisors whose share of the ToR 'before' and 'scattered' load (0: skip both cases)")
    ap.add_argument("--cases", help="comma list of merged, before, scattered (default: all; --tiny: merged)")
    ap.add_argument("--no-watchfrr", action="store_true", help="run the daemons without watchfrr (PIDs still checked)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench-frr"))
    ap.add_argument("--tiny", action="store_true", help="smoke run: 2 hypervisors x 50 instances, merged, ToR only")
    args = ap.parse_args(argv)
    if args.tiny:
        args.hypervisors, args.instances = 2, 50
        args.cases = args.cases or "merged"
    if os.geteuid() != 0 or not os.path.exists("/usr/lib/frr/frr-reload.py") or not shutil.which("vtysh"):
        raise SystemExit("needs root, frr and frr-pythontools (make apt)")
    args.out = os.path.abspath(args.out)
    os.makedirs(args.out, exist_ok=True)
    cases = [c for c in (args.cases or "merged,before,scattered").split(",") if c]
    watchfrr = not args.no_watchfrr
    tor, hv = "tor-r01", "hv-r01-%02d" % args.hypervisors
    data = {"machine": {"nproc": os.cpu_count(), "loadavg_start": [round(x, 2) for x in os.getloadavg()]},
            "rack": {"hypervisors": args.hypervisors, "instances_per_hypervisor": args.instances,
                     "instances": args.hypervisors * args.instances},
            "frr": sh(os.path.join(FRR_BIN, "zebra"), "--version").splitlines()[0],
            "watchfrr": watchfrr and os.path.exists(os.path.join(FRR_BIN, "watchfrr")), "cases": []}
    print("== %s; rack: %d hypervisors x %d instances; ToR %s, hypervisor %s"
          % (data["frr"], args.hypervisors, args.instances, tor, hv), flush=True)
    t0 = time.perf_counter()
    if "merged" in cases:
        print("== merged (as shipped)", flush=True)
        data["cases"].append(full_case("merged", rack_data(args.out, args.hypervisors, args.instances),
                                       (tor,) if args.tiny else (tor, hv), hv, True, watchfrr))
    limit = min(args.before_limit, args.hypervisors)
    for name, merged, scatter in (("before", False, False), ("scattered", True, True)):
        if name not in cases:
            continue
        print("== %s: hypervisor in full" % name, flush=True)
        case = full_case(name, rack_data(args.out, args.hypervisors, args.instances, scatter=scatter),
                         (hv,), hv, merged, watchfrr)
        data["cases"].append(case)
        if limit:
            print("== %s: ToR, first %d hypervisor(s) of the rack" % (name, limit), flush=True)
            data["cases"].append(capped_tor(name, args.out, args.hypervisors, args.instances, limit, merged, scatter,
                                            watchfrr, tor))
    data["seconds"] = round(time.perf_counter() - t0, 1)
    data["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    data["all_good"] = all(good(k, s) for c in data["cases"]
                           for r in c.get("runs", []) + ([c["measured"]] if "measured" in c else [])
                           for k, s in r["steps"].items())
    path = os.path.join(args.out, "results.json")
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1)
    print()
    print(table(data))
    print("\nresults: %s (%.0f s)" % (path, data["seconds"]))
    return 0 if data["all_good"] else 1


if __name__ == "__main__":
    sys.exit(main())
