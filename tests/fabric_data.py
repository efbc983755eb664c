"""A small valid fabric to mutate, and a helper listing its problems."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402

BASE = {
    "groups": {
        "spines": ["spine1"],
        "tors": ["tor-r01", "tor-r02"],
        "hypervisors": ["hv-r01-01", "hv-r01-02", "hv-r02-01"],
        "nat_gateways": ["gw-01"],
    },
    "hostvars": {
        "spine1": {"ocs_address": "198.18.0.1",
                   "ocs_uplinks": [{"interface": "eth9", "address": "198.18.0.253/30", "peer": "198.18.0.254"}]},
        "tor-r01": {"ocs_address": "198.18.1.1", "ocs_rack": "r01",
                    "ocs_uplinks": [{"interface": "eth0", "address": "198.18.0.11/24", "peer": "198.18.0.1"}],
                    "ocs_downlinks": [{"interface": "eth1", "address": "198.18.1.1/25"},
                                      {"interface": "eth2", "address": "198.18.1.129/25"}]},
        "tor-r02": {"ocs_address": "198.18.2.1", "ocs_rack": "r02",
                    "ocs_uplinks": [{"interface": "eth0", "address": "198.18.0.12/24", "peer": "198.18.0.1"}]},
        "hv-r01-01": {"ocs_address": "198.18.1.11", "ocs_rack": "r01", "ocs_public_address": "203.0.113.11",
                      "ocs_uplinks": [{"interface": "eth0", "address": "198.18.1.11/25", "peer": "198.18.1.1"}],
                      "ocs_instances": [
                          {"name": "vm-a", "mac": "02:00:00:00:01:0a", "ip": "198.19.1.10",
                           "floating_ip": "203.0.113.101"},
                          {"name": "vm-b", "mac": "02:00:00:00:01:0b", "ip": "198.19.1.11", "interface": "tap-b"},
                      ]},
        "hv-r01-02": {"ocs_address": "198.18.1.12", "ocs_rack": "r01", "ocs_public_address": "203.0.113.12",
                      "ocs_uplinks": [{"interface": "eth0", "address": "198.18.1.12/25", "peer": "198.18.1.1"},
                                      {"interface": "eth1", "address": "198.18.1.140/25", "peer": "198.18.1.129"}],
                      "ocs_instances": [
                          {"name": "vm-c", "mac": "02:00:00:00:01:0c", "ip": "198.19.1.12",
                           "floating_ip": "203.0.113.102"},
                      ]},
        "hv-r02-01": {"ocs_address": "198.18.2.11", "ocs_rack": "r02", "ocs_public_address": "203.0.113.21",
                      "ocs_instances": [
                          {"name": "vm-d", "mac": "02:00:00:00:02:0d", "ip": "198.19.2.13"},
                      ]},
        "gw-01": {"ocs_address": "198.18.0.21", "ocs_public_address": "203.0.113.250",
                  "ocs_uplinks": [{"interface": "eth0", "address": "198.18.0.21/24", "peer": "198.18.0.1"}]},
    },
    "racks": {
        "r01": {"asn": 65101, "host_subnet": "198.18.1.0/24", "instance_subnets": ["198.19.1.0/24"]},
        "r02": {"asn": 65102, "host_subnet": "198.18.2.0/24", "instance_subnets": ["198.19.2.0/25", "198.19.2.128/25"]},
    },
    "fabric": {
        "spine_asn": 65000, "hypervisor_asn": 65200, "gateway_asn": 65300,
        "border_peers": [{"address": "198.18.0.254", "asn": 65530}],
        "floating_ranges": ["203.0.113.0/24"], "internal_ranges": ["198.18.0.0/15"],
        "metadata": {"target": "198.18.0.100", "target_port": 8775},
        "dns_servers": ["198.18.0.53"], "domain": "cloud.ocs.example", "mtu": 1450,
        "management_ranges": ["192.0.2.0/24"],
    },
    "instances_records": None,
}


def problems_of(data):
    """Every problem message, or [] when the fabric is valid."""
    try:
        build(data)
    except FabricError as exc:
        return exc.problems
    return []

GATEWAY_BORDER_LINK = {"interface": "eth9", "peer": "198.18.0.254"}
"""The border link each NAT gateway needs in nat_mode gateway (there the gateways are the edge)."""


def gateway_mode(data):
    """Switch ``data`` to nat_mode gateway: each NAT gateway gets its border link; returns it."""
    data["fabric"]["nat_mode"] = "gateway"
    for name in data["groups"].get("nat_gateways") or []:
        ups = data["hostvars"][name].setdefault("ocs_uplinks", [])
        if not any(up.get("peer") == GATEWAY_BORDER_LINK["peer"] for up in ups):
            ups.append(dict(GATEWAY_BORDER_LINK))
    return data


def two_tors(data):
    """Rack r01 gets a second ToR, tor-r01b, on its own links to both hypervisors and to the spine."""
    data["groups"]["tors"].append("tor-r01b")
    data["hostvars"]["tor-r01b"] = {
        "ocs_address": "198.18.1.3", "ocs_rack": "r01",
        "ocs_uplinks": [{"interface": "eth0", "address": "198.18.0.13/24", "peer": "198.18.0.1"}],
        "ocs_downlinks": [{"interface": "eth1", "address": "198.18.1.65/27"}]}
    data["hostvars"]["tor-r01"]["ocs_downlinks"][0]["address"] = "198.18.1.1/26"
    data["hostvars"]["hv-r01-01"]["ocs_uplinks"].append(
        {"interface": "eth1", "address": "198.18.1.71/27", "peer": "198.18.1.65"})
    data["hostvars"]["hv-r01-02"]["ocs_uplinks"][1] = {
        "interface": "eth1", "address": "198.18.1.72/27", "peer": "198.18.1.65"}
    return data


def dual_stack(data):
    """Make ``data`` dual-stack (IPv6 is validated, not yet rendered): ``internal_ranges6``, rack r01
    an IPv6 instance subnet from which its instances' addresses derive (``instance_ip6_from_ip4``;
    vm-b has its own, which wins), rack r02 one whose instance vm-d has an explicit ``ip6``, and
    the spine and a ToR an ``ocs_address6``; returns it."""
    data["fabric"]["internal_ranges6"] = ["2001:db8::/32"]
    data["racks"]["r01"].update(instance_subnets6=["2001:db8:0:1::/64"], instance_ip6_from_ip4=True)
    data["racks"]["r02"].update(instance_subnets6=["2001:db8:0:2::/64"])
    for host, i, ip6 in (("hv-r01-01", 1, "2001:db8:0:1::b"), ("hv-r02-01", 0, "2001:db8:0:2::d")):
        if data["hostvars"][host].get("ocs_instances"):  # not when the instances come from a file
            data["hostvars"][host]["ocs_instances"][i]["ip6"] = ip6
    data["hostvars"]["spine1"]["ocs_address6"] = "2001:db8:ffff::1"
    data["hostvars"]["tor-r01"]["ocs_address6"] = "2001:db8:ffff::11"
    return data


def static6(data):
    """routing_mode static on ``dual_stack`` data, as validate_topology.static6 wants it: each
    hypervisor with an IPv6 instance and each ToR of its rack an ``ocs_address6``, hv-r02-01 a
    numbered uplink to tor-r02 on a downlink of it; returns ``data``."""
    data["fabric"]["routing_mode"] = "static"
    hv = data["hostvars"]
    hv["hv-r01-01"]["ocs_address6"] = "2001:db8:ffff::21"
    hv["hv-r01-02"]["ocs_address6"] = "2001:db8:ffff::22"
    hv["hv-r02-01"]["ocs_address6"] = "2001:db8:ffff::31"
    hv["tor-r02"]["ocs_address6"] = "2001:db8:ffff::13"
    hv["tor-r02"]["ocs_downlinks"] = [{"interface": "eth1", "address": "198.18.2.1/24"}]
    hv["hv-r02-01"]["ocs_uplinks"] = [{"interface": "eth0", "address": "198.18.2.11/24", "peer": "198.18.2.1"}]
    return data


def dual_stack_border(data):
    """``dual_stack`` with an IPv6 border session (issue 21): the border peer's ``address6`` on the
    spine's border link, which gets its IPv6 address (``address6``); returns ``data``."""
    dual_stack(data)
    data["fabric"]["border_peers"][0]["address6"] = "2001:db8:ff::2"
    data["hostvars"]["spine1"]["ocs_uplinks"][0]["address6"] = "2001:db8:ff::1/64"
    return data


def set_at(data, path, value):
    """Replace the value at ``path`` (keys and list indexes; an index one past a list appends), or do nothing when an earlier change left no such place."""
    node = data
    for key in path[:-1]:
        if isinstance(node, dict) and key in node or isinstance(node, list) and key < len(node):
            node = node[key]
        else:
            return
    if isinstance(node, list) and path[-1] >= len(node):
        node.append(value)
    elif isinstance(node, (dict, list)):
        node[path[-1]] = value
