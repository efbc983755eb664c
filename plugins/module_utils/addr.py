# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strict IPv4, IPv6, MAC and interface-name parsing, on integers.

An IPv4 address is an int, a network a :class:`Net` (first and last address,
prefix length), parsed by strict regexes, so that a value such as
``010.1.1.1``, ``1.2.3`` or ``1.2.3.4\\n`` is rejected rather than silently
reinterpreted, and printed by :func:`ntoa` (fast enough for 500k instances).

An IPv6 address is an int too (kept apart from IPv4 ones: the same int may be
both), a network a :class:`Net6`. The text passes a strict character check
first (hex digits, ``:`` and ``.`` only: no zone id such as ``%eth0``, no
whitespace or newline anywhere), then the standard library's ``ipaddress``
parses it (either case; an IPv4-embedded form only where ``ipaddress`` accepts
it) and :func:`ntoa6` prints it (RFC 5952: compressed, lower case).

netaddr does two things only: it cross-checks every network :func:`parse_net`
and :func:`parse_net6` read (a disagreement is a bug, raised), and it does the
CIDR merge of :func:`collapse` (IPv4). Hence the controller needs netaddr;
hosts import none of this.
"""

import functools
import ipaddress
import re

try:
    import netaddr
except ImportError:  # hosts import none of the model; the controller needs netaddr (requirements.txt)
    netaddr = None

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4_RE = re.compile(r"(%s)\.(%s)\.(%s)\.(%s)" % ((_OCTET,) * 4))
_MAC_RE = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}")
DIGITS_RE = re.compile(r"[0-9]+")  # str.isdigit() accepts '¹' and other non-ASCII digits
_IFNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,14}")
_IPV6_RE = re.compile(r"[0-9A-Fa-f:.]{2,45}")  # what ipaddress may see: no zone id, no whitespace, ASCII only
_ALL6 = (1 << 128) - 1


class _Network:
    """A network of one family as integers: ``first``, ``last``, ``prefixlen`` and its ``text``.
    A subclass gives its address width (``BITS``) and printer (``show``); networks of different
    families never compare equal."""

    __slots__ = ("first", "last", "prefixlen", "text")
    BITS = 0

    def __init__(self, first, prefixlen):
        self.first = first
        self.prefixlen = prefixlen
        self.last = first | ((1 << (self.BITS - prefixlen)) - 1)
        self.text = "%s/%d" % (self.show(first), prefixlen)

    @staticmethod
    def show(ip):
        raise NotImplementedError

    def __contains__(self, ip):
        return self.first <= ip <= self.last

    def overlaps(self, other):
        return self.first <= other.last and other.first <= self.last

    def within(self, other):
        return other.first <= self.first and self.last <= other.last

    def __eq__(self, other):
        return type(other) is type(self) and (self.first, self.prefixlen) == (other.first, other.prefixlen)

    def __hash__(self):
        return hash((self.first, self.prefixlen))

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, self.text)

    def __str__(self):
        return self.text


class Net(_Network):
    """An IPv4 network as integers: ``first``, ``last``, ``prefixlen``."""

    __slots__ = ()
    BITS = 32

    @staticmethod
    def show(ip):
        return ntoa(ip)

    @property
    def netmask(self):
        return ntoa((0xFFFFFFFF << (32 - self.prefixlen)) & 0xFFFFFFFF)

    def is_unusable_host(self, ip):
        """Network or broadcast address (only for prefixes shorter than /31)."""
        return self.prefixlen < 31 and (ip == self.first or ip == self.last)


def aton(value):
    """Dotted-quad string -> int, or None when ``value`` is not exactly one."""
    if not isinstance(value, str):
        return None
    m = _IPV4_RE.fullmatch(value)
    if m is None:
        return None
    a, b, c, d = m.groups()
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


def ntoa(ip):
    return "%d.%d.%d.%d" % (ip >> 24, (ip >> 16) & 255, (ip >> 8) & 255, ip & 255)


def parse_net(value):
    """``'198.19.1.0/24'`` -> Net; raises ValueError with the reason.

    Host bits must be zero: ``198.19.1.5/24`` is an error, not 198.19.1.0/24.
    """
    if not isinstance(value, str) or value.count("/") != 1:
        raise ValueError("is not a network in CIDR notation (a.b.c.d/len)")
    addr, dummy, plen = value.partition("/")
    ip = aton(addr)
    if ip is None or not DIGITS_RE.fullmatch(plen) or len(plen) > 2 or int(plen) > 32:
        raise ValueError("is not a network in CIDR notation (a.b.c.d/len)")
    net = Net(ip & ((0xFFFFFFFF << (32 - int(plen))) & 0xFFFFFFFF), int(plen))
    if net.first != ip:
        raise ValueError("has host bits set (the network is %s)" % net.text)
    # netaddr agrees, or we have a bug; cheap, a fabric has few networks.
    if str(_netaddr().IPNetwork(value).cidr) != net.text:
        raise RuntimeError("parse_net(%r) = %s disagrees with netaddr: a bug in ocs-l3" % (value, net.text))
    return net


def _netaddr():
    if netaddr is None:
        raise RuntimeError("the ocs.l3 fabric model needs the Python library netaddr on the controller "
                           "(pip install netaddr)")
    return netaddr


class Net6(_Network):
    """An IPv6 network as integers: ``first``, ``last``, ``prefixlen`` (never equal to a :class:`Net`)."""

    __slots__ = ()
    BITS = 128

    @staticmethod
    def show(ip):
        return ntoa6(ip)


def aton6(value):
    """IPv6 text -> int, or None when ``value`` is not exactly one address (a zone id, whitespace or
    a newline anywhere is refused)."""
    if not isinstance(value, str) or _IPV6_RE.fullmatch(value) is None:
        return None
    try:
        return int(ipaddress.IPv6Address(value))
    except ValueError:
        return None


_MAPPED6 = 0xFFFF << 32  # ::ffff:0:0/96, printed by ipaddress (never a fabric address: validated)


@functools.lru_cache(maxsize=1 << 20)
def ntoa6(ip):
    """An IPv6 int as RFC 5952 text (compressed, lower case), exactly as ``str(ipaddress.IPv6Address(ip))``
    prints it (test_ipv6_fabric: random and edge values), five times faster, and each address once (an
    instance's ip6 is printed by several files): a 500k dual-stack fleet prints millions of them."""
    if ip >> 32 == 0xFFFF:
        return str(ipaddress.IPv6Address(ip))
    groups = [(ip >> shift) & 0xFFFF for shift in range(112, -16, -16)]
    start, length, i = -1, 0, 0
    while i < 8:  # the longest run of zero groups (the first of equal ones), two or more
        if groups[i]:
            i += 1
            continue
        j = i
        while j < 8 and not groups[j]:
            j += 1
        if j - i > length:
            start, length = i, j - i
        i = j
    if length < 2:
        return ":".join("%x" % g for g in groups)
    return "%s::%s" % (":".join("%x" % g for g in groups[:start]), ":".join("%x" % g for g in groups[start + length:]))


def from_ntoa6(text):
    """The int of an address :func:`ntoa6` printed (canonical text only: no validation; read
    input with :func:`aton6`)."""
    head, sep, tail = text.partition("::")
    groups = head.split(":") if head else []
    if sep:
        rest = tail.split(":") if tail else []
        groups = groups + ["0"] * (8 - len(groups) - len(rest)) + rest
    value = 0
    for g in groups:
        value = (value << 16) | int(g, 16)
    return value


def parse_net6(value):
    """``'2001:db8:0:1::/64'`` -> Net6; raises ValueError with the reason.

    Host bits must be zero: ``2001:db8::1/64`` is an error, not 2001:db8::/64.
    """
    if not isinstance(value, str) or value.count("/") != 1:
        raise ValueError("is not an IPv6 network in CIDR notation (address/len)")
    addr, dummy, plen = value.partition("/")
    ip = aton6(addr)
    if ip is None or not DIGITS_RE.fullmatch(plen) or len(plen) > 3 or int(plen) > 128:
        raise ValueError("is not an IPv6 network in CIDR notation (address/len)")
    prefixlen = int(plen)
    net = Net6(ip & (_ALL6 ^ ((1 << (128 - prefixlen)) - 1)), prefixlen)
    if net.first != ip:
        raise ValueError("has host bits set (the network is %s)" % net.text)
    # netaddr agrees, or we have a bug (compared as ints: its text form may differ from RFC 5952).
    cidr = _netaddr().IPNetwork(value).cidr
    if cidr.version != 6 or (int(cidr.network), cidr.prefixlen) != (net.first, prefixlen):
        raise RuntimeError("parse_net6(%r) = %s disagrees with netaddr: a bug in ocs-l3" % (value, net.text))
    return net


SPECIAL6 = (
    (Net6(0xFF << 120, 8), "a multicast address (ff00::/8)", "the multicast range ff00::/8"),
    (Net6(0xFE80 << 112, 10), "a link-local address (fe80::/10)", "the link-local range fe80::/10"),
    (Net6(1, 128), "the loopback address", "the loopback address ::1"),
    (Net6(0, 128), "the unspecified address", "the unspecified address ::"),
    (Net6(0xFFFF << 32, 96), "an IPv4-mapped address (::ffff:0:0/96)", "the IPv4-mapped range ::ffff:0:0/96"),
)
"""The IPv6 addresses no fabric address or network may be or touch: (Net6, what an address in
it is, what it is). Documentation (2001:db8::/32) and unique local (fc00::/7) addresses are fine."""


def special6(ip):
    """What the IPv6 int ``ip`` is when not a global address (``'a multicast address (ff00::/8)'``), or None."""
    for net, address, dummy in SPECIAL6:
        if ip in net:
            return address
    return None


def special6_net(net):
    """The first special range (SPECIAL6) the Net6 ``net`` overlaps (``'the multicast range ff00::/8'``), or None."""
    for other, dummy, what in SPECIAL6:
        if net.overlaps(other):
            return what
    return None


def parse_iface_addr(value):
    """``'198.18.1.11/24'`` -> (ip int, Net); raises ValueError."""
    if not isinstance(value, str) or value.count("/") != 1:
        raise ValueError("is not an interface address in CIDR notation (a.b.c.d/len)")
    addr, dummy, plen = value.partition("/")
    ip = aton(addr)
    if ip is None or not DIGITS_RE.fullmatch(plen) or len(plen) > 2 or not 1 <= int(plen) <= 32:
        raise ValueError("is not an interface address in CIDR notation (a.b.c.d/len)")
    prefixlen = int(plen)
    net = Net(ip & ((0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF), prefixlen)
    if net.is_unusable_host(ip):
        raise ValueError("is the network or broadcast address of %s" % net.text)
    return ip, net


def parse_mac(value):
    """Return the lower-case colon form, or raise ValueError with the reason."""
    if not isinstance(value, str) or _MAC_RE.fullmatch(value.lower()) is None:
        raise ValueError("is not a MAC address of six colon-separated hex octets")
    mac = value.lower()
    first = int(mac[:2], 16)
    if first & 1:
        raise ValueError("is a multicast or broadcast MAC address")
    if mac == "00:00:00:00:00:00":
        raise ValueError("is the all-zero MAC address")
    return mac


def valid_ifname(value):
    """A Linux interface name: 1-15 chars, no '/', whitespace or ':'."""
    return isinstance(value, str) and _IFNAME_RE.fullmatch(value) is not None and value not in (".", "..")


def collapse(nets, parse=parse_net):
    """Sorted list of Net, adjacent/overlapping ones merged (via netaddr); ``parse``: the family's
    reader (:func:`collapse6` for Net6)."""
    merged = _netaddr().cidr_merge([_netaddr().IPNetwork(n.text) for n in nets])
    return [parse(str(n)) for n in merged]


def collapse6(nets):
    """Sorted list of Net6, adjacent/overlapping ones merged (via netaddr)."""
    merged = _netaddr().cidr_merge([_netaddr().IPNetwork(n.text) for n in nets])
    return [Net6(int(n.network), n.prefixlen) for n in merged]


def host_blocks(ips, bits=32):
    """Sorted, distinct addresses (ints of ``bits`` bits: 32 IPv4, 128 IPv6) as the fewest
    aligned CIDR blocks that hold exactly them: [(first, prefixlen)]. Linear: each run of
    consecutive addresses is cut greedily into the largest aligned blocks that fit."""
    out = []
    i, n = 0, len(ips)
    while i < n:
        j = i
        while j + 1 < n and ips[j + 1] == ips[j] + 1:
            j += 1
        first, last = ips[i], ips[j]
        while first <= last:
            size = (first & -first) or (1 << bits)  # the largest block aligned at first ...
            while first + size - 1 > last:  # ... that ends within the run
                size >>= 1
            out.append((first, bits + 1 - size.bit_length()))
            first += size
        i = j + 1
    return out


def compact_hosts6(ips):
    """IPv6 ints as the fewest prefix-list entries holding exactly their /128s (``B/len ge 128``)."""
    return ["%s/%d" % (ntoa6(ip), plen) + ("" if plen == 128 else " ge 128")
            for ip, plen in host_blocks(sorted(set(ips)), bits=128)]
