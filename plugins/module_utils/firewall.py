# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tenant isolation on a hypervisor: anti-spoofing and protection of the host itself.

Table ``filter``, in chains of our own (applied by the ``ocs_iptables_chains``
module like the NAT chains: the file declares them, the module ensures the
jumps ``INPUT -> OCS-INPUT`` and ``FORWARD -> OCS-FORWARD`` exactly once, as
the first rule of their chain). Every rule of ours matches ``-i <prefix>+`` (a packet that arrives
on an instance tap) or sits in a chain only such packets reach: management
traffic (SSH on the uplinks), the fabric, replies going *to* instances and
inbound floating-IP traffic (``-o tap``) are never matched. Built-in chain
policies and other chains are never touched::

    INPUT   -> OCS-INPUT    -i tap+ udp 68->67                      -> OCS-DHCP-MAC (every DHCP client packet)
                            -i tap+ DHCP from 0.0.0.0 (udp 68->67)  ACCEPT (discover, request, decline)
                            -i tap+                                 -> OCS-ANTISPOOF
                            -i tap+ ESTABLISHED,RELATED             ACCEPT (replies)
                            -i tap+ udp 68->67                      ACCEPT (DHCP renew, release: its own IP)
                            -i tap+ ctstate NEW                     -> OCS-CONNLIMIT
                            -i tap+ icmp echo-request               ACCEPT
                            -i tap+ tcp ctstate DNAT to metadata    ACCEPT (metadata served by this host)
                            -i tap+                                 DROP   (sshd, bgpd, anything else)
    FORWARD -> OCS-FORWARD  -i tap+                                 -> OCS-ANTISPOOF
                            -i tap+                                 -> OCS-TENANT
                            -i tap+ ctstate NEW                     -> OCS-CONNLIMIT
    OCS-ANTISPOOF  -i TAP -s FIXED/32 --mac-source MAC  RETURN   (one per instance)
                   DROP                                          (counted: spoofed, or an unknown tap)
    OCS-DHCP-MAC   -i TAP --mac-source MAC -m u32 CHADDR=MAC  RETURN   (one per instance)
                   DROP                                                (counted: ocs-dhcp-spoof)
    OCS-CONNLIMIT  -s FIXED/32 -i TAP connlimit-above N  REJECT   (instances with a conn_limit of their own)
                   -s FIXED/32 -i TAP                    RETURN
                   connlimit-above DEFAULT (per source /32)  REJECT (counted: ocs-connlimit)

**DHCP**: dnsmasq finds the host entry and the lease of a request by the
BOOTP ``chaddr`` field (not by the Ethernet source), so ``OCS-DHCP-MAC``
checks both: a DHCP client packet from a tap passes only with the tap's
instance MAC as Ethernet source *and* as chaddr (htype 1, hlen 6; ``u32`` at
UDP payload offsets 1-2 and 28-33). Without it a neighbour could send a
DHCPDECLINE with another instance's chaddr and make dnsmasq drop that
instance's lease and refuse its address for 10 minutes (proven in
tests/integration/test_tenant_limits_netns.py).

**Connection cap**: ``OCS-CONNLIMIT`` (``connlimit``, per source /32) caps the
tracked connections each instance *opens* (new connections from its tap,
FORWARD and INPUT share one chain, hence one count), so one instance cannot
fill the hypervisor's conntrack table for the others; the fabric default is
``ocs_fabric.conn_limit``, an instance may set its own ``conn_limit``. The
excess is rejected (ICMP admin-prohibited: the caller fails at once; the kernel
rate-limits the ICMP) and counted (``ocs-connlimit``). Inbound connections to
a floating IP do not come from the tap: they are not counted here (the
conntrack table is sized for them, :func:`conntrack_max`).

Anti-spoofing applies to every packet (not only to the first of a
connection), so an instance cannot inject into another's established flow.
A packet that passes it goes back to ``FORWARD`` untouched: which instance
may talk to whom (security groups) and the forwarding policy stay the
host's. ``INPUT`` from a tap is decided here (allow-list, then DROP).

Outbound floating-IP and SNAT traffic still carries the fixed IP in
``FORWARD`` (source NAT happens in ``POSTROUTING``, after it); a DNATed
metadata connection to a remote target is forwarded with the fixed IP too.
Rules are the same in ``nat_mode: host`` and ``gateway``.

Cost: 2 rules per local instance + 14, plus 2 per instance with a
``conn_limit`` of its own (1,000 instances: 2,014 rules in 5 chains); a packet from a tap walks ``OCS-ANTISPOOF`` linearly to its tap's
rule (interface matches are cheap; an nftables concatenated set would make it
O(1), see the role README).

**IPv6** (``ip6tables``, :func:`ipv6_lines`). An IPv4-only fabric's hypervisors drop every IPv6
packet that arrives on an instance tap (INPUT and FORWARD: ``ocs-no-ipv6``), so an instance cannot
reach the host's daemons over its link-local address either. In a dual-stack fabric
(:func:`guard6_rules_of`) each instance with an ``ip6`` gets a routed /128 on its tap, its router is
``fe80::1`` on every tap (RAs and DHCPv6 from the hypervisor's dnsmasq), and its IPv6 is guarded
like its IPv4; an instance without ``ip6`` gets no IPv6 at all (its tap's IPv6 is dropped,
``ocs-no-ipv6``)::

    INPUT   -> OCS-INPUT    -i tap+                                 -> OCS-ANTISPOOF
                            -i tap+                                 -> OCS-GUARD6
                            -i tap+ ESTABLISHED,RELATED             ACCEPT (replies)
                            -i tap+ icmpv6 2 (packet too big)       ACCEPT
                            -i tap+ icmpv6 133,135,136 hl 255       ACCEPT (RS, NS, NA)
                            -i tap+ udp 546->547                    ACCEPT (DHCPv6 client)
                            -i tap+ ctstate NEW                     -> OCS-CONNLIMIT
                            -i tap+ icmpv6 128 (echo request)       ACCEPT
                            -i tap+                                 DROP   (ocs-protect-host: sshd, bgpd, MLD...)
    FORWARD -> OCS-FORWARD  -i tap+                                 -> OCS-ANTISPOOF
                            -i tap+                                 -> OCS-GUARD6
                            -i tap+                                 -> OCS-TENANT (as IPv4's: infrastructure6)
                            -i tap+ ctstate NEW                     -> OCS-CONNLIMIT
                            -o tap+                                 -> OCS-INBOUND6
    OCS-ANTISPOOF  -s IP6/128   -i TAP --mac-source MAC            RETURN  (one set per instance with ip6,
                   -s fe80::/10 -i TAP --mac-source MAC            RETURN   sorted by fixed IPv4)
                   -s ::/128    -i TAP --mac-source MAC icmpv6 135 RETURN  (DAD neighbour solicitation)
                   -s ::/128    -i TAP --mac-source MAC icmpv6 143 RETURN  (MLDv2 report before DAD)
                   -i TAP                                          DROP    (ocs-no-ipv6: an instance without ip6)
                   DROP                                                    (ocs-spoof6: spoofed, or an unknown tap)
    OCS-GUARD6     icmpv6 134 (router advertisement)   DROP  (ocs-ra6)
                   icmpv6 137 (redirect)               DROP  (ocs-redirect6)
                   icmpv6 138 (router renumbering)     DROP  (ocs-renumbering6)
                   udp sport 547 (DHCPv6 server)       DROP  (ocs-dhcp6-server)
                   icmpv6 136 (neighbour advertisement) -> OCS-NA6
    OCS-NA6        u32 next header 58, target in fe80::/10    RETURN  (ocs-na-link-local)
                   -i TAP u32 next header 58, target IP6      RETURN  (one per instance with ip6)
                   DROP                                               (ocs-na-spoof6)
    OCS-INBOUND6   ctstate RELATED,ESTABLISHED         RETURN  (replies to flows the instance opened)
                   icmpv6 2 (packet too big)           RETURN
                   icmpv6 128 (echo request)           RETURN
                   -s INTERNAL6                        RETURN  (each internal_ranges6: instances, hosts)
                   -d IP6/128 -o TAP                   RETURN  (each instance open to new flows, inbound6)
                   DROP                                        (ocs-inbound6)
    OCS-TENANT     as IPv4's (host_policy.tenant_rules): replies RETURN, each IPv6 instance service on
                   a fabric host RETURN, then -d each ocs_address6/128 DROP (ocs-infra)
    OCS-CONNLIMIT  as IPv4's, per source /128: -s IP6/128 for the instances' own caps, then the default

**Neighbour advertisements**: the source check proves the sender, not the address it advertises;
ip6tables has no match for the ND target, so ``u32`` reads it where it is when the ICMPv6 header
follows the IPv6 header directly (next header 58 at byte 6; the target at bytes 48-63): an NA
passes only for a link-local target (a guest's link-local addresses need not derive from its MAC,
so any) or the instance's own ip6; an NA with an extension header, or too short to hold a target,
is dropped. Neighbour solicitations are not checked: they claim nothing (DAD ones, from ``::``,
only ask), and on a routed point-to-point tap the only neighbour they can reach is the hypervisor.

**Inbound** (``-o tap+``, new flows to an instance's ip6; with IPv6 every instance has a global
address): ``ocs_fabric.inbound6`` ``floating`` (the default: parity with IPv4, an instance with a
floating IP is reachable from anywhere, one without only from inside the fabric), ``open`` (every
instance) or ``closed`` (none from outside the fabric); an instance's own ``inbound6`` (``open``
or ``closed``) overrides it (:func:`open_inbound6`). Replies, packet-too-big and echo requests
always pass; sources inside ``internal_ranges6`` always (instances reach each other as on IPv4).
Packet-too-big passes every policy filter of both directions (never rate limited); the source
check still applies to what an instance sends.

Cost (IPv6, dual stack): 4 rules per local instance with ip6 (1 without), 1 per NA target, at most
1 per open instance, plus 2 per own ``conn_limit``, plus 26 and 1 per internal IPv6 range, 1 per host
with an ``ocs_address6`` (collapsed) and 1 per IPv6 instance service on one.
"""

from .addr import ntoa, ntoa6
from .artifact import Artifact, text
from .conntrack import sized_max
from .memo import per_host

from .constants import FILTER6_PATH, FILTER_PATH  # noqa: F401
from .constants import FILTER_ANTISPOOF as ANTISPOOF, FILTER_CHAINS as CHAINS, FILTER_CHAINS6 as CHAINS6  # noqa: F401
from .constants import FILTER_CONNLIMIT as CONNLIMIT, FILTER_DHCP_MAC as DHCP_MAC
from .constants import FILTER_FORWARD as FORWARD, FILTER_INPUT as INPUT
from .constants import FILTER_HOST as HOST, FILTER_TENANT as TENANT, RAW_CHAINS
from .constants import FILTER_CHAINS6_HYPERVISOR as CHAINS6_HYPERVISOR, FILTER_GUARD6 as GUARD6
from .constants import FILTER_INBOUND6 as INBOUND6, FILTER_NA6 as NA6
from .host_policy import LINK_LOCAL6, edge_rules, edge_rules6, host_rules, host_rules6, notrack_rules, tenant_rules

FIXED_RULES = 14
"""Rules that do not depend on the number of instances (with metadata configured)."""

CONN_LIMIT_DEFAULT = 8192
"""Tracked connections an instance may open by default (``ocs_fabric.conn_limit``)."""

_DHCP = "-p udp -m udp --sport 68 --dport 67"
_UDP_PAYLOAD = "0x0>>0x16&0x3c@"
"""u32: from the IP header to the UDP header (IHL * 4); the BOOTP message starts 8 bytes later."""


def _comment(word):
    return "-m comment --comment %s" % word


def _new(fab):
    return "-i %s+ -m conntrack --ctstate NEW -j %s" % (fab.instance_ifname_prefix, CONNLIMIT)


def input_rules(fab):
    """Rules of OCS-INPUT: what an instance may send to its hypervisor."""
    tap = "-i %s+" % fab.instance_ifname_prefix
    rules = [
        "-A %s %s %s %s -j %s" % (INPUT, tap, _DHCP, _comment("ocs-dhcp"), DHCP_MAC),
        "-A %s -s 0.0.0.0/32 %s %s %s -j ACCEPT" % (INPUT, tap, _DHCP, _comment("ocs-dhcp")),
        "-A %s %s -j %s" % (INPUT, tap, ANTISPOOF),
        "-A %s %s -m conntrack --ctstate RELATED,ESTABLISHED %s -j ACCEPT" % (INPUT, tap, _comment("ocs-replies")),
        "-A %s %s %s %s -j ACCEPT" % (INPUT, tap, _DHCP, _comment("ocs-dhcp")),
        "-A %s %s" % (INPUT, _new(fab)),
        "-A %s %s -p icmp -m icmp --icmp-type 8 %s -j ACCEPT" % (INPUT, tap, _comment("ocs-ping")),
    ]
    meta = fab.metadata
    if meta is not None:
        rules.append("-A %s %s -p tcp -m conntrack --ctstate DNAT --ctorigdst %s/32 --ctorigdstport %d %s -j ACCEPT"
                     % (INPUT, tap, ntoa(meta["ip"]), meta["port"], _comment("ocs-metadata")))
    rules.append("-A %s %s %s -j DROP" % (INPUT, tap, _comment("ocs-protect-host")))
    return rules


def chaddr_u32(mac):
    """The ``u32`` test that a DHCP message (UDP payload) is Ethernet (htype 1, hlen 6) with
    ``chaddr`` ``mac`` (BOOTP offsets 1-2 and 28-33), as ``iptables-save`` prints it. u32 does not
    match a packet too short to hold the fields."""
    raw = bytes.fromhex(mac.replace(":", ""))
    return '"%s0x8>>0x8&0xffff=0x106&&%s0x24=0x%x&&%s0x28>>0x10=0x%x"' % (
        _UDP_PAYLOAD, _UDP_PAYLOAD, int.from_bytes(raw[:4], "big"), _UDP_PAYLOAD, int.from_bytes(raw[4:], "big"))


def antispoof_rules(fab, host):
    """(OCS-ANTISPOOF, OCS-DHCP-MAC) rules: one per local instance each, sorted by fixed IP, then a DROP.
    A DHCP client packet must carry the tap's instance MAC as Ethernet source and as BOOTP chaddr."""
    spoof, dhcp = [], []
    for inst in sorted(host.instances, key=lambda i: i.ip):
        note = _comment(inst.name)
        spoof.append("-A %s -s %s/32 -i %s -m mac --mac-source %s %s -j RETURN"
                     % (ANTISPOOF, ntoa(inst.ip), inst.interface, inst.mac, note))
        dhcp.append("-A %s -i %s -m mac --mac-source %s -m u32 --u32 %s %s -j RETURN"
                    % (DHCP_MAC, inst.interface, inst.mac, chaddr_u32(inst.mac), note))
    spoof.append("-A %s %s -j DROP" % (ANTISPOOF, _comment("ocs-spoof")))
    dhcp.append("-A %s %s -j DROP" % (DHCP_MAC, _comment("ocs-dhcp-spoof")))
    return spoof, dhcp


def conn_limit(fab, inst):
    """The tracked connections ``inst`` may open: its own ``conn_limit``, else the fabric's."""
    return fab.conn_limit if inst.conn_limit is None else inst.conn_limit


def _cap(limit, mask=32, reject="icmp-admin-prohibited"):
    return ("-m connlimit --connlimit-above %d --connlimit-mask %d --connlimit-saddr %s "
            "-j REJECT --reject-with %s" % (limit, mask, _comment("ocs-connlimit"), reject))


def connlimit_rules(fab, host, six=False):
    """OCS-CONNLIMIT: new connections from a tap beyond the instance's cap are rejected (counted,
    ``ocs-connlimit``). Instances with a limit of their own (sorted by fixed IP) get it and leave;
    every other source is capped at the fabric's limit by one rule (connlimit counts per source /32;
    ``six``: the IPv6 chain, per source /128, the instances with an ip6)."""
    mask, reject = (128, "icmp6-adm-prohibited") if six else (32, "icmp-admin-prohibited")
    rules = []
    for inst in sorted(host.instances, key=lambda i: i.ip):
        if conn_limit(fab, inst) == fab.conn_limit or (six and inst.ip6 is None):
            continue
        match = "-s %s/%d -i %s" % (ntoa6(inst.ip6) if six else ntoa(inst.ip), mask, inst.interface)
        rules.append("-A %s %s %s" % (CONNLIMIT, match, _cap(conn_limit(fab, inst), mask, reject)))
        rules.append("-A %s %s %s -j RETURN" % (CONNLIMIT, match, _comment(inst.name)))
    rules.append("-A %s %s" % (CONNLIMIT, _cap(fab.conn_limit, mask, reject)))
    return rules


def conntrack_max(fab, host):
    """The conntrack table a hypervisor needs (the rule of :mod:`conntrack`): a base plus every
    local instance's cap (twice for an instance with an ip6: connlimit counts each family apart),
    so the instances together cannot fill it; None on other hosts (spines and ToRs do not track
    transit, gateways keep the kernel's size)."""
    if host.role != "hypervisor":
        return None
    return sized_max(conn_limit(fab, i) * (1 if i.ip6 is None else 2) for i in host.instances)


def _declare(chains):
    return [":%s - [0:0]" % chain for chain in chains]


def _raw(host, edge=()):
    """The table raw block every filter file carries (the jump into OCS-NOTRACK is uniform;
    OCS-EDGE is declared everywhere, entered from OCS-NOTRACK where it has ``edge`` rules)."""
    return ["*raw"] + _declare(RAW_CHAINS) + notrack_rules(host, edge) + list(edge) + ["COMMIT"]


@per_host
def filter_lines(fab, host):
    """The ``iptables-restore`` lines (IPv4) of any fabric host: tables filter and raw."""
    policy = host_rules(fab, host)
    if host.role == "hypervisor":
        spoof, dhcp = antispoof_rules(fab, host)
        lines = ["*filter"] + _declare(CHAINS) + input_rules(fab)
        lines.append("-A %s -i %s+ -j %s" % (FORWARD, fab.instance_ifname_prefix, ANTISPOOF))
        lines.append("-A %s -i %s+ -j %s" % (FORWARD, fab.instance_ifname_prefix, TENANT))
        lines.append("-A %s %s" % (FORWARD, _new(fab)))
        lines += spoof + dhcp + tenant_rules(fab) + connlimit_rules(fab, host)
    else:
        lines = ["*filter"] + _declare((INPUT, FORWARD, HOST))
    if policy:
        lines.append("-A %s -j %s" % (INPUT, HOST))
    lines += policy + ["COMMIT"]
    return lines + _raw(host, edge_rules(fab, host))


def hypervisor_lines(fab, host):
    """Kept for callers that name the hypervisor case: :func:`filter_lines`."""
    return filter_lines(fab, host)


def _icmp6(kind):
    return "-p ipv6-icmp -m icmp6 --icmpv6-type %d" % kind


_NEXT_ICMP6 = "0x4>>0x8&0xff=0x3a"
"""u32 (IPv6): the next header (byte 6) is ICMPv6, no extension header: the ND target is at byte 48."""
_ND_TARGET = 0x30


def target_u32(ip6):
    """The ``u32`` test that an ICMPv6 neighbour message's target (bytes 48-63 of the IPv6 packet,
    no extension header) is the IPv6 int ``ip6``, as ``ip6tables-save`` prints it."""
    words = ["0x%x=0x%x" % (_ND_TARGET + 4 * i, (ip6 >> (96 - 32 * i)) & 0xFFFFFFFF) for i in range(4)]
    return '"%s&&%s"' % (_NEXT_ICMP6, "&&".join(words))


LINK_LOCAL_TARGET_U32 = '"%s&&0x%x>>0x16=0x3fa"' % (_NEXT_ICMP6, _ND_TARGET)
"""u32: the ND target is in fe80::/10 (its top 10 bits are 1111111010)."""


def input6_rules(fab):
    """Rules of OCS-INPUT (IPv6, dual stack): what an instance may send to its hypervisor."""
    a = "-A %s -i %s+" % (INPUT, fab.instance_ifname_prefix)
    rules = ["%s -j %s" % (a, ANTISPOOF), "%s -j %s" % (a, GUARD6),
             "%s -m conntrack --ctstate RELATED,ESTABLISHED %s -j ACCEPT" % (a, _comment("ocs-replies")),
             "%s %s %s -j ACCEPT" % (a, _icmp6(2), _comment("ocs-packet-too-big"))]
    rules += ["%s %s -m hl --hl-eq 255 %s -j ACCEPT" % (a, _icmp6(nd), _comment("ocs-nd")) for nd in (133, 135, 136)]
    rules += ["%s -p udp -m udp --sport 546 --dport 547 %s -j ACCEPT" % (a, _comment("ocs-dhcp6")),
              "-A %s %s" % (INPUT, _new(fab)),
              "%s %s %s -j ACCEPT" % (a, _icmp6(128), _comment("ocs-ping")),
              "%s %s -j DROP" % (a, _comment("ocs-protect-host"))]
    return rules


def forward6_rules(fab):
    """Rules of OCS-FORWARD (IPv6, dual stack): guards on what instances send, inbound policy."""
    prefix = fab.instance_ifname_prefix
    return ["-A %s -i %s+ -j %s" % (FORWARD, prefix, chain) for chain in (ANTISPOOF, GUARD6, TENANT)] + [
        "-A %s %s" % (FORWARD, _new(fab)), "-A %s -o %s+ -j %s" % (FORWARD, prefix, INBOUND6)]


def antispoof6_rules(host):
    """OCS-ANTISPOOF (IPv6): per instance (sorted by fixed IPv4), its ip6, any link-local address and
    ``::`` (DAD solicitations, MLDv2 reports) with its MAC on its tap; an instance without ip6:
    nothing (``ocs-no-ipv6``); then DROP (``ocs-spoof6``)."""
    a, rules = "-A %s" % ANTISPOOF, []
    for inst in sorted(host.instances, key=lambda i: i.ip):
        if inst.ip6 is None:
            rules.append("%s -i %s %s -j DROP" % (a, inst.interface, _comment("ocs-no-ipv6")))
            continue
        mac, note = "-m mac --mac-source %s" % inst.mac, _comment(inst.name)
        rules += ["%s -s %s/128 -i %s %s %s -j RETURN" % (a, ntoa6(inst.ip6), inst.interface, mac, note),
                  "%s -s %s -i %s %s %s -j RETURN" % (a, LINK_LOCAL6, inst.interface, mac, note)]
        rules += ["%s -s ::/128 -i %s -p ipv6-icmp %s -m icmp6 --icmpv6-type %d %s -j RETURN"
                  % (a, inst.interface, mac, kind, note) for kind in (135, 143)]
    rules.append("%s %s -j DROP" % (a, _comment("ocs-spoof6")))
    return rules


def guard6_rules():
    """OCS-GUARD6: what no instance may send (each counted), and NAs to their target check."""
    a = "-A %s" % GUARD6
    rules = ["%s %s %s -j DROP" % (a, _icmp6(kind), _comment(word))
             for kind, word in ((134, "ocs-ra6"), (137, "ocs-redirect6"), (138, "ocs-renumbering6"))]
    return rules + ["%s -p udp -m udp --sport 547 %s -j DROP" % (a, _comment("ocs-dhcp6-server")),
                    "%s %s -j %s" % (a, _icmp6(136), NA6)]


def na6_rules(host):
    """OCS-NA6: a neighbour advertisement's target is a link-local address or the sender's own ip6
    (one rule per instance with ip6, sorted by ip6); anything else is dropped (``ocs-na-spoof6``)."""
    a = "-A %s" % NA6
    rules = ["%s -m u32 --u32 %s %s -j RETURN" % (a, LINK_LOCAL_TARGET_U32, _comment("ocs-na-link-local"))]
    rules += ["%s -i %s -m u32 --u32 %s %s -j RETURN" % (a, inst.interface, target_u32(inst.ip6), _comment(inst.name))
              for inst in _with_ip6(host)]
    return rules + ["%s %s -j DROP" % (a, _comment("ocs-na-spoof6"))]


def _with_ip6(host):
    return sorted((i for i in host.instances if i.ip6 is not None), key=lambda i: i.ip6)


def open_inbound6(fab, inst):
    """Whether anyone may open IPv6 flows to ``inst``: its own ``inbound6``, else the fabric's
    (``floating``: when it has a floating IP)."""
    mode = inst.inbound6 or fab.inbound6
    return mode == "open" or (mode == "floating" and inst.floating_ip is not None)


def inbound6_rules(fab, host):
    """OCS-INBOUND6: new flows to instances (``-o tap``) from outside the fabric reach only the open
    ones (:func:`open_inbound6`); replies, packet-too-big and echo requests always pass, and every
    source inside ``internal_ranges6``. The rest is dropped (``ocs-inbound6``)."""
    a = "-A %s" % INBOUND6
    rules = ["%s -m conntrack --ctstate RELATED,ESTABLISHED %s -j RETURN" % (a, _comment("ocs-replies")),
             "%s %s %s -j RETURN" % (a, _icmp6(2), _comment("ocs-packet-too-big")),
             "%s %s %s -j RETURN" % (a, _icmp6(128), _comment("ocs-ping"))]
    rules += ["%s -s %s %s -j RETURN" % (a, net.text, _comment("ocs-internal")) for net in fab.internal_ranges6]
    rules += ["%s -d %s/128 -o %s %s -j RETURN" % (a, ntoa6(i.ip6), i.interface, _comment(i.name))
              for i in _with_ip6(host) if open_inbound6(fab, i)]
    return rules + ["%s %s -j DROP" % (a, _comment("ocs-inbound6"))]


def guard6_rules_of(fab, host):
    """Every IPv6 tap rule of a dual-stack hypervisor, chain by chain."""
    return (input6_rules(fab) + forward6_rules(fab) + antispoof6_rules(host) + guard6_rules() + na6_rules(host)
            + inbound6_rules(fab, host) + tenant_rules(fab, six=True) + connlimit_rules(fab, host, six=True))


def ipv6_lines(fab, host=None):
    """The ``ip6tables-restore`` lines: on a dual-stack fabric's hypervisors the IPv6 guards and
    inbound policy (:func:`guard6_rules_of`), on an IPv4-only one's no IPv6 from instance taps at
    all; the host policy (unnumbered BGP runs over link-local IPv6; sshd answers on IPv6 too)."""
    tap = "-i %s+" % fab.instance_ifname_prefix
    if host is not None and host.role == "hypervisor" and fab.dual_stack:
        lines = ["*filter"] + _declare(CHAINS6_HYPERVISOR) + guard6_rules_of(fab, host)
    else:
        lines = ["*filter"] + _declare(CHAINS6)
    if host is None or (host.role == "hypervisor" and not fab.dual_stack):
        lines += [
            "-A %s %s %s -j DROP" % (INPUT, tap, _comment("ocs-no-ipv6")),
            "-A %s %s %s -j DROP" % (FORWARD, tap, _comment("ocs-no-ipv6")),
        ]
    if host is not None:
        policy = host_rules6(fab, host)
        if policy:
            lines.append("-A %s -j %s" % (INPUT, HOST))
        lines += policy
    lines.append("COMMIT")
    return lines + (_raw(host, edge_rules6(fab, host)) if host is not None else [])


def artifacts(fab, host):
    """The filter rules files of a fabric host (IPv4 and IPv6)."""
    return [
        Artifact(FILTER_PATH, "iptables", "ocs_firewall", "etc/ocs-l3/iptables-filter.rules.j2",
                 {"_ocs_firewall_rules": text(filter_lines(fab, host))}),
        Artifact(FILTER6_PATH, "ip6tables", "ocs_firewall", "etc/ocs-l3/ip6tables-filter.rules.j2",
                 {"_ocs_firewall_rules6": text(ipv6_lines(fab, host))}),
    ]
