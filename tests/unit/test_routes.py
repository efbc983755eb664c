"""Route computation: hypervisor ports, ToR rack tables, static mode."""


import pytest

from fabric_data import gateway_mode

from ansible_collections.ocs.l3.plugins.module_utils.fabric import build, default_ifname
from ansible_collections.ocs.l3.plugins.module_utils.routes import host_lines, rack_table
from ansible_collections.ocs.l3.plugins.module_utils import route_table



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
