"""Rollout: the order of the steps, and the gate between them."""

import pytest

from fabric_data import two_tors
from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.host_status import summary
from ansible_collections.ocs.l3.plugins.plugin_utils import rollout


def test_spines_then_gateways_one_at_a_time_then_each_rack_whole(data):
    fab = build(two_tors(data))
    assert rollout.steps(fab) == [
        ("spine spine1", ["spine1"]),
        ("gateway gw-01", ["gw-01"]),
        ("rack r01", ["tor-r01", "tor-r01b", "hv-r01-01", "hv-r01-02"]),
        ("rack r02", ["tor-r02", "hv-r02-01"]),
    ]
    assert rollout.steps(fab, ["r02"]) == [("rack r02", ["tor-r02", "hv-r02-01"])]
    with pytest.raises(FabricError, match="--racks names r09, not a rack of ocs_racks"):
        rollout.steps(fab, ["r02", "r09"])


def report(host, deviations=(), sessions=None):
    values = {} if sessions is None else {"sessions": sessions}
    sev = ("ok", "info", "warning", "critical")
    worst = max((d[0] for d in deviations), key=sev.index, default="ok")
    return {"host": host, "worst": worst, "exit_code": 0,
            "deviations": [dict(severity=s, host=host, what=w, detail=t) for s, w, t in deviations],
            "values": values}


def session(peer_host, state="Established", received=2, expected=2):
    return dict(peer="198.18.0.11", peer_host=peer_host, state=state, received=received,
                expected_received=expected, advertised=9, expected_advertised=9)


def test_gate_passes_a_healthy_rack_and_names_what_is_wrong():
    hosts = ["tor-r01", "hv-r01-01"]
    spine = report("spine1", sessions=[session("tor-r01"), session("tor-r02", state="Active")])
    ok = summary([report("tor-r01", [("info", "drain", "drained")]), report("hv-r01-01"), spine])
    # tor-r02 is another rack's: not this step's business
    assert rollout.gate(ok, hosts, ["spine1"]) == []
    bad = summary([report("tor-r01", [("critical", "bgp-session", "198.18.0.10 (spine1, AS 65000) is Active")]),
                   report("hv-r01-01", [("warning", "conntrack", "85 % full")]),
                   report("spine1", sessions=[session("tor-r01", received=0)])])
    assert rollout.gate(bad, hosts, ["spine1"]) == [
        "tor-r01: critical bgp-session: 198.18.0.10 (spine1, AS 65000) is Active",
        "hv-r01-01: warning conntrack: 85 % full",
        "spine1: session 198.18.0.11 (tor-r01) carries 0 prefixes, at least 2 expected (the rack's aggregates)"]
    assert rollout.gate(bad, hosts, ["spine1"], allow_warnings=True)[1].startswith("spine1:")
    # a host that gave no status (unreachable) is critical, and stops the step
    missing = summary([report("hv-r01-01"), spine], targeted=hosts + ["spine1"])
    assert rollout.gate(missing, hosts, ["spine1"]) == [
        "tor-r01: critical unreachable: no status from the host (unreachable, or the collector failed)"]
    down = summary([report("tor-r01"), report("hv-r01-01"), report("spine1", sessions=[session("tor-r01", "Idle")])])
    assert rollout.gate(down, hosts, ["spine1"]) == ["spine1: session 198.18.0.11 (tor-r01) is Idle"]


def test_an_invalid_inventory_stops_before_any_host(tmp_path, monkeypatch, capsys):
    ran = []
    monkeypatch.setattr(rollout, "load_fabric_input", lambda path: {"broken": True})
    monkeypatch.setattr(rollout, "run_step", lambda *a: ran.append(a))
    assert rollout.main(["-i", str(tmp_path)]) == 1
    assert ran == []
    assert "ocs-rollout: nothing touched: fabric is invalid" in capsys.readouterr().out
