"""Signed per-host bundles end to end on this machine (issue 19, item 2), without touching it.

- ``tools/ocs-bundle publish`` (ocs.l3.render with the bundle options): every host's bundle of
  the example opens with that host's key to exactly the files render.yml wrote, byte for byte.
- ``tools/ocs-pull`` against the directory store, with the apply, for hv-r01-01, in a private
  mount and network namespace (overlays on /etc, /usr/lib, /var/lib; a fresh /run): the roles
  that need no daemon (routes, NAT, firewall, the agent's files; ``ocs_setup`` skipped: no apt,
  no systemd here) converge the namespace from the bundle with a one-host inventory, a second
  run changes nothing; then a tampered bundle, one signed by another key and an older
  generation are each refused and nothing changes (files, routes, iptables). DHCP and FRR need
  their daemons: the molecule round does those (README, "Pull mode from bundles").
"""

import json
import os
import re
import shutil
import subprocess

import pytest

from helpers import BIN, EXAMPLE, ROOT, ansible_env
from ansible_collections.ocs.l3.plugins.module_utils import bundle as lib
from ansible_collections.ocs.l3.plugins.plugin_utils import bundles
from ansible_collections.ocs.l3.tools import overlay_ns

HOST = "hv-r01-01"
PY = os.path.join(BIN, "python")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bundles")
    keys = tmp / "keys"
    keys.mkdir()
    hosts = sorted(n[:-len(".yml")] for n in os.listdir(os.path.join(EXAMPLE, "host_vars")))
    for host in hosts:
        out = subprocess.run([PY, os.path.join(ROOT, "tools", "ocs-pull"), "keygen", "--key", str(tmp / "hk" / host)],
                             capture_output=True, text=True, check=True)
        (keys / (host + ".pub")).write_text(out.stdout)
    (tmp / "signer.pub").write_text(bundles.signing_key(str(tmp / "signer.key")) + "\n")
    proc = subprocess.run([PY, os.path.join(ROOT, "tools", "ocs-bundle"), "publish", "-i", EXAMPLE,
                           "--store", str(tmp / "store"), "--keys", str(keys), "--signing-key", str(tmp / "signer.key"),
                           "--", "-e", "ocs_render_build_dir=%s" % (tmp / "build")],
                          cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "10 bundles published to %s; no public key: none" % (tmp / "store") in " ".join(proc.stdout.split())
    return tmp, hosts


def _open(tmp, host, data=None):
    if data is None:
        name = (tmp / "store" / host / "latest").read_text().strip()
        data = (tmp / "store" / host / name).read_bytes()
    return lib.open_bundle(data, (tmp / "signer.pub").read_text(), (tmp / "hk" / host).read_bytes(), host)


def test_every_bundle_equals_the_render_byte_for_byte(published):
    tmp, hosts = published
    manifest = json.loads((tmp / "build" / "manifest.json").read_text())["hosts"]
    assert sorted(manifest) == hosts
    for host in hosts:
        b = _open(tmp, host)
        assert [p for p, dummy, dummy2 in b.files] == [f["path"] for f in manifest[host]["files"]], host
        for path, mode, body in b.files:
            assert body == (tmp / "build" / host / path.lstrip("/")).read_bytes(), (host, path)
        assert [(f["path"], f["mode"]) for f in manifest[host]["files"]] == [(p, m) for p, m, dummy in b.files]


def test_a_host_key_opens_its_own_bundle_only(published):
    tmp, dummy = published
    name = (tmp / "store" / "hv-r02-01" / "latest").read_text().strip()
    data = (tmp / "store" / "hv-r02-01" / name).read_bytes()
    assert b"example-link-key" not in data  # hv-r02-01's link password, in its frr.conf
    with pytest.raises(lib.BundleError, match="encrypted to key"):
        lib.open_bundle(data, (tmp / "signer.pub").read_text(), (tmp / "hk" / HOST).read_bytes(), "hv-r02-01")


NS = overlay_ns.PRELUDE + """snap() {{ (ip -4 route show table all proto 211; iptables-save | grep -v '^#' | sed 's/\\[[0-9]*:[0-9]*\\]//';
          cat /etc/ocs-l3/routes.batch /etc/ocs-l3/generation) > {t}/$1.state; }}
{pull} > {t}/first.log 2>&1
{pull} > {t}/second.log 2>&1
snap converged
for case in tampered other-signer older; do
  cp {t}/stores/$case/{host}/* {t}/store/{host}/
  rc=0; {pull} > {t}/$case.log 2>&1 || rc=$?
  echo "rc=$rc" >> {t}/$case.log
  snap $case
done
"""


def _store_with(tmp, host, data, case):
    """A copy of the store whose ``host/latest`` names ``data`` (stored under its own hash)."""
    d = tmp / "stores" / case / host
    d.mkdir(parents=True)
    name = lib.bundle_name(data)
    (d / name).write_bytes(data)
    (d / "latest").write_text(name + "\n")


@pytest.fixture(scope="module")
def pulled(published):
    """hv-r01-01 converged twice from its bundle in a private namespace, then three bad bundles offered."""
    if not shutil.which("unshare"):
        pytest.fail("this test needs unshare (util-linux)")
    tmp, dummy = published
    t = tmp / "ns"
    t.mkdir()
    shutil.copytree(tmp / "store", t / "store")
    good = _open(tmp, HOST)
    name = (tmp / "store" / HOST / "latest").read_text().strip()
    data = (tmp / "store" / HOST / name).read_bytes()
    _store_with(t, HOST, data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1:],
                "tampered")
    other_pem, dummy = lib.generate_key(lib.SIGNING_PUBLIC)
    host_pub = (tmp / "keys" / (HOST + ".pub")).read_text()
    _store_with(t, HOST, lib.pack(HOST, good.generation + 1, good.files, good.meta, other_pem, host_pub,
                                  good.header["collection"]), "other-signer")
    _store_with(t, HOST, lib.pack(HOST, good.generation - 1, good.files, good.meta, (tmp / "signer.key").read_bytes(),
                                  host_pub, good.header["collection"]), "older")
    pull = " ".join([PY, os.path.join(ROOT, "tools", "ocs-pull"), "--store", str(t / "store"), "--host", HOST,
                     "--key", str(tmp / "hk" / HOST), "--signer", str(tmp / "signer.pub"), "--work", str(t / "pull"),
                     "--", "--tags", "ocs_routes,ocs_nat,ocs_firewall,ocs_agent", "--skip-tags", "ocs_setup",
                     "-e", "ocs_agent_manage_service=false"])
    (t / "ns.sh").write_text(NS.format(t=t, pull=pull, host=HOST))
    proc = subprocess.run(overlay_ns.ARGV + [str(t / "ns.sh")],
                          cwd="/", env=ansible_env(), capture_output=True, text=True, timeout=900)
    logs = {n: (t / (n + ".log")).read_text() if (t / (n + ".log")).exists() else ""
            for n in ("first", "second", "tampered", "other-signer", "older")}
    assert proc.returncode == 0, proc.stderr + logs["first"][-3000:] + logs["second"][-3000:]
    return t, good, logs


def _recap(log):
    m = re.search(r"^%s\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0" % HOST, log, re.M)
    assert m, log[-3000:]
    return int(m.group(1))


def test_the_host_converges_from_its_bundle_and_a_second_run_changes_nothing(pulled):
    t, good, logs = pulled
    assert _recap(logs["first"]) > 0 and _recap(logs["second"]) == 0, logs["second"][-3000:]
    assert "verified (%d files)" % len(good.files) in logs["first"]
    inventory = json.loads((t / "pull" / "inventory.json").read_text())
    assert list(inventory["all"]["children"]) == ["hypervisors"]
    assert list(inventory["all"]["children"]["hypervisors"]["hosts"]) == [HOST]  # no fleet on the host
    files = dict((p, body) for p, dummy, body in good.files)
    assert (t / "up" / "etc" / "ocs-l3" / "routes.batch").read_bytes() == files["/etc/ocs-l3/routes.batch"]
    assert (t / "up" / "etc" / "ocs-l3" / "generation").read_text().strip() == str(good.generation)
    state = (t / "converged.state").read_text()
    assert "OCS-ANTISPOOF" in state and ":OCS-FLOAT-DNAT" in state


@pytest.mark.parametrize("case, message", [
    ("tampered", "signature does not verify"),
    ("other-signer", "signature does not verify"),
    ("older", "older than the generation"),
])
def test_a_bad_bundle_is_refused_and_nothing_changes(pulled, case, message):
    t, dummy, logs = pulled
    assert message in logs[case] and logs[case].rstrip().endswith("rc=1"), logs[case]
    assert "PLAY" not in logs[case]  # Ansible never started
    assert (t / (case + ".state")).read_text() == (t / "converged.state").read_text()


UNIT_PLAY = """---
- name: Print the bundle-mode reconcile unit
  hosts: localhost
  gather_facts: false
  vars_files: [{role}/defaults/main.yml, {role}/vars/main.yml]
  tasks:
    - name: Check the settings as the role does
      ansible.builtin.include_tasks: {role}/tasks/check.yml
    - name: Render the unit
      ansible.builtin.debug:
        msg: "{{{{ lookup('ansible.builtin.template', '{role}/templates/etc/systemd/system/ocs-l3-reconcile.service.j2') }}}}"
"""


def _unit(tmp_path, **settings):
    role = os.path.join(ROOT, "roles", "ocs_reconcile")
    # the role's two checks, without its service tasks (this machine is not touched)
    with open(os.path.join(role, "tasks", "main.yml")) as fh:
        tasks = fh.read().split("\n- name: Install the reconcile service")[0]
    (tmp_path / "check.yml").write_text(tasks)
    (tmp_path / "unit.yml").write_text(UNIT_PLAY.format(role=role).replace(role + "/tasks/check.yml",
                                                                          str(tmp_path / "check.yml")))
    proc = subprocess.run([os.path.join(BIN, "ansible-playbook"), "-i", "localhost,", str(tmp_path / "unit.yml"),
                           "-e", json.dumps(dict(settings, ocs_reconcile_mode="bundle"))],
                          cwd=ROOT, env=ansible_env(ANSIBLE_STDOUT_CALLBACK="json"), capture_output=True, text=True,
                          timeout=300)
    return proc


def test_the_reconcile_timer_pulls_this_hosts_bundle(tmp_path):
    signer = "ocs-ed25519:" + "A" * 43 + "="
    proc = _unit(tmp_path, ocs_reconcile_store="https://bundles.example.invalid/ocs", ocs_reconcile_signer=signer,
                 ocs_reconcile_collection="/srv/ocs/ocs-l3-0.4.0.tar.gz")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    unit = json.loads(proc.stdout)["plays"][0]["tasks"][-1]["hosts"]["localhost"]["msg"]
    pull = "/opt/ocs-l3/venv/bin/python /opt/ocs-l3/collections/ansible_collections/ocs/l3/tools/ocs-pull"
    assert "ExecStartPre=%s pin %s\n" % (pull, signer) in unit
    assert "ExecStartPre=%s keygen\n" % pull in unit
    assert "ExecStart=%s --store https://bundles.example.invalid/ocs --host localhost\n" % pull in unit
    assert "ansible-galaxy collection install -p /opt/ocs-l3/collections /srv/ocs/ocs-l3-0.4.0.tar.gz" in unit
    assert "Environment=PYTHONPATH=/opt/ocs-l3/collections" in unit and "git" not in unit


@pytest.mark.parametrize("store, signer", [
    ("https://bundles.example.invalid/ocs x", "ocs-ed25519:" + "A" * 43 + "="),
    ("https://bundles.example.invalid/ocs", "ocs-x25519:" + "A" * 43 + "="),
    ("https://bundles.example.invalid/ocs", ""),
])
def test_the_reconcile_timer_refuses_bad_bundle_settings(tmp_path, store, signer):
    proc = _unit(tmp_path, ocs_reconcile_store=store, ocs_reconcile_signer=signer,
                 ocs_reconcile_collection="/srv/ocs/ocs-l3-0.4.0.tar.gz")
    assert proc.returncode != 0 and "ocs_reconcile_mode bundle needs" in proc.stdout, proc.stdout[-2000:]
