#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install several whole files in one module run (the host side of the ocs_install action)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_install
version_added: 0.6.0
short_description: Install several whole files, each atomically, in one module run
description:
  - Compares each file's SHA-256, mode and owner with the wanted ones. A file whose content differs is written
    beside its target and renamed over it, from the C(content) sent for it; without C(content) it is returned in
    C(needed) and left alone (the action of the same name then sends the content of those files only).
  - A file whose content is right but whose mode or owner is not gets its mode and owner set.
  - Use the action (same name) from a role; it sends the content with the checksums when the files are small (one
    module run), otherwise checksums first and content only where it differs. Supports check mode.
options:
  files:
    description: The files.
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Absolute path on the host.
        type: path
        required: true
      mode:
        description: File mode, an octal string such as C("0644"); required when present.
        type: str
      sha256:
        description: SHA-256 (hex) of the wanted content; required when present.
        type: str
      state:
        description: C(absent) removes the path (a file, a link or a directory tree) where it exists.
        type: str
        choices: [present, absent]
        default: present
      content:
        description:
          - The wanted content. To the module, base64 and only for a file whose content differs; to the action,
            text (such as a C(lookup('ansible.builtin.template')) printed on the controller), or use O(files[].src).
        type: str
      validate:
        description:
          - A command run on the new content before it is installed, with C(%s) for the file (as
            C(ansible.builtin.copy)'s C(validate)). Every new file of the call is written and validated first; only
            when all passed are they installed, so one rejected file installs none.
        type: str
      src:
        description: A file on the controller holding the wanted content (the action reads it; the module ignores it).
        type: path
      manage:
        description: False leaves this path alone (a file this host does not have).
        type: bool
        default: true
      alternate:
        description:
          - To the action. Another content for this file, wanted instead while O(files[].alternate.if_exists)
            exists on the host (a drained host's C(frr.conf)); the module decides, the action sends the content
            it then needs. To the module, C(alternate_if) (the path) and C(alternate_sha256).
        type: dict
        suboptions:
          if_exists:
            description: A path on the host.
            type: path
          content:
            description: The alternate content (text).
            type: str
      alternate_if:
        description: The module's side of O(files[].alternate) (set by the action).
        type: path
      alternate_sha256:
        description: The module's side of O(files[].alternate) (set by the action).
        type: str
      alternate_content:
        description:
          - The module's side of O(files[].alternate), base64, sent with O(files[].content) when the action sends
            content in its first run; written when the alternate is chosen and differs.
        type: str
  directories:
    description: Directories that must exist (created, or their mode and owner set, with C(directory_mode)).
    type: list
    elements: path
    default: []
  owner:
    description: Owner of every file.
    type: str
    default: root
  group:
    description: Group of every file.
    type: str
    default: root
  directory_mode:
    description: Mode of parent directories that have to be created.
    type: str
    default: "0755"
  units:
    description:
      - >-
        systemd units this role's files belong to, brought up once every file is in place (as the module
        M(ocs.l3.ocs_units) does, in the same module run): C(systemctl daemon-reload) first when a changed file
        is under a systemd directory, then each unit enabled and started where it is not. Never stops, restarts
        or reloads a unit (handlers do that).
      - Not when a file's content is still O(files[].content)-less and differs (C(needed)); the action's second
        run, with that content, does it.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The unit's full name (C(frr.service)).
        type: str
        required: true
      enabled:
        description: Enable it (start at boot).
        type: bool
        default: true
      started:
        description: Start it now when it is not running.
        type: bool
        default: true
      manage:
        description: False leaves this unit alone.
        type: bool
        default: true
  changed_before:
    description: Files an earlier run of this task changed (the action's first run), for the daemon-reload decision.
    type: list
    elements: str
    default: []
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Install the units (the action sends the content only where it differs)
  ocs.l3.ocs_install:
    files:
      - dest: /etc/systemd/system/example.service
        mode: "0644"
        content: "{{ lookup('ansible.builtin.template', 'etc/systemd/system/example.service.j2') }}"
"""

RETURN = r"""
changed_files:
  description: The files and directories written, removed, created, or whose mode or owner was set (check mode,
    that would be).
  type: list
  elements: str
  returned: always
alternates:
  description: The files wanted in their alternate form (their O(files[].alternate.if_exists) exists).
  type: list
  elements: str
  returned: always
needed:
  description: The files whose content differs and for which no content was sent (left alone).
  type: list
  elements: str
  returned: always
unit_actions:
  description: What O(units) took (check mode, would take), as C(daemon-reload), C(enable NAME), C(start NAME).
  type: list
  elements: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils import install, units


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True, options=install.file_options(),
                       required_if=[("state", "present", ("mode", "sha256"))]),
            directories=dict(type="list", elements="path", default=[]),
            owner=dict(type="str", default="root"),
            group=dict(type="str", default="root"),
            directory_mode=dict(type="str", default="0755"),
            units=dict(type="list", elements="dict", default=[], options=units.unit_options()),
            changed_before=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    changed, needed, files = install.install_from(module, p)
    # The units once every file is in place (with content still to come, the action runs this again).
    done = [] if needed else units.converge(module, p["units"], p["changed_before"] + changed)
    module.exit_json(changed=bool(changed or done), changed_files=changed, needed=needed, unit_actions=done,
                     alternates=[f["dest"] for f in files if f.get("alternate_chosen")])


if __name__ == "__main__":
    main()
