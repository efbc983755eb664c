# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every validator shares: the problem collector, the location of an
object or field in a message (:func:`where`), how a value is shown, and the
field parsers (AS numbers, IPv4 and IPv6 addresses, network lists, ports, ...).

A field parser reports what is wrong with a value through the collector and
returns the parsed value, or None (or an empty list) when there is none.
"""

import ipaddress
import re

from .addr import DIGITS_RE, aton, aton6, parse_net, parse_net6, special6_net

RESERVED_ASNS = {0, 23456, 65535, 4294967295}
DOC_ASNS = set(range(64496, 64512)) | set(range(65536, 65552))
PROTOS = ("tcp", "udp")

LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
"""A lower-case RFC 1123 label (instance names)."""

_PLAIN_RE = re.compile(r"[A-Za-z0-9._:/@+-]+")
_DURATION_RE = re.compile(r"([0-9]{1,8})([smhdw]?)")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Checker:
    """Collects every problem: one line each, the location first."""

    def __init__(self):
        self.problems = []

    def add(self, place, message):
        self.problems.append("%s %s" % (place, message))


def where(*parts):
    """The location of an object or field in a message: the parts joined by
    ``.``, an integer part as an index, e.g. ``where("hypervisors", "hv-1",
    "ocs_instances", 1)`` is ``hypervisors.hv-1.ocs_instances[1]``."""
    out = []
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out.append("[%d]" % part)
        else:
            out.append(("." if out else "") + "%s" % part)
    return "".join(out)


class Place:
    """A location printed only when a message uses it: ``Place(where, label, "ip")`` is
    ``where(label, "ip")`` once ``str()`` asks for it. A fleet's valid records are never printed,
    and building their locations eagerly (several strings per instance) was about a quarter of
    validating the instances."""

    __slots__ = ("_fn", "_args", "_text")

    def __init__(self, fn, *args):
        self._fn, self._args, self._text = fn, args, None

    def __str__(self):
        if self._text is None:
            self._text = self._fn(*self._args)
        return self._text

    def __repr__(self):
        return "Place(%r)" % str(self)


def named(place, *names):
    """A location with the name(s) of the object it is, for records that have
    no name of their own: ``<place> (vm-a)``, ``<place> (vm-a on hv-1)``."""
    return "%s (%s)" % (place, " on ".join(show(name) for name in names))


def show(value):
    """A value as it appears in a message: plain when harmless, repr otherwise
    (so a newline or a shell metacharacter is visible, and a message stays one line)."""
    if isinstance(value, str) and _PLAIN_RE.fullmatch(value):
        return value
    return repr(value)


def unknown_keys(chk, place, data, known, listed=None):
    """Report each key of the mapping ``data`` that is not in ``known``; the message names the
    fields ``listed`` (default: ``known``)."""
    listed = known if listed is None else listed
    for key in sorted(set(data) - known, key=str):
        chk.add(where(place, show(key)), "is not a known field (known: %s)" % ", ".join(sorted(listed)))


def asn_field(chk, place, value, required=True):
    """An AS number (an int, or a string of digits), not reserved and not a documentation one."""
    if value is None:
        if required:
            chk.add(place, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and DIGITS_RE.fullmatch(value):
            value = int(value)
        else:
            chk.add(place, "%s is not an AS number (an integer)" % show(value))
            return None
    if not 1 <= value <= 4294967294 or value in RESERVED_ASNS:
        chk.add(place, "%s is a reserved AS number" % value)
        return None
    if value in DOC_ASNS:
        chk.add(place, "%s is a documentation AS number (RFC 5398)" % value)
        return None
    return value


def ip_field(chk, place, value, required=True):
    """An IPv4 address (dotted quad) as an int."""
    if value is None:
        if required:
            chk.add(place, "is required")
        return None
    ip = aton(value)
    if ip is None:
        chk.add(place, "%s is not an IPv4 address" % show(value))
    return ip


def ip6_field(chk, place, value, required=False):
    """An IPv6 address as an int (kept apart from IPv4 ints: the same int may be both)."""
    if value is None:
        if required:
            chk.add(place, "is required")
        return None
    ip = aton6(value)
    if ip is None:
        zone = isinstance(value, str) and "%" in value and aton6(value.partition("%")[0]) is not None
        hint = " (no zone id: %s)" % show(value[value.index("%"):]) if zone else ""
        chk.add(place, "%s is not an IPv6 address%s" % (show(value), hint))
    return ip


def _net_item(chk, place, item, parse=parse_net, everything="0.0.0.0/0"):
    """One network of a list, read by ``parse`` (IPv4 by default; ``everything``, the /0 of its
    family, refused), or None."""
    try:
        net = parse(item)
    except ValueError as exc:
        chk.add(place, "%s %s" % (show(item), exc))
        return None
    if net.prefixlen == 0:
        chk.add(place, "%s covers every address (%s is not allowed)" % (net.text, everything))
        return None
    return net


def net_list_field(chk, place, value, required):
    """[Net] of a list of IPv4 CIDR networks."""
    if value is None:
        if required:
            chk.add(place, "is required")
        return []
    if not isinstance(value, list):
        chk.add(place, "must be a list of networks, got %s" % show(value))
        return []
    nets = (_net_item(chk, where(place, i), item) for i, item in enumerate(value))
    return [net for net in nets if net is not None]


def _net6_strict(chk, place, item):
    """One IPv6 network of a list as a Net6 (::/0 and the non-global ranges refused), or None."""
    net = _net_item(chk, place, item, parse_net6, "::/0")
    if net is None:
        return None
    special = special6_net(net)
    if special is not None:
        chk.add(place, "%s overlaps %s (not a global network)" % (net.text, special))
        return None
    return net


def net6_items(chk, place, value):
    """[(index, Net6)] of the valid items of an optional list of IPv6 CIDR networks (absent: [])."""
    if value is None:
        return []
    if not isinstance(value, list):
        chk.add(place, "must be a list of IPv6 networks, got %s" % show(value))
        return []
    nets = ((i, _net6_strict(chk, where(place, i), item)) for i, item in enumerate(value))
    return [(i, net) for i, net in nets if net is not None]


def _net6_item(chk, place, item):
    """One IPv6 network of a list (::/0 refused) as text, or None."""
    try:
        net = ipaddress.IPv6Network(item, strict=True)
    except ValueError as exc:
        chk.add(place, "%s is not an IPv6 network in CIDR notation (%s)" % (show(item), exc))
        return None
    if net.prefixlen == 0:
        chk.add(place, "%s covers every address (::/0 is not allowed)" % item)
        return None
    return str(net)


def mixed_net_list_field(chk, place, value, required):
    """(IPv4 [Net], IPv6 [str]) of a list of CIDR networks of either family."""
    if value is None or not isinstance(value, list):
        return net_list_field(chk, place, value, required), []
    v4, v6 = [], []
    for i, item in enumerate(value):
        if isinstance(item, str) and ":" in item:
            v6.append(_net6_item(chk, where(place, i), item))
        else:
            v4.append(_net_item(chk, where(place, i), item))
    return [n for n in v4 if n is not None], [n for n in v6 if n is not None]


def port_field(chk, place, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        chk.add(place, "%s is not a port (1-65535)" % show(value))
        return None
    return value


CONN_LIMIT_MAX = 1048576
"""The largest cap on one instance's tracked connections (a conntrack entry costs ~256 bytes of kernel memory)."""


def conn_limit_field(chk, place, value):
    """A cap on tracked connections: an integer (or, from a CSV file, a string of digits) from 1 to
    :data:`CONN_LIMIT_MAX`; None when absent or wrong (reported)."""
    if value is None:
        return None
    if isinstance(value, str) and DIGITS_RE.fullmatch(value) and len(value) <= 8:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= CONN_LIMIT_MAX:
        chk.add(place, "%s must be an integer from 1 to %d (tracked connections per instance)"
                % (show(value), CONN_LIMIT_MAX))
        return None
    return value


def proto_field(chk, place, value):
    if value not in PROTOS:
        chk.add(place, "%s must be tcp or udp" % show(value))
        return None
    return value


def duration(value):
    """``43200``, ``'720m'``, ``'12h'`` -> seconds, or None when not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    m = _DURATION_RE.fullmatch(value) if isinstance(value, str) else None
    return int(m.group(1)) * _DURATION_UNITS[m.group(2)] if m else None


def overlaps(items):
    """Pairs (a, b) of overlapping (label, Net) items; O(n log n)."""
    out = []
    ordered = sorted(items, key=lambda x: (x[1].first, -x[1].last))
    reach = None
    for label, net in ordered:
        if reach is not None and net.first <= reach[1].last:
            out.append((reach, (label, net)))
        if reach is None or net.last > reach[1].last:
            reach = (label, net)
    return out
