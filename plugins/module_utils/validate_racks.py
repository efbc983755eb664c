# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate ``ocs_racks``: rack ids, ASNs, host subnets, instance subnets and
their gateway IPs; no rack network overlaps another or a floating range, and
each lies inside internal_ranges. The IPv6 instance subnets (optional) are
:mod:`validate_ip6`'s. Needs the settings (ASNs, ranges) first."""

import re

from .addr import ntoa, parse_net
from .check import asn_field, ip_field, net_list_field, overlaps, show, unknown_keys, where
from .model import Rack
from .validate_ip6 import RACK_KEYS6, listed, rack6, rack_networks6

RACK_KEYS = {"asn", "host_subnet", "instance_subnets", "instance_gateway"} | RACK_KEYS6
_RACK_ID_RE = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,30}[a-z0-9])?")
HERE = "ocs_racks"


def racks(chk, fab, data):
    """Every rack of ``ocs_racks`` (in id order) into ``fab.racks``, then the networks across racks."""
    if not isinstance(data, dict):
        chk.add(HERE, "must be a mapping of rack id to {asn, host_subnet, instance_subnets}")
        return
    asns = {}  # asn -> rack id
    all_nets = []  # (where, Net) of every rack network
    all_nets6 = []  # (where, Net6) of every rack IPv6 network
    for rid in sorted(data, key=str):
        rack = _rack(chk, fab, rid, data[rid], asns, (all_nets, all_nets6))
        if rack is not None:
            fab.racks[rid] = rack
    _rack_networks(chk, fab, all_nets)
    rack_networks6(chk, fab, all_nets6)


def _rack(chk, fab, rid, spec, asns, nets):
    """One rack, or None when it is not whole (the problems are reported); ``nets``: the lists
    (where, Net) and (where, Net6) of every rack network, filled in."""
    all_nets, all_nets6 = nets
    rw = where(HERE, show(rid))
    if not isinstance(rid, str) or _RACK_ID_RE.fullmatch(rid) is None:
        chk.add(rw, "rack id must be 1-32 characters of a-z, 0-9, '-' and '_'")
        return None
    if not isinstance(spec, dict):
        chk.add(rw, "must be a mapping {asn, host_subnet, instance_subnets}")
        return None
    unknown_keys(chk, rw, spec, RACK_KEYS, listed(RACK_KEYS, RACK_KEYS6, fab.dual_stack))
    asn = _rack_asn(chk, fab, rw, rid, spec, asns)
    host_subnet = _host_subnet(chk, rw, spec, all_nets)
    subnets = _instance_subnets(chk, rw, spec, all_nets)
    gateway_ips = _gateway_ips(chk, rw, spec, subnets)
    subnets6, ip6_from_ip4 = rack6(chk, fab, rw, spec, all_nets6)
    if asn is not None and host_subnet is not None and subnets:
        return Rack(rid, asn, host_subnet, subnets, gateway_ips, instance_subnets6=subnets6,
                    ip6_from_ip4=ip6_from_ip4)
    return None


def _rack_asn(chk, fab, rw, rid, spec, asns):
    """The rack's ASN: one per rack, none of the fabric-wide ASNs."""
    asn = asn_field(chk, where(rw, "asn"), spec.get("asn"))
    if asn is not None:
        if asn in asns:
            chk.add(where(rw, "asn"), "%d is also the ASN of rack %s" % (asn, asns[asn]))
        asns[asn] = rid
        for label, other in (("spine_asn", fab.spine_asn), ("hypervisor_asn", fab.hypervisor_asn),
                             ("gateway_asn", fab.gateway_asn)):
            if asn == other:
                chk.add(where(rw, "asn"), "%d is also %s" % (asn, where("ocs_fabric", label)))
    return asn


def _host_subnet(chk, rw, spec, all_nets):
    hs = spec.get("host_subnet")
    if hs is None:
        chk.add(where(rw, "host_subnet"), "is required")
        return None
    try:
        host_subnet = parse_net(hs)
    except ValueError as exc:
        chk.add(where(rw, "host_subnet"), "%s %s" % (show(hs), exc))
        return None
    all_nets.append((where(rw, "host_subnet"), host_subnet))
    return host_subnet


def _instance_subnets(chk, rw, spec, all_nets):
    """The instance subnets of at least /30 (a smaller one is reported, and left out)."""
    subnets = net_list_field(chk, where(rw, "instance_subnets"), spec.get("instance_subnets"), True)
    if spec.get("instance_subnets") is not None and not spec.get("instance_subnets"):
        chk.add(where(rw, "instance_subnets"), "must list at least one network")
    for i, net in enumerate(subnets):
        if net.prefixlen > 30:
            chk.add(where(rw, "instance_subnets", i), "%s is smaller than a /30" % net.text)
        all_nets.append((where(rw, "instance_subnets", i), net))
    return [n for n in subnets if n.prefixlen <= 30]


def _gateway_ips(chk, rw, spec, subnets):
    """The instances' gateway IP of each instance subnet: its first host, or for
    the first subnet ``instance_gateway`` when set (a usable address in it)."""
    gateway_ips = [n.first + 1 for n in subnets]
    raw = spec.get("instance_gateway")
    if raw is None or not subnets:
        return gateway_ips
    place = where(rw, "instance_gateway")
    gateway_ip = ip_field(chk, place, raw)
    if gateway_ip is None:
        return gateway_ips
    if gateway_ip not in subnets[0]:
        chk.add(place, "%s is outside the first instance subnet %s" % (ntoa(gateway_ip), subnets[0].text))
    elif subnets[0].is_unusable_host(gateway_ip):
        chk.add(place, "%s is the network or broadcast address of %s" % (ntoa(gateway_ip), subnets[0].text))
    else:
        gateway_ips[0] = gateway_ip
    return gateway_ips


def _rack_networks(chk, fab, all_nets):
    """No rack network overlaps another or a floating range; each is inside internal_ranges."""
    for (la, a), (lb, b) in overlaps(all_nets):
        chk.add(lb, "%s overlaps %s %s" % (b.text, la, a.text))
    for label, net in all_nets:
        for f in fab.floating_ranges:
            if net.overlaps(f):
                chk.add(label, "%s overlaps floating range %s" % (net.text, f.text))
        if fab.internal_ranges and not any(net.within(i) for i in fab.internal_ranges):
            chk.add(label, "%s is not inside internal_ranges [%s]"
                    % (net.text, ", ".join(i.text for i in fab.internal_ranges)))
