"""ocs-plan (plugins/plugin_utils/plan.py): the offline plan between two inventory revisions.

The example inventory (read once by Ansible's loader) against changed copies:
an instance moved, a floating IP added, a rack added, a BGP password set or
changed, an invalid fabric; and once through GITREF:PATH in a scratch git
repository. Every file is rendered by the roles' templates, as the render does.
"""

import copy
import io
import json
import os
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.ocs.l3.plugins.plugin_utils import plan
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input

from fabric_data import ROOT

EXAMPLE = os.path.join(ROOT, "inventory", "example")
EXPECTED = "/etc/ocs-l3/expected.json"
FRR_CONF = "/etc/frr/frr.conf"
OLD_HOSTS = ["gw-01", "gw-02", "hv-r01-01", "hv-r01-02", "hv-r02-01", "hv-r02-02", "spine1", "tor-r01", "tor-r01b",
             "tor-r02"]


@pytest.fixture(scope="module")
def example():
    return load_fabric_input(EXAMPLE)


def _instance(data, host, name):
    return next(i for i in data["hostvars"][host]["ocs_instances"] if i["name"] == name)


def move_instance(data):
    """vm-r01-01-d (no floating IP) from hv-r01-01 to hv-r01-02, in the same rack."""
    inst = _instance(data, "hv-r01-01", "vm-r01-01-d")
    data["hostvars"]["hv-r01-01"]["ocs_instances"].remove(inst)
    data["hostvars"]["hv-r01-02"]["ocs_instances"].append(inst)


def add_floating_ip(data):
    _instance(data, "hv-r02-01", "vm-r02-01-b")["floating_ip"] = "203.0.113.120"


def add_rack(data):
    """Rack r03: one ToR under spine1, one hypervisor (no instance yet), its own instance subnet."""
    data["racks"]["r03"] = {"asn": 65103, "host_subnet": "198.18.3.0/24", "instance_subnets": ["198.19.3.0/24"]}
    data["groups"]["tors"].append("tor-r03")
    data["groups"]["hypervisors"].append("hv-r03-01")
    data["hostvars"]["tor-r03"] = {
        "ocs_address": "198.18.3.1", "ocs_rack": "r03",
        "ocs_uplinks": [{"interface": "eth0", "address": "198.18.0.14/24", "peer": "198.18.0.1"}],
        "ocs_downlinks": [{"interface": "eth1", "address": "198.18.3.1/25"}]}
    data["hostvars"]["hv-r03-01"] = {
        "ocs_address": "198.18.3.11", "ocs_rack": "r03", "ocs_public_address": "203.0.113.31",
        "ocs_uplinks": [{"interface": "eth0", "address": "198.18.3.11/25", "peer": "198.18.3.1"}]}


def set_password(password):
    def mutate(data):
        data["fabric"]["bgp"] = dict(data["fabric"]["bgp"], password=password)
    return mutate


def changed(data, *mutations):
    out = copy.deepcopy(data)
    for mutate in mutations:
        mutate(out)
    return out


def run(old, new, *flags):
    """(exit code, stdout, stderr, the revisions loaded in order) of ocs-plan over plain fabric inputs."""
    loaded = []

    def load(spec):
        loaded.append(spec)
        return {"OLD": old, "NEW": new}[spec]
    out, err = io.StringIO(), io.StringIO()
    rc = plan.main(["OLD", "NEW"] + list(flags), out, err, load=load)
    return rc, out.getvalue(), err.getvalue(), loaded


def run_json(old, new):
    rc, out, err, dummy = run(old, new, "--format", "json")
    return rc, json.loads(out)


def test_plan_names_exactly_the_move_the_floating_ip_and_the_rack(example):
    rc, doc = run_json(example, changed(example, move_instance, add_floating_ip, add_rack))
    s = doc["summary"]
    assert rc == 2 and doc["changed"] and doc["old_problems"] == []
    assert s["racks"] == {"added": ["r03"], "removed": [], "changed": []}
    assert s["instances"] == {
        "added": [], "removed": [],
        "moved": [{"name": "vm-r01-01-d", "from": "hv-r01-01", "to": "hv-r01-02"}],
        "changed": [{"name": "vm-r02-01-b", "hypervisor": "hv-r02-01",
                     "fields": {"floating_ip": [None, "203.0.113.120"]}}]}
    assert s["floating_ips"] == {"added": [{"ip": "203.0.113.120", "instance": "vm-r02-01-b"}], "removed": [],
                                 "changed": []}
    assert s["sessions"] == {"removed": [], "added": [
        {"host": "hv-r03-01", "peer": "198.18.3.1", "remote_as": 65103, "peer_host": "tor-r03"},
        {"host": "spine1", "peer": "198.18.0.14", "remote_as": 65103, "peer_host": "tor-r03"},
        {"host": "tor-r03", "peer": "198.18.0.1", "remote_as": 65000, "peer_host": "spine1"},
        {"host": "tor-r03", "peer": "198.18.3.11", "remote_as": 65200, "peer_host": "hv-r03-01"}]}
    assert s["prefixes"] == {
        "removed": [{"host": "hv-r01-01", "prefix": "198.19.1.33/32", "how": "network"}],
        "added": [{"host": "hv-r01-02", "prefix": "198.19.1.33/32", "how": "network"},
                  {"host": "hv-r02-01", "prefix": "203.0.113.120/32", "how": "network"},
                  {"host": "hv-r03-01", "prefix": "203.0.113.31/32", "how": "network"},
                  {"host": "tor-r03", "prefix": "198.18.3.0/24", "how": "aggregate"},
                  {"host": "tor-r03", "prefix": "198.18.3.0/25", "how": "network"},
                  {"host": "tor-r03", "prefix": "198.19.3.0/24", "how": "aggregate"}]}
    # A new rack's subnets reach every host's BGP policy (the fabric's routes and infrastructure).
    assert s["hosts"] == {"added": ["hv-r03-01", "tor-r03"], "removed": [],
                          "affected": sorted(OLD_HOSTS + ["hv-r03-01", "tor-r03"])}
    assert s["secrets_changed"] == []


def test_a_move_within_a_rack_affects_both_hypervisors_and_the_racks_tors_only(example):
    rc, doc = run_json(example, changed(example, move_instance))
    assert rc == 2
    assert doc["summary"]["hosts"]["affected"] == ["hv-r01-01", "hv-r01-02", "tor-r01", "tor-r01b"]
    # the ToRs' import lists, and what their status check expects to learn from which hypervisor
    assert {(f["host"], f["path"]) for f in doc["files"] if f["host"].startswith("tor")} == {
        ("tor-r01", FRR_CONF), ("tor-r01b", FRR_CONF), ("tor-r01", EXPECTED), ("tor-r01b", EXPECTED)}
    assert doc["summary"]["sessions"] == {"added": [], "removed": []}
    dhcp = next(f for f in doc["files"] if f["host"] == "hv-r01-02" and f["path"] == "/etc/ocs-l3/dhcp-hosts")
    assert "+02:00:c6:13:01:21,198.19.1.33,[2001:db8:0:1::c613:121],vm-r01-01-d," in dhcp["diff"]  # IPv6 moves too


def test_a_new_floating_ip_affects_its_hypervisor_its_tor_and_the_spine(example):
    rc, doc = run_json(example, changed(example, add_floating_ip))
    assert rc == 2
    assert doc["summary"]["hosts"]["affected"] == ["hv-r02-01", "spine1", "tor-r02"]
    assert doc["summary"]["instances"]["moved"] == []
    nat = next(f for f in doc["files"] if f["path"] == "/etc/ocs-l3/iptables-nat.rules")
    assert nat["host"] == "hv-r02-01" and "203.0.113.120" in nat["diff"]


def test_the_password_is_never_shown_only_redacted(example, tmp_path):
    old = changed(example, set_password("0ldSecret.1"))
    new = changed(example, set_password("0ldSecret.1"), move_instance, add_floating_ip, add_rack)
    report = tmp_path / "plan.json"
    rc, text, err, dummy = run(old, new, "--json", str(report))
    assert rc == 2 and err == ""
    doc = json.loads(report.read_text())
    for output in (text, report.read_text()):
        assert "0ldSecret.1" not in output
    added = next(f for f in doc["files"] if f["host"] == "tor-r03" and f["path"] == FRR_CONF)
    assert added["status"] == "added" and "+ neighbor SPINE password <redacted>\n" in added["diff"]
    assert doc["summary"]["secrets_changed"] == []


def test_a_changed_password_is_noted_without_either_value(example, tmp_path):
    old, new = changed(example, set_password("0ldSecret.1")), changed(example, set_password("n3wSecret.2"))
    report = tmp_path / "plan.json"
    rc, text, err, dummy = run(old, new, "--json", str(report))
    assert rc == 2
    doc = json.loads(report.read_text())
    # hv-r02-01's only link carries its own password (the example): the fleet one is not in its files
    hosts = [h for h in OLD_HOSTS if h != "hv-r02-01"]
    assert [(f["host"], f["path"], f["secret_changed"], f["diff"]) for f in doc["files"]] == [
        (h, FRR_CONF, True, "") for h in hosts]
    assert doc["summary"]["secrets_changed"] == [{"host": h, "path": FRR_CONF} for h in hosts]
    assert "Secret changed (not shown): tor-r01 /etc/frr/frr.conf" in text
    for output in (text, report.read_text()):
        assert "0ldSecret.1" not in output and "n3wSecret.2" not in output


def test_a_password_set_shows_as_a_redacted_line(example):
    rc, text, err, dummy = run(example, changed(example, set_password("s3t")))
    assert rc == 2 and "s3t" not in text
    assert "+ neighbor TOR password <redacted>" in text


def test_an_invalid_new_revision_stops_before_anything_else(example):
    def outside_its_rack(data):
        inst = _instance(data, "hv-r01-01", "vm-r01-01-d")
        data["hostvars"]["hv-r01-01"]["ocs_instances"].remove(inst)
        data["hostvars"]["hv-r02-01"]["ocs_instances"].append(inst)  # keeps its r01 address
    rc, out, err, loaded = run(example, changed(example, outside_its_rack))
    assert (rc, out, loaded) == (1, "", ["NEW"])
    assert "ocs-plan: the new revision NEW is not valid (nothing planned):" in err
    assert ("- hypervisors.hv-r02-01.ocs_instances[5] (vm-r01-01-d).ip 198.19.1.33 is outside rack r02 "
            "instance_subnets [198.19.2.0/24]") in err


def test_an_invalid_old_revision_plans_from_an_empty_fabric(example):
    broken = changed(example, lambda d: d["racks"]["r01"].update(asn="not a number"))
    rc, doc = run_json(broken, example)
    assert rc == 2 and doc["old_problems"] and any("r01" in p and "asn" in p for p in doc["old_problems"])
    assert doc["summary"]["hosts"]["added"] == OLD_HOSTS
    assert {f["status"] for f in doc["files"]} == {"added"}
    rc, text, err, dummy = run(broken, example, "--summary-only")
    assert "warning: the old revision is not valid; planned from an empty fabric" in text and "+++ " not in text


def test_identical_revisions_are_no_change(example):
    rc, text, err, dummy = run(example, copy.deepcopy(example))
    assert (rc, err) == (0, "")
    assert text == "ocs-plan: OLD -> NEW\nno change: every host's files are the same\n"


def test_summary_only_prints_no_diff(example):
    rc, text, err, dummy = run(example, changed(example, move_instance), "--summary-only")
    assert rc == 2
    assert "  ~ vm-r01-01-d moved hv-r01-01 -> hv-r01-02" in text
    assert "Hosts affected (4): hv-r01-01, hv-r01-02, tor-r01, tor-r01b" in text
    assert "===" not in text and "@@" not in text


def test_redact_keeps_the_line_and_hides_the_value():
    text = "router bgp 1\n neighbor TOR password a.b-c\n neighbor TOR timers 3 9\n"
    assert plan.redact(text) == "router bgp 1\n neighbor TOR password <redacted>\n neighbor TOR timers 3 9\n"
    assert plan.secrets(text) == ["a.b-c"]


def test_usage_errors_exit_1(tmp_path):
    err = io.StringIO()
    assert plan.main(["only-one"], io.StringIO(), err) == 1
    assert plan.main([str(tmp_path / "missing"), str(tmp_path / "missing")], io.StringIO(), err) == 1
    assert "missing: no such inventory (a path, or GITREF:PATH)" in err.getvalue()


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t.invalid"] + list(args),
                   check=True, capture_output=True)


def test_git_revisions_through_the_inventory_loader(tmp_path, monkeypatch):
    """Two commits of an inventory repository: HEAD~1 has the example, HEAD vm-r01-01-d moved."""
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo / "inv")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "example")
    vars_dir = repo / "inv" / "host_vars"
    src, dst = (yaml.safe_load((vars_dir / ("%s.yml" % h)).read_text()) for h in ("hv-r01-01", "hv-r01-02"))
    dst["ocs_instances"].append(src["ocs_instances"].pop())
    for host, data in (("hv-r01-01", src), ("hv-r01-02", dst)):
        (vars_dir / ("%s.yml" % host)).write_text(yaml.safe_dump(data))
    _git(repo, "commit", "-qam", "move vm-r01-01-d")
    monkeypatch.chdir(repo / "inv")
    out, err = io.StringIO(), io.StringIO()
    rc = plan.main(["HEAD~1:.", "HEAD:.", "--format", "json"], out, err)
    assert (rc, err.getvalue()) == (2, "")
    doc = json.loads(out.getvalue())
    assert doc["summary"]["instances"]["moved"] == [{"name": "vm-r01-01-d", "from": "hv-r01-01", "to": "hv-r01-02"}]
    assert doc["summary"]["hosts"]["affected"] == ["hv-r01-01", "hv-r01-02", "tor-r01", "tor-r01b"]
    err = io.StringIO()
    assert plan.main(["no-such-ref:.", "HEAD:."], io.StringIO(), err) == 1
    assert "no-such-ref is not a commit of the git repository" in err.getvalue()
