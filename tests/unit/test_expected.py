"""expected.json: the sessions, prefixes, instances and chains each host must show (expected.py)."""

import copy
import json

from fabric_data import BASE, gateway_mode
from ansible_collections.ocs.l3.plugins.module_utils import constants
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.expected import expected
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build


def fabric(mutate=None):
    data = copy.deepcopy(BASE)
    if mutate:
        mutate(data)
    return build(data)


def sessions(fab, host):
    return {s["peer"]: s for s in expected(fab, fab.hosts[host])["sessions"]}


def test_hypervisor_sessions_prefixes_and_instances():
    fab = fabric()
    exp = expected(fab, fab.hosts["hv-r01-02"])
    s = sessions(fab, "hv-r01-02")
    assert sorted(s) == ["198.18.1.1", "198.18.1.129"]  # dual-homed to tor-r01
    one = s["198.18.1.129"]
    assert (one["peer_host"], one["remote_as"], one["group"], one["interface"]) == ("tor-r01", 65101, "TOR", False)
    assert one["receive_required"] == ["198.18.1.0/24"]  # the ToR's host_subnet aggregate
    assert one["advertise_required"] == ["203.0.113.12/32"]  # its public /32 on lo (host NAT)
    assert one["advertise_max"] == 3 and one["advertise_instances"] is True  # vm-c, its floating IP, public
    assert exp["instances"] == [{"name": "vm-c", "ip": "198.19.1.12", "interface": fab.hosts["hv-r01-02"]
                                 .instances[0].interface, "prefixes": ["198.19.1.12/32", "203.0.113.102/32"]}]
    assert exp["dhcp_hosts"] == 1 and exp["nft_table"] is None
    assert exp["chains"]["nat"] == sorted(constants.NAT_CHAINS)
    assert exp["chains"]["filter"] == sorted(constants.FILTER_CHAINS)


def test_tor_sessions_and_rack_instances():
    fab = fabric()
    exp = expected(fab, fab.hosts["tor-r01"])
    s = sessions(fab, "tor-r01")
    assert sorted(s) == ["198.18.0.1", "198.18.1.11", "198.18.1.12", "198.18.1.140"]
    assert s["198.18.0.1"]["peer_host"] == "spine1" and s["198.18.0.1"]["receive_required"] == ["198.18.0.0/24"]
    assert s["198.18.0.1"]["advertise_required"] == ["198.18.1.0/24", "198.18.1.0/25", "198.18.1.128/25"]
    assert s["198.18.1.11"]["receive_required"] == ["203.0.113.11/32"]
    assert s["198.18.1.11"]["receive_max"] == 4  # vm-a, its floating IP, vm-b, the public /32
    assert [r["prefix"] for r in exp["rack_instances"]] == ["198.19.1.10/32", "198.19.1.11/32", "198.19.1.12/32"]
    assert "nat" not in exp["chains"] and exp["instances"] == [] and exp["dhcp_hosts"] == 0


def test_spine_border_session_has_no_bounds_and_gateway_mode_names_the_table():
    fab = fabric()
    border = sessions(fab, "spine1")["198.18.0.254"]
    assert border["peer_host"] is None and border["receive_required"] == [] and border["group"] == "BORDER"
    assert sessions(fab, "spine1")["198.18.0.12"]["receive_required"] == ["198.18.2.0/24", "198.18.2.1/32"]
    gfab = fabric(gateway_mode)
    assert expected(gfab, gfab.hosts["gw-01"])["nft_table"] == "%s %s" % (constants.NFT_FAMILY, constants.NFT_TABLE)


def test_expected_json_is_an_ocs_agent_artifact_of_every_host():
    fab = fabric()
    for name, host in fab.hosts.items():
        arts = [a for a in host_artifacts(fab, host) if a.path == constants.EXPECTED_PATH]
        assert [a.role for a in arts] == ["ocs_agent"], name
        assert json.loads(arts[0].vars["_ocs_agent_expected_text"])["host"] == name
