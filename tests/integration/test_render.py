"""The render pipeline end to end: example inventory -> build/ + manifest."""

import hashlib
import json
import os

import yaml

from helpers import EXAMPLE, inventory_copy, render
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build as build_fabric
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input


def test_every_fabric_host_has_its_files(rendered):
    manifest = json.loads((rendered / "manifest.json").read_text())
    fab = build_fabric(load_fabric_input(EXAMPLE))
    assert set(manifest["hosts"]) == set(fab.hosts)
    assert manifest["instances"] == fab.instance_count == 15
    for host, entry in manifest["hosts"].items():
        assert entry["role"] == fab.hosts[host].role
        for f in entry["files"]:
            data = (rendered / host / f["path"].lstrip("/")).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f["sha256"]
            if f["path"].endswith(".json"):  # JSON has no comments: the notice is a member
                assert json.loads(data)["managed"].startswith("Managed by ocs-l3"), f["path"]
            else:
                assert data.startswith(b"#\n# Managed by ocs-l3"), f["path"]
    kinds = {h: sorted(f["kind"] for f in e["files"]) for h, e in manifest["hosts"].items()}
    assert kinds["hv-r01-01"] == ["agent", "dnsmasq", "dnsmasq-hosts", "expected", "frr", "frr-daemons", "ip6tables",
                                  "iproute2", "iptables", "iptables", "routes", "systemd"]
    assert kinds["tor-r01"] == ["expected", "frr", "frr-daemons", "ip6tables", "iproute2", "iptables", "routes"]
    assert kinds["spine1"] == ["expected", "frr", "frr-daemons", "ip6tables", "iptables"]
    assert kinds["gw-01"] == ["expected", "frr", "frr-daemons", "ip6tables", "iproute2", "iptables", "nftables",
                              "routes"]


def test_routes_file_matches_the_inventory(rendered):
    text = (rendered / "hv-r02-01/etc/ocs-l3/routes.batch").read_text()
    hv = yaml.safe_load(open(os.path.join(EXAMPLE, "host_vars", "hv-r02-01.yml")))
    for inst in hv["ocs_instances"]:
        assert " %s/32 dev tap" % inst["ip"] in text
    assert (rendered / "tor-r02/etc/ocs-l3/routes.batch").read_text().endswith(
        "route replace blackhole 198.19.2.0/24 proto 211\n"
        "route replace blackhole 2001:db8:0:2::/64 proto 211 metric 1024\n")  # the example is dual-stack


def test_second_render_changes_nothing(tmp_path):
    first = render(str(tmp_path))
    assert first.returncode == 0 and "changed=1" in first.stdout
    second = render(str(tmp_path))
    assert second.returncode == 0, second.stdout
    assert "changed=1" not in second.stdout


def test_a_rerender_rewrites_only_the_hosts_whose_files_differ(tmp_path):
    """An unchanged host keeps its directory (nothing written or deleted); a host whose files
    changed, or whose file on disk no longer holds what was rendered, gets its files anew."""
    build = tmp_path / "build"
    assert render(str(build)).returncode == 0
    inode = {h: os.stat(build / h).st_ino for h in ("hv-r01-01", "tor-r01", "spine1", "hv-r02-01")}
    (build / "spine1/etc/frr/frr.conf").write_text("edited by hand\n")
    inv = inventory_copy(tmp_path, "hv-r01-01", lambda d: d["ocs_instances"].pop())
    proc = render(str(build), str(inv))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = {h: os.stat(build / h).st_ino for h in inode}
    assert after["hv-r02-01"] == inode["hv-r02-01"]  # untouched
    for host in ("hv-r01-01", "tor-r01", "spine1"):  # an instance gone (its hypervisor, its ToR); a hand edit
        assert after[host] != inode[host], host
    assert (build / "spine1/etc/frr/frr.conf").read_text().startswith("#\n# Managed by ocs-l3")
    manifest = json.loads((build / "manifest.json").read_text())
    for host, entry in manifest["hosts"].items():
        for f in entry["files"]:
            data = (build / host / f["path"].lstrip("/")).read_bytes()
            assert hashlib.sha256(data).hexdigest() == f["sha256"], (host, f["path"])
    assert not [p for p in os.listdir(build) if p.startswith((".staging-", ".trash-"))]


def _broken_copy(tmp_path, mutate):
    return inventory_copy(tmp_path, "hv-r01-02", mutate)


def test_broken_fabric_fails_naming_the_field_and_writes_nothing(tmp_path):
    def mutate(d):
        d["ocs_instances"][1]["ip"] = "198.19.2.7"
        d["ocs_instances"][0]["mac"] = "01:00:5e:00:00:01"
    inv = _broken_copy(tmp_path, mutate)
    out = tmp_path / "build"
    proc = render(str(out), str(inv))
    assert proc.returncode != 0
    assert ("hypervisors.hv-r01-02.ocs_instances[1] (vm-r01-02-b).ip 198.19.2.7 is outside rack r01 "
            "instance_subnets [198.19.1.0/24]") in proc.stdout
    assert "(vm-r01-02-a).mac 01:00:5e:00:00:01 is a multicast or broadcast MAC address" in proc.stdout
    assert not out.exists()


def test_limit_renders_only_the_rack_but_validates_everything(tmp_path):
    proc = render(str(tmp_path), EXAMPLE, "--limit", "rack_r01")
    assert proc.returncode == 0, proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "hv-r01-01", "hv-r01-02", "manifest.json", "tor-r01", "tor-r01b"]

    def mutate(d):
        d["ocs_address"] = "198.18.2.99"  # wrong rack for hv-r01-02, outside the limit below
    inv = _broken_copy(tmp_path, mutate)
    proc = render(str(tmp_path / "b2"), str(inv), "--limit", "rack_r02")
    assert proc.returncode != 0
    assert "hypervisors.hv-r01-02.ocs_address 198.18.2.99 is outside rack r01 host_subnet 198.18.1.0/24" in proc.stdout


def test_workers_render_the_same_files_and_report_a_hosts_variable_error(tmp_path):
    """Forced workers on the example (auto forks only from 128 hosts): the same build directory as
    one process; a host variable Ansible cannot template, read in a worker, still fails the run
    naming the variable, and nothing is written."""
    one, three = tmp_path / "one", tmp_path / "three"
    assert render(str(one), EXAMPLE, "-e", "ocs_render_workers=1").returncode == 0
    proc = render(str(three), EXAMPLE, "-e", "ocs_render_workers=3")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for path in sorted(p for p in one.rglob("*") if p.is_file() and p.name != ".lock"):
        assert path.read_bytes() == (three / path.relative_to(one)).read_bytes(), path
    assert sorted(p.relative_to(one) for p in one.rglob("*")) == sorted(p.relative_to(three) for p in three.rglob("*"))
    inv = _broken_copy(tmp_path, lambda d: d.update(ocs_address="{{ no_such_variable }}"))
    proc = render(str(tmp_path / "bad"), str(inv), "-e", "ocs_render_workers=3")
    assert proc.returncode != 0
    assert "'no_such_variable' is undefined" in proc.stdout and "Traceback" not in proc.stdout
    assert not (tmp_path / "bad").exists()
    proc = render(str(tmp_path / "neg"), EXAMPLE, "-e", "ocs_render_workers=-1")
    assert proc.returncode != 0 and "workers must be 0 (auto) or a positive number, not -1" in proc.stdout
