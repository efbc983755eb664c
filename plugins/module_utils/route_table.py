# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel's ocs-l3 routes against a desired ip-batch file: read, check and plan.

Host side, standard library only: the ``ocs_route_table`` module, the host
agent (``host_agent``) and the boot restore (``host_restore``) use it, so a
route is judged "in place" the same way everywhere. ``run`` is the caller's
command runner, ``run(argv, data=None) -> (rc, stdout, stderr)`` (see
``netns.module_runner`` and ``host_state.process_runner``).

The file holds the canonical lines ``module_utils/routes.py`` renders::

    address replace 198.19.1.1/24 dev tap1a2b3c4d5e6 noprefixroute
    address replace 203.0.113.11/32 dev lo
    route replace 198.19.1.10/32 dev tap1a2b3c4d5e6 proto 211 scope link
    route replace 198.19.1.10/32 via 198.18.1.21 proto 211
    route replace 198.19.1.10/32 proto 211 nexthop via 198.18.1.21 nexthop via 198.18.1.121
    route replace blackhole 198.19.1.0/24 proto 211
    route replace default via 198.18.1.1 proto 211
"""

from __future__ import annotations

import json
import re
import socket

BATCH_ARGV = ["ip", "-force", "-batch", "-"]
"""One call applies a whole list of lines; -force goes on after a failed line."""

_IP = r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}"
_CIDR = _IP + r"/\d{1,2}"
_IF = r"[^\s/]{1,15}"
_LINE_RES = (
    re.compile(r"address replace (?P<cidr>%s) dev (?P<dev>%s)(?: noprefixroute)?" % (_CIDR, _IF)),
    re.compile(r"route replace (?P<dst>default|%s) dev (?P<dev>%s) proto (?P<proto>\d+) scope link" % (_CIDR, _IF)),
    re.compile(r"route replace (?P<dst>default|%s) via (?P<via>%s) proto (?P<proto>\d+)" % (_CIDR, _IP)),
    re.compile(r"route replace (?P<dst>default|%s) proto (?P<proto>\d+)(?P<hops>(?: nexthop via %s){2,})"
               % (_CIDR, _IP)),
    re.compile(r"route replace blackhole (?P<dst>%s) proto (?P<proto>\d+)" % _CIDR),
)


class KernelError(Exception):
    """Reading the kernel's state failed."""


def _ipkey(addr):
    return socket.inet_aton(addr)


def _valid_ip(text):
    return all(0 <= int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in text.split("."))


def _valid_cidr(text):
    ip, dummy, plen = text.partition("/")
    return _valid_ip(ip) and 0 <= int(plen) <= 32 and (plen == "0" or not plen.startswith("0"))


def line_problem(line, protocol):
    """Why ``line`` is not a line ocs-l3 renders (None when it is one)."""
    for regex in _LINE_RES:
        m = regex.fullmatch(line)
        if not m:
            continue
        groups = m.groupdict()
        for key in ("cidr", "dst"):
            if groups.get(key) not in (None, "default") and not _valid_cidr(groups[key]):
                return "bad prefix %s" % groups[key]
        vias = [groups["via"]] if groups.get("via") else []
        vias += (groups.get("hops") or "").split()[2::3]
        for via in vias:
            if not _valid_ip(via):
                return "bad next hop %s" % via
        if groups.get("proto") is not None and int(groups["proto"]) != protocol:
            return "route protocol %s is not %d" % (groups["proto"], protocol)
        return None
    return "not an address or route line as ocs-l3 renders them"


def parse_lines(text, path, protocol):
    """The lines of a desired route file (comments and blank lines dropped).
    Raises ValueError naming ``path``, the line number and the line when one is malformed."""
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        problem = line_problem(line, protocol)
        if problem:
            raise ValueError("%s:%d: %s: %r" % (path, n, problem, raw[:200]))
        out.append(line)
    return out


def read_lines(path, protocol):
    """parse_lines() of a file; OSError and ValueError name the file."""
    with open(path) as fh:
        return parse_lines(fh.read(), path, protocol)


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


def by_device(lines):
    """{interface: [lines naming ``dev`` it]}, in file order (lines without a device are left out)."""
    out = {}
    for line in lines:
        dev = line_dev(line)
        if dev is not None:
            out.setdefault(dev, []).append(line)
    return out


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


def ip_json(run, args):
    """``ip -j ARGS`` parsed; KernelError when it fails."""
    rc, out, err = run(["ip", "-j"] + list(args))
    if rc != 0:
        raise KernelError("ip -j %s failed: %s" % (" ".join(args), (err or "").strip()))
    try:
        return json.loads(out or "[]")
    except ValueError as exc:
        raise KernelError("ip -j %s printed no JSON: %s" % (" ".join(args), exc))


def kernel_state(run, protocol, links=True):
    """What plan() compares with: (ours, every, addresses, link names or None)."""
    ours = ip_json(run, ["-4", "route", "show", "table", "main", "proto", str(protocol)])
    every = ip_json(run, ["-4", "route", "show", "table", "main"])
    addresses = ip_json(run, ["-4", "addr", "show"])
    names = {link["ifname"] for link in ip_json(run, ["link", "show"])} if links else None
    return ours, every, addresses, names
