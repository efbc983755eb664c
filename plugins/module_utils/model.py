# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fabric model: the objects :func:`ocs_l3.fabric.build` returns once the
inventory is valid. Addresses are ints (``addr.ntoa`` prints them), networks
are :class:`~ocs_l3.addr.Net`; IPv6 ones (optional: a fabric without
``ocs_fabric.internal_ranges6`` is IPv4-only) are ints too, printed by
``addr.ntoa6``, in attributes of their own (``address6``, ``ip6``, ...), and
:class:`~ocs_l3.addr.Net6`.

The classes compare by identity (``eq=False``), as they did before they were
dataclasses: a host, a rack or an instance is one object of the fabric.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field

from .addr import Net, Net6, collapse, collapse6

ROLE_GROUPS = ("spines", "tors", "hypervisors", "nat_gateways")
ROLE_OF_GROUP = {"spines": "spine", "tors": "tor", "hypervisors": "hypervisor", "nat_gateways": "nat_gateway"}
GROUP_OF_ROLE = {v: k for k, v in ROLE_OF_GROUP.items()}

HOST_KEYS = ("ocs_address", "ocs_rack", "ocs_uplinks", "ocs_downlinks", "ocs_asn", "ocs_public_address",
             "ocs_instances", "ocs_address6")
"""The host variables the model reads (the inventory passes on only these)."""

# Slots: no per-object dict (a fabric may hold 500k instances), and a typo in an
# attribute name fails. dataclass has them from Python 3.10; ansible-core 2.15,
# the oldest this collection supports, still runs on 3.9 (there without slots).
_SLOTS = {"slots": True} if sys.version_info >= (3, 10) else {}


def default_ifname(name, prefix):
    """Interface name for an instance: the prefix plus a hash of its name, <= 15 chars."""
    room = min(11, 15 - len(prefix))
    return prefix + hashlib.sha256(name.encode()).hexdigest()[:room]


@dataclass(eq=False, **_SLOTS)
class Rack:
    """A rack: its ASN, host subnet, instance subnets and, one per instance
    subnet in the same order, the instances' gateway IP in it (the address the
    hypervisors put on every instance tap); its ToRs and hypervisors; its IPv6
    instance subnets ([Net6], maybe none) and whether an instance without an
    ``ip6`` gets one derived from its IPv4 address (``ip6_from_ip4``)."""

    id: str
    asn: int
    host_subnet: Net
    instance_subnets: list
    gateway_ips: list
    tors: list = field(default_factory=list, repr=False)
    hypervisors: list = field(default_factory=list, repr=False)
    instance_subnets6: list = field(default_factory=list)
    ip6_from_ip4: bool = False

    def subnet_of(self, ip):
        """(instance subnet, its gateway IP) holding ``ip``, or (None, None)."""
        for net, gateway_ip in zip(self.instance_subnets, self.gateway_ips):
            if net.first <= ip <= net.last:
                return net, gateway_ip
        return None, None

    def subnet6_of(self, ip6):
        """The IPv6 instance subnet holding the IPv6 int ``ip6``, or None."""
        for net in self.instance_subnets6:
            if net.first <= ip6 <= net.last:
                return net
        return None


SERVED6_PLEN = 64
"""DHCPv6 serves a subnet wider than a /64 in its first /64 only (dnsmasq's ranges are /64 or
longer: dhcp.config6_lines); an instance's ip6 lies there (derived addresses always do)."""


def gateway6_of(net):
    """The global IPv6 address (int) every tap of an instance in the Net6 ``net`` carries (with
    ``noprefixroute``): the network's second address (its first is the subnet-router anycast
    address). dnsmasq serves DHCPv6 on a tap only inside a range built from a global address on
    it; the guests route through the link-local ``constants.GATEWAY6_LINK_LOCAL``."""
    return net.first + 1


@dataclass(eq=False, **_SLOTS)
class Uplink:
    """A link to the tier above. ``address`` (int) and ``net`` (the link's
    Net) or None; ``peer`` (int) or None for BGP unnumbered; ``peer_host``:
    the name of the host owning ``peer``, resolved after indexing;
    ``password``: the link's own BGP password (TCP MD5) or None (the
    fabric-wide ``ocs_fabric.bgp.password``, if any)."""

    interface: str
    address: int | None
    net: Net | None
    peer: int | None
    peer_host: str | None = None
    password: str | None = None
    address6: int | None = None  # a border link's IPv6 address (IPv6 int) on it, and its Net6
    net6: object = None

    @property
    def numbered(self):
        return self.peer is not None


@dataclass(eq=False, **_SLOTS)
class Downlink:
    """A link to the tier below; ``host``: the host at the other end (for
    unnumbered sessions) or None."""

    interface: str
    address: int | None
    net: Net | None
    host: str | None


@dataclass(eq=False, **_SLOTS)
class Host:
    """A fabric host of one role (spine, tor, hypervisor, nat_gateway)."""

    name: str
    role: str
    address: int | None = None
    rack: Rack | None = field(default=None, repr=False)
    asn: int | None = None
    uplinks: list = field(default_factory=list)
    downlinks: list = field(default_factory=list)
    public_address: int | None = None
    instances: list = field(default_factory=list, repr=False)
    address6: int | None = None  # ocs_address6, an IPv6 int (addr.ntoa6)

    @property
    def group(self):
        return GROUP_OF_ROLE[self.role]


@dataclass(eq=False, **_SLOTS)
class Instance:
    """An instance on its hypervisor: ``subnet`` is its rack instance subnet
    and ``gateway_ip`` that subnet's gateway IP (None when its hypervisor has
    no rack); ``ip6`` its IPv6 address (an int, given or derived from ``ip``),
    or None."""

    name: str
    mac: str
    ip: int
    floating_ip: int | None
    interface: str
    hypervisor: Host = field(repr=False)
    subnet: Net | None
    gateway_ip: int | None
    conn_limit: int | None = None  # its own cap on tracked connections; None: the fabric's ``conn_limit``
    ip6: int | None = None
    inbound6: str | None = None  # its own ``inbound6`` (open or closed); None: the fabric's


def _by_role():
    return {role: [] for role in ROLE_OF_GROUP.values()}


@dataclass(eq=False, repr=False, **_SLOTS)
class Fabric:
    """The validated fabric, indexed once: racks, hosts by role and by rack,
    instances by hypervisor. Addresses are ints; ``ntoa`` prints them."""

    racks: dict = field(default_factory=dict)
    hosts: dict = field(default_factory=dict)
    by_role: dict = field(default_factory=_by_role)
    spine_asn: int | None = None
    hypervisor_asn: int | None = None
    gateway_asn: int | None = None
    border_peers: list = field(default_factory=list)  # [(address int, asn)]
    # Dual stack: [(IPv6 address int, asn, the peer's IPv4 address int)] of the border peers with an address6
    # (their IPv6 session: the IPv4 peer's settings, on the IPv6 network of its border link)
    border_peers6: list = field(default_factory=list)
    # Border session settings, validated: the fabric's defaults (ocs_fabric.border) and, per border
    # peer address (int), that peer's settings with the defaults filled in: {keepalive, holdtime,
    # bfd, password}.
    border: dict = field(default_factory=dict)
    border_sessions: dict = field(default_factory=dict)
    floating_ranges: list = field(default_factory=list)
    internal_ranges: list = field(default_factory=list)
    internal_ranges6: list = field(default_factory=list)  # [Net6]; empty: the fabric is IPv4-only
    dual_stack: bool = False  # ocs_fabric.internal_ranges6 is set: the IPv6 fields may be used
    inbound6: str = "floating"  # new IPv6 flows to instances from outside: floating, open or closed (firewall)
    metadata: dict | None = None  # dict(ip, port, target, target_port) or None
    dns_servers: list = field(default_factory=list)
    dns_servers6: list = field(default_factory=list)  # [IPv6 int]: given to instances by DHCPv6 and the RAs (RDNSS)
    domain: str | None = None
    mtu: int = 1500
    # The smallest path MTU beyond the border that TCP through the NAT tier must survive:
    # the tier clamps the MSS of every TCP SYN it forwards to min(mtu, edge_mtu) - 40 (natgw.py).
    edge_mtu: int = 1500
    instance_ifname_prefix: str = "tap"
    nat_mode: str = "host"
    routing_mode: str = "bgp"
    bgp: dict = field(default_factory=dict)  # ocs_fabric.bgp, validated; ocs_l3.frr fills in defaults
    instances_file: str | None = None
    dhcp_lease_time: int = 43200  # seconds
    conn_limit: int = 8192  # tracked connections an instance may open (firewall.CONN_LIMIT_DEFAULT)
    # The host policy (host_policy.py): who may open connections to the fabric's own hosts.
    host_policy: bool = True
    management_ranges: list = field(default_factory=list)  # [Net]
    management_ranges6: list = field(default_factory=list)  # [str] IPv6 CIDR (the IPv6 host policy)
    monitoring_ranges: list = field(default_factory=list)  # [Net]: node_exporter (tcp 9100) may be scraped from
    monitoring_ranges6: list = field(default_factory=list)  # [str] IPv6 CIDR
    host_services: list = field(default_factory=list)  # [dict(proto, port, sources, sources6, roles (set))]
    instance_services: list = field(default_factory=list)  # [(address int, proto, port)]: metadata, DNS included
    instance_services6: list = field(default_factory=list)  # [(IPv6 int, proto, port)]: dns_servers6 included
    infrastructure: list = field(default_factory=list)  # [Net], collapsed: the fabric's own addresses and networks
    infrastructure6: list = field(default_factory=list)  # [Net6], collapsed: its own IPv6 addresses (ocs_address6)
    # Values computed from the built fabric, once (memo.py): not part of what the fabric is.
    memo: dict = field(default_factory=dict, repr=False)

    def instances(self):
        for host in self.by_role["hypervisor"]:
            yield from host.instances

    @property
    def instance_count(self):
        return sum(len(h.instances) for h in self.by_role["hypervisor"])


def infrastructure(fab):
    """Every address and network of the fabric itself, collapsed: host addresses, link
    addresses and networks, rack host subnets, public addresses."""
    nets = [r.host_subnet for r in fab.racks.values() if r.host_subnet is not None]
    for host in fab.hosts.values():
        for ip in (host.address, host.public_address):
            if ip is not None:
                nets.append(Net(ip, 32))
        for link in list(host.uplinks) + list(host.downlinks):
            if link.address is not None:
                nets.append(Net(link.address, 32))
            if link.net is not None:
                nets.append(link.net)
    return collapse(nets)


def infrastructure6(fab):
    """The IPv6 side of :func:`infrastructure`, collapsed: every host's ``ocs_address6`` (the only
    IPv6 addresses of the fabric itself the inventory names: links and rack host subnets are
    IPv4; unnumbered sessions use link-local addresses, never forwarded)."""
    return collapse6([Net6(h.address6, 128) for h in fab.hosts.values() if h.address6 is not None])
