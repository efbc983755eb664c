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

and its owned ranges, comments to ``ip -batch``: the /32 addresses inside them on
that interface are ours (``plan`` with ``prune`` deletes those the file does not list,
as it deletes every other IPv4 address on an instance tap the file names)::

    #owned 203.0.113.0/24 dev lo

The module and the agent share ``proxy_arp`` (instance taps); the agent and the
restore never prune (they only add: deleting is the converge's ``prune`` step).
"""

from __future__ import annotations

import collections
import json
import os
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


OWNED_MARK = "#owned"
"""Starts a line ``#owned RANGE dev IF``: the /32 addresses inside RANGE on IF are ours."""
_OWNED_RE = re.compile(r"%s (?P<cidr>%s) dev (?P<dev>%s)" % (OWNED_MARK, _CIDR, _IF))

Desired = collections.namedtuple("Desired", "lines owned")
"""A route file: its address and route lines, and its owned ranges [(range, interface)]."""


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


def owned_line(cidr, dev):
    """The file's line saying that /32 addresses inside ``cidr`` on ``dev`` are ours (a comment to
    ``ip -batch``): plan() deletes those the file does not list."""
    return "%s %s dev %s" % (OWNED_MARK, cidr, dev)


def _owned(line):
    m = _OWNED_RE.fullmatch(line)
    if not m or not _valid_cidr(m.group("cidr")):
        return None
    return m.group("cidr"), m.group("dev")


def parse_file(text, path, protocol):
    """The desired state of a route file: Desired(lines, owned): its address and route lines
    (comments and blank lines dropped) and its owned ranges [(range, interface)].
    Raises ValueError naming ``path``, the line number and the line when one is malformed."""
    lines, owned = [], []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line.startswith(OWNED_MARK):
            problem = None if _owned(line) else "not an owned-range line as ocs-l3 renders them"
            owned += [_owned(line)] if problem is None else []
        elif not line or line.startswith("#"):
            continue
        else:
            problem = line_problem(line, protocol)
            lines.append(line)
        if problem:
            raise ValueError("%s:%d: %s: %r" % (path, n, problem, raw[:200]))
    return Desired(lines, owned)


def parse_lines(text, path, protocol):
    """The address and route lines of a desired route file (see parse_file)."""
    return parse_file(text, path, protocol).lines


def read_file(path, protocol):
    """parse_file() of a file; OSError and ValueError name the file."""
    with open(path) as fh:
        return parse_file(fh.read(), path, protocol)


def read_lines(path, protocol):
    """parse_lines() of a file; OSError and ValueError name the file."""
    return read_file(path, protocol).lines


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


def address_of(line):
    """(interface, a.b.c.d/len) of a canonical address line."""
    parts = line.split()
    return parts[4], parts[2]


def owned_taps(lines):
    """Interfaces every IPv4 address of which is ours: those of the file's ``noprefixroute``
    address lines (instance taps: the gateway address), sorted."""
    return sorted({line_dev(line) for line in lines if line.startswith("address ") and line.endswith(" noprefixroute")})


def _inside(addr, cidr):
    net, dummy, plen = cidr.partition("/")
    shift = 32 - int(plen)
    return int.from_bytes(_ipkey(addr), "big") >> shift == int.from_bytes(_ipkey(net), "big") >> shift


def _same_subnet(a, b):
    """Whether addresses (interface, a.b.c.d/len) share interface, prefix length and subnet
    (the kernel's primary and secondaries)."""
    return a[0] == b[0] and a[1].partition("/")[2] == b[1].partition("/")[2] and _inside(a[1].partition("/")[0], b[1])


def is_owned(dev, cidr, taps, owned):
    """Whether the address ``cidr`` on ``dev`` is ours: any address on an instance tap of the file
    (``taps``), or a /32 inside an owned range of its interface (``owned``: [(range, interface)])."""
    if dev in taps:
        return True
    ip, dummy, plen = cidr.partition("/")
    return plen == "32" and any(odev == dev and _inside(ip, rng) for rng, odev in owned)


def kernel_addresses(addresses):
    """{interface: {a.b.c.d/len: canonical address line}} of ``ip -j -4 addr show`` entries."""
    out = {}
    for link in addresses:
        for a in link.get("addr_info", []):
            if a.get("family") == "inet":
                cidr = "%s/%s" % (a["local"], a["prefixlen"])
                flags = " noprefixroute" if a.get("noprefixroute") else ""
                out.setdefault(link["ifname"], {})[cidr] = "address replace %s dev %s%s" % (cidr, link["ifname"], flags)
    return out


def plan_addresses(desired, have, links, owned=(), prune=True):
    """The address half of plan(): (commands, missing, before, after).

    desired: the address lines of the file; have: kernel_addresses(); owned: [(range, interface)].
    With ``prune`` the addresses that are ours (is_owned) and not desired are deleted first; a
    desired address in the subnet of a deleted one is put back after the deletions even when
    present (deleting a primary address takes the secondaries of its subnet with it unless
    promote_secondaries is set)."""
    want = {address_of(line): line for line in desired}
    taps = set(owned_taps(desired))
    ours = {(dev, cidr): line for dev, cidrs in have.items() for cidr, line in cidrs.items()
            if (dev, cidr) in want or is_owned(dev, cidr, taps, owned)}
    stale = sorted(key for key in ours if key not in want) if prune else []
    commands = ["address del %s dev %s" % (cidr, dev) for dev, cidr in stale]
    missing, after = set(), dict(ours)
    for key in stale:
        del after[key]
    for key, line in want.items():
        if ours.get(key) == line and not any(_same_subnet(key, gone) for gone in stale):
            continue
        if key[0] not in links:
            missing.add(key[0])
            continue
        commands.append(line)
        after[key] = line
    return commands, missing, sorted(ours.values()), sorted(after.values())


def plan_routes(desired, ours, every, links, protocol, prune=True):
    """The route half of plan(): (commands, missing, conflicts, before, after)."""
    current = {_dst(entry): canonical_route(entry, protocol) for entry in ours}
    # Only a route at our metric (0) takes the kernel slot ours would replace.
    foreign = {_dst(e): e.get("protocol", "?") for e in every if _dst(e) not in current and not e.get("metric")}
    commands, missing, conflicts, want_dsts = [], set(), [], set()
    for line in desired:
        dst, dev = line_dst(line), line_dev(line)
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
    commands += ["route del %s proto %d" % (dst, protocol) for dst in stale]
    after = {dst: line for dst, line in current.items() if dst not in stale}
    after.update((line_dst(line), line) for line in commands if line.startswith("route replace"))
    return commands, missing, conflicts, sorted(current.values()), sorted(after.values())


def plan(desired, ours, every, addresses, links, protocol, prune=True, owned=()):
    """Pure planning step.

    desired: canonical lines; ours: ``ip -j route show proto P`` entries;
    every: all main-table entries; addresses: ``ip -j addr show`` entries;
    links: set of existing interface names; prune: delete what is ours and not desired
    (routes of protocol P; addresses: every other IPv4 address on an instance tap the file
    names, each /32 inside an ``owned`` range [(range, interface)] of the file).
    Returns (commands, missing_interfaces, conflicts, before, after): address deletions,
    address additions, route additions, route deletions; before/after: the kernel's routes
    of protocol P and our addresses, as canonical lines, now and once applied.
    """
    addr_lines = [line for line in desired if line.startswith("address ")]
    route_lines = [line for line in desired if not line.startswith("address ")]
    a_cmds, a_missing, a_before, a_after = plan_addresses(addr_lines, kernel_addresses(addresses), links, owned,
                                                          prune)
    r_cmds, r_missing, conflicts, r_before, r_after = plan_routes(route_lines, ours, every, links, protocol, prune)
    before = "".join(line + "\n" for line in r_before + a_before)
    after = "".join(line + "\n" for line in r_after + a_after)
    return a_cmds + r_cmds, sorted(a_missing | r_missing), conflicts, before, after


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


# --- proxy ARP on instance taps (the module and the host agent) ------------

PROXY_ARP_KEY = "net/ipv4/conf/%s/proxy_arp"


class ProcSys:
    """sysctl values through /proc/sys (``key``: ``net/ipv4/conf/tap1/proxy_arp``)."""

    def __init__(self, root="/proc/sys"):
        self.root = root

    def read(self, key):
        with open(os.path.join(self.root, key)) as fh:
            return fh.read().strip()

    def write(self, key, value):
        with open(os.path.join(self.root, key), "w") as fh:
            fh.write(value)


def proxy_arp(sysctl, tap, check=False):
    """Make proxy ARP answer on ``tap`` (the instance's ARP for any other address of its subnet
    gets the tap's MAC: everything is routed). Returns (changed, problem): changed when it was set
    now (in check mode: would be); problem a message when it is off and cannot be set (a read-only
    /proc/sys and ``conf/all`` off: ``conf/all`` ORs into every interface). ``sysctl``: ProcSys."""
    key = PROXY_ARP_KEY % tap
    try:
        if sysctl.read(key) == "1":
            return False, None
        if not check:
            sysctl.write(key, "1")
        return True, None
    except OSError as exc:
        try:
            every = sysctl.read(PROXY_ARP_KEY % "all")
        except OSError:
            every = None
        if every == "1":
            return False, None
        return False, ("proxy_arp of %s is off and cannot be set (%s): set net.ipv4.conf.default.proxy_arp=1 "
                       "where /proc/sys is writable" % (tap, exc.strerror or exc))


# --- the module's whole step ------------------------------------------------

def reconcile(run, desired, protocol, prune=True, check=False, sysctl=None):
    """What ``ocs_route_table`` does, given ``desired`` (a Desired): plan against the kernel, apply
    the commands in one ``ip -force -batch`` (not in check mode), set proxy ARP on every instance tap
    the file names that exists. Returns dict(changed, commands, missing_interfaces, conflicts,
    proxy_arp: [taps set], warnings, before, after, error: None or why the batch failed).
    KernelError when the kernel's state cannot be read."""
    ours, every, addresses, links = kernel_state(run, protocol)
    commands, missing, conflicts, before, after = plan(desired.lines, ours, every, addresses, links, protocol,
                                                       prune, desired.owned)
    result = dict(commands=commands, missing_interfaces=missing, conflicts=conflicts, proxy_arp=[],
                  warnings=[], before=before, after=after, error=None)
    if missing:
        result["warnings"].append("interfaces not present, their lines skipped: %s" % ", ".join(missing))
    result["warnings"].extend(conflicts)
    if commands and not check:
        rc, dummy, err = run(BATCH_ARGV, "\n".join(commands) + "\n")
        if rc != 0:
            result["error"] = "ip -batch failed: %s" % (err or "").strip()
    sysctl = sysctl or ProcSys()
    for tap in owned_taps(desired.lines):
        if tap not in links:
            continue
        changed, problem = proxy_arp(sysctl, tap, check)
        if changed:
            result["proxy_arp"].append(tap)
            result["before"] += "%s = 0\n" % (PROXY_ARP_KEY % tap).replace("/", ".")
            result["after"] += "%s = 1\n" % (PROXY_ARP_KEY % tap).replace("/", ".")
        if problem:
            result["warnings"].append(problem)
    result["changed"] = bool(commands or result["proxy_arp"])
    return result
