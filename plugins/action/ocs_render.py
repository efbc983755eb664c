# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the whole fabric once and render every host's files, in-process.

Why an action plugin: one ``template`` task per host per file costs ~0.17 s of
Ansible overhead (measured on 2 cores), ~30 minutes for 2,000 hosts. This runs
once on the controller, calls the same pure functions the filter plugins wrap
(``lib/ocs_l3``), prints each file with its role's own template through
Ansible's templar, and writes ``<build_dir>/<host>/<absolute path>`` plus
``<build_dir>/manifest.json``. The per-host roles then copy those files (one
code path produces a file's content). A fabric that fails validation writes
nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

from ansible.plugins.action import ActionBase

from ansible_collections.ocs.l3.plugins.module_utils.artifact import Artifact
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.bundle import BundleError
from ansible_collections.ocs.l3.plugins.module_utils.constants import contract
from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError
from ansible_collections.ocs.l3.plugins.module_utils.fabric import HOST_KEYS, build
from ansible_collections.ocs.l3.plugins.module_utils.frr import has_secret
from ansible_collections.ocs.l3.plugins.module_utils import jsontext
from ansible_collections.ocs.l3.plugins.module_utils.inventory import fabric_input
from ansible_collections.ocs.l3.plugins.module_utils.memo import forget
from ansible_collections.ocs.l3.plugins.plugin_utils.bundles import publish_fabric
from ansible_collections.ocs.l3.plugins.plugin_utils.forks import fork_map, workers_for
from ansible_collections.ocs.l3.plugins.plugin_utils.host_library import write_archive
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import plain as _plain, role_hosts
from ansible_collections.ocs.l3.plugins.plugin_utils.render import COLLECTION_ROOT, render_host


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    ARGUMENT_SPEC = dict(
        build_dir=dict(type="path"),
        hosts=dict(type="list", elements="str"),
        inventory_dir=dict(type="path"),
        managed=dict(type="str"),
        run_id=dict(type="str"),
        generation=dict(type="int"),
        bundle_store=dict(type="path"),
        bundle_keys=dict(type="path"),
        bundle_signing_key=dict(type="path", no_log=False),
        workers=dict(type="int", default=0),
    )

    FORK_MIN_HOSTS = 128
    """Below this many hosts to render, ``workers: 0`` (auto) renders in this process alone."""

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        # The role's settings are checked here, once per run: the role has no
        # meta/argument_specs.yml because Ansible checks those once per *host*
        # (8.5 of 12.6 minutes of render.yml at 10,000 hosts).
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        build_dir = os.path.abspath(args.get("build_dir") or os.path.join(os.getcwd(), "build"))
        problem = build_dir_problem(build_dir)
        if args["workers"] < 0:
            problem = "workers must be 0 (auto) or a positive number, not %d" % args["workers"]
        if problem:
            result.update(failed=True, msg=problem)
            return result
        try:
            fab = build(_input(task_vars, args.get("inventory_dir"), args["workers"], self.FORK_MIN_HOSTS))
        except FabricError as exc:
            result.update(failed=True, msg=str(exc), problems=exc.problems)
            return result
        except (OSError, ValueError) as exc:
            result.update(failed=True, msg="cannot read the fabric: %s" % exc)
            return result
        wanted = args.get("hosts")
        full = wanted is None or set(fab.hosts) <= set(wanted)
        names = sorted(fab.hosts) if full else [h for h in wanted if h in fab.hosts]
        workers = workers_for(args["workers"], names, self.FORK_MIN_HOSTS)
        produce = self._producer(fab)
        changed, manifest, rendered = _write(build_dir, fab, names, produce, full=full, workers=workers,
                                             keep=bool(args.get("bundle_store")))
        generation = args.get("generation")
        if generation in (None, ""):
            generation = _git_time(args.get("inventory_dir"))
        run_id = args.get("run_id") or "%s-%d-%s" % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])
        result.update(
            # started orders concurrent runs for the host leases (ocs_host_lock: the younger gives way).
            run_id=run_id, started=round(time.time(), 6), generation=None if generation is None else int(generation),
            # The build directory is the controller's working copy, recomputed on every run (check mode
            # included: the roles compare against it); only a real run reports it as a change.
            changed=bool(changed) and not self._task.check_mode, changed_files=changed[:50],
            changed_count=len(changed),
            hosts=len(names), files=sum(len(manifest["hosts"][h]["files"]) for h in names),
            instances=fab.instance_count, workers=workers,
            dual_stack=fab.dual_stack,  # IPv6 is routed too (ocs_routes' sysctls)
            build_dir=build_dir, manifest=os.path.join(build_dir, "manifest.json"),
            # The names and paths the roles apply (the shared library's constants): no role copies them.
            contract=contract(),
            collection=COLLECTION_ROOT,
            # The host library and programs as one file (ocs_agent installs it).
            host_archive=write_archive(build_dir),
            # What ocs_firewall checks before applying the host policy (no lock-out).
            policy=dict(host_policy=fab.host_policy, management_ranges=[n.text for n in fab.management_ranges]),
            # Any BGP password in the fabric: ocs_frr prints no frr.conf content or diff anywhere.
            secret=has_secret(fab),
        )
        return self._bundles(result, args, fab, rendered) if args.get("bundle_store") else result

    def _bundles(self, result, args, fab, rendered):
        """Publish each rendered host's files as its signed, encrypted bundle (pull mode)."""
        missing = [k for k in ("bundle_keys", "bundle_signing_key") if not args.get(k)]
        if missing:
            result.update(failed=True, msg="bundle_store needs %s" % " and ".join(missing))
            return result
        try:
            bundles = publish_fabric(fab, rendered, result["generation"], args["bundle_store"], args["bundle_keys"],
                                     args["bundle_signing_key"])
        except (BundleError, OSError) as exc:
            result.update(failed=True, msg="cannot publish the bundles: %s" % exc)
            return result
        result.update(bundle_store=args["bundle_store"], bundles=len(bundles["published"]),
                      bundles_without_key=bundles["no_key"])
        return result

    def _producer(self, fab):
        """``produce(host)`` -> [(Artifact, text)]: the host's files computed and printed (the
        template sources and skeletons kept for the run)."""
        managed = self._task.args.get("managed")
        cache = {}

        def produce(host):
            return render_host(self._templar, host, host_artifacts(fab, fab.hosts[host]), managed, cache)

        return produce


def _input(task_vars, inventory_dir, workers, min_hosts):
    """The fabric input from the task's variables: each fabric host's own settings (read by
    ``workers`` processes: Ansible computes every host's variables, about 1.7 ms a host), the
    fabric's."""
    groups, hostvars = task_vars["groups"], task_vars["hostvars"]
    names = sorted(role_hosts(groups))

    def read(name):
        hv = hostvars[name]
        return {k: _plain(hv[k]) for k in HOST_KEYS if k in hv}

    raw_hostvars = dict(zip(names, fork_map(read, names, workers_for(workers, names, min_hosts))))
    return fabric_input(groups, raw_hostvars, _plain(task_vars.get("ocs_racks")), _plain(task_vars.get("ocs_fabric")),
                        base_dir=inventory_dir)


def build_dir_problem(build_dir, root=COLLECTION_ROOT):
    """Why ``build_dir`` may not be used, or None. Rendered files never land inside an
    installed collection (it has a MANIFEST.json; a clone has none and keeps build/ ignored)."""
    if not os.path.isfile(os.path.join(root, "MANIFEST.json")):
        return None
    real_root, real_dir = os.path.realpath(root), os.path.realpath(build_dir)
    if real_dir == real_root or real_dir.startswith(real_root + os.sep):
        return ("build_dir %s is inside the installed collection %s: set ocs_render_build_dir to a directory "
                "beside your inventory (default: build/ in the working directory)" % (build_dir, real_root))
    return None


def _git_time(path):
    """Commit time of the last commit touching ``path``, or None outside git."""
    if not path:
        return None
    try:
        out = subprocess.run(["git", "-C", path, "log", "-1", "--format=%ct", "--", "."], capture_output=True,
                             text=True, timeout=30, check=False).stdout.strip()
    except OSError:
        return None
    return int(out) if out.isdigit() else None


def _write(build_dir, fab, names, produce, full, workers=1, keep=False):
    """Compute, print and stage each host of ``names`` (``produce(host)`` -> [(Artifact, text)]),
    shared among ``workers`` processes, then swap in each changed host directory; return
    (changed paths, manifest, {host: [(Artifact without its variables, text)]} when ``keep``).

    A host whose files are all on disk as rendered (same paths, same bytes: read back, not taken
    from the old manifest) keeps its directory: a re-render that changes nothing writes and
    deletes nothing but the manifest (at 100k instances, 24,726 files written, then as many
    unlinked from the old tree, had cost about a fifth of render.yml)."""
    # Rendered files may carry secrets (a BGP password): only the controller's user reads them.
    os.makedirs(build_dir, mode=0o700, exist_ok=True)
    os.chmod(build_dir, 0o700)
    with open(os.path.join(build_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        mpath = os.path.join(build_dir, "manifest.json")
        old = _manifest_hosts(mpath)
        staging = tempfile.mkdtemp(prefix=".staging-", dir=build_dir)
        trash = tempfile.mkdtemp(prefix=".trash-", dir=build_dir)
        hosts = {} if full else {h: v for h, v in old.items() if h in fab.hosts}
        changed, swap, rendered = [], [], {}

        def one(host):
            files = produce(host)
            staged = _host_files(build_dir, staging, fab.hosts[host], files, old.get(host, {}))
            return staged + (_without_vars(files) if keep else None,)

        try:
            # One host of each role first, here: the fabric-wide values they compute (memo) and the
            # template skeletons are then inherited by every worker instead of computed by each.
            order = _heads_first(fab, names)
            for host, (entry, host_changed, stage, files) in zip(order, fork_map(one, order, workers,
                                                                                 head=_heads(fab, names))):
                hosts[host] = entry
                changed.extend(host_changed)
                if stage:
                    swap.append(host)
                if keep:
                    rendered[host] = files
            forget(fab)
            for host in swap:
                live = os.path.join(build_dir, host)
                if os.path.isdir(live):
                    os.rename(live, os.path.join(trash, host))
                os.rename(os.path.join(staging, host), live)
            if full:
                for host in set(old) - set(names):
                    changed.append("%s (removed)" % host)
                    if os.path.isdir(os.path.join(build_dir, host)):
                        os.rename(os.path.join(build_dir, host), os.path.join(trash, host))
            manifest = {"instances": fab.instance_count, "hosts": dict(sorted(hosts.items()))}
            tmp = os.path.join(staging, "manifest.json")
            with open(tmp, "w") as fh:
                fh.write(jsontext.dumps(manifest) + "\n")
            os.replace(tmp, mpath)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(trash, ignore_errors=True)
    return sorted(changed), manifest, rendered


def _manifest_hosts(path):
    """The hosts of the manifest at ``path`` ({} when there is none, or it cannot be read)."""
    try:
        with open(path) as fh:
            return json.load(fh).get("hosts", {})
    except (OSError, ValueError):
        return {}


def _heads(fab, names):
    """How many hosts :func:`_heads_first` puts first: one of each role among ``names``."""
    return len({fab.hosts[h].role for h in names})


def _heads_first(fab, names):
    """``names`` with the first host of each role moved to the front."""
    seen, heads = set(), []
    for name in names:
        role = fab.hosts[name].role
        if role not in seen:
            seen.add(role)
            heads.append(name)
    first = set(heads)
    return heads + [n for n in names if n not in first]


def _host_files(build_dir, staging, h, files, before_entry):
    """One host's manifest entry, its changed paths, and whether its directory was staged (its
    files on disk differ from ``files``)."""
    before = {f["path"]: f["sha256"] for f in before_entry.get("files", [])}
    entries, blobs, changed = [], [], []
    for art, text in files:
        data = text.encode()
        digest = hashlib.sha256(data).hexdigest()
        if before.get(art.path) != digest:
            changed.append("%s:%s" % (h.name, art.path))
        entries.append({"path": art.path, "kind": art.kind, "role": art.role, "mode": art.mode, "sha256": digest})
        blobs.append((art.path.lstrip("/"), data))
    for path in set(before) - {e["path"] for e in entries}:
        changed.append("%s:%s (removed)" % (h.name, path))
    stage = not _on_disk(os.path.join(build_dir, h.name), blobs, before)
    if stage:
        _stage(os.path.join(staging, h.name), blobs)
    entry = {"role": h.role, "rack": h.rack.id if h.rack else None, "files": entries}
    return entry, changed, stage


def _without_vars(files):
    """[(Artifact, text)] with each artifact's template variables dropped (they are the text's
    size again; a bundle needs the path, kind, role and mode)."""
    return [(Artifact(a.path, a.kind, a.role, a.template, {}, a.mode), text) for a, text in files]


def _stage(root, blobs):
    """Write a host's files under ``root`` (its staging directory; an empty host gets an empty one)."""
    made = set()
    os.makedirs(root, exist_ok=True)
    for rel, data in blobs:
        dest = os.path.join(root, rel)
        parent = os.path.dirname(dest)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        with open(dest, "wb") as fh:
            fh.write(data)


def _on_disk(live, blobs, before):
    """Whether host directory ``live`` holds exactly these files (``before``: the old manifest's
    paths) with these bytes."""
    if not os.path.isdir(live) or set(before) != {"/" + rel for rel, dummy in blobs}:
        return False
    for rel, data in blobs:
        try:
            with open(os.path.join(live, rel), "rb") as fh:
                if fh.read(len(data) + 1) != data:
                    return False
        except OSError:
            return False
    return True
