"""IPv6, part 2 (issue 21): the IPv6 family of the fabric's BGP (frr6), its exact prefix-lists,
the IPv6 border session and its edge filter, and the bad inputs of docs/ipv6.md ("Across the
fabric"). IPv4-only fabrics render byte-identical files: the golden corpus holds their digests."""

import copy

import pytest

from fabric_data import BASE, dual_stack, dual_stack_border, gateway_mode, problems_of, static6, two_tors
from ansible_collections.ocs.l3.plugins.module_utils.addr import aton6, compact_hosts6, from_ntoa6, host_blocks, ntoa6
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.firewall import ipv6_lines
from ansible_collections.ocs.l3.plugins.module_utils.frr import config_lines, policy
from ansible_collections.ocs.l3.plugins.module_utils.frr6 import compact6, owned6
from ansible_collections.ocs.l3.plugins.module_utils.route_table import line_problem
from ansible_collections.ocs.l3.plugins.module_utils.routes import default6_lines, host_lines
from ansible_collections.ocs.l3.plugins.modules import ocs_frr_reload as frr_reload


def _fab(mutate=None, border=True):
    data = (dual_stack_border if border else dual_stack)(copy.deepcopy(BASE))
    if mutate:
        mutate(data)
    return build(data)


def _af6(lines):
    """The lines of the ``address-family ipv6 unicast`` block."""
    start = lines.index(" address-family ipv6 unicast")
    return lines[start + 1:lines.index(" exit-address-family", start)]


def test_ipv4_only_fabric_has_no_ipv6_in_frr():
    fab = build(copy.deepcopy(BASE))
    for host in fab.hosts.values():
        text = "\n".join(config_lines(fab, host))
        assert "ipv6" not in text and "OCS6" not in text and "activate" not in text, host.name


def test_ipv6_family_rides_the_existing_sessions():
    """No new fabric session: the IPv6 family is activated on the IPv4 sessions' peer-groups; the
    IPv4 family's lines are those of the IPv4-only fabric."""
    v4, fab = build(copy.deepcopy(BASE)), _fab(border=False)
    for name, host in fab.hosts.items():
        lines, before = config_lines(fab, host), config_lines(v4, v4.hosts[name])
        if " address-family ipv4 unicast" not in before:  # no session (hv-r02-01 has no uplink)
            assert " address-family ipv6 unicast" not in lines
            continue
        v4_af = before[before.index(" address-family ipv4 unicast"):before.index(" exit-address-family")]
        assert lines[lines.index(" address-family ipv4 unicast"):lines.index(" exit-address-family")] == v4_af
        assert [n.key for n in policy(fab, host).neighbors] == [n.key for n in policy(v4, v4.hosts[name]).neighbors]
    hv = _af6(config_lines(fab, fab.hosts["hv-r01-01"]))
    assert "  neighbor TOR activate" in hv


def test_hypervisor_announces_exactly_its_instances_128s():
    fab = _fab()
    pol = policy(fab, fab.hosts["hv-r01-01"])
    assert pol.prefix_lists6["OCS6-OWN"] == ["2001:db8:0:1::b/128", "2001:db8:0:1::c613:10a/128"]
    assert pol.networks6 == pol.prefix_lists6["OCS6-OWN"]
    assert pol.prefix_lists6["OCS6-FROM-TOR"] == ["::/0", "2001:db8::/32 le 128"]
    assert owned6(fab.hosts["hv-r01-02"]) == ["2001:db8:0:1::c613:10c/128"]


def test_tor_accepts_from_each_hypervisor_exactly_its_128s_and_aggregates_the_rack():
    fab = _fab()
    pol = policy(fab, fab.hosts["tor-r01"])
    assert pol.prefix_lists6["OCS6-HV-hv-r01-01"] == ["2001:db8:0:1::b/128", "2001:db8:0:1::c613:10a/128"]
    assert pol.prefix_lists6["OCS6-HV-hv-r01-02"] == ["2001:db8:0:1::c613:10c/128"]
    rmaps = {n.key: n.rmap_in6 for n in pol.neighbors}
    assert rmaps == {"198.18.0.1": None, "198.18.1.11": "OCS6-IN-HV-hv-r01-01",
                     "198.18.1.12": "OCS6-IN-HV-hv-r01-02", "198.18.1.140": "OCS6-IN-HV-hv-r01-02"}
    assert pol.aggregates6 == ["2001:db8:0:1::/64"]
    # to the spines: the aggregate and the rack's host /128s, never an instance /128 (one ToR)
    assert pol.route_maps6["OCS6-OUT-SPINE"] == [(10, "OCS6-RACK-NETS", []), (20, "OCS6-RACK-HOSTS", [])]
    assert pol.prefix_lists6["OCS6-RACK-HOSTS"] == ["2001:db8:ffff::11/128"]
    af = _af6(config_lines(fab, fab.hosts["tor-r01"]))
    assert "  aggregate-address 2001:db8:0:1::/64" in af
    assert "  neighbor 198.18.1.12 route-map OCS6-IN-HV-hv-r01-02 in" in af


def test_two_tors_send_the_racks_128s_to_the_spines():
    fab = _fab(two_tors)
    assert policy(fab, fab.hosts["tor-r01b"]).prefix_lists6["OCS6-RACK-INSTANCES"] == ["2001:db8:0:1::/64 ge 128"]


def test_spine_sends_the_border_only_the_racks_ipv6_subnets():
    fab = _fab()
    pol = policy(fab, fab.hosts["spine1"])
    assert pol.prefix_lists6["OCS6-RACKS"] == ["2001:db8:0:1::/64", "2001:db8:0:2::/64"]
    assert pol.route_maps6["OCS6-OUT-BORDER"] == [(10, "OCS6-RACKS", [])]  # no infrastructure, no /128
    assert pol.prefix_lists6["OCS6-DEFAULT"] == ["::/0"]
    border = [n for n in pol.neighbors if n.group == "BORDER6"]
    assert [(n.key, n.remote_as, n.session["holdtime"]) for n in border] == [("2001:db8:ff::2", 65530, 30)]
    lines = config_lines(fab, fab.hosts["spine1"])
    assert "  no neighbor BORDER6 activate" in lines  # IPv6 only
    assert "ipv6 route 2001:db8::/32 reject 250" in lines
    assert pol.prefix_lists6["OCS6-RACK-r01-NETS"] == ["2001:db8:0:1::/64"]
    assert {n.key: n.rmap_in6 for n in pol.neighbors if n.group == "TOR"} == {
        "198.18.0.11": "OCS6-IN-RACK-r01", "198.18.0.12": "OCS6-IN-RACK-r02"}


def test_static_mode_tor_aggregates_its_kernel_128s():
    fab = _fab(static6)
    pol = policy(fab, fab.hosts["tor-r01"])
    # the static IPv6 routes to each hypervisor's instances (routes.static6_lines), exactly
    assert pol.prefix_lists6["OCS6-RACK-KERNEL"] == [
        "2001:db8:0:1::b/128", "2001:db8:0:1::c613:10a/128", "2001:db8:0:1::c613:10c/128"]
    assert pol.redistribute6 == ["redistribute kernel route-map OCS6-IN-KERNEL"]
    assert not config_lines(fab, fab.hosts["hv-r01-01"])[3:]  # no BGP on hypervisors


def test_compact6_merges_128s_into_exact_blocks():
    ips = [aton6("2001:db8::%x" % i) for i in (4, 5, 6, 7, 9)]
    assert compact_hosts6(ips) == ["2001:db8::4/126 ge 128", "2001:db8::9/128"]
    assert compact6(["::/0", "2001:db8::5/128", "2001:db8::4/128"]) == ["::/0", "2001:db8::4/127 ge 128"]
    assert host_blocks([0, 1, 2, 3], bits=128) == [(0, 126)]
    assert host_blocks([(1 << 128) - 1], bits=128) == [((1 << 128) - 1, 128)]


def test_soft_in_for_an_ipv6_import_policy():
    fab = _fab()
    conf = "\n".join(config_lines(fab, fab.hosts["tor-r01"]))
    changed = frr_reload.changed_policies(["ipv6 prefix-list OCS6-HV-hv-r01-02 permit 2001:db8:0:1::99/128"])
    assert changed == {"OCS6-HV-hv-r01-02"}
    assert frr_reload.soft_in_peers(conf, changed) == []
    assert frr_reload.soft_in_peers(conf, changed, "ipv6") == [("198.18.1.12", False), ("198.18.1.140", False)]
    assert frr_reload.clear_command("SPINE", True, "ipv6") == "clear bgp ipv6 unicast peer-group SPINE soft in"


def test_ipv6_edge_and_host_policy_of_the_spine():
    fab = _fab()
    lines = ipv6_lines(fab, fab.hosts["spine1"])
    assert "-A OCS-HOST -s 2001:db8:ff::2/128 -p tcp -m tcp --dport 179 -m comment --comment ocs-bgp -j ACCEPT" in lines
    raw = lines[lines.index("*raw"):]
    assert "-A OCS-NOTRACK -j OCS-EDGE" in raw
    edge = [ln for ln in raw if ln.startswith("-A OCS-EDGE")]
    assert edge == ["-A OCS-EDGE -s 2001:db8:ff::2/128 -i eth9 -m comment --comment ocs-edge-peer -j RETURN",
                    "-A OCS-EDGE -s 2001:db8::/32 -i eth9 -m comment --comment ocs-edge-spoof -j DROP"]
    tor = ipv6_lines(fab, fab.hosts["tor-r01"])
    assert not [ln for ln in tor if ln.startswith("-A OCS-EDGE") or ln == "-A OCS-NOTRACK -j OCS-EDGE"]


def test_edge_drops_sources_outside_internal_ranges6_too():
    def wide(d):
        d["fabric"]["internal_ranges6"] = ["2001:db8::/48", "2001:db8:1::/48", "2001:db8:ffff::/48"]
        d["racks"]["r01"]["instance_subnets6"] = ["2001:db8:0:1::/64"]
        d["racks"]["r02"]["instance_subnets6"] = ["2001:db8:1:2::/64"]
        d["hostvars"]["hv-r02-01"]["ocs_instances"][0]["ip6"] = "2001:db8:1:2::d"
        d["fabric"]["border_peers"][0]["address6"] = "2001:db8:2:ff::2"
        d["hostvars"]["spine1"]["ocs_uplinks"][0]["address6"] = "2001:db8:2:ff::1/64"
    fab = _fab(wide)
    edge = [ln.split()[3] for ln in ipv6_lines(fab, fab.hosts["spine1"]) if ln.startswith("-A OCS-EDGE") and "DROP" in ln]
    # internal ranges merged, and the border link's own network
    assert edge == ["2001:db8::/47", "2001:db8:2:ff::/64", "2001:db8:ffff::/48"]


# --- bad input: named errors -------------------------------------------------------------

def _problems(mutate, base=dual_stack_border):
    data = base(copy.deepcopy(BASE))
    mutate(data)
    return problems_of(data)


def test_border_peer6_without_ipv6_on_the_spines_border_link():
    problems = _problems(lambda d: d["hostvars"]["spine1"]["ocs_uplinks"][0].pop("address6"))
    assert problems == [
        "spines.spine1.ocs_uplinks[0].address6 must be an IPv6 address of the spine on the network of border peer "
        "198.18.0.254's address6 2001:db8:ff::2 (its IPv6 session runs on this border link, eth9); it has none"]
    problems = _problems(lambda d: d["hostvars"]["spine1"]["ocs_uplinks"][0].update(address6="2001:db8:fe::1/64"))
    assert problems == [
        "spines.spine1.ocs_uplinks[0].address6 must be an IPv6 address of the spine on the network of border peer "
        "198.18.0.254's address6 2001:db8:ff::2 (its IPv6 session runs on this border link, eth9); "
        "it is 2001:db8:fe::1/64"]


def test_uplink_address6_only_on_a_spines_border_link():
    problems = _problems(lambda d: d["hostvars"]["tor-r01"]["ocs_uplinks"][0].update(address6="2001:db8:fe::1/64"))
    assert problems == [
        "tors.tor-r01.ocs_uplinks[0].address6 is only for a spine's border link (an uplink whose peer is a border "
        "peer): the fabric's links carry IPv6 on their IPv4 sessions (docs/ipv6.md)"]


def test_border_peer6_in_gateway_mode():
    problems = _problems(gateway_mode)
    assert "ocs_fabric.border_peers[0].address6 2001:db8:ff::2 needs nat_mode host: the spines are the IPv6 edge " \
           "(NAT gateways carry no IPv6 border session)" in problems


@pytest.mark.parametrize("value,problem", [
    ("fe80::2", "fe80::2 is a link-local address (fe80::/10)"),
    ("2001:db8:ff::2%eth9", "'2001:db8:ff::2%eth9' is not an IPv6 address (no zone id: '%eth9')"),
])
def test_border_peer6_address(value, problem):
    problems = _problems(lambda d: d["fabric"]["border_peers"][0].update(address6=value))
    assert problems == ["ocs_fabric.border_peers[0].address6 " + problem]


@pytest.mark.parametrize("value,problem", [
    ("2001:db8:ff::/64", "2001:db8:ff:: is the subnet-router anycast address of 2001:db8:ff::/64"),
    ("2001:db8:ff::1", "2001:db8:ff::1 is not an IPv6 interface address in CIDR notation (address/len)"),
    ("fe80::1/64", "fe80::1 is a link-local address (fe80::/10)"),
])
def test_border_link_address6(value, problem):
    problems = _problems(lambda d: d["hostvars"]["spine1"]["ocs_uplinks"][0].update(address6=value))
    assert "spines.spine1.ocs_uplinks[0].address6 " + problem in problems


def test_ipv6_fields_of_links_are_unknown_in_an_ipv4_only_fabric():
    def add(d):
        d["fabric"]["border_peers"][0]["address6"] = "2001:db8:ff::2"
        d["hostvars"]["spine1"]["ocs_uplinks"][0]["address6"] = "2001:db8:ff::1/64"
    problems = _problems(add, base=lambda d: d)
    assert problems == [
        "ocs_fabric.border_peers[0].address6 is not a known field (known: address, asn, bfd, holdtime, keepalive, "
        "password)",
        "spines.spine1.ocs_uplinks[0].address6 is not a known field (known: address, interface, password, peer)"]


def test_link_local_session_on_an_interface_that_carries_no_link():
    """A downlink naming a host whose uplinks are all numbered: no session runs on it."""
    problems = _problems(lambda d: d["hostvars"]["tor-r01"]["ocs_downlinks"].append(
        {"interface": "swp5", "host": "hv-r01-01"}))
    assert problems == [
        "tors.tor-r01.ocs_downlinks[2].host hv-r01-01 has no unnumbered uplink (no peer): swp5 carries no link to it, "
        "so no BGP session and no IPv6 (link-local) runs there"]


def test_overlapping_rack_ipv6_aggregates():
    problems = _problems(lambda d: d["racks"]["r02"].update(instance_subnets6=["2001:db8:0:1:8000::/80"]))
    assert "ocs_racks.r02.instance_subnets6[0] 2001:db8:0:1:8000::/80 overlaps ocs_racks.r01.instance_subnets6[0] " \
           "2001:db8:0:1::/64" in problems


def test_static_mode_hypervisor_ipv6_default_via_its_tors_address6():
    def static(d):
        static6(d)
        two_tors(d)
        d["hostvars"]["tor-r01b"]["ocs_address6"] = "2001:db8:ffff::12"
    fab = _fab(static)
    lines = host_lines(fab, fab.hosts["hv-r01-01"])
    want = ("route replace default proto 211 metric 1024 nexthop via 2001:db8:ffff::11 dev eth0 onlink "
            "nexthop via 2001:db8:ffff::12 dev eth1 onlink")  # one uplink to each ToR
    assert lines[-1] == want and line_problem(want, 211) is None
    assert [ln for ln in lines if ln.startswith("address") and "ffff" in ln] == [
        "address replace 2001:db8:ffff::21/128 dev eth0 nodad", "address replace 2001:db8:ffff::21/128 dev eth1 nodad"]
    assert default6_lines(fab.hosts["hv-r02-01"]) == [
        "route replace default via 2001:db8:ffff::13 dev eth0 proto 211 metric 1024 onlink"]
    one = _fab(static6)  # hv-r01-02: both uplinks to tor-r01 (its eth1 and eth2)
    assert default6_lines(one.hosts["hv-r01-02"]) == [
        "route replace default proto 211 metric 1024 nexthop via 2001:db8:ffff::11 dev eth0 onlink "
        "nexthop via 2001:db8:ffff::11 dev eth1 onlink"]
    assert not [ln for ln in host_lines(_fab(), _fab().hosts["hv-r01-01"]) if "default" in ln]  # BGP mode: none


@pytest.mark.parametrize("change, problem", [
    (lambda d: d["hostvars"]["hv-r01-02"].pop("ocs_address6"),
     "hypervisors.hv-r01-02.ocs_address6 is not set, but routing_mode static routes the IPv6 of its instances "
     "(vm-c) by ocs_address6 next hops on its rack links"),
    (lambda d: d["hostvars"]["tor-r02"].pop("ocs_address6"),
     "tors.tor-r02.ocs_address6 is not set, but routing_mode static routes the IPv6 of rack r02's instances "
     "(on hv-r02-01) through this ToR by its ocs_address6 on its downlinks"),
    (lambda d: d["hostvars"]["hv-r02-01"].pop("ocs_uplinks"),
     "hypervisors.hv-r02-01.ocs_uplinks has no numbered uplink to tor-r02 of rack r02, but routing_mode static"),
    (lambda d: d["hostvars"]["tor-r02"].pop("ocs_downlinks"),
     "tors.tor-r02.ocs_downlinks has none on the network of hv-r02-01's uplink eth0 (198.18.2.0/24), but "
     "routing_mode static routes the IPv6 of hv-r02-01's instances out of it, on-link"),
])
def test_static_mode_ipv6_needs_its_on_link_next_hops(change, problem):
    data = static6(dual_stack_border(copy.deepcopy(BASE)))
    assert problems_of(copy.deepcopy(data)) == []
    change(data)
    found = problems_of(data)
    assert any(p.startswith(problem) for p in found), found


def test_ntoa6_prints_as_ipaddress_and_from_ntoa6_reads_it_back():
    import ipaddress
    import random
    rng = random.Random(21)
    values = [0, 1, (1 << 128) - 1, 0xFFFF << 32, (0xFFFF << 32) | 0xC6130A0A, 1 << 112, 0x20010DB8 << 96]
    for dummy in range(3000):  # sparse values: runs of zero groups of every length and place
        v = 0
        for shift in range(0, 128, 16):
            if rng.random() < 0.4:
                v |= rng.randrange(1 << 16) << shift
        values.append(v)
    for v in values:
        assert ntoa6(v) == str(ipaddress.IPv6Address(v)), hex(v)
        if v >> 32 != 0xFFFF:
            assert from_ntoa6(ntoa6(v)) == v
