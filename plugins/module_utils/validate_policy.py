# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validate the host policy settings of ``ocs_fabric``: host_policy,
management_ranges and monitoring_ranges (never a tenant network), host_services and
instance_services (metadata and DNS included by default). Needs the settings
and the racks first (the tenant networks)."""

import ipaddress

from .addr import parse_net, parse_net6
from .check import (mixed_net_list_field, port_field, proto_field, ip_field, show, unknown_keys,
                    where)
from .model import GROUP_OF_ROLE
from .validate_ip6 import address6

HOST_SERVICE_KEYS = {"proto", "port", "from", "roles"}
INSTANCE_SERVICE_KEYS = {"address", "proto", "port"}
HERE = "ocs_fabric"


def policy(chk, fab, data):
    """host_policy, management_ranges, host_services, instance_services (after the racks)."""
    data = data if isinstance(data, dict) else {}
    fab.host_policy = data.get("host_policy", True)
    if not isinstance(fab.host_policy, bool):
        chk.add(where(HERE, "host_policy"), "%s must be true or false" % show(fab.host_policy))
        fab.host_policy = True
    _management_ranges(chk, fab, data.get("management_ranges"))
    _monitoring_ranges(chk, fab, data.get("monitoring_ranges"))
    _host_services(chk, fab, data.get("host_services", []))
    if fab.metadata is not None:
        fab.instance_services.append((fab.metadata["target"], "tcp", fab.metadata["target_port"]))
    for dns in fab.dns_servers:
        fab.instance_services += [(dns, "udp", 53), (dns, "tcp", 53)]
    fab.instance_services6 += [(dns, proto, 53) for dns in fab.dns_servers6 for proto in ("udp", "tcp")]
    _instance_services(chk, fab, data.get("instance_services", []))
    fab.instance_services = sorted(set(fab.instance_services))
    fab.instance_services6 = sorted(set(fab.instance_services6))


def _management_ranges(chk, fab, value):
    """Where management may come from: required while the host policy is on, never a tenant network."""
    place = where(HERE, "management_ranges")
    fab.management_ranges, fab.management_ranges6 = mixed_net_list_field(chk, place, value, required=False)
    if fab.host_policy and value is None:
        chk.add(place, "is required while host_policy is on (the default): list the networks SSH and other "
                "management may come from (or set host_policy: false)")
    elif fab.host_policy and value == []:
        chk.add(place, "is empty: every host would be closed to its own management")
    _not_tenant(chk, fab, place, fab.management_ranges, "management", value)


def _not_tenant(chk, fab, place, nets, role, value=None):
    """No range of ``nets`` overlaps a tenant network (a floating range, an instance subnet); the IPv6
    items of the list ``value`` (given as is: errors name their own index) none of the IPv6 instance
    subnets."""
    tenant = [("floating range", f) for f in fab.floating_ranges]
    tenant += [("rack %s instance subnet" % r.id, n) for r in fab.racks.values() for n in r.instance_subnets]
    items = list(enumerate(nets)) if not isinstance(value, list) else list(_nets4(value, nets))
    if isinstance(value, list) and fab.dual_stack:
        tenant += [("rack %s instance subnet" % r.id, n) for r in fab.racks.values() for n in r.instance_subnets6]
        items += list(_nets6(value))
    for i, net in items:
        for what, other in tenant:
            if type(net) is type(other) and net.overlaps(other):
                chk.add(where(place, i), "%s overlaps %s %s (tenants would be %s)" % (net.text, what, other.text, role))


def _nets4(value, nets):
    """[(index in ``value``, Net)] of the valid IPv4 items ``nets`` of a list that may mix the families
    (an error names the item where the list has it, not its place among the IPv4 items)."""
    for i, item in enumerate(value):
        try:
            net = parse_net(item) if isinstance(item, str) and ":" not in item else None
        except ValueError:
            continue
        if net is not None and net in nets:
            yield i, net


def _nets6(value):
    """[(index, Net6)] of the valid IPv6 items of a mixed list (the others are reported already)."""
    for i, item in enumerate(value):
        if isinstance(item, str) and ":" in item:
            try:
                yield i, parse_net6(str(ipaddress.IPv6Network(item, strict=True)))
            except ValueError:
                continue


def _monitoring_ranges(chk, fab, value):
    """Where node_exporter (the ocs_l3.prom metrics) may be scraped from: optional, never a tenant network."""
    place = where(HERE, "monitoring_ranges")
    fab.monitoring_ranges, fab.monitoring_ranges6 = mixed_net_list_field(chk, place, value, required=False)
    _not_tenant(chk, fab, place, fab.monitoring_ranges, "monitoring", value)


def _host_services(chk, fab, value):
    place = where(HERE, "host_services")
    if not isinstance(value, list):
        chk.add(place, "must be a list of {proto, port, from, roles}, got %s" % show(value))
        return
    for i, svc in enumerate(value):
        sw = where(place, i)
        if not isinstance(svc, dict):
            chk.add(sw, "must be a mapping {proto, port, from, roles}, got %s" % show(svc))
            continue
        unknown_keys(chk, sw, svc, HOST_SERVICE_KEYS)
        proto = proto_field(chk, where(sw, "proto"), svc.get("proto"))
        port = port_field(chk, where(sw, "port"), svc.get("port"))
        sources, sources6 = mixed_net_list_field(chk, where(sw, "from"), svc.get("from"), True)
        if svc.get("from") == []:
            chk.add(where(sw, "from"), "is empty: name the ranges the service is offered to")
        roles = svc.get("roles", sorted(GROUP_OF_ROLE))
        if not isinstance(roles, list) or not roles or any(r not in GROUP_OF_ROLE for r in roles):
            chk.add(where(sw, "roles"), "%s must be a non-empty list of %s"
                    % (show(roles), ", ".join(sorted(GROUP_OF_ROLE))))
            continue
        if None not in (proto, port) and (sources or sources6):
            fab.host_services.append({"proto": proto, "port": port, "sources": sources, "sources6": sources6,
                                      "roles": set(roles)})


def _instance_services(chk, fab, value):
    place = where(HERE, "instance_services")
    if not isinstance(value, list):
        chk.add(place, "must be a list of {address, proto, port}, got %s" % show(value))
        return
    for i, svc in enumerate(value):
        sw = where(place, i)
        if not isinstance(svc, dict):
            chk.add(sw, "must be a mapping {address, proto, port}, got %s" % show(svc))
            continue
        unknown_keys(chk, sw, svc, INSTANCE_SERVICE_KEYS)
        address = svc.get("address")
        six = fab.dual_stack and isinstance(address, str) and ":" in address  # IPv4-only: its message as before
        ip = address6(chk, where(sw, "address"), address) if six else ip_field(chk, where(sw, "address"), address)
        proto = proto_field(chk, where(sw, "proto"), svc.get("proto"))
        port = port_field(chk, where(sw, "port"), svc.get("port"))
        if None not in (ip, proto, port):
            (fab.instance_services6 if six else fab.instance_services).append((ip, proto, port))
