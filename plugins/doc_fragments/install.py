# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``install`` option of the apply modules (ocs_route_table, ocs_iptables_chains): the files the
module applies, installed in the same run (module_utils/install.py's ``install_option()``)."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  install:
    description:
    - 'The files this module applies, sent by its action with their content when they hold at most 256 KiB: the
      module installs them first, in the same run (as M(ocs.l3.ocs_install) does: each differing file validated,
      then all written atomically; one rejected file installs none and nothing is applied), then applies. Larger
      files: the action runs M(ocs.l3.ocs_install) first, then this module without it. Give the task the same arguments
      as M(ocs.l3.ocs_install) (O(install.files[].src) or O(install.files[].content)), units aside.'
    type: dict
    suboptions:
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
            choices:
            - present
            - absent
            default: present
          content:
            description:
            - The wanted content. To the module, base64 and only for a file whose content differs; to the action,
              text (such as a C(lookup('ansible.builtin.template')) printed on the controller), or use O(install.files[].src).
            type: str
          validate:
            description:
            - A command run on the new content before it is installed, with C(%s) for the file (as C(ansible.builtin.copy)'s
              C(validate)). Every new file of the call is written and validated first; only when all passed are
              they installed, so one rejected file installs none.
            type: str
          src:
            description: A file on the controller holding the wanted content (the action reads it; the module ignores
              it).
            type: path
          manage:
            description: False leaves this path alone (a file this host does not have).
            type: bool
            default: true
          alternate:
            description:
            - To the action. Another content for this file, wanted instead while O(install.files[].alternate.if_exists)
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
            description: The module's side of O(install.files[].alternate) (set by the action).
            type: path
          alternate_sha256:
            description: The module's side of O(install.files[].alternate) (set by the action).
            type: str
          alternate_content:
            description:
            - The module's side of O(install.files[].alternate), base64, sent with O(install.files[].content) when the action sends
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
        default: '0755'
"""
