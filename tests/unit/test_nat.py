"""NAT rule computation and the ocs_iptables_chains planning step."""

import os

import pytest

from fabric_data import ROOT, gateway_mode
from ansible_collections.ocs.l3.plugins.module_utils import constants, nat
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils import iptables as chains_mod


DECLARE = [":%s - [0:0]" % c for c in nat.CHAINS]
META_DNAT = ("-A OCS-PREROUTING -d 169.254.169.254/32 -i tap+ -p tcp -m tcp --dport 80 "
             "-m comment --comment ocs-metadata -j DNAT --to-destination 198.18.0.100:8775")
META_KEEP = ("-A OCS-POSTROUTING -m conntrack --ctstate DNAT --ctorigdst 169.254.169.254/32 --ctorigdstport 80 "
             "-m comment --comment ocs-metadata -j RETURN")
JUMPS = [{"table": t, "chain": c, "target": o} for t, c, o in constants.NAT_JUMPS]


def test_host_nat_rules_of_a_hypervisor(data):
    fab = build(data)
    assert nat.hypervisor_lines(fab, fab.hosts["hv-r01-01"]) == ["*nat"] + DECLARE + [
        META_DNAT,
        "-A OCS-PREROUTING -j OCS-FLOAT-DNAT",
        "-A OCS-OUTPUT -j OCS-FLOAT-DNAT",
        META_KEEP,
        "-A OCS-POSTROUTING -m conntrack --ctstate DNAT --ctorigdst 203.0.113.0/24 "
        "-m comment --comment ocs-hairpin -j OCS-FLOAT-SNAT",
        "-A OCS-POSTROUTING -m conntrack --ctstate DNAT --ctorigdst 203.0.113.0/24 "
        "-m comment --comment ocs-hairpin -j OCS-SNAT",
        "-A OCS-POSTROUTING -d 198.18.0.0/15 -m comment --comment ocs-east-west -j RETURN",
        "-A OCS-POSTROUTING -j OCS-FLOAT-SNAT",
        "-A OCS-POSTROUTING -j OCS-SNAT",
        "-A OCS-FLOAT-DNAT -d 203.0.113.101/32 -m comment --comment vm-a -j DNAT --to-destination 198.19.1.10",
        "-A OCS-FLOAT-SNAT -s 198.19.1.10/32 -m comment --comment vm-a -j SNAT --to-source 203.0.113.101",
        "-A OCS-SNAT -s 198.19.1.11/32 -m comment --comment vm-b -j SNAT --to-source 203.0.113.11",
        "COMMIT",
    ]


def test_every_range_gets_its_exemption_and_hairpin(data):
    data["fabric"]["internal_ranges"] = ["198.18.0.0/15", "192.0.2.0/24"]
    data["fabric"]["floating_ranges"] = ["203.0.113.0/24", "198.51.100.0/24"]
    fab = build(data)
    lines = nat.hypervisor_lines(fab, fab.hosts["hv-r02-01"])
    assert [ln for ln in lines if "ocs-east-west" in ln] == [
        "-A OCS-POSTROUTING -d %s -m comment --comment ocs-east-west -j RETURN" % r
        for r in ("198.18.0.0/15", "192.0.2.0/24")]
    assert len([ln for ln in lines if "ocs-hairpin" in ln]) == 4
    # hairpin (DNATed to a floating IP) is decided before the east-west exemption
    first_hairpin = next(i for i, ln in enumerate(lines) if "ocs-hairpin" in ln)
    first_exempt = next(i for i, ln in enumerate(lines) if "ocs-east-west" in ln)
    assert first_hairpin < first_exempt
    assert not [ln for ln in lines if ln.startswith("-A OCS-FLOAT-")]  # vm-d has no floating IP
    assert "-A OCS-SNAT -s 198.19.2.13/32 -m comment --comment vm-d -j SNAT --to-source 203.0.113.21" in lines


def test_rules_are_sorted_by_fixed_ip(data):
    insts = data["hostvars"]["hv-r01-01"]["ocs_instances"]
    insts.reverse()
    fab = build(data)
    lines = nat.hypervisor_lines(fab, fab.hosts["hv-r01-01"])
    insts.reverse()
    assert lines == nat.hypervisor_lines(build(data), build(data).hosts["hv-r01-01"])


def test_gateway_mode_keeps_metadata_and_empties_the_rest(data):
    gateway_mode(data)
    for name in ("hv-r01-01", "hv-r01-02", "hv-r02-01"):
        data["hostvars"][name].pop("ocs_public_address")
    fab = build(data)
    assert nat.hypervisor_lines(fab, fab.hosts["hv-r01-01"]) == ["*nat"] + DECLARE + [
        META_DNAT, "-A OCS-PREROUTING -j OCS-FLOAT-DNAT", "-A OCS-OUTPUT -j OCS-FLOAT-DNAT", META_KEEP, "COMMIT"]


def test_no_metadata_no_metadata_rules(data):
    del data["fabric"]["metadata"]
    fab = build(data)
    assert not [ln for ln in nat.hypervisor_lines(fab, fab.hosts["hv-r01-01"]) if "169.254" in ln]


def test_metadata_port_and_prefix(data):
    data["fabric"]["metadata"] = {"ip": "169.254.169.254", "port": 8080, "target": "198.18.0.100"}
    data["fabric"]["instance_ifname_prefix"] = "vnet"
    for hv in data["hostvars"].values():
        for inst in hv.get("ocs_instances", []):
            inst.pop("interface", None)
    fab = build(data)
    lines = nat.hypervisor_lines(fab, fab.hosts["hv-r01-01"])
    assert "-i vnet+ -p tcp -m tcp --dport 8080" in lines[len(DECLARE) + 1]
    assert lines[len(DECLARE) + 1].endswith("--to-destination 198.18.0.100:8080")


def test_artifact_only_for_hypervisors(data):
    fab = build(data)
    arts = [a for a in host_artifacts(fab, fab.hosts["hv-r01-02"]) if a.role == "ocs_nat"]
    assert [(a.path, a.role, a.template) for a in arts] == [
        (nat.NAT_PATH, "ocs_nat", "etc/ocs-l3/iptables-nat.rules.j2")]
    assert arts[0].vars["_ocs_nat_rules"].endswith("COMMIT\n")
    assert os.path.isfile(os.path.join(ROOT, "roles/ocs_nat/templates", arts[0].template))
    for name in ("spine1", "tor-r01", "gw-01"):
        assert nat.artifacts(fab, fab.hosts[name]) == []


# --- ocs_iptables_chains: pure planning -------------------------------------

def _save(*rules, extra=()):
    """iptables-save-like text of table nat with counters."""
    chains = sorted({r.split()[1] for r in rules if r.split()[1].startswith("OCS-")} | set(nat.CHAINS))
    return "\n".join(["# Generated by iptables-save", "*nat", ":PREROUTING ACCEPT [12:720]",
                      ":OUTPUT ACCEPT [3:180]", ":POSTROUTING ACCEPT [4:240]", ":DOCKER - [0:0]"]
                     + [":%s - [0:0]" % c for c in chains] + list(extra) + list(rules) + ["COMMIT", ""])


CAND_TEXT = "\n".join(["# managed", "*nat"] + DECLARE + [
    "-A OCS-PREROUTING -j OCS-FLOAT-DNAT", "-A OCS-OUTPUT -j OCS-FLOAT-DNAT",
    "-A OCS-FLOAT-DNAT -d 203.0.113.101/32 -m comment --comment vm-a -j DNAT --to-destination 198.19.1.10",
    "-A OCS-FLOAT-SNAT -s 198.19.1.10/32 -m comment --comment vm-a -j SNAT --to-source 203.0.113.101",
    "-A OCS-SNAT -s 198.19.1.11/32 -m comment --comment vm-b -j SNAT --to-source 203.0.113.11",
    "COMMIT", ""])
CAND = chains_mod.parse_restore(CAND_TEXT)
RULES = CAND["nat"]["rules"]
JUMP_LINES = ["-A PREROUTING -j OCS-PREROUTING", "-A OUTPUT -j OCS-OUTPUT", "-A POSTROUTING -j OCS-POSTROUTING"]
FOREIGN = ["-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER", "-A DOCKER -i docker0 -j RETURN"]


def _plan(live_rules, live_extra=()):
    return chains_mod.plan(CAND, {"nat": _save(*live_rules, extra=live_extra)}, _save(*RULES), JUMPS)


def test_parse_restore_and_candidate_checks():
    assert CAND["nat"]["chains"] == list(nat.CHAINS) and len(RULES) == 5
    assert chains_mod.check_candidate(CAND, "OCS-", JUMPS) == []
    bad = chains_mod.parse_restore("*nat\n:DOCKER - [0:0]\n-A PREROUTING -j DOCKER\n-A OCS-X -j RETURN\nCOMMIT\n")
    problems = chains_mod.check_candidate(bad, "OCS-", JUMPS)
    assert "nat: chain DOCKER does not start with OCS-" in problems
    assert "nat: only -A into a declared chain is allowed: -A PREROUTING -j DOCKER" in problems
    assert "nat: only -A into a declared chain is allowed: -A OCS-X -j RETURN" in problems
    assert any(p.startswith("jump PREROUTING -> OCS-PREROUTING") for p in problems)
    with pytest.raises(ValueError):
        chains_mod.parse_restore("-A OCS-X -j RETURN\n")


def test_equal_chains_and_jumps_plan_nothing():
    res = _plan(JUMP_LINES + FOREIGN + RULES)
    assert res["transaction"] == "" and res["jumps_fixed"] == [] and res["conntrack"] == []
    assert res["before"] == res["after"]


def test_first_run_declares_fills_and_jumps_once():
    res = _plan(FOREIGN)
    tx = res["transaction"].splitlines()
    assert tx[0] == "*nat" and tx[-1] == "COMMIT"
    assert tx[1:1 + len(DECLARE)] == DECLARE  # declared: flushed and refilled atomically
    assert tx[1 + len(DECLARE):1 + len(DECLARE) + len(RULES)] == RULES
    assert res["jumps_fixed"] == ["-I PREROUTING 1 -j OCS-PREROUTING", "-I OUTPUT 1 -j OCS-OUTPUT",
                                  "-I POSTROUTING 1 -j OCS-POSTROUTING"]
    assert not [ln for ln in tx if "DOCKER" in ln]  # never someone else's chain
    assert res["conntrack"] == []


def test_only_jumps_missing_does_not_flush_our_chains():
    res = _plan(JUMP_LINES[1:] + JUMP_LINES[1:2] + RULES)
    assert res["transaction"] == "*nat\n-I PREROUTING 1 -j OCS-PREROUTING\n-D OUTPUT -j OCS-OUTPUT\nCOMMIT\n"
    assert res["tables"] == []


def test_order_within_a_chain_matters_counters_do_not():
    assert _plan(JUMP_LINES + RULES[1:2] + RULES[:1] + RULES[2:])["tables"] == []  # other chains interleaved
    two = ["-A OCS-SNAT -s 198.19.1.%d/32 -j SNAT --to-source 203.0.113.11" % i for i in (11, 12)]
    cand = chains_mod.parse_restore("*nat\n%s\n%s\nCOMMIT\n" % ("\n".join(DECLARE), "\n".join(two)))
    jumps = []
    assert chains_mod.plan(cand, {"nat": _save(*two)}, _save(*two), jumps)["tables"] == []
    assert chains_mod.plan(cand, {"nat": _save(*two[::-1])}, _save(*two), jumps)["tables"] == ["nat"]
    assert chains_mod.plan(cand, {"nat": _save(*two).replace(":OCS-SNAT - [0:0]", ":OCS-SNAT - [5:300]")},
                           _save(*two), jumps)["tables"] == []


def test_moved_floating_ip_deletes_its_conntrack_entries():
    live = [r.replace("198.19.1.10", "198.19.1.14") for r in RULES]
    res = _plan(JUMP_LINES + live)
    assert res["conntrack"] == [["--orig-dst", "203.0.113.101"], ["--reply-dst", "203.0.113.101"]]


def test_comment_only_change_keeps_conntrack():
    live = [r.replace("vm-a", "old-name") for r in RULES]
    res = _plan(JUMP_LINES + live)
    assert res["tables"] == ["nat"] and res["conntrack"] == []


def test_vanished_translations_delete_conntrack_new_ones_do_not():
    stale = ["-A OCS-FLOAT-DNAT -d 203.0.113.99/32 -j DNAT --to-destination 198.19.1.99",
             "-A OCS-SNAT -s 198.19.1.12/32 -j SNAT --to-source 203.0.113.250"]
    res = _plan(JUMP_LINES + RULES + stale)
    assert res["conntrack"] == [["--orig-dst", "203.0.113.99"], ["--reply-dst", "203.0.113.99"],
                                ["--reply-dst", "203.0.113.250"]]
    assert _plan(JUMP_LINES)["conntrack"] == []  # nothing was translated before


def test_missing_chain_in_scratch_result_is_an_error():
    with pytest.raises(ValueError):
        chains_mod.plan(CAND, {"nat": _save()}, "*nat\nCOMMIT\n", JUMPS)
