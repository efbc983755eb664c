#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Make one live nftables table equal a rendered file; map changes go element by element."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_nft_table
short_description: Apply a rendered nftables table, sending only the map elements that differ
description:
  - O(src) is an C(nft -f) file that declares exactly one table, O(family) O(name), and nothing else
    (or declares no table at all, which means the table must not exist).
  - The file is loaded in a throwaway network namespace and listed back with C(nft -j -s list table): the
    normalized candidate. The live table is listed the same way; counters and handles are ignored.
  - When sets, chains or rules differ (or the table is missing), one C(nft -f) transaction deletes and
    recreates the table. When only the elements of maps differ, one transaction deletes and adds exactly
    those elements (a moved floating IP is one element), and rules, counters and other elements stay
    untouched. When nothing differs nothing is sent. When the file declares no table, a live table is deleted.
  - No other table is read or touched.
  - Supports check mode and diff mode.
options:
  src:
    description: Path of the nft file on the host.
    type: path
    required: true
  family:
    description: Family of the table.
    type: str
    default: ip
  name:
    description: Name of the table.
    type: str
    default: ocs_natgw
author: ocs-l3
"""

EXAMPLES = r"""
- name: Apply the NAT gateway table
  ocs_nft_table:
    src: /etc/ocs-l3/natgw.nft
"""

RETURN = r"""
operation:
  description: C(none), C(create), C(replace), C(elements) or C(delete).
  returned: always
  type: str
transaction:
  description: The C(nft -f) text sent (or, in check mode, that would be sent).
  returned: always
  type: str
elements_added:
  description: Map elements added (a changed mapping counts as one removed and one added).
  returned: always
  type: int
elements_removed:
  description: Map elements removed.
  returned: always
  type: int
"""

import json
import re
import uuid

from ansible.module_utils.basic import AnsibleModule

CHUNK = 5000  # elements per add/delete statement
_TABLE_RE = re.compile(r"^\s*table\s+(\S+)\s+(\S+)", re.M)
_OTHER_RE = re.compile(r"^\s*(add|create|delete|flush|insert|replace|destroy|define|include)\b", re.M)


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
            keys = ", ".join(_value(k) for k, _ in removed[i:i + CHUNK])
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
                   elements_removed=sum(len(r) for r, _ in changes.values()),
                   elements_added=sum(len(a) for _, a in changes.values()))
    return res


def _list(module, family, name, netns=None):
    """(normalized, text listing) of a table, or (None, "") when it does not exist."""
    pre = ["ip", "netns", "exec", netns] if netns else []
    rc, out, err = module.run_command(pre + ["nft", "-j", "-s", "list", "table", family, name])
    if rc != 0:
        if "No such file or directory" in err or "does not exist" in err:
            return None, ""
        module.fail_json(msg="nft list table %s %s failed: %s" % (family, name, err.strip()))
    rc, listing, err = module.run_command(pre + ["nft", "-s", "list", "table", family, name], check_rc=True)
    return normalize(json.loads(out)), listing


def _scratch(module, text, family, name):
    """Load ``text`` in a throwaway netns; return the table as the kernel lists it there."""
    ns = "ocs-nft-%s" % uuid.uuid4().hex[:10]
    rc, out, err = module.run_command(["ip", "netns", "add", ns])
    if rc != 0:
        module.fail_json(msg="cannot create a scratch network namespace to test the table: %s" % err.strip())
    try:
        rc, out, err = module.run_command(["ip", "netns", "exec", ns, "nft", "-f", "-"], data=text,
                                          binary_data=True)
        if rc != 0:
            module.fail_json(msg="the table does not load (tested in a scratch network namespace; nothing "
                             "changed): %s" % err.strip(), rc=rc, stderr=err)
        return _list(module, family, name, ns)
    finally:
        module.run_command(["ip", "netns", "del", ns])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            family=dict(type="str", default="ip"),
            name=dict(type="str", default="ocs_natgw"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    family, name = p["family"], p["name"]
    try:
        with open(p["src"]) as fh:
            text = fh.read()
        tables = declared_tables(text)
    except (OSError, ValueError) as exc:
        module.fail_json(msg="cannot use %s: %s" % (p["src"], exc))
    if tables and tables != [(family, name)]:
        module.fail_json(msg="%s must declare only table %s %s, found %s"
                         % (p["src"], family, name, ", ".join(" ".join(t) for t in tables)))
    module.get_bin_path("nft", required=True)
    candidate, after = _scratch(module, text, family, name) if tables else (None, "")
    live, before = _list(module, family, name)
    res = plan(family, name, text, candidate, live)
    result = dict(changed=res["operation"] != "none", **res)
    if module._diff:
        result["diff"] = dict(before=before, after=after, before_header="live table %s %s" % (family, name),
                              after_header=p["src"])
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)
    rc, out, err = module.run_command(["nft", "-f", "-"], data=res["transaction"], binary_data=True)
    if rc != 0:
        module.fail_json(msg="nft -f failed; the previous table is still in place: %s" % err.strip(),
                         rc=rc, stderr=err, **result)
    again = plan(family, name, text, candidate, _list(module, family, name)[0])
    if again["operation"] != "none":
        module.fail_json(msg="after the apply the table still differs (another tool changing it?)",
                         remaining=again["transaction"], **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
