# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline plan: what a change of the inventory does to the fabric and to every host's files.

    ocs-plan [--summary-only] [--format text|json] [--json FILE] [--vault-password-file FILE] OLD NEW

OLD and NEW are inventory revisions, each either an inventory directory (or
file) or ``GITREF:PATH``: the inventory at PATH (relative to the current
directory, as git's ``GITREF:./PATH``) in commit GITREF of the git repository
the current directory is in. A git revision is extracted whole (``git
archive``: an ``instances_file`` outside PATH resolves too) into a temporary
directory, removed once read. No host is contacted; nothing is written but
``--json FILE``.

Order: NEW is read and validated whole first. An invalid NEW prints the
validator's problems (each naming the object and field) and exits 1: no plan,
no diff. OLD is read next. An invalid OLD (a change that repairs a broken
fabric) is reported with its problems, and the plan is made against an empty
fabric: everything in NEW is added.

The summary is computed from the two fabric models, not from text:

- racks added, removed, changed (ASN, host subnet, instance subnets, gateways);
- hosts added and removed; hosts affected: hosts with a file added, removed or
  changed (added and removed hosts included);
- instances added, removed, moved (hypervisor changed), changed (mac, ip,
  floating_ip, interface: old and new values);
- floating IPs added, removed, changed (the same address on another instance);
- BGP sessions added and removed (host, peer: an address or, unnumbered, an
  interface, remote AS, the host at the other end when a fabric host);
- announced prefixes added and removed (host, prefix, ``network`` or
  ``aggregate``), and prefix-list entries added and removed (host, list, entry);
- secrets changed: files (present in both) whose secret (the BGP password) differs.

Then, per host and per file (the rendered text, printed by the roles'
templates as the render prints it), a unified diff. Secrets are redacted on
both sides before diffing (``neighbor SPINE password <redacted>``): a change
of only the password shows as ``a secret changed (not shown)`` with no diff.

JSON (``--format json`` on stdout, or ``--json FILE`` beside the text), schema 1::

    {"schema": 1, "old": "OLD", "new": "NEW", "changed": true,
     "old_problems": [],            # OLD's validation problems (then planned from an empty fabric)
     "summary": {
       "racks":        {"added": [id], "removed": [id], "changed": [id]},
       "hosts":        {"added": [name], "removed": [name], "affected": [name]},
       "instances":    {"added":   [{"name", "hypervisor", "mac", "ip", "floating_ip", "interface"}],
                        "removed": [same],
                        "moved":   [{"name", "from", "to"}],
                        "changed": [{"name", "hypervisor", "fields": {field: [old, new]}}]},
       "floating_ips": {"added": [{"ip", "instance"}], "removed": [{"ip", "instance"}],
                        "changed": [{"ip", "from", "to"}]},
       "sessions":     {"added": [{"host", "peer", "remote_as", "peer_host"}], "removed": [same]},
       "prefixes":     {"added": [{"host", "prefix", "how"}], "removed": [same]},
       "prefix_lists": {"added": [{"host", "list", "entry"}], "removed": [same]},
       "secrets_changed": [{"host", "path"}]},
     "files": [{"host", "path", "status": "added|removed|changed", "secret_changed": bool,
                "mode": [old, new] (only when it changed), "diff": "unified diff, secrets redacted"}]}

Lists are sorted; addresses are dotted text; absent values are null. The JSON
always carries the diffs (``--summary-only`` shortens the text output only).

Exit codes: 0 no change, 2 changes, 1 an invalid NEW, a revision that cannot
be read, or a usage error.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile

from ansible.errors import AnsibleError

from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.frr import policy
from ansible_collections.ocs.l3.plugins.module_utils.model import Fabric

SCHEMA = 1
REDACTED = "<redacted>"
# Secret-bearing lines of the rendered files: group 1 is kept, group 2 (the secret) redacted.
SECRET_LINES = (
    re.compile(r"^(\s*neighbor \S+ password )(\S+)$", re.M),  # frr.conf: ocs_fabric.bgp.password
)
INSTANCE_FIELDS = ("mac", "ip", "floating_ip", "interface")


class PlanError(Exception):
    """A revision cannot be read (no such path, unknown git ref, unreadable inventory)."""


UNREADABLE = (PlanError, AnsibleError, OSError, ValueError)
"""What reading a revision may raise besides the validator's FabricError (a ValueError, caught first)."""


# Revisions --------------------------------------------------------------------------------------------

def _git(cwd, *args):
    proc = subprocess.run(["git", "-C", cwd] + list(args), capture_output=True, text=True, check=False)
    if proc.returncode:
        raise PlanError("git %s: %s" % (" ".join(args), proc.stderr.strip() or "exit %d" % proc.returncode))
    return proc.stdout.strip()


def split_git_spec(spec):
    """(GITREF, PATH) of ``GITREF:PATH``, or None when ``spec`` is a path that exists or has no colon."""
    if os.path.exists(spec) or ":" not in spec:
        return None
    ref, path = spec.split(":", 1)
    if not ref or not path:
        raise PlanError("%s: a git revision is GITREF:PATH, both non-empty" % spec)
    return ref, path


def _repo_path(cwd, path):
    """``path`` (relative to ``cwd``) as a path from the top of ``cwd``'s git repository."""
    if os.path.isabs(path):
        raise PlanError("%s: the PATH of GITREF:PATH is relative to the current directory" % path)
    rel = os.path.normpath(os.path.join(_git(cwd, "rev-parse", "--show-prefix"), path))
    if rel == ".." or rel.startswith(".." + os.sep):
        raise PlanError("%s: outside the git repository of %s" % (path, cwd))
    return rel


def load_git_revision(ref, path, load, cwd=None):
    """``load(directory)`` of the inventory at ``path`` in git commit ``ref`` (``git archive`` of the whole
    tree into a temporary directory, removed afterwards)."""
    cwd = cwd or os.getcwd()
    top = _git(cwd, "rev-parse", "--show-toplevel")
    rel = _repo_path(cwd, path)
    try:
        commit = _git(cwd, "rev-parse", "--verify", "--quiet", ref + "^{commit}")
    except PlanError:
        raise PlanError("%s:%s: %s is not a commit of the git repository at %s" % (ref, path, ref, top)) from None
    with tempfile.TemporaryDirectory(prefix="ocs-plan-") as tmp:
        archive = os.path.join(tmp, "revision.tar")
        _git(top, "archive", "--format=tar", "--output", archive, commit)
        tree = os.path.join(tmp, "tree")
        with tarfile.open(archive) as tar:
            # "data": no absolute paths, links out of the tree or devices (Python 3.11.4+ has the filter)
            tar.extractall(tree, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        source = os.path.join(tree, rel)
        if not os.path.exists(source):
            raise PlanError("%s:%s: no %s in %s" % (ref, path, rel, ref))
        return load(source)


def load_revision(spec, load, cwd=None):
    """Fabric input of revision ``spec`` (a path, or ``GITREF:PATH``) through ``load(path)``."""
    git = split_git_spec(spec)
    return load_git_revision(git[0], git[1], load, cwd) if git else load(spec)


def load_inventory(path, vault_password_files=None):
    """Fabric input of the inventory at ``path``, read by Ansible's own loader (vaulted values decrypted).
    A missing path is an error here (Ansible would read it as an empty inventory)."""
    from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input

    if not os.path.exists(path):
        raise PlanError("%s: no such inventory (a path, or GITREF:PATH)" % path)
    return load_fabric_input(path, vault_password_files=vault_password_files)


def build_old(spec, load, cwd=None):
    """(fabric, problems) of the old revision: an invalid one is an empty fabric and its problems."""
    try:
        return build(load_revision(spec, load, cwd)), []
    except FabricError as exc:
        return Fabric(), exc.problems


# The summary, from the models ------------------------------------------------------------------------

def _ip(value):
    return None if value is None else ntoa(value)


def _diff_sets(old, new, keys):
    """{"added": [...], "removed": [...]} of two sets of tuples, each as a dict of ``keys``, sorted."""
    def rows(items):
        return [dict(zip(keys, t)) for t in sorted(items, key=lambda t: tuple(str(v) for v in t))]
    return {"added": rows(new - old), "removed": rows(old - new)}


def _rack_key(rack):
    return (rack.asn, rack.host_subnet.text if rack.host_subnet else None,
            tuple(n.text for n in rack.instance_subnets), tuple(_ip(g) for g in rack.gateway_ips))


def racks_summary(old, new):
    both = set(old.racks) & set(new.racks)
    return {"added": sorted(set(new.racks) - set(old.racks)), "removed": sorted(set(old.racks) - set(new.racks)),
            "changed": sorted(r for r in both if _rack_key(old.racks[r]) != _rack_key(new.racks[r]))}


def hosts_summary(old, new, files):
    return {"added": sorted(set(new.hosts) - set(old.hosts)), "removed": sorted(set(old.hosts) - set(new.hosts)),
            "affected": sorted({f["host"] for f in files})}


def _instance(inst):
    return {"name": inst.name, "hypervisor": inst.hypervisor.name, "mac": inst.mac, "ip": _ip(inst.ip),
            "floating_ip": _ip(inst.floating_ip), "interface": inst.interface}


def instances_summary(old, new):
    before = {i.name: _instance(i) for i in old.instances()}
    after = {i.name: _instance(i) for i in new.instances()}
    out = {"added": [after[n] for n in sorted(set(after) - set(before))],
           "removed": [before[n] for n in sorted(set(before) - set(after))], "moved": [], "changed": []}
    for name in sorted(set(before) & set(after)):
        a, b = before[name], after[name]
        if a["hypervisor"] != b["hypervisor"]:
            out["moved"].append({"name": name, "from": a["hypervisor"], "to": b["hypervisor"]})
        fields = {f: [a[f], b[f]] for f in INSTANCE_FIELDS if a[f] != b[f]}
        if fields:
            out["changed"].append({"name": name, "hypervisor": b["hypervisor"], "fields": fields})
    return out


def floating_summary(old, new):
    before = {_ip(i.floating_ip): i.name for i in old.instances() if i.floating_ip is not None}
    after = {_ip(i.floating_ip): i.name for i in new.instances() if i.floating_ip is not None}

    def rows(ips, owner):
        return [{"ip": ip, "instance": owner[ip]} for ip in sorted(ips, key=_ip_key)]
    return {"added": rows(set(after) - set(before), after), "removed": rows(set(before) - set(after), before),
            "changed": [{"ip": ip, "from": before[ip], "to": after[ip]}
                        for ip in sorted(set(before) & set(after), key=_ip_key) if before[ip] != after[ip]]}


def _ip_key(text):
    return tuple(int(x) for x in text.split("."))


def bgp_facts(fab):
    """(sessions, prefixes, prefix-list entries) of every host, as sets of tuples (one policy per host)."""
    sessions, prefixes, entries = set(), set(), set()
    for name, host in fab.hosts.items():
        pol = policy(fab, host)
        sessions.update((name, n.key, n.remote_as, n.host) for n in pol.neighbors)
        prefixes.update((name, p, "network") for p in pol.networks)
        prefixes.update((name, p, "aggregate") for p in pol.aggregates)
        entries.update((name, plist, e) for plist, items in pol.prefix_lists.items() for e in items)
    return sessions, prefixes, entries


def summary(old, new, files):
    """The semantic summary of the change from fabric ``old`` to ``new``; ``files``: the file entries."""
    old_bgp, new_bgp = bgp_facts(old), bgp_facts(new)
    return {
        "racks": racks_summary(old, new),
        "hosts": hosts_summary(old, new, files),
        "instances": instances_summary(old, new),
        "floating_ips": floating_summary(old, new),
        "sessions": _diff_sets(old_bgp[0], new_bgp[0], ("host", "peer", "remote_as", "peer_host")),
        "prefixes": _diff_sets(old_bgp[1], new_bgp[1], ("host", "prefix", "how")),
        "prefix_lists": _diff_sets(old_bgp[2], new_bgp[2], ("host", "list", "entry")),
        "secrets_changed": [{"host": f["host"], "path": f["path"]} for f in files if f["secret_changed"]],
    }


# Files ----------------------------------------------------------------------------------------------

def redact(text):
    """``text`` with every secret replaced by REDACTED."""
    for pattern in SECRET_LINES:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


def secrets(text):
    """The secrets in ``text``, in order (compared, never printed)."""
    return [m.group(2) for pattern in SECRET_LINES for m in pattern.finditer(text or "")]


def _same(a, b):
    """The same file for sure: same template, variables and mode (templates only print the variables)."""
    return (a.role, a.template, a.mode, a.vars) == (b.role, b.template, b.mode, b.vars)


def file_entry(host, path, old, new):
    """The entry of one file from its (mode, text) before and after (None: absent), or None if unchanged."""
    if old == new:
        return None
    old_text, new_text = (old or (None, ""))[1], (new or (None, ""))[1]
    status = "added" if old is None else "removed" if new is None else "changed"
    diff = difflib.unified_diff(redact(old_text).splitlines(True), redact(new_text).splitlines(True),
                                "/dev/null" if old is None else "a/%s%s" % (host, path),
                                "/dev/null" if new is None else "b/%s%s" % (host, path))
    entry = {"host": host, "path": path, "status": status, "diff": "".join(diff),
             "secret_changed": status == "changed" and secrets(old_text) != secrets(new_text)}
    if old and new and old[0] != new[0]:
        entry["mode"] = [old[0], new[0]]
    return entry


def host_files(templar, host, old_arts, new_arts, cache):
    """File entries of ``host`` from its artifacts in each revision ({path: Artifact}); files whose
    template, variables and mode are the same in both are not printed at all."""
    from ansible_collections.ocs.l3.plugins.plugin_utils.render import render_host

    def printed(art):
        return None if art is None else (art.mode, render_host(templar, host, [art], cache=cache)[0][1])
    out = []
    for path in sorted(set(old_arts) | set(new_arts)):
        a, b = old_arts.get(path), new_arts.get(path)
        if a is not None and b is not None and _same(a, b):
            continue
        entry = file_entry(host, path, printed(a), printed(b))
        if entry:
            out.append(entry)
    return out


def files_diff(old, new, templar):
    """Every file entry of the change from fabric ``old`` to ``new``, by host then path."""
    cache, out = {}, []
    for name in sorted(set(old.hosts) | set(new.hosts)):
        arts = [{a.path: a for a in host_artifacts(fab, fab.hosts[name])} if name in fab.hosts else {}
                for fab in (old, new)]
        out += host_files(templar, name, arts[0], arts[1], cache)
    return out


def plan(old, new, templar, old_spec="OLD", new_spec="NEW", old_problems=()):
    """The plan (the JSON document) from fabric ``old`` to ``new``."""
    files = files_diff(old, new, templar)
    return {"schema": SCHEMA, "old": old_spec, "new": new_spec, "changed": bool(files),
            "old_problems": list(old_problems), "summary": summary(old, new, files), "files": files}


# Text output ----------------------------------------------------------------------------------------

def _instance_text(key, i):
    if key == "moved":
        return "%s moved %s -> %s" % (i["name"], i["from"], i["to"])
    if key == "changed":
        fields = ("%s %s -> %s" % (f, v[0] or "none", v[1] or "none") for f, v in sorted(i["fields"].items()))
        return "%s on %s: %s" % (i["name"], i["hypervisor"], ", ".join(fields))
    return "%s on %s (%s%s)" % (i["name"], i["hypervisor"], i["ip"],
                                ", floating %s" % i["floating_ip"] if i["floating_ip"] else "")


def _floating_text(key, f):
    if key == "changed":
        return "%s from %s to %s" % (f["ip"], f["from"], f["to"])
    return "%s (%s)" % (f["ip"], f["instance"])


def _session_text(key, s):
    return "%s: peer %s AS %s%s" % (s["host"], s["peer"], s["remote_as"],
                                    " (%s)" % s["peer_host"] if s["peer_host"] else "")


SECTIONS = (
    ("Racks", "racks", lambda k, r: r),
    ("Hosts", "hosts", lambda k, h: h),
    ("Instances", "instances", _instance_text),
    ("Floating IPs", "floating_ips", _floating_text),
    ("BGP sessions", "sessions", _session_text),
    ("Announced prefixes", "prefixes", lambda k, p: "%s: %s (%s)" % (p["host"], p["prefix"], p["how"])),
)
MARKS = (("added", "+"), ("removed", "-"), ("moved", "~"), ("changed", "~"))


def summary_lines(s):
    """The summary as text lines."""
    lines = []
    for title, key, fmt in SECTIONS:
        items = ["  %s %s" % (mark, fmt(k, i)) for k, mark in MARKS for i in s[key].get(k, [])]
        lines += [title + ":"] + items if items else []
    counts = {}
    for k, mark in MARKS[:2]:
        for e in s["prefix_lists"][k]:
            counts.setdefault(e["host"], {"+": 0, "-": 0})[mark] += 1
    if counts:
        lines += ["Prefix-list entries:"] + ["  %s: +%d -%d" % (h, c["+"], c["-"]) for h, c in sorted(counts.items())]
    lines += ["Secret changed (not shown): %s %s" % (x["host"], x["path"]) for x in s["secrets_changed"]]
    affected = s["hosts"]["affected"]
    lines.append("Hosts affected (%d): %s" % (len(affected), ", ".join(affected)))
    return lines


def file_lines(entry):
    """One file's heading and its (redacted) diff as text lines."""
    head = "=== %s %s (%s%s)" % (entry["host"], entry["path"], entry["status"],
                                 ", mode %s -> %s" % tuple(entry["mode"]) if "mode" in entry else "")
    lines = [head] + entry["diff"].splitlines()
    if entry["secret_changed"]:
        lines.append("(a secret changed (not shown))")
    return lines


def text_report(doc, summary_only=False):
    """The whole human report: header, summary, then the diffs."""
    lines = ["ocs-plan: %s -> %s" % (doc["old"], doc["new"])]
    if doc["old_problems"]:
        lines.append("warning: the old revision is not valid; planned from an empty fabric (everything added):")
        lines += ["  - %s" % p for p in doc["old_problems"]]
    if not doc["changed"]:
        return "\n".join(lines + ["no change: every host's files are the same"]) + "\n"
    lines += summary_lines(doc["summary"])
    if not summary_only:
        for entry in doc["files"]:
            lines += [""] + file_lines(entry)
    return "\n".join(lines) + "\n"


# Command line ---------------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(prog="ocs-plan", description="Plan an inventory change offline: what it "
                                     "does to the fabric and to every host's files (no host contacted).")
    parser.add_argument("old", help="the old revision: an inventory path, or GITREF:PATH")
    parser.add_argument("new", help="the new revision: an inventory path, or GITREF:PATH (validated first)")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="what goes to stdout")
    parser.add_argument("--json", metavar="FILE", help="also write the JSON plan to FILE")
    parser.add_argument("--summary-only", action="store_true", help="text output: the summary, no diffs")
    parser.add_argument("--vault-password-file", action="append", default=[])
    return parser.parse_args(argv)


def _load_fabrics(args, load, err):
    """(old fabric, its problems, new fabric), NEW validated first; None after printing why not."""
    try:
        new = build(load_revision(args.new, load))
    except FabricError as exc:
        print("ocs-plan: the new revision %s is not valid (nothing planned):" % args.new, file=err)
        print("\n".join("  - %s" % p for p in exc.problems), file=err)
        return None
    except UNREADABLE as exc:
        print("ocs-plan: %s" % exc, file=err)
        return None
    try:
        old, problems = build_old(args.old, load)
    except UNREADABLE as exc:
        print("ocs-plan: %s" % exc, file=err)
        return None
    return old, problems, new


def main(argv, out=None, err=None, load=None, templar=None):
    """ocs-plan; ``load(path)`` -> fabric input (default: Ansible's inventory loader)."""
    out, err = out or sys.stdout, err or sys.stderr
    try:
        args = parse_args(argv)
    except SystemExit as exc:
        return 0 if exc.code == 0 else 1
    load = load or functools.partial(load_inventory, vault_password_files=args.vault_password_file)
    fabrics = _load_fabrics(args, load, err)
    if fabrics is None:
        return 1
    if templar is None:
        from ansible_collections.ocs.l3.plugins.plugin_utils.render import offline_templar
        templar = offline_templar()
    doc = plan(fabrics[0], fabrics[2], templar, args.old, args.new, fabrics[1])
    text = json.dumps(doc, indent=1, sort_keys=True) + "\n"
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)
    out.write(text if args.format == "json" else text_report(doc, args.summary_only))
    return 2 if doc["changed"] else 0
