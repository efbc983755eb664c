"""FRR computation: owned prefixes, prefix-lists, sessions and policies per tier."""


import pytest

from fabric_data import gateway_mode as _border_gateway_mode, problems_of
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.frr import config_lines, daemons_lines, owned, policy
from ansible_collections.ocs.l3.plugins.modules import ocs_frr_reload as frr_reload



def hosts(data):
    fab = build(data)
    return fab, fab.hosts


def neighbors(pol):
    return [(n.key, n.interface, n.remote_as, n.group, n.rmap_in) for n in pol.neighbors]


def gateway_mode(data):
    _border_gateway_mode(data)
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        data["hostvars"][name].pop("ocs_public_address")


# --- hypervisors --------------------------------------------------------------

def test_hypervisor_owns_instances_floating_and_public_in_host_mode(data):
    fab, h = hosts(data)
    assert owned(fab, h["hv-r01-01"]) == ["198.19.1.10/32", "198.19.1.11/32", "203.0.113.11/32", "203.0.113.101/32"]


def test_hypervisor_owns_only_instances_in_gateway_mode(data):
    gateway_mode(data)
    fab, h = hosts(data)
    assert owned(fab, h["hv-r01-01"]) == ["198.19.1.10/32", "198.19.1.11/32"]


def test_hypervisor_exports_own_imports_the_fabric_exactly(data):
    fab, h = hosts(data)
    pol = policy(fab, h["hv-r01-01"])
    # the default and, collapsed, the space of every rack's instance subnets,
    # the infrastructure (rack host subnets, the spine's link network) and the
    # floating range: the ToR's export (OCS-TO-HV) is the exact list; repeated
    # on every hypervisor it would cost hypervisors x racks lines
    assert pol.prefix_lists == {"OCS-OWN": owned(fab, h["hv-r01-01"]), "OCS-FROM-TOR": [
        "0.0.0.0/0", "198.18.0.0/23 le 32", "198.18.2.0/24 le 32", "198.19.1.0/24 le 32", "198.19.2.0/24 le 32",
        "203.0.113.0/24 le 32"]}
    assert policy(fab, h["tor-r01"]).prefix_lists["OCS-TO-HV"] == [
        "0.0.0.0/0", "198.19.1.0/24", "198.19.2.0/25", "198.19.2.128/25",
        "198.18.0.0/24", "198.18.1.0/24", "198.18.2.0/24", "203.0.113.0/24"]
    assert pol.route_maps == {"OCS-IN-TOR": [(10, "OCS-FROM-TOR", [])], "OCS-OUT-TOR": [(10, "OCS-OWN", [])]}
    assert pol.networks == pol.prefix_lists["OCS-OWN"]
    assert neighbors(pol) == [("198.18.1.1", False, 65101, "TOR", None)]


def test_dual_homed_hypervisor_has_two_sessions_and_ecmp(data):
    fab, h = hosts(data)
    lines = config_lines(fab, h["hv-r01-02"])
    assert " neighbor 198.18.1.1 remote-as 65101" in lines
    assert " neighbor 198.18.1.129 remote-as 65101" in lines
    assert "  maximum-paths 2" in lines
    assert not [ln for ln in config_lines(fab, h["hv-r01-01"]) if "maximum-paths" in ln]


def test_unnumbered_uplink_on_both_sides(data):
    data["hostvars"]["hv-r01-01"]["ocs_uplinks"] = [{"interface": "eth0"}]
    data["hostvars"]["tor-r01"]["ocs_downlinks"].append({"interface": "swp5", "host": "hv-r01-01"})
    fab, h = hosts(data)
    hv = config_lines(fab, h["hv-r01-01"])
    assert [" neighbor eth0 interface peer-group TOR", " neighbor eth0 remote-as 65101"] == \
        [ln for ln in hv if ln.startswith(" neighbor eth0")]
    tor = policy(fab, h["tor-r01"])
    assert ("swp5", True, 65200, "HV", "OCS-IN-HV-hv-r01-01") in neighbors(tor)
    assert "  neighbor swp5 route-map OCS-IN-HV-hv-r01-01 in" in config_lines(fab, h["tor-r01"])


def test_static_mode_hypervisor_has_no_bgp(data):
    data["fabric"]["routing_mode"] = "static"
    fab, h = hosts(data)
    lines = config_lines(fab, h["hv-r01-01"])
    assert lines == ["log syslog informational", "no zebra nexthop kernel enable", "!"]


def test_hypervisor_without_instances_exports_nothing(data):
    gateway_mode(data)
    data["hostvars"]["hv-r01-01"]["ocs_instances"] = []
    fab, h = hosts(data)
    pol = policy(fab, h["hv-r01-01"])
    assert pol.route_maps["OCS-OUT-TOR"] == []  # only the explicit final deny
    assert "route-map OCS-OUT-TOR deny 1000" in config_lines(fab, h["hv-r01-01"])


# --- ToRs ---------------------------------------------------------------------

def test_tor_accepts_from_each_hypervisor_only_what_it_owns(data):
    fab, h = hosts(data)
    pol = policy(fab, h["tor-r01"])
    assert pol.prefix_lists["OCS-HV-hv-r01-01"] == owned(fab, h["hv-r01-01"])
    assert pol.prefix_lists["OCS-HV-hv-r01-02"] == ["198.19.1.12/32", "203.0.113.12/32", "203.0.113.102/32"]
    assert neighbors(pol) == [
        ("198.18.0.1", False, 65000, "SPINE", None),
        ("198.18.1.11", False, 65200, "HV", "OCS-IN-HV-hv-r01-01"),
        ("198.18.1.12", False, 65200, "HV", "OCS-IN-HV-hv-r01-02"),
        ("198.18.1.140", False, 65200, "HV", "OCS-IN-HV-hv-r01-02"),
    ]
    lines = config_lines(fab, h["tor-r01"])
    # no default-originate: the ToR relays what it holds from its spines, so a
    # ToR that lost its uplinks stops drawing its hypervisors' traffic
    assert not [ln for ln in lines if "default-originate" in ln]
    assert "  neighbor HV route-map OCS-OUT-HV out" in lines
    assert "0.0.0.0/0" in pol.prefix_lists["OCS-TO-HV"]


def test_tor_announces_subnets_and_public_never_instance_host_routes(data):
    fab, h = hosts(data)
    pol = policy(fab, h["tor-r01"])
    # aggregates, announced only while a more specific is in the BGP table:
    # the instance subnet from the hypervisors' /32s, the host subnet from the
    # ToR's downlink networks (its `network`s) and the hypervisors' loopbacks
    assert pol.networks == ["198.18.1.0/25", "198.18.1.128/25"]
    assert pol.aggregates == ["198.19.1.0/24", "198.18.1.0/24"]
    assert "  aggregate-address 198.19.1.0/24" in config_lines(fab, h["tor-r01"])
    assert not [ln for ln in config_lines(fab, h["tor-r01"]) if ln == "  network 198.19.1.0/24"]
    assert pol.prefix_lists["OCS-RACK-NETS"] == ["198.19.1.0/24"]
    # the host subnet, and exactly each ToR's downlink networks (with two ToRs,
    # each reaches only its own links: the spines need the more specific)
    assert pol.prefix_lists["OCS-RACK-HOSTS"] == ["198.18.1.0/24", "198.18.1.0/25", "198.18.1.128/25"]
    assert pol.prefix_lists["OCS-RACK-PUBLIC"] == ["203.0.113.11/32", "203.0.113.12/32", "203.0.113.101/32",
                                                   "203.0.113.102/32"]
    assert pol.route_maps["OCS-OUT-SPINE"] == [(10, "OCS-RACK-NETS", []), (20, "OCS-RACK-PUBLIC", []),
                                               (30, "OCS-RACK-HOSTS", [])]
    out = pol.prefix_lists["OCS-RACK-NETS"] + pol.prefix_lists["OCS-RACK-PUBLIC"]
    assert not [p for p in out if p.startswith("198.19.1.") and p.endswith("/32")]


def test_tor_static_mode_aggregates_the_kernel_routes_of_its_rack(data):
    data["fabric"]["routing_mode"] = "static"
    fab, h = hosts(data)
    pol = policy(fab, h["tor-r01"])
    assert [g.name for g in pol.groups] == ["SPINE"]
    assert neighbors(pol) == [("198.18.0.1", False, 65000, "SPINE", None)]
    assert pol.networks == ["198.18.1.0/25", "198.18.1.128/25"]
    assert pol.aggregates == ["198.19.1.0/24", "198.18.1.0/24"]
    # the rack's /32s (kernel routes of the rack table) enter BGP exactly:
    # contributors of the aggregate, and the public ones announced as before
    assert pol.redistribute == ["redistribute kernel route-map OCS-IN-KERNEL"]
    assert pol.route_maps["OCS-IN-KERNEL"] == [(10, "OCS-RACK-KERNEL", [])]
    assert pol.prefix_lists["OCS-RACK-KERNEL"] == [
        "198.19.1.10/32", "198.19.1.11/32", "198.19.1.12/32",
        "203.0.113.11/32", "203.0.113.12/32", "203.0.113.101/32", "203.0.113.102/32"]
    assert "  redistribute kernel route-map OCS-IN-KERNEL" in config_lines(fab, h["tor-r01"])


def test_tor_gateway_mode_announces_only_subnets(data):
    gateway_mode(data)
    fab, h = hosts(data)
    pol = policy(fab, h["tor-r01"])
    assert pol.prefix_lists["OCS-RACK-PUBLIC"] == []
    assert pol.route_maps["OCS-OUT-SPINE"] == [(10, "OCS-RACK-NETS", []), (20, "OCS-RACK-HOSTS", [])]


def test_tor_imports_default_subnets_and_floating_from_spines(data):
    fab, h = hosts(data)
    assert policy(fab, h["tor-r02"]).prefix_lists["OCS-FABRIC"] == [
        "0.0.0.0/0", "198.19.1.0/24", "198.19.2.0/25", "198.19.2.128/25", "203.0.113.0/24 le 32"]


# --- spines, gateways, border -------------------------------------------------

def test_spine_sessions_and_per_rack_import(data):
    fab, h = hosts(data)
    pol = policy(fab, h["spine1"])
    assert neighbors(pol) == [
        ("198.18.0.11", False, 65101, "TOR", "OCS-IN-RACK-r01"),
        ("198.18.0.12", False, 65102, "TOR", "OCS-IN-RACK-r02"),
        ("198.18.0.21", False, 65300, "GW", "OCS-IN-GW-gw-01"),
        ("198.18.0.254", False, 65530, "BORDER", None),
    ]
    assert pol.prefix_lists["OCS-RACK-r02-NETS"] == ["198.19.2.0/25", "198.19.2.128/25"]
    assert pol.prefix_lists["OCS-RACK-r02-PUBLIC"] == ["203.0.113.21/32"]
    assert pol.route_maps["OCS-IN-RACK-r02"] == [(10, "OCS-RACK-r02-NETS", []), (20, "OCS-RACK-r02-PUBLIC", []),
                                                 (30, "OCS-RACK-r02-HOSTS", [])]
    # tor-r02 and hv-r02-01 have their address on no link (loopbacks): exact /32s next to the host subnet
    assert pol.prefix_lists["OCS-RACK-r02-HOSTS"] == ["198.18.2.0/24", "198.18.2.1/32", "198.18.2.11/32"]
    assert pol.route_maps["OCS-IN-GW-gw-01"] == [(10, "OCS-GW-gw-01", [])]
    assert pol.prefix_lists["OCS-GW-gw-01"] == ["203.0.113.250/32"]


def test_spine_border_gets_floating_ranges_only_and_gives_default(data):
    fab, h = hosts(data)
    pol = policy(fab, h["spine1"])
    border = [g for g in pol.groups if g.name == "BORDER"][0]
    assert (border.rmap_in, border.rmap_out, border.fabric) == ("OCS-IN-BORDER", "OCS-OUT-BORDER", False)
    assert pol.route_maps["OCS-OUT-BORDER"] == [(10, "OCS-FLOATING", [])]
    assert pol.prefix_lists["OCS-FLOATING"] == ["203.0.113.0/24"]
    assert pol.route_maps["OCS-IN-BORDER"] == [(10, "OCS-DEFAULT", [])]
    # host NAT mode: the spine announces the range as an aggregate of the
    # floating and public /32s of its racks (none: nothing to announce); a
    # low-preference blackhole keeps unassigned addresses from looping
    assert pol.aggregates == ["203.0.113.0/24"]
    assert "203.0.113.0/24" not in pol.networks
    assert pol.statics == ["ip route 203.0.113.0/24 blackhole 250", "ip route 198.18.0.0/15 reject 250"]


@pytest.mark.parametrize("mode", ["host", "gateway"])
def test_internal_destinations_never_follow_the_default(data, mode):
    """Spines and gateways, which hold the border's default, refuse any
    internal address no more specific route serves (molecule caught a
    gateway's BGP FIN to a spine whose link had just gone down leaving by
    the default, with an internal source). ToRs and hypervisors do not need
    it: their default leads to a spine or a gateway."""
    if mode == "gateway":
        gateway_mode(data)
    data["fabric"]["internal_ranges"] = ["198.18.0.0/15", "10.0.0.0/8"]
    fab, h = hosts(data)
    for name, host in h.items():
        rejects = [ln for ln in policy(fab, host).statics if " reject " in ln]
        if host.role in ("spine", "nat_gateway"):
            assert rejects == ["ip route 198.18.0.0/15 reject 250", "ip route 10.0.0.0/8 reject 250"], name
        else:
            assert rejects == [], name
    # printed in FRR's running-config order (by prefix), so a reload finds nothing to do
    statics = [ln.split()[2] for ln in config_lines(fab, h["spine1"]) if ln.startswith("ip route ")]
    assert statics == ["10.0.0.0/8", "198.18.0.0/15", "203.0.113.0/24"]


def test_spine_gateway_mode_takes_ranges_and_default_from_gateways(data):
    gateway_mode(data)
    fab, h = hosts(data)
    pol = policy(fab, h["spine1"])
    assert pol.networks == ["198.18.0.0/24"] and pol.aggregates == []
    assert pol.route_maps["OCS-IN-GW-gw-01"] == [(10, "OCS-GW-gw-01", []), (20, "OCS-FLOATING", []),
                                                 (30, "OCS-DEFAULT", [])]
    assert all(not p for name, p in pol.prefix_lists.items() if name.endswith("-PUBLIC"))
    # the default goes down to the ToRs, never back to the gateways
    groups = {g.name: g for g in pol.groups}
    assert groups["TOR"].rmap_out == "OCS-OUT-FABRIC" and "0.0.0.0/0" in pol.prefix_lists["OCS-FABRIC"]
    assert groups["GW"].rmap_out == "OCS-OUT-GW"
    assert pol.route_maps["OCS-OUT-GW"] == [(10, "OCS-FABRIC-NETS", []), (20, "OCS-INFRA", [])]
    assert pol.prefix_lists["OCS-FABRIC-NETS"] == pol.prefix_lists["OCS-FABRIC"][1:]
    assert not any(g.default_originate for g in pol.groups)
    lines = config_lines(fab, h["spine1"])
    assert " bgp bestpath as-path multipath-relax" in lines
    # ToRs and gateways send through the spine (its ECMP), even on a shared link
    assert "  neighbor TOR next-hop-self" in lines and "  neighbor GW next-hop-self" in lines


def test_spine_gateway_mode_has_no_border_session(data):
    gateway_mode(data)
    fab, h = hosts(data)
    pol = policy(fab, h["spine1"])
    assert [g.name for g in pol.groups] == ["TOR", "GW"]
    assert [n.group for n in pol.neighbors] == ["TOR", "TOR", "GW"]
    assert "OCS-IN-BORDER" not in pol.route_maps and "OCS-OUT-BORDER" not in pol.route_maps
    assert not [ln for ln in config_lines(fab, h["spine1"]) if "198.18.0.254" in ln or "BORDER" in ln]


def test_gateway_host_mode_peers_only_with_spines(data):
    fab, h = hosts(data)
    pol = policy(fab, h["gw-01"])
    assert neighbors(pol) == [("198.18.0.1", False, 65000, "SPINE", None)]
    assert pol.networks == ["203.0.113.250/32"]
    assert pol.route_maps["OCS-OUT-SPINE"] == [(10, "OCS-OWN", [])]
    assert pol.route_maps["OCS-IN-SPINE"] == [(10, "OCS-FABRIC", []), (20, "OCS-INFRA", [])]
    assert not pol.groups[0].default_originate
    assert pol.statics == ["ip route 198.18.0.0/15 reject 250"]
    assert not [ln for ln in config_lines(fab, h["spine1"]) if "multipath-relax" in ln or "next-hop-self" in ln]


def test_gateway_mode_gateway_is_the_edge(data):
    gateway_mode(data)
    fab, h = hosts(data)
    pol = policy(fab, h["gw-01"])
    assert neighbors(pol) == [("198.18.0.1", False, 65000, "SPINE", None),
                              ("198.18.0.254", False, 65530, "BORDER", None)]
    assert pol.networks == ["203.0.113.250/32", "203.0.113.0/24"]
    assert pol.statics == ["ip route 203.0.113.0/24 blackhole 250", "ip route 198.18.0.0/15 reject 250"]
    spine, border = pol.groups
    # to the spines: own /32, ranges, and a default only while one came from a border peer
    assert pol.route_maps["OCS-OUT-SPINE"] == [(10, "OCS-OWN", []), (20, "OCS-FLOATING", []), (30, "OCS-DEFAULT", [])]
    assert spine.default_originate == "OCS-HAS-BORDER-DEFAULT"
    assert pol.route_maps["OCS-HAS-BORDER-DEFAULT"] == [(10, "OCS-DEFAULT", ["match peer 198.18.0.254"])]
    # from the spines: never a default
    assert pol.route_maps["OCS-IN-SPINE"] == [(10, "OCS-FABRIC-NETS", []), (20, "OCS-INFRA", [])]
    assert "0.0.0.0/0" not in pol.prefix_lists["OCS-FABRIC-NETS"]
    # the border: ranges and own /32 out, only the default in
    assert (border.name, border.fabric) == ("BORDER", False)
    assert pol.route_maps["OCS-OUT-BORDER"] == [(10, "OCS-FLOATING", []), (20, "OCS-OWN", [])]
    assert pol.prefix_lists["OCS-FLOATING"] == ["203.0.113.0/24"]
    assert pol.route_maps["OCS-IN-BORDER"] == [(10, "OCS-DEFAULT", [])]
    lines = config_lines(fab, h["gw-01"])
    assert "  neighbor SPINE default-originate route-map OCS-HAS-BORDER-DEFAULT" in lines
    assert "  neighbor BORDER route-map OCS-IN-BORDER in" in lines
    assert "  neighbor BORDER route-map OCS-OUT-BORDER out" in lines
    # the ranges go to the border only while a rack's instance subnet is in
    # the BGP table (conditional advertisement, scanned every 5 s)
    assert "  neighbor BORDER advertise-map OCS-ADV-FLOATING exist-map OCS-HAS-RACKS" in lines
    assert " bgp conditional-advertisement timer 5" in lines
    assert pol.route_maps["OCS-HAS-RACKS"] == [(10, "OCS-RACKS", [])]
    assert pol.prefix_lists["OCS-RACKS"] == ["198.19.1.0/24", "198.19.2.0/25", "198.19.2.128/25"]
    i = lines.index("route-map OCS-HAS-BORDER-DEFAULT permit 10")
    assert lines[i + 1:i + 4] == [" match ip address prefix-list OCS-DEFAULT", " match peer 198.18.0.254", "exit"]


def test_gateway_mode_gateway_never_sends_internal_prefixes_to_the_border(data):
    gateway_mode(data)
    data["fabric"]["border_peers"].append({"address": "198.18.0.253", "asn": 65531})
    fab, h = hosts(data)
    pol = policy(fab, h["gw-01"])
    out = [e for _, plist, _ in pol.route_maps["OCS-OUT-BORDER"] for e in pol.prefix_lists[plist]]
    assert out == ["203.0.113.0/24", "203.0.113.250/32"]
    assert [seq for seq, _, _ in pol.route_maps["OCS-HAS-BORDER-DEFAULT"]] == [10, 20]
    assert [n.key for n in pol.neighbors if n.group == "BORDER"] == ["198.18.0.253", "198.18.0.254"]


def test_gateway_mode_without_border_never_originates_a_default(data):
    gateway_mode(data)
    data["fabric"]["border_peers"] = []
    for name in ("spine1", "gw-01"):  # no border, no border links
        ups = data["hostvars"][name]["ocs_uplinks"]
        ups[:] = [up for up in ups if up.get("peer") != "198.18.0.254"]
    fab, h = hosts(data)
    pol = policy(fab, h["gw-01"])
    assert pol.route_maps["OCS-HAS-BORDER-DEFAULT"] == []  # only the final deny
    assert [n.group for n in pol.neighbors] == ["SPINE"]


# --- knobs, shape, daemons ----------------------------------------------------

@pytest.mark.parametrize("mode", ["host", "gateway"])
def test_every_session_has_import_and_export_policy(data, mode):
    if mode == "gateway":
        gateway_mode(data)
    fab, h = hosts(data)
    for host in h.values():
        pol = policy(fab, host)
        groups = {g.name: g for g in pol.groups}
        for n in pol.neighbors:
            g = groups[n.group]
            assert g.rmap_out in pol.route_maps, (host.name, n)
            assert (n.rmap_in or g.rmap_in) in pol.route_maps, (host.name, n)
        assert "bgp ebgp-requires-policy" not in " ".join(config_lines(fab, host))


def test_bgp_knobs_apply_to_fabric_groups_only(data):
    data["fabric"]["bgp"] = {"bfd": True, "graceful_restart": True, "keepalive": 1, "holdtime": 3,
                             "password": "s3cret"}
    fab, h = hosts(data)
    lines = config_lines(fab, h["spine1"])
    assert " bgp graceful-restart" in lines
    assert not [ln for ln in lines if "check-control-plane-failure" in ln]  # FRR 8.4: it blinds BFD (docs/failures.md)
    for g in ("TOR", "GW"):
        assert [" neighbor %s ttl-security hops 1" % g, " neighbor %s bfd" % g, " neighbor %s password s3cret" % g,
                " neighbor %s timers 1 3" % g] == \
            [ln for ln in lines if ln.startswith(" neighbor %s " % g) and "peer-group" not in ln]
    assert [ln for ln in lines if ln.startswith(" neighbor BORDER ")] == [" neighbor BORDER peer-group"]


def test_graceful_restart_preserves_forwarding_state_in_running_config_order(data):
    """FRR's running-config prints ``bgp graceful-restart`` and then
    ``bgp graceful-restart preserve-fw-state`` (the F bit: without it the
    neighbours drop a restarting router's routes as soon as it reconnects),
    right after ``bgp log-neighbor-changes``."""
    data["fabric"]["bgp"] = {"graceful_restart": True}
    fab, h = hosts(data)
    for host in h.values():
        lines = config_lines(fab, host)
        if not any(ln.startswith("router bgp ") for ln in lines):
            continue
        at = lines.index(" bgp log-neighbor-changes")
        assert lines[at + 1:at + 3] == [" bgp graceful-restart", " bgp graceful-restart preserve-fw-state"], host.name
        assert sum("graceful-restart" in ln for ln in lines) == 2, host.name


def test_every_fabric_session_is_ttl_secured(data):
    fab, h = hosts(data)
    for host in h.values():
        lines = config_lines(fab, host)
        groups = [ln.split()[1] for ln in lines if ln.endswith(" peer-group") and ln.startswith(" neighbor ")]
        for g in groups:
            assert (" neighbor %s ttl-security hops 1" % g in lines) == (g != "BORDER"), (host.name, g)


def test_default_knobs(data):
    fab, h = hosts(data)
    lines = config_lines(fab, h["hv-r01-01"])
    assert " neighbor TOR timers 3 9" in lines
    assert not [ln for ln in lines if "bfd" in ln or "password" in ln or "graceful-restart" in ln]
    assert " bgp graceful-shutdown" not in lines  # only a drained host (drain.drained_text)


@pytest.mark.parametrize("bgp,expected", [
    ({"bfd": "yes"}, "ocs_fabric.bgp.bfd yes must be true or false"),
    ({"keepalive": 0}, "ocs_fabric.bgp.keepalive 0 must be an integer from 1 to 65535"),
    ({"keepalive": 10, "holdtime": 20}, "ocs_fabric.bgp.holdtime 20 must be at least 3 times keepalive 10"),
    ({"password": "a b"}, "ocs_fabric.bgp.password must be 1-80 characters of letters, digits and ._~+=@%^*- "
                          "(the value is not shown)"),
    ({"passwd": "x"}, "ocs_fabric.bgp.passwd is not a known field (known: bfd, graceful_restart, holdtime, "
                      "keepalive, password)"),
    ("on", "ocs_fabric.bgp must be a mapping {bfd, graceful_restart, holdtime, keepalive, password}"),
])
def test_bgp_knob_validation(data, bgp, expected):
    data["fabric"]["bgp"] = bgp
    assert expected in problems_of(data)


def test_daemons_file_is_fixed(data):
    lines = daemons_lines()
    assert {"bgpd=yes", "bfdd=yes", "staticd=yes", "ospfd=no"} <= set(lines)


def test_prefix_lists_have_no_seq_and_route_maps_end_in_deny(data):
    fab, h = hosts(data)
    for host in h.values():
        lines = config_lines(fab, host)
        assert not [ln for ln in lines if ln.startswith("ip prefix-list") and " seq " in ln]
        names = {ln.split()[1] for ln in lines if ln.startswith("route-map ")}
        for name in names:
            assert "route-map %s deny 1000" % name in lines


def test_every_import_policy_honours_graceful_shutdown_and_nothing_else_does(data):
    """RFC 8326: the first entry of each import route-map (fabric and border)
    gives a GRACEFUL_SHUTDOWN route local preference 0 and goes on (on-match
    next) to the entries that decide acceptance; export maps are untouched."""
    for mode in ("host", "gateway"):
        if mode == "gateway":
            gateway_mode(data)
        fab, h = hosts(data)
        for host in h.values():
            pol = policy(fab, host)
            lines = config_lines(fab, host)
            imports = {g.rmap_in for g in pol.groups if g.rmap_in} | {n.rmap_in for n in pol.neighbors if n.rmap_in}
            exports = {g.rmap_out for g in pol.groups}
            if not imports:
                assert not [ln for ln in lines if "OCS-GSHUT" in ln], host.name
                continue
            assert "bgp community-list standard OCS-GSHUT seq 5 permit graceful-shutdown" in lines
            for name in imports:
                i = lines.index("route-map %s permit 5" % name)
                # in FRR's running-config order (on-match before set), so a reload finds nothing to do
                assert lines[i + 1:i + 5] == [" match community OCS-GSHUT", " on-match next",
                                              " set local-preference 0", "exit"], (host.name, name)
                assert lines.index("route-map %s permit 10" % name) > i
            for name in exports - imports:
                assert "route-map %s permit 5" % name not in lines, (host.name, name)


# --- the reload module's pure parts -------------------------------------------

TEST_OUTPUT = """
Lines To Delete
===============
ip prefix-list OCS-HV-hv-r01-01 seq 10 permit 198.19.1.11/32

Lines To Add
============
ip prefix-list OCS-HV-hv-r01-01 permit 198.19.1.99/32
router bgp 65101
 neighbor 198.18.1.77 remote-as 65200
2026-01-01 10:00:00,000  INFO: Loading Config object from file x
"""


def test_reload_parses_frr_reload_test_output():
    delete, add = frr_reload.parse_test_output(TEST_OUTPUT)
    assert delete == ["ip prefix-list OCS-HV-hv-r01-01 seq 10 permit 198.19.1.11/32"]
    assert add == ["ip prefix-list OCS-HV-hv-r01-01 permit 198.19.1.99/32", "router bgp 65101",
                   " neighbor 198.18.1.77 remote-as 65200"]
    assert frr_reload.changed_policies(delete + add) == {"OCS-HV-hv-r01-01"}
    empty = "\nLines To Delete\n===============\n\nLines To Add\n============\n"
    assert frr_reload.parse_test_output(empty) == ([], [])


def test_soft_in_goes_to_the_peers_whose_import_uses_the_list(data):
    fab, h = hosts(data)
    conf = "\n".join(config_lines(fab, h["tor-r01"]))
    peers = frr_reload.soft_in_peers(conf, {"OCS-HV-hv-r01-02"})
    assert peers == [("198.18.1.12", False), ("198.18.1.140", False)]
    assert frr_reload.soft_in_peers(conf, {"OCS-FABRIC"}) == [("SPINE", True)]
    assert frr_reload.soft_in_peers(conf, {"OCS-RACK-PUBLIC"}) == []  # export only: FRR re-sends by itself
    assert frr_reload.clear_command("SPINE", True) == "clear bgp ipv4 unicast peer-group SPINE soft in"


def test_host_owned_lines_are_kept_from_running():
    running = "frr version 8.4.4\nno ipv6 forwarding\nhostname x\nno ip forwarding\n"
    assert frr_reload.host_owned_lines(running) == ["no ipv6 forwarding", "hostname x", "no ip forwarding"]


class _Scripted:
    """A stand-in AnsibleModule whose run_command answers from a script."""

    def __init__(self, answers):
        self.answers, self.calls = list(answers), []

    def run_command(self, argv, umask=None):
        self.calls.append(argv[-1] if argv[-2] == "-c" else argv[-2])
        if argv[-2] in ("--test", "--reload"):
            assert umask == 0o077  # frr-reload.py's files carry the password
        return self.answers.pop(0)


EMPTY = "\nLines To Delete\n===============\n\nLines To Add\n============\n"
DIFF = "\nLines To Delete\n===============\nno ip route 203.0.113.0/24 blackhole 250\n\nLines To Add\n============\n"
WATCH = "watchfrr global phase: Idle\n Min Restart Interval: 60\n  zebra                Up\n  bgpd                 %s\n"


def test_recover_waits_for_the_restarted_daemon_and_a_stable_difference(monkeypatch):
    monkeypatch.setattr(frr_reload.time, "sleep", lambda s: None)
    down, up = (0, WATCH % "Down", ""), (0, WATCH % "Up", "")
    mod = _Scripted([down, down, up, (0, DIFF, ""), up, (0, DIFF, ""), (0, "", ""), up, (0, EMPTY, "")])
    assert frr_reload.recover(mod, ["frr-reload.py"], "/tmp/x", ["vtysh"]) == (True, "converged")
    # no reload while bgpd was down, nor on the first sight of a difference; one reload; then none left
    assert mod.calls == ["show watchfrr"] * 3 + ["--test", "show watchfrr", "--test", "--reload",
                                                 "show watchfrr", "--test"]


def test_recover_without_watchfrr_reads_vtysh_complaints(monkeypatch):
    monkeypatch.setattr(frr_reload.time, "sleep", lambda s: None)
    gone = (0, "frr version 8.4.4\n", "Warning: connecting to bgpd...failed!\n")
    ok = (0, "frr version 8.4.4\n", "")
    mod = _Scripted([(1, "", "no watchfrr"), gone, (1, "", "no watchfrr"), ok, (0, EMPTY, "")])
    assert frr_reload.recover(mod, ["frr-reload.py"], "/tmp/x", ["vtysh"]) == (True, "converged")


def test_recover_gives_up_when_the_difference_stays(monkeypatch):
    monkeypatch.setattr(frr_reload.time, "sleep", lambda s: None)
    up = (0, WATCH % "Up", "")
    mod = _Scripted([up, (0, DIFF, ""), up, (0, DIFF, ""), (1, "", "")] * 2 + [up, (0, DIFF, ""), up, (0, DIFF, "")])
    converged, last = frr_reload.recover(mod, ["frr-reload.py"], "/tmp/x", ["vtysh"])
    assert not converged and "no ip route 203.0.113.0/24 blackhole 250" in last
    assert mod.calls.count("--reload") == 2


def test_stale_secrets_are_removed_without_the_secret():
    """Running password lines the new config does not hold as they are (removed or rotated) are
    removed from a file, in their router bgp context, without the old secret."""
    running = ("router bgp 65101\n neighbor TOR password 0ld-s3cret\n neighbor TOR timers 3 9\n"
               " neighbor HV password k33p\nexit\n!\nrouter bgp 65102 vrf x\n neighbor GW password g0ne\n")
    conf = "router bgp 65101\n neighbor TOR password n3w\n neighbor HV password k33p\n"
    text = frr_reload.stale_secrets(running, conf)
    assert text == ("router bgp 65101\n no neighbor TOR password\nexit\n"
                    "router bgp 65102 vrf x\n no neighbor GW password\nexit\n")
    assert "s3cret" not in text and "g0ne" not in text
    assert frr_reload.stale_secrets(running, running) == ""
    # new password lines of running neighbors first (members before their group loses its own)
    running = "router bgp 65101\n neighbor HV peer-group\n neighbor HV password fl33t\n neighbor 198.18.1.11 peer-group HV\n"
    conf = "router bgp 65101\n neighbor HV peer-group\n neighbor 198.18.1.11 peer-group HV\n" \
        " neighbor 198.18.1.11 password l1nk\n neighbor 198.18.1.12 password n3w-n3ighbor\n"
    assert frr_reload.new_secrets(running, conf) == "router bgp 65101\n neighbor 198.18.1.11 password l1nk\nexit\n"
    assert frr_reload.stale_secrets(running, conf) == "router bgp 65101\n no neighbor HV password\nexit\n"
    running = "router bgp 65101\n neighbor TOR password 0ld-s3cret\n neighbor HV password k33p\n" \
        "exit\n!\nrouter bgp 65102 vrf x\n neighbor GW password g0ne\n"
    conf = "router bgp 65101\n neighbor TOR password n3w\n neighbor HV password k33p\n"
    # rotated or removed
    assert frr_reload.stale_secrets(running, conf, absent=False) == "router bgp 65101\n no neighbor TOR password\nexit\n"
    assert frr_reload.stale_secrets(running, conf, absent=True) == "router bgp 65102 vrf x\n no neighbor GW password\nexit\n"


# --- compact prefix-lists (issue 19: a dense ToR's config loads in seconds) -----

def _entry(entry):
    """A permit entry as (first, last, low, high): a prefix p/len matches when it lies in
    first..last and low <= len <= high (FRR: no ge/le = exact length; ge g [le l]; le l)."""
    import ipaddress
    words = entry.split()
    net = ipaddress.ip_network(words[0])
    opts = dict(zip(words[1::2], (int(w) for w in words[2::2])))
    low = opts.get("ge", net.prefixlen)
    high = opts.get("le", 32 if "ge" in opts else net.prefixlen)
    return int(net.network_address), int(net.broadcast_address), low, high


def _prefix(text):
    import ipaddress
    p = ipaddress.ip_network(text)
    return int(p.network_address), int(p.broadcast_address), p.prefixlen


def _matches(entry, prefix):
    first, last, low, high = entry
    pf, pl, plen = prefix
    return first <= pf and pl <= last and low <= plen <= high


def _allowed(entries, candidates):
    compiled = [_entry(e) for e in entries]
    parsed = {c: _prefix(c) for c in candidates}
    return {c for c in candidates if any(_matches(e, parsed[c]) for e in compiled)}


def test_host_blocks_are_the_fewest_aligned_blocks():
    import random
    import netaddr
    from ansible_collections.ocs.l3.plugins.module_utils.addr import aton, host_blocks, ntoa
    rng = random.Random(5)
    for trial in range(200):
        base = aton("198.19.0.0") + rng.randrange(0, 4096) * 4
        ips = sorted({base + rng.randrange(0, rng.choice((8, 64, 1024))) for _ in range(rng.randrange(1, 300))})
        blocks = host_blocks(ips)
        covered = sorted(ip for first, plen in blocks for ip in range(first, first + (1 << (32 - plen))))
        assert covered == ips  # exactly these addresses, each once
        assert all(first % (1 << (32 - plen)) == 0 for first, plen in blocks)  # aligned
        merged = netaddr.cidr_merge([netaddr.IPAddress(ntoa(ip)) for ip in ips])
        assert len(blocks) == len(merged), trial  # as few as netaddr's merge
    assert host_blocks([]) == []
    assert host_blocks([0, 1, 2, 3]) == [(0, 30)]
    assert host_blocks([aton("198.19.1.1"), aton("198.19.1.2")]) == [(aton("198.19.1.1"), 32), (aton("198.19.1.2"), 32)]


@pytest.mark.parametrize("scattered", [False, True])
def test_compact_allows_exactly_the_same_prefixes(scattered):
    """Every entry kind is kept (exact, le, ge); the /32s become 'B ge 32' blocks: the set
    of allowed prefixes is identical over every /32 and every shorter prefix of the space."""
    import ipaddress
    import random
    from ansible_collections.ocs.l3.plugins.module_utils.frr import compact
    rng = random.Random(3)
    space = ipaddress.ip_network("198.19.4.0/23")
    hosts = [str(ip) for ip in space]
    chosen = rng.sample(hosts, 200) if scattered else hosts[16:400]
    entries = ["198.19.8.0/24", "198.19.9.0/24 le 32", "0.0.0.0/0"] + ["%s/32" % h for h in chosen]
    out = compact(entries)
    assert out[:3] == entries[:3]
    assert len(out) < len(entries) if not scattered else len(out) <= len(entries)
    candidates = ["%s/32" % h for h in hosts] + [str(n) for plen in range(20, 32)
                                                 for n in ipaddress.ip_network("198.19.0.0/20").subnets(new_prefix=plen)]
    candidates += ["198.19.8.0/24", "198.19.8.0/25", "198.19.9.7/32", "0.0.0.0/0", "198.19.9.0/24"]
    assert _allowed(out, candidates) == _allowed(entries, candidates)
    if not scattered:
        assert out[3:] == ["198.19.4.16/28 ge 32", "198.19.4.32/27 ge 32", "198.19.4.64/26 ge 32",
                           "198.19.4.128/25 ge 32", "198.19.5.0/25 ge 32", "198.19.5.128/28 ge 32"]


def test_dense_tor_lists_are_compact_and_exact(tmp_path):
    """A rack of 4 hypervisors x 300 instances: each hypervisor's import list on the ToR has
    a handful of entries, every instance /32 matches its own hypervisor's list and no other's."""
    import ipaddress
    from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input
    from ansible_collections.ocs.l3.tools import gen_fabric as gen
    gen.generate(str(tmp_path / "inv"), racks=1, hypervisors=4, instances=300, floating_share=0.1)
    fab = build(load_fabric_input(str(tmp_path / "inv")))
    tor = fab.by_role["tor"][0]
    lines = config_lines(fab, tor)
    lists = {}
    for ln in lines:
        if ln.startswith("ip prefix-list OCS-HV-"):
            name, dummy, entry = ln.split(" ", 4)[2:]
            lists.setdefault(name, []).append(entry)
    assert sorted(lists) == sorted("OCS-HV-%s" % hv.name for hv in tor.rack.hypervisors)
    for hv in tor.rack.hypervisors:  # a run of 300 /32s: at most 2 blocks per bit of length, + floating /32s
        assert len(lists["OCS-HV-%s" % hv.name]) <= 60, lists["OCS-HV-%s" % hv.name]
    compiled = {name: [_entry(e) for e in entries] for name, entries in lists.items()}
    for inst in fab.instances():
        prefix = "%s/32" % ipaddress.ip_address(inst.ip)
        p = _prefix(prefix)
        hits = {name for name, entries in compiled.items() if any(_matches(e, p) for e in entries)}
        assert hits == {"OCS-HV-%s" % inst.hypervisor.name}, (prefix, hits)
    total = sum(1 for ln in lines if ln.startswith("ip prefix-list "))
    exact = sum(len(owned(fab, hv)) for hv in tor.rack.hypervisors)
    print("ToR prefix-list lines: %d (the /32s alone would be %d)" % (total, exact))
    assert total < exact / 10


def test_watchfrr_state_sees_zebra_too():
    """`show watchfrr` lists zebra, the one daemon whose name does not end in d: a down zebra
    must be reported during recovery."""
    out = ("watchfrr global phase: Idle\n Restart Command: \"/usr/lib/frr/watchfrr.sh restart %s\"\n"
           "  zebra                Down\n  bgpd                 Up\n  staticd              Up\n")
    assert frr_reload.WATCHFRR_STATE.findall(out) == [("zebra", "Down"), ("bgpd", "Up"), ("staticd", "Up")]


def test_not_established_names_each_session_down_in_the_order_given():
    summary = {"peers": {"198.18.1.1": {"state": "Established"}, "eth1": {"state": "Active"},
                         "198.18.1.3": {"state": "Connect"}}}
    assert frr_reload.not_established(summary, ["198.18.1.1"]) == []
    # eth0 is a numbered uplink's interface: the summary lists that session by its peer address
    assert frr_reload.not_established(summary, ["198.18.1.3", "eth1", "198.18.1.1", "eth0"]) == ["198.18.1.3", "eth1"]


class _Vtysh:
    """A module whose vtysh answers each summary with the next of ``states`` (the last one repeated)."""
    check_mode = False

    def __init__(self, states):
        self.states, self.calls = list(states), 0

    def run_command(self, argv):
        import json
        state = self.states[min(self.calls, len(self.states) - 1)]
        self.calls += 1
        if state is None:
            return 1, "", "vtysh: no bgpd"
        return 0, json.dumps({"peers": {"198.18.1.1": {"state": state}}}), ""


def test_wait_established_polls_until_up_or_the_time_is_over():
    up = _Vtysh(["Active", "OpenSent", "Established"])
    assert frr_reload.wait_established(up, ["vtysh"], ["198.18.1.1"], 30, interval=0.01) == [] and up.calls == 3
    down = _Vtysh(["Active"])
    assert frr_reload.wait_established(down, ["vtysh"], ["198.18.1.1"], 0.05, interval=0.01) == ["198.18.1.1"]
    assert 3 <= down.calls <= 7
    assert frr_reload.wait_established(_Vtysh([None]), ["vtysh"], ["198.18.1.1"], 0.02, interval=0.01) == [
        "vtysh: vtysh: no bgpd"]
    idle = _Vtysh(["Active"])
    assert frr_reload.wait_established(idle, ["vtysh"], [], 30) == [] and idle.calls == 0  # nothing to wait for
