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
- :data:`HOSTS_PATH`: one ``mac,ip,hostname,lease`` line per local instance.
  dnsmasq re-reads it on SIGHUP (same PID, leases kept). It is not an
  inotify-watched ``dhcp-hostsdir``, so a half-written file is never read.
- :data:`UNIT_PATH`: the systemd unit, ``dnsmasq -k -C`` on our own file
  (never ``/etc/dnsmasq.conf`` or ``/etc/dnsmasq.d``, which a system
  dnsmasq reads).
"""

from .addr import ntoa
from .artifact import Artifact, text
from .constants import DHCP_CONFIG_PATH as CONFIG_PATH, DHCP_HOSTS_PATH as HOSTS_PATH, \
    DHCP_LEASE_PATH as LEASE_PATH, DHCP_UNIT_PATH as UNIT_PATH, DNSMASQ


def host_lines(fab, host):
    """The host file of a hypervisor: ``mac,ip,hostname,lease-seconds`` per
    local instance, sorted by IP (stable, so an unchanged fabric rewrites
    nothing)."""
    lease = fab.dhcp_lease_time
    return ["%s,%s,%s,%d" % (inst.mac, ntoa(inst.ip), inst.name, lease)
            for inst in sorted(host.instances, key=lambda i: i.ip)]


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
    return lines


def artifacts(fab, host):
    """The DHCP files of a hypervisor: main config, host file, systemd unit."""
    if host.role != "hypervisor":
        return []
    return [
        Artifact(CONFIG_PATH, "dnsmasq", "ocs_dhcp", "etc/ocs-l3/dnsmasq.conf.j2",
                 {"_ocs_dhcp_config_text": text(config_lines(fab, host))}),
        Artifact(HOSTS_PATH, "dnsmasq-hosts", "ocs_dhcp", "etc/ocs-l3/dhcp-hosts.j2",
                 {"_ocs_dhcp_hosts_text": text(host_lines(fab, host))}),
        Artifact(UNIT_PATH, "systemd", "ocs_dhcp", "etc/systemd/system/ocs-dhcp.service.j2",
                 {"_ocs_dhcp_dnsmasq": DNSMASQ, "_ocs_dhcp_config_path": CONFIG_PATH}),
    ]
