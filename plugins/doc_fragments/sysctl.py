# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel-settings options of the apply modules (ocs_route_table, ocs_nft_table): one text for
the options module_utils/sysctl.py's ``options()`` declares and ``settle_or_fail`` acts on."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  sysctls:
    description:
      - Kernel settings the module's job needs, each with the value it must read (C(/proc/sys)); checked
        first, any that does not fails the task naming each, before anything is applied.
    type: dict
    default: {}
  sysctl_hint:
    description: Added to the failure message of O(sysctls) (how to set them).
    type: str
    default: ""
  sysctl_file:
    description:
      - >-
        With it, O(sysctls) are set first, each that does not read as given (through C(/proc/sys), as
        C(sysctl -w)), and kept for the next boot in this C(sysctl.d) file (written whole, atomically, when its
        content differs: the role owns it); then checked. A setting that cannot be set (a read-only
        C(/proc/sys)) fails the task before anything is applied. Without it they are only checked.
      - One module run where a C(sysctl) task costs a module run per setting.
    type: path
"""
