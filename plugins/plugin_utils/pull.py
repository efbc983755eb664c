# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pull mode from a signed bundle, on the host itself (``tools/ocs-pull``).

::

    ocs-pull keygen [--key PATH]                 make this host's key (once), print its public key line
    ocs-pull pin LINE [--signer PATH]            pin the controller's public key (ocs-ed25519:...)
    ocs-pull --store STORE [--host NAME] [--fetch-only] [--only-if-changed] [-- ansible-playbook args]

``STORE``: a directory (or ``file://`` URL), an ``http(s)://`` URL, or ``git+URL[#branch]``
(a shallow, blob-less, sparse clone of the host's own directory). The run:

1. fetches ``<store>/<host>/latest`` (a name, trusted for nothing) and the bundle it names,
   and checks the bytes hash to that name;
2. verifies the signature against the pinned controller key (``--signer``), then the host,
   the recipient key, the generation (an older one than ``/etc/ocs-l3/generation`` is
   refused), decrypts with the host's key and checks every checksum
   (``module_utils/bundle.py``); any failure: a message, exit 1, nothing written;
3. refuses a bundle rendered by another collection version than the one installed here;
4. unpacks the files into ``<work>/build/<host>/`` (mode 0700) and writes the render result
   the roles read, a one-host inventory (its group, the values of the bundle's meta) and the
   host archive of the installed collection;
5. runs ``ansible-playbook -i <work>/inventory.json ocs.l3.site -e ocs_render_bundle=...``
   with a local connection: the same playbook, roles and modules as a push, the render step
   replaced by the bundle's result. No fleet inventory is read.

Exit 0 applied (or nothing to do), 1 refused or unreadable, else ansible-playbook's code.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

from ansible.module_utils.urls import ConnectionError as UrlConnectionError, open_url

from ansible_collections.ocs.l3.plugins.module_utils import bundle as lib
from ansible_collections.ocs.l3.plugins.module_utils import constants, files
from ansible_collections.ocs.l3.plugins.plugin_utils.host_library import write_archive
from ansible_collections.ocs.l3.plugins.plugin_utils.render import COLLECTION_ROOT, collection_version

FETCH_TIMEOUT = 60
MAX_BUNDLE = 1 << 30
MODULE_CACHE = "ocs.l3.module_cache"
"""The callback that keeps built module payloads between runs (plugins/callback/module_cache.py)."""


class Store:
    """Reads ``<host>/<name>`` from a directory, an HTTP(S) base URL or a git repository."""

    def __init__(self, url, work, cert=None, cert_key=None, ca_file=None):
        self.url = url
        self.work = work
        # HTTPS: the server's certificate is always checked (against ca_file, or the system's CAs);
        # a client certificate lets the store serve each host its own directory only.
        self.tls = dict(client_cert=cert, client_key=cert_key, ca_path=ca_file)

    def prepare(self, host):
        """Bring a git store's copy of ``host``'s directory up to date; other stores need nothing."""
        if not self.url.startswith("git+"):
            return
        repo, dummy, branch = self.url[len("git+"):].partition("#")
        branch = branch or "main"
        cache = os.path.join(self.work, "store.git")
        if not os.path.isdir(os.path.join(cache, ".git")):
            _git(["clone", "--quiet", "--depth", "1", "--filter=blob:none", "--sparse", "--branch", branch, repo, cache])
            _git(["-C", cache, "sparse-checkout", "set", host])
        else:
            _git(["-C", cache, "fetch", "--quiet", "--depth", "1", "--filter=blob:none", "origin", branch])
            _git(["-C", cache, "reset", "--quiet", "--hard", "FETCH_HEAD"])

    def read(self, host, name):
        if self.url.startswith(("http://", "https://")):
            url = "%s/%s/%s" % (self.url.rstrip("/"), urllib.parse.quote(host), urllib.parse.quote(name))
            try:
                with open_url(url, timeout=FETCH_TIMEOUT, validate_certs=True, use_netrc=False, **self.tls) as resp:
                    return resp.read(MAX_BUNDLE)
            except (OSError, UrlConnectionError) as exc:
                raise lib.BundleError("cannot fetch %s: %s" % (url, exc))
        base = self.url
        if base.startswith("git+"):
            base = os.path.join(self.work, "store.git")
        elif base.startswith("file://"):
            base = urllib.parse.urlparse(base).path
        path = os.path.join(base, host, name)
        try:
            with open(path, "rb") as fh:
                return fh.read(MAX_BUNDLE)
        except OSError as exc:
            raise lib.BundleError("cannot read %s: %s" % (path, exc.strerror or exc))


def _git(args):
    proc = subprocess.run(["git"] + args, capture_output=True, text=True, timeout=600, check=False)
    if proc.returncode:
        raise lib.BundleError("git %s failed: %s" % (" ".join(args[:3]), proc.stderr.strip()[-500:]))


def fetch(store, host):
    """(name, bytes) of ``host``'s newest bundle, its bytes checked against its name."""
    lib.check_host(host)
    store.prepare(host)
    name = store.read(host, "latest").decode("ascii", "replace").strip()
    if not lib.NAME_RE.match(name):
        raise lib.BundleError("%s/latest in the store does not name a bundle (%r)" % (host, name[:80]))
    data = store.read(host, name)
    if lib.bundle_name(data) != name:
        raise lib.BundleError("the store's %s/%s does not hash to its name: refused" % (host, name))
    return name, data


def applied_generation(path):
    """The generation this host last applied, or None."""
    try:
        return files.read_generation(path)
    except ValueError as exc:
        raise lib.BundleError("%s: refusing to guess" % exc)


def _read(path, what):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise lib.BundleError("cannot read %s %s: %s" % (what, path, exc.strerror or exc))


def open_own(data, opts):
    """The verified, decrypted bundle for this host, or BundleError (nothing written)."""
    signer = _read(opts.signer, "the pinned controller key").decode()
    key = _read(opts.key, "this host's bundle key")
    if os.stat(opts.key).st_mode & 0o077:
        raise lib.BundleError("%s is readable by others: it opens this host's bundles (chmod 600 it, and make a new "
                              "key if it may have leaked)" % opts.key)
    b = lib.open_bundle(data, signer, key, opts.host, applied_generation(opts.generation_file))
    here = collection_version()
    if b.header["collection"] != here:
        raise lib.BundleError("bundle rendered by ocs.l3 %s, this host runs %s: install the same version "
                              "(ocs_reconcile_collection) before applying it" % (b.header["collection"], here))
    return b


def _changed(build, b):
    """How many of the bundle's files differ from the ones unpacked last time."""
    count = 0
    for path, dummy, body in b.files:
        try:
            with open(os.path.join(build, b.header["host"], path.lstrip("/")), "rb") as fh:
                count += fh.read() != body
        except OSError:
            count += 1
    return count


def prepare(b, name, work, run_id=None):
    """Unpack ``b`` into ``<work>/build`` and write the render result and the one-host
    inventory the playbook reads. Returns (inventory path, result path)."""
    host, meta = b.header["host"], b.meta
    build = os.path.join(work, "build")
    changed = _changed(build, b)
    lib.unpack(b, build)
    result = dict(
        changed=False, build_dir=build, contract=constants.contract(), collection=COLLECTION_ROOT,
        generation=b.generation, run_id=run_id or "%s-pull-%d" % (host, os.getpid()), started=round(time.time(), 6),
        host_archive=write_archive(build), policy=meta["policy"], secret=meta["secret"],
        hosts=1, files=len(b.files), changed_count=changed, instances=meta["instances"], bundle=name,
        dual_stack=meta["dual_stack"])
    hostvars = dict(ansible_connection="local", ansible_python_interpreter=sys.executable,
                    ocs_uplinks=[dict((k, v) for k, v in u.items() if v is not None) for u in meta["uplinks"]],
                    ocs_fabric=dict(instance_ifname_prefix=meta["instance_ifname_prefix"]))
    inventory = dict(all=dict(children={meta["group"]: dict(hosts={host: hostvars})}))
    paths = os.path.join(work, "inventory.json"), os.path.join(work, "result.json")
    for path, data in zip(paths, (inventory, result)):
        with open(path + ".new", "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(path + ".new", path)
    return paths


def callbacks_enabled(current):
    """The run's callbacks: ``current`` (the environment's list, if any) and the payload cache
    (plugins/callback/module_cache.py), which an installed collection's runs have no ansible.cfg
    to enable. Set in the environment, the list replaces a config file's callbacks_enabled."""
    names = [n.strip() for n in (current or "").split(",") if n.strip()]
    return ",".join(names + [n for n in (MODULE_CACHE,) if n not in names])


def playbook_command(inventory, result, extra):
    """The converge: site.yml, its render step replaced by the bundle's result."""
    return ["ansible-playbook", "-i", inventory, "ocs.l3.site", "-e", "ocs_render_bundle=%s" % result] + list(extra)


def keygen(path):
    """Make this host's key at ``path`` (mode 0600) unless it exists; return its public key line."""
    if os.path.exists(path):
        return lib.private_public_text(lib.load_private(_read(path, "the bundle key"), lib.HOST_PUBLIC), lib.HOST_PUBLIC)
    pem, public = lib.generate_key(lib.HOST_PUBLIC)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return public


def pin(path, line):
    """Pin the controller's public key ``line`` at ``path`` (rewritten only when it differs)."""
    raw = lib.parse_public(line, lib.SIGNING_PUBLIC)
    files.write_if_different(path, line.strip() + "\n")
    return "pinned controller key %s in %s" % (lib.fingerprint(raw), path)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="ocs-pull", description="Apply this host's signed bundle (pull mode).")
    p.add_argument("command", nargs="?", choices=["pull", "keygen", "pin"], default="pull")
    p.add_argument("value", nargs="?", help="pin: the controller's public key line (ocs-ed25519:...)")
    p.add_argument("--store", help="directory, file://, http(s):// URL or git+URL[#branch] of the bundle store")
    p.add_argument("--host", default=socket.gethostname().split(".")[0], help="this host's inventory name")
    p.add_argument("--key", default=constants.BUNDLE_KEY_PATH, help="this host's private key (PEM, 0600)")
    p.add_argument("--signer", default=constants.BUNDLE_SIGNER_PATH, help="the pinned controller public key")
    p.add_argument("--work", default=constants.BUNDLE_WORK_DIR, help="where the bundle is unpacked")
    p.add_argument("--generation-file", default=constants.GENERATION_PATH, help=argparse.SUPPRESS)
    p.add_argument("--run-id", help="run id (owner of the host lease; default a new one)")
    p.add_argument("--cert", help="HTTPS client certificate (the store may serve each host its own directory)")
    p.add_argument("--cert-key", help="its private key")
    p.add_argument("--ca-file", help="CA bundle that signs the HTTPS store")
    p.add_argument("--fetch-only", action="store_true", help="verify and unpack, do not apply")
    p.add_argument("--only-if-changed", action="store_true",
                   help="skip the apply when this bundle was applied successfully last time (no drift repair)")
    p.epilog = "After --: ansible-playbook arguments (e.g. -- --check --diff)."
    argv = list(argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    opts = p.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    opts.extra = extra
    if opts.command == "pull" and not opts.store:
        p.error("--store is required")
    return opts


def main(argv):
    opts = parse_args(argv)
    try:
        if opts.command == "keygen":
            print(keygen(opts.key))
            return 0
        if opts.command == "pin":
            print(pin(opts.signer, opts.value or ""))
            return 0
        os.makedirs(opts.work, mode=0o700, exist_ok=True)
        with open(os.path.join(opts.work, "pull.lock"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                print("ocs-pull: another pull holds %s/pull.lock; exiting" % opts.work)
                return 0
            return _pull(opts)
    except lib.BundleError as exc:
        print("ocs-pull: %s" % exc, file=sys.stderr)
        return 1


def _pull(opts):
    store = Store(opts.store, opts.work, opts.cert, opts.cert_key, opts.ca_file)
    name, data = fetch(store, opts.host)
    b = open_own(data, opts)
    marker = os.path.join(opts.work, "applied")
    if opts.only_if_changed and not opts.fetch_only and os.path.exists(marker) \
            and _read(marker, "the applied marker").decode().strip() == name:
        print("ocs-pull: %s generation %s: %s already applied; nothing to do" % (opts.host, b.generation, name))
        return 0
    run_id = opts.run_id or "%s-pull-%d-%d" % (opts.host, time.time(), os.getpid())
    inventory, result = prepare(b, name, opts.work, run_id)
    print("ocs-pull: %s generation %s: %s verified (%d files) into %s" % (
        opts.host, b.generation, name, len(b.files), os.path.join(opts.work, "build", opts.host)))
    if opts.fetch_only:
        return 0
    rc = _apply(opts, inventory, result, run_id)
    if rc == 0 and "--check" not in opts.extra and "-C" not in opts.extra:
        files.write_atomic(marker, name + "\n")
    elif rc != 0 and os.path.exists(marker):
        os.unlink(marker)
    return rc


def _apply(opts, inventory, result, run_id):
    """Run the playbook. Like tools/ocs-reconcile: the ids of this host's earlier pulls that did not
    end well are kept in <work>/unfinished; they are not running (this run holds the flock), so
    their host leases are broken at once (ocs_guard_break_owners); a good run clears the list."""
    unfinished_path = os.path.join(opts.work, "unfinished")
    try:
        with open(unfinished_path) as fh:
            unfinished = fh.read().split()
    except FileNotFoundError:
        unfinished = []
    files.write_atomic(unfinished_path, "".join(r + "\n" for r in unfinished + [run_id]))
    env = dict(os.environ)
    cfg = os.path.join(COLLECTION_ROOT, "ansible.cfg")
    if "ANSIBLE_CONFIG" not in env and os.path.isfile(cfg):
        env["ANSIBLE_CONFIG"] = cfg
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    # The collection this tool runs from is the one whose roles apply the bundle.
    top = os.path.dirname(os.path.dirname(os.path.dirname(COLLECTION_ROOT)))
    env["ANSIBLE_COLLECTIONS_PATH"] = os.pathsep.join(p for p in (top, env.get("ANSIBLE_COLLECTIONS_PATH")) if p)
    env["ANSIBLE_CALLBACKS_ENABLED"] = callbacks_enabled(env.get("ANSIBLE_CALLBACKS_ENABLED"))
    extra = ["-e", json.dumps(dict(ocs_guard_break_owners=unfinished))] + list(opts.extra)
    rc = subprocess.call(playbook_command(inventory, result, extra), env=env)
    if rc == 0:
        files.write_atomic(unfinished_path, "")
    return rc
