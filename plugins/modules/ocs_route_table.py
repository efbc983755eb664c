#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reconcile the kernel's routes of one protocol with a desired ip-batch file."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: ocs_route_table
version_added: 0.4.0
short_description: Make the kernel's ocs-l3 routes equal a desired ip-batch file
description:
  - Reads the desired routes (canonical C(ip -batch) lines rendered by ocs-l3) from O(src).
  - Reads the kernel's IPv4 routes of protocol O(protocol) from the main table, and the addresses
    on the interfaces the file names.
  - >-
    Adds or replaces what differs and (with O(prune)) deletes routes of O(protocol) that the file
    no longer lists, in one C(ip -force -batch) call. Routes of any other protocol are never
    touched. A desired route goes in at metric 0: a route of another protocol for the same prefix
    at another metric (zebra's BGP routes: 20) stays beside it and loses to it; one at metric 0
    (the same kernel slot) is reported and skipped.
  - Lines for interfaces that do not exist (an instance not started yet) are reported, not applied,
    and do not fail the task.
  - Addresses are added, never removed (an instance's tap disappears with the instance).
  - Supports check mode and diff mode.
options:
  src:
    description: Path of the desired ip-batch file on the host.
    type: path
    required: true
  protocol:
    description: Route protocol number that marks routes as ours.
    type: int
    default: 211
  prune:
    description:
      - >-
        Delete our routes that the file no longer lists. False adds and replaces only
        (make before break: C(playbooks/site.yml) prunes after FRR, so a prefix moving from a
        static route to BGP, or back, is never without a route).
    type: bool
    default: true
author: ocs-l3 contributors (@ocs-l3)
"""

EXAMPLES = r"""
- name: Reconcile instance and rack routes
  ocs_route_table:
    src: /etc/ocs-l3/routes.batch
"""

RETURN = r"""
commands:
  description: ip-batch commands applied (or that would be, in check mode).
  type: list
  returned: always
missing_interfaces:
  description: Interfaces named by the file that do not exist; their lines were skipped.
  type: list
  returned: always
conflicts:
  description: Desired prefixes held by a route of another protocol; skipped.
  type: list
  returned: always
"""

import json
import socket

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ocs.l3.plugins.module_utils.constants import ROUTE_PROTOCOL


def _ipkey(addr):
    return socket.inet_aton(addr)


def _dst(entry):
    dst = entry.get("dst", "")
    if dst != "default" and "/" not in dst:
        dst += "/32"
    return dst


def canonical_route(entry, protocol):
    """One route of ``ip -j route show`` as the canonical line ocs-l3 renders."""
    dst = _dst(entry)
    if entry.get("type") == "blackhole":
        return "route replace blackhole %s proto %d" % (dst, protocol)
    hops = [h["gateway"] for h in entry.get("nexthops", []) if "gateway" in h]
    if hops:
        hops = sorted(set(hops), key=_ipkey)
        if len(hops) == 1:
            return "route replace %s via %s proto %d" % (dst, hops[0], protocol)
        return "route replace %s proto %d %s" % (dst, protocol, " ".join("nexthop via %s" % h for h in hops))
    if entry.get("gateway"):
        return "route replace %s via %s proto %d" % (dst, entry["gateway"], protocol)
    line = "route replace %s dev %s proto %d" % (dst, entry.get("dev"), protocol)
    if entry.get("scope") == "link":
        line += " scope link"
    return line


def line_dst(line):
    """Destination of a canonical route line (``default`` or a.b.c.d/len)."""
    parts = line.split()
    return parts[3] if parts[2] == "blackhole" else parts[2]


def line_dev(line):
    parts = line.split()
    return parts[parts.index("dev") + 1] if "dev" in parts else None


def plan(desired, ours, every, addresses, links, protocol, prune=True):
    """Pure planning step.

    desired: canonical lines; ours: ``ip -j route show proto P`` entries;
    every: all main-table entries; addresses: ``ip -j addr show`` entries;
    links: set of existing interface names; prune: delete ours that are not desired.
    Returns (commands, missing_interfaces, conflicts, before, after).
    """
    current = {}
    for entry in ours:
        current[_dst(entry)] = canonical_route(entry, protocol)
    foreign = {}
    for entry in every:
        dst = _dst(entry)
        # Only a route at our metric (0) takes the kernel slot ours would replace.
        if dst not in current and not entry.get("metric"):
            foreign[dst] = entry.get("protocol", "?")
    have_addr = set()
    for link in addresses:
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                flags = " noprefixroute" if a.get("noprefixroute") else ""
                have_addr.add("address replace %s/%s dev %s%s" % (a["local"], a["prefixlen"], link["ifname"], flags))
    commands, missing, conflicts = [], set(), []
    want_dsts = set()
    for line in desired:
        dev = line_dev(line)
        if line.startswith("address "):
            if line in have_addr:
                continue
            if dev not in links:
                missing.add(dev)
                continue
            commands.append(line)
            continue
        dst = line_dst(line)
        want_dsts.add(dst)
        if current.get(dst) == line:
            continue
        if dst not in current and dst in foreign:
            conflicts.append("%s is held by a route of protocol %s" % (dst, foreign[dst]))
            continue
        if dev is not None and dev not in links:
            missing.add(dev)
            continue
        commands.append(line)
    stale = sorted(set(current) - want_dsts) if prune else []
    for dst in stale:
        commands.append("route del %s proto %d" % (dst, protocol))
    before = "\n".join(sorted(current.values())) + "\n"
    after_map = dict(current)
    for dst in stale:
        del after_map[dst]
    for line in commands:
        if line.startswith("route replace"):
            after_map[line_dst(line)] = line
    after = "\n".join(sorted(after_map.values())) + "\n"
    return commands, sorted(missing), conflicts, before, after


def _ipjson(module, args):
    rc, out, err = module.run_command(["ip", "-j"] + args, check_rc=True)
    return json.loads(out or "[]")


def main():
    module = AnsibleModule(
        argument_spec=dict(src=dict(type="path", required=True), protocol=dict(type="int", default=ROUTE_PROTOCOL),
                           prune=dict(type="bool", default=True)),
        supports_check_mode=True,
    )
    src, protocol = module.params["src"], module.params["protocol"]
    try:
        with open(src) as fh:
            desired = [ln.strip() for ln in fh if ln.strip() and not ln.lstrip().startswith("#")]
    except OSError as exc:
        module.fail_json(msg="cannot read %s: %s" % (src, exc))
    ours = _ipjson(module, ["-4", "route", "show", "table", "main", "proto", str(protocol)])
    every = _ipjson(module, ["-4", "route", "show", "table", "main"])
    addresses = _ipjson(module, ["-4", "addr", "show"])
    links = {link["ifname"] for link in _ipjson(module, ["link", "show"])}
    commands, missing, conflicts, before, after = plan(desired, ours, every, addresses, links, protocol,
                                                       module.params["prune"])
    result = dict(changed=bool(commands), commands=commands, missing_interfaces=missing, conflicts=conflicts)
    if module._diff:
        result["diff"] = dict(before=before, after=after, before_header="kernel routes (proto %d)" % protocol,
                              after_header=src)
    warnings = []
    if missing:
        warnings.append("interfaces not present, their lines skipped: %s" % ", ".join(missing))
    warnings.extend(conflicts)
    for w in warnings:
        module.warn(w)
    if module.check_mode or not commands:
        module.exit_json(**result)
    rc, out, err = module.run_command(["ip", "-force", "-batch", "-"], data="\n".join(commands) + "\n",
                                      binary_data=True)
    if rc != 0:
        module.fail_json(msg="ip -batch failed: %s" % err.strip(), rc=rc, stderr=err, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
