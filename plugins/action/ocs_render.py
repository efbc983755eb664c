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

from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.bundle import BundleError
from ansible_collections.ocs.l3.plugins.module_utils.constants import contract
from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError
from ansible_collections.ocs.l3.plugins.module_utils.fabric import HOST_KEYS, build
from ansible_collections.ocs.l3.plugins.module_utils.frr import has_secret
from ansible_collections.ocs.l3.plugins.module_utils import jsontext
from ansible_collections.ocs.l3.plugins.module_utils.inventory import fabric_input
from ansible_collections.ocs.l3.plugins.plugin_utils.bundles import publish_fabric
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
    )

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        # The role's settings are checked here, once per run: the role has no
        # meta/argument_specs.yml because Ansible checks those once per *host*
        # (8.5 of 12.6 minutes of render.yml at 10,000 hosts).
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        build_dir = os.path.abspath(args.get("build_dir") or os.path.join(os.getcwd(), "build"))
        problem = build_dir_problem(build_dir)
        if problem:
            result.update(failed=True, msg=problem)
            return result
        groups = task_vars["groups"]
        hostvars = task_vars["hostvars"]
        names = role_hosts(groups)
        raw_hostvars = {}
        for name in names:
            hv = hostvars[name]
            raw_hostvars[name] = {k: _plain(hv[k]) for k in HOST_KEYS if k in hv}
        try:
            data = fabric_input(
                groups, raw_hostvars,
                _plain(task_vars.get("ocs_racks")), _plain(task_vars.get("ocs_fabric")),
                base_dir=args.get("inventory_dir"))
            fab = build(data)
        except FabricError as exc:
            result.update(failed=True, msg=str(exc), problems=exc.problems)
            return result
        except (OSError, ValueError) as exc:
            result.update(failed=True, msg="cannot read the fabric: %s" % exc)
            return result
        wanted = args.get("hosts")
        full = wanted is None or set(fab.hosts) <= set(wanted)
        plans = fabric_artifacts(fab, None if full else wanted)
        rendered = self._render(plans, task_vars)
        changed, manifest = _write(build_dir, rendered, fab, full=full)
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
            hosts=len(plans), files=sum(len(v) for v in rendered.values()), instances=fab.instance_count,
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

    def _render(self, plans, task_vars):
        managed = self._task.args.get("managed")
        cache = {}
        return {host: render_host(self._templar, host, artifacts, managed, cache) for host, artifacts in plans.items()}


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


def _write(build_dir, rendered, fab, full):
    """Swap in each changed host directory; return (changed paths, manifest).

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
        try:
            with open(mpath) as fh:
                old = json.load(fh).get("hosts", {})
        except (OSError, ValueError):
            old = {}
        staging = tempfile.mkdtemp(prefix=".staging-", dir=build_dir)
        trash = tempfile.mkdtemp(prefix=".trash-", dir=build_dir)
        hosts = {} if full else {h: v for h, v in old.items() if h in fab.hosts}
        changed, swap = [], []
        try:
            for host, files in rendered.items():
                before = {f["path"]: f["sha256"] for f in old.get(host, {}).get("files", [])}
                entries, blobs = [], []
                for art, text in files:
                    data = text.encode()
                    digest = hashlib.sha256(data).hexdigest()
                    if before.get(art.path) != digest:
                        changed.append("%s:%s" % (host, art.path))
                    entries.append({"path": art.path, "kind": art.kind, "role": art.role, "mode": art.mode,
                                    "sha256": digest})
                    blobs.append((art.path.lstrip("/"), data))
                h = fab.hosts[host]
                hosts[host] = {"role": h.role, "rack": h.rack.id if h.rack else None, "files": entries}
                for path in set(before) - {e["path"] for e in entries}:
                    changed.append("%s:%s (removed)" % (host, path))
                if not _on_disk(os.path.join(build_dir, host), blobs, before):
                    _stage(os.path.join(staging, host), blobs)
                    swap.append(host)
            for host in swap:
                live = os.path.join(build_dir, host)
                if os.path.isdir(live):
                    os.rename(live, os.path.join(trash, host))
                os.rename(os.path.join(staging, host), live)
            if full:
                for host in set(old) - set(rendered):
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
    return sorted(changed), manifest


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
