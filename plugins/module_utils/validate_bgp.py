# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the BGP sessions: ``ocs_fabric.bgp`` (the knobs of every fabric
session), ``ocs_fabric.border`` and each border peer's own settings (the
border sessions), per-link passwords (``ocs_uplinks[].password``: only on a
link with a fabric BGP session), unnumbered uplinks (the upper side must know
the host). (The edge hosts' border links: validate_hosts.)"""

import re

from .addr import ntoa
from .check import show, unknown_keys, where
from .edge import border_set

BGP_KEYS = {"bfd", "graceful_restart", "keepalive", "holdtime", "password"}
BORDER_KEYS = {"bfd", "keepalive", "holdtime", "password"}
BORDER_DEFAULTS = {"bfd": False, "keepalive": 10, "holdtime": 30, "password": None}
"""The border sessions' defaults: FRR's own 60/180 s would keep traffic on a dead upstream for three
minutes; 10/30 s is what border routers commonly run (BFD is off: the other end must run it too)."""
_BGP_PASSWORD_RE = re.compile(r"[A-Za-z0-9._~+=@%^*-]{1,80}")
_UPPER_ROLE = {"hypervisor": "tor", "tor": "spine", "nat_gateway": "spine"}


def bgp(chk, fab, data):
    """ocs_fabric.bgp: session knobs of every fabric BGP session (FRR)."""
    place = where("ocs_fabric", "bgp")
    if data is None or not _mapping(chk, place, data, BGP_KEYS):
        return
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
    pw = password(chk, where(place, "password"), data.get("password"))
    if pw is not None:
        out["password"] = pw
    fab.bgp = out


def password(chk, place, value):
    """A BGP password (TCP MD5) or None (not set, or reported); the value is never shown."""
    if value is None:
        return None
    if not isinstance(value, str) or _BGP_PASSWORD_RE.fullmatch(value) is None:
        chk.add(place, "must be 1-80 characters of letters, digits and ._~+=@%^*- (the value is not shown)")
        return None
    return value


def border(chk, fab, data):
    """ocs_fabric.border: the defaults of every border session (``fab.border``)."""
    place = where("ocs_fabric", "border")
    fab.border = dict(BORDER_DEFAULTS)
    if data is None or not _mapping(chk, place, data, BORDER_KEYS):
        return
    fab.border = _session(chk, place, data, BORDER_DEFAULTS, None) or dict(BORDER_DEFAULTS)


def border_peer(chk, fab, place, data, ip):
    """A border peer's own session settings (its keys of BORDER_KEYS) over ``ocs_fabric.border``,
    into ``fab.border_sessions[ip]``. (Its address and ASN: validate_settings.)"""
    out = _session(chk, place, data, fab.border, "ocs_fabric.border")
    if out is not None and ip is not None:
        fab.border_sessions[ip] = out


def _session(chk, place, data, base, inherited):
    """bfd, keepalive, holdtime and password of ``data`` over ``base`` (``inherited`` names where
    ``base`` comes from, in messages); None when one is not valid (reported)."""
    out, ok = dict(base), True
    if data.get("bfd") is not None:
        if isinstance(data["bfd"], bool):
            out["bfd"] = data["bfd"]
        else:
            chk.add(where(place, "bfd"), "%s must be true or false" % show(data["bfd"]))
            ok = False
    for key in ("keepalive", "holdtime"):
        if data.get(key) is None:
            continue
        if _timer(chk, place, key, data[key]):
            out[key] = data[key]
        else:
            ok = False
    if ok and out["holdtime"] < 3 * out["keepalive"]:
        ok = False
        if data.get("holdtime") is not None or inherited is None:
            chk.add(where(place, "holdtime"), "%d must be at least 3 times keepalive %d%s" % (
                out["holdtime"], out["keepalive"], "" if data.get("keepalive") is not None or inherited is None
                else " (%s)" % inherited))
        else:
            chk.add(where(place, "keepalive"), "%d is more than a third of holdtime %d (%s)"
                    % (out["keepalive"], out["holdtime"], inherited))
    if data.get("password") is not None:
        out["password"] = password(chk, where(place, "password"), data["password"])
        ok = ok and out["password"] is not None
    return out if ok else None


def _mapping(chk, place, data, keys):
    """Whether ``data`` is a mapping (its unknown keys reported); reported when not."""
    if not isinstance(data, dict):
        chk.add(place, "must be a mapping {%s}" % ", ".join(sorted(keys)))
        return False
    unknown_keys(chk, place, data, keys)
    return True


_TIMER_MIN = {"keepalive": 1, "holdtime": 3}


def _timer(chk, place, key, val):
    """Whether a keepalive or holdtime is an integer in FRR's range; reported when not."""
    if isinstance(val, bool) or not isinstance(val, int) or not _TIMER_MIN[key] <= val <= 65535:
        chk.add(where(place, key), "%s must be an integer from %d to 65535" % (show(val), _TIMER_MIN[key]))
        return False
    return True


def _timers(chk, place, data):
    """{keepalive, holdtime} when both are valid, {} when they do not fit
    together, None when one is not a valid number (the knobs stop there)."""
    keepalive, holdtime = data.get("keepalive", 3), data.get("holdtime", 9)
    if not (_timer(chk, place, "keepalive", keepalive) and _timer(chk, place, "holdtime", holdtime)):
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


def link_passwords(chk, fab):
    """A per-link password (``ocs_uplinks[].password``) sits on a link with a fabric BGP session:
    not on a hypervisor's uplink in routing_mode static (no session), not on a border link (the
    border session's settings are the border peer's). A host's unnumbered uplinks carry one
    password or none: the tier above knows them only by the host's name (its downlinks), not
    which link is which."""
    border = border_set(fab)
    for host in fab.hosts.values():
        first = None  # (index, password) of the host's first unnumbered uplink
        for i, up in enumerate(host.uplinks):
            place = where(host.group, host.name, "ocs_uplinks", i, "password")
            if not up.numbered:
                if first is None:
                    first = (i, up.password)
                elif up.password != first[1]:
                    chk.add(place, "%s, but ocs_uplinks[%d] (unnumbered too) %s: a host's unnumbered uplinks "
                            "carry one password or none (the tier above tells them apart only by host)"
                            % ("is set" if up.password else "is not set", first[0],
                               "has another" if up.password and first[1] else
                               "has one" if first[1] else "has none"))
            if up.password is None:
                continue
            if host.role == "hypervisor" and fab.routing_mode != "bgp":
                chk.add(place, "is set, but with routing_mode %s hypervisor %s has no BGP session on %s"
                        % (fab.routing_mode, host.name, up.interface))
            elif up.peer is not None and up.peer in border:
                chk.add(place, "is set on a border link (peer %s is a border peer): set that session's "
                        "password in its ocs_fabric.border_peers entry or in ocs_fabric.border" % ntoa(up.peer))
