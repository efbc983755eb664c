# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The scale-out NAT tier (``nat_mode: gateway``): one nftables table per gateway.

Every NAT gateway holds the whole floating map and translates floating IPs
*statelessly* in both directions, so a reply that ECMP hashes to another
gateway is translated exactly like the request was, and no flow has to come
back to the gateway it went through. Why nftables and not ``tc``/iptables:
iptables cannot rewrite an address without conntrack; ``tc action nat`` can,
but needs one filter per address and direction per interface, and its
updates are per filter. An nftables *map* looks an address up in one rule
whatever its size, and a change is one ``add``/``delete element`` (the
apply module sends only the difference, in one transaction).

Table ``ip ocs_natgw`` (all rules match the packet's original addresses)::

    set internal        = internal_ranges
    set gateway_publics = every gateway's ocs_public_address
    map fip_to_fixed    = floating IP : fixed IP   (every instance with one)
    map fixed_to_fip    = fixed IP : floating IP
    set edge_spoofed    = what the border may never send from (edge.py)
    chain raw_prerouting  (filter, prerouting, priority raw: before conntrack)
      0. iifname BORDER_IF, saddr != its border peers, saddr in edge_spoofed
                                                 drop, counted "ocs-edge-spoof" (ingress
                                                 anti-spoofing: before any translation)
      1. daddr in gateway_publics                return   (replies to a gateway's SNAT: conntrack
                                                 here, or routed on to the gateway that owns it)
      2. daddr in fip_to_fixed, saddr in fixed_to_fip    hairpin between floating IPs:
                                                 saddr -> floating, daddr -> fixed, notrack
      3. daddr in fip_to_fixed, saddr not internal       inbound: daddr -> fixed, notrack
      4. saddr in fixed_to_fip, daddr not internal, an ICMP error
                                                 drop, counted "icmp-error-fixed" (its quote
                                                 carries the fixed IP: see PMTUD below)
      5. saddr in fixed_to_fip, daddr not internal       outbound: saddr -> floating, notrack
    chain mss_forward (filter, forward, priority mangle)
         TCP SYN with MSS > min(mtu, edge_mtu) - 40      MSS set to it, counted "mss-clamp"
    chain nat_prerouting  (nat, dstnat)
         saddr internal, daddr in fip_to_fixed   dnat to the fixed IP (hairpin from an
                                                 address without a floating IP: stateful)
    chain nat_postrouting (nat, srcnat)
         saddr internal, ct status dnat          snat to PUBLIC   (that hairpin)
         saddr internal, daddr not internal      snat to PUBLIC   (outbound without floating IP)

Everything that rules 2, 3 and 5 translate is ``notrack``: no connection state, any
gateway can translate any packet. Sources without a floating IP are
source-NATed *statefully* to this gateway's own ``ocs_public_address``, which
only this gateway announces, so their replies come back to it (rule 1 hands
them to conntrack; a reply that reaches another gateway is routed on
untranslated).

Hairpin: an instance with a floating IP reaching another floating IP is
translated in both addresses at once (rule 2), so the callee sees the
caller's floating IP and its replies, translated the same way by whichever
gateway they reach, come from the callee's floating IP. A source without a
floating IP is DNATed and SNATed to the public address statefully; the
reply comes back to this gateway (rule 1) and conntrack answers from the
floating IP.

PMTUD, and why the tier clamps the MSS instead of translating ICMP errors:
an ICMP error quotes the header of the packet that caused it. For a
floating-IP flow the quote holds the floating IP (a "fragmentation needed"
from a hop beyond the border) or the fixed IP (a port unreachable an
instance sends). Rules 2, 3 and 5 rewrite the outer header only: the
instance would get a quote it has no socket for, and the internet would
see a fixed IP. Translating the quote statelessly is not possible here:
nftables (1.0.6) writes raw payload without updating the ICMP checksum
(``nft --debug=netlink``: ``csum_type 0``), conntrack translates quotes
only of flows it tracks, and ``tc action nat`` needs a filter per address.
So the tier (a) clamps the MSS of every TCP SYN it forwards, both
directions, to ``min(mtu, edge_mtu) - 40``, so TCP never sends a segment
that needs PMTUD up to ``edge_mtu``; (b) drops the outbound ICMP errors of
instances with a floating IP (rule 4), so no fixed IP leaves the fabric.
Limits (README, known issues): UDP and other non-TCP traffic larger than
the path still depends on PMTUD, which fails for floating-IP flows; a path
narrower than ``edge_mtu`` breaks TCP too; the internet gets no ICMP error
from such an instance (a closed UDP port looks filtered). Flows translated
statefully (SNAT, hairpin) get their ICMP errors translated by conntrack.

In ``nat_mode: host`` a gateway's file declares no table: the apply module
then deletes the table (nothing is left behind).
"""

from .addr import ntoa
from .artifact import Artifact, text

from .constants import NATGW_PATH, NFT_FAMILY as FAMILY, NFT_FIP_MAP as FIP_MAP, NFT_FIXED_MAP as FIXED_MAP
from .constants import NFT_EDGE_SET as EDGE_SET, NFT_INTERNAL_SET as INTERNAL_SET, NFT_PUBLIC_SET as PUBLIC_SET
from .constants import NFT_TABLE as TABLE
from .edge import edge_entries

# ICMP errors: they quote the packet that caused them (RFC 792), addresses included.
ICMP_ERRORS = "destination-unreachable, time-exceeded, parameter-problem"


def floating_map(fab):
    """[(floating, fixed)] of every instance with a floating IP, sorted by floating IP (ints)."""
    return sorted((inst.floating_ip, inst.ip) for inst in fab.instances() if inst.floating_ip is not None)


def clamped_mss(fab):
    """The MSS every TCP SYN through the tier is clamped to: what fits both the
    instances' MTU and the smallest path MTU beyond the border (``edge_mtu``)."""
    return min(fab.mtu, fab.edge_mtu) - 40


def _map(name, pairs):
    """A map declaration, one element per line (a changed mapping is a one-line diff)."""
    lines = ["\tmap %s {" % name, "\t\ttype ipv4_addr : ipv4_addr"]
    if pairs:
        elems = ["%s : %s" % (ntoa(k), ntoa(v)) for k, v in pairs]
        lines.append("\t\telements = {")
        lines += ["\t\t\t%s," % e for e in elems[:-1]] + ["\t\t\t%s" % elems[-1], "\t\t}"]
    return lines + ["\t}", ""]


def _edge(fab, host):
    """(set lines, first rules of raw_prerouting): the gateway's ingress anti-spoofing on its
    border links; ([], []) without border links."""
    entries = edge_entries(fab, host)
    if not entries:
        return [], []
    nets = entries[0][2]
    lines = ["\tset %s {" % EDGE_SET, "\t\ttype ipv4_addr", "\t\tflags interval",
             "\t\telements = { %s }" % ", ".join(n.text for n in nets), "\t}", ""]
    rules = ["\t\tiifname \"%s\" ip saddr != { %s } ip saddr @%s counter drop comment \"ocs-edge-spoof\""
             % (ifname, ", ".join(ntoa(ip) for ip in exempt), EDGE_SET) for ifname, exempt, dummy in entries]
    return lines, rules


def gateway_lines(fab, host):
    """The nft file of NAT gateway ``host``: the whole table in gateway mode,
    nothing but a comment in host mode (the module then removes the table)."""
    if fab.nat_mode != "gateway":
        return ["# nat_mode is host: this gateway translates nothing; table %s %s is removed." % (FAMILY, TABLE)]
    pub = ntoa(host.public_address)
    fmap = floating_map(fab)
    mss = clamped_mss(fab)
    lines = ["table %s %s {" % (FAMILY, TABLE),
             "\tset %s {" % INTERNAL_SET, "\t\ttype ipv4_addr", "\t\tflags interval",
             "\t\telements = { %s }" % ", ".join(n.text for n in fab.internal_ranges), "\t}", ""]
    publics = sorted(h.public_address for h in fab.by_role["nat_gateway"] if h.public_address is not None)
    lines += ["\tset %s {" % PUBLIC_SET, "\t\ttype ipv4_addr",
              "\t\telements = { %s }" % ", ".join(ntoa(p) for p in publics), "\t}", ""]
    lines += _map(FIP_MAP, fmap)
    lines += _map(FIXED_MAP, sorted((fixed, fip) for fip, fixed in fmap))
    edge_set, edge_rules = _edge(fab, host)
    lines += edge_set + [
        "\tchain raw_prerouting {",
        "\t\ttype filter hook prerouting priority raw; policy accept;",
    ] + edge_rules + [
        "\t\tip daddr @%s counter return comment \"to-public\"" % PUBLIC_SET,
        "\t\tip daddr @%s ip saddr @%s counter ip saddr set ip saddr map @%s ip daddr set ip daddr map @%s "
        "notrack comment \"hairpin\"" % (FIP_MAP, FIXED_MAP, FIXED_MAP, FIP_MAP),
        "\t\tip daddr @%s ip saddr != @%s counter ip daddr set ip daddr map @%s notrack comment \"inbound\""
        % (FIP_MAP, INTERNAL_SET, FIP_MAP),
        "\t\tip saddr @%s ip daddr != @%s icmp type { %s } counter drop comment \"icmp-error-fixed\""
        % (FIXED_MAP, INTERNAL_SET, ICMP_ERRORS),
        "\t\tip saddr @%s ip daddr != @%s counter ip saddr set ip saddr map @%s notrack comment \"outbound\""
        % (FIXED_MAP, INTERNAL_SET, FIXED_MAP),
        "\t}", "",
        "\tchain mss_forward {",
        "\t\ttype filter hook forward priority mangle; policy accept;",
        "\t\ttcp flags syn tcp option maxseg size > %d counter tcp option maxseg size set %d comment \"mss-clamp\""
        % (mss, mss),
        "\t}", "",
        "\tchain nat_prerouting {",
        "\t\ttype nat hook prerouting priority dstnat; policy accept;",
        "\t\tip saddr @%s ip daddr @%s counter dnat to ip daddr map @%s comment \"hairpin-snat\""
        % (INTERNAL_SET, FIP_MAP, FIP_MAP),
        "\t}", "",
        "\tchain nat_postrouting {",
        "\t\ttype nat hook postrouting priority srcnat; policy accept;",
        "\t\tip saddr @%s ct status dnat counter snat to %s comment \"hairpin-snat\"" % (INTERNAL_SET, pub),
        "\t\tip saddr @%s ip daddr != @%s counter snat to %s comment \"snat\"" % (INTERNAL_SET, INTERNAL_SET, pub),
        "\t}",
        "}",
    ]
    return lines


def artifacts(fab, host):
    """The nftables file of every NAT gateway (other roles get none)."""
    if host.role != "nat_gateway":
        return []
    return [Artifact(NATGW_PATH, "nftables", "ocs_natgw", "etc/ocs-l3/natgw.nft.j2",
                     {"_ocs_natgw_rules": text(gateway_lines(fab, host))})]
