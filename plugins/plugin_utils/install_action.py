# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller side of installing whole files (module_utils/install.py is the host side): the
action ``ocs_install``, and the apply modules' actions (``ocs_route_table``, ``ocs_iptables_chains``)
that install their files and apply them in one module run.

One ``copy`` or ``template`` task per file costs Ansible about half a second of CPU per host; the
module ``ocs_install`` runs once per host with each file's SHA-256, mode and owner. When the files
(and their alternates) hold at most ``install.INLINE_BYTES``, their content goes with the checksums
and the module writes those that differ in that same run (a file's change costs no second round trip;
over podman or SSH a module run is 0.5 to 1.5 s on the critical path of a one-instance change).
Larger sets go checksums first, and a second run, with content, only for the files that differ. Each
file comes from ``src`` (a file on the controller, such as the render step's build) or ``content``
(text printed on the controller); a file with ``state: absent`` is removed where it exists, one with
``manage: false`` is left alone, and ``directories`` are made to exist.

An apply module given ``install`` (the same arguments, units aside) gets the files with their content
in its own run when they are small enough: it installs them (validated, atomically), then applies
them; larger ones are installed by ``ocs_install`` first, then the module applies. Either way the
result has ``changed_files`` and ``module_runs``.
"""

from __future__ import annotations

import base64
import hashlib

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase

from ansible_collections.ocs.l3.plugins.module_utils.install import INLINE_BYTES
from ansible_collections.ocs.l3.plugins.module_utils.units import unit_options

INSTALL_MODULE = "ocs.l3.ocs_install"

FILES_SPEC = dict(
    files=dict(type="list", elements="dict", required=True, options=dict(
        dest=dict(type="str", required=True),
        mode=dict(type="str"),
        src=dict(type="str"),
        content=dict(type="str", no_log=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        manage=dict(type="bool", default=True),
        validate=dict(type="str"),
        alternate=dict(type="dict", options=dict(
            if_exists=dict(type="str", required=True),
            content=dict(type="str", required=True, no_log=True),
        )),
    )),
    directories=dict(type="list", elements="str", default=[]),
    owner=dict(type="str", default="root"),
    group=dict(type="str", default="root"),
    directory_mode=dict(type="str", default="0755"),
)
"""The files to install and where (an apply module's ``install``)."""

ARGUMENT_SPEC = dict(FILES_SPEC, units=dict(type="list", elements="dict", default=[], options=unit_options()))
"""``ocs_install``'s: the files, and units brought up once they are in place."""


def file_specs(files, loader):
    """The module's file specs (checksums, no content), and the content of each file and its alternate."""
    specs, data, alternates = [], {}, {}
    for f in files:
        if not f["manage"]:
            continue
        if f["state"] == "absent":
            specs.append(dict(dest=f["dest"], state="absent"))
            continue
        if (f.get("src") is None) == (f.get("content") is None) or not f.get("mode"):
            raise AnsibleActionFail("%s: give a mode and exactly one of src and content" % f["dest"])
        if f.get("src") is not None:
            with open(loader.path_dwim(f["src"]), "rb") as fh:
                blob = fh.read()
        else:
            blob = to_bytes(f["content"], errors="surrogate_or_strict")
        data[f["dest"]] = blob
        spec = dict(dest=f["dest"], mode=f["mode"], sha256=hashlib.sha256(blob).hexdigest())
        if f.get("validate"):
            spec["validate"] = f["validate"]
        if f.get("alternate"):
            alt = to_bytes(f["alternate"]["content"], errors="surrogate_or_strict")
            alternates[f["dest"]] = alt
            spec.update(alternate_if=f["alternate"]["if_exists"], alternate_sha256=hashlib.sha256(alt).hexdigest())
        specs.append(spec)
    return specs, data, alternates


def inline(data, alternates):
    """Whether the files go with their content in the first run."""
    return sum(map(len, data.values())) + sum(map(len, alternates.values())) <= INLINE_BYTES


def with_content(spec, data, alternates):
    """A module spec with its content (base64) and its alternate's, for the module to write in the same run."""
    dest = spec.get("dest")
    if dest not in data:  # state absent
        return spec
    out = dict(spec, content=base64.b64encode(data[dest]).decode())
    if dest in alternates:
        out["alternate_content"] = base64.b64encode(alternates[dest]).decode()
    return out


def install(action, args, task_vars):
    """Run ``ocs_install`` for the validated ``args``: one module run, or checksums first and content
    second for a large set. Returns the result (``failed`` with the module's message)."""
    specs, data, alternates = file_specs(args["files"], action._loader)
    # The units go with both runs: the module brings them up in the run that leaves no file to send.
    common = dict(owner=args["owner"], group=args["group"], directory_mode=args["directory_mode"],
                  units=[u for u in args.get("units", []) if u["manage"]])
    first_specs = [with_content(s, data, alternates) for s in specs] if inline(data, alternates) else specs
    first = action._execute_module(INSTALL_MODULE, module_args=dict(files=first_specs, directories=args["directories"],
                                                                    **common), task_vars=task_vars)
    if first.get("failed"):
        return first
    changed = list(first.get("changed_files", []))
    needed = set(first.get("needed", []))
    runs, unit_actions = 1, first.get("unit_actions", [])
    if needed:
        # The module said which files it wants in their alternate form (its flag file exists).
        chosen = set(first.get("alternates", []))
        send = []
        for s in specs:
            if s["dest"] not in needed:
                continue
            blob = alternates[s["dest"]] if s["dest"] in chosen else data[s["dest"]]
            s = {k: v for k, v in s.items() if k not in ("alternate_if", "alternate_sha256")}
            send.append(dict(s, sha256=hashlib.sha256(blob).hexdigest(), content=base64.b64encode(blob).decode()))
        second = action._execute_module(INSTALL_MODULE, module_args=dict(files=send, changed_before=changed, **common),
                                        task_vars=task_vars)
        if second.get("failed"):
            return second
        runs += 1
        changed += second.get("changed_files", [])
        unit_actions = second.get("unit_actions", [])
    return dict(changed=bool(changed or unit_actions), changed_files=sorted(changed), files=len(specs),
                unit_actions=unit_actions, module_runs=runs)


def names_diff(action, changed):
    """Names only (a file may hold a secret): the drift report shows which files differ."""
    verb = "would change" if action._task.check_mode else "changed"
    return dict(prepared="%s: %s" % (verb, ", ".join(sorted(changed))))


class ApplyAction(ActionBase):
    """The action of an apply module (``MODULE``) that takes ``install``: the files it applies, sent and
    installed in its own run when small enough (see the module docstring)."""

    MODULE = None
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        wanted = args.pop("install", None)
        if wanted is None:
            result.update(self._execute_module(self.MODULE, module_args=args, task_vars=task_vars))
            return result
        checked = ArgumentSpecValidator(FILES_SPEC).validate(wanted)
        if checked.error_messages:
            raise AnsibleActionFail("install: %s" % "; ".join(checked.error_messages))
        wanted = checked.validated_parameters
        specs, data, alternates = file_specs(wanted["files"], self._loader)
        if inline(data, alternates):
            sent = dict(files=[with_content(s, data, alternates) for s in specs],
                        **{k: wanted[k] for k in ("directories", "owner", "group", "directory_mode")})
            applied = self._execute_module(self.MODULE, module_args=dict(args, install=sent), task_vars=task_vars)
            result.update(applied, module_runs=1)
            return self._with_names(result)
        installed = install(self, wanted, task_vars)
        if installed.get("failed"):
            result.update(installed)
            return result
        applied = self._execute_module(self.MODULE, module_args=args, task_vars=task_vars)
        result.update(applied, module_runs=installed["module_runs"] + 1, changed_files=installed["changed_files"],
                      changed=bool(applied.get("changed") or installed["changed"]))
        return self._with_names(result)

    def _with_names(self, result):
        """With --diff, the names of the files installed beside the module's own diff (the drift report
        shows a changed file whose apply alone would change nothing, as ocs_install's did)."""
        if result.get("changed_files") and self._task.diff and not result.get("failed"):
            own = result.get("diff")
            result["diff"] = ([] if not own else own if isinstance(own, list) else [own]) + [
                names_diff(self, result["changed_files"])]
        return result
