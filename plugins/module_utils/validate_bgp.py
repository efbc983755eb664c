# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the BGP sessions: ``ocs_fabric.bgp`` (the knobs of every fabric
session), unnumbered uplinks (the upper side must know the host). (The edge
hosts' border links: validate_hosts.)"""

import re

from .check import show, unknown_keys, where

BGP_KEYS = {"bfd", "graceful_restart", "keepalive", "holdtime", "password"}
_BGP_PASSWORD_RE = re.compile(r"[A-Za-z0-9._~+=@%^*-]{1,80}")
_UPPER_ROLE = {"hypervisor": "tor", "tor": "spine", "nat_gateway": "spine"}


def bgp(chk, fab, data):
    """ocs_fabric.bgp: session knobs of every fabric BGP session (FRR)."""
    place = where("ocs_fabric", "bgp")
    if data is None:
        return
    if not isinstance(data, dict):
        chk.add(place, "must be a mapping {%s}" % ", ".join(sorted(BGP_KEYS)))
        return
    unknown_keys(chk, place, data, BGP_KEYS)
    out = {}
    for key in ("bfd", "graceful_restart"):
        if key in data:
            if not isinstance(data[key], bool):
                chk.add(where(place, key), "%s must be true or false" % show(data[key]))
            else:
                out[key] = data[key]
    timers = _timers(chk, place, data)
    if timers is None:
        return
    out.update(timers)
    pw = data.get("password")
    if pw is not None:
        if not isinstance(pw, str) or _BGP_PASSWORD_RE.fullmatch(pw) is None:
            chk.add(where(place, "password"), "must be 1-80 characters of letters, digits and ._~+=@%^*- "
                    "(the value is not shown)")
        else:
            out["password"] = pw
    fab.bgp = out


def _timers(chk, place, data):
    """{keepalive, holdtime} when both are valid, {} when they do not fit
    together, None when one is not a valid number (the knobs stop there)."""
    keepalive, holdtime = data.get("keepalive", 3), data.get("holdtime", 9)
    for key, val, low in (("keepalive", keepalive, 1), ("holdtime", holdtime, 3)):
        if isinstance(val, bool) or not isinstance(val, int) or not low <= val <= 65535:
            chk.add(where(place, key), "%s must be an integer from %d to 65535" % (show(val), low))
            return None
    if holdtime < 3 * keepalive:
        chk.add(where(place, "holdtime"), "%d must be at least 3 times keepalive %d" % (holdtime, keepalive))
        return {}
    return {"keepalive": keepalive, "holdtime": holdtime}


def unnumbered(chk, fab):
    """An unnumbered uplink (no peer) needs a downlink one tier up naming the
    host: that is the interface the upper side's BGP session listens on."""
    named = {}
    for host in fab.hosts.values():
        for down in host.downlinks:
            if down.host is not None:
                named.setdefault(down.host, set()).add(host.role)
    for host in fab.hosts.values():
        if host.role == "hypervisor" and fab.routing_mode != "bgp":
            continue
        upper = _UPPER_ROLE.get(host.role)
        if upper is None:
            continue
        for i, up in enumerate(host.uplinks):
            if up.peer is None and upper not in named.get(host.name, ()):
                chk.add(where(host.group, host.name, "ocs_uplinks", i, "peer"),
                        "is not set (BGP unnumbered), but no %s has an ocs_downlinks entry with host %s"
                        % ("ToR of rack %s" % host.rack.id if upper == "tor" and host.rack else "spine", host.name))
                break
