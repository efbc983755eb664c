"""One inventory reader: tools and tests see exactly the fabric the render sees.

The inventory here uses what the old YAML reader got wrong: fabric settings in
a group's ``vars:`` inside the inventory file, and a vaulted BGP password.
"""

import json
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


LINK_KEYS = ("l1nk-Key-eth0", "l1nk-Key-eth1")


def _vault(pw, secret):
    return subprocess.run([os.path.join(BIN, "ansible-vault"), "encrypt_string", "--vault-password-file", str(pw),
                           secret, "--name", "password"], capture_output=True, text=True, check=True,
                          env=ansible_env()).stdout


def test_vaulted_link_passwords_reach_only_their_links(tmp_path):
    """Issue 18: hv-r01-01's two uplinks carry their own vaulted passwords (host_vars, block style,
    `!vault`). The reader hands the model plain strings; the render gives hv-r01-01 its two keys and
    never the fleet password (vaulted too), each ToR the key of its own link with hv-r01-01 and the
    fleet password for the rest, and every other host neither key."""
    inv, pw = _inventory(tmp_path)
    path = inv / "host_vars" / "hv-r01-01.yml"
    host = yaml.safe_load(path.read_text())
    ups = host.pop("ocs_uplinks")
    text = "---\n" + yaml.safe_dump(host) + "ocs_uplinks:\n"
    for up, key in zip(ups, LINK_KEYS):
        text += "  - " + yaml.safe_dump(up, default_flow_style=True).strip()[1:-1].replace(", ", "\n    ") + "\n"
        text += "".join("    " + line + "\n" for line in _vault(pw, key).splitlines())
    path.write_text(text)
    assert text.count("!vault") == 2 and not any(key in text for key in LINK_KEYS)

    # In a process of its own (Ansible keeps vault secrets process-wide once set): the model's values.
    code = ("import json\n"
            "from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input\n"
            "from ansible_collections.ocs.l3.plugins.module_utils.fabric import build\n"
            "ups = build(load_fabric_input(%r, vault_password_files=[%r])).hosts['hv-r01-01'].uplinks\n"
            "print(json.dumps([[u.password, type(u.password).__name__] for u in ups]))\n" % (str(inv), str(pw)))
    proc = subprocess.run([os.path.join(BIN, "python"), "-c", code], capture_output=True, text=True,
                          env=ansible_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [[key, "str"] for key in LINK_KEYS]  # plain str, not a vault object

    out = tmp_path / "build"
    proc = render(str(out), str(inv), "--vault-password-file", str(pw))
    assert proc.returncode == 0, proc.stdout + proc.stderr

    def files(name):
        return "\n".join(p.read_text() for p in sorted((out / name).rglob("*")) if p.is_file())
    hv1 = files("hv-r01-01")
    assert all(key in hv1 for key in LINK_KEYS) and PASSWORD not in hv1
    assert " neighbor 198.18.1.1 password %s\n" % LINK_KEYS[0] in hv1
    assert " neighbor 198.18.1.129 password %s\n" % LINK_KEYS[1] in hv1
    for tor, key, other in (("tor-r01", LINK_KEYS[0], LINK_KEYS[1]), ("tor-r01b", LINK_KEYS[1], LINK_KEYS[0])):
        text = files(tor)
        assert key in text and other not in text and PASSWORD in text, tor
    for name in ("hv-r01-02", "tor-r02", "spine1", "gw-01"):
        text = files(name)
        assert not any(key in text for key in LINK_KEYS) and PASSWORD in text, name
    # The example's hv-r02-01 carries its own (plain) key on its only link: no fleet password either.
    assert PASSWORD not in files("hv-r02-01") and "example-link-key-r02-01" in files("hv-r02-01")
