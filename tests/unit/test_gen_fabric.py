"""tools/gen_fabric.py: deterministic, valid, and an address plan that scales."""

import hashlib
import json
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts  # noqa: E402
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build  # noqa: E402
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input  # noqa: E402

from ansible_collections.ocs.l3.tools import gen_fabric as gen  # noqa: E402


def digest(path):
    h = hashlib.sha256()
    for base, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(base, name)
            h.update(os.path.relpath(full, path).encode())
            h.update(open(full, "rb").read())
    return h.hexdigest()


def test_same_arguments_same_bytes_other_seed_other_choice(tmp_path):
    a = gen.generate(str(tmp_path / "a"), 3, 4, 5, 0.3, seed=7)
    b = gen.generate(str(tmp_path / "b"), 3, 4, 5, 0.3, seed=7)
    c = gen.generate(str(tmp_path / "c"), 3, 4, 5, 0.3, seed=8)
    assert a["instances"] == 60 and a["floating_ips"] == 18
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_generated_fabric_validates_and_every_host_gets_files(tmp_path):
    out = tmp_path / "inv"
    summary = gen.generate(str(out), 3, 4, 5, 0.5)
    assert summary["data_only_ranges"] == []  # small sizes: 198.18.0.0/15 and documentation ranges only
    fab = build(load_fabric_input(str(out)))
    assert fab.instance_count == 60 and len(fab.by_role["hypervisor"]) == 12
    assert len(fab.by_role["tor"]) == 3 and len(fab.by_role["spine"]) == 2 and len(fab.by_role["nat_gateway"]) == 2
    assert sum(1 for i in fab.instances() if i.floating_ip is not None) == 30
    plans = fabric_artifacts(fab)
    assert all(plans[h.name] for h in fab.by_role["hypervisor"])
    # the layout any playbook can use with -i: instances in one file, not in host_vars
    assert sorted(os.listdir(out)) == ["group_vars", "host_vars", "hosts.yml", "instances.json", "zz-racks.yml"]
    fabric = yaml.safe_load((out / "group_vars" / "all" / "fabric.yml").read_text())
    assert fabric["ocs_fabric"]["instances_file"] == "instances.json"
    assert all("ocs_instances" not in yaml.safe_load(p.read_text()) for p in (out / "host_vars").iterdir())
    assert len(json.loads((out / "instances.json").read_text())) == 60


def test_gateway_mode_and_static_routing(tmp_path):
    gen.generate(str(tmp_path / "g"), 2, 2, 3, 0.5, nat_mode="gateway", routing_mode="static")
    fab = build(load_fabric_input(str(tmp_path / "g")))
    assert fab.nat_mode == "gateway" and fab.routing_mode == "static"
    assert all(h.public_address is None for h in fab.by_role["hypervisor"])


def test_dual_stack_fleet(tmp_path):
    """--dual-stack (issue 21's benchmark): every instance an ip6, the border's IPv6 session on every spine."""
    gen.generate(str(tmp_path / "d"), 2, 2, 3, 0.5, dual_stack=True)
    fab = build(load_fabric_input(str(tmp_path / "d")))
    assert fab.dual_stack and all(i.ip6 is not None for i in fab.instances())
    assert [(ip6, asn) for ip6, asn, dummy, dummy2 in fab.border_peers6] == [(0x20010DB800FF << 80 | 0xFE, 65530)]
    assert all(h.uplinks[0].address6 is not None for h in fab.by_role["spine"])
    assert fabric_artifacts(fab)
    gen.generate(str(tmp_path / "v4"), 2, 2, 3, 0.5)
    v4 = [(tmp_path / "v4" / "group_vars" / "all" / "fabric.yml").read_text()]
    v4 += [p.read_text() for p in (tmp_path / "v4" / "host_vars").iterdir()]
    assert not [text for text in v4 if "6:" in text or "address6" in text]  # no IPv6 field without the flag


@pytest.mark.parametrize("racks,internal,floating,data_only", [
    (10, ["198.18.0.0/16", "198.19.0.0/17"], "198.19.128.0/17", []),
    (100, ["198.18.0.0/16", "10.0.0.0/8"], "198.19.0.0/16", ["10.0.0.0/8"]),
    (500, ["198.18.0.0/16", "10.0.0.0/8"], "100.64.0.0/10", ["10.0.0.0/8", "100.64.0.0/10"]),
])
def test_address_plan_for_the_benchmark_sizes(racks, internal, floating, data_only):
    plan = gen.Plan(racks, 20, 50, racks * 1000 // 5, 2, 2, "host")
    assert [gen.cidr(n) for n in plan.internal_ranges] == internal
    assert gen.cidr(plan.floating_ranges[-1]) == floating
    assert plan.data_only == data_only
    assert plan.inst_block == 1024 and plan.host_block == 32


@pytest.mark.parametrize("racks", [3, 100, 500])
def test_management_range_is_outside_every_pool(racks):
    """Past 508 public addresses the floating pools take 192.0.2.0/24 too: management stays clear."""
    plan = gen.Plan(racks, 20, 50, racks * 1000 // 5, 2, 2, "host")
    base, plen = gen.MANAGEMENT
    for fbase, fplen in plan.floating_ranges + plan.internal_ranges:
        assert base + (1 << (32 - plen)) <= fbase or fbase + (1 << (32 - fplen)) <= base


def test_too_big_is_refused():
    with pytest.raises(ValueError, match="198.18.1.0"):
        gen.Plan(2000, 40, 1, 0, 2, 2, "host")


def test_cli_refuses_to_overwrite(tmp_path, capsys):
    assert gen.main([str(tmp_path / "x"), "--racks", "1", "--hypervisors", "1", "--instances", "1"]) == 0
    with pytest.raises(SystemExit):
        gen.main([str(tmp_path / "x")])
    assert "--force" in capsys.readouterr().err
