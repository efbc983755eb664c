"""ocs-l3-status (host_status.py): the host collector against realistic outputs, its severities,
exit codes and node_exporter textfile (parsed and checked by value)."""

import copy
import io
import json
import os

import pytest

from fabric_data import BASE, ROOT
from prom import metric, parse_prom
from ansible_collections.ocs.l3.plugins.module_utils import constants, host_status
from ansible_collections.ocs.l3.plugins.module_utils.expected import expected
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.firewall import filter_lines
from ansible_collections.ocs.l3.plugins.module_utils.nat import hypervisor_lines as nat_lines

SAMPLES = os.path.join(ROOT, "tests", "unit", "samples")
FAB = build(copy.deepcopy(BASE))
TAP = FAB.hosts["hv-r01-02"].instances[0].interface  # vm-c: the tap of the captured FRR/iproute2 samples


def sample(name):
    with open(os.path.join(SAMPLES, name)) as fh:
        return fh.read()


def save_c(host, packets=0):
    """``iptables-save -c`` of a host whose rendered chains are applied, every rule with ``packets``."""
    lines = filter_lines(FAB, FAB.hosts[host]) + (nat_lines(FAB, FAB.hosts[host]) if host.startswith("hv") else [])
    return "\n".join("[%d:%d] %s" % (packets, 60 * packets, ln) if ln.startswith("-A ") else ln for ln in lines)


class Fake:
    """A command runner answering by the argv's first words; records what was asked."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, data=None):
        self.calls.append(list(argv))
        for key, answer in self.answers.items():
            if " ".join(argv).startswith(key) or key in " ".join(argv):
                return answer
        return 127, "", "%s: not faked" % argv[0]


def host_answers(host, summary, links=("lo", "eth0", "eth1", TAP), dhcp_rc=0):
    out = {
        "vtysh -c show bgp vrf default ipv4 unicast summary json": (0, summary, ""),
        "ip -j link show": (0, json.dumps([{"ifname": n} for n in links]), ""),
        "iptables-save -c": (0, save_c(host), ""),
        "systemctl is-active": (dhcp_rc, "", ""),
    }
    if host.startswith("hv"):
        out["ip -4 -j route show proto %d" % constants.ROUTE_PROTOCOL] = (0, sample("ip-hv-routes-proto-211.json"), "")
    else:
        out["ip -4 -j route show proto bgp"] = (0, sample("ip-tor-routes-proto-bgp.json"), "")
        out["received-routes"] = (0, sample("frr84-tor-received-routes.json"), "")
    return out


@pytest.fixture
def state(tmp_path):
    """A state directory with the rendered expected.json of ``host`` (call it), /proc and a prom dir."""
    def make(host, count=100, limit=1000):
        base = tmp_path / "etc"
        base.mkdir(exist_ok=True)
        doc = {"managed": "test", "expected": expected(FAB, FAB.hosts[host])}
        (base / "expected.json").write_text(json.dumps(doc))
        (base / "generation").write_text("1700000000\n")
        (base / "reconciled").write_text("")
        netfilter = tmp_path / "proc" / "sys" / "net" / "netfilter"
        netfilter.mkdir(parents=True, exist_ok=True)
        (netfilter / "nf_conntrack_count").write_text("%d\n" % count)
        (netfilter / "nf_conntrack_max").write_text("%d\n" % limit)
        (tmp_path / "prom").mkdir(exist_ok=True)
        return host_status.Sources(str(base), proc=str(tmp_path / "proc"))
    return make


def devs(rep, severity=None):
    return [(d["severity"], d["what"], d["detail"]) for d in rep.deviations if severity in (None, d["severity"])]


def test_converged_hypervisor_is_ok_and_its_textfile_says_so(state):
    src = state("hv-r01-02")
    rep = host_status.collect(Fake(host_answers("hv-r01-02", sample("frr84-hv-summary.json"))), src)
    assert devs(rep) == [] and rep.as_dict()["exit_code"] == 0
    prom = parse_prom(host_status.prom_text(rep))
    assert metric(prom, "ocs_l3_bgp_sessions_expected") == 2
    assert metric(prom, "ocs_l3_bgp_sessions_established") == 2
    assert metric(prom, "ocs_l3_bgp_session_established", peer="198.18.1.129", peer_host="tor-r01") == 1
    assert metric(prom, "ocs_l3_bgp_prefixes_received", peer="198.18.1.1", peer_host="tor-r01") == 4
    assert metric(prom, "ocs_l3_bgp_prefixes_advertised_expected", peer="198.18.1.1", peer_host="tor-r01") == 3
    assert metric(prom, "ocs_l3_instances_routed") == 1 and metric(prom, "ocs_l3_conntrack_entries") == 100
    assert metric(prom, "ocs_l3_generation_info", generation="1700000000") == 1
    assert metric(prom, "ocs_l3_deviations", severity="critical") == 0
    assert metric(prom, "ocs_l3_last_reconcile_timestamp_seconds") == os.stat(src.reconciled).st_mtime


def test_a_session_shut_by_the_peer_is_critical_naming_host_and_peer(state):
    rep = host_status.collect(Fake(host_answers("hv-r01-02", sample("frr84-hv-summary-down.json"))), state("hv-r01-02"))
    assert devs(rep) == [("critical", "bgp-session",
                          "198.18.1.129 (tor-r01, AS 65101) is Idle (Admin), expected Established")]
    assert rep.deviations[0]["host"] == "hv-r01-02" and rep.as_dict()["exit_code"] == 2
    prom = parse_prom(host_status.prom_text(rep))
    assert metric(prom, "ocs_l3_bgp_sessions_established") == 1
    assert metric(prom, "ocs_l3_bgp_session_established", peer="198.18.1.129", peer_host="tor-r01") == 0
    assert metric(prom, "ocs_l3_deviations", severity="critical") == 1


def test_stopped_vm_is_not_an_error_but_a_tap_without_its_route_is_critical(state):
    src = state("hv-r01-02")
    answers = host_answers("hv-r01-02", sample("frr84-hv-summary.json"), links=("lo", "eth0", "eth1"))
    rep = host_status.collect(Fake(answers), src)
    assert devs(rep) == [] and rep.values["instances_running"] == 0
    assert [r["expected_advertised"] for r in rep.values["sessions"]] == [1, 1]  # only the public /32 left
    answers = host_answers("hv-r01-02", sample("frr84-hv-summary.json"))
    answers["ip -4 -j route show proto %d" % constants.ROUTE_PROTOCOL] = (0, "[]", "")
    rep = host_status.collect(Fake(answers), src)
    assert devs(rep) == [("critical", "instance-route",
                          "instance vm-c: tap %s exists but 198.19.1.12/32 is missing" % TAP)]


def test_dnsmasq_down_on_a_hypervisor_with_instances_is_critical(state):
    answers = host_answers("hv-r01-02", sample("frr84-hv-summary.json"), dhcp_rc=3)
    rep = host_status.collect(Fake(answers), state("hv-r01-02"))
    assert devs(rep) == [("critical", "dhcp", "%s is not running: 1 instances get no address"
                          % constants.DHCP_UNIT_NAME)]


@pytest.mark.parametrize("count,severity", [(800, None), (810, "warning"), (950, "warning"), (951, "critical")])
def test_conntrack_thresholds(state, count, severity):
    rep = host_status.collect(Fake(host_answers("hv-r01-02", sample("frr84-hv-summary.json"))),
                              state("hv-r01-02", count=count, limit=1000))
    assert [d[0] for d in devs(rep)] == ([severity] if severity else [])
    assert rep.as_dict()["exit_code"] == host_status.EXIT_CODES[severity or "ok"]


def test_drained_is_info_and_drift_is_a_warning(state):
    src = state("hv-r01-02")
    open(src.drain, "w").write("{}\n")
    fake = Fake(host_answers("hv-r01-02", sample("frr84-hv-summary.json")))
    rep = host_status.collect(fake, src)
    assert [d[:2] for d in devs(rep)] == [("info", "drain")] and rep.as_dict()["exit_code"] == 0
    rep = host_status.collect(fake, src, controller_generation=1700000001)
    assert ("warning", "drift", "host has generation 1700000000, the controller rendered 1700000001 (run site.yml)") \
        in devs(rep)
    assert parse_prom(host_status.prom_text(rep))[("ocs_l3_drained", ())] == 1


def test_tor_prefix_shortfall_names_the_missing_prefix_and_extra_sessions_warn(state):
    summary = json.loads(sample("frr84-tor-summary.json"))
    summary["peers"]["198.18.1.12"]["pfxRcd"] = 0
    summary["peers"]["198.18.1.200"] = dict(summary["peers"]["198.18.1.11"], state="Active")
    rep = host_status.collect(Fake(host_answers("tor-r01", json.dumps(summary))), state("tor-r01"))
    assert devs(rep) == [
        ("critical", "bgp-prefixes-received",
         "198.18.1.12 (hv-r01-02, AS 65200): 0 prefixes received, at least 1 expected"),
        ("warning", "bgp-session", "unexpected session 198.18.1.200 (Active), not in the rendered configuration")]
    assert rep.values["rack_instances_learned"] == 3


def test_counters_of_our_chains_are_bounded_per_rule_comment():
    chains, counters = host_status.parse_iptables_counters(sample("iptables-save-c.txt"))
    assert chains["raw"] == {"OCS-EDGE", "OCS-NOTRACK"} and "INPUT" not in chains["filter"]
    assert counters[("filter", "OCS-ANTISPOOF", "ocs-spoof")] == 7
    assert counters[("filter", "OCS-HOST", "ocs-host-drop")] == 12
    assert counters[("nat", "OCS-SNAT", "instance")] == 5  # vm-a and vm-b: one series, never per instance
    assert not [k for k in counters if k[2] in ("vm-a", "vm-b")]
    nft = host_status.parse_nft_counters(json.loads(sample("nft-natgw.json")))
    assert nft == {("ocs_natgw", "raw_prerouting", "ocs-edge-spoof"): 5,
                   ("ocs_natgw", "raw_prerouting", "to-public"): 9, ("ocs_natgw", "nat_postrouting", "snat"): 11}


def test_missing_chain_and_missing_expected_file_are_critical(state, tmp_path):
    src = state("hv-r01-02")
    answers = host_answers("hv-r01-02", sample("frr84-hv-summary.json"))
    answers["iptables-save -c"] = (0, sample("iptables-save-c.txt"), "")
    rep = host_status.collect(Fake(answers), src)
    assert ("critical", "iptables-chain", "chain OCS-TENANT of table filter is missing") in devs(rep)
    prom = parse_prom(host_status.prom_text(rep))
    assert metric(prom, "ocs_l3_packets_total", table="filter", chain="OCS-ANTISPOOF", rule="ocs-spoof") == 7
    os.unlink(src.expected)
    rep = host_status.collect(Fake({}), src, host="hv-r01-02")
    assert [d[:2] for d in devs(rep)] == [("critical", "expected")] and rep.as_dict()["exit_code"] == 2


def test_cli_prints_json_writes_the_textfile_atomically_and_exits_with_the_worst(state, tmp_path):
    src = state("hv-r01-02")
    out = io.StringIO()
    fake = Fake(host_answers("hv-r01-02", sample("frr84-hv-summary-down.json")))
    rc = host_status.main(["--json", "--state-dir", src.base, "--proc", src.proc, "--prom", str(tmp_path / "prom")],
                          run=fake, out=out)
    assert rc == 2 and json.loads(out.getvalue())["worst"] == "critical"
    assert os.listdir(tmp_path / "prom") == [host_status.PROM_FILE]
    prom = parse_prom((tmp_path / "prom" / host_status.PROM_FILE).read_text())
    assert metric(prom, "ocs_l3_bgp_sessions_established") == 1
    out = io.StringIO()
    assert host_status.main(["--state-dir", src.base, "--proc", src.proc], run=fake, out=out) == 2
    assert out.getvalue().splitlines()[1].split()[:3] == ["hv-r01-02", "critical", "bgp-session"]


def test_the_prom_parser_rejects_what_node_exporter_rejects():
    for bad in ('ocs_l3_x 1\n', '# HELP ocs_l3_x h\n# TYPE ocs_l3_x gauge\nocs_l3_x{a="1} 1\n',
                '# HELP ocs_l3_x h\n# TYPE ocs_l3_x gauge\nocs_l3_x 1\nocs_l3_x 2\n'):
        with pytest.raises(AssertionError):
            parse_prom(bad)


def test_worst_and_exit_codes():
    assert host_status.worst([]) == "ok" and host_status.worst(["info", "critical", "warning"]) == "critical"
    assert [host_status.EXIT_CODES[s] for s in host_status.SEVERITIES] == [0, 0, 1, 2]


def test_an_ipv6_only_session_is_read_from_the_ipv6_summary_and_only_then():
    """A spine's IPv6 border session exists in the IPv6 family alone: absent from the IPv4 summary,
    it is looked up in the IPv6 one (seen on the molecule fabric: reported absent before). The IPv6
    summary is not read when every expected session is in the IPv4 one."""
    v4 = json.dumps({"peers": {"198.18.0.100": {"state": "Established", "pfxRcd": 2, "pfxSnt": 3}}})
    v6 = json.dumps({"peers": {"2001:db8:ff:98::100": {"state": "Established", "pfxRcd": 1, "pfxSnt": 2},
                               "198.18.0.100": {"state": "Idle"}}})
    fake = Fake({"vtysh -c " + host_status.SUMMARY: (0, v4, ""), "vtysh -c " + host_status.SUMMARY6: (0, v6, "")})
    peers = host_status.bgp_peers(fake, ["vtysh"], ["198.18.0.100", "2001:db8:ff:98::100"])
    assert peers == {"198.18.0.100": dict(state="Established", received=2, advertised=3),
                     "2001:db8:ff:98::100": dict(state="Established", received=1, advertised=2)}
    fake.calls.clear()
    assert list(host_status.bgp_peers(fake, ["vtysh"], ["198.18.0.100"])) == ["198.18.0.100"]
    assert fake.calls == [["vtysh", "-c", host_status.SUMMARY]]
