#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Make the live content of our own iptables chains equal a rendered restore file."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_iptables_chains
short_description: Apply an iptables-restore file that fills only our own chains, atomically and only when needed
description:
  - O(src) is an C(iptables-restore) file that declares its chains (C(:OCS-X - [0:0])) and appends rules
    only to chains it declares; every declared chain must start with O(prefix).
  - The candidate is applied in a throwaway network namespace first (C(iptables-restore --test) misses
    unknown targets and undefined chains), and read back with C(iptables-save): the normalized candidate.
  - The live chains of the same names (C(iptables-save -t TABLE), counters ignored) are compared with it.
    When they differ, one C(iptables-restore --noflush) transaction flushes and refills them; a failed
    transaction leaves the previous rules in place. When they are equal nothing is touched, so packet
    counters and conntrack entries stay.
  - Each jump of O(jumps) (C(-A CHAIN -j TARGET)) is made to exist exactly once, in the same transaction:
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
  conntrack:
    description: Delete conntrack entries of changed or vanished translations after a change (table nat, ipv4).
    type: bool
    default: true
author: ocs-l3
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
"""

import os
import shlex
import uuid

from ansible.module_utils.basic import AnsibleModule


def parse_restore(text):
    """Restore-file text -> {table: {"chains": [declared], "rules": [-A lines]}} (comments dropped)."""
    tables, current = {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("*"):
            current = tables.setdefault(line[1:], {"chains": [], "rules": []})
        elif line == "COMMIT":
            current = None
        elif current is None:
            raise ValueError("line outside a *table ... COMMIT block: %s" % line)
        elif line.startswith(":"):
            current["chains"].append(line[1:].split()[0])
        else:
            current["rules"].append(line)
    return tables


def check_candidate(tables, prefix, jumps):
    """Problems that make a candidate unsafe to apply (it would touch chains that are not ours)."""
    problems = []
    for table, spec in sorted(tables.items()):
        declared = set(spec["chains"])
        for chain in spec["chains"]:
            if not chain.startswith(prefix):
                problems.append("%s: chain %s does not start with %s" % (table, chain, prefix))
        for rule in spec["rules"]:
            parts = rule.split()
            if len(parts) < 2 or parts[0] != "-A" or parts[1] not in declared:
                problems.append("%s: only -A into a declared chain is allowed: %s" % (table, rule))
    for jump in jumps:
        if jump["target"] not in tables.get(jump["table"], {}).get("chains", []):
            problems.append("jump %s -> %s: %s is not declared in table %s"
                            % (jump["chain"], jump["target"], jump["target"], jump["table"]))
    return problems


def saved_chains(save_text, table, chains):
    """Our chains of ``table`` in iptables-save output: {chain: [rule lines]}, counters ignored.
    A chain that does not exist is absent."""
    out, current = {}, None
    wanted = set(chains)
    for raw in save_text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            current = line[1:]
        elif current != table:
            continue
        elif line.startswith(":"):
            name = line[1:].split()[0]
            if name in wanted:
                out.setdefault(name, [])
        elif line.startswith("-A "):
            name = line.split()[1]
            if name in wanted:
                out.setdefault(name, []).append(line)
    return out


def jump_count(save_text, table, chain, target):
    return jump_state(save_text, table, chain, target)[0]


def jump_state(save_text, table, chain, target):
    """(copies of ``-A CHAIN -j TARGET`` in ``table``, whether the chain's first rule is one)."""
    want = "-A %s -j %s" % (chain, target)
    current, count, first = None, 0, None
    for raw in save_text.splitlines():
        line = raw.strip()
        if line.startswith("*"):
            current = line[1:]
        elif current == table and line.startswith("-A %s " % chain):
            if first is None:
                first = line == want
            if line == want:
                count += 1
    return count, bool(first)


def _tokens(rule):
    """Tokens of a rule without '-A CHAIN' and without its comment match."""
    toks = shlex.split(rule)[2:]
    out, i = [], 0
    while i < len(toks):
        if toks[i:i + 3] == ["-m", "comment", "--comment"]:
            i += 4
            continue
        out.append(toks[i])
        i += 1
    return out


def _opt(toks, name):
    return toks[toks.index(name) + 1] if name in toks and toks.index(name) + 1 < len(toks) else None


def translations(chains):
    """({dnat address: frozenset(rule)}, {snat address}) of a set of chains (table nat).
    A DNAT is keyed by its ``-d X/32``; an SNAT by its --to-source address."""
    dnat, snat = {}, set()
    for rules in chains.values():
        for rule in rules:
            toks = _tokens(rule)
            target = _opt(toks, "-j")
            if target == "DNAT":
                dst = _opt(toks, "-d")
                if dst and (dst.endswith("/32") or "/" not in dst):
                    dnat.setdefault(dst.split("/")[0], set()).add(" ".join(toks))
            elif target == "SNAT":
                to = _opt(toks, "--to-source")
                if to:
                    snat.add(to.split(":")[0].split("-")[0])
    return {k: frozenset(v) for k, v in dnat.items()}, snat


def conntrack_deletions(before, after):
    """conntrack -D selections for translations that changed or vanished between two nat chain sets."""
    dnat_b, snat_b = translations(before)
    dnat_a, snat_a = translations(after)
    out = []
    for addr in sorted(dnat_b, key=_ipkey):
        if dnat_a.get(addr) != dnat_b[addr]:
            out.append(["--orig-dst", addr])
            out.append(["--reply-dst", addr])
    for addr in sorted(snat_b - snat_a, key=_ipkey):
        if ["--reply-dst", addr] not in out:
            out.append(["--reply-dst", addr])
    return out


def _ipkey(addr):
    try:
        return tuple(int(x) for x in addr.split("."))
    except ValueError:
        return (999, addr)


def _show(chains, order, jumps_text):
    lines = list(jumps_text)
    for chain in order:
        if chain in chains:
            lines.append(":%s" % chain)
            lines.extend(chains[chain])
    return "\n".join(lines) + "\n"


def plan(candidate, live_by_table, candidate_save, jumps):
    """Pure planning step.

    candidate: parse_restore() of the file; live_by_table: {table: iptables-save -t table text};
    candidate_save: iptables-save text of the candidate applied in a scratch namespace;
    jumps: [{table, chain, target}].
    Returns dict(transaction, tables, jumps_fixed, conntrack, before, after).
    """
    blocks, changed_tables, fixed, ct, before, after = [], [], [], [], [], []
    for table in sorted(set(candidate) | {j["table"] for j in jumps}):
        chains = candidate.get(table, {}).get("chains", [])
        live_text = live_by_table.get(table, "")
        want = saved_chains(candidate_save, table, chains)
        have = saved_chains(live_text, table, chains)
        missing = [c for c in chains if c not in want]
        if missing:
            raise ValueError("table %s: chains %s missing after applying the candidate in a scratch namespace"
                             % (table, ", ".join(missing)))
        body = []
        if want != have:
            changed_tables.append(table)
            body += [":%s - [0:0]" % c for c in chains]
            for c in chains:
                body += want[c]
            if table == "nat":
                ct += conntrack_deletions(have, want)
        jump_before, jump_after = [], []
        for j in (j for j in jumps if j["table"] == table):
            line = "-A %s -j %s" % (j["chain"], j["target"])
            n, on_top = jump_state(live_text, table, j["chain"], j["target"])
            jump_before += [line] * n
            jump_after.append(line)
            if n and j.get("first") and not on_top:  # move it to the top (deletions first: -D takes the first copy)
                fix = ["-D %s -j %s" % (j["chain"], j["target"])] * n + ["-I %s 1 -j %s" % (j["chain"], j["target"])]
            else:
                fix = ["-I %s 1 -j %s" % (j["chain"], j["target"])] if n == 0 else []
                fix += ["-D %s -j %s" % (j["chain"], j["target"])] * max(0, n - 1)
            fixed += fix
            body += fix
        if body:
            blocks.append("*%s\n%s\nCOMMIT\n" % (table, "\n".join(body)))
        before.append("*%s\n%s" % (table, _show(have, chains, jump_before)))
        after.append("*%s\n%s" % (table, _show(want, chains, jump_after)))
    return dict(transaction="".join(blocks), tables=changed_tables, jumps_fixed=fixed, conntrack=ct,
                before="".join(before), after="".join(after))


def _scratch_save(module, text, restore, save):
    """Apply ``text`` with ``restore`` in a throwaway netns; return the output of ``save`` there."""
    ns = "ocs-chk-%s" % uuid.uuid4().hex[:10]
    rc, out, err = module.run_command(["ip", "netns", "add", ns])
    if rc != 0:
        module.fail_json(msg="cannot create a scratch network namespace to test the rules: %s" % err.strip())
    try:
        rc, out, err = module.run_command(["ip", "netns", "exec", ns, restore], data=text,
                                          binary_data=True)
        if rc != 0:
            module.fail_json(msg="the rules do not apply (tested in a scratch network namespace; nothing changed): %s"
                             % err.strip(), rc=rc, stderr=err)
        rc, out, err = module.run_command(["ip", "netns", "exec", ns, save], check_rc=True)
        return out
    finally:
        module.run_command(["ip", "netns", "del", ns])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            family=dict(type="str", choices=["ipv4", "ipv6"], default="ipv4"),
            prefix=dict(type="str", default="OCS-"),
            jumps=dict(type="list", elements="dict", default=[], options=dict(
                table=dict(type="str", default="nat"), chain=dict(type="str", required=True),
                target=dict(type="str", required=True), first=dict(type="bool", default=False))),
            conntrack=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        with open(p["src"]) as fh:
            text = fh.read()
        candidate = parse_restore(text)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot read %s: %s" % (p["src"], exc))
    problems = check_candidate(candidate, p["prefix"], p["jumps"])
    if problems:
        module.fail_json(msg="%s would touch chains that are not ours: %s" % (p["src"], "; ".join(problems)))
    stem = "iptables" if p["family"] == "ipv4" else "ip6tables"
    restore, save = stem + "-restore", stem + "-save"
    for tool in (restore, save, "ip"):
        module.get_bin_path(tool, required=True)
    candidate_save = _scratch_save(module, text, restore, save)
    tables = sorted(set(candidate) | {j["table"] for j in p["jumps"]})

    def live():
        return {t: module.run_command([save, "-t", t], check_rc=True)[1] for t in tables}

    try:
        res = plan(candidate, live(), candidate_save, p["jumps"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    conntrack = [" ".join(sel) for sel in res["conntrack"]] if p["conntrack"] and p["family"] == "ipv4" else []
    result = dict(changed=bool(res["transaction"]), transaction=res["transaction"], tables=res["tables"],
                  jumps_fixed=res["jumps_fixed"], conntrack_deleted=conntrack)
    if module._diff:
        result["diff"] = dict(before=res["before"], after=res["after"], before_header="live chains",
                              after_header=p["src"])
    if module.check_mode or not res["transaction"]:
        module.exit_json(**result)
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
    module.exit_json(**result)


if __name__ == "__main__":
    main()
