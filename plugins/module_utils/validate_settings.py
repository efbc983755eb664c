# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate ``ocs_fabric``, the fabric-wide settings: modes, ASNs, ranges,
border peers, metadata, DNS, MTU (instances' and the edge's), interface prefix, lease time (and, through
:mod:`validate_bgp`, the BGP session knobs; through :mod:`validate_ip6`, internal_ranges6). The host policy settings are
:mod:`validate_policy`'s, checked after the racks."""

import re

from .addr import ntoa
from .host_state import DOMAIN_RE
from .check import (asn_field, conn_limit_field, duration, ip_field, net_list_field, overlaps, show, unknown_keys,
                    where)
from .validate_bgp import BORDER_KEYS, bgp, border, border_peer
from .validate_ip6 import FABRIC_KEYS6, LINK_KEYS6, border_peer6, dns_servers6, inbound6, internal_ranges6, listed

FABRIC_KEYS = {
    "spine_asn", "hypervisor_asn", "gateway_asn", "border_peers", "floating_ranges", "internal_ranges",
    "metadata", "bgp", "dns_servers", "domain", "mtu", "edge_mtu", "instance_ifname_prefix", "nat_mode",
    "routing_mode", "instances_file", "dhcp_lease_time", "border", "host_policy", "management_ranges",
    "monitoring_ranges", "host_services", "instance_services", "conn_limit",
} | FABRIC_KEYS6
METADATA_KEYS = {"ip", "port", "target", "target_port"}
DHCP_LEASE_MIN, DHCP_LEASE_MAX = 120, 365 * 86400

_PREFIX_RE = re.compile(r"[a-z][a-z0-9-]{0,7}")

HERE = "ocs_fabric"
_ASN_FIELDS = ("spine_asn", "hypervisor_asn", "gateway_asn")


def settings(chk, fab, data, groups):
    """Every field of ``ocs_fabric`` but the host policy ones, in this order."""
    if not isinstance(data, dict):
        chk.add(HERE, "must be a mapping, got %s" % show(data))
        data = {}
    fab.dual_stack = bool(data.get("internal_ranges6"))
    unknown_keys(chk, HERE, data, FABRIC_KEYS, listed(FABRIC_KEYS, FABRIC_KEYS6, fab.dual_stack))
    _modes(chk, fab, data)
    _asns(chk, fab, data, groups)
    _ranges(chk, fab, data)
    internal_ranges6(chk, fab, data)
    inbound6(chk, fab, data)
    border(chk, fab, data.get("border"))
    _border_peers(chk, fab, data.get("border_peers", []))
    _metadata(chk, fab, data.get("metadata"))
    _dns(chk, fab, data)
    dns_servers6(chk, fab, data)
    _interfaces(chk, fab, data)
    fab.instances_file = data.get("instances_file")
    bgp(chk, fab, data.get("bgp"))
    _lease_time(chk, fab, data)
    _conn_limit(chk, fab, data)
    _asn_clashes(chk, fab)


def _modes(chk, fab, data):
    fab.nat_mode = data.get("nat_mode", "host")
    if fab.nat_mode not in ("host", "gateway"):
        chk.add(where(HERE, "nat_mode"), "%s must be host or gateway" % show(fab.nat_mode))
    fab.routing_mode = data.get("routing_mode", "bgp")
    if fab.routing_mode not in ("bgp", "static"):
        chk.add(where(HERE, "routing_mode"), "%s must be bgp or static" % show(fab.routing_mode))


def _asns(chk, fab, data, groups):
    fab.spine_asn = asn_field(chk, where(HERE, "spine_asn"), data.get("spine_asn"), required=bool(groups["spines"]))
    fab.hypervisor_asn = asn_field(chk, where(HERE, "hypervisor_asn"), data.get("hypervisor_asn"),
                                   required=fab.routing_mode == "bgp" and bool(groups["hypervisors"]))
    fab.gateway_asn = asn_field(chk, where(HERE, "gateway_asn"), data.get("gateway_asn"),
                                required=bool(groups["nat_gateways"]))


def _ranges(chk, fab, data):
    """floating_ranges and internal_ranges: no overlap within each, nor between them."""
    fab.floating_ranges = net_list_field(chk, where(HERE, "floating_ranges"), data.get("floating_ranges", []), False)
    fab.internal_ranges = net_list_field(chk, where(HERE, "internal_ranges"), data.get("internal_ranges"), True)
    for name, nets in (("floating_ranges", fab.floating_ranges), ("internal_ranges", fab.internal_ranges)):
        for (la, a), (lb, b) in overlaps(list(enumerate(nets))):
            chk.add(where(HERE, name, lb), "%s overlaps %s %s" % (b.text, where(name, la), a.text))
    for f in fab.floating_ranges:
        for i in fab.internal_ranges:
            if f.overlaps(i):
                chk.add(where(HERE, "floating_ranges"), "%s overlaps internal range %s" % (f.text, i.text))


def _border_peers(chk, fab, peers):
    """border_peers: [{address, asn}], each address once; each may carry its own border session
    settings (validate_bgp.BORDER_KEYS, over ocs_fabric.border)."""
    if not isinstance(peers, list):
        chk.add(where(HERE, "border_peers"), "must be a list of {address, asn}")
        peers = []
    seen = set()
    for i, peer in enumerate(peers):
        pw = where(HERE, "border_peers", i)
        if not isinstance(peer, dict):
            chk.add(pw, "must be a mapping {address, asn}")
            continue
        unknown_keys(chk, pw, peer, {"address", "asn"} | BORDER_KEYS | (LINK_KEYS6 if fab.dual_stack else set()))
        ip = ip_field(chk, where(pw, "address"), peer.get("address"))
        asn = asn_field(chk, where(pw, "asn"), peer.get("asn"))
        if ip is not None and ip in seen:
            chk.add(where(pw, "address"), "%s is listed twice" % ntoa(ip))
        border_peer(chk, fab, pw, peer, ip)
        if fab.dual_stack:
            border_peer6(chk, fab, pw, peer, ip if ip not in seen else None, asn, i)
        if ip is not None and asn is not None:
            seen.add(ip)
            fab.border_peers.append((ip, asn))


def _metadata(chk, fab, meta):
    """metadata: {ip, port, target, target_port}, or None (no metadata service)."""
    if meta is None:
        return
    mw = where(HERE, "metadata")
    if not isinstance(meta, dict):
        chk.add(mw, "must be a mapping {ip, port, target, target_port}")
        return
    unknown_keys(chk, mw, meta, METADATA_KEYS)
    ip = ip_field(chk, where(mw, "ip"), meta.get("ip", "169.254.169.254"))
    target = ip_field(chk, where(mw, "target"), meta.get("target"))
    port = meta.get("port", 80)
    tport = meta.get("target_port", port)
    for name, val in (("port", port), ("target_port", tport)):
        if isinstance(val, bool) or not isinstance(val, int) or not 1 <= val <= 65535:
            chk.add(where(mw, name), "%s is not a TCP port" % show(val))
    if None not in (ip, target):
        fab.metadata = {"ip": ip, "port": port, "target": target, "target_port": tport}


def _dns(chk, fab, data):
    """dns_servers (IPv4 addresses) and domain."""
    dns = data.get("dns_servers", [])
    if not isinstance(dns, list):
        chk.add(where(HERE, "dns_servers"), "must be a list of IPv4 addresses")
        dns = []
    for i, d in enumerate(dns):
        ip = ip_field(chk, where(HERE, "dns_servers", i), d)
        if ip is not None:
            fab.dns_servers.append(ip)
    domain = data.get("domain")
    if domain is not None and (not isinstance(domain, str) or len(domain) > 253
                               or DOMAIN_RE.fullmatch(domain) is None):
        chk.add(where(HERE, "domain"), "%s is not a lower-case DNS domain name" % show(domain))
    else:
        fab.domain = domain


def _interfaces(chk, fab, data):
    """mtu, edge_mtu and instance_ifname_prefix."""
    for key in ("mtu", "edge_mtu"):
        mtu = data.get(key, 1500)
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not 576 <= mtu <= 9216:
            chk.add(where(HERE, key), "%s must be an integer from 576 to 9216" % show(mtu))
        else:
            setattr(fab, key, mtu)
    prefix = data.get("instance_ifname_prefix", "tap")
    if not isinstance(prefix, str) or _PREFIX_RE.fullmatch(prefix) is None:
        chk.add(where(HERE, "instance_ifname_prefix"),
                "%s must be 1-8 characters of a-z, 0-9 and '-', starting with a letter" % show(prefix))
    else:
        fab.instance_ifname_prefix = prefix


def _lease_time(chk, fab, data):
    lease = duration(data.get("dhcp_lease_time", "12h"))
    if lease is None or not DHCP_LEASE_MIN <= lease <= DHCP_LEASE_MAX:
        chk.add(where(HERE, "dhcp_lease_time"), "%s must be a lease time from 2m to 365d (seconds, or a number "
                "with unit s, m, h, d or w)" % show(data.get("dhcp_lease_time")))
    else:
        fab.dhcp_lease_time = lease


def _conn_limit(chk, fab, data):
    """conn_limit: the tracked connections each instance may open (instances may set their own)."""
    value = data.get("conn_limit")
    if value is not None:
        limit = conn_limit_field(chk, where(HERE, "conn_limit"), value)
        if limit is not None:
            fab.conn_limit = limit


def _asn_clashes(chk, fab):
    """spine_asn, hypervisor_asn and gateway_asn differ."""
    ids = [fab.spine_asn, fab.hypervisor_asn, fab.gateway_asn]
    for a in range(3):
        for b in range(a + 1, 3):
            if ids[a] is not None and ids[a] == ids[b]:
                chk.add(where(HERE, _ASN_FIELDS[b]), "%d is also %s" % (ids[b], _ASN_FIELDS[a]))


def gateway_mode(chk, fab, groups):
    """nat_mode gateway needs NAT gateways (when there are hypervisors) and internal_ranges."""
    if not fab.by_role["nat_gateway"] and groups["hypervisors"]:
        chk.add(where(HERE, "nat_mode"), "is gateway, but group nat_gateways is empty")
    if fab.by_role["nat_gateway"] and not fab.internal_ranges:
        chk.add(where(HERE, "internal_ranges"), "is empty, but nat_mode gateway needs it (the NAT gateways tell "
                "east-west from outbound traffic by it)")
