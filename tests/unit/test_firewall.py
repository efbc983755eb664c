"""Tenant-isolation rule computation (table filter) and its planning by ocs_iptables_chains."""

import copy
import os


import pytest

from fabric_data import ROOT, gateway_mode, problems_of
from ansible_collections.ocs.l3.plugins.module_utils import conntrack, constants, dhcp, expected, firewall
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.addr import aton6
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils import iptables as chains_mod


DECLARE = [":%s - [0:0]" % c for c in firewall.CHAINS]
JUMPS = [{"table": t, "chain": c, "target": o, "first": True} for t, c, o in constants.FILTER_JUMPS]
INPUT = [
    "-A OCS-INPUT -i tap+ -p udp -m udp --sport 68 --dport 67 -m comment --comment ocs-dhcp -j OCS-DHCP-MAC",
    "-A OCS-INPUT -s 0.0.0.0/32 -i tap+ -p udp -m udp --sport 68 --dport 67 -m comment --comment ocs-dhcp -j ACCEPT",
    "-A OCS-INPUT -i tap+ -j OCS-ANTISPOOF",
    "-A OCS-INPUT -i tap+ -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment ocs-replies -j ACCEPT",
    "-A OCS-INPUT -i tap+ -p udp -m udp --sport 68 --dport 67 -m comment --comment ocs-dhcp -j ACCEPT",
    "-A OCS-INPUT -i tap+ -m conntrack --ctstate NEW -j OCS-CONNLIMIT",
    "-A OCS-INPUT -i tap+ -p icmp -m icmp --icmp-type 8 -m comment --comment ocs-ping -j ACCEPT",
    "-A OCS-INPUT -i tap+ -p tcp -m conntrack --ctstate DNAT --ctorigdst 169.254.169.254/32 --ctorigdstport 80 "
    "-m comment --comment ocs-metadata -j ACCEPT",
    "-A OCS-INPUT -i tap+ -m comment --comment ocs-protect-host -j DROP",
]
TAP_A = "tap9f5f9ca7bee"  # default_ifname("vm-a", "tap")
U32 = '"0x0>>0x16&0x3c@0x8>>0x8&0xffff=0x106&&0x0>>0x16&0x3c@0x24=0x2000000&&0x0>>0x16&0x3c@0x28>>0x10=0x%s"'
CAP = ("-A OCS-CONNLIMIT %s-m connlimit --connlimit-above %d --connlimit-mask 32 --connlimit-saddr "
       "-m comment --comment ocs-connlimit -j REJECT --reject-with icmp-admin-prohibited")
TENANT = [
    "-A OCS-TENANT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment ocs-replies -j RETURN",
    "-A OCS-TENANT -d 198.18.0.53/32 -p tcp -m tcp --dport 53 -m comment --comment ocs-instance-service -j RETURN",
    "-A OCS-TENANT -d 198.18.0.53/32 -p udp -m udp --dport 53 -m comment --comment ocs-instance-service -j RETURN",
    "-A OCS-TENANT -d 198.18.0.100/32 -p tcp -m tcp --dport 8775 -m comment --comment ocs-instance-service "
    "-j RETURN",
] + ["-A OCS-TENANT -d %s -m comment --comment ocs-infra -j DROP" % n for n in (
    "198.18.0.0/23", "198.18.2.0/24", "203.0.113.11/32", "203.0.113.12/32", "203.0.113.21/32", "203.0.113.250/32")]
HOST_HEAD = [
    "-A OCS-INPUT -j OCS-HOST",
    "-A OCS-HOST -i lo -j ACCEPT",
    "-A OCS-HOST -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment ocs-replies -j ACCEPT",
    "-A OCS-HOST -p icmp -m icmp --icmp-type 3/4 -m comment --comment ocs-frag-needed -j ACCEPT",
    "-A OCS-HOST -p icmp -m limit --limit 50/sec --limit-burst 100 -m comment --comment ocs-icmp -j ACCEPT",
    "-A OCS-HOST -p icmp -m comment --comment ocs-icmp-limit -j DROP",
]
MGMT = "-A OCS-HOST -s 192.0.2.0/24 -m comment --comment ocs-management -j ACCEPT"
HOST_DROP = "-A OCS-HOST -m comment --comment ocs-host-drop -j DROP"
RAW_EMPTY = ["*raw", ":OCS-NOTRACK - [0:0]", ":OCS-EDGE - [0:0]", "COMMIT"]
NOTRACK = "-A OCS-NOTRACK -m addrtype ! --dst-type LOCAL -m comment --comment ocs-transit -j CT --notrack"
RAW_ROUTER = ["*raw", ":OCS-NOTRACK - [0:0]", ":OCS-EDGE - [0:0]", NOTRACK, "COMMIT"]
# The spine's border link eth9 (198.18.0.253/30, peer 198.18.0.254): ingress anti-spoofing (issue 15),
# entered from OCS-NOTRACK's first rule, before the notrack rule.
RAW_EDGE = ["*raw", ":OCS-NOTRACK - [0:0]", ":OCS-EDGE - [0:0]", "-A OCS-NOTRACK -j OCS-EDGE", NOTRACK,
            "-A OCS-EDGE -s 198.18.0.254/32 -i eth9 -m comment --comment ocs-edge-peer -j RETURN",
            "-A OCS-EDGE -s 198.18.0.0/15 -i eth9 -m comment --comment ocs-edge-spoof -j DROP",
            "-A OCS-EDGE -s 203.0.113.0/24 -i eth9 -m comment --comment ocs-edge-spoof -j DROP",
            "COMMIT"]


def tap_part(lines):
    """The tenant-isolation part of a hypervisor's filter lines (OCS-INPUT tap rules, anti-spoofing)."""
    return [ln for ln in lines[:lines.index("COMMIT")]
            if not ln.startswith(("-A OCS-HOST", "-A OCS-TENANT", "-A OCS-INPUT -j OCS-HOST"))
            and not ln.endswith("-j OCS-TENANT")]


def test_filter_rules_of_a_hypervisor(data):
    fab = build(data)
    assert firewall.filter_lines(fab, fab.hosts["hv-r01-01"]) == ["*filter"] + DECLARE + INPUT + [
        "-A OCS-FORWARD -i tap+ -j OCS-ANTISPOOF",
        "-A OCS-FORWARD -i tap+ -j OCS-TENANT",
        "-A OCS-FORWARD -i tap+ -m conntrack --ctstate NEW -j OCS-CONNLIMIT",
        "-A OCS-ANTISPOOF -s 198.19.1.10/32 -i %s -m mac --mac-source 02:00:00:00:01:0a "
        "-m comment --comment vm-a -j RETURN" % TAP_A,
        "-A OCS-ANTISPOOF -s 198.19.1.11/32 -i tap-b -m mac --mac-source 02:00:00:00:01:0b "
        "-m comment --comment vm-b -j RETURN",
        "-A OCS-ANTISPOOF -m comment --comment ocs-spoof -j DROP",
        "-A OCS-DHCP-MAC -i %s -m mac --mac-source 02:00:00:00:01:0a -m u32 --u32 %s -m comment --comment vm-a "
        "-j RETURN" % (TAP_A, U32 % "10a"),
        "-A OCS-DHCP-MAC -i tap-b -m mac --mac-source 02:00:00:00:01:0b -m u32 --u32 %s -m comment --comment vm-b "
        "-j RETURN" % (U32 % "10b"),
        "-A OCS-DHCP-MAC -m comment --comment ocs-dhcp-spoof -j DROP",
    ] + TENANT + [CAP % ("", 8192)] + HOST_HEAD + [
        "-A OCS-HOST -d 203.0.113.11/32 -m comment --comment ocs-public -j DROP",
        "-A OCS-HOST -s 198.18.1.1/32 -p tcp -m tcp --dport 179 -m comment --comment ocs-bgp -j ACCEPT",
        MGMT, HOST_DROP, "COMMIT"] + RAW_EMPTY


def test_host_policy_of_routers_and_gateways(data):
    """Every tier protects itself: BGP only from its configured peers, management, ICMP, then DROP;
    routers never track transit; a public address answers no service."""
    fab = build(data)
    bgp = "-A OCS-HOST -s %s/32 -p tcp -m tcp --dport 179 -m comment --comment ocs-bgp -j ACCEPT"
    head = ["*filter", ":OCS-INPUT - [0:0]", ":OCS-FORWARD - [0:0]", ":OCS-HOST - [0:0]"] + HOST_HEAD
    assert firewall.filter_lines(fab, fab.hosts["tor-r01"]) == head + [
        bgp % p for p in ("198.18.0.1", "198.18.1.11", "198.18.1.12", "198.18.1.140")] + [
        MGMT, HOST_DROP, "COMMIT"] + RAW_ROUTER
    assert firewall.filter_lines(fab, fab.hosts["spine1"]) == head + [
        bgp % p for p in ("198.18.0.11", "198.18.0.12", "198.18.0.21", "198.18.0.254")] + [
        MGMT, HOST_DROP, "COMMIT"] + RAW_EDGE
    assert firewall.filter_lines(fab, fab.hosts["gw-01"]) == head + [
        "-A OCS-HOST -d 203.0.113.250/32 -m comment --comment ocs-public -j DROP", bgp % "198.18.0.1",
        MGMT, HOST_DROP, "COMMIT"] + RAW_EMPTY


def test_host_services_bfd_and_served_instance_services(data):
    data["fabric"]["host_services"] = [
        {"proto": "tcp", "port": 9100, "from": ["192.0.2.32/27"]},
        {"proto": "udp", "port": 514, "from": ["192.0.2.64/27", "192.0.2.96/27"], "roles": ["spine"]}]
    data["fabric"]["bgp"] = {"bfd": True}
    data["fabric"]["metadata"] = {"target": "198.18.0.1", "target_port": 8775}  # served by spine1
    fab = build(data)
    spine = firewall.filter_lines(fab, fab.hosts["spine1"])
    tor = firewall.filter_lines(fab, fab.hosts["tor-r01"])
    assert "-A OCS-HOST -s 198.18.0.11/32 -p udp -m multiport --dports 3784,3785 -m comment --comment ocs-bfd " \
           "-j ACCEPT" in spine
    svc = "-A OCS-HOST -s %s -p %s -m %s --dport %d -m comment --comment ocs-service -j ACCEPT"
    assert [ln for ln in spine if "ocs-service" in ln] == [
        svc % ("192.0.2.32/27", "tcp", "tcp", 9100), svc % ("192.0.2.64/27", "udp", "udp", 514),
        svc % ("192.0.2.96/27", "udp", "udp", 514)]
    assert [ln for ln in tor if "ocs-service" in ln] == [svc % ("192.0.2.32/27", "tcp", "tcp", 9100)]
    served = "-A OCS-HOST -s %s -d 198.18.0.1/32 -p tcp -m tcp --dport 8775 " \
             "-m comment --comment ocs-instance-service -j ACCEPT"
    assert [ln for ln in spine if "ocs-instance-service" in ln] == [
        served % n for n in ("198.19.1.0/24", "198.19.2.0/25", "198.19.2.128/25")]
    assert not [ln for ln in tor if "ocs-instance-service" in ln]
    last_accept = max(i for i, ln in enumerate(spine) if ln.startswith("-A OCS-HOST") and ln.endswith("ACCEPT"))
    assert last_accept < spine.index(HOST_DROP) == spine.index("COMMIT") - 1


def test_host_policy_off_keeps_tenant_isolation(data):
    data["fabric"]["host_policy"] = False
    del data["fabric"]["management_ranges"]
    fab = build(data)
    assert firewall.filter_lines(fab, fab.hosts["tor-r01"]) == [
        "*filter", ":OCS-INPUT - [0:0]", ":OCS-FORWARD - [0:0]", ":OCS-HOST - [0:0]", "COMMIT"] + RAW_ROUTER
    hv = firewall.filter_lines(fab, fab.hosts["hv-r01-01"])
    assert not [ln for ln in hv if "OCS-HOST" in ln and not ln.startswith(":")]
    assert [ln for ln in hv if ln.startswith("-A OCS-TENANT")] == TENANT


def test_ipv6_host_policy(data):
    data["hostvars"]["hv-r02-01"]["ocs_uplinks"] = [{"interface": "eth0"}]  # unnumbered: BGP over link-local
    data["fabric"]["management_ranges"].append("2001:db8:aa::/48")
    data["fabric"]["host_services"] = [{"proto": "tcp", "port": 9100, "from": ["192.0.2.32/27", "2001:db8:bb::/48"]}]
    data["hostvars"]["tor-r02"]["ocs_downlinks"] = [{"interface": "eth5", "host": "hv-r02-01"}]
    fab = build(data)
    tor = firewall.ipv6_lines(fab, fab.hosts["tor-r02"])
    assert "-A OCS-HOST -s fe80::/10 -i eth5 -p tcp -m tcp --dport 179 -m comment --comment ocs-bgp -j ACCEPT" in tor
    assert "-A OCS-HOST -p ipv6-icmp -m icmp6 --icmpv6-type 2 -m comment --comment ocs-packet-too-big -j ACCEPT" \
        in tor
    assert tor.index("-A OCS-HOST -p ipv6-icmp -m icmp6 --icmpv6-type 2 -m comment --comment ocs-packet-too-big "
                     "-j ACCEPT") < tor.index("-A OCS-HOST -p ipv6-icmp -m comment --comment ocs-icmp-limit -j DROP")
    end = tor.index("COMMIT")
    assert tor[end - 1] == HOST_DROP and tor[end + 1:] == RAW_ROUTER
    assert "-A OCS-HOST -s 2001:db8:aa::/48 -m comment --comment ocs-management -j ACCEPT" in tor
    assert "-A OCS-HOST -s 2001:db8:bb::/48 -p tcp -m tcp --dport 9100 -m comment --comment ocs-service -j ACCEPT" \
        in tor
    assert "2001:db8" not in "".join(firewall.filter_lines(fab, fab.hosts["tor-r02"]))  # IPv4 file: IPv4 only
    hv = firewall.ipv6_lines(fab, fab.hosts["hv-r02-01"])
    assert hv[4:6] == ["-A OCS-INPUT -i tap+ -m comment --comment ocs-no-ipv6 -j DROP",
                       "-A OCS-FORWARD -i tap+ -m comment --comment ocs-no-ipv6 -j DROP"]
    assert "-A OCS-HOST -s fe80::/10 -i eth0 -p tcp -m tcp --dport 179 -m comment --comment ocs-bgp -j ACCEPT" in hv


def test_every_rule_matches_only_packets_from_instance_taps(data):
    """Management traffic is never filtered: each rule of a chain that a
    built-in chain jumps to matches -i <prefix>+; the other chains are only
    reached from those rules."""
    data["fabric"]["instance_ifname_prefix"] = "vnet"
    for hv in data["hostvars"].values():
        for inst in hv.get("ocs_instances", []):
            inst.pop("interface", None)
    fab = build(data)
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        lines = tap_part(firewall.filter_lines(fab, fab.hosts[name]))
        entry = [ln for ln in lines if ln.split()[:2] in (["-A", "OCS-INPUT"], ["-A", "OCS-FORWARD"])]
        assert entry and all(" -i vnet+ " in ln for ln in entry), entry
        inner = {ln.split()[1] for ln in lines if ln.startswith("-A ") and ln.split()[1] not in
                 ("OCS-INPUT", "OCS-FORWARD")}
        assert inner == {"OCS-ANTISPOOF", "OCS-DHCP-MAC", "OCS-CONNLIMIT"}
        assert all(" -j %s" % c in " ".join(entry) for c in inner)
        assert not [ln for ln in lines if " -P " in ln or ln.startswith(("-I", "-D", "-F", "-X", "-P"))]
        for ln in lines:  # per-instance rules name a tap of this prefix
            if "--mac-source" in ln:
                assert " -i vnet" in ln
    assert firewall.ipv6_lines(fab) == [
        "*filter", ":OCS-INPUT - [0:0]", ":OCS-FORWARD - [0:0]", ":OCS-HOST - [0:0]",
        "-A OCS-INPUT -i vnet+ -m comment --comment ocs-no-ipv6 -j DROP",
        "-A OCS-FORWARD -i vnet+ -m comment --comment ocs-no-ipv6 -j DROP", "COMMIT"]


def test_rule_count_is_linear_in_local_instances(data):
    insts = [{"name": "vm-%04d" % i, "mac": "02:00:00:01:%02x:%02x" % (i >> 8, i & 255),
              "ip": "198.19.%d.%d" % (8 + (i >> 8), i & 255)} for i in range(1000)]
    insts = [i for i in insts if not i["ip"].endswith((".0", ".1", ".255"))][:1000]
    data["racks"]["r01"]["instance_subnets"] = ["198.19.8.0/21"]
    data["hostvars"]["hv-r01-01"]["ocs_instances"] = insts
    data["hostvars"]["hv-r01-02"]["ocs_instances"] = []
    fab = build(data)
    lines = firewall.filter_lines(fab, fab.hosts["hv-r01-01"])
    rules = [ln for ln in lines if ln.startswith("-A ")]
    n = len(fab.hosts["hv-r01-01"].instances)
    # 2 per local instance; the rest grows with the fabric's infrastructure and BGP peers, not instances
    data["hostvars"]["hv-r01-01"]["ocs_instances"] = []
    empty = build(data)
    none = [ln for ln in firewall.filter_lines(empty, empty.hosts["hv-r01-01"]) if ln.startswith("-A ")]
    assert n == len(insts) and len(rules) - len(none) == 2 * n  # linear: 2 rules per local instance
    assert len([ln for ln in rules if "connlimit" in ln]) == 1  # one cap for every instance at the default
    assert len(none) < 40  # the rest depends on the fabric's infrastructure and this host's peers
    assert len(firewall.filter_lines(fab, fab.hosts["hv-r02-01"])) < 60  # other hosts: only their own


def test_rules_are_sorted_and_stable(data):
    fab = build(data)
    lines = firewall.filter_lines(fab, fab.hosts["hv-r01-01"])
    data["hostvars"]["hv-r01-01"]["ocs_instances"].reverse()
    fab2 = build(data)
    assert firewall.filter_lines(fab2, fab2.hosts["hv-r01-01"]) == lines


def test_gateway_mode_applies_the_same_isolation(data):
    fab = build(data)
    host_mode = {h: tap_part(firewall.filter_lines(fab, fab.hosts[h])) for h in ("hv-r01-01", "hv-r02-01")}
    gateway_mode(data)
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        data["hostvars"][name].pop("ocs_public_address")
    fab = build(data)
    for host, lines in host_mode.items():
        assert tap_part(firewall.filter_lines(fab, fab.hosts[host])) == lines


def test_no_metadata_no_metadata_rule(data):
    del data["fabric"]["metadata"]
    fab = build(data)
    lines = firewall.filter_lines(fab, fab.hosts["hv-r01-01"])
    assert not [ln for ln in lines if "ocs-metadata" in ln]
    forward = lines.index("-A OCS-FORWARD -i tap+ -j OCS-ANTISPOOF")  # right after OCS-INPUT's tap rules
    assert lines[forward - 1] == INPUT[-1]  # OCS-INPUT still ends with the DROP


def test_metadata_port_follows_the_fabric(data):
    data["fabric"]["metadata"] = {"ip": "169.254.169.254", "port": 8080, "target": "198.18.0.100"}
    fab = build(data)
    lines = firewall.filter_lines(fab, fab.hosts["hv-r01-01"])
    assert [ln for ln in lines if "ocs-metadata" in ln] == [
        "-A OCS-INPUT -i tap+ -p tcp -m conntrack --ctstate DNAT --ctorigdst 169.254.169.254/32 "
        "--ctorigdstport 8080 -m comment --comment ocs-metadata -j ACCEPT"]


def test_hypervisor_without_instances_drops_everything_from_taps(data):
    data["hostvars"]["hv-r02-01"]["ocs_instances"] = []
    fab = build(data)
    lines = firewall.filter_lines(fab, fab.hosts["hv-r02-01"])
    assert [ln for ln in lines if ln.startswith("-A OCS-ANTISPOOF")] == [
        "-A OCS-ANTISPOOF -m comment --comment ocs-spoof -j DROP"]


def test_artifacts_for_every_host(data):
    fab = build(data)
    for name in fab.hosts:
        arts = [a for a in host_artifacts(fab, fab.hosts[name]) if a.role == "ocs_firewall"]
        assert [(a.path, a.kind, a.template) for a in arts] == [
            (firewall.FILTER_PATH, "iptables", "etc/ocs-l3/iptables-filter.rules.j2"),
            (firewall.FILTER6_PATH, "ip6tables", "etc/ocs-l3/ip6tables-filter.rules.j2")]
        assert arts[0].vars["_ocs_firewall_rules"].endswith("COMMIT\n")
        assert arts[1].vars["_ocs_firewall_rules6"].endswith("COMMIT\n")
    for art in arts:
        path = os.path.join(ROOT, "roles/ocs_firewall/templates", art.template)
        with open(path) as fh:
            assert fh.read().startswith("{{ ansible_managed | comment }}\n")


def test_dnsmasq_is_not_a_resolver(data):
    """DNS is off in the hypervisor's dnsmasq (port=0): not an open resolver for instances."""
    fab = build(data)
    for name in ("hv-r01-01", "hv-r02-01"):
        lines = dhcp.config_lines(fab, fab.hosts[name])
        assert "port=0" in lines and not [ln for ln in lines if ln.startswith(("port=5", "server=", "listen-"))]


# --- the module plans the filter table like the nat table ---------------------

def _save(rules, extra=()):
    chains = sorted(set(firewall.CHAINS) | {"DOCKER-USER"})
    return "\n".join(["*filter", ":INPUT ACCEPT [100:5000]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [9:900]"]
                     + [":%s - [0:0]" % c for c in chains] + list(extra) + list(rules) + ["COMMIT", ""])


def test_module_plans_the_filter_table(data):
    fab = build(data)
    text = "\n".join(firewall.filter_lines(fab, fab.hosts["hv-r01-01"])) + "\n"
    cand = chains_mod.parse_restore(text)
    assert chains_mod.check_candidate(cand, "OCS-", JUMPS) == []
    assert cand["raw"] == {"chains": ["OCS-NOTRACK", "OCS-EDGE"], "rules": []}  # a hypervisor tracks transit (host NAT)
    cand = {"filter": cand["filter"]}  # the filter table's planning, below
    jumps_f = [j for j in JUMPS if j["table"] == "filter"]
    rules = cand["filter"]["rules"]
    foreign = ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", "-A FORWARD -j DOCKER-USER",
               "-A DOCKER-USER -j RETURN"]
    first = chains_mod.plan(cand, {"filter": _save(foreign)}, _save(rules), jumps_f)
    tx = first["transaction"].splitlines()
    assert tx[0] == "*filter" and tx[1:1 + len(DECLARE)] == DECLARE and tx[-1] == "COMMIT"
    assert first["jumps_fixed"] == ["-I INPUT 1 -j OCS-INPUT", "-I FORWARD 1 -j OCS-FORWARD"]
    assert first["conntrack"] == [] and not [ln for ln in tx if "DOCKER" in ln or "dport 22 -j ACCEPT" in ln]
    assert not [ln for ln in tx if ln.startswith((":INPUT", ":FORWARD", "-P"))]  # policies never set
    jumps = ["-A INPUT -j OCS-INPUT", "-A FORWARD -j OCS-FORWARD"]
    again = chains_mod.plan(cand, {"filter": _save(jumps + foreign + rules)}, _save(rules), jumps_f)
    assert again["transaction"] == "" and again["tables"] == []
    # a jump below someone's ACCEPT is moved to the top (twice there: both copies go)
    below = foreign[:1] + jumps[:1] + jumps + foreign[1:]
    moved = chains_mod.plan(cand, {"filter": _save(below + rules)}, _save(rules), jumps_f)
    assert moved["jumps_fixed"] == ["-D INPUT -j OCS-INPUT", "-D INPUT -j OCS-INPUT", "-I INPUT 1 -j OCS-INPUT"]
    assert moved["tables"] == []
    # without "first" (the NAT jumps) an existing jump keeps its place
    keep = [dict(j, first=False) for j in jumps_f]
    assert chains_mod.plan(cand, {"filter": _save(foreign[:1] + jumps + foreign[1:] + rules)}, _save(rules),
                           keep)["transaction"] == ""


def test_monitoring_ranges_open_node_exporter_before_the_host_drop(data):
    data["fabric"]["monitoring_ranges"] = ["192.0.2.64/27", "2001:db8:cc::/48"]
    fab = build(data)
    for host in ("spine1", "tor-r01", "hv-r01-01", "gw-01"):
        v4 = firewall.filter_lines(fab, fab.hosts[host])
        rule = "-A OCS-HOST -s 192.0.2.64/27 -p tcp -m tcp --dport 9100 -m comment --comment ocs-monitoring -j ACCEPT"
        assert v4.count(rule) == 1 and v4.index(rule) < v4.index(HOST_DROP), host
        v6 = firewall.ipv6_lines(fab, fab.hosts[host])
        assert ("-A OCS-HOST -s 2001:db8:cc::/48 -p tcp -m tcp --dport 9100 -m comment --comment ocs-monitoring "
                "-j ACCEPT") in v6
    del data["fabric"]["monitoring_ranges"]
    fab = build(data)
    assert not [ln for ln in firewall.filter_lines(fab, fab.hosts["spine1"]) if "ocs-monitoring" in ln]


@pytest.mark.parametrize("value,message", [
    (["198.19.1.0/26"], "ocs_fabric.monitoring_ranges[0] 198.19.1.0/26 overlaps rack r01 instance subnet "
                        "198.19.1.0/24 (tenants would be monitoring)"),
    (["192.0.2.1/24"], "ocs_fabric.monitoring_ranges[0] 192.0.2.1/24 has host bits set (the network is 192.0.2.0/24)"),
    ("192.0.2.0/24", "ocs_fabric.monitoring_ranges"),
])
def test_monitoring_ranges_are_validated_like_management_ranges(data, value, message):
    data["fabric"]["monitoring_ranges"] = value
    assert any(message in p for p in problems_of(data)), problems_of(data)


# --- tenant limits (issue 18): DHCP chaddr, the connection cap, the conntrack table ------------------


def test_chaddr_u32_checks_htype_hlen_and_the_six_bytes():
    assert firewall.chaddr_u32("02:00:00:00:01:0a") == U32 % "10a"
    # htype 1 / hlen 6 at BOOTP offset 1-2 (UDP offset 9-10), chaddr at 28-33 (UDP offset 36-41)
    assert firewall.chaddr_u32("fe:dc:ba:98:76:54") == (
        '"0x0>>0x16&0x3c@0x8>>0x8&0xffff=0x106&&0x0>>0x16&0x3c@0x24=0xfedcba98&&0x0>>0x16&0x3c@0x28>>0x10=0x7654"')


def test_every_dhcp_client_packet_goes_through_the_chaddr_check(data):
    """Broadcast (from 0.0.0.0) and unicast renew/release (from the fixed IP) alike: the jump to
    OCS-DHCP-MAC comes first, before the 0.0.0.0 accept and before anti-spoofing."""
    fab = build(data)
    lines = firewall.filter_lines(fab, fab.hosts["hv-r01-01"])
    inputs = [ln for ln in lines if ln.startswith("-A OCS-INPUT -i tap+") or ln.startswith("-A OCS-INPUT -s")]
    assert inputs[0] == INPUT[0] and " -s " not in inputs[0]
    assert inputs.index(INPUT[1]) < inputs.index("-A OCS-INPUT -i tap+ -j OCS-ANTISPOOF")
    dhcp = [ln for ln in lines if ln.startswith("-A OCS-DHCP-MAC")]
    assert all("-j RETURN" in ln for ln in dhcp[:-1]) and dhcp[-1].endswith("ocs-dhcp-spoof -j DROP")
    assert not [ln for ln in dhcp if "ACCEPT" in ln]  # a pass returns: the 0.0.0.0 accept or anti-spoofing decide


def test_conn_limit_default_fabric_wide_and_per_instance(data):
    data["fabric"]["conn_limit"] = 500
    data["hostvars"]["hv-r01-01"]["ocs_instances"][1]["conn_limit"] = 20  # vm-b
    data["hostvars"]["hv-r01-01"]["ocs_instances"][0]["conn_limit"] = 500  # vm-a: the default, no rule of its own
    fab = build(data)
    host = fab.hosts["hv-r01-01"]
    assert [firewall.conn_limit(fab, i) for i in host.instances] == [500, 20]
    assert firewall.connlimit_rules(fab, host) == [
        CAP % ("-s 198.19.1.11/32 -i tap-b ", 20),
        "-A OCS-CONNLIMIT -s 198.19.1.11/32 -i tap-b -m comment --comment vm-b -j RETURN",
        CAP % ("", 500)]
    assert firewall.connlimit_rules(fab, fab.hosts["hv-r02-01"]) == [CAP % ("", 500)]
    lines = firewall.filter_lines(fab, host)
    # after anti-spoofing and OCS-TENANT (FORWARD), after the replies and DHCP accepts (INPUT)
    fwd = [ln for ln in lines if ln.startswith("-A OCS-FORWARD")]
    assert fwd[-1] == "-A OCS-FORWARD -i tap+ -m conntrack --ctstate NEW -j OCS-CONNLIMIT"
    assert lines.index(INPUT[4]) < lines.index(INPUT[5]) < lines.index(INPUT[6])


def test_conn_limit_from_an_instances_csv_file(data):
    from ansible_collections.ocs.l3.plugins.module_utils.inventory import parse_instances
    for hv in data["hostvars"].values():
        hv.pop("ocs_instances", None)
    data["instances_records"] = parse_instances(
        "hypervisor,name,mac,ip,conn_limit\nhv-r01-01,vm-x,02:00:00:00:09:01,198.19.1.40,300\n"
        "hv-r01-01,vm-y,02:00:00:00:09:02,198.19.1.41,\nhv-r01-01,vm-z,02:00:00:00:09:03,198.19.1.42,0\n",
        "instances.csv", True)
    assert problems_of(data) == ["instances.csv:4 (vm-z on hv-r01-01).conn_limit 0 must be an integer from 1 to "
                                 "1048576 (tracked connections per instance)"]
    data["instances_records"].pop()
    fab = build(data)
    assert [(i.name, i.conn_limit) for i in fab.hosts["hv-r01-01"].instances] == [("vm-x", 300), ("vm-y", None)]


def test_conntrack_max_follows_the_instances_caps(data):
    fab = build(data)
    assert firewall.conntrack_max(fab, fab.hosts["hv-r01-01"]) == conntrack.CONNTRACK_FLOOR  # 65536 + 2 * 8192
    assert firewall.conntrack_max(fab, fab.hosts["tor-r01"]) is None
    data["fabric"]["conn_limit"] = 200000
    data["hostvars"]["hv-r01-01"]["ocs_instances"][1]["conn_limit"] = 1000
    fab = build(data)
    assert firewall.conntrack_max(fab, fab.hosts["hv-r01-01"]) == 65536 + 200000 + 1000
    exp = expected.expected(fab, fab.hosts["hv-r01-01"])["conntrack"]
    assert exp == {"max": 266536, "buckets": 131072}
    assert expected.expected(fab, fab.hosts["spine1"])["conntrack"] is None


def test_conntrack_buckets_are_a_power_of_two():
    assert conntrack.buckets_for(262144) == 65536
    assert conntrack.buckets_for(262145) == 131072
    assert conntrack.buckets_for(1) == 1
    assert conntrack.wanted(300000) == {"nf_conntrack_max": 300000, "nf_conntrack_buckets": 131072}
    assert conntrack.wanted(300000, 1000)["nf_conntrack_buckets"] == 1000
    for bad in (0, -1, True, "5"):
        with pytest.raises(ValueError, match="nf_conntrack_max must be a positive integer"):
            conntrack.wanted(bad)


def _proc(tmp_path, values, mode=0o644):
    base = tmp_path / "sys" / "net" / "netfilter"
    base.mkdir(parents=True)
    for key, value in values.items():
        (base / key).write_text("%d\n" % value)
        (base / key).chmod(mode)
    return str(tmp_path)


def test_conntrack_plan_sets_the_max_and_only_raises_the_buckets(tmp_path):
    proc = _proc(tmp_path, {"nf_conntrack_max": 262144, "nf_conntrack_buckets": 262144})
    state = conntrack.read(proc)
    assert state["nf_conntrack_max"] == {"value": 262144, "writable": True}
    assert conntrack.plan(state, conntrack.wanted(300000)) == [("nf_conntrack_max", 262144, 300000)]
    assert conntrack.plan(state, conntrack.wanted(200000)) == [("nf_conntrack_max", 262144, 200000)]  # exact
    assert conntrack.plan(state, conntrack.wanted(262144)) == []
    assert conntrack.plan(state, conntrack.wanted(4000000)) == [("nf_conntrack_max", 262144, 4000000),
                                                                ("nf_conntrack_buckets", 262144, 1048576)]
    conntrack.apply(conntrack.plan(state, conntrack.wanted(300000)), proc)
    assert conntrack.read(proc)["nf_conntrack_max"]["value"] == 300000
    assert conntrack.sysctl_conf(conntrack.wanted(300000)).splitlines()[1:] == [
        "net.netfilter.nf_conntrack_max = 300000", "net.netfilter.nf_conntrack_buckets = 131072"]


def test_conntrack_read_only_is_checked_not_set(tmp_path):
    """Where the kernel shows it 0444 (a non-init network namespace) nothing is writable, even for
    root; a table at least as large as wanted is no shortfall."""
    proc = _proc(tmp_path, {"nf_conntrack_max": 262144, "nf_conntrack_buckets": 65536}, mode=0o444)
    state = conntrack.read(proc)
    if os.geteuid() != 0:  # root ignores a plain file's mode (not /proc/sys's): the kernel case is integration's
        assert not state["nf_conntrack_max"]["writable"]
    assert conntrack.shortfall(state, conntrack.wanted(262144)) == []
    assert conntrack.shortfall(state, conntrack.wanted(300000)) == [("nf_conntrack_max", 262144, 300000),
                                                                    ("nf_conntrack_buckets", 65536, 131072)]
    missing = conntrack.read(str(tmp_path / "none"))
    assert missing["nf_conntrack_max"] == {"value": None, "writable": False}
    assert conntrack.shortfall(missing, conntrack.wanted(1))[0] == ("nf_conntrack_max", None, 1)


class _Module:
    def __init__(self, check_mode=False):
        self.check_mode, self.warnings = check_mode, []

    def warn(self, msg):
        self.warnings.append(msg)

    def fail_json(self, **kw):
        raise RuntimeError(kw["msg"])


def test_conntrack_converge_sets_keeps_for_boot_and_changes_nothing_the_second_time(tmp_path):
    """What ocs_conntrack and ocs_iptables_chains' conntrack_table run: set, persist (sysctl.d and
    modules-load.d, written whole when they differ), idempotent; check mode writes nothing."""
    proc = _proc(tmp_path, {"nf_conntrack_max": 262144, "nf_conntrack_buckets": 65536})
    files = dict(sysctl_file=str(tmp_path / "sysctl.d" / "61.conf"), modules_file=str(tmp_path / "modules" / "c.conf"))
    would = conntrack.converge(_Module(check_mode=True), 300000, proc=proc, **files)
    assert would["changed"] and would["set"] == ["nf_conntrack_max 262144 -> 300000",
                                                 "nf_conntrack_buckets 65536 -> 131072"]
    assert would["persisted"] == [files["sysctl_file"], files["modules_file"]]
    assert conntrack.read(proc)["nf_conntrack_max"]["value"] == 262144 and not os.path.exists(files["sysctl_file"])
    done = conntrack.converge(_Module(), 300000, proc=proc, **files)
    assert done["changed"] and done["set"] == would["set"] and done["persisted"] == would["persisted"]
    assert conntrack.read(proc)["nf_conntrack_max"]["value"] == 300000
    with open(files["sysctl_file"]) as fh:
        assert fh.read() == done["sysctl_conf"]
    with open(files["modules_file"]) as fh:
        assert fh.read() == "nf_conntrack\n"
    again = conntrack.converge(_Module(), 300000, proc=proc, **files)
    assert not again["changed"] and again["set"] == [] and again["persisted"] == []


def test_conntrack_converge_only_checks_where_it_may_not_set(tmp_path):
    proc = _proc(tmp_path, {"nf_conntrack_max": 262144, "nf_conntrack_buckets": 65536})
    module = _Module()
    out = conntrack.converge(module, 300000, manage=False, proc=proc, sysctl_file=str(tmp_path / "s.conf"))
    assert not out["changed"] and not out["settable"] and out["persisted"] == []
    assert out["short"] == ["nf_conntrack_max 262144 < 300000", "nf_conntrack_buckets 65536 < 131072"]
    assert "ocs_firewall_conntrack_manage is false" in module.warnings[0] and not (tmp_path / "s.conf").exists()
    with pytest.raises(RuntimeError, match="conntrack table smaller than wanted"):
        conntrack.converge(_Module(), 300000, manage=False, readonly="fail", proc=proc)
    with pytest.raises(RuntimeError, match="nf_conntrack_max must be a positive integer"):
        conntrack.converge(_Module(), 0, proc=proc)


# --- IPv6 guards and inbound policy (issue 20, dual stack) -----------------------------------

DECLARE6 = [":%s - [0:0]" % c for c in ("OCS-INPUT", "OCS-FORWARD", "OCS-HOST", "OCS-ANTISPOOF", "OCS-GUARD6",
                                        "OCS-NA6", "OCS-INBOUND6", "OCS-TENANT", "OCS-CONNLIMIT")]
ICMP6 = "-p ipv6-icmp -m icmp6 --icmpv6-type %d"
INPUT6 = [
    "-A OCS-INPUT -i tap+ -j OCS-ANTISPOOF",
    "-A OCS-INPUT -i tap+ -j OCS-GUARD6",
    "-A OCS-INPUT -i tap+ -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment ocs-replies -j ACCEPT",
    "-A OCS-INPUT -i tap+ %s -m comment --comment ocs-packet-too-big -j ACCEPT" % (ICMP6 % 2),
] + ["-A OCS-INPUT -i tap+ %s -m hl --hl-eq 255 -m comment --comment ocs-nd -j ACCEPT" % (ICMP6 % t)
     for t in (133, 135, 136)] + [
    "-A OCS-INPUT -i tap+ -p udp -m udp --sport 546 --dport 547 -m comment --comment ocs-dhcp6 -j ACCEPT",
    "-A OCS-INPUT -i tap+ -m conntrack --ctstate NEW -j OCS-CONNLIMIT",
    "-A OCS-INPUT -i tap+ %s -m comment --comment ocs-ping -j ACCEPT" % (ICMP6 % 128),
    "-A OCS-INPUT -i tap+ -m comment --comment ocs-protect-host -j DROP",
]
FORWARD6 = [
    "-A OCS-FORWARD -i tap+ -j OCS-ANTISPOOF",
    "-A OCS-FORWARD -i tap+ -j OCS-GUARD6",
    "-A OCS-FORWARD -i tap+ -j OCS-TENANT",
    "-A OCS-FORWARD -i tap+ -m conntrack --ctstate NEW -j OCS-CONNLIMIT",
    "-A OCS-FORWARD -o tap+ -j OCS-INBOUND6",
]
IP6_A, IP6_B = "2001:db8:0:1::c613:10a", "2001:db8:0:1::b"  # vm-a derived, vm-b its own (fabric_data.dual_stack)


def _spoof6(name, tap, mac, ip6):
    mac = "-m mac --mac-source %s" % mac
    note = "-m comment --comment %s -j RETURN" % name
    return ["-A OCS-ANTISPOOF -s %s/128 -i %s %s %s" % (ip6, tap, mac, note),
            "-A OCS-ANTISPOOF -s fe80::/10 -i %s %s %s" % (tap, mac, note),
            "-A OCS-ANTISPOOF -s ::/128 -i %s -p ipv6-icmp %s -m icmp6 --icmpv6-type 135 %s" % (tap, mac, note),
            "-A OCS-ANTISPOOF -s ::/128 -i %s -p ipv6-icmp %s -m icmp6 --icmpv6-type 143 %s" % (tap, mac, note)]


GUARD6 = [
    "-A OCS-GUARD6 %s -m comment --comment ocs-ra6 -j DROP" % (ICMP6 % 134),
    "-A OCS-GUARD6 %s -m comment --comment ocs-redirect6 -j DROP" % (ICMP6 % 137),
    "-A OCS-GUARD6 %s -m comment --comment ocs-renumbering6 -j DROP" % (ICMP6 % 138),
    "-A OCS-GUARD6 -p udp -m udp --sport 547 -m comment --comment ocs-dhcp6-server -j DROP",
    "-A OCS-GUARD6 %s -j OCS-NA6" % (ICMP6 % 136),
]
NA_LL = ('-A OCS-NA6 -m u32 --u32 "0x4>>0x8&0xff=0x3a&&0x30>>0x16=0x3fa" -m comment --comment ocs-na-link-local '
         '-j RETURN')
INBOUND6_HEAD = [
    "-A OCS-INBOUND6 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment ocs-replies -j RETURN",
    "-A OCS-INBOUND6 %s -m comment --comment ocs-packet-too-big -j RETURN" % (ICMP6 % 2),
    "-A OCS-INBOUND6 %s -m comment --comment ocs-ping -j RETURN" % (ICMP6 % 128),
    "-A OCS-INBOUND6 -s 2001:db8::/32 -m comment --comment ocs-internal -j RETURN",
]
INBOUND6_DROP = "-A OCS-INBOUND6 -m comment --comment ocs-inbound6 -j DROP"
TENANT6 = [  # the hosts' ocs_address6 (fabric_data.dual_stack: spine1 and tor-r01), as IPv4's OCS-TENANT
    "-A OCS-TENANT -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment ocs-replies -j RETURN",
    "-A OCS-TENANT -d 2001:db8:ffff::1/128 -m comment --comment ocs-infra -j DROP",
    "-A OCS-TENANT -d 2001:db8:ffff::11/128 -m comment --comment ocs-infra -j DROP"]
CAP6 = ("-A OCS-CONNLIMIT %s-m connlimit --connlimit-above %d --connlimit-mask 128 --connlimit-saddr "
        "-m comment --comment ocs-connlimit -j REJECT --reject-with icmp6-adm-prohibited")


def _dual(data):
    from fabric_data import dual_stack
    return build(dual_stack(data))


def _inbound(lines):
    return [ln for ln in lines if ln.startswith("-A OCS-INBOUND6 -d ")]


def test_ipv6_guards_of_a_dual_stack_hypervisor(data):
    fab = _dual(data)
    lines = firewall.ipv6_lines(fab, fab.hosts["hv-r01-01"])
    end = lines.index("-A OCS-INPUT -j OCS-HOST")
    assert lines[:end] == ["*filter"] + DECLARE6 + INPUT6 + FORWARD6 + (
        _spoof6("vm-a", TAP_A, "02:00:00:00:01:0a", IP6_A) + _spoof6("vm-b", "tap-b", "02:00:00:00:01:0b", IP6_B)
        + ["-A OCS-ANTISPOOF -m comment --comment ocs-spoof6 -j DROP"]) + GUARD6 + [
        NA_LL,  # sorted by ip6: vm-b (::b) before vm-a (::c613:10a)
        '-A OCS-NA6 -i tap-b -m u32 --u32 "0x4>>0x8&0xff=0x3a&&0x30=0x20010db8&&0x34=0x1&&0x38=0x0&&0x3c=0xb" '
        '-m comment --comment vm-b -j RETURN',
        '-A OCS-NA6 -i %s -m u32 --u32 "0x4>>0x8&0xff=0x3a&&0x30=0x20010db8&&0x34=0x1&&0x38=0x0&&0x3c=0xc613010a" '
        '-m comment --comment vm-a -j RETURN' % TAP_A,
        "-A OCS-NA6 -m comment --comment ocs-na-spoof6 -j DROP"] + INBOUND6_HEAD + [
        # vm-a has a floating IP (the default inbound6 floating): reachable; vm-b only from inside the fabric
        "-A OCS-INBOUND6 -d %s/128 -o %s -m comment --comment vm-a -j RETURN" % (IP6_A, TAP_A),
        INBOUND6_DROP] + TENANT6 + [CAP6 % ("", 8192)]
    assert lines[end:end + 2] == ["-A OCS-INPUT -j OCS-HOST", "-A OCS-HOST -i lo -j ACCEPT"]
    assert lines[-5:] == ["COMMIT"] + RAW_EMPTY


def test_target_u32_reads_the_nd_target_words():
    from ansible_collections.ocs.l3.plugins.module_utils.addr import aton6
    assert firewall.target_u32(aton6("2001:db8:0:1::c613:10a")) == (
        '"0x4>>0x8&0xff=0x3a&&0x30=0x20010db8&&0x34=0x1&&0x38=0x0&&0x3c=0xc613010a"')
    assert firewall.target_u32(aton6("fd00:1:2:3:4:5:6:7")) == (
        '"0x4>>0x8&0xff=0x3a&&0x30=0xfd000001&&0x34=0x20003&&0x38=0x40005&&0x3c=0x60007"')
    assert firewall.LINK_LOCAL_TARGET_U32 == '"0x4>>0x8&0xff=0x3a&&0x30>>0x16=0x3fa"'
    for ll in ("fe80::1", "febf:ffff::"):  # the top 10 bits of fe80::/10, as the kernel reads the word
        assert aton6(ll) >> (128 - 10) == 0x3fa
    assert aton6("fec0::1") >> (128 - 10) != 0x3fa


def test_an_instance_without_ip6_gets_no_ipv6(data):
    from fabric_data import dual_stack
    dual_stack(data)
    data["racks"]["r01"]["instance_ip6_from_ip4"] = False  # vm-a has no ip6 now, vm-b keeps its own
    fab = build(data)
    lines = firewall.ipv6_lines(fab, fab.hosts["hv-r01-01"])
    spoof = [ln for ln in lines if ln.startswith("-A OCS-ANTISPOOF")]
    assert spoof == ["-A OCS-ANTISPOOF -i %s -m comment --comment ocs-no-ipv6 -j DROP" % TAP_A] + _spoof6(
        "vm-b", "tap-b", "02:00:00:00:01:0b", IP6_B) + ["-A OCS-ANTISPOOF -m comment --comment ocs-spoof6 -j DROP"]
    assert not [ln for ln in lines if TAP_A in ln and not ln.startswith("-A OCS-ANTISPOOF")]
    assert _inbound(lines) == []  # vm-a's floating IP opens nothing: it has no IPv6 address


@pytest.mark.parametrize("fabric,own,opened", [
    (None, {}, ["vm-a"]),  # floating, the default: the instances with a floating IP
    ("floating", {"vm-b": "open"}, ["vm-b", "vm-a"]),
    ("floating", {"vm-a": "closed"}, []),
    ("open", {}, ["vm-b", "vm-a"]),
    ("open", {"vm-b": "closed"}, ["vm-a"]),
    ("closed", {}, []),
    ("closed", {"vm-b": "open"}, ["vm-b"]),
])
def test_inbound6_fabric_setting_and_instance_override(data, fabric, own, opened):
    from fabric_data import dual_stack
    dual_stack(data)
    if fabric is not None:
        data["fabric"]["inbound6"] = fabric
    for rec in data["hostvars"]["hv-r01-01"]["ocs_instances"]:
        if rec["name"] in own:
            rec["inbound6"] = own[rec["name"]]
    fab = build(data)
    lines = firewall.ipv6_lines(fab, fab.hosts["hv-r01-01"])
    taps = {"vm-a": (IP6_A, TAP_A), "vm-b": (IP6_B, "tap-b")}
    assert _inbound(lines) == ["-A OCS-INBOUND6 -d %s/128 -o %s -m comment --comment %s -j RETURN"
                               % (taps[n] + (n,)) for n in opened]
    start = lines.index(INBOUND6_HEAD[0])
    assert lines[start:start + 4] == INBOUND6_HEAD and lines[start + 4 + len(opened)] == INBOUND6_DROP
    assert [firewall.open_inbound6(fab, i) for i in fab.hosts["hv-r01-01"].instances] == [
        n in opened for n in ("vm-a", "vm-b")]


def test_ipv6_connection_caps_per_source_128(data):
    from fabric_data import dual_stack
    dual_stack(data)
    data["fabric"]["conn_limit"] = 500
    data["hostvars"]["hv-r01-01"]["ocs_instances"][1]["conn_limit"] = 40  # vm-b
    fab = build(data)
    lines = firewall.ipv6_lines(fab, fab.hosts["hv-r01-01"])
    assert [ln for ln in lines if ln.startswith("-A OCS-CONNLIMIT")] == [
        CAP6 % ("-s %s/128 -i tap-b " % IP6_B, 40),
        "-A OCS-CONNLIMIT -s %s/128 -i tap-b -m comment --comment vm-b -j RETURN" % IP6_B,
        CAP6 % ("", 500)]
    v4 = firewall.connlimit_rules(fab, fab.hosts["hv-r01-01"])  # the IPv4 chain is unchanged
    assert v4[0] == CAP % ("-s 198.19.1.11/32 -i tap-b ", 40)
    # connlimit counts each family apart: an instance with an ip6 may hold its cap twice
    assert firewall.conntrack_max(fab, fab.hosts["hv-r01-01"]) == conntrack.sized_max([500 * 2, 40 * 2])
    assert firewall.conntrack_max(fab, fab.hosts["hv-r01-02"]) == conntrack.sized_max([500 * 2])


def test_dual_stack_changes_no_ipv4_file_and_no_router_file(data):
    v4 = build(copy.deepcopy(data))
    fab = _dual(data)
    for name, host in fab.hosts.items():
        assert firewall.filter_lines(fab, host) == firewall.filter_lines(v4, v4.hosts[name])
        if host.role != "hypervisor":
            assert firewall.ipv6_lines(fab, host) == firewall.ipv6_lines(v4, v4.hosts[name])
    assert firewall.ipv6_lines(fab) == firewall.ipv6_lines(v4)  # no host: the IPv4-only drop


def test_every_ipv6_entry_rule_matches_instance_taps(data):
    """The IPv6 tap rules never touch the host's other traffic: every rule of OCS-INPUT before the
    jump to OCS-HOST matches -i vnet+, every rule of OCS-FORWARD -i or -o vnet+."""
    data["fabric"]["instance_ifname_prefix"] = "vnet"
    for hv in data["hostvars"].values():
        for inst in hv.get("ocs_instances", []):
            inst.pop("interface", None)
    fab = _dual(data)
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        lines = firewall.ipv6_lines(fab, fab.hosts[name])
        entry = [ln for ln in lines if ln.split()[:2] in (["-A", "OCS-INPUT"], ["-A", "OCS-FORWARD"])
                 and ln != "-A OCS-INPUT -j OCS-HOST"]
        assert len(entry) == len(INPUT6) + len(FORWARD6)
        assert all(" -i vnet+ " in ln or " -o vnet+ " in ln for ln in entry), entry
        assert all(" -i vnet" in ln for ln in lines if "--mac-source" in ln or "--comment vm-" in ln
                   and not ln.startswith("-A OCS-INBOUND6"))


def test_ipv6_tenant_chain_keeps_instances_off_the_hosts_ocs_address6(data):
    """IPv6 parity with OCS-TENANT: the hosts' ocs_address6 are the IPv6 infrastructure (collapsed);
    an IPv6 instance service on one passes the tenant chain and the owning host's OCS-HOST accepts
    it from the IPv6 instance subnets (as served_services does for IPv4)."""
    from fabric_data import dual_stack
    dual_stack(data)
    data["hostvars"]["tor-r02"]["ocs_address6"] = "2001:db8:ffff::10"  # next to tor-r01's ::11: one /127
    data["fabric"]["instance_services"] = [{"address": "2001:db8:ffff::1", "proto": "udp", "port": 123},
                                           {"address": "2001:db8:5::1", "proto": "tcp", "port": 80}]  # not a host's
    fab = build(data)
    assert [n.text for n in fab.infrastructure6] == ["2001:db8:ffff::1/128", "2001:db8:ffff::10/127"]
    assert fab.instance_services6 == [(aton6("2001:db8:5::1"), "tcp", 80), (aton6("2001:db8:ffff::1"), "udp", 123)]
    tenant = [ln for ln in firewall.ipv6_lines(fab, fab.hosts["hv-r02-01"]) if ln.startswith("-A OCS-TENANT")]
    assert tenant == [TENANT6[0],
                      "-A OCS-TENANT -d 2001:db8:ffff::1/128 -p udp -m udp --dport 123 "
                      "-m comment --comment ocs-instance-service -j RETURN",
                      TENANT6[1], "-A OCS-TENANT -d 2001:db8:ffff::10/127 -m comment --comment ocs-infra -j DROP"]
    spine = firewall.ipv6_lines(fab, fab.hosts["spine1"])
    served = [ln for ln in spine if "ocs-instance-service" in ln]
    assert served == ["-A OCS-HOST -s %s -d 2001:db8:ffff::1/128 -p udp -m udp --dport 123 "
                      "-m comment --comment ocs-instance-service -j ACCEPT" % net
                      for net in ("2001:db8:0:1::/64", "2001:db8:0:2::/64")]
    assert spine.index(served[-1]) < spine.index("-A OCS-HOST -m comment --comment ocs-host-drop -j DROP")
    assert not [ln for ln in firewall.ipv6_lines(fab, fab.hosts["tor-r01"]) if "ocs-instance-service" in ln]
    v4 = [ln for ln in firewall.filter_lines(fab, fab.hosts["hv-r02-01"]) if ln.startswith("-A OCS-TENANT")]
    assert v4 and not [ln for ln in v4 if ":" in ln]  # the IPv4 chain holds no IPv6 service


def test_ipv6_tenant_chain_without_any_ocs_address6(data):
    from fabric_data import dual_stack
    dual_stack(data)
    for host in ("spine1", "tor-r01"):
        del data["hostvars"][host]["ocs_address6"]
    fab = build(data)
    assert fab.infrastructure6 == []
    assert [ln for ln in firewall.ipv6_lines(fab, fab.hosts["hv-r01-01"]) if ln.startswith("-A OCS-TENANT")] == [
        TENANT6[0]]
