"""Route computation: hypervisor ports, ToR rack tables, static mode."""


import json
import os

import pytest

from fabric_data import dual_stack, gateway_mode, static6

from ansible_collections.ocs.l3.plugins.module_utils.fabric import build, default_ifname
from ansible_collections.ocs.l3.plugins.module_utils.routes import host_lines, rack_table
from ansible_collections.ocs.l3.plugins.module_utils import route_table, sysctl
from ansible_collections.ocs.l3.plugins.modules import ocs_route_table as route_table_module



def test_hypervisor_ports(data):
    fab = build(data)
    tap_a = default_ifname("vm-a", "tap")
    assert host_lines(fab, fab.hosts["hv-r01-01"]) == [
        "address replace 198.19.1.1/24 dev tap-b noprefixroute",
        "address replace 198.19.1.1/24 dev %s noprefixroute" % tap_a,
        "address replace 203.0.113.11/32 dev lo",
        "route replace 198.19.1.10/32 dev %s proto 211 scope link" % tap_a,
        "route replace 198.19.1.11/32 dev tap-b proto 211 scope link",
        "route replace 203.0.113.101/32 dev %s proto 211 scope link" % tap_a,
    ]


def test_second_subnet_uses_its_own_gateway(data):
    data["hostvars"]["hv-r02-01"]["ocs_instances"][0]["ip"] = "198.19.2.200"
    fab = build(data)
    assert host_lines(fab, fab.hosts["hv-r02-01"])[0].startswith("address replace 198.19.2.129/25 dev tap")


def test_floating_routes_only_in_host_nat_mode(data):
    gateway_mode(data)
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        data["hostvars"][name].pop("ocs_public_address")
    fab = build(data)
    assert not [ln for ln in host_lines(fab, fab.hosts["hv-r01-01"]) if "203.0.113" in ln]


def test_gateway_public_address(data):
    fab = build(data)
    assert host_lines(fab, fab.hosts["gw-01"]) == ["address replace 203.0.113.250/32 dev lo"]
    assert host_lines(fab, fab.hosts["spine1"]) == []


def test_tor_bgp_mode_has_only_blackholes(data):
    fab = build(data)
    assert host_lines(fab, fab.hosts["tor-r02"]) == [
        "route replace blackhole 198.19.2.0/25 proto 211",
        "route replace blackhole 198.19.2.128/25 proto 211",
    ]


def test_static_mode_rack_table_with_ecmp(data):
    data["fabric"]["routing_mode"] = "static"
    fab = build(data)
    tor = host_lines(fab, fab.hosts["tor-r01"])
    assert "route replace blackhole 198.19.1.0/24 proto 211" in tor
    assert "route replace 198.19.1.10/32 via 198.18.1.11 proto 211" in tor
    # dual-homed hypervisor: both of its links, ECMP
    assert "route replace 198.19.1.12/32 proto 211 nexthop via 198.18.1.12 nexthop via 198.18.1.140" in tor
    assert "route replace 203.0.113.102/32 proto 211 nexthop via 198.18.1.12 nexthop via 198.18.1.140" in tor
    assert "route replace 203.0.113.12/32 proto 211 nexthop via 198.18.1.12 nexthop via 198.18.1.140" in tor
    # hypervisors get a default route via their uplink peers
    hv2 = host_lines(fab, fab.hosts["hv-r01-02"])
    assert hv2[-1] == "route replace default proto 211 nexthop via 198.18.1.1 nexthop via 198.18.1.129"
    # no uplinks described: via the rack's ToR
    assert host_lines(fab, fab.hosts["hv-r02-01"])[-1] == "route replace default via 198.18.2.1 proto 211"


def test_rack_table(data):
    table = rack_table(build(data), build(data).racks["r01"])
    assert table["198.19.1.0/24"] == ["blackhole"]
    assert table["198.19.1.12/32"] == ["198.18.1.12", "198.18.1.140"]
    assert table["198.19.1.10/32"] == ["198.18.1.11"]


def test_lines_are_deterministic(data):
    a = [host_lines(build(data), h) for h in build(data).hosts.values()]
    b = [host_lines(build(data), h) for h in build(data).hosts.values()]
    assert a == b


# --- the host-side module's planning step -----------------------------------

DESIRED = [
    "address replace 198.19.1.1/24 dev tap-a noprefixroute",
    "route replace 198.19.1.10/32 dev tap-a proto 211 scope link",
    "route replace 198.19.1.12/32 proto 211 nexthop via 198.18.1.12 nexthop via 198.18.1.140",
    "route replace blackhole 198.19.1.0/24 proto 211",
    "route replace 198.19.1.20/32 dev tap-gone proto 211 scope link",
    "route replace 198.19.1.30/32 via 198.18.1.13 proto 211",
]


def _plan(ours, every, addrs=(), links=("tap-a", "eth0", "eth1")):
    return route_table.plan(DESIRED, ours, list(ours) + list(every), list(addrs), set(links), 211)


def test_kernel_json_reads_back_as_canonical_lines():
    ours = [
        {"dst": "198.19.1.10", "dev": "tap-a", "protocol": "211", "scope": "link", "flags": []},
        {"dst": "198.19.1.12", "protocol": "ocs", "flags": [],
         "nexthops": [{"gateway": "198.18.1.140", "dev": "eth1"}, {"gateway": "198.18.1.12", "dev": "eth0"}]},
        {"type": "blackhole", "dst": "198.19.1.0/24", "protocol": "211", "flags": []},
        {"dst": "198.19.1.30", "gateway": "198.18.1.13", "dev": "eth0", "protocol": "211", "flags": []},
    ]
    addrs = [{"ifname": "tap-a", "addr_info": [{"family": "inet", "local": "198.19.1.1", "prefixlen": 24,
                                               "noprefixroute": True}]}]
    commands, missing, conflicts, before, after = _plan(ours, [], addrs)
    assert commands == []  # a no-op: nothing to do
    assert missing == ["tap-gone"]
    assert before == after


def test_plan_adds_replaces_and_deletes_only_ours():
    ours = [
        {"dst": "198.19.1.10", "dev": "eth0", "protocol": "211", "scope": "link"},  # wrong device
        {"dst": "198.19.1.99", "dev": "tap-a", "protocol": "211", "scope": "link"},  # stale
    ]
    foreign = [{"dst": "198.19.1.30", "gateway": "198.18.1.1", "protocol": "static"},
               {"dst": "10.0.0.0/8", "gateway": "198.18.1.1", "protocol": "boot"}]
    commands, missing, conflicts, _, _ = _plan(ours, foreign)
    assert commands == [
        "address replace 198.19.1.1/24 dev tap-a noprefixroute",
        "route replace 198.19.1.10/32 dev tap-a proto 211 scope link",
        "route replace 198.19.1.12/32 proto 211 nexthop via 198.18.1.12 nexthop via 198.18.1.140",
        "route replace blackhole 198.19.1.0/24 proto 211",
        "route del 198.19.1.99/32 proto 211",
    ]
    assert conflicts == ["198.19.1.30/32 is held by a route of protocol static"]
    assert not any("10.0.0.0" in c for c in commands)


def test_plan_installs_beside_routes_at_another_metric_and_prunes_only_when_asked():
    """Make before break: a BGP route (zebra, metric 20) for a prefix we now
    want static stays beside ours (ours, metric 0, wins); without prune a stale
    route of ours stays until the prune step after FRR."""
    ours = [{"dst": "198.19.1.99", "dev": "tap-a", "protocol": "211", "scope": "link"}]
    bgp = [{"dst": "198.19.1.30", "gateway": "198.18.1.13", "protocol": "bgp", "metric": 20},
           {"dst": "default", "gateway": "198.18.1.2", "protocol": "bgp", "metric": 20}]
    commands, _, conflicts, _, after = route_table.plan(DESIRED, ours, ours + bgp, [], {"tap-a", "eth0", "eth1"},
                                                        211, prune=False)
    assert conflicts == []
    assert "route replace 198.19.1.30/32 via 198.18.1.13 proto 211" in commands
    assert not any(c.startswith("route del") for c in commands)
    assert "198.19.1.99/32" in after
    pruned = route_table.plan(DESIRED, ours, ours + bgp, [], {"tap-a", "eth0", "eth1"}, 211, prune=True)[0]
    assert pruned[-1] == "route del 198.19.1.99/32 proto 211"


# --- the hosts' reader of the route file (module, agent, restore) -----------

def test_every_rendered_line_is_read_back(data):
    data["fabric"]["routing_mode"] = "static"
    fab = build(data)
    for name in ("hv-r01-01", "hv-r01-02", "tor-r01", "gw-01"):
        lines = host_lines(fab, fab.hosts[name])
        assert route_table.parse_lines("# header\n\n" + "\n".join(lines) + "\n", "f", 211) == lines


@pytest.mark.parametrize("line, problem", [
    ("route add 198.19.1.10/32 dev tap-a", "not an address or route line"),
    ("route replace 198.19.1.10/32 dev tap-a proto 99 scope link", "route protocol 99 is not 211"),
    ("address replace 198.19.1.300/24 dev tap-a noprefixroute", "bad prefix 198.19.1.300/24"),
    ("route replace 198.19.1.10/33 via 198.18.1.1 proto 211", "bad prefix 198.19.1.10/33"),
    ("route replace default via 198.18.1.01 proto 211", "bad next hop 198.18.1.01"),
    ("route replace 198.19.1.10/32 proto 211 nexthop via 198.18.1.1", "not an address or route line"),
    ("route replace 198.19.1.10/32 dev tap-a proto 211 scope link; reboot", "not an address or route line"),
    ("route replace blackhole 198.19.1.0/24 proto 21", "route protocol 21 is not 211"),
])
def test_a_corrupt_line_is_named_with_file_and_number(line, problem):
    text = "# managed\nroute replace blackhole 198.19.1.0/24 proto 211\n%s\n" % line
    with pytest.raises(ValueError) as err:
        route_table.parse_lines(text, "/x/routes.batch", 211)
    assert str(err.value).startswith("/x/routes.batch:3: %s" % problem), str(err.value)


def test_by_device_groups_the_lines_of_each_interface():
    lines = ["address replace 198.19.1.1/24 dev tap-a noprefixroute", "address replace 203.0.113.11/32 dev lo",
             "route replace 198.19.1.10/32 dev tap-a proto 211 scope link",
             "route replace blackhole 198.19.1.0/24 proto 211"]
    assert route_table.by_device(lines) == {"tap-a": [lines[0], lines[2]], "lo": [lines[1]]}


# --- IPv6 (issue 20): a dual-stack hypervisor's instance ports, a ToR's blackholes ----------

TAP_A = default_ifname("vm-a", "tap")
V6_HV = [  # hv-r01-01 of the dual-stack example: vm-a's ip6 derived from 198.19.1.10, vm-b its own
    "address replace 2001:db8:0:1::1/64 dev tap-b nodad noprefixroute",
    "address replace 2001:db8:0:1::1/64 dev %s nodad noprefixroute" % TAP_A,
    "address replace fe80::1/64 dev tap-b nodad",
    "address replace fe80::1/64 dev %s nodad" % TAP_A,
    "route replace 2001:db8:0:1::b/128 dev tap-b proto 211 metric 1024",
    "route replace 2001:db8:0:1::c613:10a/128 dev %s proto 211 metric 1024" % TAP_A,
]


def _v4(lines):
    return [ln for ln in lines if ":" not in ln.split()[3 if ln.split()[2] == "blackhole" else 2]]


def test_dual_stack_hypervisor_ports_follow_the_ipv4_lines_unchanged(data):
    v4 = {name: host_lines(build(data), build(data).hosts[name]) for name in ("hv-r01-01", "tor-r01", "tor-r02")}
    fab = build(dual_stack(data))
    lines = host_lines(fab, fab.hosts["hv-r01-01"])
    assert lines == v4["hv-r01-01"][:3] + V6_HV[:4] + v4["hv-r01-01"][3:] + V6_HV[4:]
    assert _v4(lines) == v4["hv-r01-01"]  # the IPv4 lines: same text, same order
    assert route_table.parse_lines("\n".join(lines), "f", 211) == lines  # every one reads as valid
    assert host_lines(fab, fab.hosts["tor-r01"]) == [  # its ocs_address6 on its downlinks
        "address replace 2001:db8:ffff::11/128 dev eth1 nodad", "address replace 2001:db8:ffff::11/128 dev eth2 nodad",
    ] + v4["tor-r01"] + ["route replace blackhole 2001:db8:0:1::/64 proto 211 metric 1024"]
    assert host_lines(fab, fab.hosts["tor-r02"])[-1] == \
        "route replace blackhole 2001:db8:0:2::/64 proto 211 metric 1024"


def test_an_instance_without_ip6_has_no_ipv6_port(data):
    dual_stack(data)
    data["racks"]["r01"]["instance_ip6_from_ip4"] = False  # vm-a: no ip6 now; vm-b keeps its own
    fab = build(data)
    lines = host_lines(fab, fab.hosts["hv-r01-01"])
    assert [ln for ln in lines if TAP_A in ln and ":" in ln] == []
    assert [ln for ln in lines if "tap-b" in ln and ":" in ln] == [V6_HV[0], V6_HV[2], V6_HV[4]]
    assert route_table.ipv6_taps(lines) == ["tap-b"] and route_table.owned_taps(lines) == ["tap-b", TAP_A]


def test_the_ipv6_gateway_is_the_subnets_second_address_with_its_prefix_length(data):
    dual_stack(data)
    data["racks"]["r02"]["instance_subnets6"] = ["2001:db8:0:2::/120"]
    data["hostvars"]["hv-r02-01"]["ocs_instances"][0]["ip6"] = "2001:db8:0:2::d"
    fab = build(data)
    assert "address replace 2001:db8:0:2::1/120 dev %s nodad noprefixroute" % default_ifname("vm-d", "tap") \
        in host_lines(fab, fab.hosts["hv-r02-01"])


def test_static_mode_routes_ipv6_instances_via_their_hypervisors_ocs_address6_on_link(data):
    fab = build(static6(dual_stack(data)))
    tor = host_lines(fab, fab.hosts["tor-r01"])
    assert [ln for ln in tor if ":" in ln] == [
        "address replace 2001:db8:ffff::11/128 dev eth1 nodad",
        "address replace 2001:db8:ffff::11/128 dev eth2 nodad",
        "route replace blackhole 2001:db8:0:1::/64 proto 211 metric 1024",
        "route replace 2001:db8:0:1::b/128 via 2001:db8:ffff::21 dev eth1 proto 211 metric 1024 onlink",
        "route replace 2001:db8:0:1::c613:10a/128 via 2001:db8:ffff::21 dev eth1 proto 211 metric 1024 onlink",
        # vm-c: hv-r01-02 has an uplink on each of the ToR's downlinks
        "route replace 2001:db8:0:1::c613:10c/128 proto 211 metric 1024 nexthop via 2001:db8:ffff::22 dev eth1 "
        "onlink nexthop via 2001:db8:ffff::22 dev eth2 onlink",
    ]
    assert route_table.parse_lines("\n".join(tor), "f", 211) == tor
    hv = host_lines(fab, fab.hosts["hv-r02-01"])
    assert [ln for ln in hv if "ffff" in ln] == [
        "address replace 2001:db8:ffff::31/128 dev eth0 nodad",
        "route replace default via 2001:db8:ffff::13 dev eth0 proto 211 metric 1024 onlink"]


def test_an_ipv4_only_fabric_renders_no_ipv6_line(data):
    fab = build(data)
    for host in fab.hosts.values():
        assert not route_table.has_inet6(host_lines(fab, host))


@pytest.mark.parametrize("line", V6_HV + [
    "route replace blackhole 2001:db8:0:1::/64 proto 211 metric 1024",
    "route replace 2001:db8::b/128 via 2001:db8:ffff::21 proto 211 metric 1024",
    "route replace ::c613:10a/128 dev tap-a proto 211 metric 1024",
])
def test_ipv6_lines_are_valid(line):
    assert route_table.line_problem(line, 211) is None


@pytest.mark.parametrize("line, problem", [
    ("address replace 2001:DB8::1/64 dev tap-a nodad noprefixroute", "not an address or route line"),
    ("address replace 2001:db8:0:0::1/64 dev tap-a nodad noprefixroute", "bad prefix 2001:db8:0:0::1/64"),
    ("address replace fe80::1/64 dev tap-a", "not an address or route line"),  # without nodad
    ("address replace fe80::1/129 dev tap-a nodad", "bad prefix fe80::1/129"),
    ("address replace fe80::1/064 dev tap-a nodad", "bad prefix fe80::1/064"),
    ("address replace fe80:::1/64 dev tap-a nodad", "bad prefix fe80:::1/64"),
    ("route replace 2001:db8::b/128 dev tap-a proto 211", "not an address or route line"),  # no metric
    ("route replace 2001:db8::b/128 dev tap-a proto 211 metric 20", "not an address or route line"),
    ("route replace 2001:db8::b/128 dev tap-a proto 211 scope link", "not an address or route line"),
    ("route replace 2001:db8::b/128 dev tap-a proto 99 metric 1024", "route protocol 99 is not 211"),
    ("route replace 2001:db8::b/128 via 2001:db8::0:1 proto 211 metric 1024", "bad next hop 2001:db8::0:1"),
    ("route replace default via fe80::1 proto 211 metric 1024", "bad next hop fe80::1 (link-local"),
    ("route replace default via 2001:db8::1 proto 211", "not an address or route line"),  # no metric
    ("route replace blackhole 2001:db8::/64 proto 211 metric 1024 dev lo", "not an address or route line"),
    ("route replace default via 2001:db8::1 dev eth0 proto 211 metric 1024", "not an address or route line"),
    ("route replace default via 2001:db8::01 dev eth0 proto 211 metric 1024 onlink", "bad next hop 2001:db8::01"),
    ("route replace default proto 211 metric 1024 nexthop via 2001:db8::1 dev eth0 onlink nexthop via "
     "2001:db8::0:1 dev eth1 onlink", "bad next hop 2001:db8::0:1"),
    ("address replace 198.19.1.1/24 dev tap-a nodad noprefixroute", "not an address or route line"),
])
def test_a_bad_ipv6_line_is_named(line, problem):
    with pytest.raises(ValueError) as err:
        route_table.parse_lines("%s\n" % line, "/x/routes.batch", 211)
    assert str(err.value).startswith("/x/routes.batch:1: %s" % problem), str(err.value)


@pytest.mark.parametrize("entry, line", [
    ({"dst": "2001:db8:0:1::b", "dev": "tap-b", "metric": 1024, "flags": [], "pref": "medium", "family": "inet6"},
     "route replace 2001:db8:0:1::b/128 dev tap-b proto 211 metric 1024"),
    ({"type": "blackhole", "dst": "2001:db8:0:2::/64", "dev": "lo", "metric": 1024, "family": "inet6"},
     "route replace blackhole 2001:db8:0:2::/64 proto 211 metric 1024"),
    ({"dst": "::198.19.1.10", "dev": "tap-a", "metric": 1024, "family": "inet6"},  # iproute2's spelling
     "route replace ::c613:10a/128 dev tap-a proto 211 metric 1024"),
    ({"dst": "2001:db8::b", "gateway": "2001:db8:ffff::21", "dev": "eth0", "metric": 1024},  # no family mark
     "route replace 2001:db8::b/128 via 2001:db8:ffff::21 proto 211 metric 1024"),
    ({"dst": "2001:db8::b", "metric": 1024, "family": "inet6",
      "nexthops": [{"gateway": "fe80::2", "dev": "eth1"}, {"gateway": "fe80::1", "dev": "eth0"}]},
     "route replace 2001:db8::b/128 proto 211 metric 1024 nexthop via fe80::1 nexthop via fe80::2"),
    ({"dst": "2001:db8::b", "dev": "tap-b", "metric": 5, "family": "inet6"},
     "route replace 2001:db8::b/128 dev tap-b proto 211 metric 5"),
    # static mode's on-link next hops, as `ip -j -6 route` prints them (kernel 6.x)
    ({"dst": "default", "gateway": "2001:db8:ffff::1", "dev": "eth0", "metric": 1024, "flags": ["onlink"],
      "pref": "medium", "family": "inet6"},
     "route replace default via 2001:db8:ffff::1 dev eth0 proto 211 metric 1024 onlink"),
    ({"dst": "2001:db8:0:1::5", "metric": 1024, "flags": [], "pref": "medium", "family": "inet6", "nexthops": [
        {"gateway": "2001:db8:ffff::2", "dev": "eth1", "weight": 1, "flags": ["onlink"]},
        {"gateway": "2001:db8:ffff::1", "dev": "eth1", "weight": 1, "flags": ["onlink"]},
        {"gateway": "2001:db8:ffff::1", "dev": "eth0", "weight": 1, "flags": ["onlink"]}]},
     "route replace 2001:db8:0:1::5/128 proto 211 metric 1024 nexthop via 2001:db8:ffff::1 dev eth0 onlink "
     "nexthop via 2001:db8:ffff::1 dev eth1 onlink nexthop via 2001:db8:ffff::2 dev eth1 onlink"),
])
def test_kernel_ipv6_routes_read_back_canonically(entry, line):
    assert route_table.canonical_route(entry, 211) == line


def test_kernel_ipv6_addresses_read_back_canonically_and_which_are_ours():
    addrs = [{"ifname": "tap-a", "addr_info": [
        {"family": "inet6", "local": "2001:db8:0:1::1", "prefixlen": 64, "nodad": True, "noprefixroute": True},
        {"family": "inet6", "local": "fe80::1", "prefixlen": 64, "nodad": True},
        {"family": "inet6", "local": "fe80::74e7:78ff:feeb:c148", "prefixlen": 64, "tentative": True},
        {"family": "inet", "local": "198.19.1.1", "prefixlen": 24, "noprefixroute": True}]}]
    assert route_table.kernel_addresses(addrs) == {"tap-a": {
        "2001:db8:0:1::1/64": "address replace 2001:db8:0:1::1/64 dev tap-a nodad noprefixroute",
        "fe80::1/64": "address replace fe80::1/64 dev tap-a nodad",
        "fe80::74e7:78ff:feeb:c148/64": "address replace fe80::74e7:78ff:feeb:c148/64 dev tap-a",
        "198.19.1.1/24": "address replace 198.19.1.1/24 dev tap-a noprefixroute"}}
    taps, owned = {"tap-a"}, [("203.0.113.0/24", "lo")]
    assert route_table.is_owned("tap-a", "2001:db8:0:7::1/64", taps, owned)  # an old IPv6 gateway
    assert route_table.is_owned("tap-a", "fe80::1/64", taps, owned)  # the router's link-local
    assert not route_table.is_owned("tap-a", "fe80::74e7:78ff:feeb:c148/64", taps, owned)  # the kernel's
    assert not route_table.is_owned("lo", "2001:db8::1/128", taps, owned)
    assert not route_table.is_owned("eth0", "2001:db8::1/64", taps, owned)


def _plan6(desired, ours=(), every=(), addrs=(), links=("tap-a", "tap-b", "eth0"), prune=True):
    ours = [dict(e, family="inet6") for e in ours]
    return route_table.plan(desired, ours, ours + [dict(e, family="inet6") for e in every], list(addrs),
                            set(links), 211, prune)


def _in_kernel6(line):
    """The ``ip -6 -j route show`` entry of an IPv6 route line as the kernel prints it."""
    p = line.split()
    if p[2] == "blackhole":
        return {"type": "blackhole", "dst": p[3], "dev": "lo", "metric": 1024}
    return {"dst": p[2].replace("/128", ""), "dev": p[4], "metric": 1024}


def _addr_json6(lines):
    out = {}
    for line in lines:
        p = line.split()
        ip, plen = p[2].split("/")
        out.setdefault(p[4], []).append(dict(family="inet6", local=ip, prefixlen=int(plen), nodad="nodad" in p,
                                             noprefixroute="noprefixroute" in p))
    return [{"ifname": dev, "addr_info": lst} for dev, lst in out.items()]


def test_plan_ipv6_identical_is_a_no_op():
    routes = [_in_kernel6(ln) for ln in V6_HV[4:]]
    addrs = _addr_json6(V6_HV[:4])
    addrs[0]["addr_info"].append(dict(family="inet6", local="fe80::ff:fe00:1", prefixlen=64))  # the kernel's
    commands, missing, conflicts, before, after = _plan6(V6_HV, routes, (), addrs, links=("tap-b", TAP_A))
    assert (commands, missing, conflicts) == ([], [], [])
    assert before == after and "fe80::ff:fe00:1" not in before


def test_plan_ipv6_adds_what_is_missing_and_prunes_what_is_ours_only():
    ours = [{"dst": "2001:db8:0:1::99", "dev": "tap-a", "metric": 1024},  # stale
            {"dst": "2001:db8:0:1::a", "dev": "tap-a", "metric": 5},  # ours at a metric we never use
            {"dst": "default", "gateway": "fe80::9", "dev": "eth0", "metric": 1024}]  # a stale IPv6 default
    foreign = [{"dst": "2001:db8:0:1::c", "dev": "eth0", "protocol": "static", "metric": 1024},
               {"dst": "2001:db8:0:1::d", "gateway": "fe80::2", "protocol": "bgp", "metric": 20}]
    addrs = _addr_json6(["address replace 2001:db8:0:7::1/64 dev tap-a nodad noprefixroute",
                         "address replace fe80::1/64 dev tap-a nodad", "address replace fe80::5/64 dev tap-a",
                         "address replace 2001:db8:ffff::1/64 dev eth0"])
    desired = ["address replace 2001:db8:0:1::1/64 dev tap-a nodad noprefixroute",
               "address replace fe80::1/64 dev tap-a nodad",
               "route replace 2001:db8:0:1::a/128 dev tap-a proto 211 metric 1024",
               "route replace 2001:db8:0:1::c/128 dev tap-a proto 211 metric 1024",
               "route replace 2001:db8:0:1::d/128 dev tap-a proto 211 metric 1024",
               "route replace 2001:db8:0:1::e/128 dev tap-gone proto 211 metric 1024"]
    commands, missing, conflicts, dummy, after = _plan6(desired, ours, foreign, addrs)
    assert commands == [
        "address del 2001:db8:0:7::1/64 dev tap-a",  # an old gateway: ours; fe80::5 (not ours) stays
        "address replace 2001:db8:0:1::1/64 dev tap-a nodad noprefixroute",
        "route replace 2001:db8:0:1::a/128 dev tap-a proto 211 metric 1024",
        "route replace 2001:db8:0:1::d/128 dev tap-a proto 211 metric 1024",  # beside BGP's metric 20
        "route del 2001:db8:0:1::99/128 proto 211",
        "route del 2001:db8:0:1::a/128 metric 5 proto 211",
        "route del ::/0 proto 211",  # never "default": that is IPv4's
    ]
    assert missing == ["tap-gone"]
    assert conflicts == ["2001:db8:0:1::c/128 is held by a route of protocol static"]
    assert "2001:db8:0:1::99" not in after and "2001:db8:0:1::a/128 dev tap-a proto 211 metric 1024" in after
    no_prune = _plan6(desired, ours, foreign, addrs, prune=False)[0]
    assert not [c for c in no_prune if " del " in " %s " % c]


def test_plan_ipv4_is_unchanged_beside_ipv6_and_an_ipv6_default_never_meets_the_ipv4_one():
    v4 = ["route replace default via 198.18.1.1 proto 211", "address replace 198.19.1.1/24 dev tap-a noprefixroute"]
    ours4 = [{"dst": "default", "gateway": "198.18.1.1", "protocol": "211"}]
    ours6 = [{"dst": "default", "gateway": "fe80::9", "dev": "eth0", "metric": 1024, "family": "inet6"}]
    addrs4 = [{"ifname": "tap-a", "addr_info": [{"family": "inet", "local": "198.19.1.1", "prefixlen": 24,
                                                 "noprefixroute": True}]}]
    alone = route_table.plan(v4, ours4, ours4, addrs4, {"tap-a"}, 211)
    assert alone[0] == []
    both = route_table.plan(v4, ours4 + ours6, ours4 + ours6, addrs4, {"tap-a"}, 211)
    assert both[0] == ["route del ::/0 proto 211"]


class _Sysctl:
    def __init__(self, values, read_only=False):
        self.values, self.read_only, self.writes = dict(values), read_only, []

    def read(self, key):
        if key not in self.values:
            raise OSError(2, "No such file or directory")
        return self.values[key]

    def write(self, key, value):
        if self.read_only:
            raise OSError(30, "Read-only file system")
        self.values[key] = value
        self.writes.append(key)


KEYS6 = ["net/ipv6/conf/tap-a/%s" % k for k in ("accept_ra", "autoconf", "disable_ipv6")]


def test_tap_ipv6_turns_router_advertisements_off_then_ipv6_on():
    sysctl = _Sysctl(dict.fromkeys(KEYS6, "1"))
    assert route_table.tap_ipv6(sysctl, "tap-a", check=True) == ([(k, "1") for k in KEYS6], None)
    assert sysctl.writes == []
    assert route_table.tap_ipv6(sysctl, "tap-a") == ([(k, "1") for k in KEYS6], None)
    assert sysctl.writes == KEYS6 and set(sysctl.values.values()) == {"0"}
    assert route_table.tap_ipv6(sysctl, "tap-a") == ([], None)
    ro = _Sysctl({KEYS6[0]: "0", KEYS6[1]: "1", KEYS6[2]: "0"}, read_only=True)
    assert route_table.tap_ipv6(ro, "tap-a") == (
        [], "net.ipv6.conf.tap-a.autoconf is not 0 and cannot be set (Read-only file system)")
    assert route_table.tap_ipv6(_Sysctl({}), "tap-a")[1].startswith("net.ipv6.conf.tap-a.accept_ra is not 0")


class _Kernel6:
    """ip -j reads of both families and ip -batch: enough for reconcile() (IPv6 routes with their metric)."""

    def __init__(self):
        self.routes, self.addrs, self.calls = {}, {}, []

    def __call__(self, argv, data=None):
        self.calls.append((list(argv), data))
        if argv[:3] == ["ip", "-j", "link"]:
            return 0, json.dumps([{"ifname": n} for n in ("lo", "tap-a")]), ""
        if argv[:2] == ["ip", "-j"]:
            six = argv[2] == "-6"
            if argv[3] == "route":
                return 0, json.dumps([e for e in self.routes.values() if (":" in e["dst"]) == six]), ""
            return 0, json.dumps([{"ifname": d, "addr_info": [a for a in lst if (a["family"] == "inet6") == six]}
                                  for d, lst in self.addrs.items()]), ""
        assert argv == route_table.BATCH_ARGV
        for line in data.splitlines():
            p = line.split()
            if p[0] == "route":
                self.routes[p[2]] = dict(dst=p[2].replace("/128", ""), dev=p[4], metric=1024)
            else:
                ip, plen = p[2].split("/")
                self.addrs.setdefault(p[4], []).append(dict(family="inet6", local=ip, prefixlen=int(plen),
                                                            nodad="nodad" in p, noprefixroute="noprefixroute" in p))
        return 0, "", ""


def test_reconcile_sets_the_ipv6_settings_before_the_batch_and_converges_in_one_run():
    lines = [ln.replace(TAP_A, "tap-a") for ln in V6_HV if "tap-b" not in ln]
    kernel, sysctl = _Kernel6(), _Sysctl(dict.fromkeys(KEYS6 + ["net/ipv4/conf/tap-a/proxy_arp"], "1"))
    desired = route_table.Desired(lines, [])
    dry = route_table.reconcile(kernel, desired, 211, check=True, sysctl=sysctl)
    assert dry["changed"] and dry["commands"] == lines and sysctl.writes == [] and kernel.routes == {}
    assert "net.ipv6.conf.tap-a.accept_ra = 1\n" in dry["before"]
    assert "net.ipv6.conf.tap-a.accept_ra = 0\n" in dry["after"]
    first = route_table.reconcile(kernel, desired, 211, sysctl=sysctl)
    assert first["ipv6_sysctls"] == ["net.ipv6.conf.tap-a.accept_ra=0", "net.ipv6.conf.tap-a.autoconf=0",
                                     "net.ipv6.conf.tap-a.disable_ipv6=0"]
    assert first["changed"] and first["commands"] == lines and first["error"] is None
    second = route_table.reconcile(kernel, desired, 211, sysctl=sysctl)
    assert not second["changed"] and second["commands"] == [] and second["before"] == second["after"]


def test_kernel_state_reads_ipv6_only_when_asked_and_a_kernel_without_it_is_empty():
    calls = []

    def run(argv, data=None):
        calls.append(argv)
        if "-6" in argv:
            return 1, "", "Error: Address family not supported by protocol."
        return 0, "[]", ""
    assert route_table.kernel_state(run, 211, links=False, inet6=False) == ([], [], [], None)
    assert not [c for c in calls if "-6" in c]
    assert route_table.kernel_state(run, 211, links=False) == ([], [], [], None)
    assert len([c for c in calls if "-6" in c]) == 3

    def broken(argv, data=None):
        return (1, "", "Cannot open netlink socket") if "-6" in argv else (0, "[]", "")
    with pytest.raises(route_table.KernelError):
        route_table.kernel_state(broken, 211, links=False)


def test_route_table_module_checks_the_routing_sysctls_before_anything(tmp_path):
    """ocs_route_table's sysctls: each wrong one named with what it must be and what it is; nothing
    read or applied then (the route file here does not even exist). Real /proc/sys, run as Ansible does."""
    import os
    import subprocess
    import sys

    assert sysctl.sysctl_problems({"a.b": "1", "c": 0, "d": "1"}, {"a.b": "1", "c": "1"}.get) == [
        ("c", "0", "1"), ("d", "1", "(none)")]
    args = {"ANSIBLE_MODULE_ARGS": {"src": str(tmp_path / "absent.batch"), "sysctl_hint": "set them",
                                    "sysctls": {"kernel.ostype": "Plan9", "kernel.ocs_absent": "1"}}}
    res = subprocess.run([sys.executable, route_table_module.__file__], input=json.dumps(args), capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), timeout=60)
    out = json.loads(res.stdout)
    assert out["failed"] and out["msg"] == ("kernel.ocs_absent, kernel.ostype must be 1, Plan9, found (none), Linux "
                                            "(set them)")


def test_sysctl_settle_sets_what_differs_keeps_the_file_and_refuses_what_it_cannot_set(tmp_path):
    live = {"net.ipv4.ip_forward": "0", "net.ipv4.conf.default.proxy_arp": "1"}
    conf = tmp_path / "d" / "60-ocs-l3.conf"
    wanted = {"net.ipv4.ip_forward": 1, "net.ipv4.conf.default.proxy_arp": "1"}

    def write(key, value):
        live[key] = value

    # check mode: what it would do, nothing done
    assert sysctl.settle(wanted, str(conf), "routing", check=True, read=live.get, write=write) == [
        "net.ipv4.ip_forward=1", str(conf)]
    assert live["net.ipv4.ip_forward"] == "0" and not conf.exists()
    assert sysctl.settle(wanted, str(conf), "routing", read=live.get, write=write) == [
        "net.ipv4.ip_forward=1", str(conf)]
    assert live["net.ipv4.ip_forward"] == "1"
    assert conf.read_text() == ("# Managed by ocs-l3 (routing): the kernel settings it needs, set again at each boot.\n"
                                "net.ipv4.conf.default.proxy_arp = 1\nnet.ipv4.ip_forward = 1\n")
    assert oct(conf.stat().st_mode & 0o777) == "0o644"
    assert sysctl.settle(wanted, str(conf), "routing", read=live.get, write=write) == []  # idempotent
    # a file another tool (an older version of the role) wrote is rewritten whole
    conf.write_text("net.ipv4.ip_forward=1\n")
    assert sysctl.settle(wanted, str(conf), "routing", read=live.get, write=write) == [str(conf)]
    # nothing wanted: nothing touched
    assert sysctl.settle({}, str(tmp_path / "none.conf"), "routing", read=live.get, write=write) == []
    assert not (tmp_path / "none.conf").exists()

    def read_only(key, value):
        raise PermissionError(13, "Permission denied")

    with pytest.raises(ValueError, match="cannot set net.ipv4.ip_forward to 1: Permission denied"):
        sysctl.settle(dict(wanted), str(tmp_path / "x.conf"), "routing",
                      read={"net.ipv4.ip_forward": "0", "net.ipv4.conf.default.proxy_arp": "1"}.get, write=read_only)
    assert not (tmp_path / "x.conf").exists()
    assert sorted(os.listdir(conf.parent)) == ["60-ocs-l3.conf"]  # no temporary file left
