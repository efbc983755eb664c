"""Topology truth (issue 15): infrastructure routed through the fabric and
never to the border, racks with two ToRs, aggregates only while they can be
served, and the inputs that cannot be routed truly."""

import copy

from fabric_data import gateway_mode, problems_of, two_tors
from ansible_collections.ocs.l3.plugins.module_utils.announce import fabric_infra, origin
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.frr import config_lines, policy


def out_of(pol, rmap):
    return [e for dummy, plist, dummy2 in pol.route_maps[rmap] for e in pol.prefix_lists[plist]]


def test_spine_originates_the_links_it_is_the_upper_end_of(data):
    fab = build(data)
    # every ToR and gateway uplink of the base fabric is on 198.18.0.0/24, peer spine1
    assert origin(fab, fab.hosts["spine1"]) == ["198.18.0.0/24"]
    assert fabric_infra(fab) == ["198.18.0.0/24", "198.18.1.0/24", "198.18.2.0/24"]
    assert policy(fab, fab.hosts["spine1"]).networks == ["198.18.0.0/24"]


def test_loopback_addresses_are_announced_and_accepted_exactly(data):
    # a spine whose address is on no link, and a hypervisor on an unnumbered uplink
    data["hostvars"]["spine1"]["ocs_address"] = "198.18.255.1"
    data["hostvars"]["spine1"]["ocs_downlinks"] = [{"interface": "eth0", "address": "198.18.0.1/24"}]
    data["hostvars"]["hv-r01-01"]["ocs_uplinks"] = [{"interface": "eth0"}]
    data["hostvars"]["tor-r01"]["ocs_downlinks"].append({"interface": "swp5", "host": "hv-r01-01"})
    fab = build(data)
    h = fab.hosts
    assert origin(fab, h["spine1"]) == ["198.18.0.0/24", "198.18.255.1/32"]
    assert "198.18.255.1/32" in fabric_infra(fab)
    hv = policy(fab, h["hv-r01-01"])
    assert "198.18.1.11/32" in hv.networks and "198.18.1.11/32" in out_of(hv, "OCS-OUT-TOR")
    # the ToR accepts exactly it from that hypervisor and aggregates it into the host subnet
    tor = policy(fab, h["tor-r01"])
    assert "198.18.1.11/32" in tor.prefix_lists["OCS-HV-hv-r01-01"]
    assert "198.18.1.11/32" not in tor.prefix_lists["OCS-HV-hv-r01-02"]
    assert "198.18.1.0/24" in tor.aggregates


def test_infrastructure_never_goes_to_the_border(data):
    for mode in ("host", "gateway"):
        d = build_mode(data, mode)
        fab = build(d)
        for name in ("spine1", "gw-01"):
            pol = policy(fab, fab.hosts[name])
            if "OCS-OUT-BORDER" not in pol.route_maps:
                continue
            sent = out_of(pol, "OCS-OUT-BORDER")
            assert sent and all(p.startswith("203.0.113.") for p in sent), (mode, name, sent)


def build_mode(data, mode):
    d = copy.deepcopy(data)
    return gateway_mode(d) if mode == "gateway" else d


def test_tor_relays_its_spines_routes_instead_of_originating_a_default(data):
    fab = build(data)
    tor = policy(fab, fab.hosts["tor-r02"])
    assert not any(g.default_originate for g in tor.groups)
    # what goes down is what the spines send (and the rack's own aggregates): exact, never a /32
    assert all(not p.endswith("/32") and " le " not in p for p in tor.prefix_lists["OCS-TO-HV"])
    assert set(fabric_infra(fab)) <= set(tor.prefix_lists["OCS-INFRA"])
    assert tor.route_maps["OCS-IN-SPINE"] == [(10, "OCS-FABRIC", []), (20, "OCS-INFRA", [])]


def test_rack_with_two_tors_each_announces_the_rack_and_every_hypervisor_peers_with_both(data):
    fab = build(two_tors(data))
    h = fab.hosts
    for tor in ("tor-r01", "tor-r01b"):
        pol = policy(fab, h[tor])
        assert pol.aggregates == ["198.19.1.0/24", "198.18.1.0/24"]
        assert sorted(n.host for n in pol.neighbors if n.group == "HV") == ["hv-r01-01", "hv-r01-02"]
    spine = policy(fab, h["spine1"])
    assert [n.key for n in spine.neighbors if n.rmap_in == "OCS-IN-RACK-r01"] == ["198.18.0.11", "198.18.0.13"]
    # each ToR's own links, exactly, next to the host subnet: a reply to a
    # hypervisor's address on tor-r01b's link must not go to tor-r01
    assert spine.prefix_lists["OCS-RACK-r01-HOSTS"] == ["198.18.1.0/24", "198.18.1.0/26", "198.18.1.3/32",
                                                         "198.18.1.64/27", "198.18.1.128/25"]
    # tor-r01b: its link, and its address (on none of its links: a loopback)
    assert sorted(policy(fab, h["tor-r01b"]).networks) == ["198.18.1.3/32", "198.18.1.64/27"]
    for hv in ("hv-r01-01", "hv-r01-02"):
        lines = config_lines(fab, h[hv])
        assert " neighbor 198.18.1.1 remote-as 65101" in lines and " neighbor 198.18.1.65 remote-as 65101" in lines
        assert "  maximum-paths 2" in lines


def test_hypervisor_missing_an_uplink_to_one_tor_of_its_rack_is_named(data):
    data = two_tors(data)
    data["hostvars"]["hv-r01-01"]["ocs_uplinks"].pop()
    assert problems_of(data) == [
        "hypervisors.hv-r01-01.ocs_uplinks has no uplink to tor-r01b, a ToR of rack r01 (in a rack with 2 ToRs "
        "every hypervisor needs an uplink to each: an ocs_uplinks entry whose peer is the ToR's link address, or "
        "an ocs_downlinks entry of the ToR naming hv-r01-01)"]


def test_a_tor_downlink_naming_a_host_of_another_rack_is_named(data):
    data["hostvars"]["tor-r01"]["ocs_downlinks"].append({"interface": "swp9", "host": "hv-r02-01"})
    assert problems_of(data) == ["tors.tor-r01.ocs_downlinks[2].host hv-r02-01 is not a hypervisor of rack r01"]


def test_unnumbered_uplink_in_static_mode_is_named(data):
    data["fabric"]["routing_mode"] = "static"
    data["hostvars"]["hv-r01-01"]["ocs_uplinks"] = [{"interface": "eth0"}]
    data["hostvars"]["tor-r01"]["ocs_downlinks"].append({"interface": "swp5", "host": "hv-r01-01"})
    assert problems_of(data) == [
        "hypervisors.hv-r01-01.ocs_uplinks[0].peer is not set (BGP unnumbered), but routing_mode static routes "
        "by next-hop addresses: give the uplink an address and its ToR's address as peer"]


def test_edge_host_peers_with_the_border_peers_on_its_links(data):
    data["fabric"]["border_peers"].append({"address": "198.51.100.1", "asn": 65531})
    fab = build(data)
    # spine1's border uplink names 198.18.0.254: no session with the peer it has no link to
    pol = policy(fab, fab.hosts["spine1"])
    assert [n.key for n in pol.neighbors if n.group == "BORDER"] == ["198.18.0.254"]
    # and the border link is not fabric infrastructure: nobody announces it
    assert "198.18.0.252/30" not in fabric_infra(fab)
    assert origin(fab, fab.hosts["spine1"]) == ["198.18.0.0/24"]


def test_static_mode_routes_a_hypervisor_loopback_at_its_tor(data):
    from ansible_collections.ocs.l3.plugins.module_utils.routes import tor_lines
    data["fabric"]["routing_mode"] = "static"
    data["hostvars"]["hv-r01-01"]["ocs_address"] = "198.18.1.99"  # on no link: a loopback
    fab = build(data)
    lines = tor_lines(fab, fab.hosts["tor-r01"])
    assert "route replace 198.18.1.99/32 via 198.18.1.11 proto 211" in lines
    # the host subnet aggregate covers it toward the spines; nothing else announces it
    assert "198.18.1.99/32" not in policy(fab, fab.hosts["tor-r01"]).prefix_lists["OCS-RACK-KERNEL"]


def test_a_rack_with_two_tors_sends_its_instance_host_routes_to_the_spines(data):
    fab = build(two_tors(data))
    h = fab.hosts
    tor = policy(fab, h["tor-r01b"])
    # a hypervisor that lost its link to one ToR: the /32s tell the spines which ToR still reaches it
    assert tor.prefix_lists["OCS-RACK-INSTANCES"] == ["198.19.1.0/24 ge 32"]
    assert (40, "OCS-RACK-INSTANCES", []) in tor.route_maps["OCS-OUT-SPINE"]
    spine = policy(fab, h["spine1"])
    assert spine.prefix_lists["OCS-RACK-r01-INSTANCES"] == ["198.19.1.0/24 ge 32"]
    assert "OCS-RACK-r01-INSTANCES" in [p for dummy, p, dummy2 in spine.route_maps["OCS-IN-RACK-r01"]]
    # a rack with one ToR: the aggregate only; and the /32s never go further down than the spines
    assert spine.prefix_lists["OCS-RACK-r02-INSTANCES"] == []
    assert all("ge" not in e and "le 32" not in e or e.startswith("203.0.113.") for e in spine.prefix_lists["OCS-FABRIC"])
