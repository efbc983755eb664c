#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the live content of our own iptables chains equal a rendered restore file."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_iptables_chains
version_added: 0.4.0
short_description: Apply an iptables-restore file that fills only our own chains, atomically and only when needed
description:
  - O(src) is an C(iptables-restore) file that declares its chains (C(:OCS-X - [0:0])) and appends rules
    only to chains it declares; every declared chain must start with O(prefix).
  - >-
    The candidate is applied in a throwaway network namespace first (C(iptables-restore --test) misses
    unknown targets and undefined chains), and read back with C(iptables-save): the normalized candidate.
  - The live chains of the same names (C(iptables-save -t TABLE), counters ignored) are compared with it.
    When they differ, one C(iptables-restore --noflush) transaction flushes and refills them; a failed
    transaction leaves the previous rules in place. When they are equal nothing is touched, so packet
    counters and conntrack entries stay.
  - >-
    Each jump of O(jumps) (C(-A CHAIN -j TARGET)) is made to exist exactly once, in the same transaction:
    inserted at the top when missing, extra copies deleted; with C(first), moved to the top when another rule
    precedes it.
  - Chains and rules that are not ours (another tool's, an operator's) are never read into the transaction.
  - After a change of table nat, conntrack entries of translations that changed or vanished are deleted
    (C(conntrack -D --orig-dst X) for a changed DNAT of X/32 and C(--reply-dst X) for its reply side or a
    vanished SNAT address), so that existing flows take the new translation.
  - One file may carry several tables (C(*nat), C(*filter)); jumps name their table. O(family) selects
    C(iptables-*) or C(ip6tables-*); one call per family.
  - Supports check mode and diff mode.
options:
  src:
    description: Path of the restore file on the host.
    type: path
    required: true
  family:
    description: C(ipv4) uses C(iptables-restore)/C(iptables-save), C(ipv6) uses C(ip6tables-restore)/C(ip6tables-save).
    type: str
    choices: [ipv4, ipv6]
    default: ipv4
  prefix:
    description: Every chain the file declares must start with this.
    type: str
    default: OCS-
  jumps:
    description: Jumps from built-in chains into ours that must exist exactly once.
    type: list
    elements: dict
    default: []
    suboptions:
      table:
        description: Table of the jump.
        type: str
        default: nat
      chain:
        description: Built-in chain that jumps.
        type: str
        required: true
      target:
        description: Our chain (declared in O(src)).
        type: str
        required: true
      first:
        description: The jump must be the chain's first rule (a filter that others' ACCEPT rules must not
          bypass); an existing copy elsewhere is moved to the top. When false an existing jump keeps its position.
        type: bool
        default: false
  ipv6_src:
    description:
      - >-
        With O(family=ipv4), an IPv6 file applied in the same module run after O(src), with the same O(jumps)
        (the host policy's two families, one task per host). Its result is returned as RV(ipv6).
    type: path
  conntrack:
    description: Delete conntrack entries of changed or vanished translations after a change (table nat, ipv4).
    type: bool
    default: true
  conntrack_table:
    description:
      - >-
        After the chains (applying them loads C(nf_conntrack)), size the host's conntrack table in the same
        module run, as M(ocs.l3.ocs_conntrack) does with the same options: set where this host may (and kept for
        the next boot with C(sysctl_file) and C(modules_file)), checked where it may not. Its result is returned
        as RV(conntrack_table).
    type: dict
    suboptions:
      max:
        description: The wanted C(nf_conntrack_max).
        type: int
        required: true
      buckets:
        description: The wanted C(nf_conntrack_buckets); 0, from the maximum.
        type: int
        default: 0
      manage:
        description: Set them when possible; false, only check them.
        type: bool
        default: true
      readonly:
        description: When they cannot be set and are smaller than wanted, C(warn) or C(fail).
        type: str
        choices: [warn, fail]
        default: warn
      sysctl_file:
        description: The C(sysctl.d) file that keeps them.
        type: path
      modules_file:
        description: The C(modules-load.d) file that loads C(nf_conntrack) at boot.
        type: path
extends_documentation_fragment:
  - ocs.l3.install
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Apply the NAT chains
  ocs_iptables_chains:
    src: /etc/ocs-l3/iptables-nat.rules
    jumps:
      - {chain: PREROUTING, target: OCS-PREROUTING}
      - {chain: OUTPUT, target: OCS-OUTPUT}
      - {chain: POSTROUTING, target: OCS-POSTROUTING}

- name: Apply the filter chains for IPv6
  ocs_iptables_chains:
    src: /etc/ocs-l3/ip6tables-filter.rules
    family: ipv6
    jumps:
      - {table: filter, chain: INPUT, target: OCS-INPUT}
      - {table: filter, chain: FORWARD, target: OCS-FORWARD}
"""

RETURN = r"""
changed_files:
  description: With O(install), the files it installed (check mode, would install) before applying them.
  type: list
  elements: str
  returned: with O(install)
conntrack_table:
  description: With O(conntrack_table), what M(ocs.l3.ocs_conntrack) returns (current, wanted, settable, set, short,
    persisted, sysctl_conf).
  type: dict
  returned: with O(conntrack_table)
transaction:
  description: The iptables-restore --noflush input applied (or that would be, in check mode); empty when none.
  type: str
  returned: always
tables:
  description: Tables whose chains differed and were refilled.
  type: list
  returned: always
jumps_fixed:
  description: Jump lines inserted (-I) or deleted (-D).
  type: list
  returned: always
conntrack_deleted:
  description: conntrack -D selections run (or that would be), e.g. "--orig-dst 203.0.113.101".
  type: list
  returned: always
ipv6:
  description: The result of O(ipv6_src)'s part (transaction, tables, jumps_fixed, conntrack_deleted).
  type: dict
  returned: with O(ipv6_src)
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils import conntrack as conntrack_size, install
from ansible_collections.ocs.l3.plugins.module_utils.constants import CHAIN_PREFIX
from ansible_collections.ocs.l3.plugins.module_utils.iptables import ApplyError, check_candidate, parse_restore, plan
from ansible_collections.ocs.l3.plugins.module_utils.iptables import live_tables, scratch_save, tools
from ansible_collections.ocs.l3.plugins.module_utils.netns import NetnsError, module_runner


class _Partial:
    """The module, whose failures also report the part a run applied already (``ipv4``)."""

    def __init__(self, module, done):
        self._module, self._done = module, done

    def fail_json(self, **kw):
        kw.setdefault("ipv4", self._done)
        kw.setdefault("changed", self._done.get("changed", False))
        self._module.fail_json(**kw)

    def __getattr__(self, name):
        return getattr(self._module, name)


def _scratch_save(module, text, family):
    """Apply ``text`` in a throwaway netns; return the ``*-save`` output there."""
    try:
        return scratch_save(module_runner(module), text, family)
    except ApplyError as exc:
        module.fail_json(msg=str(exc))
    except NetnsError as exc:
        module.fail_json(msg="%s to test the rules" % exc)


def apply_part(module, src, family, done=None):
    """Apply one family's file (fails the module, with what ``done`` already applied, on an error);
    returns its result."""
    p = module.params
    if done is not None:
        module = _Partial(module, done)
    try:
        with open(src) as fh:
            text = fh.read()
        candidate = parse_restore(text)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (src, exc))
    problems = check_candidate(candidate, p["prefix"], p["jumps"])
    if problems:
        module.fail_json(msg="%s would touch chains that are not ours: %s" % (src, "; ".join(problems)))
    restore, save = tools(family)
    for tool in (restore, save, "ip"):
        module.get_bin_path(tool, required=True)
    candidate_save = _scratch_save(module, text, family)
    tables = sorted(set(candidate) | {j["table"] for j in p["jumps"]})

    def live():
        try:
            return live_tables(module_runner(module), family, tables)
        except ApplyError as exc:
            module.fail_json(msg=str(exc))

    try:
        res = plan(candidate, live(), candidate_save, p["jumps"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    conntrack = [" ".join(sel) for sel in res["conntrack"]] if p["conntrack"] and family == "ipv4" else []
    result = dict(changed=bool(res["transaction"]), transaction=res["transaction"], tables=res["tables"],
                  jumps_fixed=res["jumps_fixed"], conntrack_deleted=conntrack)
    if module._diff:
        result["diff"] = dict(before=res["before"], after=res["after"], before_header="live chains",
                              after_header=src)
    if module.check_mode or not res["transaction"]:
        return result
    rc, out, err = module.run_command([restore, "-w", "--noflush"], data=res["transaction"],
                                      binary_data=True)
    if rc != 0:
        module.fail_json(msg="%s --noflush failed; the previous rules are still in place: %s"
                         % (restore, err.strip()), rc=rc, stderr=err, **result)
    again = plan(candidate, live(), candidate_save, p["jumps"])
    if again["transaction"]:
        module.fail_json(msg="after the apply our chains still differ (another tool changing them?)",
                         remaining=again["transaction"], **result)
    if conntrack:
        ct_bin = module.get_bin_path("conntrack")
        if ct_bin is None:
            module.warn("conntrack is not installed: existing flows keep their old translation (%s)"
                        % ", ".join(conntrack))
        else:
            for sel in res["conntrack"]:
                rc, out, err = module.run_command([ct_bin, "-D"] + sel)
                if rc != 0 and "0 flow entries" not in err:
                    module.fail_json(msg="conntrack -D %s failed: %s" % (" ".join(sel), err.strip()), **result)
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            family=dict(type="str", choices=["ipv4", "ipv6"], default="ipv4"),
            ipv6_src=dict(type="path"),
            prefix=dict(type="str", default=CHAIN_PREFIX),
            jumps=dict(type="list", elements="dict", default=[], options=dict(
                table=dict(type="str", default="nat"), chain=dict(type="str", required=True),
                target=dict(type="str", required=True), first=dict(type="bool", default=False))),
            conntrack=dict(type="bool", default=True),
            conntrack_table=dict(type="dict", options=dict(
                max=dict(type="int", required=True), buckets=dict(type="int", default=0),
                manage=dict(type="bool", default=True),
                readonly=dict(type="str", choices=["warn", "fail"], default="warn"),
                sysctl_file=dict(type="path"), modules_file=dict(type="path"))),
            install=install.install_option(),
        ),
        supports_check_mode=True,
    )
    p = module.params
    installed = install.installed_first(module, p)
    result = apply_part(module, p["src"], p["family"])
    if p["ipv6_src"]:
        if p["family"] != "ipv4":
            module.fail_json(msg="ipv6_src goes with an IPv4 src (family ipv4)")
        # The same run, after the IPv4 part (applied already: each family is its own transaction).
        six = apply_part(module, p["ipv6_src"], "ipv6", done=result)
        result = dict(result, changed=result["changed"] or six["changed"], ipv6=six)
        if "diff" in result or "diff" in six:
            result["diff"] = [d for d in (result.get("diff"), six.pop("diff", None)) if d]
    if p["conntrack_table"]:
        table = p["conntrack_table"]
        sized = conntrack_size.converge(module, table["max"], **{k: v for k, v in table.items() if k != "max"})
        result = dict(result, changed=result["changed"] or sized["changed"], conntrack_table=sized)
    if p["install"]:
        result = dict(result, changed_files=installed, changed=result["changed"] or bool(installed))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
