# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fabric's own hosts closed to tenants and to the internet.

Three chains of ours, in the filter files every fabric host gets (firewall.py
assembles them; the ``ocs_iptables_chains`` module applies them atomically,
foreign rules untouched):

``OCS-HOST`` (``INPUT -> OCS-INPUT -> OCS-HOST``, every host, IPv4 and IPv6):
what may open a connection to the host itself::

    -i lo                                              ACCEPT
    ctstate RELATED,ESTABLISHED                        ACCEPT   (replies, ICMP errors of own flows)
    icmp fragmentation-needed / icmpv6 packet-too-big  ACCEPT   (never rate limited)
    icmpv6 neighbour discovery (133-136, hop limit 255) ACCEPT
    icmp(v6), at most 50/s (burst 100)                 ACCEPT, the rest DROP
    -d PUBLIC/32                                       DROP     (the public address serves translations only)
    -s PEER -p tcp --dport 179 (BFD: udp 3784,3785)    ACCEPT   (each configured BGP session; unnumbered:
                                                                 -i IF -s fe80::/10, in IPv6)
    -s MANAGEMENT_RANGE                                ACCEPT   (SSH and any other management; IPv6 ranges
                                                                 in the IPv6 chain)
    -s MONITORING_RANGE -p tcp --dport 9100            ACCEPT   (node_exporter: ocs_l3.prom; ocs-monitoring)
    -s FROM -p PROTO --dport PORT                      ACCEPT   (host_services of this role)
    -s INSTANCE_SUBNETS -d ADDRESS -p PROTO --dport P  ACCEPT   (an instance service this host serves)
                                                       DROP     (counted: ocs-host-drop)

On a hypervisor, packets from instance taps never reach ``OCS-HOST``: the tap
rules of ``OCS-INPUT`` decide them first (DHCP, metadata, ping, then DROP).

``OCS-TENANT`` (hypervisors, ``FORWARD -> OCS-FORWARD``, from taps, after anti-spoofing)::

    ctstate RELATED,ESTABLISHED                        RETURN   (replies to connections the fabric opened)
    -d SERVICE/32 -p PROTO --dport PORT                RETURN   (instance_services inside the infrastructure:
                                                                 the metadata target and DNS by default)
    -d INFRASTRUCTURE_NET                              DROP     (counted: ocs-infra)

so an instance reaches instances (any host, any rack, floating IPs) and the
internet, and of the fabric only its services.

In a dual-stack fabric the hypervisors' IPv6 ``OCS-TENANT`` is the same chain over
``Fabric.infrastructure6`` (every host's ``ocs_address6``) and the IPv6 instance services
(``instance_services6``: ``dns_servers6``, IPv6 ``instance_services``); the owning host's IPv6
``OCS-HOST`` accepts such a service from the IPv6 instance subnets.

``OCS-NOTRACK`` (table raw, ``PREROUTING``; spines and ToRs): ``-m addrtype
! --dst-type LOCAL -j CT --notrack``: transit traffic never enters
conntrack, so the host policy's state matching can never make a full
conntrack table drop forwarded packets. Hypervisors (host NAT) and NAT
gateways (SNAT) track transit by design; the chain is declared there empty.

``OCS-EDGE`` (table raw, spines with border links, see edge.py): ingress
anti-spoofing, the first rule of ``OCS-NOTRACK`` jumps to it (raw
``PREROUTING`` keeps one jump of ours, first)::

    -s PEER/32 -i BORDER_IF                            RETURN   (the border peers on that link)
    -s OWN_NET -i BORDER_IF                            DROP     (counted: ocs-edge-spoof; instance subnets,
                                                                 floating, internal, infrastructure, collapsed)
"""

from .addr import aton6, ntoa, ntoa6
from .constants import FILTER_HOST as HOST, FILTER_TENANT as TENANT, RAW_EDGE as EDGE, RAW_NOTRACK as NOTRACK
from .edge import edge_entries, edge_entries6
from .frr import policy as bgp_policy

NODE_EXPORTER_PORT = 9100
"""node_exporter (the ocs_l3.prom textfile among its metrics): open to ``monitoring_ranges``."""
ICMP_LIMIT = "-m limit --limit 50/sec --limit-burst 100"
BFD_PORTS = "3784,3785"
LINK_LOCAL6 = "fe80::/10"
ROUTERS = ("spine", "tor")


def _c(word):
    return "-m comment --comment %s" % word


def bgp_peers(fab, host):
    """(numbered IPv4 peer addresses, interfaces of unnumbered sessions) of the host's BGP sessions."""
    numbered, unnumbered = set(), set()
    for n in bgp_policy(fab, host).neighbors:
        if n.interface:
            unnumbered.add(n.key)
        elif ":" not in n.key:
            numbered.add(n.key)
    return sorted(numbered, key=lambda a: tuple(int(x) for x in a.split("."))), sorted(unnumbered)


def bgp_peers6(fab, host):
    """Numbered IPv6 peer addresses of the host's BGP sessions (a spine's IPv6 border sessions)."""
    return sorted({n.key for n in bgp_policy(fab, host).neighbors if not n.interface and ":" in n.key}, key=aton6)


def bfd_peers(fab, host):
    """Keys of the host's sessions that run BFD: every fabric session with ``ocs_fabric.bgp.bfd``,
    each border session whose settings (``ocs_fabric.border``, the border peer's own) turn it on."""
    return {n.key for n in bgp_policy(fab, host).neighbors
            if (n.session or {}).get("bfd") or (n.session is None and fab.bgp.get("bfd"))}


def served_services(fab, host):
    """The instance services whose address is one of this host's own addresses."""
    own = {host.address} | {link.address for link in list(host.uplinks) + list(host.downlinks)}
    return [(ip, proto, port) for ip, proto, port in fab.instance_services if ip in own]


def instance_subnets(fab, six=False):
    """Every rack's instance subnets (``six``: the IPv6 ones), sorted."""
    return sorted((n for r in fab.racks.values() for n in (r.instance_subnets6 if six else r.instance_subnets)),
                  key=lambda n: n.first)


def monitoring_rules(append, sources):
    """node_exporter scraped from each monitoring range (``append``: ``-A CHAIN``)."""
    return ["%s -s %s -p tcp -m tcp --dport %d %s -j ACCEPT" % (append, net, NODE_EXPORTER_PORT, _c("ocs-monitoring"))
            for net in sources]


def host_rules(fab, host):
    """Rules of OCS-HOST (IPv4) of one host; [] when the host policy is off."""
    if not fab.host_policy:
        return []
    a = "-A %s" % HOST
    rules = [
        "%s -i lo -j ACCEPT" % a,
        "%s -m conntrack --ctstate RELATED,ESTABLISHED %s -j ACCEPT" % (a, _c("ocs-replies")),
        "%s -p icmp -m icmp --icmp-type 3/4 %s -j ACCEPT" % (a, _c("ocs-frag-needed")),
        "%s -p icmp %s %s -j ACCEPT" % (a, ICMP_LIMIT, _c("ocs-icmp")),
        "%s -p icmp %s -j DROP" % (a, _c("ocs-icmp-limit")),
    ]
    if host.public_address is not None:
        rules.append("%s -d %s/32 %s -j DROP" % (a, ntoa(host.public_address), _c("ocs-public")))
    numbered, dummy = bgp_peers(fab, host)
    bfd = bfd_peers(fab, host)
    for peer in numbered:
        rules.append("%s -s %s/32 -p tcp -m tcp --dport 179 %s -j ACCEPT" % (a, peer, _c("ocs-bgp")))
        if peer in bfd:
            rules.append("%s -s %s/32 -p udp -m multiport --dports %s %s -j ACCEPT" % (a, peer, BFD_PORTS, _c("ocs-bfd")))
    for net in fab.management_ranges:
        rules.append("%s -s %s %s -j ACCEPT" % (a, net.text, _c("ocs-management")))
    rules += monitoring_rules(a, [net.text for net in fab.monitoring_ranges])
    for svc in fab.host_services:
        if host.role in svc["roles"]:
            for net in svc["sources"]:
                rules.append("%s -s %s -p %s -m %s --dport %d %s -j ACCEPT"
                             % (a, net.text, svc["proto"], svc["proto"], svc["port"], _c("ocs-service")))
    for ip, proto, port in served_services(fab, host):
        for net in instance_subnets(fab):
            rules.append("%s -s %s -d %s/32 -p %s -m %s --dport %d %s -j ACCEPT"
                         % (a, net.text, ntoa(ip), proto, proto, port, _c("ocs-instance-service")))
    rules.append("%s %s -j DROP" % (a, _c("ocs-host-drop")))
    return rules


def host_rules6(fab, host):
    """Rules of OCS-HOST (IPv6): link-local BGP of unnumbered sessions, ND, ICMPv6; [] when off."""
    if not fab.host_policy:
        return []
    a = "-A %s" % HOST
    rules = [
        "%s -i lo -j ACCEPT" % a,
        "%s -m conntrack --ctstate RELATED,ESTABLISHED %s -j ACCEPT" % (a, _c("ocs-replies")),
        "%s -p ipv6-icmp -m icmp6 --icmpv6-type 2 %s -j ACCEPT" % (a, _c("ocs-packet-too-big")),
    ]
    for nd in (133, 134, 135, 136):
        rules.append("%s -p ipv6-icmp -m icmp6 --icmpv6-type %d -m hl --hl-eq 255 %s -j ACCEPT" % (a, nd, _c("ocs-nd")))
    rules += [
        "%s -p ipv6-icmp %s %s -j ACCEPT" % (a, ICMP_LIMIT, _c("ocs-icmp")),
        "%s -p ipv6-icmp %s -j DROP" % (a, _c("ocs-icmp-limit")),
    ]
    dummy, unnumbered = bgp_peers(fab, host)
    for net in fab.management_ranges6:
        rules.append("%s -s %s %s -j ACCEPT" % (a, net, _c("ocs-management")))
    rules += monitoring_rules(a, fab.monitoring_ranges6)
    for svc in fab.host_services:
        if host.role in svc["roles"]:
            for net in svc["sources6"]:
                rules.append("%s -s %s -p %s -m %s --dport %d %s -j ACCEPT"
                             % (a, net, svc["proto"], svc["proto"], svc["port"], _c("ocs-service")))
    for ip6, proto, port in fab.instance_services6:
        if ip6 == host.address6:
            rules += ["%s -s %s -d %s/128 -p %s -m %s --dport %d %s -j ACCEPT"
                      % (a, net.text, ntoa6(ip6), proto, proto, port, _c("ocs-instance-service"))
                      for net in instance_subnets(fab, six=True)]
    bfd = bfd_peers(fab, host)
    for peer in bgp_peers6(fab, host):
        rules.append("%s -s %s/128 -p tcp -m tcp --dport 179 %s -j ACCEPT" % (a, peer, _c("ocs-bgp")))
        if peer in bfd:
            rules.append("%s -s %s/128 -p udp -m multiport --dports %s %s -j ACCEPT" % (a, peer, BFD_PORTS, _c("ocs-bfd")))
    for ifname in unnumbered:
        rules.append("%s -s %s -i %s -p tcp -m tcp --dport 179 %s -j ACCEPT" % (a, LINK_LOCAL6, ifname, _c("ocs-bgp")))
        if fab.bgp.get("bfd"):
            rules.append("%s -s %s -i %s -p udp -m multiport --dports %s %s -j ACCEPT"
                         % (a, LINK_LOCAL6, ifname, BFD_PORTS, _c("ocs-bfd")))
    rules.append("%s %s -j DROP" % (a, _c("ocs-host-drop")))
    return rules


def tenant_rules(fab, six=False):
    """Rules of OCS-TENANT: of the infrastructure, instances reach only their services (``six``: the
    IPv6 chain, ``Fabric.infrastructure6`` and ``instance_services6``)."""
    a = "-A %s" % TENANT
    infra, services, printed, width = ((fab.infrastructure6, fab.instance_services6, ntoa6, 128) if six
                                       else (fab.infrastructure, fab.instance_services, ntoa, 32))
    rules = ["%s -m conntrack --ctstate RELATED,ESTABLISHED %s -j RETURN" % (a, _c("ocs-replies"))]
    for ip, proto, port in services:
        if any(ip in net for net in infra):
            rules.append("%s -d %s/%d -p %s -m %s --dport %d %s -j RETURN"
                         % (a, printed(ip), width, proto, proto, port, _c("ocs-instance-service")))
    for net in infra:
        rules.append("%s -d %s %s -j DROP" % (a, net.text, _c("ocs-infra")))
    return rules


def edge_rules(fab, host):
    """Rules of OCS-EDGE (table raw, IPv4): forged sources from the border dropped. [] on hosts
    without border links, and on NAT gateways (their edge rules live in the nft table)."""
    if host.role == "nat_gateway":
        return []
    rules = []
    for ifname, exempt, nets in edge_entries(fab, host):
        rules += ["-A %s -s %s/32 -i %s %s -j RETURN" % (EDGE, ntoa(ip), ifname, _c("ocs-edge-peer")) for ip in exempt]
        rules += ["-A %s -s %s -i %s %s -j DROP" % (EDGE, net.text, ifname, _c("ocs-edge-spoof")) for net in nets]
    return rules


def edge_rules6(fab, host):
    """Rules of OCS-EDGE (table raw, IPv6): forged IPv6 sources from the border dropped; [] on
    hosts without an IPv6 border link (edge.edge_entries6)."""
    rules = []
    for ifname, exempt, nets in edge_entries6(fab, host):
        rules += ["-A %s -s %s/128 -i %s %s -j RETURN" % (EDGE, ntoa6(ip), ifname, _c("ocs-edge-peer")) for ip in exempt]
        rules += ["-A %s -s %s -i %s %s -j DROP" % (EDGE, net.text, ifname, _c("ocs-edge-spoof")) for net in nets]
    return rules


def notrack_rules(host, edge=()):
    """Rules of OCS-NOTRACK (table raw): first the jump into OCS-EDGE when ``edge`` (its rules)
    is not empty, then routers never track transit traffic."""
    rules = ["-A %s -j %s" % (NOTRACK, EDGE)] if edge else []
    if host.role in ROUTERS:
        rules.append("-A %s -m addrtype ! --dst-type LOCAL %s -j CT --notrack" % (NOTRACK, _c("ocs-transit")))
    return rules
