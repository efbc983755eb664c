"""The ocs.l3.racks inventory plugin makes the rack groups the built-in constructed plugin made
(keyed_groups on ocs_rack), read by the real ansible-inventory."""

import json
import os
import subprocess

import yaml

from helpers import BIN, EXAMPLE, ROOT, ansible_env

CONSTRUCTED = {"plugin": "ansible.builtin.constructed", "strict": False, "use_vars_plugins": True,
               "keyed_groups": [{"key": "ocs_rack", "prefix": "rack"}]}


def _groups(inventory):
    proc = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", str(inventory), "--list"], cwd=ROOT,
                          env=ansible_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr  # every source parsed, by the plugin meant for it
    data = json.loads(proc.stdout)
    return {g: sorted(v.get("hosts", [])) for g, v in data.items() if g.startswith("rack_")}


def _with(inv, config):
    (inv / "zz-racks.yml").write_text(yaml.safe_dump(config, explicit_start=True))
    return _groups(inv)


def _copy(src, dst):
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    return dst


def test_the_example_gets_the_same_rack_groups(tmp_path):
    inv = _copy(EXAMPLE, tmp_path / "inv")
    ours = _groups(inv)  # the example's own zz-racks.yml
    assert yaml.safe_load((inv / "zz-racks.yml").read_text()) == {"plugin": "ocs.l3.racks"}
    assert ours == _with(inv, CONSTRUCTED)
    assert ours["rack_r01"] == ["hv-r01-01", "hv-r01-02", "tor-r01", "tor-r01b"]


def test_every_place_a_rack_can_be_set(tmp_path):
    """A rack in a host_vars file, in the inventory file, on a group (group_vars and inline), a
    host's over its group's, a name Ansible makes safe, a host with none."""
    inv = tmp_path / "inv"
    (inv / "host_vars").mkdir(parents=True)
    (inv / "group_vars").mkdir()
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": {
        "hypervisors": {"hosts": {"hv-a": None, "hv-b": {"ocs_rack": "r02"}, "hv-c": None, "hv-d": None}},
        "row9": {"hosts": {"hv-c": None, "hv-e": None}},
        "row8": {"hosts": {"hv-f": None}, "vars": {"ocs_rack": "r08"}},
        "tors": {"hosts": {"tor-x": None}}}}}))
    (inv / "host_vars" / "hv-a.yml").write_text("ocs_rack: r01\n")
    (inv / "host_vars" / "hv-e.yml").write_text("ocs_rack: r05\n")  # its own, over row9's
    (inv / "host_vars" / "tor-x.yml").write_text("ocs_rack: r-01.b\n")  # made safe: rack_r_01_b
    (inv / "group_vars" / "row9.yml").write_text("ocs_rack: r09\n")
    ours = _with(inv, {"plugin": "ocs.l3.racks"})
    assert ours == {"rack_r01": ["hv-a"], "rack_r02": ["hv-b"], "rack_r09": ["hv-c"], "rack_r05": ["hv-e"],
                    "rack_r08": ["hv-f"], "rack_r_01_b": ["tor-x"]}  # hv-d: none
    assert ours == _with(inv, CONSTRUCTED)
