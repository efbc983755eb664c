# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fast path for a small change (an instance added, removed or moved, a floating IP attached,
detached or moved): converge only the hosts whose files change, and on each only the roles that
print those files, after the whole new fabric is validated.

    ocs-change [--dry-run] [--json FILE] [--with-setup] [--old-overlay SRC]... [--new-overlay SRC]...
               [--vault-password-file FILE] OLD NEW [-- ansible-playbook args...]

OLD is the inventory the fabric was last converged from (a path, or ``GITREF:PATH`` as for ocs-plan,
plugins/plugin_utils/plan.py), NEW the one to apply (a path), and ``--old-overlay`` /
``--new-overlay`` add inventory sources after a path (override inventories, as a repeated ``-i``).
NEW is validated whole first (an invalid NEW: its problems, exit 1, nothing run). The plan's file
diff names every (host, file) the change touches; each rendered file belongs to one role
(``module_utils/artifacts.py``). The run is then::

    ansible-playbook -i NEW ocs.l3.site --limit <those hosts> --tags <those roles> --skip-tags ocs_setup
                     -e '{"_ocs_site_hosts": {<role>: <its hosts>}}' [args]

``site.yml`` tags each play with its role and intersects each role play's groups with
``_ocs_site_hosts.<role>`` (all hosts when unset); the render, the lock-out check, the host leases
and the final play (generation, lease release) are tagged ``always``. So a host gets exactly the
roles whose files change on it, in site.yml's order: an instance moved is withdrawn by the old
hypervisor and announced by the new one in one run (routes are added first and pruned last); a
floating IP moved rewrites the NAT rules wherever the old translation lived (the NAT roles flush its
conntrack entries there, on a NAT gateway's stateful hairpin path too). The roles' tasks tagged
``ocs_setup`` are skipped: what no rendered file carries (packages, directories, the host programs
and units, sysctls, daemons enabled and started); ``--with-setup`` runs them too. The full
``site.yml`` (the reconcile timer) still checks them, and finds nothing to change after this run.
A daemon that is not running makes its reload fail, and the run with it.

Exit codes: 0 nothing to change or the run succeeded, 1 an invalid NEW or an unreadable
revision, otherwise ansible-playbook's. ``--dry-run`` prints the command and runs nothing.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys

from ansible_collections.ocs.l3.plugins.module_utils.artifacts import host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import FabricError, build
from ansible_collections.ocs.l3.plugins.module_utils.frr import policy
from ansible_collections.ocs.l3.plugins.plugin_utils import plan as planner

PLAYBOOK = "ocs.l3.site"
SETUP_TAG = "ocs_setup"
"""The roles tag with it the tasks no rendered file carries (packages, units, services started)."""


def roles_of(fab, host):
    """{path: role} of every file ``host`` gets in ``fab`` (empty when it is not there)."""
    if host not in fab.hosts:
        return {}
    return {a.path: a.role for a in host_artifacts(fab, fab.hosts[host])}


def targets(doc, old, new):
    """What to converge for the plan ``doc`` from fabric ``old`` to ``new``: {"hosts": [the hosts of
    NEW with a changed file], "roles": [roles printing a changed file], "by_host": {host: [roles]},
    "gone": [hosts with changed files that NEW no longer has: nothing to converge there]}."""
    by_host = {}
    for entry in doc["files"]:
        host, path = entry["host"], entry["path"]
        role = roles_of(new, host).get(path) or roles_of(old, host).get(path)
        if role is None:  # every rendered file has an artifact: a plan this module cannot read
            raise ValueError("%s: %s is in the plan but no role prints it" % (host, path))
        by_host.setdefault(host, set()).add(role)
    hosts = sorted(h for h in by_host if h in new.hosts)
    roles = sorted({r for h in hosts for r in by_host[h]})
    return {"hosts": hosts, "roles": roles,
            "by_host": {h: sorted(r) for h, r in sorted(by_host.items())},
            "by_role": {r: [h for h in hosts if r in by_host[h]] for r in roles},
            "gone": sorted(h for h in by_host if h not in new.hosts)}


def _sessions(fab, name):
    """What makes ``name``'s BGP sessions in ``fab``: per neighbor its address or interface, AS, group,
    host, password and border settings."""
    return [(n.key, n.interface, n.remote_as, n.group, n.host, n.password, sorted((n.session or {}).items()))
            for n in policy(fab, fab.hosts[name]).neighbors]


def frr_together(old, new, hosts):
    """Whether the FRR tiers of a change may reload at once (site.yml's ``_ocs_site_frr_together``):
    every host of ``hosts`` was in OLD with the very sessions it has in NEW. Those sessions were
    established by the last converge; on them a tier's import list may widen after the tier below
    announced (its reload's soft in re-reads the announcement) and a withdrawal needs no order. A
    host that gains, loses or alters a session keeps site.yml's order, from the spines down."""
    return all(h in old.hosts and _sessions(old, h) == _sessions(new, h) for h in hosts)


def host_pattern(hosts):
    """An Ansible host pattern matching exactly ``hosts``: one regular expression (a pattern list
    cannot be intersected with a play's groups; ``&`` takes one pattern)."""
    return "~^(%s)$" % "|".join(re.escape(h) for h in hosts)


def command(new_sources, target, extra=(), ansible_playbook="ansible-playbook", setup=False):
    """The ansible-playbook command line of the fast path (``setup``: run the ocs_setup tasks too)."""
    inventory = [arg for source in new_sources for arg in ("-i", source)]
    skip = [] if setup else ["--skip-tags", SETUP_TAG]
    # Each role's plays run on the hosts with a changed file of that role only (site.yml's plays
    # intersect their groups with _ocs_site_hosts.<role>): a ToR whose FRR lists change does not run
    # the routes, NAT or DHCP roles a hypervisor of the same change needs.
    only = {"_ocs_site_hosts": {role: host_pattern(hosts) for role, hosts in target["by_role"].items()}}
    if target.get("frr_together"):
        only["_ocs_site_frr_together"] = True
    return ([ansible_playbook] + inventory + [PLAYBOOK, "--limit", ",".join(target["hosts"]),
                                              "--tags", ",".join(target["roles"])] + skip
            + ["-e", json.dumps(only, sort_keys=True)] + list(extra))


def sources(spec, overlays):
    """The inventory sources of a revision: the path or GITREF:PATH, then its overlays (paths only)."""
    if overlays and planner.split_git_spec(spec):
        raise planner.PlanError("%s: overlays go on an inventory path, not on a git revision" % spec)
    for path in overlays:
        if not os.path.exists(path):
            raise planner.PlanError("%s: no such overlay inventory" % path)
    return [spec] + list(overlays)


def parse_args(argv):
    argv = list(argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="ocs-change", description="Converge only the hosts and roles an "
                                     "inventory change touches, after validating the whole new fabric.")
    parser.add_argument("old", help="the inventory last converged: a path, or GITREF:PATH")
    parser.add_argument("new", help="the inventory to apply: a path, or GITREF:PATH (validated first)")
    parser.add_argument("--old-overlay", action="append", default=[], metavar="SRC")
    parser.add_argument("--new-overlay", action="append", default=[], metavar="SRC")
    parser.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    parser.add_argument("--with-setup", action="store_true", help="run the roles' %s tasks too (packages, "
                        "units, services enabled and started)" % SETUP_TAG)
    parser.add_argument("--json", metavar="FILE", help="write the targets (hosts, roles, per host) as JSON")
    parser.add_argument("--vault-password-file", action="append", default=[])
    args = parser.parse_args(argv)
    args.extra = extra
    return args


def _load(spec, overlays, load):
    srcs = sources(spec, overlays)
    if len(srcs) == 1:
        return planner.load_revision(spec, load)
    return load(srcs)


def _fabrics(args, load, err):
    """(old, new) fabrics, NEW validated first and whole; None after printing why not."""
    if planner.split_git_spec(args.new):
        print("ocs-change: %s: NEW is the inventory ansible-playbook reads: a path, not a git revision"
              % args.new, file=err)
        return None
    try:
        new = build(_load(args.new, args.new_overlay, load))
    except FabricError as exc:
        print("ocs-change: the new inventory %s is not valid (nothing run):" % args.new, file=err)
        print("\n".join("  - %s" % p for p in exc.problems), file=err)
        return None
    except planner.UNREADABLE as exc:
        print("ocs-change: %s" % exc, file=err)
        return None
    try:
        old = build(_load(args.old, args.old_overlay, load))
    except FabricError as exc:
        print("ocs-change: the old inventory %s is not valid: converge the whole fabric (site.yml) instead:"
              % args.old, file=err)
        print("\n".join("  - %s" % p for p in exc.problems), file=err)
        return None
    except planner.UNREADABLE as exc:
        print("ocs-change: %s" % exc, file=err)
        return None
    return old, new


def _load_any(spec, vault_password_files=None):
    """The inventory reader for one source or a list of sources (an overlay)."""
    if isinstance(spec, str):
        return planner.load_inventory(spec, vault_password_files)
    from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input
    return load_fabric_input(spec, vault_password_files=vault_password_files)


def main(argv, out=None, err=None, load=None, templar=None, run=subprocess.call):
    out, err = out or sys.stdout, err or sys.stderr
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 1
    load = load or functools.partial(_load_any, vault_password_files=args.vault_password_file)
    fabrics = _fabrics(args, load, err)
    if fabrics is None:
        return 1
    old, new = fabrics
    if templar is None:
        from ansible_collections.ocs.l3.plugins.plugin_utils.render import offline_templar
        templar = offline_templar()
    doc = planner.plan(old, new, templar, args.old, args.new)
    target = targets(doc, old, new)
    target["frr_together"] = frr_together(old, new, target["by_role"].get("ocs_frr", []))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(target, fh, indent=1, sort_keys=True)
    for host in target["gone"]:
        print("ocs-change: %s is no longer in the inventory: decommission it separately" % host, file=out)
    if not target["hosts"]:
        print("ocs-change: no host's files change: nothing to run", file=out)
        return 0
    for host in target["hosts"]:
        print("ocs-change: %s: %s" % (host, ", ".join(target["by_host"][host])), file=out)
    exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    cmd = command(sources(args.new, args.new_overlay), target, args.extra,
                  exe if os.path.exists(exe) else "ansible-playbook", args.with_setup)
    print("ocs-change: %s" % " ".join(cmd), file=out)
    out.flush()
    if args.dry_run:
        return 0
    return run(cmd)
