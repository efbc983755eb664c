"""IPv6 frames for the guard tests: whole Ethernet frames, checksums filled in, sent from an
instance's eth0 with a raw AF_PACKET socket (:data:`SEND`, run inside the instance). Shared by
the netns lab (tests/integration/test_ipv6_guards_netns.py) and the molecule fabric
(molecule/default/tests/test_ipv6.py): both build the bytes here and send them as hex."""

import ipaddress
import struct

# Run as ``python3 -c SEND HEX`` (or a file) inside the instance: one frame out of its eth0.
SEND = "import socket, sys\ns = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\ns.bind(('eth0', 0))\n" \
       "s.send(bytes.fromhex(sys.argv[1]))\n"
ALL_NODES, ALL_ROUTERS = ("ff02::1", "33:33:00:00:00:01"), ("ff02::2", "33:33:00:00:00:02")
BAD_PREFIX = "2001:db8:bad::"


def mac_bytes(text):
    return bytes.fromhex(text.replace(":", ""))


def _sum16(data):
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(eth_src, eth_dst, src, dst, nh, payload, hl=64):
    """An Ethernet frame with an IPv6 packet; the ICMPv6 (58) or UDP (17) checksum filled in."""
    s, d = ipaddress.IPv6Address(src).packed, ipaddress.IPv6Address(dst).packed
    at = {58: 2, 17: 6}[nh]
    pseudo = s + d + struct.pack("!IxxxB", len(payload), nh)
    payload = payload[:at] + struct.pack("!H", _sum16(pseudo + payload)) + payload[at + 2:]
    head = struct.pack("!IHBB", 0x60000000, len(payload), nh, hl) + s + d
    return mac_bytes(eth_dst) + mac_bytes(eth_src) + b"\x86\xdd" + head + payload


def icmp6(kind, body, code=0):
    return struct.pack("!BBH", kind, code, 0) + body


def udp(sport, dport, data=b"x"):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def ra(mac, prefix=BAD_PREFIX):
    """A router advertisement: default router for 1800 s, on-link and SLAAC prefix ``prefix``/64."""
    info = struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + ipaddress.IPv6Address(prefix).packed
    return icmp6(134, struct.pack("!BBHII", 64, 0, 1800, 0, 0) + info + bytes([1, 1]) + mac_bytes(mac))


def na(target, mac):
    """A neighbour advertisement (override) of ``target`` at ``mac``."""
    return icmp6(136, struct.pack("!I", 0x20000000) + ipaddress.IPv6Address(target).packed + bytes([2, 1])
                 + mac_bytes(mac))


def ns(target):
    return icmp6(135, bytes(4) + ipaddress.IPv6Address(target).packed)


def ptb(inner_src, inner_dst, mtu=1280):
    inner = struct.pack("!IHBB", 0x60000000, 1400, 17, 64) + ipaddress.IPv6Address(inner_src).packed \
        + ipaddress.IPv6Address(inner_dst).packed + udp(7000, 7002)
    return icmp6(2, struct.pack("!I", mtu) + inner)
