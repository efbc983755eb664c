# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install a set of whole files on a host in one call (module ocs_install, action ocs_install).

A role installs its files with one task per handler topic instead of one
``copy`` or ``template`` task per file: Ansible pays about half a second of
CPU per task and host, so per host that is one module run instead of one per
file. The action sends each file's SHA-256, mode and owner, with its content
when the task's files are small (one run); otherwise this side says which files
differ and which of those it needs the content of, and only then is content
sent, for those files only. Each file is written beside its target
and renamed over it (a reader sees the old file or the new one, never half).
Standard library only.
"""

from __future__ import annotations

import base64
import grp
import hashlib
import os
import pwd
import shlex
import shutil
import subprocess
import tempfile


INLINE_BYTES = 256 * 1024
"""The action sends content with the checksums up to this many bytes a task (before base64): a role's
files on a hypervisor or a ToR of a 100k-instance fleet are 10 to 150 KB; a dense ToR's frr.conf and
expected.json go checksums first, so that a run that changes nothing does not ship them."""


def sha256_of(path):
    """SHA-256 (hex) of the file at ``path``, or None when there is none."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    except FileNotFoundError:
        return None
    return h.hexdigest()


def _ids(owner, group):
    return pwd.getpwnam(owner).pw_uid, grp.getgrnam(group).gr_gid


def choose_alternates(files):
    """Each spec with ``alternate_if`` whose path exists, as its alternate: ``sha256`` the
    alternate's, ``content`` its ``alternate_content`` (None: the action sends it when needed),
    ``alternate_chosen`` true. Others unchanged."""
    out = []
    for spec in files:
        if spec.get("alternate_if") and os.path.lexists(spec["alternate_if"]):
            if not spec.get("alternate_sha256"):
                raise ValueError("%s: alternate_if without alternate_sha256" % spec["dest"])
            spec = dict(spec, sha256=spec["alternate_sha256"], content=spec.get("alternate_content"),
                        alternate_chosen=True)
        out.append(spec)
    return out


def plan(files, owner="root", group="root"):
    """What differs: ``[(spec, reasons)]`` for each spec (``dest``, ``mode`` as an octal string,
    ``sha256``) whose file is missing, has other content, mode or owner, and for each spec with
    ``state: absent`` whose path exists; reasons are words of ``content``, ``mode``, ``owner``,
    ``absent``."""
    uid, gid = _ids(owner, group)
    out = []
    for spec in files:
        if spec.get("state") == "absent":
            if os.path.lexists(spec["dest"]):
                out.append((spec, ["absent"]))
            continue
        try:
            st = os.lstat(spec["dest"])
        except FileNotFoundError:
            out.append((spec, ["content"]))
            continue
        reasons = []
        if not os.path.isfile(spec["dest"]) or os.path.islink(spec["dest"]) or sha256_of(spec["dest"]) != spec["sha256"]:
            reasons.append("content")
        if (st.st_mode & 0o7777) != int(spec["mode"], 8):
            reasons.append("mode")
        if (st.st_uid, st.st_gid) != (uid, gid):
            reasons.append("owner")
        if reasons:
            out.append((spec, reasons))
    return out


def stage(spec, data, owner="root", group="root", directory_mode="0755"):
    """Write ``data`` (bytes, whose SHA-256 must be ``spec['sha256']``) beside ``spec['dest']`` with its
    mode and owner, run ``spec['validate']`` (a command with ``%s`` for the file) on it when given; return
    the temporary path (``commit`` renames it over the target). Parent directories are created with
    ``directory_mode``. On any failure nothing is left behind."""
    if hashlib.sha256(data).hexdigest() != spec["sha256"]:
        raise ValueError("%s: the content sent does not match its checksum" % spec["dest"])
    uid, gid = _ids(owner, group)
    parent = os.path.dirname(spec["dest"])
    if not os.path.isdir(parent):
        os.makedirs(parent, mode=int(directory_mode, 8))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(spec["dest"]), dir=parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chown(tmp, uid, gid)
        os.chmod(tmp, int(spec["mode"], 8))
        if spec.get("validate"):
            _validate(spec, tmp)
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _validate(spec, path):
    if "%s" not in spec["validate"]:
        raise ValueError("%s: validate must contain %%s (the file to check)" % spec["dest"])
    argv = [path if word == "%s" else word.replace("%s", path) for word in shlex.split(spec["validate"])]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ValueError("%s: failed to validate (%s, exit %d): %s" % (
            spec["dest"], spec["validate"], proc.returncode, (proc.stderr or proc.stdout).strip()[-2000:]))


def _unlink(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def fix_attributes(spec, owner="root", group="root"):
    """Set the mode and owner of an existing file whose content is right."""
    uid, gid = _ids(owner, group)
    os.chown(spec["dest"], uid, gid)
    os.chmod(spec["dest"], int(spec["mode"], 8))


def remove(path):
    """Remove a file, a symlink or a directory tree."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def directories(paths, owner="root", group="root", mode="0755", check=False):
    """Make each directory of ``paths`` exist with ``mode`` and owner; return those created or fixed."""
    uid, gid = _ids(owner, group)
    done = []
    for path in paths:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            if not check:
                os.makedirs(path, mode=int(mode, 8), exist_ok=True)
                os.chown(path, uid, gid)
                os.chmod(path, int(mode, 8))
            done.append(path)
            continue
        if (st.st_mode & 0o7777, st.st_uid, st.st_gid) != (int(mode, 8), uid, gid):
            if not check:
                os.chown(path, uid, gid)
                os.chmod(path, int(mode, 8))
            done.append(path)
    return done


def apply(files, owner="root", group="root", directory_mode="0755", check=False):
    """Bring ``files`` in place. A spec may carry ``content`` (base64) and ``validate``; a file whose
    content differs and that has none is reported as needed; a spec with ``state: absent`` is removed
    where it exists. Every new content is written and validated first; only when all passed are they
    renamed over their targets (one rejected file: none is installed, the error names it). Returns
    ``(changed dests, needed dests)``; in check mode, the dests that would change (no content needed),
    and nothing is written."""
    changed, needed, staged, after = [], [], [], []
    try:
        for spec, reasons in plan(files, owner, group):
            if check:
                pass
            elif reasons == ["absent"]:
                after.append(lambda spec=spec: remove(spec["dest"]))
            elif "content" not in reasons:
                after.append(lambda spec=spec: fix_attributes(spec, owner, group))
            elif spec.get("content") is None:
                needed.append(spec["dest"])
                continue
            else:
                staged.append((stage(spec, base64.b64decode(spec["content"]), owner, group, directory_mode),
                               spec["dest"]))
            changed.append(spec["dest"])
        for tmp, dest in staged:
            os.replace(tmp, dest)
        staged = []
    finally:
        for tmp, dest in staged:
            _unlink(tmp)
    for step in after:
        step()
    return changed, needed


def file_options():
    """The module side's options of one file (ocs_install's ``files`` and an apply module's
    ``install.files``: checksums, and the content when the action sends it in the same run)."""
    return dict(
        dest=dict(type="path", required=True),
        mode=dict(type="str"),
        sha256=dict(type="str"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        content=dict(type="str", no_log=True),
        validate=dict(type="str"),
        src=dict(type="path"),
        manage=dict(type="bool", default=True),
        alternate=dict(type="dict", options=dict(  # the action's; the module ignores it
            if_exists=dict(type="path"), content=dict(type="str", no_log=True))),
        alternate_if=dict(type="path"),
        alternate_sha256=dict(type="str"),
        alternate_content=dict(type="str", no_log=True),
    )


def install_option():
    """An apply module's ``install`` option: the files its action sends with their content, which the
    module installs (validated, atomically) before it applies them, in the same run."""
    return dict(type="dict", options=dict(
        files=dict(type="list", elements="dict", required=True, options=file_options(),
                   required_if=[("state", "present", ("mode", "sha256"))]),
        directories=dict(type="list", elements="path", default=[]),
        owner=dict(type="str", default="root"),
        group=dict(type="str", default="root"),
        directory_mode=dict(type="str", default="0755"),
    ))


def install_from(module, p):
    """Install the files of ``p`` (ocs_install's parameters, or an apply module's ``install``) on this
    host: modes checked, alternates chosen, directories made, each differing file validated and
    written. Returns (changed paths, paths still needing their content, the files); fails the module
    on a bad mode or an error."""
    for mode, what in [(s["mode"], s["dest"]) for s in p["files"] if s["state"] == "present"] + [
            (p["directory_mode"], "directory_mode")]:
        try:
            int(mode, 8)
        except ValueError:
            module.fail_json(msg="%s: mode %r is not an octal string" % (what, mode))
    try:
        files = choose_alternates([f for f in p["files"] if f["manage"]])
        made = directories(p["directories"], p["owner"], p["group"], p["directory_mode"], check=module.check_mode)
        changed, needed = apply(files, p["owner"], p["group"], p["directory_mode"], check=module.check_mode)
    except (OSError, KeyError, ValueError) as exc:
        module.fail_json(msg="cannot install: %s" % exc)
    return made + changed, needed, files


def installed_first(module, p):
    """For an apply module: install its ``install`` option's files (all content present: the action
    sends it), return the changed paths ([] without the option)."""
    if not p.get("install"):
        return []
    changed, needed, files = install_from(module, p["install"])
    if needed:
        module.fail_json(msg="cannot install: no content for %s" % ", ".join(needed))
    return changed
