"""Tenant-isolation rule computation (table filter) and its planning by ocs_iptables_chains."""

import os


from fabric_data import ROOT
from ansible_collections.ocs.l3.plugins.module_utils import constants, dhcp, firewall
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils import iptables as chains_mod


DECLARE = [":%s - [0:0]" % c for c in firewall.CHAINS]
JUMPS = [{"table": t, "chain": c, "target": o, "first": True} for t, c, o in constants.FILTER_JUMPS]
INPUT = [
    "-A OCS-INPUT -s 0.0.0.0/32 -i tap+ -p udp -m udp --sport 68 --dport 67 -m comment --comment ocs-dhcp "
    "-j OCS-DHCP-MAC",
    "-A OCS-INPUT -i tap+ -j OCS-ANTISPOOF",
    "-A OCS-INPUT -i tap+ -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment ocs-replies -j ACCEPT",
    "-A OCS-INPUT -i tap+ -p udp -m udp --sport 68 --dport 67 -m comment --comment ocs-dhcp -j ACCEPT",
    "-A OCS-INPUT -i tap+ -p icmp -m icmp --icmp-type 8 -m comment --comment ocs-ping -j ACCEPT",
    "-A OCS-INPUT -i tap+ -p tcp -m conntrack --ctstate DNAT --ctorigdst 169.254.169.254/32 --ctorigdstport 80 "
    "-m comment --comment ocs-metadata -j ACCEPT",
    "-A OCS-INPUT -i tap+ -m comment --comment ocs-protect-host -j DROP",
]
TAP_A = "tap9f5f9ca7bee"  # default_ifname("vm-a", "tap")


def test_filter_rules_of_a_hypervisor(data):
    fab = build(data)
    assert firewall.hypervisor_lines(fab, fab.hosts["hv-r01-01"]) == ["*filter"] + DECLARE + INPUT + [
        "-A OCS-FORWARD -i tap+ -j OCS-ANTISPOOF",
        "-A OCS-ANTISPOOF -s 198.19.1.10/32 -i %s -m mac --mac-source 02:00:00:00:01:0a "
        "-m comment --comment vm-a -j RETURN" % TAP_A,
        "-A OCS-ANTISPOOF -s 198.19.1.11/32 -i tap-b -m mac --mac-source 02:00:00:00:01:0b "
        "-m comment --comment vm-b -j RETURN",
        "-A OCS-ANTISPOOF -m comment --comment ocs-spoof -j DROP",
        "-A OCS-DHCP-MAC -i %s -m mac --mac-source 02:00:00:00:01:0a -m comment --comment vm-a -j ACCEPT" % TAP_A,
        "-A OCS-DHCP-MAC -i tap-b -m mac --mac-source 02:00:00:00:01:0b -m comment --comment vm-b -j ACCEPT",
        "-A OCS-DHCP-MAC -m comment --comment ocs-spoof -j DROP",
        "COMMIT",
    ]


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
        lines = firewall.hypervisor_lines(fab, fab.hosts[name])
        entry = [ln for ln in lines if ln.split()[:2] in (["-A", "OCS-INPUT"], ["-A", "OCS-FORWARD"])]
        assert entry and all(" -i vnet+ " in ln for ln in entry), entry
        inner = {ln.split()[1] for ln in lines if ln.startswith("-A ") and ln.split()[1] not in
                 ("OCS-INPUT", "OCS-FORWARD")}
        assert inner == {"OCS-ANTISPOOF", "OCS-DHCP-MAC"}
        assert all(" -j %s" % c in " ".join(entry) for c in inner)
        assert not [ln for ln in lines if " -P " in ln or ln.startswith(("-I", "-D", "-F", "-X", "-P"))]
        for ln in lines:  # per-instance rules name a tap of this prefix
            if "--mac-source" in ln:
                assert " -i vnet" in ln
    assert firewall.ipv6_lines(fab) == [
        "*filter", ":OCS-INPUT - [0:0]", ":OCS-FORWARD - [0:0]",
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
    lines = firewall.hypervisor_lines(fab, fab.hosts["hv-r01-01"])
    rules = [ln for ln in lines if ln.startswith("-A ")]
    n = len(fab.hosts["hv-r01-01"].instances)
    assert len(rules) == 2 * n + firewall.FIXED_RULES
    assert n == len(insts) and len(rules) == 2 * len(insts) + 10
    assert len(firewall.hypervisor_lines(fab, fab.hosts["hv-r02-01"])) < 30  # other hosts: only their own


def test_rules_are_sorted_and_stable(data):
    fab = build(data)
    lines = firewall.hypervisor_lines(fab, fab.hosts["hv-r01-01"])
    data["hostvars"]["hv-r01-01"]["ocs_instances"].reverse()
    fab2 = build(data)
    assert firewall.hypervisor_lines(fab2, fab2.hosts["hv-r01-01"]) == lines


def test_gateway_mode_applies_the_same_isolation(data):
    fab = build(data)
    host_mode = {h: firewall.hypervisor_lines(fab, fab.hosts[h]) for h in ("hv-r01-01", "hv-r02-01")}
    data["fabric"]["nat_mode"] = "gateway"
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        data["hostvars"][name].pop("ocs_public_address")
    fab = build(data)
    for host, lines in host_mode.items():
        assert firewall.hypervisor_lines(fab, fab.hosts[host]) == lines


def test_no_metadata_no_metadata_rule(data):
    del data["fabric"]["metadata"]
    fab = build(data)
    lines = firewall.hypervisor_lines(fab, fab.hosts["hv-r01-01"])
    assert not [ln for ln in lines if "ocs-metadata" in ln]
    forward = lines.index("-A OCS-FORWARD -i tap+ -j OCS-ANTISPOOF")
    assert lines[forward - 1] == INPUT[-1]  # OCS-INPUT still ends with the DROP


def test_metadata_port_follows_the_fabric(data):
    data["fabric"]["metadata"] = {"ip": "169.254.169.254", "port": 8080, "target": "198.18.0.100"}
    fab = build(data)
    lines = firewall.hypervisor_lines(fab, fab.hosts["hv-r01-01"])
    assert [ln for ln in lines if "ocs-metadata" in ln] == [
        "-A OCS-INPUT -i tap+ -p tcp -m conntrack --ctstate DNAT --ctorigdst 169.254.169.254/32 "
        "--ctorigdstport 8080 -m comment --comment ocs-metadata -j ACCEPT"]


def test_hypervisor_without_instances_drops_everything_from_taps(data):
    data["hostvars"]["hv-r02-01"]["ocs_instances"] = []
    fab = build(data)
    lines = firewall.hypervisor_lines(fab, fab.hosts["hv-r02-01"])
    assert [ln for ln in lines if ln.startswith("-A OCS-ANTISPOOF")] == [
        "-A OCS-ANTISPOOF -m comment --comment ocs-spoof -j DROP"]


def test_artifacts_only_for_hypervisors(data):
    fab = build(data)
    arts = [a for a in host_artifacts(fab, fab.hosts["hv-r01-02"]) if a.role == "ocs_firewall"]
    assert [(a.path, a.kind, a.template) for a in arts] == [
        (firewall.FILTER_PATH, "iptables", "etc/ocs-l3/iptables-filter.rules.j2"),
        (firewall.FILTER6_PATH, "ip6tables", "etc/ocs-l3/ip6tables-filter.rules.j2")]
    assert arts[0].vars["_ocs_firewall_rules"].endswith("COMMIT\n")
    assert arts[1].vars["_ocs_firewall_rules6"].endswith("COMMIT\n")
    for art in arts:
        path = os.path.join(ROOT, "roles/ocs_firewall/templates", art.template)
        with open(path) as fh:
            assert fh.read().startswith("{{ ansible_managed | comment }}\n")
    for name in ("spine1", "tor-r01", "gw-01"):
        assert firewall.artifacts(fab, fab.hosts[name]) == []


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
    text = "\n".join(firewall.hypervisor_lines(fab, fab.hosts["hv-r01-01"])) + "\n"
    cand = chains_mod.parse_restore(text)
    assert chains_mod.check_candidate(cand, "OCS-", JUMPS) == []
    rules = cand["filter"]["rules"]
    foreign = ["-A INPUT -p tcp -m tcp --dport 22 -j ACCEPT", "-A FORWARD -j DOCKER-USER",
               "-A DOCKER-USER -j RETURN"]
    first = chains_mod.plan(cand, {"filter": _save(foreign)}, _save(rules), JUMPS)
    tx = first["transaction"].splitlines()
    assert tx[0] == "*filter" and tx[1:1 + len(DECLARE)] == DECLARE and tx[-1] == "COMMIT"
    assert first["jumps_fixed"] == ["-I INPUT 1 -j OCS-INPUT", "-I FORWARD 1 -j OCS-FORWARD"]
    assert first["conntrack"] == [] and not [ln for ln in tx if "DOCKER" in ln or "dport 22 -j ACCEPT" in ln]
    assert not [ln for ln in tx if ln.startswith((":INPUT", ":FORWARD", "-P"))]  # policies never set
    jumps = ["-A INPUT -j OCS-INPUT", "-A FORWARD -j OCS-FORWARD"]
    again = chains_mod.plan(cand, {"filter": _save(jumps + foreign + rules)}, _save(rules), JUMPS)
    assert again["transaction"] == "" and again["tables"] == []
    # a jump below someone's ACCEPT is moved to the top (twice there: both copies go)
    below = foreign[:1] + jumps[:1] + jumps + foreign[1:]
    moved = chains_mod.plan(cand, {"filter": _save(below + rules)}, _save(rules), JUMPS)
    assert moved["jumps_fixed"] == ["-D INPUT -j OCS-INPUT", "-D INPUT -j OCS-INPUT", "-I INPUT 1 -j OCS-INPUT"]
    assert moved["tables"] == []
    # without "first" (the NAT jumps) an existing jump keeps its place
    keep = [dict(j, first=False) for j in JUMPS]
    assert chains_mod.plan(cand, {"filter": _save(foreign[:1] + jumps + foreign[1:] + rules)}, _save(rules),
                           keep)["transaction"] == ""
