# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chains we own in iptables: parse, check and plan (no Ansible, standard library only).

Host side: the ``ocs_iptables_chains`` module and the boot restore use it.
Our chains are found by name prefix (``constants.CHAIN_PREFIX``); the built-in
chains only carry our jumps. Never parses more of ``iptables-save`` than our
chains and those jump lines.
"""

from __future__ import annotations

import shlex

from .netns import exec_argv, scratch_netns


class ApplyError(Exception):
    """A candidate could not be tested or the live chains could not be read."""


def tools(family):
    """(restore, save) commands of ``family`` (``ipv4`` or ``ipv6``)."""
    stem = "iptables" if family == "ipv4" else "ip6tables"
    return stem + "-restore", stem + "-save"


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


def declared_chains(lines):
    """{table: [declared chains]} of restore-file lines as the render prints them (one statement a
    line, no leading blanks): :func:`parse_restore`'s chains without reading the rules."""
    tables, current = {}, None
    for line in lines:
        first = line[:1]
        if first == "*":
            current = tables.setdefault(line[1:].strip(), [])
        elif first == ":":
            current.append(line[1:].split(None, 1)[0])
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


def jump_fix(live_text, jump):
    """(copies of the jump in ``live_text``, the rule lines that leave exactly one copy,
    on top of its chain when ``jump["first"]``): deletions first, -D takes the first copy."""
    table, chain, target = jump["table"], jump["chain"], jump["target"]
    n, on_top = jump_state(live_text, table, chain, target)
    if n and jump.get("first") and not on_top:
        fix = ["-D %s -j %s" % (chain, target)] * n + ["-I %s 1 -j %s" % (chain, target)]
    else:
        fix = ["-I %s 1 -j %s" % (chain, target)] if n == 0 else []
        fix += ["-D %s -j %s" % (chain, target)] * max(0, n - 1)
    return n, fix


def scratch_save(run, text, family):
    """Apply restore-file ``text`` in a throwaway namespace; the ``*-save`` output there.
    Raises ApplyError (the rules do not apply) or netns.NetnsError (no namespace)."""
    restore, save = tools(family)
    with scratch_netns(run, "ipt") as ns:
        rc, out, err = run(exec_argv(ns, [restore]), data=text)
        if rc != 0:
            raise ApplyError("the rules do not apply (tested in a scratch network namespace; nothing "
                             "changed): %s" % (err or "").strip())
        rc, out, err = run(exec_argv(ns, [save]))
        if rc != 0:
            raise ApplyError("%s in the scratch namespace failed: %s" % (save, (err or "").strip()))
        return out


def live_tables(run, family, tables):
    """{table: ``*-save -t table`` output} of the live kernel; ApplyError when one fails."""
    save = tools(family)[1]
    out = {}
    for table in tables:
        rc, text, err = run([save, "-t", table])
        if rc != 0:
            raise ApplyError("%s -t %s failed: %s" % (save, table, (err or "").strip()))
        out[table] = text
    return out


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
            n, fix = jump_fix(live_text, j)
            jump_before += [line] * n
            jump_after.append(line)
            fixed += fix
            body += fix
        if body:
            blocks.append("*%s\n%s\nCOMMIT\n" % (table, "\n".join(body)))
        before.append("*%s\n%s" % (table, _show(have, chains, jump_before)))
        after.append("*%s\n%s" % (table, _show(want, chains, jump_after)))
    return dict(transaction="".join(blocks), tables=changed_tables, jumps_fixed=fixed, conntrack=ct,
                before="".join(before), after="".join(after))
