# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the instances, from the hypervisors' ``ocs_instances`` or from
``ocs_fabric.instances_file``: name, MAC, IP (in a rack instance subnet of its
hypervisor), IPv6 address (:mod:`validate_ip6`: given or derived), floating IP
and interface, each unique where it must be; public addresses unique and not
floating IPs; no host owns a rack's gateway IP.
Needs the hosts first. Each check is a dict lookup: linear in instances."""

from __future__ import annotations

from dataclasses import dataclass, field

from .addr import ntoa, parse_mac, valid_ifname
from .check import LABEL_RE, Place, conn_limit_field, ip_field, named, show, unknown_keys, where
from .model import Instance, default_ifname
from .validate_ip6 import INSTANCE_KEYS6, instance_inbound6, instance_ip6, listed

INSTANCE_KEYS = {"name", "mac", "ip", "floating_ip", "interface", "conn_limit"} | INSTANCE_KEYS6
FILE_INSTANCE_KEYS = INSTANCE_KEYS | {"hypervisor"}


@dataclass
class _Seen:
    """What the instances so far claimed (value -> where), and the addresses of the hosts.
    IPv6 ints have dicts of their own (the same int may be an IPv4 address too)."""

    host_addrs: dict  # ocs_address -> Host
    public: dict  # public address -> host location
    names: dict = field(default_factory=dict)
    macs: dict = field(default_factory=dict)
    ips: dict = field(default_factory=dict)
    floating: dict = field(default_factory=dict)
    ifnames: dict = field(default_factory=dict)  # (hypervisor name, interface) -> where
    host_addrs6: dict = field(default_factory=dict)  # ocs_address6 -> Host
    ips6: dict = field(default_factory=dict)


def instances(chk, fab, hostvars, records):
    """Every valid instance into its hypervisor's ``instances``, in input order."""
    seen = _Seen({h.address: h for h in fab.hosts.values() if h.address is not None}, _public_addresses(chk, fab))
    seen.host_addrs6 = {h.address6: h for h in fab.hosts.values() if h.address6 is not None}
    for label, host, rec in _records(chk, fab, hostvars, records):
        instance = _instance(chk, fab, seen, label, host, rec)
        if instance is not None:
            host.instances.append(instance)
    for h in fab.hosts.values():
        if h.public_address is not None and h.public_address in seen.floating:
            chk.add(where(h.group, h.name, "ocs_public_address"), "%s is also the floating IP of %s"
                    % (ntoa(h.public_address), seen.floating[h.public_address]))
    for rack in fab.racks.values():
        for gateway_ip in rack.gateway_ips:
            if gateway_ip in seen.host_addrs:
                chk.add(where("ocs_racks", rack.id, "instance_gateway"), "%s is also the address of host %s"
                        % (ntoa(gateway_ip), seen.host_addrs[gateway_ip].name))


def _public_addresses(chk, fab):
    """{public address: host location}; a public address belongs to one host."""
    public = {}
    for h in fab.hosts.values():
        if h.public_address is None:
            continue
        if h.public_address in public:
            chk.add(where(h.group, h.name, "ocs_public_address"), "%s is also the public address of %s"
                    % (ntoa(h.public_address), public[h.public_address]))
        else:
            public[h.public_address] = where(h.group, h.name)
    return public


def _records(chk, fab, hostvars, records):
    """Yield (where, hypervisor Host, record dict) from host_vars or the file."""
    in_vars = [h for h in fab.by_role["hypervisor"] if (hostvars.get(h.name) or {}).get("ocs_instances")]
    if records is None:
        yield from _host_var_records(chk, fab, hostvars)
    elif in_vars:
        chk.add(where("ocs_fabric", "instances_file"), "is set, but %s also define ocs_instances (use one or the "
                "other)" % ", ".join(where(h.group, h.name) for h in in_vars[:5]))
    else:
        yield from _file_records(chk, fab, records)


def _file_records(chk, fab, records):
    fields = listed(FILE_INSTANCE_KEYS, INSTANCE_KEYS6, fab.dual_stack)
    for place, rec in records:
        if isinstance(rec, str):  # a record the file parser could not read
            chk.add(place, rec)
            continue
        if not isinstance(rec, dict):
            chk.add(place, "must be a record {hypervisor, name, mac, ip, floating_ip, interface}")
            continue
        hv_name = rec.get("hypervisor")
        label = Place(named, place, rec.get("name"), hv_name)
        unknown_keys(chk, label, rec, FILE_INSTANCE_KEYS, fields)
        host = fab.hosts.get(hv_name) if isinstance(hv_name, str) else None
        if host is None or host.role != "hypervisor":
            chk.add(where(label, "hypervisor"), "%s is not a host of group hypervisors" % show(hv_name))
            continue
        yield label, host, rec


def _host_var_records(chk, fab, hostvars):
    fields = listed(INSTANCE_KEYS, INSTANCE_KEYS6, fab.dual_stack)
    for host in fab.by_role["hypervisor"]:
        items = (hostvars.get(host.name) or {}).get("ocs_instances") or []
        base = where(host.group, host.name, "ocs_instances")
        if not isinstance(items, list):
            chk.add(base, "must be a list of {name, mac, ip, floating_ip, interface}")
            continue
        for i, rec in enumerate(items):
            if not isinstance(rec, dict):
                chk.add(where(base, i), "must be a mapping {name, mac, ip, floating_ip, interface}")
                continue
            label = Place(named, Place(where, base, i), rec.get("name"))
            unknown_keys(chk, label, rec, INSTANCE_KEYS, fields)
            yield label, host, rec


def _instance(chk, fab, seen, label, host, rec):
    """One instance record: the Instance, or None when it has a problem (reported)."""
    name = rec.get("name")
    ok = _name(chk, seen, label, name)
    mac, mac_ok = _mac(chk, seen, label, rec.get("mac"))
    ip, subnet, gateway_ip, ip_ok = _ip(chk, seen, label, host, rec.get("ip"))
    ip6, ip6_ok = instance_ip6(chk, seen, label, host, rec.get("ip6"), ip if ip_ok else None)
    inbound6, in6_ok = instance_inbound6(chk, fab, label, rec.get("inbound6"), ip6 is not None or not ip6_ok)
    fip, fip_ok = _floating_ip(chk, fab, seen, label, rec.get("floating_ip"))
    conn_limit = conn_limit_field(chk, Place(where, label, "conn_limit"), rec.get("conn_limit"))
    ok = ok and mac_ok and ip_ok and ip6_ok and in6_ok and fip_ok and (conn_limit is not None or rec.get("conn_limit") is None)
    ifname, ok = _interface(chk, fab, seen, label, host, name, rec.get("interface"), ok)
    if not ok:
        return None
    return Instance(name, mac, ip, fip, ifname, host, subnet, gateway_ip, conn_limit, ip6, inbound6)


def _name(chk, seen, label, name):
    if not isinstance(name, str) or LABEL_RE.fullmatch(name) is None:
        chk.add(where(label, "name"), "%s is not a lower-case RFC 1123 label (a-z, 0-9, '-', at most 63)" % show(name))
        return False
    if name in seen.names:
        chk.add(where(label, "name"), "%s is also the name of %s" % (name, seen.names[name]))
        return False
    seen.names[name] = label
    return True


def _mac(chk, seen, label, value):
    """(lower-case MAC, ok)."""
    try:
        mac = parse_mac(value)
    except ValueError as exc:
        chk.add(where(label, "mac"), "%s %s" % (show(value), exc))
        return None, False
    if mac in seen.macs:
        chk.add(where(label, "mac"), "%s is also the MAC of %s" % (mac, seen.macs[mac]))
        return mac, False
    seen.macs[mac] = label
    return mac, True


def _ip(chk, seen, label, host, value):
    """(ip, its instance subnet, that subnet's gateway IP, ok): a usable address
    of a rack instance subnet of the hypervisor, not its gateway IP, unique."""
    ip = ip_field(chk, Place(where, label, "ip"), value)
    rack = host.rack
    if ip is None:
        return None, None, None, False
    if rack is None:
        return ip, None, None, True
    subnet, gateway_ip = rack.subnet_of(ip)
    if subnet is None:
        problem = "is outside rack %s instance_subnets [%s]" % (
            rack.id, ", ".join(n.text for n in rack.instance_subnets))
    elif subnet.is_unusable_host(ip):
        problem = "is the network or broadcast address of %s" % subnet.text
    elif ip == gateway_ip:
        problem = "is the gateway of %s in rack %s" % (subnet.text, rack.id)
    elif ip in seen.ips:
        problem = "is also the IP of %s" % seen.ips[ip]
    elif ip in seen.host_addrs:
        problem = "is also the address of host %s" % seen.host_addrs[ip].name
    else:
        seen.ips[ip] = label
        return ip, subnet, gateway_ip, True
    chk.add(where(label, "ip"), "%s %s" % (ntoa(ip), problem))
    return ip, subnet, gateway_ip, False


def _floating_ip(chk, fab, seen, label, value):
    """(floating IP or None, ok): a usable address of a floating range, unique, no host's public address."""
    if value is None:
        return None, True
    fip = ip_field(chk, Place(where, label, "floating_ip"), value)
    if fip is None:
        return None, True
    rng = next((f for f in fab.floating_ranges if fip in f), None)
    if rng is None:
        problem = "is outside floating_ranges [%s]" % ", ".join(f.text for f in fab.floating_ranges)
    elif rng.is_unusable_host(fip):
        problem = "is the network or broadcast address of floating range %s" % rng.text
    elif fip in seen.floating:
        problem = "is also the floating IP of %s" % seen.floating[fip]
    elif fip in seen.public:
        problem = "is also the public address of %s" % seen.public[fip]
    else:
        seen.floating[fip] = label
        return fip, True
    chk.add(where(label, "floating_ip"), "%s %s" % (ntoa(fip), problem))
    return fip, False


def _interface(chk, fab, seen, label, host, name, ifname, ok):
    """(interface name, ok): the given one (with the instance prefix) or the
    default one of a valid name; unique on the hypervisor (checked when ``ok``)."""
    prefix = fab.instance_ifname_prefix
    if ifname is None:
        if isinstance(name, str) and LABEL_RE.fullmatch(name):
            ifname = default_ifname(name, prefix)
    elif not valid_ifname(ifname) or not ifname.startswith(prefix) or ifname == prefix:
        chk.add(where(label, "interface"), "%s must be a valid interface name (<= 15 chars) starting with %s"
                % (show(ifname), prefix))
        ok = False
    if ok and ifname is not None:
        key = (host.name, ifname)
        if key in seen.ifnames:
            chk.add(where(label, "interface"), "%s is also the interface of %s on %s"
                    % (ifname, seen.ifnames[key], host.name))
            ok = False
        else:
            seen.ifnames[key] = label
    return ifname, ok
