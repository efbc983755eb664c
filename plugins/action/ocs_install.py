# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install several whole files in one task, in one module run where the files are small.

One ``copy`` or ``template`` task per file costs Ansible about half a second of
CPU per host; this runs the module ``ocs_install`` once per host with each
file's SHA-256, mode and owner. When the task's files (and their alternates)
hold at most ``install.INLINE_BYTES``, their content goes with the checksums and the module
writes those that differ in that same run (a file's change costs no second
round trip to the host; over podman or SSH a module run is 0.5 to 1.5 s on the
critical path of a one-instance change). Larger sets go checksums first, and a
second run, with content, only for the files that differ
(module_utils/install.py says how they are written). Each
file comes from ``src`` (a file on the controller, such as the render step's
build) or ``content`` (text, such as a ``lookup('ansible.builtin.template')``
printed on the controller); a file with ``state: absent`` is removed where it
exists, one with ``manage: false`` is left alone (a file this host does not
have), and ``directories`` are made to exist.
"""

from __future__ import annotations

import base64
import hashlib

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_bytes
from ansible.plugins.action import ActionBase

from ansible_collections.ocs.l3.plugins.module_utils.install import INLINE_BYTES
from ansible_collections.ocs.l3.plugins.module_utils.units import unit_options

MODULE = "ocs.l3.ocs_install"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    ARGUMENT_SPEC = dict(
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
        units=dict(type="list", elements="dict", default=[], options=unit_options()),
    )

    @staticmethod
    def _specs(files, loader):
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

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC)
        specs, data, alternates = self._specs(args["files"], self._loader)
        # The units go with both runs: the module brings them up in the run that leaves no file to send.
        common = dict(owner=args["owner"], group=args["group"], directory_mode=args["directory_mode"],
                      units=[u for u in args["units"] if u["manage"]])
        inline = sum(map(len, data.values())) + sum(map(len, alternates.values())) <= INLINE_BYTES
        first_specs = [_with_content(s, data, alternates) for s in specs] if inline else specs
        first = self._execute_module(MODULE, module_args=dict(files=first_specs, directories=args["directories"],
                                                              **common), task_vars=task_vars)
        runs = 1
        if first.get("failed"):
            result.update(first)
            return result
        changed = list(first.get("changed_files", []))
        needed = set(first.get("needed", []))
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
            second = self._execute_module(MODULE, module_args=dict(files=send, changed_before=changed, **common),
                                          task_vars=task_vars)
            runs = 2
            if second.get("failed"):
                result.update(second)
                return result
            changed += second.get("changed_files", [])
            unit_actions = second.get("unit_actions", [])
        else:
            unit_actions = first.get("unit_actions", [])
        result.update(changed=bool(changed or unit_actions), changed_files=sorted(changed), files=len(specs),
                      unit_actions=unit_actions, module_runs=runs)
        if changed and self._task.diff:
            # Names only (a file may hold a secret): the drift report shows which files differ.
            result["diff"] = [dict(prepared="%s: %s" % ("would change" if self._task.check_mode else "changed",
                                                        ", ".join(sorted(changed))))]
        return result


def _with_content(spec, data, alternates):
    """A module spec with its content (base64) and its alternate's, for the module to write in the same run."""
    dest = spec.get("dest")
    if dest not in data:  # state absent
        return spec
    out = dict(spec, content=base64.b64encode(data[dest]).decode())
    if dest in alternates:
        out["alternate_content"] = base64.b64encode(alternates[dest]).decode()
    return out
