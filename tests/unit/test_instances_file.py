"""Instances from one fleet-wide JSON or CSV file instead of host_vars."""

import json

from fabric_data import problems_of
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
