"""Fabric.memo (memo.py): what depends on the built fabric alone, or on it and one host, is
computed once; fabric_artifacts forgets each host once its files are done; the files are the
same as computed without it."""

import copy
import json
import types

from fabric_data import BASE, gateway_mode
from ansible_collections.ocs.l3.plugins.module_utils import jsontext, memo
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts, host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.firewall import filter_lines
from ansible_collections.ocs.l3.plugins.module_utils.iptables import declared_chains, parse_restore
from ansible_collections.ocs.l3.plugins.module_utils.nat import hypervisor_lines as nat_lines


def _counting():
    calls = []

    @memo.per_fabric
    def fabric_wide(fab):
        calls.append("fabric")
        return ["x"]

    @memo.per_host
    def of_host(fab, host):
        calls.append(host.name)
        return [host.name]

    return calls, fabric_wide, of_host


def test_per_fabric_and_per_host_compute_once_until_forgotten():
    calls, fabric_wide, of_host = _counting()
    fab = build(copy.deepcopy(BASE))
    hv, tor = fab.hosts["hv-r01-01"], fab.hosts["tor-r01"]
    assert fabric_wide(fab) is fabric_wide(fab)
    assert of_host(fab, hv) is of_host(fab, hv) and of_host(fab, tor) == ["tor-r01"]
    assert calls == ["fabric", "hv-r01-01", "tor-r01"]
    memo.forget(fab, hv)
    of_host(fab, hv)
    of_host(fab, tor)
    assert calls == ["fabric", "hv-r01-01", "tor-r01", "hv-r01-01"]
    other = build(copy.deepcopy(BASE))  # another fabric: its own values
    fabric_wide(other)
    assert calls[-1] == "fabric"


def test_a_walk_over_many_hosts_keeps_the_values_of_the_last_ones_only(monkeypatch):
    monkeypatch.setattr(memo, "HOSTS_KEPT", 2)
    calls, fabric_wide, of_host = _counting()
    fab = build(copy.deepcopy(BASE))
    names = sorted(fab.hosts)[:4]
    for name in names:
        of_host(fab, fab.hosts[name])
    assert memo.kept_hosts(fab) == names[2:]
    of_host(fab, fab.hosts[names[2]])  # used again: kept, now the most recent
    of_host(fab, fab.hosts[names[0]])  # dropped before: computed again
    assert memo.kept_hosts(fab) == [names[2], names[0]] and calls == names + [names[0]]


def test_an_object_without_a_memo_is_computed_every_time():
    calls, fabric_wide, of_host = _counting()
    fab, host = types.SimpleNamespace(), types.SimpleNamespace(name="h")
    fabric_wide(fab), fabric_wide(fab), of_host(fab, host), of_host(fab, host)
    assert calls == ["fabric", "fabric", "h", "h"]


def test_fabric_artifacts_keeps_nothing_per_host_and_prints_what_a_fresh_fabric_prints():
    for data in (copy.deepcopy(BASE), gateway_mode(copy.deepcopy(BASE))):
        fab = build(copy.deepcopy(data))
        plans = fabric_artifacts(fab)
        assert memo.kept_hosts(fab) == []  # only the fabric-wide values stay
        for name in fab.hosts:
            fresh = build(copy.deepcopy(data))  # nothing computed for any other host first
            assert [(a.path, a.vars) for a in host_artifacts(fresh, fresh.hosts[name])] == \
                [(a.path, a.vars) for a in plans[name]], name


def test_declared_chains_are_the_chains_parse_restore_reads():
    for data in (copy.deepcopy(BASE), gateway_mode(copy.deepcopy(BASE))):
        fab = build(data)
        for host in fab.hosts.values():
            lines = filter_lines(fab, host) + (nat_lines(fab, host) if host.role == "hypervisor" else [])
            parsed = parse_restore("\n".join(lines))
            assert declared_chains(lines) == {t: part["chains"] for t, part in parsed.items()}, host.name


def test_jsontext_is_json_with_one_item_a_line():
    doc = {"b": [{"y": 1, "x": [1, 2]}, "two"], "a": {"k2": None, "k1": "é"}, "c": [], "d": {}, "e": 5}
    text = jsontext.dumps(doc)
    assert json.loads(text) == doc
    assert text.splitlines() == [
        "{", ' "a": {', '  "k1": "\\u00e9",', '  "k2": null', " },",
        ' "b": [', '  {"x": [1, 2], "y": 1},', '  "two"', " ],",
        ' "c": [],', ' "d": {},', ' "e": 5', "}"]
    assert jsontext.dumps({}) == "{}"
