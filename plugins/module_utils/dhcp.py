# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""DHCP for the instances of one hypervisor: a dnsmasq of its own, DHCP only.

Addressing (one design)
-----------------------
Each instance gets its fixed IP with its rack subnet's netmask, and the
subnet's gateway IP (``ocs_racks.<id>.instance_gateway``, default the first
host) as router. The hypervisor puts that gateway IP on every instance
tap with ``noprefixroute``, routes each instance as a /32 on its tap
(:func:`ocs_l3.routes.hypervisor_lines`) and answers ARP for the rest of the
subnet (proxy ARP, set by the routes role): an instance reaches an instance
of another hypervisor by routing, never by L2. No classless static routes
(option 121) are sent, so clients use the router option (3). DNS servers,
domain and MTU come from ``ocs_fabric``; the lease time from
``ocs_fabric.dhcp_lease_time``.

Files (paths on the hypervisor)
-------------------------------
- :data:`CONFIG_PATH`: the main configuration. It depends only on the rack
  and the fabric (a tagged ``dhcp-range`` + router per instance subnet of the
  rack), so adding or removing an instance never changes it. A change here is
  a restart.
  ``dhcp-ignore-clid``: clients are known by their MAC (``chaddr``) only, which
  the hypervisor's ``OCS-DHCP-MAC`` chain ties to the tap; a client identifier
  (option 61) is not, so a neighbour sending another instance's
  ``01:<mac>`` client id with its own chaddr would otherwise find and release
  that instance's lease (issue 18).
- :data:`HOSTS_PATH`: one ``mac,ip,hostname,lease`` line per local instance
  (``mac,ip,[ip6],hostname,lease`` for one with an IPv6 address).
  dnsmasq re-reads it on SIGHUP (same PID, leases kept). It is not an
  inotify-watched ``dhcp-hostsdir``, so a half-written file is never read.
- :data:`UNIT_PATH`: the systemd unit, ``dnsmasq -k -C`` on our own file
  (never ``/etc/dnsmasq.conf`` or ``/etc/dnsmasq.d``, which a system
  dnsmasq reads).

IPv6 (a dual-stack fabric, a rack with IPv6 instance subnets)
-------------------------------------------------------------
Router advertisements and stateful DHCPv6, both from the same dnsmasq, on
the instance taps only. Every instance tap carries the link-local router
address ``constants.GATEWAY6_LINK_LOCAL`` and the global gateway address of
its subnet (:func:`ocs_l3.model.gateway6_of`, ``noprefixroute``); each
instance is routed as a /128 on its tap. dnsmasq 2.90 serves DHCPv6 and sends
RAs on an interface only for a ``dhcp-range`` holding a global address of that
interface: the gateway address is what ties a tap to its subnet's range.
The router address goes on a tap with ``nodad`` (usable at once): dnsmasq
sends a tap's first RA as soon as its global address appears, and from the
tap's EUI-64 link-local while the router address is still tentative, which
would then be a guest's default router (seen in the namespace test).

- ``enable-ra`` and one range per IPv6 instance subnet of the rack, tagged
  ``ocs6_<N>``: ``static`` (only the host file's addresses are handed out),
  ``off-link`` (the prefix is advertised without the L flag, so a guest adds
  no on-link route and sends everything to its router); the RA carries the M
  (and O) flag, not A (no SLAAC address). The guest's default route is the
  RA's source, the tap's link-local router address. The guest gets its fixed
  address as a /128 (ISC dhclient) and reaches every other address, in its
  subnet or not, through the router.
- ``ra-param=<prefix>*,mtu:<mtu>,<interval>,<lifetime>``: the RA carries
  ``ocs_fabric.mtu``, as the DHCPv4 MTU option does; interval and router
  lifetime are ``constants.RA_INTERVAL`` and ``RA_ROUTER_LIFETIME`` (dnsmasq's
  defaults, spelled out: the agent's RAs use the same). dnsmasq sends its
  periodic RAs to one tap per range only: the agent refreshes every IPv6 tap
  (module_utils/agent.py says why).
- The range's prefix length is the subnet's, at least 64 (dnsmasq's minimum):
  in a subnet wider than a /64 only the /64 holding the gateway address (the
  subnet's first) is served. Addresses derived from the IPv4 address
  (``instance_ip6_from_ip4``) lie there; an explicit ``ip6`` outside it is a validation error.
- A DHCPv6 client is known by the MAC address of its packets (dnsmasq reads it
  from the neighbour table of the tap), never by its DUID: a DUID-LLT, -EN or
  -UUID client gets its address all the same.
- DNS over IPv6: ``ocs_fabric.dns_servers6`` (IPv6 resolvers) go out as the
  DHCPv6 DNS option (23) and, from the same option, as the RAs' RDNSS; with
  them ``ocs_fabric.domain`` as the DHCPv6 domain search list (24) and the RAs'
  DNSSL. ``port=0`` keeps dnsmasq from advertising itself. Without
  ``dns_servers6`` nothing DNS goes out over IPv6 (the DHCPv4 lease carries
  ``dns_servers``). No metadata over IPv6 (docs/ipv6.md says why).
"""

from .addr import ntoa, ntoa6
from .artifact import Artifact, text
from .model import SERVED6_PLEN
from .memo import per_host
from .constants import DHCP_CONFIG_PATH as CONFIG_PATH, DHCP_HOSTS_PATH as HOSTS_PATH, \
    DHCP_LEASE_PATH as LEASE_PATH, DHCP_UNIT_PATH as UNIT_PATH, DNSMASQ, RA_INTERVAL, RA_ROUTER_LIFETIME


@per_host
def host_lines(fab, host):
    """The host file of a hypervisor: ``mac,ip,hostname,lease-seconds`` per
    local instance, sorted by IP (stable, so an unchanged fabric rewrites
    nothing); ``mac,ip,[ip6],hostname,lease-seconds`` for an instance with an
    IPv6 address in a dual-stack fabric (one lease time for both)."""
    lease = fab.dhcp_lease_time
    return ["%s,%s,%s%s,%d" % (inst.mac, ntoa(inst.ip), _ip6_field(fab, inst), inst.name, lease)
            for inst in sorted(host.instances, key=lambda i: i.ip)]


def _ip6_field(fab, inst):
    """``[ip6],`` of an instance's host line, or nothing (IPv4 only)."""
    if not fab.dual_stack or inst.ip6 is None:
        return ""
    return "[%s]," % ntoa6(inst.ip6)


def config_lines(fab, host):
    """dnsmasq directives of a hypervisor (comments are in the template).

    One ``dhcp-range`` per instance subnet of the rack, tagged ``ocs<N>``,
    with that subnet's gateway as router: dnsmasq picks the range by the
    address of the tap a request arrives on, so an instance in a second
    subnet gets that subnet's mask and gateway.
    """
    lease = fab.dhcp_lease_time
    lines = [
        "port=0",
        "no-resolv",
        "no-hosts",
        "interface=%s*" % fab.instance_ifname_prefix,
        "except-interface=lo",
        "bind-dynamic",
        "dhcp-authoritative",
        "dhcp-ignore=tag:!known",
        "dhcp-ignore-clid",
        "pid-file=",
        "dhcp-leasefile=%s" % LEASE_PATH,
        "dhcp-hostsfile=%s" % HOSTS_PATH,
    ]
    rack = host.rack
    for i, (net, gateway_ip) in enumerate(zip(rack.instance_subnets, rack.gateway_ips)):
        tag = "ocs%d" % i
        lines.append("dhcp-range=set:%s,%s,static,%s,%d" % (tag, ntoa(net.first), net.netmask, lease))
        lines.append("dhcp-option=tag:%s,option:router,%s" % (tag, ntoa(gateway_ip)))
    if fab.dns_servers:
        lines.append("dhcp-option=option:dns-server,%s" % ",".join(ntoa(ip) for ip in fab.dns_servers))
    if fab.domain:
        lines.append("dhcp-option=option:domain-name,%s" % fab.domain)
    lines.append("dhcp-option=option:mtu,%d" % fab.mtu)
    return lines + config6_lines(fab, host)


def config6_lines(fab, host):
    """Router advertisements and static DHCPv6 (see the module docstring):
    nothing for an IPv4-only fabric or a rack without IPv6 instance subnets.
    Like the IPv4 lines they depend on the rack and the fabric only."""
    subnets = host.rack.instance_subnets6 if fab.dual_stack else []
    if not subnets:
        return []
    lines = ["enable-ra", "ra-param=%s*,mtu:%d,%d,%d" % (fab.instance_ifname_prefix, fab.mtu, RA_INTERVAL,
                                                         RA_ROUTER_LIFETIME)]
    for i, net in enumerate(subnets):
        lines.append("dhcp-range=set:ocs6_%d,%s,static,off-link,%d,%d"
                     % (i, ntoa6(net.first), max(net.prefixlen, SERVED6_PLEN), fab.dhcp_lease_time))
    if fab.dns_servers6:
        lines.append("dhcp-option=option6:dns-server,%s" % ",".join("[%s]" % ntoa6(ip) for ip in fab.dns_servers6))
        if fab.domain:
            lines.append("dhcp-option=option6:domain-search,%s" % fab.domain)
    return lines


IPV6_NOTE = (
    "# - IPv6: router advertisements (enable-ra; M flag, prefixes off-link: no",
    "#   on-link route, no SLAAC; the fabric MTU) and static-only DHCPv6, one",
    "#   tagged range per IPv6 instance subnet of the rack. The tap's global",
    "#   gateway address (noprefixroute) selects the range; guests route through",
    "#   the RA's source, the tap's link-local router address. Host file lines",
    "#   carry the IPv6 address as [ip6]; a client is known by its MAC, not its DUID.",
)
"""The main config's header lines on a hypervisor with IPv6 instances (the template prints them)."""


def artifacts(fab, host):
    """The DHCP files of a hypervisor: main config, host file, systemd unit."""
    if host.role != "hypervisor":
        return []
    config = text(config_lines(fab, host))
    return [
        Artifact(CONFIG_PATH, "dnsmasq", "ocs_dhcp", "etc/ocs-l3/dnsmasq.conf.j2",
                 {"_ocs_dhcp_config_text": config,
                  "_ocs_dhcp_ipv6_note": text(IPV6_NOTE) if "enable-ra" in config else ""}),
        Artifact(HOSTS_PATH, "dnsmasq-hosts", "ocs_dhcp", "etc/ocs-l3/dhcp-hosts.j2",
                 {"_ocs_dhcp_hosts_text": text(host_lines(fab, host))}),
        Artifact(UNIT_PATH, "systemd", "ocs_dhcp", "etc/systemd/system/ocs-dhcp.service.j2",
                 {"_ocs_dhcp_dnsmasq": DNSMASQ, "_ocs_dhcp_config_path": CONFIG_PATH}),
    ]
