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
  - Does not persist the values; the role writes C(sysctl_conf) to C(/etc/sysctl.d). Supports check mode.
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
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        want = conntrack.wanted(p["max"], p["buckets"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    state = conntrack.read()
    current = {k: v["value"] for k, v in state.items()}
    settable = p["manage"] and state[conntrack.MAX]["writable"]
    keep = dict(want, **{conntrack.BUCKETS: max(current[conntrack.BUCKETS] or 0, want[conntrack.BUCKETS])})
    out = dict(current=current, wanted=want, settable=settable, set=[], short=[],
               sysctl_conf=conntrack.sysctl_conf(keep))
    if settable:
        changes = conntrack.plan(state, want)
        # the buckets may stay read-only where the maximum is not (older kernels): leave them then
        changes = [c for c in changes if state[c[0]]["writable"]]
        out["set"] = ["%s %s -> %d" % (k, old, new) for k, old, new in changes]
        if changes and not module.check_mode:
            try:
                conntrack.apply(changes)
            except OSError as exc:
                module.fail_json(msg=str(exc), **out)
        module.exit_json(changed=bool(changes), **out)
    short = conntrack.shortfall(state, want)
    out["short"] = ["%s %s < %d" % (k, "missing" if v is None else v, w) for k, v, w in short]
    if short:
        why = ("this host may not set them (a container, or a non-init network namespace: the kernel keeps them "
               "per host)" if p["manage"] else "ocs_firewall_conntrack_manage is false")
        msg = "conntrack table smaller than wanted: %s; %s. Set them on the host that owns the kernel." % (
            ", ".join(out["short"]), why)
        if p["readonly"] == "fail":
            module.fail_json(msg=msg, **out)
        module.warn(msg)
    module.exit_json(changed=False, **out)


if __name__ == "__main__":
    main()
