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

and, on a dual-stack fabric, their IPv6 forms (addresses ``nodad``: a tenant answering the
duplicate address detection of the router's own addresses cannot disable them; every route
at the kernel's default IPv6 metric, written out so that ``ip -6 -j route`` reads back the
line itself; in static routing mode a hypervisor's IPv6 ``default`` via its ToRs' ``ocs_address6``)::

    address replace fe80::1/64 dev tap1a2b3c4d5e6 nodad
    address replace 2001:db8:0:1::1/64 dev tap1a2b3c4d5e6 nodad noprefixroute
    route replace 2001:db8:0:1::c613:10a/128 dev tap1a2b3c4d5e6 proto 211 metric 1024
    route replace 2001:db8:0:1::c613:10a/128 via 2001:db8:ffff::21 proto 211 metric 1024
    route replace blackhole 2001:db8:0:1::/64 proto 211 metric 1024
    route replace default via 2001:db8:ffff::11 proto 211 metric 1024
    route replace default proto 211 metric 1024 nexthop via 2001:db8:ffff::11 nexthop via 2001:db8:ffff::12

and its owned ranges, comments to ``ip -batch``: the /32 addresses inside them on
that interface are ours (``plan`` with ``prune`` deletes those the file does not list,
as it deletes every other IPv4 address on an instance tap the file names, and every IPv6
address there but the kernel's own link-local ones)::

    #owned 203.0.113.0/24 dev lo

The module and the agent share ``proxy_arp`` (instance taps) and ``tap_ipv6`` (instance taps
with IPv6 lines: router advertisements ignored, IPv6 enabled); the agent and the restore never
prune (they only add: deleting is the converge's ``prune`` step).
"""

from __future__ import annotations

import collections
import ipaddress
import json
import os
import re
import socket

from .constants import GATEWAY6_LINK_LOCAL

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

ROUTE6_METRIC = 1024
"""The kernel's default metric of an IPv6 route, spelled out in every IPv6 route line: ``ip -6 -j route``
reports it, so the line reads back as itself (IPv4 routes go in at metric 0, never spelled out)."""
_IP6 = r"[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}"
_CIDR6 = _IP6 + r"/\d{1,3}"
_LINE6_RES = (
    re.compile(r"address replace (?P<cidr>%s) dev (?P<dev>%s) nodad(?: noprefixroute)?" % (_CIDR6, _IF)),
    re.compile(r"route replace (?P<dst>%s) dev (?P<dev>%s) proto (?P<proto>\d+) metric %d"
               % (_CIDR6, _IF, ROUTE6_METRIC)),
    re.compile(r"route replace (?P<dst>default|%s) via (?P<via>%s) proto (?P<proto>\d+) metric %d"
               % (_CIDR6, _IP6, ROUTE6_METRIC)),
    re.compile(r"route replace (?P<dst>default) proto (?P<proto>\d+) metric %d(?P<hops>(?: nexthop via %s){2,})"
               % (ROUTE6_METRIC, _IP6)),
    re.compile(r"route replace (?P<dst>default|%s) via (?P<via>%s) dev (?P<dev>%s) proto (?P<proto>\d+) metric %d onlink"
               % (_CIDR6, _IP6, _IF, ROUTE6_METRIC)),
    re.compile(r"route replace (?P<dst>default|%s) proto (?P<proto>\d+) metric %d(?P<hops>(?: nexthop via %s dev %s onlink){2,})"
               % (_CIDR6, ROUTE6_METRIC, _IP6, _IF)),
    re.compile(r"route replace blackhole (?P<dst>%s) proto (?P<proto>\d+) metric %d" % (_CIDR6, ROUTE6_METRIC)),
)
"""The IPv6 lines: one address per ``ip`` spelling (RFC 5952, as :func:`canonical6` prints it). Static
routing mode's next hops are ``onlink`` on a named device (a hypervisor's or ToR's ``ocs_address6``, a /128
on the link: in no prefix of it)."""
_VIA_RE = re.compile(r"\bvia (\S+)")

OWNED_MARK = "#owned"
"""Starts a line ``#owned RANGE dev IF``: the /32 addresses inside RANGE on IF are ours."""
_OWNED_RE = re.compile(r"%s (?P<cidr>%s) dev (?P<dev>%s)" % (OWNED_MARK, _CIDR, _IF))

Desired = collections.namedtuple("Desired", "lines owned")
"""A route file: its address and route lines, and its owned ranges [(range, interface)]."""


class KernelError(Exception):
    """Reading the kernel's state failed."""


def _ipkey(addr):
    return socket.inet_pton(socket.AF_INET6 if ":" in addr else socket.AF_INET, addr)


def is_inet6(text):
    """Whether an address, prefix or canonical line's destination is IPv6 (IPv4 text has no colon)."""
    return ":" in text


def canonical6(addr):
    """An IPv6 address as ocs-l3 writes it (RFC 5952, what ``addr.ntoa6`` prints): iproute2 prints
    ``::c613:10a`` as ``::198.19.1.10``, read back it must still equal the line."""
    return str(ipaddress.IPv6Address(addr))


def _valid_ip6(text):
    try:
        return canonical6(text) == text
    except ValueError:
        return False


def _valid_cidr6(text):
    ip, dummy, plen = text.partition("/")
    return _valid_ip6(ip) and 0 <= int(plen) <= 128 and (plen == "0" or not plen.startswith("0"))


def _valid_ip(text):
    return all(0 <= int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in text.split("."))


def _valid_cidr(text):
    ip, dummy, plen = text.partition("/")
    return _valid_ip(ip) and 0 <= int(plen) <= 32 and (plen == "0" or not plen.startswith("0"))


def line_problem(line, protocol):
    """Why ``line`` is not a line ocs-l3 renders (None when it is one)."""
    for regex, valid_cidr, valid_ip in ([(r, _valid_cidr, _valid_ip) for r in _LINE_RES]
                                        + [(r, _valid_cidr6, _valid_ip6) for r in _LINE6_RES]):
        m = regex.fullmatch(line)
        if not m:
            continue
        groups = m.groupdict()
        for key in ("cidr", "dst"):
            if groups.get(key) not in (None, "default") and not valid_cidr(groups[key]):
                return "bad prefix %s" % groups[key]
        vias = [groups["via"]] if groups.get("via") else []
        vias += _VIA_RE.findall(groups.get("hops") or "")
        for via in vias:
            if not valid_ip(via):
                return "bad next hop %s" % via
            if valid_ip is _valid_ip6 and ipaddress.IPv6Address(via).is_link_local:
                return "bad next hop %s (link-local: a line names no device for it)" % via
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


INET6 = "inet6"
"""The ``family`` kernel_state() marks each IPv6 route entry with (``ip -j route`` prints none)."""


def route_inet6(entry):
    """Whether a route entry is IPv6: marked so by kernel_state(), or its destination or gateway says so."""
    return entry.get("family") == INET6 or is_inet6(entry.get("dst", "") + entry.get("gateway", ""))


def _dst(entry):
    dst = entry.get("dst", "")
    if dst != "default" and route_inet6(entry):
        ip, dummy, plen = dst.partition("/")
        return "%s/%s" % (canonical6(ip), plen or "128")
    if dst != "default" and "/" not in dst:
        dst += "/32"
    return dst


def _route_key(entry):
    """A route of ours as plan_routes() keys it: its destination; an IPv6 one at another metric than
    ROUTE6_METRIC (not one ocs-l3 installed: deleted) ``DST metric M``."""
    metric = entry.get("metric", ROUTE6_METRIC)
    if route_inet6(entry) and metric != ROUTE6_METRIC:
        return "%s metric %s" % (_dst(entry), metric)
    return _dst(entry)


def canonical_route(entry, protocol):
    """One route of ``ip -j route show`` as the canonical line ocs-l3 renders (IPv6: with its metric)."""
    dst, inet6 = _dst(entry), route_inet6(entry)
    gw = canonical6 if inet6 else str
    proto = "proto %d" % protocol + (" metric %s" % entry.get("metric", ROUTE6_METRIC) if inet6 else "")
    if entry.get("type") == "blackhole":
        return "route replace blackhole %s %s" % (dst, proto)
    if inet6 and any("onlink" in h.get("flags", ()) for h in [entry] + entry.get("nexthops", [])):
        hops = sorted({(gw(h["gateway"]), h.get("dev")) for h in entry.get("nexthops", []) or [entry]
                       if "gateway" in h}, key=lambda hop: (_ipkey(hop[0]), hop[1] or ""))
        if len(hops) == 1:
            return "route replace %s via %s dev %s %s onlink" % (dst, hops[0][0], hops[0][1], proto)
        return "route replace %s %s %s" % (dst, proto, " ".join("nexthop via %s dev %s onlink" % hop for hop in hops))
    hops = [gw(h["gateway"]) for h in entry.get("nexthops", []) if "gateway" in h]
    if hops:
        hops = sorted(set(hops), key=_ipkey)
        if len(hops) == 1:
            return "route replace %s via %s %s" % (dst, hops[0], proto)
        return "route replace %s %s %s" % (dst, proto, " ".join("nexthop via %s" % h for h in hops))
    if entry.get("gateway"):
        return "route replace %s via %s %s" % (dst, gw(entry["gateway"]), proto)
    line = "route replace %s dev %s %s" % (dst, entry.get("dev"), proto)
    if entry.get("scope") == "link" and not inet6:
        line += " scope link"
    return line


def line_dst(line):
    """Destination of a canonical route line (``default`` or a.b.c.d/len)."""
    parts = line.split()
    return parts[3] if parts[2] == "blackhole" else parts[2]


def line_dev(line):
    parts = line.split()
    return parts[parts.index("dev") + 1] if "dev" in parts else None


def line_devs(line):
    """Every device a line names (a multipath route's next hops can name several)."""
    parts = line.split()
    return [parts[i + 1] for i, word in enumerate(parts[:-1]) if word == "dev"]


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
    """Interfaces every IPv4 address of which is ours (and every IPv6 one but the kernel's link-local
    addresses): those of the file's ``noprefixroute`` address lines (instance taps: the gateway
    address), sorted."""
    return sorted({line_dev(line) for line in lines if line.startswith("address ") and line.endswith(" noprefixroute")})


def ipv6_taps(lines):
    """Instance taps with IPv6 lines (the devices of the file's IPv6 ``noprefixroute`` address
    lines: the instance has an ``ip6``), sorted: tap_ipv6() makes them ready."""
    return sorted({line_dev(line) for line in lines if line.startswith("address ") and
                   line.endswith(" noprefixroute") and is_inet6(line.split()[2])})


def has_inet6(lines):
    """Whether any line is IPv6 (kernel_state() need not read the IPv6 side for a file without one
    unless it prunes)."""
    return any(is_inet6(line_dst(line)) for line in lines)


def _inside(addr, cidr):
    net, dummy, plen = cidr.partition("/")
    shift = (128 if is_inet6(addr) else 32) - int(plen)
    return int.from_bytes(_ipkey(addr), "big") >> shift == int.from_bytes(_ipkey(net), "big") >> shift


def _same_subnet(a, b):
    """Whether IPv4 addresses (interface, a.b.c.d/len) share interface, prefix length and subnet
    (the kernel's primary and secondaries; IPv6 has neither)."""
    if is_inet6(a[1]) or is_inet6(b[1]):
        return False
    return a[0] == b[0] and a[1].partition("/")[2] == b[1].partition("/")[2] and _inside(a[1].partition("/")[0], b[1])


def is_owned(dev, cidr, taps, owned):
    """Whether the address ``cidr`` on ``dev`` is ours: an IPv4 address on an instance tap of the file
    (``taps``), an IPv6 one there but a link-local one other than the router's (GATEWAY6_LINK_LOCAL:
    the kernel's own stay), or an IPv4 /32 inside an owned range of its interface (``owned``:
    [(range, interface)])."""
    ip, dummy, plen = cidr.partition("/")
    if is_inet6(ip):
        return dev in taps and (ip == GATEWAY6_LINK_LOCAL or not ipaddress.IPv6Address(ip).is_link_local)
    if dev in taps:
        return True
    return plen == "32" and any(odev == dev and _inside(ip, rng) for rng, odev in owned)


def _address_line(link, a):
    """(cidr, canonical line) of one ``addr_info`` entry, or None for another family."""
    if a.get("family") == "inet":
        cidr = "%s/%s" % (a["local"], a["prefixlen"])
        flags = " noprefixroute" if a.get("noprefixroute") else ""
    elif a.get("family") == INET6:
        cidr = "%s/%s" % (canonical6(a["local"]), a["prefixlen"])
        flags = (" nodad" if a.get("nodad") else "") + (" noprefixroute" if a.get("noprefixroute") else "")
    else:
        return None
    return cidr, "address replace %s dev %s%s" % (cidr, link["ifname"], flags)


def kernel_addresses(addresses):
    """{interface: {address/len: canonical address line}} of ``ip -j -4 addr show`` and
    ``ip -j -6 addr show`` entries."""
    out = {}
    for link in addresses:
        for a in link.get("addr_info", []):
            found = _address_line(link, a)
            if found is not None:
                out.setdefault(link["ifname"], {})[found[0]] = found[1]
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


def _delete(key, protocol, inet6):
    """The command deleting our route keyed ``key`` (an IPv6 default as ``::/0``: ``default`` is IPv4's)."""
    if inet6 and key.split()[0] == "default":
        key = "::/0" + key[len("default"):]
    return "route del %s proto %d" % (key, protocol)


def plan_routes(desired, ours, every, links, protocol, prune=True, inet6=False):
    """The route half of plan(), for one family (``inet6``): (commands, missing, conflicts, before, after)."""
    current = {_route_key(entry): canonical_route(entry, protocol) for entry in ours}
    slot = ROUTE6_METRIC if inet6 else 0
    # Only a route at our metric (IPv4 0, IPv6 ROUTE6_METRIC) takes the kernel slot ours would replace.
    foreign = {_dst(e): e.get("protocol", "?") for e in every
               if _dst(e) not in current and e.get("metric", slot) == slot}
    commands, missing, conflicts, want_dsts = [], set(), [], set()
    for line in desired:
        dst = line_dst(line)
        want_dsts.add(dst)
        if current.get(dst) == line:
            continue
        if dst not in current and dst in foreign:
            conflicts.append("%s is held by a route of protocol %s" % (dst, foreign[dst]))
            continue
        absent = {d for d in line_devs(line) if d not in links}
        if absent:
            missing |= absent
            continue
        commands.append(line)
    stale = sorted(set(current) - want_dsts) if prune else []
    commands += [_delete(dst, protocol, inet6) for dst in stale]
    after = {dst: line for dst, line in current.items() if dst not in stale}
    after.update((line_dst(line), line) for line in commands if line.startswith("route replace"))
    return commands, missing, conflicts, sorted(current.values()), sorted(after.values())


def plan(desired, ours, every, addresses, links, protocol, prune=True, owned=()):
    """Pure planning step.

    desired: canonical lines; ours: ``ip -j route show proto P`` entries (both families, IPv6
    ones marked ``family: inet6`` by kernel_state()); every: all main-table entries; addresses:
    ``ip -j addr show`` entries; links: set of existing interface names; prune: delete what is
    ours and not desired (routes of protocol P; addresses: every other IPv4 address on an
    instance tap the file names and every IPv6 one there but the kernel's link-local ones (is_owned),
    each /32 inside an ``owned`` range [(range, interface)] of the file). Each family's routes are
    planned apart (an IPv6 ``default`` is not IPv4's).
    Returns (commands, missing_interfaces, conflicts, before, after): address deletions,
    address additions, route additions, route deletions; before/after: the kernel's routes
    of protocol P and our addresses, as canonical lines, now and once applied.
    """
    addr_lines = [line for line in desired if line.startswith("address ")]
    a_cmds, a_missing, a_before, a_after = plan_addresses(addr_lines, kernel_addresses(addresses), links, owned,
                                                          prune)
    commands, missing, conflicts, r_before, r_after = a_cmds, set(a_missing), [], [], []
    for inet6 in (False, True):
        # an IPv6 default names no IPv6 destination: its next hops say the family (no IPv4 line has a colon)
        lines = [line for line in desired if not line.startswith("address ") and is_inet6(line) == inet6]
        r_cmds, r_missing, r_conflicts, before, after = plan_routes(
            lines, [e for e in ours if route_inet6(e) == inet6], [e for e in every if route_inet6(e) == inet6],
            links, protocol, prune, inet6)
        commands, missing, conflicts = commands + r_cmds, missing | r_missing, conflicts + r_conflicts
        r_before, r_after = r_before + before, r_after + after
    before = "".join(line + "\n" for line in r_before + a_before)
    after = "".join(line + "\n" for line in r_after + a_after)
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


def _ip_json6(run, args):
    """``ip -j -6 ARGS`` parsed, each entry marked ``family: inet6``; [] where the kernel has no IPv6
    (booted with ``ipv6.disable=1``: nothing of ours can be there)."""
    try:
        entries = ip_json(run, ["-6"] + list(args))
    except KernelError as exc:
        if "not supported" in str(exc):
            return []
        raise
    for entry in entries:
        entry.setdefault("family", INET6)
    return entries


def kernel_state(run, protocol, links=True, inet6=True):
    """What plan() compares with: (ours, every, addresses, link names or None). IPv4 and, with
    ``inet6``, IPv6 (routes marked ``family: inet6``); the caller that only adds and has no IPv6
    line need not read it (has_inet6)."""
    ours = ip_json(run, ["-4", "route", "show", "table", "main", "proto", str(protocol)])
    every = ip_json(run, ["-4", "route", "show", "table", "main"])
    addresses = ip_json(run, ["-4", "addr", "show"])
    if inet6:
        ours += _ip_json6(run, ["route", "show", "table", "main", "proto", str(protocol)])
        every += _ip_json6(run, ["route", "show", "table", "main"])
        addresses += _ip_json6(run, ["addr", "show"])
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


# --- IPv6 on instance taps (the module and the host agent) -------------------

IPV6_KEY = "net/ipv6/conf/%s/%s"
IPV6_TAP_SYSCTLS = (("accept_ra", "0"), ("autoconf", "0"), ("disable_ipv6", "0"))
"""In this order: a tenant's router advertisement never configures the hypervisor (no default route,
prefix or address from an instance), then IPv6 on (an address cannot be added while it is off)."""


def sysctl_name(key):
    """``net/ipv6/conf/tap1/accept_ra`` as ``net.ipv6.conf.tap1.accept_ra``."""
    return key.replace("/", ".")


def tap_ipv6(sysctl, tap, check=False):
    """Make an instance tap with IPv6 lines deaf to router advertisements (``accept_ra=0``,
    ``autoconf=0``) and IPv6-enabled (``disable_ipv6=0``: the file lists IPv6 lines for a tap only
    when the fabric is dual-stack and the instance has an ``ip6``, so a tap made while
    ``conf.default.disable_ipv6`` was 1 gets IPv6 back). Returns (changed, problem): changed
    [(key, old value)] set now (in check mode: would be); problem a message when one cannot be
    read or set (a read-only /proc/sys; no IPv6 in the kernel), the rest left. ``sysctl``: ProcSys."""
    changed = []
    for name, value in IPV6_TAP_SYSCTLS:
        key = IPV6_KEY % (tap, name)
        try:
            old = sysctl.read(key)
            if old != value:
                if not check:
                    sysctl.write(key, value)
                changed.append((key, old))
        except OSError as exc:
            return changed, "%s is not %s and cannot be set (%s)" % (sysctl_name(key), value, exc.strerror or exc)
    return changed, None


def tap_ipv6_text(tap, changed):
    """How the agent and the restore log tap_ipv6()'s ``changed``: ``tap: net.ipv6.conf.tap.accept_ra=0, ...``."""
    values = dict(IPV6_TAP_SYSCTLS)
    settings = ("%s=%s" % (sysctl_name(key), values[key.rsplit("/", 1)[1]]) for key, dummy in changed)
    return "%s: %s" % (tap, ", ".join(settings))


# --- the module's whole step ------------------------------------------------

def _ipv6_sysctls(result, sysctl, taps, check):
    """tap_ipv6() of ``taps`` into the reconcile() result: ``ipv6_sysctls``, diff lines, warnings."""
    for tap in taps:
        changed, problem = tap_ipv6(sysctl, tap, check)
        for key, old in changed:
            value = dict(IPV6_TAP_SYSCTLS)[key.rsplit("/", 1)[1]]
            result["ipv6_sysctls"].append("%s=%s" % (sysctl_name(key), value))
            result["before"] += "%s = %s\n" % (sysctl_name(key), old)
            result["after"] += "%s = %s\n" % (sysctl_name(key), value)
        if problem:
            result["warnings"].append(problem)


def _proxy_arp(result, sysctl, taps, check):
    """proxy_arp() of ``taps`` into the reconcile() result: ``proxy_arp``, diff lines, warnings."""
    for tap in taps:
        changed, problem = proxy_arp(sysctl, tap, check)
        if changed:
            result["proxy_arp"].append(tap)
            result["before"] += "%s = 0\n" % sysctl_name(PROXY_ARP_KEY % tap)
            result["after"] += "%s = 1\n" % sysctl_name(PROXY_ARP_KEY % tap)
        if problem:
            result["warnings"].append(problem)


def reconcile(run, desired, protocol, prune=True, check=False, sysctl=None):
    """What ``ocs_route_table`` does, given ``desired`` (a Desired): plan against the kernel (both
    families), make every existing instance tap with IPv6 lines ready (tap_ipv6: before the batch, its
    IPv6 addresses need IPv6 on), apply the commands in one ``ip -force -batch`` (not in check mode),
    set proxy ARP on every instance tap the file names that exists. Returns dict(changed, commands,
    missing_interfaces, conflicts, proxy_arp: [taps set], ipv6_sysctls: [``name=value`` set],
    prune_pending: without ``prune``, how many deletions a pruning run would add (0 with it),
    warnings, before, after, error: None or why the batch failed).
    KernelError when the kernel's state cannot be read."""
    ours, every, addresses, links = kernel_state(run, protocol)
    commands, missing, conflicts, before, after = plan(desired.lines, ours, every, addresses, links, protocol,
                                                       prune, desired.owned)
    pending = 0
    if not prune:
        planned = set(commands)
        pending = sum(1 for c in plan(desired.lines, ours, every, addresses, links, protocol, True,
                                      desired.owned)[0] if c not in planned)
    result = dict(commands=commands, missing_interfaces=missing, conflicts=conflicts, proxy_arp=[],
                  ipv6_sysctls=[], warnings=[], before=before, after=after, error=None, prune_pending=pending)
    if missing:
        result["warnings"].append("interfaces not present, their lines skipped: %s" % ", ".join(missing))
    result["warnings"].extend(conflicts)
    sysctl = sysctl or ProcSys()
    _ipv6_sysctls(result, sysctl, [tap for tap in ipv6_taps(desired.lines) if tap in links], check)
    if commands and not check:
        rc, dummy, err = run(BATCH_ARGV, "\n".join(commands) + "\n")
        if rc != 0:
            result["error"] = "ip -batch failed: %s" % (err or "").strip()
    _proxy_arp(result, sysctl, [tap for tap in owned_taps(desired.lines) if tap in links], check)
    result["changed"] = bool(commands or result["proxy_arp"] or result["ipv6_sysctls"])
    return result
