"""One inventory reader: tools and tests see exactly the fabric the render sees.

The inventory here uses what the old YAML reader got wrong: fabric settings in
a group's ``vars:`` inside the inventory file, and a vaulted BGP password.
"""

import os
import subprocess

import yaml

from helpers import BIN, EXAMPLE, ansible_env, render
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.module_utils.frr import config_lines
from ansible_collections.ocs.l3.plugins.module_utils.routes import host_lines
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input

PASSWORD = "s3cr3t-bgp-key"


def _inventory(tmp_path):
    inv = tmp_path / "inv"
    subprocess.run(["cp", "-r", EXAMPLE, str(inv)], check=True)
    pw = tmp_path / "vault-pass"
    pw.write_text("vault password of the test\n")
    vaulted = subprocess.run([os.path.join(BIN, "ansible-vault"), "encrypt_string", "--vault-password-file", str(pw),
                              PASSWORD, "--name", "password"], capture_output=True, text=True, check=True,
                             env=ansible_env()).stdout
    # ocs_racks moves into the inventory file's `all: vars:`; the password is vaulted.
    fabric_file = inv / "group_vars" / "all" / "fabric.yml"
    data = yaml.safe_load(fabric_file.read_text())
    racks = data.pop("ocs_racks")
    racks["r01"]["instance_gateway"] = "198.19.1.254"
    fabric_file.write_text(yaml.safe_dump(data).replace("bgp:\n", "bgp:\n" + "".join(
        "    " + line + "\n" for line in vaulted.splitlines()), 1))
    hosts = yaml.safe_load((inv / "hosts.yml").read_text())
    hosts["all"]["vars"] = {"ocs_racks": racks}
    (inv / "hosts.yml").write_text(yaml.safe_dump(hosts))
    return inv, pw


def test_reader_sees_group_vars_and_vaulted_values_as_the_render_does(tmp_path):
    inv, pw = _inventory(tmp_path)
    assert "!vault" in (inv / "group_vars" / "all" / "fabric.yml").read_text()
    fab = build(load_fabric_input(str(inv), vault_password_files=[str(pw)]))
    assert fab.bgp["password"] == PASSWORD
    hv = fab.hosts["hv-r01-01"]
    assert "198.19.1.254" in "\n".join(host_lines(fab, hv))  # the rack's gateway from `all: vars:`

    out = tmp_path / "build"
    proc = render(str(out), str(inv), "--vault-password-file", str(pw))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for host in ("hv-r01-01", "tor-r01", "spine1"):
        frr = (out / host / "etc" / "frr" / "frr.conf").read_text()
        assert "password %s" % PASSWORD in frr
        assert all(line in frr.splitlines() for line in config_lines(fab, fab.hosts[host]) if line.strip())
    routes = (out / "hv-r01-01" / "etc" / "ocs-l3" / "routes.batch").read_text().splitlines()
    assert [line for line in routes if not line.startswith("#")] == host_lines(fab, hv)


def test_reader_without_the_vault_password_fails_clearly(tmp_path):
    """In a process of its own: Ansible keeps vault secrets process-wide once set."""
    inv, _pw = _inventory(tmp_path)
    code = ("from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input\n"
            "load_fabric_input(%r)\n" % str(inv))
    proc = subprocess.run([os.path.join(BIN, "python"), "-c", code], capture_output=True, text=True,
                          env=ansible_env(), timeout=120)
    assert proc.returncode != 0
    assert "undecryptable" in proc.stderr and "Vault" in proc.stderr
