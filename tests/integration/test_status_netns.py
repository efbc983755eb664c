"""ocs-l3-status against real FRR in network namespaces (the lab of test_frr_netns).

hv-r01-02 (dual-homed to tor-r01) gets its expected.json from the render; the
collector runs inside its namespace. Converged: no critical and both sessions
counted in the textfile. After tor-r01 shuts one session: a critical naming
hv-r01-02 and the peer, and ocs_l3_bgp_sessions_established drops by one in the
parsed textfile. The lab runs FRR and routes only: the iptables chains and
dnsmasq are left out of this expected state (unit tests cover them).
"""

import json
import os

from test_frr_netns import converge, lab, lab_data, wait_for  # noqa: F401  (lab: fixture)
from prom import metric, parse_prom
from ansible_collections.ocs.l3.plugins.module_utils import host_status
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.constants import EXPECTED_PATH
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.host_state import process_runner

HOST = "hv-r01-02"


def install_expected(fab, base):
    art = [a for a in host_artifacts(fab, fab.hosts[HOST]) if a.path == EXPECTED_PATH][0]
    exp = json.loads(art.vars["_ocs_agent_expected_text"])
    exp.update(chains={}, dhcp_hosts=0)  # no iptables chains, no dnsmasq in this lab
    os.makedirs(base, exist_ok=True)
    with open(os.path.join(base, "expected.json"), "w") as fh:
        json.dump({"managed": "test", "expected": exp}, fh)


def collect(lab, base, prom):
    inner = process_runner(timeout=60)

    def run(argv, data=None):
        return inner(["ip", "netns", "exec", lab.ns[HOST]] + list(argv), data)
    src = host_status.Sources(base, vtysh=["vtysh", "--vty_socket", lab.sock(HOST)])
    rep = host_status.collect(run, src)
    host_status.write_prom(prom, host_status.prom_text(rep))
    with open(os.path.join(prom, host_status.PROM_FILE)) as fh:
        return rep, parse_prom(fh.read())


def test_status_converged_then_a_session_shut(lab, tmp_path):  # noqa: F811
    fab = build(lab_data())
    converge(lab, fab)
    base, prom = str(tmp_path / "etc"), str(tmp_path)
    install_expected(fab, base)
    rep, parsed = wait_for(lambda: (lambda r: r if not [d for d in r[0].deviations if d["severity"] != "info"]
                                    else None)(collect(lab, base, prom)), "no deviation on %s" % HOST, 60)
    assert rep.as_dict()["exit_code"] == 0, rep.deviations
    assert metric(parsed, "ocs_l3_bgp_sessions_established") == 2
    assert metric(parsed, "ocs_l3_instances_routed") == 1
    lab.vtysh("tor-r01", "conf t\nrouter bgp 65101\nneighbor 198.18.1.140 shutdown")
    rep, parsed = wait_for(lambda: (lambda r: r if r[0].worst() == "critical" else None)(collect(lab, base, prom)),
                           "a critical on %s" % HOST, 60)
    crit = [d for d in rep.deviations if d["severity"] == "critical"]
    assert [(d["host"], d["what"]) for d in crit] == [(HOST, "bgp-session")], crit
    assert crit[0]["detail"].startswith("198.18.1.129 (tor-r01, AS 65101) is ")
    assert rep.as_dict()["exit_code"] == 2
    assert metric(parsed, "ocs_l3_bgp_sessions_established") == 1
    assert metric(parsed, "ocs_l3_bgp_session_established", peer="198.18.1.129", peer_host="tor-r01") == 0
    assert metric(parsed, "ocs_l3_deviations", severity="critical") == 1
