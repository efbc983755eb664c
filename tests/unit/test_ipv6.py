"""IPv6, part 1: the dual-stack schema and its validation (docs/ipv6.md). The bad inputs are
rules of test_fabric_validation (RULES, the IPv6 section); here the parser of addr.py, what a
valid dual-stack fabric holds, and that IPv6 changes no rendered file yet."""

import copy
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabric_data import BASE, dual_stack, problems_of, set_at
from ansible_collections.ocs.l3.plugins.module_utils.addr import (Net, Net6, aton, aton6, ntoa6, parse_net6,
                                                                  special6)
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError
from ansible_collections.ocs.l3.plugins.module_utils.fabric import HOST_KEYS, build
from ansible_collections.ocs.l3.plugins.module_utils.constants import FILTER6_PATH, FILTER_PATH
from ansible_collections.ocs.l3.plugins.module_utils.conntrack import sized_max
from ansible_collections.ocs.l3.plugins.module_utils.firewall import conntrack_max
from ansible_collections.ocs.l3.plugins.module_utils.inventory import parse_instances
from ansible_collections.ocs.l3.plugins.module_utils.validate_ip6 import SUBNET6_NARROWEST, SUBNET6_WIDEST, derived


def _dual():
    return dual_stack(copy.deepcopy(BASE))


def _instances(fab):
    return {i.name: i for i in fab.instances()}


# --- addr.py: strict parsing, RFC 5952 printing --------------------------------------------

@pytest.mark.parametrize("text", ["fe80::1%eth0", "fe80::1%1", " 2001:db8::1", "2001:db8::1 ", "2001:db8::1\n",
                                  "2001:db8::\n1", "2001:db8::1/128", "1::2::3", "2001:db8::g", "12345::",
                                  "::ffff:01.2.3.4", "198.19.1.10", "", "٠::1", "2001:db8:0:0:0:0:0:0:1"])
def test_aton6_refuses(text):
    assert aton6(text) is None


@pytest.mark.parametrize("value", [None, 1, b"::1", ["::1"]])
def test_aton6_refuses_non_strings(value):
    assert aton6(value) is None


@pytest.mark.parametrize("text,printed", [
    ("2001:DB8::A", "2001:db8::a"),  # either case, printed lower case
    ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
    ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),  # the first of two equal runs of zeros
    ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),  # one zero field is not compressed
    ("2001:db8::1.2.3.4", "2001:db8::102:304"),  # an IPv4-embedded form the stdlib accepts
    ("fd00::1", "fd00::1"),
])
def test_aton6_and_ntoa6(text, printed):
    assert ntoa6(aton6(text)) == printed


def test_parse_net6():
    net = parse_net6("2001:DB8:0:1::/64")
    assert (net.text, net.prefixlen) == ("2001:db8:0:1::/64", 64)
    assert net.last == aton6("2001:db8:0:1:ffff:ffff:ffff:ffff")
    assert aton6("2001:db8:0:1::5") in net and aton6("2001:db8:0:2::") not in net
    with pytest.raises(ValueError, match=r"has host bits set \(the network is 2001:db8::/64\)"):
        parse_net6("2001:db8::1/64")
    for bad in ("2001:db8::/129", "2001:db8::/0064", "2001:db8::/64 ", "2001:db8::", "2001:db8::/6a",
                "fe80::%eth0/64", "198.18.0.0/15", None):
        with pytest.raises(ValueError, match="is not an IPv6 network in CIDR notation"):
            parse_net6(bad)


def test_net6_is_never_a_net():
    assert Net6(5, 128) != Net(5, 32) and Net(5, 32) != Net6(5, 128)
    assert Net6(5, 128) == parse_net6("::5/128")


@pytest.mark.parametrize("text,what", [
    ("ff02::1", "a multicast address (ff00::/8)"), ("fe80::1", "a link-local address (fe80::/10)"),
    ("febf::1", "a link-local address (fe80::/10)"), ("::1", "the loopback address"),
    ("::", "the unspecified address"), ("::ffff:1.2.3.4", "an IPv4-mapped address (::ffff:0:0/96)"),
    ("2001:db8::1", None), ("fd00::1", None), ("fec0::1", None)])
def test_special6(text, what):
    assert special6(aton6(text)) == what


def test_derivation_puts_the_ipv4_address_in_the_low_32_bits():
    assert ntoa6(derived(parse_net6("2001:db8:0:1::/64"), aton("198.19.1.10"))) == "2001:db8:0:1::c613:10a"
    assert ntoa6(derived(parse_net6("2001:db8:0:1::/96"), aton("198.19.1.10"))) == "2001:db8:0:1::c613:10a"


# --- the model -------------------------------------------------------------------------------

def test_dual_stack_fabric_builds():
    fab = build(_dual())
    assert [n.text for n in fab.internal_ranges6] == ["2001:db8::/32"]
    assert [n.text for n in fab.racks["r01"].instance_subnets6] == ["2001:db8:0:1::/64"]
    assert [n.text for n in fab.racks["r02"].instance_subnets6] == ["2001:db8:0:2::/64"]
    assert (fab.racks["r01"].ip6_from_ip4, fab.racks["r02"].ip6_from_ip4) == (True, False)
    assert {h.name: ntoa6(h.address6) for h in fab.hosts.values() if h.address6 is not None} == {
        "spine1": "2001:db8:ffff::1", "tor-r01": "2001:db8:ffff::11"}
    assert "ocs_address6" in HOST_KEYS


def test_derivation_gives_the_documented_address_and_an_explicit_ip6_wins():
    ip6 = {name: ntoa6(i.ip6) for name, i in _instances(build(_dual())).items()}
    assert ip6 == {"vm-a": "2001:db8:0:1::c613:10a",  # derived: 198.19.1.10 in the low 32 bits
                   "vm-b": "2001:db8:0:1::b",  # its own, though r01 derives
                   "vm-c": "2001:db8:0:1::c613:10c",
                   "vm-d": "2001:db8:0:2::d"}  # r02 does not derive


def test_no_derivation_leaves_instances_without_ip6():
    data = _dual()
    data["racks"]["r01"]["instance_ip6_from_ip4"] = False
    ip6 = {name: i.ip6 for name, i in _instances(build(data)).items()}
    assert ip6["vm-a"] is None and ip6["vm-c"] is None and ntoa6(ip6["vm-b"]) == "2001:db8:0:1::b"


def test_ipv4_only_fabric_has_no_ipv6_anywhere(data):
    fab = build(data)
    assert fab.internal_ranges6 == []
    assert all(r.instance_subnets6 == [] and r.ip6_from_ip4 is False for r in fab.racks.values())
    assert all(h.address6 is None for h in fab.hosts.values())
    assert all(i.ip6 is None for i in fab.instances())


def test_ipv6_filter_files_change_only_on_hypervisors(data):
    """Of the firewall's files (the other IPv6 parts render their own), a dual-stack fabric changes
    only the hypervisors' IPv6 filter rules (the guards and inbound policy, test_firewall); their
    conntrack table grows (an instance with an ip6 may hold its cap in each family)."""
    def files(fab):
        return {(host, a.path): sorted((k, str(v)) for k, v in a.vars.items())
                for host, arts in fabric_artifacts(fab).items() for a in arts
                if a.path in (FILTER_PATH, FILTER6_PATH)}
    dual, v4 = files(build(_dual())), files(build(data))
    assert set(dual) == set(v4)
    changed = {key for key in dual if dual[key] != v4[key]}
    hypervisors = {"hv-r01-01", "hv-r01-02", "hv-r02-01"}
    assert changed == {(h, FILTER6_PATH) for h in hypervisors}
    dual_fab = build(_dual())
    for h in hypervisors:
        assert conntrack_max(dual_fab, dual_fab.hosts[h]) == sized_max(
            dual_fab.conn_limit * (1 if i.ip6 is None else 2) for i in dual_fab.hosts[h].instances)


def test_ipv4_and_ipv6_ints_are_kept_apart():
    """::c613:10b is numerically 198.19.1.11 (vm-b's IPv4 address), ::c612:10b 198.18.1.11 (a
    host's): no clash across families."""
    data = _dual()
    data["fabric"]["internal_ranges6"] = ["::c612:0/111"]
    data["racks"]["r01"].update(instance_subnets6=["::c613:100/120"], instance_ip6_from_ip4=False)
    data["racks"]["r02"].update(instance_subnets6=["::c613:200/120"])
    data["hostvars"]["hv-r01-01"]["ocs_instances"][0]["ip6"] = "::c613:10b"
    data["hostvars"]["hv-r01-01"]["ocs_instances"][1]["ip6"] = "::c613:10a"
    data["hostvars"]["hv-r02-01"]["ocs_instances"][0]["ip6"] = "::c613:20d"
    data["hostvars"]["spine1"]["ocs_address6"] = "::c612:10b"
    data["hostvars"]["tor-r01"]["ocs_address6"] = "::c612:101"
    assert problems_of(data) == []


def test_many_ipv6_problems_are_reported_together():
    data = _dual()
    data["hostvars"]["hv-r02-01"]["ocs_instances"][0]["ip6"] = "ff02::1"
    data["hostvars"]["hv-r01-02"]["ocs_instances"][0]["ip6"] = "2001:db8:0:1::b"
    data["hostvars"]["tor-r01"]["ocs_address6"] = "2001:db8:ffff::1"
    assert len(problems_of(data)) == 3


# --- property: any IPv6 input fails with clear one-line messages, or builds ------------------

PATHS6 = [
    ("fabric", "internal_ranges6", 0),
    ("fabric", "internal_ranges6"),
    ("racks", "r01", "instance_subnets6", 0),
    ("racks", "r02", "instance_subnets6"),
    ("racks", "r01", "instance_ip6_from_ip4"),
    ("hostvars", "hv-r01-01", "ocs_instances", 1, "ip6"),
    ("hostvars", "hv-r01-02", "ocs_instances", 0, "ip6"),
    ("hostvars", "hv-r02-01", "ocs_instances", 0, "ip6"),
    ("hostvars", "spine1", "ocs_address6"),
    ("hostvars", "hv-r01-01", "ocs_address6"),
]
_PLACE = re.compile(r"(ocs_fabric|ocs_racks|spines|tors|hypervisors|nat_gateways)[.\[ ]")
hextet = st.integers(0, 0xFFFF).map("%x".format)
ipv6 = st.tuples(st.sampled_from(["2001:db8:0:1::", "2001:db8:0:2::", "2001:db8:ffff::", "2001:db8::"]),
                 hextet).map("".join)
near6 = st.sampled_from(["2001:db8::/32", "2001:db8:0:1::/64", "2001:db8:0:1::/112", "2001:db8:0:3::/64",
                         "2001:db8:0:1::b", "2001:db8:0:1::c613:10a", "2001:db8:ffff::1", "ff02::1", "fe80::1",
                         "fe80::1%eth0", "::1", "::", "::/0", "::ffff:198.19.1.10", "2001:db8:0:1::", "fd00::/8",
                         "2001:db8::1/32", "2001:DB8:0:2::D", "198.19.1.10", "2001:db8::/40", True, False, "yes"])
nasty6 = st.sampled_from(["", " ", "2001:db8::1\n", " 2001:db8::1", "x\ny", "$(id)", "1::2::3", None, [], {},
                          ["2001:db8:0:1::/64", "2001:db8:0:1::/64"], 1.5, 2 ** 129])
values6 = st.one_of(ipv6, near6, nasty6, st.text(alphabet="0123456789abcdefABCDEF:./% \n", max_size=24))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS6), values6), min_size=1, max_size=4))
def test_random_ipv6_input_fails_clearly_or_builds(changes):
    data = _dual()
    for path, value in changes:
        set_at(data, path, copy.deepcopy(value))
    try:
        fab = build(data)
    except FabricError as exc:
        for problem in exc.problems:
            assert "\n" not in problem and "\r" not in problem
            assert _PLACE.match(problem), problem
        return
    for rack in fab.racks.values():
        assert all(SUBNET6_WIDEST <= n.prefixlen <= SUBNET6_NARROWEST for n in rack.instance_subnets6)
    for instance in fab.instances():
        if instance.ip6 is not None:
            assert instance.hypervisor.rack.subnet6_of(instance.ip6) is not None
            assert special6(instance.ip6) is None


# --- inbound6: who may open IPv6 flows to instances (firewall.open_inbound6) -----------------

def test_inbound6_defaults_to_floating_and_instances_to_the_fabric():
    fab = build(_dual())
    assert fab.inbound6 == "floating"
    assert {i.name: i.inbound6 for i in fab.instances()} == {n: None for n in ("vm-a", "vm-b", "vm-c", "vm-d")}


@pytest.mark.parametrize("value", ["floating", "open", "closed"])
def test_inbound6_fabric_values(value):
    data = _dual()
    data["fabric"]["inbound6"] = value
    assert build(data).inbound6 == value


@pytest.mark.parametrize("value,shown", [("Open", "Open"), ("none", "none"), (True, "True"), ("", "''"),
                                         (["open"], "['open']"), ("open\n", "'open\\n'")])
def test_inbound6_fabric_bad_values(value, shown):
    data = _dual()
    data["fabric"]["inbound6"] = value
    assert problems_of(data) == ["ocs_fabric.inbound6 %s must be floating, open or closed" % shown]


def test_inbound6_requires_a_dual_stack_fabric(data):
    data["fabric"]["inbound6"] = "open"
    data["hostvars"]["hv-r01-01"]["ocs_instances"][0]["inbound6"] = "closed"
    assert problems_of(data) == [
        "ocs_fabric.inbound6 requires ocs_fabric.internal_ranges6 (the fabric's IPv6 ranges)",
        "hypervisors.hv-r01-01.ocs_instances[0] (vm-a).inbound6 requires ocs_fabric.internal_ranges6 (the fabric's "
        "IPv6 ranges)"]


def test_inbound6_of_an_instance():
    data = _dual()
    data["hostvars"]["hv-r01-01"]["ocs_instances"][0]["inbound6"] = "closed"
    data["hostvars"]["hv-r01-01"]["ocs_instances"][1]["inbound6"] = "open"
    assert {i.name: i.inbound6 for i in build(data).instances()} == {
        "vm-a": "closed", "vm-b": "open", "vm-c": None, "vm-d": None}


@pytest.mark.parametrize("value,problem", [
    ("floating", "floating must be open or closed (or left out: ocs_fabric.inbound6 decides)"),
    ("OPEN", "OPEN must be open or closed (or left out: ocs_fabric.inbound6 decides)"),
    (1, "1 must be open or closed (or left out: ocs_fabric.inbound6 decides)"),
])
def test_inbound6_of_an_instance_bad_values(value, problem):
    data = _dual()
    data["hostvars"]["hv-r01-01"]["ocs_instances"][1]["inbound6"] = value
    assert problems_of(data) == ["hypervisors.hv-r01-01.ocs_instances[1] (vm-b).inbound6 " + problem]


def test_inbound6_of_an_instance_without_ip6():
    data = _dual()
    data["racks"]["r01"]["instance_ip6_from_ip4"] = False  # vm-a: no ip6
    data["hostvars"]["hv-r01-01"]["ocs_instances"][0]["inbound6"] = "open"
    assert problems_of(data) == ["hypervisors.hv-r01-01.ocs_instances[0] (vm-a).inbound6 is open, but the instance "
                                 "has no ip6"]
    data["hostvars"]["hv-r01-01"]["ocs_instances"][0]["ip6"] = "ff02::1"  # a bad ip6: one problem, not two
    assert problems_of(data) == ["hypervisors.hv-r01-01.ocs_instances[0] (vm-a).ip6 ff02::1 is a multicast "
                                 "address (ff00::/8)"]


def test_inbound6_in_an_instances_csv_file():
    data = _dual()
    for hv in data["hostvars"].values():
        hv.pop("ocs_instances", None)
    data["instances_records"] = parse_instances(
        "hypervisor,name,mac,ip,floating_ip,ip6,inbound6\n"
        "hv-r01-01,vm-x,02:00:00:00:09:01,198.19.1.40,,,open\n"
        "hv-r01-01,vm-y,02:00:00:00:09:02,198.19.1.41,203.0.113.141,,closed\n"
        "hv-r01-01,vm-z,02:00:00:00:09:03,198.19.1.42,,,\n", "instances.csv", True)
    data["fabric"]["instances_file"] = "instances.csv"
    fab = build(data)
    assert [(i.name, i.inbound6) for i in fab.instances()] == [("vm-x", "open"), ("vm-y", "closed"), ("vm-z", None)]
    data["instances_records"][0][1]["inbound6"] = "maybe"
    assert problems_of(data) == ["instances.csv:2 (vm-x on hv-r01-01).inbound6 maybe must be open or closed (or "
                                 "left out: ocs_fabric.inbound6 decides)"]


@pytest.mark.parametrize("subnet,ip6,ok", [
    ("2001:db8:0:200::/56", "2001:db8:0:200::d", True),  # the first /64: served
    ("2001:db8:0:200::/56", "2001:db8:0:200:ffff:ffff:ffff:ffff", True),  # its last address
    ("2001:db8:0:200::/56", "2001:db8:0:201::", False),  # the second /64's first address
    ("2001:db8:0:200::/56", "2001:db8:0:2ff::d", False),
    ("2001:db8::/48", "2001:db8:0:1::d", False),
    ("2001:db8:0:2::/64", "2001:db8:0:2:ffff::d", True),  # a /64 or longer: all of it
    ("2001:db8:0:2::/120", "2001:db8:0:2::ff", True),
])
def test_an_ip6_lies_in_the_first_64_of_a_wider_subnet(subnet, ip6, ok):
    data = _dual()
    data["racks"]["r01"]["instance_subnets6"] = ["2001:db8:1:1::/64"]  # out of r02's way (a /48 covers ::1:0/64)
    data["hostvars"]["hv-r01-01"]["ocs_instances"][1]["ip6"] = "2001:db8:1:1::b"
    data["racks"]["r02"]["instance_subnets6"] = [subnet]
    data["hostvars"]["hv-r02-01"]["ocs_instances"][0]["ip6"] = ip6
    problems = [p for p in problems_of(data) if "(vm-d).ip6" in p]
    assert problems == ([] if ok else ["hypervisors.hv-r02-01.ocs_instances[0] (vm-d).ip6 %s is outside %s/64, the first /64 "
                                      "of %s (DHCPv6 serves a subnet wider than a /64 in its first only)"
                                      % (ntoa6(aton6(ip6)), subnet.split("/")[0], subnet)])


def test_derived_addresses_always_lie_in_the_first_64():
    data = _dual()
    data["racks"]["r01"]["instance_subnets6"] = ["2001:db8:100::/48"]
    data["hostvars"]["hv-r01-01"]["ocs_instances"][1]["ip6"] = "2001:db8:100::b"
    fab = build(data)  # valid: no derived address is refused
    derived_ = [i for i in fab.instances() if i.name in ("vm-a", "vm-c")]
    assert [ntoa6(i.ip6) for i in derived_] == ["2001:db8:100::c613:10a", "2001:db8:100::c613:10c"]


def test_ipv6_management_and_monitoring_ranges_beside_the_instance_subnets6():
    data = _dual()
    data["fabric"]["management_ranges"] = ["192.0.2.0/24", "2001:db8:ffff::/48"]  # the hosts' side: fine
    data["fabric"]["monitoring_ranges"] = ["2001:db8:0:3::/64", "198.18.0.0/24"]
    assert problems_of(data) == []
    data["fabric"]["monitoring_ranges"] = ["2001:db8:0:1::/64", "2001:db8:0:2:1::/80", "2001:db8::/63"]
    assert problems_of(data) == [
        "ocs_fabric.monitoring_ranges[%d] %s overlaps rack %s instance subnet %s (tenants would be monitoring)" % case
        for case in ((0, "2001:db8:0:1::/64", "r01", "2001:db8:0:1::/64"),
                     (1, "2001:db8:0:2:1::/80", "r02", "2001:db8:0:2::/64"),
                     (2, "2001:db8::/63", "r01", "2001:db8:0:1::/64"))]


def test_ipv4_only_fabric_ignores_ipv6_management_ranges_as_before(data):
    data["fabric"]["management_ranges"] = ["192.0.2.0/24", "2001:db8:0:1::/64"]
    assert problems_of(data) == []
