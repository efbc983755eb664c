"""The filter plugin is a thin adapter: same results, AnsibleFilterError on bad input."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.ocs.l3.plugins.filter import ocs_l3 as plugin

FILTERS = plugin.FilterModule().filters()


def test_filters_registered():
    assert set(FILTERS) == {"ocs_fabric_input", "ocs_fabric_check", "ocs_instance_ifname", "ocs_route_lines",
                            "ocs_rack_table", "ocs_host_files", "ocs_in_ranges", "ocs_frr_drained", "ocs_drain_plan",
                            "ocs_drain_pending", "ocs_path", "ocs_status_summary", "ocs_status_table",
                            "ocs_site_packages", "ocs_packages_missing"}


def test_path_names_the_contract_and_refuses_an_unknown_name():
    assert FILTERS["ocs_path"]("drain") == "/etc/ocs-l3/drain.json"
    with pytest.raises(AnsibleFilterError, match="'drained' is not one of .*drain, "):
        FILTERS["ocs_path"]("drained")


def test_check_summarises_a_valid_fabric(data):
    assert FILTERS["ocs_fabric_check"](data) == {"racks": 2, "hosts": 7, "instances": 4}


def test_check_raises_naming_every_problem(data):
    data["hostvars"]["hv-r02-01"]["ocs_rack"] = "r09"
    data["racks"]["r01"]["asn"] = 0
    with pytest.raises(AnsibleFilterError) as err:
        FILTERS["ocs_fabric_check"](data)
    assert "hypervisors.hv-r02-01.ocs_rack r09 is not a rack of ocs_racks" in str(err.value)
    assert "ocs_racks.r01.asn 0 is a reserved AS number" in str(err.value)


def test_check_rejects_non_mapping():
    with pytest.raises(AnsibleFilterError, match="got list"):
        FILTERS["ocs_fabric_check"]([])


def test_route_lines_and_unknown_host(data):
    assert FILTERS["ocs_route_lines"](data, "tor-r01") == ["route replace blackhole 198.19.1.0/24 proto 211"]
    with pytest.raises(AnsibleFilterError, match="'nope' is not a host"):
        FILTERS["ocs_route_lines"](data, "nope")


def test_rack_table_and_unknown_rack(data):
    assert FILTERS["ocs_rack_table"](data, "r02")["198.19.2.13/32"] == ["198.18.2.11"]
    with pytest.raises(AnsibleFilterError, match="'r9' is not a rack"):
        FILTERS["ocs_rack_table"](data, "r9")


def test_instance_ifname():
    assert FILTERS["ocs_instance_ifname"]("vm-a", "vif").startswith("vif")
    with pytest.raises(AnsibleFilterError, match="not an RFC 1123 label"):
        FILTERS["ocs_instance_ifname"]("vm a")


def test_fabric_input_keeps_only_ocs_keys(data):
    hostvars = {h: dict(v, ansible_host="x") for h, v in data["hostvars"].items()}
    out = FILTERS["ocs_fabric_input"](data["racks"], data["fabric"], hostvars, data["groups"])
    assert "ansible_host" not in out["hostvars"]["spine1"]
    assert FILTERS["ocs_fabric_check"](out)["instances"] == 4


def test_host_files(data):
    assert [f["kind"] for f in FILTERS["ocs_host_files"](data, "hv-r01-01")] == [
        "iproute2", "routes", "frr-daemons", "frr", "iptables", "iptables",
        "ip6tables", "dnsmasq", "dnsmasq-hosts", "systemd", "agent", "expected"]
    assert [f["kind"] for f in FILTERS["ocs_host_files"](data, "spine1")] == [
        "frr-daemons", "frr", "iptables", "ip6tables", "expected"]


def test_in_ranges_and_bad_input():
    assert FILTERS["ocs_in_ranges"]("198.51.100.20", ["198.51.100.20/32", "192.0.2.0/24"]) is True
    assert FILTERS["ocs_in_ranges"]("198.51.100.10", ["198.51.100.20/32"]) is False
    with pytest.raises(AnsibleFilterError, match="'198.51.100.300' is not an IPv4 address"):
        FILTERS["ocs_in_ranges"]("198.51.100.300", ["198.51.100.0/24"])
    with pytest.raises(AnsibleFilterError, match="range '198.51.100.1/24' has host bits set"):
        FILTERS["ocs_in_ranges"]("198.51.100.1", ["198.51.100.1/24"])
