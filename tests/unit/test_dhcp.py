"""DHCP computation: host file, dnsmasq directives, and the lease release plan."""


import copy

from fabric_data import BASE, dual_stack
from ansible_collections.ocs.l3.plugins.module_utils.dhcp import CONFIG_PATH, HOSTS_PATH, UNIT_PATH, artifacts, config_lines, host_lines
from ansible_collections.ocs.l3.plugins.module_utils.addr import aton6, ntoa6
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.modules import ocs_dhcp_release as release



def test_host_file_one_line_per_local_instance_sorted_by_ip(data):
    data["hostvars"]["hv-r01-01"]["ocs_instances"].reverse()
    fab = build(data)
    assert host_lines(fab, fab.hosts["hv-r01-01"]) == [
        "02:00:00:00:01:0a,198.19.1.10,vm-a,43200",
        "02:00:00:00:01:0b,198.19.1.11,vm-b,43200",
    ]
    assert host_lines(fab, fab.hosts["hv-r01-02"]) == ["02:00:00:00:01:0c,198.19.1.12,vm-c,43200"]


def test_mac_is_printed_lower_case(data):
    data["hostvars"]["hv-r01-02"]["ocs_instances"][0]["mac"] = "02:00:00:00:01:AC"
    fab = build(data)
    assert host_lines(fab, fab.hosts["hv-r01-02"]) == ["02:00:00:00:01:ac,198.19.1.12,vm-c,43200"]


def test_lease_time_from_the_fabric(data):
    data["fabric"]["dhcp_lease_time"] = "2h"
    fab = build(data)
    assert host_lines(fab, fab.hosts["hv-r02-01"]) == ["02:00:00:00:02:0d,198.19.2.13,vm-d,7200"]
    assert "dhcp-range=set:ocs0,198.19.2.0,static,255.255.255.128,7200" in config_lines(fab, fab.hosts["hv-r02-01"])
    data["fabric"]["dhcp_lease_time"] = 600
    assert build(data).dhcp_lease_time == 600


def test_hypervisor_without_instances_gets_an_empty_host_file(data):
    data["hostvars"]["hv-r02-01"]["ocs_instances"] = []
    fab = build(data)
    assert host_lines(fab, fab.hosts["hv-r02-01"]) == []


def test_config_has_a_tagged_range_and_router_per_rack_subnet(data):
    data["racks"]["r02"]["instance_gateway"] = "198.19.2.126"
    fab = build(data)
    assert config_lines(fab, fab.hosts["hv-r02-01"]) == [
        "port=0",
        "no-resolv",
        "no-hosts",
        "interface=tap*",
        "except-interface=lo",
        "bind-dynamic",
        "dhcp-authoritative",
        "dhcp-ignore=tag:!known",
        "dhcp-ignore-clid",
        "pid-file=",
        "dhcp-leasefile=/var/lib/ocs-l3/dnsmasq.leases",
        "dhcp-hostsfile=/etc/ocs-l3/dhcp-hosts",
        "dhcp-range=set:ocs0,198.19.2.0,static,255.255.255.128,43200",
        "dhcp-option=tag:ocs0,option:router,198.19.2.126",
        "dhcp-range=set:ocs1,198.19.2.128,static,255.255.255.128,43200",
        "dhcp-option=tag:ocs1,option:router,198.19.2.129",
        "dhcp-option=option:dns-server,198.18.0.53",
        "dhcp-option=option:domain-name,cloud.ocs.example",
        "dhcp-option=option:mtu,1450",
    ]


def test_config_does_not_depend_on_instances(data):
    """Adding or removing an instance changes only the host file: a reload, never a restart."""
    before = build(data)
    data["hostvars"]["hv-r01-01"]["ocs_instances"].pop()
    data["hostvars"]["hv-r01-01"]["ocs_instances"].append(
        {"name": "vm-z", "mac": "02:00:00:00:01:99", "ip": "198.19.1.99"})
    after = build(data)
    assert config_lines(before, before.hosts["hv-r01-01"]) == config_lines(after, after.hosts["hv-r01-01"])
    assert host_lines(before, before.hosts["hv-r01-01"]) != host_lines(after, after.hosts["hv-r01-01"])


def test_fabric_settings_reach_the_config(data):
    data["fabric"].update(dns_servers=["198.18.0.53", "198.18.0.54"], instance_ifname_prefix="vif", mtu=9000)
    data["fabric"].pop("domain")
    data["hostvars"]["hv-r01-01"]["ocs_instances"][1]["interface"] = "vif-b"
    fab = build(data)
    lines = config_lines(fab, fab.hosts["hv-r01-01"])
    assert "interface=vif*" in lines
    assert "dhcp-option=option:dns-server,198.18.0.53,198.18.0.54" in lines
    assert "dhcp-option=option:mtu,9000" in lines
    assert not [ln for ln in lines if "domain-name" in ln]
    data["fabric"]["dns_servers"] = []
    fab = build(data)
    assert not [ln for ln in config_lines(fab, fab.hosts["hv-r01-01"]) if "dns-server" in ln]


def test_only_hypervisors_get_dhcp_files(data):
    fab = build(data)
    arts = artifacts(fab, fab.hosts["hv-r01-01"])
    assert [(a.path, a.kind, a.role) for a in arts] == [
        (CONFIG_PATH, "dnsmasq", "ocs_dhcp"), (HOSTS_PATH, "dnsmasq-hosts", "ocs_dhcp"),
        (UNIT_PATH, "systemd", "ocs_dhcp")]
    for name in ("tor-r01", "spine1", "gw-01"):
        assert artifacts(fab, fab.hosts[name]) == []


# --- IPv6: router advertisements and static DHCPv6 (dual-stack fabrics) -----

V6_LINES = [
    "enable-ra",
    "ra-param=tap*,mtu:1450,600,1800",
    "dhcp-range=set:ocs6_0,2001:db8:0:2::,static,off-link,64,43200",
]


def test_dual_stack_host_file_carries_each_ip6(data):
    """vm-a and vm-c derive theirs from the IPv4 address, vm-b and vm-d have their own."""
    fab = build(dual_stack(data))
    assert host_lines(fab, fab.hosts["hv-r01-01"]) == [
        "02:00:00:00:01:0a,198.19.1.10,[2001:db8:0:1::c613:10a],vm-a,43200",
        "02:00:00:00:01:0b,198.19.1.11,[2001:db8:0:1::b],vm-b,43200",
    ]
    assert host_lines(fab, fab.hosts["hv-r01-02"]) == [
        "02:00:00:00:01:0c,198.19.1.12,[2001:db8:0:1::c613:10c],vm-c,43200"]
    assert host_lines(fab, fab.hosts["hv-r02-01"]) == ["02:00:00:00:02:0d,198.19.2.13,[2001:db8:0:2::d],vm-d,43200"]


def test_dual_stack_instance_without_ip6_keeps_its_ipv4_line(data):
    dual_stack(data)
    data["hostvars"]["hv-r02-01"]["ocs_instances"][0].pop("ip6")
    data["hostvars"]["hv-r02-01"]["ocs_instances"].append(
        {"name": "vm-e", "mac": "02:00:00:00:02:0e", "ip": "198.19.2.14", "ip6": "2001:db8:0:2::e"})
    data["fabric"]["dhcp_lease_time"] = "1h"
    fab = build(data)
    assert host_lines(fab, fab.hosts["hv-r02-01"]) == [
        "02:00:00:00:02:0d,198.19.2.13,vm-d,3600",
        "02:00:00:00:02:0e,198.19.2.14,[2001:db8:0:2::e],vm-e,3600",
    ]


def test_dual_stack_config_appends_ra_and_a_static_range_per_rack_subnet6(data):
    v4 = build(copy.deepcopy(data))
    fab = build(dual_stack(data))
    assert config_lines(fab, fab.hosts["hv-r02-01"]) == config_lines(v4, v4.hosts["hv-r02-01"]) + V6_LINES
    assert config_lines(fab, fab.hosts["hv-r01-01"])[-1] == \
        "dhcp-range=set:ocs6_0,2001:db8:0:1::,static,off-link,64,43200"


def test_ipv6_range_per_subnet_prefix_length_at_least_64(data):
    """dnsmasq refuses a range prefix under 64: a wider subnet is served in its first /64 (where the
    gateway address is); a narrower one with its own length. Lease time and MTU follow the fabric."""
    dual_stack(data)
    data["racks"]["r02"]["instance_subnets6"] = ["2001:db8:0:2::/64", "2001:db8:2::/48", "2001:db8:0:3::100/120"]
    data["fabric"].update(dhcp_lease_time="2h", mtu=9000, instance_ifname_prefix="vif")
    data["hostvars"]["hv-r01-01"]["ocs_instances"][1]["interface"] = "vif-b"
    fab = build(data)
    assert config_lines(fab, fab.hosts["hv-r02-01"])[-5:] == [
        "enable-ra",
        "ra-param=vif*,mtu:9000,600,1800",
        "dhcp-range=set:ocs6_0,2001:db8:0:2::,static,off-link,64,7200",
        "dhcp-range=set:ocs6_1,2001:db8:2::,static,off-link,64,7200",
        "dhcp-range=set:ocs6_2,2001:db8:0:3::100,static,off-link,120,7200",
    ]


def test_ipv6_config_does_not_depend_on_instances(data):
    """A rack with IPv6 subnets gets the IPv6 lines on every hypervisor, with or without IPv6
    instances: adding the first one is a reload (host file), not a restart."""
    dual_stack(data)
    data["hostvars"]["hv-r02-01"]["ocs_instances"] = []
    fab = build(data)
    assert config_lines(fab, fab.hosts["hv-r02-01"])[-3:] == V6_LINES
    assert host_lines(fab, fab.hosts["hv-r02-01"]) == []


def test_no_ipv6_lines_without_rack_subnets6_or_in_an_ipv4_fabric(data):
    v4 = build(copy.deepcopy(data))
    for host in ("hv-r01-01", "hv-r02-01"):
        lines = config_lines(v4, v4.hosts[host])
        assert not [ln for ln in lines if ln == "enable-ra" or ln.startswith("ra-") or "::" in ln]
        assert not [ln for ln in host_lines(v4, v4.hosts[host]) if "[" in ln]
    dual_stack(data)
    data["racks"]["r02"].pop("instance_subnets6")
    data["hostvars"]["hv-r02-01"]["ocs_instances"][0].pop("ip6")
    fab = build(data)
    assert config_lines(fab, fab.hosts["hv-r02-01"]) == config_lines(v4, v4.hosts["hv-r02-01"])
    assert host_lines(fab, fab.hosts["hv-r02-01"]) == host_lines(v4, v4.hosts["hv-r02-01"])


def test_release_ignores_the_ip6_of_a_host_line(data):
    fab = build(dual_stack(data))
    content = "\n".join(host_lines(fab, fab.hosts["hv-r02-01"]))
    assert release.desired_pairs(content) == {("02:00:00:00:02:0d", "198.19.2.13")}


# --- ocs_dhcp_release: which leases go --------------------------------------

HOSTS = """#
# Managed by ocs-l3
02:00:00:00:01:0a,198.19.1.10,vm-a,43200
02:00:00:00:01:0b,198.19.1.11,vm-b,43200
"""

LEASES = """1795647590 02:00:00:00:01:0a 198.19.1.10 vm-a *
1795647590 02:00:00:00:01:0c 198.19.1.12 vm-c 01:02:00:00:00:01:0c
1795647590 02:00:00:00:01:0d 198.19.1.11 vm-old *
1795647590 02:00:00:00:02:0e 198.19.2.14 vm-e *
duid 00:01:00:01:2c:aa:bb:cc:00:00:00:00:00:01
1795647590 1234 2001:db8::5 * *
"""

ADDRS = [
    {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1", "prefixlen": 8}]},
    {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "198.18.1.11", "prefixlen": 25}]},
    {"ifname": "tapb", "addr_info": [{"family": "inet", "local": "198.19.1.1", "prefixlen": 24}]},
    {"ifname": "tapa", "addr_info": [{"family": "inet", "local": "198.19.1.1", "prefixlen": 24}]},
]


def test_release_plan_removed_and_reused_ips():
    todo, unreachable = release.plan(HOSTS, LEASES, ADDRS, "tap")
    # vm-c removed; 198.19.1.11 now belongs to another MAC; both sent on a tap of 198.19.1.0/24
    assert todo == [("198.19.1.12", "02:00:00:00:01:0c", "tapa"), ("198.19.1.11", "02:00:00:00:01:0d", "tapa")]
    # no tap of 198.19.2.0/24 here: reported, not released
    assert unreachable == ["198.19.2.14 02:00:00:00:02:0e"]


def test_release_plan_nothing_to_do():
    assert release.plan(HOSTS, "", ADDRS, "tap") == ([], [])
    assert release.plan(HOSTS, LEASES.splitlines()[0] + "\n", ADDRS, "tap") == ([], [])


def test_release_plan_uses_only_instance_interfaces():
    addrs = [{"ifname": "eth0", "addr_info": [{"family": "inet", "local": "198.19.1.1", "prefixlen": 24}]}]
    assert release.plan("", LEASES.splitlines()[0], addrs, "tap") == ([], ["198.19.1.10 02:00:00:00:01:0a"])


def test_desired_pairs_read_rendered_host_file(data):
    fab = build(data)
    content = "# header\n\n" + "\n".join(host_lines(fab, fab.hosts["hv-r01-01"]))
    assert release.desired_pairs(content) == {("02:00:00:00:01:0a", "198.19.1.10"),
                                              ("02:00:00:00:01:0b", "198.19.1.11")}


# --- ocs_dhcp_release, IPv6: which DHCPv6 leases go ------------------------------------------

HOSTS6 = """# Managed by ocs-l3
02:00:00:00:01:0a,198.19.1.10,[2001:db8:0:1::c613:10a],vm-a,43200
02:00:00:00:01:0b,198.19.1.11,[2001:DB8:0:1:0::b],vm-b,43200
02:00:00:00:01:0c,198.19.1.12,vm-c,43200
"""
SERVER_DUID = "00:01:00:01:2c:aa:bb:cc:02:00:00:00:00:01"
LEASES6 = """1795647590 02:00:00:00:01:0a 198.19.1.10 vm-a *
duid %s
1795647590 11 2001:db8:0:1::c613:10a vm-a 00:04:aa
1795647590 12 2001:db8:0:1::b vm-old 00:04:bb
1795647590 13 2001:db8:0:1::d vm-d 00:04:dd
1795647590 T14 2001:db8:0:1::e vm-e 00:04:ee
1795647590 15 2001:db8:0:1::f vm-f *
1795647590 16 2001:db8:0:2::10 vm-g 00:04:10
""" % SERVER_DUID
ADDRS6 = ADDRS + [
    {"ifname": "tapa", "addr_info": [{"family": "inet6", "local": "fe80::1", "prefixlen": 64, "scope": "link"},
                                     {"family": "inet6", "local": "2001:db8:0:1::1", "prefixlen": 64,
                                      "scope": "global"}]},
    {"ifname": "eth0", "addr_info": [{"family": "inet6", "local": "2001:db8:0:2::1", "prefixlen": 64,
                                      "scope": "global"}]},
]


def test_desired6_reads_the_ip6_field_in_canonical_form(data):
    assert release.desired6(HOSTS6) == {("2001:db8:0:1::c613:10a", "vm-a"), ("2001:db8:0:1::b", "vm-b")}
    fab = build(dual_stack(data))
    content = "\n".join(host_lines(fab, fab.hosts["hv-r01-01"]))
    assert release.desired6(content) == {(ntoa6(i.ip6), i.name) for i in fab.hosts["hv-r01-01"].instances}
    assert release.desired6("\n".join(host_lines(build(BASE), build(BASE).hosts["hv-r01-01"]))) == set()


def test_leases6_reads_the_server_duid_and_each_dhcpv6_lease():
    server, found = release.leases6(LEASES6)
    assert server == SERVER_DUID
    assert found[0] == ("2001:db8:0:1::c613:10a", "vm-a", "11", "00:04:aa")
    assert "2001:db8:0:1::e" not in [f[0] for f in found]  # a temporary (IA_TA) lease: left
    assert release.leases6(LEASES.split("duid")[0]) == (None, [])  # IPv4 only
    assert release.leases(LEASES6) == [("02:00:00:00:01:0a", "198.19.1.10")]  # the IPv4 reader skips them


def test_release_plan6_stale_leases_on_a_tap_of_their_subnet():
    todo, unreachable, server = release.plan6(HOSTS6, LEASES6, ADDRS6, "tap")
    # vm-old holds vm-b's address under another name, vm-d is gone: sent on tapa (its global address's
    # network holds them; never by the link-local fe80::1)
    assert todo == [("2001:db8:0:1::b", "12", "00:04:bb", "tapa"), ("2001:db8:0:1::d", "13", "00:04:dd", "tapa")]
    # vm-f has no client DUID; 2001:db8:0:2::/64 is on no tap (eth0 is not an instance interface)
    assert unreachable == ["2001:db8:0:1::f vm-f", "2001:db8:0:2::10 vm-g"]
    assert server == SERVER_DUID
    assert release.plan6(HOSTS6, LEASES6.replace("duid ", "xduid "), ADDRS6, "tap")[0] == []  # no server DUID


def test_release_plan6_nothing_to_do_and_the_ipv4_plan_unchanged():
    assert release.plan6(HOSTS6, "", ADDRS6, "tap") == ([], [], None)
    assert release.plan(HOSTS6, LEASES6, ADDRS6, "tap") == ([], [])  # the IPv4 lease of vm-a is wanted


def test_ipv6_dns_servers_and_domain_go_out_over_dhcpv6_and_ra(data):
    dual_stack(data)
    fab = build(copy.deepcopy(data))
    assert not [ln for ln in config_lines(fab, fab.hosts["hv-r01-01"]) if "option6" in ln]  # none set: nothing
    data["fabric"]["dns_servers6"] = ["2001:db8:ffff::53", "2001:DB8::35"]
    fab = build(data)
    assert fab.dns_servers6 == [aton6("2001:db8:ffff::53"), aton6("2001:db8::35")]
    lines = config_lines(fab, fab.hosts["hv-r01-01"])
    assert lines[-2:] == ["dhcp-option=option6:dns-server,[2001:db8:ffff::53],[2001:db8::35]",
                          "dhcp-option=option6:domain-search,cloud.ocs.example"]
    assert "port=0" in lines  # dnsmasq never advertises itself
    del data["fabric"]["domain"]
    fab = build(data)
    assert config_lines(fab, fab.hosts["hv-r01-01"])[-1] == "dhcp-option=option6:dns-server,[2001:db8:ffff::53],[2001:db8::35]"
    # the IPv6 resolvers are instance services (udp and tcp 53), like the IPv4 ones
    assert (aton6("2001:db8:ffff::53"), "udp", 53) in fab.instance_services6
    assert (aton6("2001:db8::35"), "tcp", 53) in fab.instance_services6
