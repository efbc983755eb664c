#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Size a host's conntrack table, or check it where the kernel does not let this host set it."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_conntrack
version_added: 0.5.0
short_description: Set net.netfilter.nf_conntrack_max and nf_conntrack_buckets, or check them where read-only
description:
  - Reads C(net.netfilter.nf_conntrack_max) and C(nf_conntrack_buckets). Where this host may set them
    (the init network namespace, C(/proc/sys) writable), sets the maximum to C(max) exactly and raises the
    buckets to C(buckets) when there are fewer (never shrinks the hash table).
  - Where it may not (a container; the kernel shows them mode 0444 in a non-init network namespace) or when
    C(manage=false), changes nothing and reports the values that are smaller than wanted, as a warning or a
    failure (C(readonly)).
  - >-
    With O(sysctl_file) and O(modules_file), where it sets them it also keeps them for the next boot: C(sysctl_conf)
    in the first, C(nf_conntrack) in the second (loaded at boot before sysctl.d applies), each written whole when it
    differs. Supports check mode.
options:
  max:
    description: The wanted C(nf_conntrack_max), a positive integer.
    type: int
    required: true
  buckets:
    description: The wanted C(nf_conntrack_buckets); 0, a power of two with at most 4 entries per bucket.
    type: int
    default: 0
  manage:
    description: Set the values when possible; false, only check them.
    type: bool
    default: true
  readonly:
    description: When they cannot be set (or C(manage=false)) and are smaller than wanted, C(warn) or C(fail).
    type: str
    choices: [warn, fail]
    default: warn
  sysctl_file:
    description: Where this host may set them, the C(sysctl.d) file that keeps them (C(sysctl_conf)).
    type: path
  modules_file:
    description: Where this host may set them, the C(modules-load.d) file that loads C(nf_conntrack) at boot.
    type: path
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Size the conntrack table
  ocs.l3.ocs_conntrack:
    max: 327680
"""

RETURN = r"""
current:
  description: The values before, C({nf_conntrack_max, nf_conntrack_buckets}) (null where nf_conntrack is not loaded).
  type: dict
  returned: always
wanted:
  description: The wanted values.
  type: dict
  returned: always
settable:
  description: Whether this host may set them (false in a container, or with C(manage=false)).
  type: bool
  returned: always
set:
  description: What was (check mode, would be) set, C("key old -> new").
  type: list
  elements: str
  returned: always
short:
  description: Where it could not set them, what is smaller than wanted, C("key current < wanted").
  type: list
  elements: str
  returned: always
sysctl_conf:
  description: The lines that keep the wanted values across a reboot (for C(/etc/sysctl.d)).
  type: str
  returned: always
persisted:
  description: The files of O(sysctl_file) and O(modules_file) written (check mode, that would be).
  type: list
  elements: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils import conntrack


def main():
    module = AnsibleModule(
        argument_spec=dict(
            max=dict(type="int", required=True),
            buckets=dict(type="int", default=0),
            manage=dict(type="bool", default=True),
            readonly=dict(type="str", choices=["warn", "fail"], default="warn"),
            sysctl_file=dict(type="path"),
            modules_file=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    module.exit_json(**conntrack.converge(module, module.params["max"], **{
        k: module.params[k] for k in ("buckets", "manage", "readonly", "sysctl_file", "modules_file")}))


if __name__ == "__main__":
    main()
