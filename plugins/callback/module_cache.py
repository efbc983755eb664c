# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keep Ansible's built module payloads (AnsiballZ) from one run to the next.

Ansible builds a module's payload once per run, in the run's own temporary directory,
and throws it away at exit: for each module a run uses, it walks and compiles the
module's imports again (about half a second of CPU per module here). A one-host pull
or a one-instance push uses six to nine modules, so a fifth of its CPU went there.
This callback seeds the run's payload cache from a store that outlives the run and
saves new payloads back at the end. See the DOCUMENTATION's description for what is kept.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: module_cache
type: aggregate
short_description: Keep built module payloads between runs
description:
  - Ansible builds each module's payload (AnsiballZ) once per run and discards it at exit.
    This callback copies payloads kept by earlier runs into the run's cache before the first
    task and saves the payloads the run built when it ends.
  - Kept are only payloads whose whole content is fixed by what the store's key hashes, that is
    C(ansible.builtin) modules and this collection's modules. The key hashes the ansible-core
    version, the controller's Python version and the content of this collection's
    C(plugins/modules) and C(plugins/module_utils). A change to any of them starts a new store
    directory; the four newest are kept.
  - The store must be a directory of the user running Ansible, not writable by anybody else
    (a payload runs on the hosts, as root); otherwise the callback keeps nothing and says why.
requirements:
  - enable in C(callbacks_enabled) (the project's C(ansible.cfg) does)
options:
  cache_dir:
    description: Where the payloads are kept (one subdirectory per key).
    type: path
    default: ~/.ansible/ocs-l3-module-cache
    env:
      - name: OCS_MODULE_CACHE_DIR
    ini:
      - section: ocs_module_cache
        key: cache_dir
  bytecode:
    description:
      - Add to each kept payload the bytecode of its Python files (checked hash-based, PEP 552), so
        that a module run on a host with the same Python minor version does not compile them again.
        A host with another Python ignores it (the magic differs) and compiles the source, as without it.
    type: bool
    default: true
    env:
      - name: OCS_MODULE_CACHE_BYTECODE
    ini:
      - section: ocs_module_cache
        key: bytecode
"""

import base64
import dataclasses
import hashlib
import importlib.util
import io
import marshal
import os
import pickle
import shutil
import stat
import sys
import zipfile

from ansible import constants as C
from ansible import __version__ as ansible_version
from ansible.plugins.callback import CallbackBase

from ansible_collections.ocs.l3.plugins.module_utils.files import write_atomic

KEEP = 4
"""Store directories kept (the newest by use)."""
PREFIXES = ("ansible.modules.", "ansible_collections.ocs.l3.plugins.modules.")
"""Payload file names (the module's remote name first) whose content the key fixes."""
COLLECTION = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def source_key(root=COLLECTION, core=ansible_version, python=sys.version):
    """SHA-256 of what a kept payload is built from: the ansible-core and Python versions, each
    file under ``root``'s plugins/modules and plugins/module_utils (path and content)."""
    h = hashlib.sha256(("%s\0%s\0" % (core, python)).encode())
    for sub in ("modules", "module_utils"):
        top = os.path.join(root, "plugins", sub)
        for base, dirs, names in os.walk(top):
            dirs.sort()
            for name in sorted(names):
                if name.endswith(".py"):
                    path = os.path.join(base, name)
                    with open(path, "rb") as fh:
                        data = fh.read()
                    h.update(b"%s\0%d\0" % (os.path.relpath(path, root).encode(), len(data)))
                    h.update(data)
    return h.hexdigest()


def pyc(source, name):
    """A checked hash-based .pyc (PEP 552) of ``source``: the importer uses it only while its hash
    matches the source beside it and its magic the importing Python's; otherwise it compiles the
    source, as without it. None when ``source`` does not compile here."""
    try:
        code = compile(source, name, "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    return importlib.util.MAGIC_NUMBER + (0b11).to_bytes(4, "little") + importlib.util.source_hash(source) \
        + marshal.dumps(code)


def with_bytecode(zip_data):
    """The payload zip ``zip_data`` with a .pyc beside each .py that has none. Ansible's payload
    imports from the zip, where Python keeps no bytecode: each module run compiled
    ansible.module_utils.basic and the rest again (0.1-0.2 s of CPU)."""
    zin = zipfile.ZipFile(io.BytesIO(zip_data))
    names = set(zin.namelist())
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            zout.writestr(info, data)
            if info.filename.endswith(".py") and info.filename + "c" not in names:
                code = pyc(data, info.filename)
                if code is not None:
                    extra = zipfile.ZipInfo(info.filename + "c", info.date_time)
                    extra.compress_type = zipfile.ZIP_DEFLATED
                    zout.writestr(extra, code)
    return out.getvalue()


def add_bytecode(path):
    """Rewrite the kept payload ``path`` (Ansible's pickled cache entry, a dataclass holding the
    base64 zip in ``zip_data``) with bytecode; leave it as it is when it is not of that shape."""
    with open(path, "rb") as fh:
        entry = pickle.load(fh)
    data = getattr(entry, "zip_data", None)
    if isinstance(data, bytes) and dataclasses.is_dataclass(entry):
        entry = dataclasses.replace(entry, zip_data=base64.b64encode(with_bytecode(base64.b64decode(data))))
        write_atomic(path, pickle.dumps(entry), mode=0o600)


def keepable(name):
    """A finished payload file this store keeps (not Ansible's lock or partial write; our temporary
    files start with a dot)."""
    return name.startswith(PREFIXES) and not name.endswith((".lock", "-part"))


def private_dir(path):
    """Make ``path`` (and its parent) a directory of this user that nobody else can write; the
    reason it is not, or None."""
    for d in (os.path.dirname(path), path):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(d)
        if not stat.S_ISDIR(st.st_mode):
            return "%s is not a directory" % d
        if st.st_uid != os.geteuid():
            return "%s belongs to uid %d, not to this user" % (d, st.st_uid)
        if st.st_mode & 0o022:
            return "%s is writable by others (mode %o)" % (d, stat.S_IMODE(st.st_mode))
    return None


def copy_new(src, dst, names):
    """Copy each of ``names`` from ``src`` to ``dst`` where ``dst`` lacks it (files.write_atomic: a
    temporary file renamed over it, so a concurrent run never reads half of one); the number copied."""
    n = 0
    for name in names:
        target = os.path.join(dst, name)
        if os.path.exists(target):
            continue
        with open(os.path.join(src, name), "rb") as fh:
            write_atomic(target, fh.read(), mode=0o600)
        n += 1
    return n


def prune(top, current, keep=KEEP):
    """Remove all but the ``keep`` most recently used store directories (``current`` stays)."""
    dirs = [e for e in os.scandir(top) if e.is_dir(follow_symlinks=False)]
    dirs.sort(key=lambda e: e.stat(follow_symlinks=False).st_mtime, reverse=True)
    for e in dirs[keep:]:
        if e.path != current:
            shutil.rmtree(e.path, ignore_errors=True)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "ocs.l3.module_cache"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self._store = None
        self._run = None

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        top = os.path.expanduser(self.get_option("cache_dir"))
        try:
            problem = private_dir(top)
            if problem:
                self._display.warning("ocs.l3.module_cache: keeping no module payloads: %s" % problem)
                return
            # Payloads with and without bytecode never share a directory.
            store = os.path.join(top, "%s-%s" % (source_key(), "pyc" if self.get_option("bytecode") else "py"))
            os.makedirs(store, 0o700, exist_ok=True)
            os.utime(store)
            run = os.path.join(C.DEFAULT_LOCAL_TMP, "ansiballz_cache")
            os.makedirs(run, exist_ok=True)
            n = copy_new(store, run, [n for n in os.listdir(store) if keepable(n)])
            prune(top, store)
        except OSError as e:
            self._display.warning("ocs.l3.module_cache: keeping no module payloads: %s" % e)
            return
        self._store, self._run = store, run
        self._display.vvv("ocs.l3.module_cache: %d payloads from %s" % (n, store))

    def v2_playbook_on_stats(self, stats):
        if not self._store:
            return
        try:
            new = [n for n in os.listdir(self._run) if keepable(n) and not os.path.exists(os.path.join(self._store, n))]
            for name in new:  # the run's own copy, before it goes to the store
                if self.get_option("bytecode"):
                    add_bytecode(os.path.join(self._run, name))
            n = copy_new(self._run, self._store, new)
        except (OSError, pickle.PickleError, zipfile.BadZipFile, TypeError) as e:
            self._display.warning("ocs.l3.module_cache: could not keep this run's payloads: %s" % e)
            return
        self._display.vvv("ocs.l3.module_cache: %d payloads kept in %s" % (n, self._store))
