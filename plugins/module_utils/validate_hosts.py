# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the hosts: one role each (its group), name, address, rack, ASN,
public address, uplinks and downlinks; then across hosts: interface addresses
unique fleet-wide, each numbered uplink's peer an address of a host one tier
up, each downlink's host one tier down, every rack with hypervisors has a ToR;
the edge (edge.py): every edge host has a border link, a border link's network
carries no other fabric address; each optional ocs_address6 (:mod:`validate_ip6`).
Needs the settings and the racks first."""

import re

from .addr import ntoa, parse_iface_addr, valid_ifname
from .check import asn_field, ip_field, show, unknown_keys, where
from .edge import border_links, border_set
from .model import ROLE_GROUPS, ROLE_OF_GROUP, Downlink, Host, Uplink
from .validate_bgp import password
from .validate_ip6 import LINK_KEYS6, host_addresses6, iface_addr6

UPLINK_KEYS = {"interface", "address", "peer", "password"}
DOWNLINK_KEYS = {"interface", "address", "host"}
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62})")
_UPPER = {"hypervisor": ("tor",), "tor": ("spine",), "nat_gateway": ("spine",), "spine": ()}


def hosts(chk, fab, groups, hostvars):
    """Every host of the role groups (in name order) into ``fab.hosts``,
    ``fab.by_role`` and its rack; then the checks across hosts."""
    role_of = _groups(chk, groups)
    addresses = {}  # ocs_address int -> where
    ifaddrs = []  # (where, host name, int) of every interface address
    for name in sorted(role_of):
        host = _host(chk, fab, name, role_of[name], hostvars, addresses, ifaddrs)
        if host is None:
            continue
        fab.hosts[name] = host
        fab.by_role[host.role].append(host)
        if host.rack is not None and host.role in ("tor", "hypervisor"):
            (host.rack.tors if host.role == "tor" else host.rack.hypervisors).append(host)
    _interface_addresses(chk, fab, ifaddrs)
    _downlink_hosts(chk, fab)
    host_addresses6(chk, fab, hostvars)
    for rack in fab.racks.values():
        if rack.hypervisors and not rack.tors:
            chk.add(where("ocs_racks", rack.id), "has hypervisors but no ToR in group tors")


def role_groups(chk, groups):
    """{role group: [host name]} of the inventory's groups: a group that is not a list, and a
    member that is not a string (a number, a list, a mapping), is reported and left out."""
    out = {}
    for group in ROLE_GROUPS:
        members = groups.get(group) or []
        if not isinstance(members, (list, tuple)):
            chk.add(group, "must be a list of host names, got %s" % show(members))
            members = []
        out[group] = []
        for i, name in enumerate(members):
            if isinstance(name, str):
                out[group].append(name)
            else:
                chk.add(where(group, i), "%s must be a host name (a string)" % show(name))
    return out


def _groups(chk, groups):
    """{host name: its group}; a host in two groups keeps the first."""
    role_of = {}
    for group in ROLE_GROUPS:
        members = groups.get(group) or []
        for name in members:
            if name in role_of:
                chk.add(where(group, str(name)), "is also in group %s (a host has one role)" % role_of[name])
                continue
            role_of[name] = group
    return role_of


def _host(chk, fab, name, group, hostvars, addresses, ifaddrs):
    """One host, or None when its name is not valid or its variables are not a mapping (reported)."""
    role = ROLE_OF_GROUP[group]
    hw = where(group, str(name))
    if not isinstance(name, str) or _HOSTNAME_RE.fullmatch(name) is None:
        chk.add(hw, "host name must be 1-63 characters of letters, digits, '.', '-' and '_'")
        return None
    hv = hostvars.get(name) or {}
    if not isinstance(hv, dict):
        chk.add(hw, "host variables must be a mapping, got %s" % show(hv))
        return None
    host = Host(name, role)
    host.address = ip_field(chk, where(hw, "ocs_address"), hv.get("ocs_address"))
    host.rack = _rack(chk, fab, hw, role, hv.get("ocs_rack"))
    if host.address is not None:
        _address(chk, fab, hw, host, addresses)
    host.asn = _asn(chk, fab, hw, host, hv.get("ocs_asn"))
    host.public_address = _public_address(chk, fab, hw, role, hv.get("ocs_public_address"))
    names = set()  # the host's interface names
    _uplinks(chk, fab, hw, host, hv, names, ifaddrs)
    _downlinks(chk, hw, host, hv, names, ifaddrs)
    if hv.get("ocs_rack") is None and host.address is not None:
        for rack in fab.racks.values():
            if host.address in rack.host_subnet or rack.subnet_of(host.address)[0] is not None:
                chk.add(where(hw, "ocs_address"), "%s lies in rack %s, but %s has no ocs_rack"
                        % (ntoa(host.address), rack.id, name))
    return host


def _rack(chk, fab, hw, role, rid):
    """The host's Rack: ToRs and hypervisors have one, NAT gateways may, spines do not."""
    if rid is None:
        if role in ("tor", "hypervisor"):
            chk.add(where(hw, "ocs_rack"), "is required")
    elif role == "spine":
        chk.add(where(hw, "ocs_rack"), "a spine belongs to no rack")
    elif not isinstance(rid, str) or rid not in fab.racks:
        chk.add(where(hw, "ocs_rack"), "%s is not a rack of ocs_racks" % show(rid))
    else:
        return fab.racks[rid]
    return None


def _address(chk, fab, hw, host, addresses):
    """ocs_address: unique, in the rack's host subnet, inside internal_ranges."""
    place = where(hw, "ocs_address")
    if host.address in addresses:
        chk.add(place, "%s is also the address of %s" % (ntoa(host.address), addresses[host.address]))
    else:
        addresses[host.address] = hw
    if host.rack is not None and host.address not in host.rack.host_subnet:
        chk.add(place, "%s is outside rack %s host_subnet %s"
                % (ntoa(host.address), host.rack.id, host.rack.host_subnet.text))
    if fab.internal_ranges and not any(host.address in i for i in fab.internal_ranges):
        chk.add(place, "%s is not inside internal_ranges" % ntoa(host.address))


def _asn(chk, fab, hw, host, asn):
    """ocs_asn, or the role's default (a ToR: its rack's); spines share spine_asn."""
    if asn is not None:
        asn = asn_field(chk, where(hw, "ocs_asn"), asn)
        if host.role == "spine" and asn is not None and asn != fab.spine_asn:
            chk.add(where(hw, "ocs_asn"), "%d differs from ocs_fabric.spine_asn %s (spines share one ASN)"
                    % (asn, fab.spine_asn))
    if asn is None:
        asn = {"spine": fab.spine_asn, "hypervisor": fab.hypervisor_asn, "nat_gateway": fab.gateway_asn,
               "tor": host.rack.asn if host.rack else None}[host.role]
    return asn


def _public_address(chk, fab, hw, role, pub):
    """ocs_public_address: NAT gateways and (nat_mode host) hypervisors need one, in floating_ranges."""
    place = where(hw, "ocs_public_address")
    if pub is None:
        if role == "nat_gateway" or (role == "hypervisor" and fab.nat_mode == "host"):
            chk.add(place, "is required (%s)" % (
                "NAT gateway" if role == "nat_gateway" else "hypervisor with nat_mode host"))
        return None
    if role not in ("hypervisor", "nat_gateway"):
        chk.add(place, "only hypervisors and NAT gateways have a public address")
        return None
    address = ip_field(chk, place, pub)
    if address is not None and not any(address in f for f in fab.floating_ranges):
        chk.add(place, "%s is outside floating_ranges" % ntoa(address))
    return address


def _uplinks(chk, fab, hw, host, hv, names, ifaddrs):
    prefix = fab.instance_ifname_prefix
    keys = UPLINK_KEYS | (LINK_KEYS6 if fab.dual_stack else set())
    for lw, link, ifname, address, net in _links(chk, hw, "ocs_uplinks", hv, keys, names):
        if address is not None:
            ifaddrs.append((where(lw, "address"), host.name, address))
        if ifname.startswith(prefix) and host.role == "hypervisor":
            chk.add(where(lw, "interface"), "%s starts with the instance interface prefix %s" % (ifname, prefix))
        peer = None
        if link.get("peer") is not None:
            peer = ip_field(chk, where(lw, "peer"), link["peer"])
            if peer is not None and net is not None and (peer not in net or peer == address):
                chk.add(where(lw, "peer"), "%s is not another address of the link %s" % (ntoa(peer), net.text))
        if host.role == "hypervisor":
            _in_host_subnet(chk, lw, host, address)
        secret = password(chk, where(lw, "password"), link.get("password"))
        uplink = Uplink(ifname, address, net, peer, password=secret)
        if fab.dual_stack:
            uplink.address6, uplink.net6 = iface_addr6(chk, where(lw, "address6"), link.get("address6"))
        host.uplinks.append(uplink)


def _downlinks(chk, hw, host, hv, names, ifaddrs):
    if hv.get("ocs_downlinks") and host.role not in ("tor", "spine"):
        chk.add(where(hw, "ocs_downlinks"), "only ToRs and spines have downlinks")
        return
    for lw, link, ifname, address, net in _links(chk, hw, "ocs_downlinks", hv, DOWNLINK_KEYS, names):
        if address is not None:
            ifaddrs.append((where(lw, "address"), host.name, address))
        if host.role == "tor":
            _in_host_subnet(chk, lw, host, address)
        other = link.get("host")
        if other is not None and not isinstance(other, str):
            chk.add(where(lw, "host"), "%s is not a host name" % show(other))
            other = None
        host.downlinks.append(Downlink(ifname, address, net, other))


def _links(chk, hw, key, hv, keys, names):
    """Yield (where, link, interface, address, net) for each well-formed entry
    of a host's ``ocs_uplinks`` or ``ocs_downlinks`` (``key``); report the rest.
    ``names`` (the host's interface names) is filled in."""
    links = hv.get(key, [])
    # the shape in messages: the link's place (a per-link password is optional, documented)
    shape = "{%s}" % ", ".join(sorted(keys - {"password", "address6"}, key=lambda k: (k != "interface", k)))
    if not isinstance(links, list):
        chk.add(where(hw, key), "must be a list of %s" % shape)
        return
    for i, link in enumerate(links):
        lw = where(hw, key, i)
        if not isinstance(link, dict):
            chk.add(lw, "must be a mapping %s" % shape)
            continue
        unknown_keys(chk, lw, link, keys)
        ifname = link.get("interface")
        if not valid_ifname(ifname):
            chk.add(where(lw, "interface"), "%s is not a valid interface name" % show(ifname))
            continue
        if ifname in names:
            chk.add(where(lw, "interface"), "%s is listed twice" % ifname)
        names.add(ifname)
        address = net = None
        if link.get("address") is not None:
            try:
                address, net = parse_iface_addr(link["address"])
            except ValueError as exc:
                chk.add(where(lw, "address"), "%s %s" % (show(link["address"]), exc))
        yield lw, link, ifname, address, net


def _in_host_subnet(chk, lw, host, address):
    """A rack host's link address lies in its rack's host subnet."""
    if host.rack is not None and address is not None and address not in host.rack.host_subnet:
        chk.add(where(lw, "address"), "%s is outside rack %s host_subnet %s"
                % (ntoa(address), host.rack.id, host.rack.host_subnet.text))


def _interface_addresses(chk, fab, ifaddrs):
    """Interface addresses are addresses too: unique fleet-wide, but a host may
    carry its own ocs_address on its uplink. Then resolve the uplinks' peers."""
    owner = {}
    for name, host in fab.hosts.items():
        if host.address is not None:
            owner[host.address] = name
    for place, host_name, ip in ifaddrs:
        prev = owner.get(ip)
        if prev is not None and prev != host_name:
            chk.add(place, "%s is also an address of %s" % (ntoa(ip), prev))
        elif prev is None:
            owner[ip] = host_name
    _resolve_peers(chk, fab, owner)
    _edge_links(chk, fab, owner)


def _resolve_peers(chk, fab, owner):
    """Each numbered uplink's peer is an address of a host one tier up (a spine's and a NAT
    gateway's may be a border peer: a gateway's border link is used in nat_mode gateway, and
    may stay in the inventory in nat_mode host, so that a switch of mode rewires nothing)."""
    border = border_set(fab)
    for host in fab.hosts.values():
        for i, up in enumerate(host.uplinks):
            if up.peer is None:
                continue
            uw = where(host.group, host.name, "ocs_uplinks", i, "peer")
            other = fab.hosts.get(owner.get(up.peer))
            if host.role == "nat_gateway" and up.peer in border:
                continue  # its border link: the session is used in nat_mode gateway
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


def _edge_links(chk, fab, owner):
    """With border peers, every edge host (spines in nat_mode host, NAT gateways in nat_mode
    gateway) has an uplink to one; a border link's network holds no other fabric address
    (the edge filter drops every fabric source arriving on it)."""
    if not fab.border_peers:
        return
    edge_role = "nat_gateway" if fab.nat_mode == "gateway" else "spine"
    ends = {up.address for h in fab.hosts.values() for up in border_links(fab, h) if up.address is not None}
    for host in fab.hosts.values():
        links = border_links(fab, host)
        if host.role == edge_role and not links and not _reported(chk, host):
            chk.add(where(host.group, host.name, "ocs_uplinks"),
                    "has no uplink to a border peer (ocs_fabric.border_peers): with nat_mode %s %s is the edge, "
                    "and its border links are where ingress anti-spoofing filters" % (fab.nat_mode, host.name))
        for up in links:
            if up.net is None:
                continue
            shared = sorted((ip, name) for ip, name in owner.items() if ip in up.net and ip not in ends)
            for ip, name in shared[:1]:
                chk.add(where(host.group, host.name, "ocs_uplinks", host.uplinks.index(up), "address"),
                        "border link %s is shared with %s (%s): the edge filter on %s would drop the fabric's "
                        "traffic on it; give the border a link of its own"
                        % (up.net.text, name, ntoa(ip), up.interface))


def _reported(chk, host):
    """Whether a problem of the host's uplinks or of the border peers is already reported (a
    missing border link would only repeat it)."""
    mine = where(host.group, host.name, "ocs_uplinks")
    return any(p.startswith((mine + " ", mine + "[", "ocs_fabric.border_peers")) for p in chk.problems)


def _downlink_hosts(chk, fab):
    """A downlink's host is one tier down: a ToR's, a hypervisor of its rack; a spine's, a ToR or NAT gateway."""
    for host in fab.hosts.values():
        for i, down in enumerate(host.downlinks):
            if down.host is None:
                continue
            other = fab.hosts.get(down.host)
            want = ("hypervisor",) if host.role == "tor" else ("tor", "nat_gateway")
            if other is None or other.role not in want or (host.role == "tor" and other.rack is not host.rack):
                chk.add(where(host.group, host.name, "ocs_downlinks", i, "host"),
                        "%s is not a %s" % (show(down.host), "hypervisor of rack %s" % host.rack.id
                                            if host.role == "tor" and host.rack else "ToR or NAT gateway"))
