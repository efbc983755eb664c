# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fabric model: load, validate and index the inventory once.

Input is plain data, as Ansible (or :mod:`ocs_l3.inventory`) hands it over::

    {
      "groups":   {"spines": [...], "tors": [...], "hypervisors": [...], "nat_gateways": [...]},
      "hostvars": {"hv-r01-01": {"ocs_address": ..., "ocs_rack": ..., "ocs_instances": [...]}, ...},
      "racks":    <ocs_racks>,
      "fabric":   <ocs_fabric>,
      "instances_records": None | [(where, record), ...],   # from ocs_fabric.instances_file
    }

:func:`build` validates *everything* and either returns a :class:`Fabric` or
raises :class:`~ocs_l3.errors.FabricError` listing every problem, each naming
the object and the field. Cost is linear in hosts + instances: each check is a
dict lookup or a sort, never a scan of all instances per host.
"""

import hashlib
import ipaddress
import re

from .addr import DIGITS_RE, Net, aton, collapse, ntoa, parse_iface_addr, parse_mac, parse_net, valid_ifname
from .errors import FabricError

ROLE_GROUPS = ("spines", "tors", "hypervisors", "nat_gateways")
ROLE_OF_GROUP = {"spines": "spine", "tors": "tor", "hypervisors": "hypervisor", "nat_gateways": "nat_gateway"}
GROUP_OF_ROLE = {v: k for k, v in ROLE_OF_GROUP.items()}

HOST_KEYS = ("ocs_address", "ocs_rack", "ocs_uplinks", "ocs_downlinks", "ocs_asn", "ocs_public_address",
             "ocs_instances")
FABRIC_KEYS = {
    "spine_asn", "hypervisor_asn", "gateway_asn", "border_peers", "floating_ranges", "internal_ranges",
    "metadata", "bgp", "dns_servers", "domain", "mtu", "instance_ifname_prefix", "nat_mode", "routing_mode",
    "instances_file", "dhcp_lease_time", "host_policy", "management_ranges", "host_services", "instance_services",
}
HOST_SERVICE_KEYS = {"proto", "port", "from", "roles"}
INSTANCE_SERVICE_KEYS = {"address", "proto", "port"}
PROTOS = ("tcp", "udp")
RACK_KEYS = {"asn", "host_subnet", "instance_subnets", "instance_gateway"}
INSTANCE_KEYS = {"name", "mac", "ip", "floating_ip", "interface"}
FILE_INSTANCE_KEYS = INSTANCE_KEYS | {"hypervisor"}
UPLINK_KEYS = {"interface", "address", "peer"}
DOWNLINK_KEYS = {"interface", "address", "host"}
METADATA_KEYS = {"ip", "port", "target", "target_port"}

RESERVED_ASNS = {0, 23456, 65535, 4294967295}
DOC_ASNS = set(range(64496, 64512)) | set(range(65536, 65552))

_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_RACK_ID_RE = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62})")
_PREFIX_RE = re.compile(r"[a-z][a-z0-9-]{0,7}")
_DOMAIN_RE = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


_DURATION_RE = re.compile(r"([0-9]{1,8})([smhdw]?)")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
DHCP_LEASE_MIN, DHCP_LEASE_MAX = 120, 365 * 86400

_PLAIN_RE = re.compile(r"[A-Za-z0-9._:/@+-]+")


def _show(value):
    """A value as it appears in a message: plain when harmless, repr otherwise
    (so a newline or a shell metacharacter is visible, and a message stays one line)."""
    if isinstance(value, str) and _PLAIN_RE.fullmatch(value):
        return value
    return repr(value)


def default_ifname(name, prefix):
    """Interface name for an instance: the prefix plus a hash of its name, <= 15 chars."""
    room = min(11, 15 - len(prefix))
    return prefix + hashlib.sha256(name.encode()).hexdigest()[:room]


class Rack:
    __slots__ = ("id", "asn", "host_subnet", "instance_subnets", "gateways", "tors", "hypervisors", "gateways_hosts")

    def __init__(self, rid, asn, host_subnet, instance_subnets, gateways):
        self.id = rid
        self.asn = asn
        self.host_subnet = host_subnet
        self.instance_subnets = instance_subnets
        self.gateways = gateways  # one per instance subnet, same order
        self.tors = []
        self.hypervisors = []
        self.gateways_hosts = []

    def subnet_of(self, ip):
        """(subnet, gateway) holding ``ip``, or (None, None)."""
        for net, gw in zip(self.instance_subnets, self.gateways):
            if net.first <= ip <= net.last:
                return net, gw
        return None, None


class Uplink:
    __slots__ = ("interface", "address", "net", "peer", "peer_host")

    def __init__(self, interface, address, net, peer):
        self.interface = interface
        self.address = address  # int or None
        self.net = net  # Net of the link or None
        self.peer = peer  # int or None (None: BGP unnumbered)
        self.peer_host = None  # name of the host owning ``peer``, resolved after indexing

    @property
    def numbered(self):
        return self.peer is not None


class Downlink:
    __slots__ = ("interface", "address", "net", "host")

    def __init__(self, interface, address, net, host):
        self.interface = interface
        self.address = address  # int or None
        self.net = net
        self.host = host  # host name at the other end (for unnumbered sessions) or None


class Host:
    __slots__ = ("name", "role", "address", "rack", "asn", "uplinks", "downlinks", "public_address", "instances")

    def __init__(self, name, role):
        self.name = name
        self.role = role
        self.address = None
        self.rack = None
        self.asn = None
        self.uplinks = []
        self.downlinks = []
        self.public_address = None
        self.instances = []

    @property
    def group(self):
        return GROUP_OF_ROLE[self.role]


class Instance:
    __slots__ = ("name", "mac", "ip", "floating_ip", "interface", "hypervisor", "subnet", "gateway")

    def __init__(self, name, mac, ip, floating_ip, interface, hypervisor, subnet, gateway):
        self.name = name
        self.mac = mac
        self.ip = ip
        self.floating_ip = floating_ip
        self.interface = interface
        self.hypervisor = hypervisor
        self.subnet = subnet
        self.gateway = gateway


class Fabric:
    """The validated fabric, indexed once: racks, hosts by role and by rack,
    instances by hypervisor. Addresses are ints; ``ntoa`` prints them."""

    def __init__(self):
        self.racks = {}
        self.hosts = {}
        self.by_role = {role: [] for role in ROLE_OF_GROUP.values()}
        self.spine_asn = None
        self.hypervisor_asn = None
        self.gateway_asn = None
        self.border_peers = []  # [(address int, asn)]
        self.floating_ranges = []
        self.internal_ranges = []
        self.metadata = None  # dict(ip, port, target, target_port) or None
        self.dns_servers = []
        self.domain = None
        self.mtu = 1500
        self.instance_ifname_prefix = "tap"
        self.nat_mode = "host"
        self.routing_mode = "bgp"
        self.bgp = {}  # ocs_fabric.bgp, validated; ocs_l3.frr fills in defaults
        self.instances_file = None
        self.dhcp_lease_time = 43200  # seconds
        # The host policy (host_policy.py): who may open connections to the fabric's own hosts.
        self.host_policy = True
        self.management_ranges = []  # [Net]
        self.management_ranges6 = []  # [str] IPv6 CIDR (the IPv6 host policy)
        self.host_services = []  # [dict(proto, port, sources [Net], sources6 [str], roles (set))]
        self.instance_services = []  # [(address int, proto, port)]: defaults (metadata, DNS) included
        self.infrastructure = []  # [Net], collapsed: every address and network of the fabric itself

    def instances(self):
        for host in self.by_role["hypervisor"]:
            yield from host.instances

    @property
    def instance_count(self):
        return sum(len(h.instances) for h in self.by_role["hypervisor"])


class _Checker:
    def __init__(self):
        self.problems = []

    def add(self, where, message):
        self.problems.append("%s %s" % (where, message))


def _asn(chk, where, value, required=True):
    if value is None:
        if required:
            chk.add(where, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, str) and DIGITS_RE.fullmatch(value):
            value = int(value)
        else:
            chk.add(where, "%s is not an AS number (an integer)" % _show(value))
            return None
    if not 1 <= value <= 4294967294 or value in RESERVED_ASNS:
        chk.add(where, "%s is a reserved AS number" % value)
        return None
    if value in DOC_ASNS:
        chk.add(where, "%s is a documentation AS number (RFC 5398)" % value)
        return None
    return value


def _ip(chk, where, value, required=True):
    if value is None:
        if required:
            chk.add(where, "is required")
        return None
    ip = aton(value)
    if ip is None:
        chk.add(where, "%s is not an IPv4 address" % _show(value))
    return ip


def _net_list(chk, where, value, required):
    if value is None:
        if required:
            chk.add(where, "is required")
        return []
    if not isinstance(value, list):
        chk.add(where, "must be a list of networks, got %s" % _show(value))
        return []
    out = []
    for i, item in enumerate(value):
        try:
            net = parse_net(item)
        except ValueError as exc:
            chk.add("%s[%d]" % (where, i), "%s %s" % (_show(item), exc))
            continue
        if net.prefixlen == 0:
            chk.add("%s[%d]" % (where, i), "%s covers every address (0.0.0.0/0 is not allowed)" % net.text)
            continue
        out.append(net)
    return out


def _unknown_keys(chk, where, data, known):
    for key in sorted(set(data) - known, key=str):
        chk.add("%s.%s" % (where, _show(key)), "is not a known field (known: %s)" % ", ".join(sorted(known)))


def _overlaps(items):
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


def _duration(value):
    """``43200``, ``'720m'``, ``'12h'`` -> seconds, or None when not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    m = _DURATION_RE.fullmatch(value) if isinstance(value, str) else None
    return int(m.group(1)) * _DURATION_UNITS[m.group(2)] if m else None


def _settings(chk, fab, data, groups):
    where = "ocs_fabric"
    if not isinstance(data, dict):
        chk.add(where, "must be a mapping, got %s" % _show(data))
        data = {}
    _unknown_keys(chk, where, data, FABRIC_KEYS)
    fab.nat_mode = data.get("nat_mode", "host")
    if fab.nat_mode not in ("host", "gateway"):
        chk.add(where + ".nat_mode", "%s must be host or gateway" % _show(fab.nat_mode))
    fab.routing_mode = data.get("routing_mode", "bgp")
    if fab.routing_mode not in ("bgp", "static"):
        chk.add(where + ".routing_mode", "%s must be bgp or static" % _show(fab.routing_mode))
    fab.spine_asn = _asn(chk, where + ".spine_asn", data.get("spine_asn"), required=bool(groups["spines"]))
    fab.hypervisor_asn = _asn(chk, where + ".hypervisor_asn", data.get("hypervisor_asn"),
                              required=fab.routing_mode == "bgp" and bool(groups["hypervisors"]))
    fab.gateway_asn = _asn(chk, where + ".gateway_asn", data.get("gateway_asn"),
                           required=bool(groups["nat_gateways"]))
    fab.floating_ranges = _net_list(chk, where + ".floating_ranges", data.get("floating_ranges", []), False)
    fab.internal_ranges = _net_list(chk, where + ".internal_ranges", data.get("internal_ranges"), True)
    for name, nets in (("floating_ranges", fab.floating_ranges), ("internal_ranges", fab.internal_ranges)):
        for (la, a), (lb, b) in _overlaps(list(enumerate(nets))):
            chk.add("%s.%s[%d]" % (where, name, lb), "%s overlaps %s[%d] %s" % (b.text, name, la, a.text))
    for f in fab.floating_ranges:
        for i in fab.internal_ranges:
            if f.overlaps(i):
                chk.add(where + ".floating_ranges", "%s overlaps internal range %s" % (f.text, i.text))
    peers = data.get("border_peers", [])
    if not isinstance(peers, list):
        chk.add(where + ".border_peers", "must be a list of {address, asn}")
        peers = []
    seen = set()
    for i, peer in enumerate(peers):
        pw = "%s.border_peers[%d]" % (where, i)
        if not isinstance(peer, dict):
            chk.add(pw, "must be a mapping {address, asn}")
            continue
        _unknown_keys(chk, pw, peer, {"address", "asn"})
        ip = _ip(chk, pw + ".address", peer.get("address"))
        asn = _asn(chk, pw + ".asn", peer.get("asn"))
        if ip is not None and ip in seen:
            chk.add(pw + ".address", "%s is listed twice" % ntoa(ip))
        if ip is not None and asn is not None:
            seen.add(ip)
            fab.border_peers.append((ip, asn))
    meta = data.get("metadata")
    if meta is not None:
        mw = where + ".metadata"
        if not isinstance(meta, dict):
            chk.add(mw, "must be a mapping {ip, port, target, target_port}")
        else:
            _unknown_keys(chk, mw, meta, METADATA_KEYS)
            ip = _ip(chk, mw + ".ip", meta.get("ip", "169.254.169.254"))
            target = _ip(chk, mw + ".target", meta.get("target"))
            port = meta.get("port", 80)
            tport = meta.get("target_port", port)
            for field, val in (("port", port), ("target_port", tport)):
                if isinstance(val, bool) or not isinstance(val, int) or not 1 <= val <= 65535:
                    chk.add("%s.%s" % (mw, field), "%s is not a TCP port" % _show(val))
            if None not in (ip, target):
                fab.metadata = {"ip": ip, "port": port, "target": target, "target_port": tport}
    dns = data.get("dns_servers", [])
    if not isinstance(dns, list):
        chk.add(where + ".dns_servers", "must be a list of IPv4 addresses")
        dns = []
    for i, d in enumerate(dns):
        ip = _ip(chk, "%s.dns_servers[%d]" % (where, i), d)
        if ip is not None:
            fab.dns_servers.append(ip)
    domain = data.get("domain")
    if domain is not None and (not isinstance(domain, str) or len(domain) > 253
                               or _DOMAIN_RE.fullmatch(domain) is None):
        chk.add(where + ".domain", "%s is not a lower-case DNS domain name" % _show(domain))
    else:
        fab.domain = domain
    mtu = data.get("mtu", 1500)
    if isinstance(mtu, bool) or not isinstance(mtu, int) or not 576 <= mtu <= 9216:
        chk.add(where + ".mtu", "%s must be an integer from 576 to 9216" % _show(mtu))
    else:
        fab.mtu = mtu
    prefix = data.get("instance_ifname_prefix", "tap")
    if not isinstance(prefix, str) or _PREFIX_RE.fullmatch(prefix) is None:
        chk.add(where + ".instance_ifname_prefix",
                "%s must be 1-8 characters of a-z, 0-9 and '-', starting with a letter" % _show(prefix))
    else:
        fab.instance_ifname_prefix = prefix
    fab.instances_file = data.get("instances_file")
    _bgp(chk, fab, data.get("bgp"))
    lease = _duration(data.get("dhcp_lease_time", "12h"))
    if lease is None or not DHCP_LEASE_MIN <= lease <= DHCP_LEASE_MAX:
        chk.add(where + ".dhcp_lease_time", "%s must be a lease time from 2m to 365d (seconds, or a number with "
                "unit s, m, h, d or w)" % _show(data.get("dhcp_lease_time")))
    else:
        fab.dhcp_lease_time = lease
    ids = [fab.spine_asn, fab.hypervisor_asn, fab.gateway_asn]
    names = ["spine_asn", "hypervisor_asn", "gateway_asn"]
    for a in range(3):
        for b in range(a + 1, 3):
            if ids[a] is not None and ids[a] == ids[b]:
                chk.add("%s.%s" % (where, names[b]), "%d is also %s" % (ids[b], names[a]))


def _port(chk, where, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        chk.add(where, "%s is not a port (1-65535)" % _show(value))
        return None
    return value


def _proto(chk, where, value):
    if value not in PROTOS:
        chk.add(where, "%s must be tcp or udp" % _show(value))
        return None
    return value


def _mixed_net_list(chk, where, value, required):
    """(IPv4 [Net], IPv6 [str]) of a list of CIDR networks of either family (0/0 and ::/0 refused)."""
    if value is None or not isinstance(value, list):
        return _net_list(chk, where, value, required), []
    v4, v6 = [], []
    for i, item in enumerate(value):
        if isinstance(item, str) and ":" in item:
            try:
                net = ipaddress.IPv6Network(item, strict=True)
            except ValueError as exc:
                chk.add("%s[%d]" % (where, i), "%s is not an IPv6 network in CIDR notation (%s)" % (_show(item), exc))
                continue
            if net.prefixlen == 0:
                chk.add("%s[%d]" % (where, i), "%s covers every address (::/0 is not allowed)" % item)
                continue
            v6.append(str(net))
        else:
            try:
                net = parse_net(item)
            except ValueError as exc:
                chk.add("%s[%d]" % (where, i), "%s %s" % (_show(item), exc))
                continue
            if net.prefixlen == 0:
                chk.add("%s[%d]" % (where, i), "%s covers every address (0.0.0.0/0 is not allowed)" % net.text)
                continue
            v4.append(net)
    return v4, v6


def _host_services(chk, fab, value):
    where = "ocs_fabric.host_services"
    if not isinstance(value, list):
        chk.add(where, "must be a list of {proto, port, from, roles}, got %s" % _show(value))
        return
    for i, svc in enumerate(value):
        sw = "%s[%d]" % (where, i)
        if not isinstance(svc, dict):
            chk.add(sw, "must be a mapping {proto, port, from, roles}, got %s" % _show(svc))
            continue
        _unknown_keys(chk, sw, svc, HOST_SERVICE_KEYS)
        proto, port = _proto(chk, sw + ".proto", svc.get("proto")), _port(chk, sw + ".port", svc.get("port"))
        sources, sources6 = _mixed_net_list(chk, sw + ".from", svc.get("from"), True)
        if svc.get("from") == []:
            chk.add(sw + ".from", "is empty: name the ranges the service is offered to")
        roles = svc.get("roles", sorted(GROUP_OF_ROLE))
        if not isinstance(roles, list) or not roles or any(r not in GROUP_OF_ROLE for r in roles):
            chk.add(sw + ".roles", "%s must be a non-empty list of %s" % (_show(roles), ", ".join(sorted(GROUP_OF_ROLE))))
            continue
        if None not in (proto, port) and (sources or sources6):
            fab.host_services.append({"proto": proto, "port": port, "sources": sources, "sources6": sources6,
                                      "roles": set(roles)})


def _instance_services(chk, fab, value):
    where = "ocs_fabric.instance_services"
    if not isinstance(value, list):
        chk.add(where, "must be a list of {address, proto, port}, got %s" % _show(value))
        return
    for i, svc in enumerate(value):
        sw = "%s[%d]" % (where, i)
        if not isinstance(svc, dict):
            chk.add(sw, "must be a mapping {address, proto, port}, got %s" % _show(svc))
            continue
        _unknown_keys(chk, sw, svc, INSTANCE_SERVICE_KEYS)
        ip = _ip(chk, sw + ".address", svc.get("address"))
        proto, port = _proto(chk, sw + ".proto", svc.get("proto")), _port(chk, sw + ".port", svc.get("port"))
        if None not in (ip, proto, port):
            fab.instance_services.append((ip, proto, port))


def _policy(chk, fab, data):
    """host_policy, management_ranges, host_services, instance_services (after the racks)."""
    where = "ocs_fabric"
    data = data if isinstance(data, dict) else {}
    fab.host_policy = data.get("host_policy", True)
    if not isinstance(fab.host_policy, bool):
        chk.add(where + ".host_policy", "%s must be true or false" % _show(fab.host_policy))
        fab.host_policy = True
    fab.management_ranges, fab.management_ranges6 = _mixed_net_list(
        chk, where + ".management_ranges", data.get("management_ranges"), required=False)
    if fab.host_policy and data.get("management_ranges") is None:
        chk.add(where + ".management_ranges", "is required while host_policy is on (the default): list the "
                "networks SSH and other management may come from (or set host_policy: false)")
    elif fab.host_policy and data.get("management_ranges") == []:
        chk.add(where + ".management_ranges", "is empty: every host would be closed to its own management")
    tenant = [("floating range", f) for f in fab.floating_ranges]
    tenant += [("rack %s instance subnet" % r.id, n) for r in fab.racks.values() for n in r.instance_subnets]
    for i, net in enumerate(fab.management_ranges):
        for what, other in tenant:
            if net.overlaps(other):
                chk.add("%s.management_ranges[%d]" % (where, i),
                        "%s overlaps %s %s (tenants would be management)" % (net.text, what, other.text))
    _host_services(chk, fab, data.get("host_services", []))
    if fab.metadata is not None:
        fab.instance_services.append((fab.metadata["target"], "tcp", fab.metadata["target_port"]))
    for dns in fab.dns_servers:
        fab.instance_services += [(dns, "udp", 53), (dns, "tcp", 53)]
    _instance_services(chk, fab, data.get("instance_services", []))
    fab.instance_services = sorted(set(fab.instance_services))


def _infrastructure(fab):
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


def _racks(chk, fab, data):
    where = "ocs_racks"
    if not isinstance(data, dict):
        chk.add(where, "must be a mapping of rack id to {asn, host_subnet, instance_subnets}")
        return
    asns = {}
    all_nets = []
    for rid in sorted(data, key=str):
        rw = "%s.%s" % (where, _show(rid))
        spec = data[rid]
        if not isinstance(rid, str) or _RACK_ID_RE.fullmatch(rid) is None:
            chk.add(rw, "rack id must be 1-32 characters of a-z, 0-9, '-' and '_'")
            continue
        if not isinstance(spec, dict):
            chk.add(rw, "must be a mapping {asn, host_subnet, instance_subnets}")
            continue
        _unknown_keys(chk, rw, spec, RACK_KEYS)
        asn = _asn(chk, rw + ".asn", spec.get("asn"))
        if asn is not None:
            if asn in asns:
                chk.add(rw + ".asn", "%d is also the ASN of rack %s" % (asn, asns[asn]))
            asns[asn] = rid
            for label, other in (("spine_asn", fab.spine_asn), ("hypervisor_asn", fab.hypervisor_asn),
                                 ("gateway_asn", fab.gateway_asn)):
                if asn == other:
                    chk.add(rw + ".asn", "%d is also ocs_fabric.%s" % (asn, label))
        host_subnet = None
        hs = spec.get("host_subnet")
        if hs is None:
            chk.add(rw + ".host_subnet", "is required")
        else:
            try:
                host_subnet = parse_net(hs)
                all_nets.append(("%s.host_subnet" % rw, host_subnet))
            except ValueError as exc:
                chk.add(rw + ".host_subnet", "%s %s" % (_show(hs), exc))
        subnets = _net_list(chk, rw + ".instance_subnets", spec.get("instance_subnets"), True)
        if spec.get("instance_subnets") is not None and not spec.get("instance_subnets"):
            chk.add(rw + ".instance_subnets", "must list at least one network")
        for i, net in enumerate(subnets):
            if net.prefixlen > 30:
                chk.add("%s.instance_subnets[%d]" % (rw, i), "%s is smaller than a /30" % net.text)
            all_nets.append(("%s.instance_subnets[%d]" % (rw, i), net))
        subnets = [n for n in subnets if n.prefixlen <= 30]
        gateways = [n.first + 1 for n in subnets]
        gw_raw = spec.get("instance_gateway")
        if gw_raw is not None and subnets:
            gw = _ip(chk, rw + ".instance_gateway", gw_raw)
            if gw is not None:
                if gw not in subnets[0]:
                    chk.add(rw + ".instance_gateway", "%s is outside the first instance subnet %s"
                            % (ntoa(gw), subnets[0].text))
                elif subnets[0].is_unusable_host(gw):
                    chk.add(rw + ".instance_gateway", "%s is the network or broadcast address of %s"
                            % (ntoa(gw), subnets[0].text))
                else:
                    gateways[0] = gw
        if asn is not None and host_subnet is not None and subnets:
            fab.racks[rid] = Rack(rid, asn, host_subnet, subnets, gateways)
    for (la, a), (lb, b) in _overlaps(all_nets):
        chk.add(lb, "%s overlaps %s %s" % (b.text, la, a.text))
    for label, net in all_nets:
        for f in fab.floating_ranges:
            if net.overlaps(f):
                chk.add(label, "%s overlaps floating range %s" % (net.text, f.text))
        if fab.internal_ranges and not any(net.within(i) for i in fab.internal_ranges):
            chk.add(label, "%s is not inside internal_ranges [%s]"
                    % (net.text, ", ".join(i.text for i in fab.internal_ranges)))


def _in_floating(fab, ip):
    return any(ip in f for f in fab.floating_ranges)


def _links(chk, hw, field, hv, keys, names, ifaddrs):
    """Yield (where, link, interface, address, net) for each well-formed entry
    of a host's ``ocs_uplinks`` or ``ocs_downlinks``; report the rest.
    ``names`` (the host's interface names) and ``ifaddrs`` (every interface
    address, for the fleet-wide uniqueness check) are filled in."""
    links = hv.get(field, [])
    shape = "{%s}" % ", ".join(sorted(keys, key=lambda k: (k != "interface", k)))
    if not isinstance(links, list):
        chk.add("%s.%s" % (hw, field), "must be a list of %s" % shape)
        return
    for i, link in enumerate(links):
        lw = "%s.%s[%d]" % (hw, field, i)
        if not isinstance(link, dict):
            chk.add(lw, "must be a mapping %s" % shape)
            continue
        _unknown_keys(chk, lw, link, keys)
        ifname = link.get("interface")
        if not valid_ifname(ifname):
            chk.add(lw + ".interface", "%s is not a valid interface name" % _show(ifname))
            continue
        if ifname in names:
            chk.add(lw + ".interface", "%s is listed twice" % ifname)
        names.add(ifname)
        address = net = None
        if link.get("address") is not None:
            try:
                address, net = parse_iface_addr(link["address"])
                ifaddrs.append((lw + ".address", address))
            except ValueError as exc:
                chk.add(lw + ".address", "%s %s" % (_show(link["address"]), exc))
        yield lw, link, ifname, address, net


def _in_host_subnet(chk, lw, host, address):
    """A rack host's link address lies in its rack's host subnet."""
    if host.rack is not None and address is not None and address not in host.rack.host_subnet:
        chk.add(lw + ".address", "%s is outside rack %s host_subnet %s"
                % (ntoa(address), host.rack.id, host.rack.host_subnet.text))


def _hosts(chk, fab, groups, hostvars):
    role_of = {}
    for group in ROLE_GROUPS:
        members = groups.get(group) or []
        for name in members:
            if name in role_of:
                chk.add("%s.%s" % (group, name), "is also in group %s (a host has one role)" % role_of[name])
                continue
            role_of[name] = group
    addresses = {}  # int -> (where, host)
    ifaddrs = []
    for name in sorted(role_of):
        group = role_of[name]
        role = ROLE_OF_GROUP[group]
        hw = "%s.%s" % (group, name)
        if not isinstance(name, str) or _HOSTNAME_RE.fullmatch(name) is None:
            chk.add(hw, "host name must be 1-63 characters of letters, digits, '.', '-' and '_'")
            continue
        hv = hostvars.get(name) or {}
        host = Host(name, role)
        host.address = _ip(chk, hw + ".ocs_address", hv.get("ocs_address"))
        rid = hv.get("ocs_rack")
        if rid is None:
            if role in ("tor", "hypervisor"):
                chk.add(hw + ".ocs_rack", "is required")
        elif role == "spine":
            chk.add(hw + ".ocs_rack", "a spine belongs to no rack")
        elif not isinstance(rid, str) or rid not in fab.racks:
            chk.add(hw + ".ocs_rack", "%s is not a rack of ocs_racks" % _show(rid))
        else:
            host.rack = fab.racks[rid]
        if host.address is not None:
            if host.address in addresses:
                chk.add(hw + ".ocs_address", "%s is also the address of %s" % (ntoa(host.address), addresses[host.address]))
            else:
                addresses[host.address] = hw
            if host.rack is not None and host.address not in host.rack.host_subnet:
                chk.add(hw + ".ocs_address", "%s is outside rack %s host_subnet %s"
                        % (ntoa(host.address), host.rack.id, host.rack.host_subnet.text))
            if fab.internal_ranges and not any(host.address in i for i in fab.internal_ranges):
                chk.add(hw + ".ocs_address", "%s is not inside internal_ranges" % ntoa(host.address))
        asn = hv.get("ocs_asn")
        if asn is not None:
            asn = _asn(chk, hw + ".ocs_asn", asn)
            if role == "spine" and asn is not None and asn != fab.spine_asn:
                chk.add(hw + ".ocs_asn", "%d differs from ocs_fabric.spine_asn %s (spines share one ASN)"
                        % (asn, fab.spine_asn))
        if asn is None:
            asn = {"spine": fab.spine_asn, "hypervisor": fab.hypervisor_asn, "nat_gateway": fab.gateway_asn,
                   "tor": host.rack.asn if host.rack else None}[role]
        host.asn = asn
        pub = hv.get("ocs_public_address")
        needs_pub = role == "nat_gateway" or (role == "hypervisor" and fab.nat_mode == "host")
        if pub is None:
            if needs_pub:
                chk.add(hw + ".ocs_public_address", "is required (%s)" % (
                    "NAT gateway" if role == "nat_gateway" else "hypervisor with nat_mode host"))
        elif role not in ("hypervisor", "nat_gateway"):
            chk.add(hw + ".ocs_public_address", "only hypervisors and NAT gateways have a public address")
        else:
            host.public_address = _ip(chk, hw + ".ocs_public_address", pub)
            if host.public_address is not None and not _in_floating(fab, host.public_address):
                chk.add(hw + ".ocs_public_address", "%s is outside floating_ranges" % ntoa(host.public_address))
        names = set()
        for lw, link, ifname, address, net in _links(chk, hw, "ocs_uplinks", hv, UPLINK_KEYS, names, ifaddrs):
            if ifname.startswith(fab.instance_ifname_prefix) and role == "hypervisor":
                chk.add(lw + ".interface", "%s starts with the instance interface prefix %s"
                        % (ifname, fab.instance_ifname_prefix))
            peer = None
            if link.get("peer") is not None:
                peer = _ip(chk, lw + ".peer", link["peer"])
                if peer is not None and net is not None and (peer not in net or peer == address):
                    chk.add(lw + ".peer", "%s is not another address of the link %s" % (ntoa(peer), net.text))
            if role == "hypervisor":
                _in_host_subnet(chk, lw, host, address)
            host.uplinks.append(Uplink(ifname, address, net, peer))
        if hv.get("ocs_downlinks") and role not in ("tor", "spine"):
            chk.add(hw + ".ocs_downlinks", "only ToRs and spines have downlinks")
        else:
            for lw, link, ifname, address, net in _links(chk, hw, "ocs_downlinks", hv, DOWNLINK_KEYS,
                                                         names, ifaddrs):
                if role == "tor":
                    _in_host_subnet(chk, lw, host, address)
                other = link.get("host")
                if other is not None and not isinstance(other, str):
                    chk.add(lw + ".host", "%s is not a host name" % _show(other))
                    other = None
                host.downlinks.append(Downlink(ifname, address, net, other))
        if rid is None and host.address is not None:
            for rack in fab.racks.values():
                if host.address in rack.host_subnet or rack.subnet_of(host.address)[0] is not None:
                    chk.add(hw + ".ocs_address", "%s lies in rack %s, but %s has no ocs_rack"
                            % (ntoa(host.address), rack.id, name))
        fab.hosts[name] = host
        fab.by_role[role].append(host)
        if host.rack is not None:
            {"tor": host.rack.tors, "hypervisor": host.rack.hypervisors,
             "nat_gateway": host.rack.gateways_hosts}[role].append(host)
    # Interface addresses are addresses too: unique fleet-wide, but a host may
    # carry its own ocs_address on its uplink.
    owner = {}
    for name, host in fab.hosts.items():
        if host.address is not None:
            owner[host.address] = name
    for where, ip in ifaddrs:
        host_name = where.split(".")[1]
        prev = owner.get(ip)
        if prev is not None and prev != host_name:
            chk.add(where, "%s is also an address of %s" % (ntoa(ip), prev))
        elif prev is None:
            owner[ip] = host_name
    _resolve_peers(chk, fab, owner)
    for host in fab.hosts.values():
        for i, down in enumerate(host.downlinks):
            if down.host is None:
                continue
            other = fab.hosts.get(down.host)
            want = ("hypervisor",) if host.role == "tor" else ("tor", "nat_gateway")
            if other is None or other.role not in want or (host.role == "tor" and other.rack is not host.rack):
                chk.add("%s.%s.ocs_downlinks[%d].host" % (host.group, host.name, i),
                        "%s is not a %s" % (_show(down.host), "hypervisor of rack %s" % host.rack.id
                                            if host.role == "tor" and host.rack else "ToR or NAT gateway"))
    for rack in fab.racks.values():
        if rack.hypervisors and not rack.tors:
            chk.add("ocs_racks.%s" % rack.id, "has hypervisors but no ToR in group tors")


_UPPER = {"hypervisor": ("tor",), "tor": ("spine",), "nat_gateway": ("spine",), "spine": ()}


def _resolve_peers(chk, fab, owner):
    """Each numbered uplink's peer is an address of a host one tier up."""
    border = {ip for ip, dummy in fab.border_peers}
    for host in fab.hosts.values():
        for i, up in enumerate(host.uplinks):
            if up.peer is None:
                continue
            uw = "%s.%s.ocs_uplinks[%d].peer" % (host.group, host.name, i)
            other = fab.hosts.get(owner.get(up.peer))
            if host.role == "spine":
                if up.peer not in border:
                    chk.add(uw, "%s is not one of ocs_fabric.border_peers" % ntoa(up.peer))
                continue
            if other is None or other.role not in _UPPER[host.role]:
                chk.add(uw, "%s is not an address of a %s" % (ntoa(up.peer), " or ".join(
                    {"tor": "ToR", "spine": "spine"}[r] for r in _UPPER[host.role])))
                continue
            if host.role == "hypervisor" and other.rack is not host.rack:
                chk.add(uw, "%s belongs to %s, a ToR of rack %s, not of rack %s"
                        % (ntoa(up.peer), other.name, other.rack.id if other.rack else "-",
                           host.rack.id if host.rack else "-"))
                continue
            up.peer_host = other.name


def _instance_records(chk, fab, hostvars, records):
    """Yield (where, hypervisor Host, record dict) from host_vars or the file."""
    in_vars = [h for h in fab.by_role["hypervisor"] if (hostvars.get(h.name) or {}).get("ocs_instances")]
    if records is not None:
        if in_vars:
            chk.add("ocs_fabric.instances_file", "is set, but %s also define ocs_instances (use one or the other)"
                    % ", ".join("hypervisors.%s" % h.name for h in in_vars[:5]))
            return
        for where, rec in records:
            if isinstance(rec, str):  # a record the file parser could not read
                chk.add(where, rec)
                continue
            if not isinstance(rec, dict):
                chk.add(where, "must be a record {hypervisor, name, mac, ip, floating_ip, interface}")
                continue
            hv_name = rec.get("hypervisor")
            label = "%s (%s on %s)" % (where, _show(rec.get("name")), _show(hv_name))
            _unknown_keys(chk, label, rec, FILE_INSTANCE_KEYS)
            host = fab.hosts.get(hv_name) if isinstance(hv_name, str) else None
            if host is None or host.role != "hypervisor":
                chk.add(label + ".hypervisor", "%s is not a host of group hypervisors" % _show(hv_name))
                continue
            yield label, host, rec
        return
    for host in fab.by_role["hypervisor"]:
        items = (hostvars.get(host.name) or {}).get("ocs_instances") or []
        base = "hypervisors.%s.ocs_instances" % host.name
        if not isinstance(items, list):
            chk.add(base, "must be a list of {name, mac, ip, floating_ip, interface}")
            continue
        for i, rec in enumerate(items):
            if not isinstance(rec, dict):
                chk.add("%s[%d]" % (base, i), "must be a mapping {name, mac, ip, floating_ip, interface}")
                continue
            label = "%s[%d] (%s)" % (base, i, _show(rec.get("name")))
            _unknown_keys(chk, label, rec, INSTANCE_KEYS)
            yield label, host, rec


def _instances(chk, fab, hostvars, records):
    prefix = fab.instance_ifname_prefix
    names, macs, ips = {}, {}, {}
    host_addrs = {h.address: h for h in fab.hosts.values() if h.address is not None}
    public = {}
    for h in fab.hosts.values():
        if h.public_address is not None:
            if h.public_address in public:
                chk.add("%s.%s.ocs_public_address" % (h.group, h.name), "%s is also the public address of %s"
                        % (ntoa(h.public_address), public[h.public_address]))
            else:
                public[h.public_address] = "%s.%s" % (h.group, h.name)
    floating = {}
    ifnames = {}
    for label, host, rec in _instance_records(chk, fab, hostvars, records):
        name = rec.get("name")
        ok = True
        if not isinstance(name, str) or _LABEL_RE.fullmatch(name) is None:
            chk.add(label + ".name", "%s is not a lower-case RFC 1123 label (a-z, 0-9, '-', at most 63)" % _show(name))
            ok = False
        elif name in names:
            chk.add(label + ".name", "%s is also the name of %s" % (name, names[name]))
            ok = False
        else:
            names[name] = label
        try:
            mac = parse_mac(rec.get("mac"))
            if mac in macs:
                chk.add(label + ".mac", "%s is also the MAC of %s" % (mac, macs[mac]))
                ok = False
            else:
                macs[mac] = label
        except ValueError as exc:
            chk.add(label + ".mac", "%s %s" % (_show(rec.get("mac")), exc))
            ok = False
        ip = _ip(chk, label + ".ip", rec.get("ip"))
        subnet = gw = None
        rack = host.rack
        if ip is None:
            ok = False
        elif rack is not None:
            subnet, gw = rack.subnet_of(ip)
            if subnet is None:
                chk.add(label + ".ip", "%s is outside rack %s instance_subnets [%s]"
                        % (ntoa(ip), rack.id, ", ".join(n.text for n in rack.instance_subnets)))
                ok = False
            elif subnet.is_unusable_host(ip):
                chk.add(label + ".ip", "%s is the network or broadcast address of %s" % (ntoa(ip), subnet.text))
                ok = False
            elif ip == gw:
                chk.add(label + ".ip", "%s is the gateway of %s in rack %s" % (ntoa(ip), subnet.text, rack.id))
                ok = False
            elif ip in ips:
                chk.add(label + ".ip", "%s is also the IP of %s" % (ntoa(ip), ips[ip]))
                ok = False
            elif ip in host_addrs:
                chk.add(label + ".ip", "%s is also the address of host %s" % (ntoa(ip), host_addrs[ip].name))
                ok = False
            else:
                ips[ip] = label
        fip = None
        if rec.get("floating_ip") is not None:
            fip = _ip(chk, label + ".floating_ip", rec.get("floating_ip"))
            if fip is not None:
                bad = None
                rng = next((f for f in fab.floating_ranges if fip in f), None)
                if rng is None:
                    bad = "is outside floating_ranges [%s]" % ", ".join(f.text for f in fab.floating_ranges)
                elif rng.is_unusable_host(fip):
                    bad = "is the network or broadcast address of floating range %s" % rng.text
                elif fip in floating:
                    bad = "is also the floating IP of %s" % floating[fip]
                elif fip in public:
                    bad = "is also the public address of %s" % public[fip]
                if bad:
                    chk.add(label + ".floating_ip", "%s %s" % (ntoa(fip), bad))
                    ok = False
                else:
                    floating[fip] = label
        ifname = rec.get("interface")
        if ifname is None:
            if isinstance(name, str) and _LABEL_RE.fullmatch(name):
                ifname = default_ifname(name, prefix)
        elif not valid_ifname(ifname) or not ifname.startswith(prefix) or ifname == prefix:
            chk.add(label + ".interface", "%s must be a valid interface name (<= 15 chars) starting with %s"
                    % (_show(ifname), prefix))
            ok = False
        if ok and ifname is not None:
            key = (host.name, ifname)
            if key in ifnames:
                chk.add(label + ".interface", "%s is also the interface of %s on %s"
                        % (ifname, ifnames[key], host.name))
                ok = False
            else:
                ifnames[key] = label
        if ok:
            host.instances.append(Instance(name, mac, ip, fip, ifname, host, subnet, gw))
    for h in fab.hosts.values():
        if h.public_address is not None and h.public_address in floating:
            chk.add("%s.%s.ocs_public_address" % (h.group, h.name), "%s is also the floating IP of %s"
                    % (ntoa(h.public_address), floating[h.public_address]))
    for rack in fab.racks.values():
        for net, gw in zip(rack.instance_subnets, rack.gateways):
            if gw in host_addrs:
                chk.add("ocs_racks.%s.instance_gateway" % rack.id, "%s is also the address of host %s"
                        % (ntoa(gw), host_addrs[gw].name))


BGP_KEYS = {"bfd", "graceful_restart", "keepalive", "holdtime", "password"}
_BGP_PASSWORD_RE = re.compile(r"[A-Za-z0-9._~+=@%^*-]{1,80}")


def _bgp(chk, fab, data):
    """ocs_fabric.bgp: session knobs of every fabric BGP session (FRR)."""
    where = "ocs_fabric.bgp"
    if data is None:
        return
    if not isinstance(data, dict):
        chk.add(where, "must be a mapping {%s}" % ", ".join(sorted(BGP_KEYS)))
        return
    _unknown_keys(chk, where, data, BGP_KEYS)
    out = {}
    for key in ("bfd", "graceful_restart"):
        if key in data:
            if not isinstance(data[key], bool):
                chk.add("%s.%s" % (where, key), "%s must be true or false" % _show(data[key]))
            else:
                out[key] = data[key]
    keepalive, holdtime = data.get("keepalive", 3), data.get("holdtime", 9)
    for key, val, low in (("keepalive", keepalive, 1), ("holdtime", holdtime, 3)):
        if isinstance(val, bool) or not isinstance(val, int) or not low <= val <= 65535:
            chk.add("%s.%s" % (where, key), "%s must be an integer from %d to 65535" % (_show(val), low))
            return
    if holdtime < 3 * keepalive:
        chk.add(where + ".holdtime", "%d must be at least 3 times keepalive %d" % (holdtime, keepalive))
    else:
        out.update(keepalive=keepalive, holdtime=holdtime)
    pw = data.get("password")
    if pw is not None:
        if not isinstance(pw, str) or _BGP_PASSWORD_RE.fullmatch(pw) is None:
            chk.add(where + ".password", "must be 1-80 characters of letters, digits and ._~+=@%^*- "
                    "(the value is not shown)")
        else:
            out["password"] = pw
    fab.bgp = out


def _unnumbered(chk, fab):
    """An unnumbered uplink (no peer) needs a downlink one tier up naming the
    host: that is the interface the upper side's BGP session listens on."""
    named = {}
    for host in fab.hosts.values():
        for down in host.downlinks:
            if down.host is not None:
                named.setdefault(down.host, set()).add(host.role)
    for host in fab.hosts.values():
        if host.role == "hypervisor" and fab.routing_mode != "bgp":
            continue
        upper = {"hypervisor": "tor", "tor": "spine", "nat_gateway": "spine"}.get(host.role)
        if upper is None:
            continue
        for i, up in enumerate(host.uplinks):
            if up.peer is None and upper not in named.get(host.name, ()):
                chk.add("%s.%s.ocs_uplinks[%d].peer" % (host.group, host.name, i),
                        "is not set (BGP unnumbered), but no %s has an ocs_downlinks entry with host %s"
                        % ("ToR of rack %s" % host.rack.id if upper == "tor" and host.rack else "spine", host.name))
                break


def _gateway_border_links(chk, fab):
    """nat_mode gateway: the NAT gateways peer with the border (single-hop
    eBGP), so every border peer must be on a link of every gateway."""
    for host in fab.by_role["nat_gateway"]:
        nets = [up.net for up in host.uplinks if up.net is not None]
        for ip, dummy in fab.border_peers:
            if not any(ip in net for net in nets):
                chk.add("%s.%s.ocs_uplinks" % (host.group, host.name),
                        "has no link to border peer %s: with nat_mode gateway NAT gateway %s peers with "
                        "ocs_fabric.border_peers, so each border peer must lie inside the network of one of its "
                        "uplinks" % (ntoa(ip), host.name))


def build(data):
    """Validate the whole fabric; return a :class:`Fabric` or raise FabricError."""
    chk = _Checker()
    fab = Fabric()
    if not isinstance(data, dict):
        raise FabricError(["fabric input must be a mapping"])
    groups = data.get("groups") or {}
    hostvars = data.get("hostvars") or {}
    if not isinstance(groups, dict):
        raise FabricError(["groups must be a mapping of group name to host names"])
    groups = {g: list(groups.get(g) or []) for g in ROLE_GROUPS}
    _settings(chk, fab, data.get("fabric"), groups)
    _racks(chk, fab, data.get("racks"))
    _hosts(chk, fab, groups, hostvars)
    _instances(chk, fab, hostvars, data.get("instances_records"))
    _policy(chk, fab, data.get("fabric"))
    fab.infrastructure = _infrastructure(fab)
    _unnumbered(chk, fab)
    if fab.nat_mode == "gateway":
        _gateway_border_links(chk, fab)
    if fab.nat_mode == "gateway" and not fab.by_role["nat_gateway"] and groups["hypervisors"]:
        chk.add("ocs_fabric.nat_mode", "is gateway, but group nat_gateways is empty")
    if fab.nat_mode == "gateway" and fab.by_role["nat_gateway"] and not fab.internal_ranges:
        chk.add("ocs_fabric.internal_ranges", "is empty, but nat_mode gateway needs it (the NAT gateways tell "
                "east-west from outbound traffic by it)")
    if chk.problems:
        raise FabricError(chk.problems)
    return fab


__all__ = ["build", "Fabric", "Host", "Instance", "Rack", "Uplink", "Net", "default_ifname", "HOST_KEYS",
           "ROLE_GROUPS"]
