# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure planning for one nftables table we own (no Ansible, standard library only).

Host side: the ``ocs_nft_table`` module and the boot restore use it. Compares the
candidate table (as the kernel lists it after loading the file in a scratch
namespace) with the live one and plans the smallest transaction.
"""

from __future__ import annotations

import json
import re

from .netns import exec_argv, scratch_netns

CHUNK = 5000  # elements per add/delete statement
_TABLE_RE = re.compile(r"^\s*table\s+(\S+)\s+(\S+)", re.M)
_OTHER_RE = re.compile(r"^\s*(add|create|delete|flush|insert|replace|destroy|define|include)\b", re.M)


class ApplyError(Exception):
    """The table could not be loaded in a scratch namespace or read."""


def declared_tables(text):
    """[(family, name)] of the tables an nft file declares."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    if _OTHER_RE.search(body):
        raise ValueError("the file may only declare a table (no add/delete/flush/include/define commands)")
    return _TABLE_RE.findall(body)


def _strip(obj):
    return {k: v for k, v in obj.items() if k not in ("handle", "elem", "family", "table")}


def normalize(doc):
    """``nft -j -s list table`` output -> (skeleton, map elements).

    skeleton: sets (with their elements: they are part of the rules' meaning),
    maps without elements, chains and rules (in order), all without handles;
    map elements: {map name: {key: value}}."""
    sets, maps, chains, rules, elems = {}, {}, {}, {}, {}
    for item in doc.get("nftables", []):
        if "set" in item:
            s = item["set"]
            sets[s["name"]] = dict(_strip(s), elem=s.get("elem", []))
        elif "map" in item:
            m = item["map"]
            maps[m["name"]] = _strip(m)
            elems[m["name"]] = {json.dumps(k, sort_keys=True): json.dumps(v, sort_keys=True)
                                for k, v in m.get("elem", [])}
        elif "chain" in item:
            chains[item["chain"]["name"]] = _strip(item["chain"])
        elif "rule" in item:
            r = item["rule"]
            rules.setdefault(r["chain"], []).append(r["expr"])
    skeleton = json.dumps(dict(sets=sets, maps=maps, chains=chains, rules=rules), sort_keys=True)
    return skeleton, elems


def _value(text):
    """A JSON element back in nft syntax (plain addresses and numbers)."""
    v = json.loads(text)
    if isinstance(v, (str, int)):
        return str(v)
    raise ValueError("map element %s is not a plain value" % text)


def element_changes(live, want):
    """{map: (removed [(k, v)], added [(k, v)])} for maps present in both."""
    out = {}
    for name, w in want.items():
        have = live.get(name, {})
        removed = sorted((k, v) for k, v in have.items() if w.get(k) != v)
        added = sorted((k, v) for k, v in w.items() if have.get(k) != v)
        if removed or added:
            out[name] = (removed, added)
    return out


def element_transaction(family, name, changes):
    lines = []
    for m, (removed, added) in sorted(changes.items()):
        for i in range(0, len(removed), CHUNK):
            keys = ", ".join(_value(k) for k, dummy in removed[i:i + CHUNK])
            lines.append("delete element %s %s %s { %s }" % (family, name, m, keys))
        for i in range(0, len(added), CHUNK):
            pairs = ", ".join("%s : %s" % (_value(k), _value(v)) for k, v in added[i:i + CHUNK])
            lines.append("add element %s %s %s { %s }" % (family, name, m, pairs))
    return "".join(line + "\n" for line in lines)


def plan(family, name, text, candidate, live):
    """candidate/live: normalized (skeleton, elements) or None (no table).
    Returns dict(action, transaction, elements_added, elements_removed)."""
    res = dict(operation="none", transaction="", elements_added=0, elements_removed=0)
    if candidate is None:
        if live is not None:
            res.update(operation="delete", transaction="delete table %s %s\n" % (family, name))
        return res
    if live is None:
        res.update(operation="create", transaction=text,
                   elements_added=sum(len(e) for e in candidate[1].values()))
        return res
    if live[0] != candidate[0]:
        res.update(operation="replace", transaction="table %s %s\ndelete table %s %s\n%s" % (
            family, name, family, name, text))
        return res
    changes = element_changes(live[1], candidate[1])
    if changes:
        res.update(operation="elements", transaction=element_transaction(family, name, changes),
                   elements_removed=sum(len(r) for r, dummy in changes.values()),
                   elements_added=sum(len(a) for dummy, a in changes.values()))
    return res


def list_table(run, family, name, netns=None):
    """(normalized, text listing) of a table, or (None, "") when it does not exist.
    ``run(argv, data=None) -> (rc, out, err)``; ``netns``: list it inside that namespace."""
    pre = exec_argv(netns, []) if netns else []
    rc, out, err = run(pre + ["nft", "-j", "-s", "list", "table", family, name])
    if rc != 0:
        if "No such file or directory" in err or "does not exist" in err:
            return None, ""
        raise ApplyError("nft list table %s %s failed: %s" % (family, name, err.strip()))
    rc, listing, err = run(pre + ["nft", "-s", "list", "table", family, name])
    if rc != 0:
        raise ApplyError("nft list table %s %s failed: %s" % (family, name, err.strip()))
    return normalize(json.loads(out)), listing


def scratch_table(run, text, family, name):
    """Load ``text`` in a throwaway namespace; list_table() there. Raises ApplyError
    (the table does not load) or netns.NetnsError (no namespace)."""
    with scratch_netns(run, "nft") as ns:
        rc, out, err = run(exec_argv(ns, ["nft", "-f", "-"]), data=text)
        if rc != 0:
            raise ApplyError("the table does not load (tested in a scratch network namespace; nothing "
                             "changed): %s" % (err or "").strip())
        return list_table(run, family, name, ns)
