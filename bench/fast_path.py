"""One instance (with a floating IP) added to hv-r01-01 and removed again on the running container
fabric (`make demo`), four ways timed: tools/ocs-change (the fast path) and
`ocs.l3.site --limit hv-r01-01` (what an operator would run without it; it leaves the rack's ToRs
and the spine unconverged). Prints the wall time of each run and the hosts and tasks it ran.

    . tools/podman-env.sh; .venv/bin/python bench/fast_path.py [--rounds N]

The instance's VM is not created (no netns): the runs install the same files either way.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
HV = "hv-r01-01"
NEW = {"name": "vm-r01-01-bench", "mac": "02:00:c6:13:01:2f", "ip": "198.19.1.47", "floating_ip": "203.0.113.151",
       "interface": "tap-r0101z"}


def molecule_inventory():
    found = sorted(glob.glob(os.path.expanduser("~/.ansible/tmp/molecule.*.default/inventory")), key=os.path.getmtime,
                   reverse=True)
    if not found:
        sys.exit("no molecule fabric: make demo first")
    return found[0]


def overlay(base, path):
    with open(os.path.join(base, "host_vars", HV + ".yml")) as fh:
        instances = yaml.safe_load(fh)["ocs_instances"]
    os.makedirs(os.path.join(path, "host_vars"))
    with open(os.path.join(path, "hosts.yml"), "w") as fh:
        fh.write("all: {}\n")
    with open(os.path.join(path, "host_vars", HV + ".yml"), "w") as fh:
        yaml.safe_dump({"ocs_instances": instances + [NEW]}, fh)


def timed(cmd, env):
    began = time.monotonic()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - began
    lines = res.stdout.splitlines()  # ocs-change's own lines, then the json callback's document
    data = json.loads("\n".join(lines[next(i for i, line in enumerate(lines) if line.startswith("{")):]))
    tasks = sum(1 for play in data["plays"] for task in play["tasks"] for _h in task["hosts"])
    changed = {h: s["changed"] for h, s in data["stats"].items()}
    if res.returncode:
        sys.exit("failed (rc %d): %s" % (res.returncode, res.stderr[-2000:]))
    return seconds, sorted(data["stats"]), tasks, changed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    base = molecule_inventory()
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(os.path.dirname(base), "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_NOCOLOR="1")
    build = tempfile.mkdtemp(prefix="ocs-bench-build-")
    change = [os.path.join(BIN, "python"), os.path.join(ROOT, "tools", "ocs-change")]
    playbook = [os.path.join(BIN, "ansible-playbook")]
    with tempfile.TemporaryDirectory(prefix="ocs-bench-overlay-") as tmp:
        ov = os.path.join(tmp, "ov")
        overlay(base, ov)
        extra = ["--", "-e", "ocs_render_build_dir=" + build]
        runs = [
            ("fast path, add", change + ["--new-overlay", ov, base, base] + extra),
            ("fast path, remove", change + ["--old-overlay", ov, base, base] + extra),
            ("site.yml --limit %s, add" % HV, playbook + ["-i", base, "-i", ov, "ocs.l3.site", "--limit", HV]
             + extra[1:]),
            ("site.yml --limit %s, remove" % HV, playbook + ["-i", base, "ocs.l3.site", "--limit", HV] + extra[1:]),
        ]
        for _ in range(args.rounds):
            for name, cmd in runs:
                seconds, hosts, tasks, changed = timed(cmd, env)
                print("%-34s %6.1f s  %2d host task results on %s; changed %s" % (
                    name, seconds, tasks, ",".join(hosts), changed), flush=True)


if __name__ == "__main__":
    main()
