"""Drain: the frr.conf transform, what a drain may do, and when the neighbours have moved."""

import pytest

from fabric_data import gateway_mode, two_tors
from ansible_collections.ocs.l3.plugins.filter.ocs_l3 import ocs_drain_plan, ocs_frr_drained
from ansible_collections.ocs.l3.plugins.module_utils.drain import drained_text, pending, plan, undrained_text
from ansible_collections.ocs.l3.plugins.module_utils.errors import FabricError
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.frr import config_lines

from ansible.errors import AnsibleFilterError


def conf(data, host):
    fab = build(data)
    return "\n".join(config_lines(fab, fab.hosts[host])) + "\n"


def test_drained_text_adds_graceful_shutdown_once_and_undrain_restores_the_file(data):
    text = conf(data, "tor-r01")
    drained = drained_text(text)
    lines = drained.split("\n")
    i = lines.index("router bgp 65101")
    assert lines[i + 1] == " bgp graceful-shutdown"
    assert drained.count("\n bgp graceful-shutdown\n") == 1
    assert drained_text(drained) == drained  # idempotent
    assert undrained_text(drained) == text
    assert undrained_text(text) == text
    # a file without BGP (static mode hypervisor) is left as it is
    assert drained_text("log syslog informational\n!\n") == "log syslog informational\n!\n"


def names(entries):
    return [(e["host"], e["action"]) for e in entries]


def test_draining_one_tor_of_a_two_tor_rack_names_its_neighbours(data):
    fab = build(two_tors(data))
    out = plan(fab, ["tor-r01"], {}, "drained")
    assert names(out) == [("tor-r01", "drain")]
    # the spine and the rack's hypervisors, each with the session keys by which it knows tor-r01
    assert out[0]["neighbors"] == {"spine1": ["198.18.0.11"], "hv-r01-01": ["198.18.1.1"],
                                   "hv-r01-02": ["198.18.1.1"]}


def test_the_last_live_path_of_a_rack_is_refused_unless_forced(data):
    fab = build(two_tors(data))
    with pytest.raises(FabricError) as err:
        plan(fab, ["tor-r01b"], {"tor-r01": True}, "drained")
    assert err.value.problems == [
        "drain: tor-r01b is the last live path of rack r01 (drained or down: tor-r01); refused (force to override)"]
    # both at once: each is the other's only alternative
    with pytest.raises(FabricError) as err:
        plan(fab, ["tor-r01", "tor-r01b"], {}, "drained")
    assert len(err.value.problems) == 2
    # a ToR that is down is no alternative either
    with pytest.raises(FabricError):
        plan(fab, ["tor-r01"], {}, "drained", down=["tor-r01b"])
    assert names(plan(fab, ["tor-r01b"], {"tor-r01": True}, "drained", force=True)) == [("tor-r01b", "drain")]
    # a rack with a single ToR
    with pytest.raises(FabricError, match="tor-r02 is the last live path of rack r02; refused"):
        plan(fab, ["tor-r02"], {}, "drained")


def test_the_last_spine_and_the_last_gateway_are_refused(data):
    fab = build(data)
    with pytest.raises(FabricError, match="spine1 is the last live path of the spines"):
        plan(fab, ["spine1"], {}, "drained")
    # host NAT mode: a gateway is no edge path, it may go
    assert names(plan(fab, ["gw-01"], {}, "drained")) == [("gw-01", "drain")]
    fab = build(gateway_mode(data))
    with pytest.raises(FabricError, match=r"gw-01 is the last live path of the edge \(nat_mode gateway\)"):
        plan(fab, ["gw-01"], {}, "drained")


def test_a_hypervisor_with_instances_is_refused_one_without_may_go(data):
    fab = build(data)
    with pytest.raises(FabricError) as err:
        plan(fab, ["hv-r01-01"], {}, "drained")
    assert err.value.problems == [
        "drain: hypervisor hv-r01-01 still hosts 2 instance(s) (vm-a, vm-b): each instance /32 has no other path; "
        "move them in the inventory first (or force)"]
    data["hostvars"]["hv-r02-01"]["ocs_instances"] = []
    assert names(plan(build(data), ["hv-r02-01"], {}, "drained")) == [("hv-r02-01", "drain")]


def test_bad_requests_are_named_and_nothing_is_planned(data):
    fab = build(data)
    with pytest.raises(FabricError) as err:
        plan(fab, ["tor-r01", "tor-r99"], {}, "drained")
    assert err.value.problems == [
        "drain: tor-r99 is not a fabric host (groups spines, tors, hypervisors, nat_gateways)"]
    with pytest.raises(FabricError, match="state 'off' is not one of drained, undrained"):
        plan(fab, ["tor-r01"], {}, "off")
    with pytest.raises(FabricError, match="no host given"):
        plan(fab, [], {}, "drained")
    data["fabric"]["routing_mode"] = "static"
    fab = build(two_tors(data))
    with pytest.raises(FabricError) as err:
        plan(fab, ["tor-r01", "spine1"], {}, "drained")
    assert err.value.problems == [
        "drain: tor-r01: routing_mode is static: hypervisors and their ToRs route to each other by static routes, "
        "which a drain (BGP graceful shutdown) cannot move; spines and NAT gateways can be drained"]
    # the spines and gateways still speak BGP there; an undrain is always allowed
    data["groups"]["spines"].append("spine2")
    data["hostvars"]["spine2"] = {"ocs_address": "198.18.0.2", "ocs_uplinks": [
        {"interface": "eth9", "address": "198.18.0.249/30", "peer": "198.18.0.250"}]}
    data["fabric"]["border_peers"].append({"address": "198.18.0.250", "asn": 65530})
    assert names(plan(build(data), ["spine1"], {}, "drained")) == [("spine1", "drain")]
    assert names(plan(fab, ["tor-r01"], {"tor-r01": True}, "undrained")) == [("tor-r01", "undrain")]


def test_undrain_of_a_host_that_is_not_drained_is_a_reported_no_op(data):
    fab = build(two_tors(data))
    out = plan(fab, ["tor-r01", "tor-r01b"], {"tor-r01": True}, "undrained")
    assert names(out) == [("tor-r01", "undrain"), ("tor-r01b", "none")]
    assert out[1]["reason"] == "tor-r01b is not drained: nothing to do"
    assert names(plan(fab, ["tor-r01"], {"tor-r01": True}, "drained")) == [("tor-r01", "none")]


def test_filters_raise_ansible_errors_naming_the_host(data):
    with pytest.raises(AnsibleFilterError, match="tor-r99 is not a fabric host"):
        ocs_drain_plan(data, "tor-r99", {}, "drained")
    assert [e["host"] for e in ocs_drain_plan(two_tors(data), "tor-r01", {}, "drained")] == ["tor-r01"]
    with pytest.raises(AnsibleFilterError, match="frr.conf must be text"):
        ocs_frr_drained(None)
    assert ocs_frr_drained("router bgp 1\n", False) == "router bgp 1\n"


def path(peer, best=False, multi=False, lp=None, gshut=False, aspath="65101"):
    p = {"valid": True, "peerId": peer, "path": aspath, "nexthops": [{"ip": peer, "afi": "ipv4"}]}
    if best:
        p["bestpath"] = True
    if multi:
        p["multipath"] = True
    if lp is not None:
        p["locPrf"] = lp
    if gshut:
        p["community"] = {"string": "graceful-shutdown", "list": ["gracefulShutdown"]}
    return p


def table(**routes):
    return {"routes": {k.replace("_", "/").replace("-", "."): v for k, v in routes.items()}}


def test_pending_until_the_drained_paths_are_no_longer_selected():
    # ECMP over both ToRs: the drained one is still selected
    before = table(**{"198-19-1-0_24": [path("198.18.0.11", best=True, multi=True),
                                        path("198.18.0.13", multi=True)]})
    assert pending(before, "tor-r01", ["198.18.0.11"], "drained") == ["198.19.1.0/24"]
    after = table(**{"198-19-1-0_24": [path("198.18.0.11", lp=0, gshut=True),
                                       path("198.18.0.13", best=True, multi=True)],
                     # only reachable through the drained ToR: it stays, nothing to wait for
                     "198-18-1-1_32": [path("198.18.0.11", best=True, lp=0, gshut=True)]})
    assert pending(after, "tor-r01", ["198.18.0.11"], "drained") == []
    # undrain: pending while the community is still there, then until the path is selected again
    assert pending(after, "tor-r01", ["198.18.0.11"], "undrained") == ["198.18.1.1/32", "198.19.1.0/24"]
    lagging = table(**{"198-19-1-0_24": [path("198.18.0.11"), path("198.18.0.13", best=True, multi=True)]})
    assert pending(lagging, "tor-r01", ["198.18.0.11"], "undrained") == ["198.19.1.0/24"]
    assert pending(before, "tor-r01", ["198.18.0.11"], "undrained") == []
    # a longer AS path never counts as one that should have come back
    longer = table(**{"0-0-0-0_0": [path("198.18.0.11", aspath="65101 65000"), path("198.18.0.13", best=True)]})
    assert pending(longer, "tor-r01", ["198.18.0.11"], "undrained") == []
    # a path known by the peer's hostname (unnumbered sessions) counts as the host's
    named = table(**{"0-0-0-0_0": [dict(path("fe80::1", best=True), hostname="tor-r01"), path("198.18.0.13")]})
    assert pending(named, "tor-r01", [], "drained") == ["0.0.0.0/0"]
