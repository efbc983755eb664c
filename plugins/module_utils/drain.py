# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Drain and undrain a fabric host: what is allowed, what it changes, when it is done.

A drained host keeps every session and every route, and announces everything
with the GRACEFUL_SHUTDOWN community (RFC 8326): FRR's router-wide
``bgp graceful-shutdown``. Every import route-map of ours honours the
community (frr.py: ``OCS-GSHUT``, local preference 0), so a neighbour that has
another path for a prefix moves to it and keeps the drained host's path only
as a fallback; flows never see a withdrawal.

The drain state is a flag on the host, ``constants.DRAIN_PATH``: the
``ocs_frr`` role installs frr.conf with :func:`drained_text` while it exists,
so reconciles, timers and pulls keep the host drained, and so does a reboot
(FRR starts from that file). ``playbooks/drain.yml`` sets and clears it.

:func:`plan` decides, before any host is touched, what a drain or undrain of
some hosts does, and refuses what would cut a rack or the edge off;
:func:`pending` tells, from a neighbour's ``show bgp ipv4 unicast json``,
whether its best paths have moved (or, after an undrain, come back).
"""

from __future__ import annotations

import re

from .errors import FabricError

STATES = ("drained", "undrained")
GSHUT_LINE = " bgp graceful-shutdown"
_ROUTER_BGP_RE = re.compile(r"^router bgp [0-9]+$")


def drained_text(text):
    """frr.conf ``text`` with ``bgp graceful-shutdown`` in its ``router bgp``
    block (right after the ``router bgp`` line), once; unchanged without one."""
    lines = undrained_text(text).split("\n")
    out = []
    for line in lines:
        out.append(line)
        if _ROUTER_BGP_RE.match(line):
            out.append(GSHUT_LINE)
    return "\n".join(out)


def undrained_text(text):
    """frr.conf ``text`` without ``bgp graceful-shutdown``."""
    return "\n".join(ln for ln in text.split("\n") if ln != GSHUT_LINE)


def _peers_of(fab, host):
    """{neighbour host name: [session keys by which it knows ``host``]}."""
    from .frr import policy  # controller only (the model)
    names = {n.host for n in policy(fab, host).neighbors if n.host in fab.hosts}
    return {name: sorted({m.key for m in policy(fab, fab.hosts[name]).neighbors if m.host == host.name})
            for name in names}


def _alternatives(fab, host):
    """(what host is a path of, the other hosts that are): the rack's other
    ToRs, the other spines, the other NAT gateways (gateway mode)."""
    if host.role == "tor":
        return "rack %s" % host.rack.id, [t for t in host.rack.tors if t.name != host.name]
    if host.role == "spine":
        return "the spines", [s for s in fab.by_role["spine"] if s.name != host.name]
    if host.role == "nat_gateway" and fab.nat_mode == "gateway":
        return "the edge (nat_mode gateway)", [g for g in fab.by_role["nat_gateway"] if g.name != host.name]
    return None, []


def plan(fab, targets, drained, state, force=False, down=()):
    """What ``state`` ("drained"/"undrained") means for each of ``targets``.

    ``drained``: {host name: bool} as the hosts' flags say now (hosts not in it
    count as undrained); ``down``: hosts that are no live path now (unreachable,
    or no Established session), which count as drained alternatives. Returns [{"host", "action": "drain"|"undrain"|"none",
    "reason", "neighbors": {neighbour: [session keys]}}]. Raises FabricError
    naming the host for an unknown host, a ToR or hypervisor in static routing
    mode (their routes to each other are static), a hypervisor that
    still has instances, and a drain that leaves a rack or the edge without
    an undrained path (the last two unless ``force``)."""
    if state not in STATES:
        raise FabricError(["drain: state %r is not one of %s" % (state, ", ".join(STATES))])
    problems = [("drain: %s is not a fabric host (groups spines, tors, hypervisors, nat_gateways)" % name)
                for name in targets if name not in fab.hosts]
    if not targets:
        problems.append("drain: no host given (-e ocs_drain_hosts=HOST[,HOST...])")
    if problems:
        raise FabricError(problems)
    if fab.routing_mode != "bgp" and state == "drained":
        static = [n for n in targets if fab.hosts[n].role in ("tor", "hypervisor")]
        if static:
            raise FabricError(["drain: %s: routing_mode is %s: hypervisors and their ToRs route to each other by "
                               "static routes, which a drain (BGP graceful shutdown) cannot move; spines and NAT "
                               "gateways can be drained" % (n, fab.routing_mode) for n in static])
    after = {name for name, flag in drained.items() if flag}
    after = after | set(targets) if state == "drained" else after - set(targets)
    unavailable = after | set(down)
    out = []
    for name in targets:
        host = fab.hosts[name]
        now = bool(drained.get(name))
        entry = {"host": name, "neighbors": _peers_of(fab, host)}
        if state == "undrained":
            entry.update(action="undrain" if now else "none",
                         reason="" if now else "%s is not drained: nothing to do" % name)
            out.append(entry)
            continue
        if now:
            entry.update(action="none", reason="%s is already drained" % name)
            out.append(entry)
            continue
        if host.role == "hypervisor" and host.instances and not force:
            names = ", ".join(sorted(i.name for i in host.instances)[:5])
            problems.append("drain: hypervisor %s still hosts %d instance(s) (%s): each instance /32 has no "
                            "other path; move them in the inventory first (or force)"
                            % (name, len(host.instances), names))
        what, others = _alternatives(fab, host)
        if what and not force and all(o.name in unavailable for o in others):
            problems.append("drain: %s is the last live path of %s%s; refused (force to override)"
                            % (name, what, " (drained or down: %s)" % ", ".join(sorted(o.name for o in others))
                               if others else ""))
        entry.update(action="drain", reason="")
        out.append(entry)
    if problems:
        raise FabricError(problems)
    return out


def _path_peers(path):
    keys = {path.get("peerId"), path.get("hostname")}
    for hop in path.get("nexthops") or []:
        keys.add(hop.get("ip"))
        keys.add(hop.get("hostname"))
    return {k for k in keys if k}


def _selected(path):
    return bool(path.get("bestpath") or path.get("multipath"))


def pending(bgp_json, host, keys, state):
    """Prefixes of a neighbour's BGP table (``show bgp ipv4 unicast json``,
    parsed) whose selection does not yet reflect ``state`` of ``host`` (known
    to it by session ``keys`` or by name). Drained: a prefix with a path
    through the host and another path must not select the host's. Undrained:
    the host's path must no longer carry the community, and be selected again
    where it is as good as the best."""
    ids = set(keys) | {host}
    out = []
    for prefix, paths in sorted((bgp_json or {}).get("routes", {}).items()):
        via = [p for p in paths if p.get("valid") and _path_peers(p) & ids]
        other = [p for p in paths if p.get("valid") and not (_path_peers(p) & ids)]
        if not via:
            continue
        if state == "drained":
            if other and any(_selected(p) for p in via):
                out.append(prefix)
        elif any(_gshut(p) for p in via) or _left_out(via, other):
            out.append(prefix)
    return out


def _left_out(via, other):
    """The host's paths are as good as the best other one, yet none is selected."""
    return bool(other) and not any(_selected(p) for p in via) and _comparable(via, other)


def _gshut(path):
    community = path.get("community") or {}
    return "graceful-shutdown" in str(community.get("string", "")).split()


def _comparable(via, other):
    """The host's path would be selected on equal terms (same local
    preference and AS-path length as the best other one)."""
    def rank(p):
        return (p.get("locPrf", 100), -len(str(p.get("path", "")).split()))
    return max(rank(p) for p in via) >= max(rank(p) for p in other)
