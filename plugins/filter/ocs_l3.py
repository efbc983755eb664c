# -*- coding: utf-8 -*-
# Copyright: ocs-l3 contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the ocs-l3 fabric model: thin adapters over the shared library (module_utils).

Every filter takes *fabric input*, the plain mapping built by
``module_utils/inventory.fabric_input`` (keys ``groups``, ``hostvars``, ``racks``,
``fabric``, ``instances_records``), validates it, and either returns plain data
or raises AnsibleFilterError listing every problem (object and field named).
The whole-fabric render does not go through these filters but calls the same
functions in one process (``plugins/action/ocs_render.py``), because a filter
in a per-host task runs again for every host.

Filters
  ocs_fabric_input(racks, fabric, hostvars, groups, inventory_dir=None)
      build fabric input from Ansible variables (hostvars restricted to ocs_* keys).
  ocs_fabric_check(input)           -> {"racks": n, "hosts": n, "instances": n}
  ocs_instance_ifname(name, prefix="tap") -> default interface name of an instance
  ocs_route_lines(input, host)      -> canonical ip-batch lines of a host
  ocs_rack_table(input, rack)       -> {prefix: [next hops]} of a rack
  ocs_host_files(input, host)       -> [{path, kind, role}] a host gets
  ocs_in_ranges(address, ranges)    -> whether an IPv4 address lies in one of the CIDR ranges
  ocs_frr_drained(text, drained=True) -> frr.conf text with (or without) bgp graceful-shutdown
  ocs_drain_plan(input, hosts, drained, state, force=False, down=()) -> what a drain/undrain does (drain.plan)
  ocs_path(name)                    -> a path of the shared contract (constants.contract()["paths"])
  ocs_status_summary(reports, targeted) -> several hosts' status reports as one (host_status.summary)
  ocs_status_table(reports)         -> the human table of status reports, worst first
  ocs_drain_pending(bgp_json, host, keys, state) -> prefixes whose best path has not moved yet
  ocs_site_packages(group_names, manage) -> the packages site.yml's roles need on a host, one list
  ocs_packages_missing(dpkg_output, wanted) -> those of wanted that dpkg-query's output shows not installed
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: ocs_l3
short_description: ocs-l3 fabric validation and per-host computations
description:
  - See the module docstring and the README's "Filters" section.
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.parsing.convert_bool import boolean

try:
    import netaddr  # noqa: F401
except ImportError:  # pragma: no cover - depends on the controller
    netaddr = None

from ansible_collections.ocs.l3.plugins.module_utils import (  # noqa: E402
    addr, artifacts, constants, drain, fabric, host_status, inventory, routes)
from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError  # noqa: E402


def _fabric(data):
    if netaddr is None:
        raise AnsibleFilterError("the ocs_l3 filters need the Python library netaddr on the controller")
    if not isinstance(data, dict):
        raise AnsibleFilterError("ocs_l3 filters take fabric input (a mapping), got %s" % type(data).__name__)
    try:
        return fabric.build(data)
    except FabricError as exc:
        raise AnsibleFilterError(str(exc)) from None


def _host(fab, name):
    if name not in fab.hosts:
        raise AnsibleFilterError("%r is not a host of groups %s" % (name, ", ".join(fabric.ROLE_GROUPS)))
    return fab.hosts[name]


def ocs_fabric_input(racks, fabric_vars, hostvars, groups, inventory_dir=None):
    hv = {name: {k: hostvars[name][k] for k in fabric.HOST_KEYS if k in hostvars[name]}
          for g in fabric.ROLE_GROUPS for name in groups.get(g, [])}
    try:
        return inventory.fabric_input(groups, hv, racks, fabric_vars, base_dir=inventory_dir)
    except (OSError, ValueError) as exc:
        raise AnsibleFilterError("cannot read the instances file: %s" % exc) from None


def ocs_fabric_check(data):
    fab = _fabric(data)
    return {"racks": len(fab.racks), "hosts": len(fab.hosts), "instances": fab.instance_count}


def ocs_instance_ifname(name, prefix="tap"):
    if not isinstance(name, str) or not fabric._LABEL_RE.fullmatch(name):
        raise AnsibleFilterError("ocs_instance_ifname: %r is not an RFC 1123 label" % (name,))
    return fabric.default_ifname(name, prefix)


def ocs_route_lines(data, host):
    fab = _fabric(data)
    return routes.host_lines(fab, _host(fab, host))


def ocs_rack_table(data, rack):
    fab = _fabric(data)
    if rack not in fab.racks:
        raise AnsibleFilterError("%r is not a rack of ocs_racks" % (rack,))
    return routes.rack_table(fab, fab.racks[rack])


def ocs_host_files(data, host):
    fab = _fabric(data)
    return [{"path": a.path, "kind": a.kind, "role": a.role} for a in artifacts.host_artifacts(fab, _host(fab, host))]


def ocs_in_ranges(address, ranges):
    ip = addr.aton(address) if isinstance(address, str) else None
    if ip is None:
        raise AnsibleFilterError("ocs_in_ranges: %r is not an IPv4 address" % (address,))
    if not isinstance(ranges, (list, tuple)):
        raise AnsibleFilterError("ocs_in_ranges: ranges must be a list of CIDR networks, got %r" % (ranges,))
    nets = []
    for item in ranges:
        try:
            nets.append(addr.parse_net(item))
        except (ValueError, TypeError) as exc:
            raise AnsibleFilterError("ocs_in_ranges: range %r %s" % (item, exc)) from None
    return any(ip in net for net in nets)


def ocs_site_packages(group_names, manage):
    if not isinstance(group_names, (list, tuple)) or not isinstance(manage, dict):
        raise AnsibleFilterError("ocs_site_packages: takes a host's group_names (a list) and {role: bool}, got %r, %r"
                                 % (group_names, manage))
    flags = {}
    for role, value in manage.items():
        # Ansible's own reading of a boolean, as the roles' argument specs and `| bool` read the same setting.
        try:
            flags[role] = boolean(value, strict=True)
        except TypeError:
            raise AnsibleFilterError("ocs_site_packages: %s_manage_packages must be a boolean, got %r"
                                     % (role, value)) from None
    try:
        return constants.site_packages(group_names, flags)
    except ValueError as exc:
        raise AnsibleFilterError("ocs_site_packages: %s" % exc) from None


def ocs_packages_missing(output, wanted):
    if not isinstance(output, str) or not isinstance(wanted, (list, tuple)) \
            or not all(isinstance(name, str) for name in wanted):
        raise AnsibleFilterError("ocs_packages_missing: takes dpkg-query's output (text) and the package names "
                                 "(a list of strings), got %r, %r" % (output, wanted))
    return constants.missing_packages(output, wanted)


def ocs_frr_drained(text, drained=True):
    if not isinstance(text, str):
        raise AnsibleFilterError("ocs_frr_drained: frr.conf must be text, got %s" % type(text).__name__)
    return drain.drained_text(text) if drained else drain.undrained_text(text)


def ocs_drain_plan(data, hosts, drained, state, force=False, down=()):
    fab = _fabric(data)
    if isinstance(hosts, str):
        hosts = [h.strip() for h in hosts.split(",") if h.strip()]
    if not isinstance(hosts, list) or not isinstance(drained, dict):
        raise AnsibleFilterError("ocs_drain_plan: hosts must be a list (or a comma-separated string) and drained "
                                 "a mapping {host: bool}")
    try:
        return drain.plan(fab, hosts, drained, state, bool(force), list(down))
    except FabricError as exc:
        raise AnsibleFilterError("\n".join(exc.problems)) from None


def ocs_drain_pending(bgp_json, host, keys, state):
    if not isinstance(bgp_json, dict):
        raise AnsibleFilterError("ocs_drain_pending: %s: the neighbour's BGP table is not JSON (%s)"
                                 % (host, type(bgp_json).__name__))
    return drain.pending(bgp_json, host, list(keys), state)


def ocs_path(name):
    paths = constants.contract()["paths"]
    if name not in paths:
        raise AnsibleFilterError("ocs_path: %r is not one of %s" % (name, ", ".join(sorted(paths))))
    return paths[name]


def ocs_status_summary(reports, targeted=()):
    if not isinstance(reports, list) or not all(isinstance(r, dict) and "host" in r for r in reports):
        raise AnsibleFilterError("ocs_status_summary: reports must be a list of ocs_status reports")
    return host_status.summary(reports, list(targeted))


def ocs_status_table(reports):
    if not isinstance(reports, list):
        raise AnsibleFilterError("ocs_status_table: reports must be a list of ocs_status reports")
    return host_status.table(reports)


class FilterModule:
    def filters(self):
        return {
            "ocs_fabric_input": ocs_fabric_input,
            "ocs_fabric_check": ocs_fabric_check,
            "ocs_instance_ifname": ocs_instance_ifname,
            "ocs_route_lines": ocs_route_lines,
            "ocs_rack_table": ocs_rack_table,
            "ocs_host_files": ocs_host_files,
            "ocs_in_ranges": ocs_in_ranges,
            "ocs_frr_drained": ocs_frr_drained,
            "ocs_site_packages": ocs_site_packages,
            "ocs_packages_missing": ocs_packages_missing,
            "ocs_drain_plan": ocs_drain_plan,
            "ocs_drain_pending": ocs_drain_pending,
            "ocs_path": ocs_path,
            "ocs_status_summary": ocs_status_summary,
            "ocs_status_table": ocs_status_table,
        }
