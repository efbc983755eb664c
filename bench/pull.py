#!/usr/bin/env python3
"""Pull mode from a signed bundle at fleet scale (issue 19, item 2): what one host's
unattended run costs when the fleet has 500k instances.

    .venv/bin/python bench/pull.py                       # 500 racks x 20 x 50 (500k), hypervisor hv-r250-10
    .venv/bin/python bench/pull.py --racks 10 --apply    # + the apply in a private mount and network namespace (root)

1. generate the fleet (tools/gen_fabric.py; kept in --out between runs);
2. controller: load and validate the whole fleet once, render **one host** (the library
   pass render.yml runs, limited to that host: ``fabric_artifacts(fab, [host])`` and
   ``render_host`` with the role's default managed line) and pack its bundle into a directory
   store; timed in-process (this is the controller's cost, not the host's);
3. host: ``/usr/bin/time -v tools/ocs-pull --fetch-only`` (fetch, verify, decrypt, check,
   unpack, write the result and inventory), twice: the second is the no-change run;
   then ``--only-if-changed`` with the bundle recorded as applied (the run that skips the apply);
4. ``--apply`` (root): ``tools/ocs-pull`` with the apply, inside ``unshare --mount --net`` with
   overlays on /etc, /usr/lib, /var/lib and a fresh /run (this machine is not touched), the roles
   that need no daemon (routes, NAT, firewall, agent files; ``--skip-tags ocs_setup``), twice:
   the second is a no-change apply. DHCP and FRR need their daemons (molecule).

Prints one JSON object and writes it to <out>/results.json.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable

from ansible_collections.ocs.l3.plugins.module_utils import bundle as lib  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402
from ansible_collections.ocs.l3.plugins.plugin_utils import bundles, render  # noqa: E402
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input  # noqa: E402
from ansible_collections.ocs.l3.tools import gen_fabric, overlay_ns  # noqa: E402

MANAGED = "Managed by ocs-l3 (Ansible); local changes are overwritten on the next run"  # the role's default


def parse_time(err):
    """{user_s, sys_s, cpu_s, wall_s, rss_mib} from the output of /usr/bin/time -v."""
    def field(name):
        return re.search(r"%s: (\S+)" % re.escape(name), err).group(1)

    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    stats = dict(user_s=float(field("User time (seconds)")), sys_s=float(field("System time (seconds)")),
                 wall_s=round(sum(float(x) * 60 ** i for i, x in enumerate(reversed(wall))), 2),
                 rss_mib=round(int(field("Maximum resident set size (kbytes)")) / 1024, 1))
    stats["cpu_s"] = round(stats["user_s"] + stats["sys_s"], 2)
    return stats


def timed(cmd, **kw):
    """(rc, stats, output) of ``cmd`` under /usr/bin/time -v."""
    proc = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True, **kw)
    return proc.returncode, parse_time(proc.stderr), proc.stdout + proc.stderr


def controller(inv, host, store, keys_dir):
    t0 = time.perf_counter()
    fab = build(load_fabric_input(inv))
    t1 = time.perf_counter()
    arts = fabric_artifacts(fab, [host])[host]
    rendered = render.render_host(render.offline_templar(), host, arts, MANAGED)
    signing = os.path.join(keys_dir, "signer.key")
    data = bundles.pack_host(fab, host, rendered, 1700000000, open(signing, "rb").read(),
                             open(os.path.join(keys_dir, "host.pub")).read(), render.collection_version())
    name = bundles.publish(store, host, data)
    t2 = time.perf_counter()
    return dict(load_validate_s=round(t1 - t0, 2), render_pack_one_host_s=round(t2 - t1, 2), bundle=name,
                bundle_bytes=len(data), files=len(rendered), instances=fab.instance_count, hosts=len(fab.hosts))


def pull_cmd(work, store, keys_dir, host, *extra):
    return [PY, os.path.join(ROOT, "tools", "ocs-pull"), "--store", store, "--host", host,
            "--key", os.path.join(keys_dir, "host.key"), "--signer", os.path.join(keys_dir, "signer.pub"),
            "--work", work, "--generation-file", os.path.join(work, "generation")] + list(extra)


NS_SCRIPT = overlay_ns.PRELUDE + """/usr/bin/time -v "$@" > {t}/apply_first.log 2>&1
/usr/bin/time -v "$@" > {t}/apply_no_change.log 2>&1
"""


def apply_in_namespace(tmp, cmd, host):
    """Run ``cmd`` twice in one private mount and network namespace (everything it writes lands in
    overlays, the kernel state in the namespace); {name: stats} of both runs."""
    script = os.path.join(tmp, "ns.sh")
    with open(script, "w") as fh:
        fh.write(NS_SCRIPT.format(t=tmp))
    proc = subprocess.run(overlay_ns.ARGV + [script] + cmd,
                          cwd=ROOT, capture_output=True, text=True)
    runs = {}
    for name in ("apply_first", "apply_no_change"):
        with open(os.path.join(tmp, name + ".log")) as fh:
            log = fh.read()
        assert proc.returncode == 0 and "Command exited with non-zero" not in log, proc.stderr + log[-3000:]
        runs[name] = dict(parse_time(log), recap=re.findall(r"^%s\s+: (.*?)\s*$" % re.escape(host), log, re.M))
    return runs


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--racks", type=int, default=500)
    p.add_argument("--hypervisors", type=int, default=20)
    p.add_argument("--instances", type=int, default=50)
    p.add_argument("--host", help="default: the middle rack's middle hypervisor")
    p.add_argument("--out", default=os.path.join(ROOT, "build", "bench-pull"))
    p.add_argument("--apply", action="store_true", help="also apply in a private namespace (root)")
    opts = p.parse_args(argv)
    size = "%dx%dx%d" % (opts.racks, opts.hypervisors, opts.instances)
    inv = os.path.join(opts.out, size, "inventory")
    if not os.path.isdir(inv):
        gen_fabric.generate(inv, racks=opts.racks, hypervisors=opts.hypervisors, instances=opts.instances)
    host = opts.host or "hv-r%02d-%02d" % ((opts.racks + 1) // 2, (opts.hypervisors + 1) // 2)
    tmp = tempfile.mkdtemp(prefix="pull-", dir=opts.out)
    keys, store, work = (os.path.join(tmp, n) for n in ("keys", "store", "work"))
    os.makedirs(keys)
    with open(os.path.join(keys, "signer.pub"), "w") as fh:
        fh.write(bundles.signing_key(os.path.join(keys, "signer.key")) + "\n")
    with open(os.path.join(keys, "host.pub"), "w") as fh:
        pem, public = lib.generate_key(lib.HOST_PUBLIC)
        fh.write(public + "\n")
    with open(os.open(os.path.join(keys, "host.key"), os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
        fh.write(pem)
    out = dict(size=size, host=host, controller=controller(inv, host, store, keys))
    runs = {}
    for name, extra in (("first", ["--fetch-only"]), ("no_change", ["--fetch-only"])):
        rc, stats, log = timed(pull_cmd(work, store, keys, host, *extra), cwd=ROOT)
        assert rc == 0, log
        runs[name] = stats
    with open(os.path.join(work, "applied"), "w") as fh:
        fh.write(out["controller"]["bundle"] + "\n")
    rc, stats, log = timed(pull_cmd(work, store, keys, host, "--only-if-changed"), cwd=ROOT)
    assert rc == 0 and "already applied" in log, log
    runs["only_if_changed_skip"] = stats
    if opts.apply:
        args = ["--", "--tags", "ocs_routes,ocs_nat,ocs_firewall,ocs_agent", "--skip-tags", "ocs_setup",
                "-e", "ocs_agent_manage_service=false"]
        runs.update(apply_in_namespace(tmp, pull_cmd(work, store, keys, host, *args), host))
    out["runs"] = runs
    with open(os.path.join(opts.out, "results-%s.json" % size), "w") as fh:
        json.dump(out, fh, indent=1)
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1:])
