"""The NAT tier: map computation, the rendered table, and the apply module's plan."""

import copy
import shutil
import subprocess

import pytest

from fabric_data import BASE, GATEWAY_BORDER_LINK, gateway_mode
from ansible_collections.ocs.l3.plugins.module_utils import natgw
from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils import nft as mod



def fabric(mode="gateway", mutate=None):
    data = copy.deepcopy(BASE)
    if mode == "gateway":
        gateway_mode(data)
    else:
        data["fabric"]["nat_mode"] = mode
    if mutate:
        mutate(data)
    return build(data)


def text(fab, gw="gw-01"):
    return "\n".join(natgw.gateway_lines(fab, fab.hosts[gw])) + "\n"


def test_floating_map_is_every_instance_with_a_floating_ip():
    fab = fabric()
    assert [(ntoa(f), ntoa(x)) for f, x in natgw.floating_map(fab)] == [
        ("203.0.113.101", "198.19.1.10"), ("203.0.113.102", "198.19.1.12")]


def test_table_holds_both_maps_the_sets_and_the_public_address():
    t = text(fabric())
    assert "\t\telements = { 198.18.0.0/15 }" in t
    assert "\t\t\t203.0.113.101 : 198.19.1.10,\n\t\t\t203.0.113.102 : 198.19.1.12\n" in t
    assert "\t\t\t198.19.1.10 : 203.0.113.101,\n\t\t\t198.19.1.12 : 203.0.113.102\n" in t
    assert "\t\telements = { 203.0.113.250 }" in t  # every gateway's public address
    assert "snat to 203.0.113.250 comment \"snat\"" in t
    assert t.count(" notrack ") == 3  # hairpin, inbound, outbound: stateless
    # The rules come before any map lookup can fail: every map statement is guarded by a membership test.
    for line in t.splitlines():
        if "set ip saddr map" in line:
            assert "ip saddr @fixed_to_fip" in line
        if "set ip daddr map" in line or "dnat to" in line:
            assert "ip daddr @fip_to_fixed" in line


def test_mss_clamp_fits_the_instances_and_the_edge():
    """Every TCP SYN through the tier is clamped to min(mtu, edge_mtu) - 40 (PMTUD cannot
    work for floating-IP flows: natgw's docstring); only a larger MSS is lowered."""
    assert natgw.clamped_mss(fabric()) == 1410  # mtu 1450, edge_mtu 1500 (default)
    fab = fabric(mutate=lambda d: d["fabric"].update(edge_mtu=1280))
    assert natgw.clamped_mss(fab) == 1240
    rule = "tcp flags syn tcp option maxseg size > 1240 counter tcp option maxseg size set 1240 comment \"mss-clamp\""
    assert ("\t\t%s\n" % rule) in text(fab)
    assert "type filter hook forward priority mangle; policy accept;" in text(fab)


def test_icmp_errors_of_floating_ip_instances_are_dropped_before_translation():
    """Their quote holds the fixed IP: rule 4 drops them, before rule 5 would translate the outer source."""
    lines = text(fabric()).splitlines()
    drop = [i for i, ln in enumerate(lines) if 'comment "icmp-error-fixed"' in ln]
    out = [i for i, ln in enumerate(lines) if 'comment "outbound"' in ln]
    assert len(drop) == 1 and drop[0] + 1 == out[0]
    assert lines[drop[0]] == ("\t\tip saddr @fixed_to_fip ip daddr != @internal icmp type { destination-unreachable, "
                              "time-exceeded, parameter-problem } counter drop comment \"icmp-error-fixed\"")


def test_every_gateway_holds_the_whole_map():
    def two(d):
        d["groups"]["nat_gateways"].append("gw-02")
        d["hostvars"]["gw-02"] = {"ocs_address": "198.18.0.22", "ocs_public_address": "203.0.113.251",
                                  "ocs_uplinks": [{"interface": "eth0", "address": "198.18.0.22/24",
                                                   "peer": "198.18.0.1"}, dict(GATEWAY_BORDER_LINK)]}
    fab = fabric(mutate=two)
    a, b = text(fab, "gw-01"), text(fab, "gw-02")
    assert a.replace("snat to 203.0.113.250", "X") == b.replace("snat to 203.0.113.251", "X")
    assert "elements = { 203.0.113.250, 203.0.113.251 }" in a


def test_no_floating_ip_no_elements_line():
    def none(d):
        for hv in d["hostvars"].values():
            for inst in hv.get("ocs_instances", []):
                inst.pop("floating_ip", None)
    t = text(fabric(mutate=none))
    assert "map fip_to_fixed {\n\t\ttype ipv4_addr : ipv4_addr\n\t}" in t


def test_host_mode_declares_no_table():
    fab = fabric("host")
    assert mod.declared_tables(text(fab)) == []
    assert mod.declared_tables(text(fabric())) == [("ip", "ocs_natgw")]


def test_artifact_only_for_gateways():
    fab = fabric()
    kinds = {h: [a.kind for a in host_artifacts(fab, fab.hosts[h])] for h in ("gw-01", "spine1", "hv-r01-01")}
    assert "nftables" in kinds["gw-01"]
    assert "nftables" not in kinds["spine1"] and "nftables" not in kinds["hv-r01-01"]
    art = [a for a in host_artifacts(fab, fab.hosts["gw-01"]) if a.kind == "nftables"][0]
    assert (art.path, art.role, art.template) == (natgw.NATGW_PATH, "ocs_natgw", "etc/ocs-l3/natgw.nft.j2")


@pytest.mark.skipif(not shutil.which("nft"), reason="nft is not installed (make validate installs nftables)")
@pytest.mark.parametrize("mode", ["gateway", "host"])
def test_rendered_table_passes_nft_check(tmp_path, mode):
    path = tmp_path / "natgw.nft"
    path.write_text("#\n# Managed\n#\n" + text(fabric(mode)))
    proc = subprocess.run(["nft", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_declared_tables_refuses_commands():
    with pytest.raises(ValueError):
        mod.declared_tables("flush ruleset\ntable ip ocs_natgw {\n}\n")
    assert mod.declared_tables("# table ip x\ntable ip ocs_natgw {\n}\n") == [("ip", "ocs_natgw")]


def _doc(elems, rule="accept"):
    return {"nftables": [
        {"table": {"family": "ip", "name": "ocs_natgw", "handle": 1}},
        {"map": {"family": "ip", "name": "fip_to_fixed", "table": "ocs_natgw", "type": "ipv4_addr", "handle": 3,
                 "map": "ipv4_addr", "elem": elems}},
        {"chain": {"family": "ip", "table": "ocs_natgw", "name": "c", "handle": 2, "type": "filter",
                   "hook": "prerouting", "prio": -300, "policy": "accept"}},
        {"rule": {"family": "ip", "table": "ocs_natgw", "chain": "c", "handle": 9, "expr": [{rule: None}]}},
    ]}


def test_plan_sends_only_changed_elements():
    live = mod.normalize(_doc([["203.0.113.1", "198.19.1.1"], ["203.0.113.2", "198.19.1.2"]]))
    want = mod.normalize(_doc([["203.0.113.1", "198.19.1.9"], ["203.0.113.3", "198.19.1.3"]]))
    res = mod.plan("ip", "ocs_natgw", "TEXT", want, live)
    assert res["operation"] == "elements"
    assert res["transaction"] == (
        "delete element ip ocs_natgw fip_to_fixed { 203.0.113.1, 203.0.113.2 }\n"
        "add element ip ocs_natgw fip_to_fixed { 203.0.113.1 : 198.19.1.9, 203.0.113.3 : 198.19.1.3 }\n")
    assert (res["elements_added"], res["elements_removed"]) == (2, 2)


def test_plan_nothing_create_replace_delete():
    doc = mod.normalize(_doc([["203.0.113.1", "198.19.1.1"]]))
    assert mod.plan("ip", "t", "TEXT", doc, doc)["operation"] == "none"
    assert mod.plan("ip", "t", "TEXT", doc, None) == dict(operation="create", transaction="TEXT",
                                                         elements_added=1, elements_removed=0)
    other = mod.normalize(_doc([["203.0.113.1", "198.19.1.1"]], rule="drop"))
    res = mod.plan("ip", "t", "TEXT", doc, other)
    assert res["operation"] == "replace" and res["transaction"] == "table ip t\ndelete table ip t\nTEXT"
    assert mod.plan("ip", "t", "", None, doc)["transaction"] == "delete table ip t\n"
    assert mod.plan("ip", "t", "", None, None)["operation"] == "none"


def test_plan_chunks_large_updates():
    want = mod.normalize(_doc([["203.0.%d.%d" % (i // 250, i % 250 + 1), "198.19.0.1"] for i in range(12000)]))
    live = mod.normalize(_doc([]))
    res = mod.plan("ip", "t", "TEXT", want, live)
    assert res["elements_added"] == 12000 and res["transaction"].count("add element") == 3
