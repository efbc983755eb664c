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

The project is IPv4-only: :func:`ipv6_lines` drops every IPv6 packet that
arrives on an instance tap (INPUT and FORWARD), so an instance cannot reach
the host's daemons over its link-local address either.
"""

from .addr import ntoa
from .artifact import Artifact, text
from .conntrack import sized_max

from .constants import FILTER6_PATH, FILTER_PATH  # noqa: F401
from .constants import FILTER_ANTISPOOF as ANTISPOOF, FILTER_CHAINS as CHAINS, FILTER_CHAINS6 as CHAINS6  # noqa: F401
from .constants import FILTER_CONNLIMIT as CONNLIMIT, FILTER_DHCP_MAC as DHCP_MAC
from .constants import FILTER_FORWARD as FORWARD, FILTER_INPUT as INPUT
from .constants import FILTER_HOST as HOST, FILTER_TENANT as TENANT, RAW_CHAINS
from .host_policy import edge_rules, host_rules, host_rules6, notrack_rules, tenant_rules

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


def _cap(limit):
    return ("-m connlimit --connlimit-above %d --connlimit-mask 32 --connlimit-saddr %s "
            "-j REJECT --reject-with icmp-admin-prohibited" % (limit, _comment("ocs-connlimit")))


def connlimit_rules(fab, host):
    """OCS-CONNLIMIT: new connections from a tap beyond the instance's cap are rejected (counted,
    ``ocs-connlimit``). Instances with a limit of their own (sorted by fixed IP) get it and leave;
    every other source is capped at the fabric's limit by one rule (connlimit counts per source /32)."""
    rules = []
    for inst in sorted(host.instances, key=lambda i: i.ip):
        if conn_limit(fab, inst) == fab.conn_limit:
            continue
        match = "-s %s/32 -i %s" % (ntoa(inst.ip), inst.interface)
        rules.append("-A %s %s %s" % (CONNLIMIT, match, _cap(conn_limit(fab, inst))))
        rules.append("-A %s %s %s -j RETURN" % (CONNLIMIT, match, _comment(inst.name)))
    rules.append("-A %s %s" % (CONNLIMIT, _cap(fab.conn_limit)))
    return rules


def conntrack_max(fab, host):
    """The conntrack table a hypervisor needs (the rule of :mod:`conntrack`): a base plus every
    local instance's cap, so the instances together cannot fill it; None on other hosts (spines
    and ToRs do not track transit, gateways keep the kernel's size)."""
    if host.role != "hypervisor":
        return None
    return sized_max(conn_limit(fab, i) for i in host.instances)


def _declare(chains):
    return [":%s - [0:0]" % chain for chain in chains]


def _raw(host, edge=()):
    """The table raw block every filter file carries (the jump into OCS-NOTRACK is uniform;
    OCS-EDGE is declared everywhere, entered from OCS-NOTRACK where it has ``edge`` rules)."""
    return ["*raw"] + _declare(RAW_CHAINS) + notrack_rules(host, edge) + list(edge) + ["COMMIT"]


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


def ipv6_lines(fab, host=None):
    """The ``ip6tables-restore`` lines: no IPv6 from instance taps at all (hypervisors), the host
    policy (unnumbered BGP runs over link-local IPv6; sshd answers on IPv6 too)."""
    tap = "-i %s+" % fab.instance_ifname_prefix
    lines = ["*filter"] + _declare(CHAINS6)
    if host is None or host.role == "hypervisor":
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
    return lines + (_raw(host) if host is not None else [])


def artifacts(fab, host):
    """The filter rules files of a fabric host (IPv4 and IPv6)."""
    return [
        Artifact(FILTER_PATH, "iptables", "ocs_firewall", "etc/ocs-l3/iptables-filter.rules.j2",
                 {"_ocs_firewall_rules": text(filter_lines(fab, host))}),
        Artifact(FILTER6_PATH, "ip6tables", "ocs_firewall", "etc/ocs-l3/ip6tables-filter.rules.j2",
                 {"_ocs_firewall_rules6": text(ipv6_lines(fab, host))}),
    ]
