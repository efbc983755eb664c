"""Instances from one fleet-wide JSON or CSV file instead of host_vars."""

import copy
import json

import pytest

from fabric_data import dual_stack, problems_of
from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa6
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.inventory import fabric_input, parse_instances


def _from_file(data, text, csv_format=False):
    records = parse_instances(text, "instances.csv" if csv_format else "instances.json", csv_format)
    for hv in data["hostvars"].values():
        hv.pop("ocs_instances", None)
    data["instances_records"] = records
    return data


def test_json_file(data):
    recs = [{"hypervisor": "hv-r01-01", "name": "vm-x", "mac": "02:00:00:00:09:01", "ip": "198.19.1.40",
             "floating_ip": "203.0.113.140"}]
    fab = build(_from_file(data, json.dumps({"instances": recs})))
    assert [i.name for i in fab.hosts["hv-r01-01"].instances] == ["vm-x"]


def test_csv_file_with_errors_named_by_line(data):
    text = ("hypervisor,name,mac,ip,floating_ip\n"
            "hv-r01-01,vm-x,02:00:00:00:09:01,198.19.1.40,\n"
            "hv-r09-01,vm-y,02:00:00:00:09:02,198.19.1.41,\n"
            "hv-r01-01,vm-z,02:00:00:00:09:03,198.19.2.41,\n"
            "hv-r01-01,vm-w\n")
    problems = problems_of(_from_file(data, text, csv_format=True))
    assert problems == [
        "instances.csv:3 (vm-y on hv-r09-01).hypervisor hv-r09-01 is not a host of group hypervisors",
        "instances.csv:4 (vm-z on hv-r01-01).ip 198.19.2.41 is outside rack r01 instance_subnets [198.19.1.0/24]",
        "instances.csv:5 has 2 fields, the header has 5",
    ]


def test_file_and_host_vars_are_exclusive(data):
    data["instances_records"] = parse_instances("[]")
    assert problems_of(data)[0].startswith("ocs_fabric.instances_file is set, but hypervisors.hv-r01-01")


def test_fabric_input_resolves_relative_path(tmp_path, data):
    (tmp_path / "inst.json").write_text("[]")
    data["fabric"]["instances_file"] = "inst.json"
    out = fabric_input(data["groups"], data["hostvars"], data["racks"], data["fabric"], base_dir=str(tmp_path))
    assert out["instances_records"] == []


def test_ip6_column_and_key(data):
    """An instance's ip6 is a CSV column (in any place, empty: none) and a JSON key."""
    dual_stack(data)
    text = ("hypervisor,name,ip6,mac,ip\n"
            "hv-r01-01,vm-x,2001:db8:0:1::40,02:00:00:00:09:01,198.19.1.40\n"
            "hv-r01-01,vm-y,,02:00:00:00:09:02,198.19.1.41\n"
            "hv-r02-01,vm-z,,02:00:00:00:09:03,198.19.2.41\n")
    fab = build(_from_file(copy.deepcopy(data), text, csv_format=True))
    ip6 = {i.name: i.ip6 and ntoa6(i.ip6) for i in fab.instances()}
    assert ip6 == {"vm-x": "2001:db8:0:1::40", "vm-y": "2001:db8:0:1::c613:129", "vm-z": None}
    recs = [{"hypervisor": "hv-r02-01", "name": "vm-x", "mac": "02:00:00:00:09:01", "ip": "198.19.2.40",
             "ip6": "2001:db8:0:1::40"}]
    assert problems_of(_from_file(data, json.dumps(recs))) == [
        "instances.json[0] (vm-x on hv-r02-01).ip6 2001:db8:0:1::40 is outside rack r02 instance_subnets6 "
        "[2001:db8:0:2::/64]"]


def test_csv_ip6_errors_named_by_line(data):
    dual_stack(data)
    text = ("hypervisor,name,mac,ip,ip6\n"
            "hv-r01-01,vm-x,02:00:00:00:09:01,198.19.1.40,\n"
            "hv-r01-01,vm-y,02:00:00:00:09:02,198.19.1.41,fe80::1%eth0\n"
            "hv-r01-01,vm-z,02:00:00:00:09:03,198.19.1.42,2001:db8:0:1::c613:128\n")
    assert problems_of(_from_file(data, text, csv_format=True)) == [
        "instances.csv:3 (vm-y on hv-r01-01).ip6 'fe80::1%eth0' is not an IPv6 address (no zone id: '%eth0')",
        "instances.csv:4 (vm-z on hv-r01-01).ip6 2001:db8:0:1::c613:128 is also the ip6 of instances.csv:2 "
        "(vm-x on hv-r01-01)"]


def test_csv_unknown_column_names_ip6():
    with pytest.raises(ValueError, match=r"unknown column\(s\) ipv6 \(known: .*conn_limit, ip6, inbound6\)"):
        parse_instances("hypervisor,name,ipv6\n", "instances.csv", csv_format=True)
