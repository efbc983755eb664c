"""Round 8, PULL (issue 19): one hypervisor converged from its own signed bundle in pull mode,
with no fleet inventory on it.

- The host gets a pull kit (ansible-core and its Python dependencies copied from the controller's
  virtualenv, the ocs.l3 collection and ansible.posix: what a package would install) and makes its
  own key pair (``ocs-pull keygen``: the private key never leaves it); it pins the controller's
  public key (``ocs-pull pin``).
- The controller publishes every bundle once (``tools/ocs-bundle publish``, the scenario's
  inventory); the host's bundle goes to a directory store on the host.
- The host's state after the push (harness.host_state: routes, addresses, iptables, nftables,
  FRR's running configuration) is read; the round then breaks it (an instance route of ours
  deleted, the route file removed, dnsmasq's host file emptied), and ``ocs-pull`` brings it back:
  the state equals the push's, from a work inventory holding this host only.
- A tampered bundle and one signed by another key are refused (exit 1, named), and nothing
  changes: neither the state nor the applied generation. The good bundle pulled again applies
  with nothing changed."""

import glob
import json
import os
import re
import subprocess

import pytest

from fabric import FAB, ROOT, wait_for
from ansible_collections.ocs.l3.plugins.module_utils.addr import ntoa
from harness import BASE, BIN, EPH, files_sha256, host_state, ok, run
from ansible_collections.ocs.l3.plugins.module_utils import bundle as lib
from ansible_collections.ocs.l3.plugins.module_utils import constants
from ansible_collections.ocs.l3.plugins.plugin_utils import bundles

HOST = "hv-r01-01"
KIT = "/opt/ocs-pull"  # on the host
STORE = "/var/lib/ocs-test-store"  # the directory store, on the host
TMP = os.path.join(EPH, "pull")
SITE = glob.glob(os.path.join(os.path.dirname(BIN), "lib", "python3*", "site-packages"))[0]
# ansible-core and what it imports (its requirements), the collection's cryptography: copied as installed
PACKAGES = ["ansible", "jinja2", "markupsafe", "yaml", "_yaml", "resolvelib", "packaging", "cryptography", "cffi",
            "_cffi_backend*.so", "pycparser"]
DISTRIBUTIONS = ("ansible_core", "jinja2", "markupsafe", "pyyaml", "resolvelib", "packaging", "cryptography", "cffi",
                 "pycparser")  # their metadata too: ansible-core reads the versions
STATE = {}


def _collections():
    """The collections the roles use: ocs.l3 as molecule installed it, ansible.posix from the ansible bundle."""
    return {"ocs/l3": os.path.join(ROOT, "molecule", "build", "collections", "ansible_collections", "ocs", "l3"),
            "ansible/posix": os.path.join(SITE, "ansible_collections", "ansible", "posix")}


def pull(*args, check=False):
    """``ocs-pull`` on the host, as its timer runs it (default key, pinned signer, work directory)."""
    env = "PATH=%s/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONPATH=%s/site:%s/collections ANSIBLE_COLLECTIONS_PATH=%s/collections" \
        % (KIT, KIT, KIT, KIT)
    res = run(HOST, "env %s python3 %s/collections/ansible_collections/ocs/l3/tools/ocs-pull %s"
              % (env, KIT, " ".join(args)))
    if check:
        assert res.rc == 0, "ocs-pull %s: rc %d\n%s\n%s" % (" ".join(args), res.rc, res.stdout[-4000:], res.stderr[-3000:])
    return res


def _store_bundle(data, case):
    """Put ``data`` in the host's store as its latest bundle (named by its hash, as publish does)."""
    name = lib.bundle_name(data)
    local = os.path.join(TMP, case)
    with open(local, "wb") as fh:
        fh.write(data)
    subprocess.run(["podman", "cp", local, "%s:%s/%s/%s" % (HOST, STORE, HOST, name)], check=True)
    ok(HOST, "echo %s > %s/%s/latest" % (name, STORE, HOST))


def test_round8_the_host_gets_a_pull_kit_its_own_key_and_the_controllers_pinned():
    subprocess.run(["rm", "-rf", TMP], check=True)
    kit = os.path.join(TMP, "kit")
    os.makedirs(os.path.join(kit, "site"))
    os.makedirs(os.path.join(kit, "bin"))
    for pattern in PACKAGES:
        found = glob.glob(os.path.join(SITE, pattern))
        assert found, "%s not in %s" % (pattern, SITE)
        for path in found:
            subprocess.run(["cp", "-a", path, os.path.join(kit, "site")], check=True)
    for entry in os.listdir(SITE):
        if entry.endswith(".dist-info") and entry.lower().split("-")[0] in DISTRIBUTIONS:
            subprocess.run(["cp", "-a", os.path.join(SITE, entry), os.path.join(kit, "site")], check=True)
    for name, path in _collections().items():
        dest = os.path.join(kit, "collections", "ansible_collections", name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        subprocess.run(["cp", "-a", path, dest], check=True)
    with open(os.path.join(kit, "bin", "ansible-playbook"), "w") as fh:
        fh.write("#!/usr/bin/python3\nimport sys\nfrom ansible.cli.playbook import main\nsys.exit(main())\n")
    os.chmod(os.path.join(kit, "bin", "ansible-playbook"), 0o755)
    ok(HOST, "rm -rf %s %s" % (KIT, STORE))
    subprocess.run(["podman", "cp", kit, "%s:%s" % (HOST, KIT)], check=True)
    public = pull("keygen", check=True).stdout.strip()
    assert public.startswith("ocs-"), public
    keys = os.path.join(TMP, "keys")
    os.makedirs(keys)
    with open(os.path.join(keys, HOST + ".pub"), "w") as fh:
        fh.write(public + "\n")
    signer = bundles.signing_key(os.path.join(TMP, "signer.key"))
    pull("pin", "'%s'" % signer, check=True)
    assert ok(HOST, "stat -c %%a %s" % constants.BUNDLE_KEY_PATH).strip() == "600"


def publish(store, signing_key, generation):
    """tools/ocs-bundle publish of the scenario's inventory (validated and rendered once) into ``store``."""
    proc = subprocess.run([os.path.join(BIN, "python"), os.path.join(ROOT, "tools", "ocs-bundle"),
                           "publish", "-i", BASE[0], "--store", store, "--keys", os.path.join(TMP, "keys"),
                           "--signing-key", signing_key, "--", "-e", "ocs_render_generation=%d" % generation,
                           "-e", "ocs_render_build_dir=%s" % os.path.join(TMP, "build")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert os.listdir(store) == [HOST]  # the only host with a key
    with open(os.path.join(store, HOST, "latest")) as fh:
        with open(os.path.join(store, HOST, fh.read().strip()), "rb") as bundle:
            return bundle.read()


def test_round8_the_controller_publishes_the_bundles_once():
    applied = ok(HOST, "cat %s 2>/dev/null || true" % constants.GENERATION_PATH).strip()
    # the push's own generation (a bundle may not be older; a later push may not be older than the bundle)
    STATE["generation"] = int(applied) if applied else 1
    STATE["good"] = publish(os.path.join(TMP, "store"), os.path.join(TMP, "signer.key"), STATE["generation"])
    ok(HOST, "mkdir -p %s" % STORE)
    subprocess.run(["podman", "cp", os.path.join(TMP, "store", HOST), "%s:%s/%s" % (HOST, STORE, HOST)], check=True)


def test_round8_the_host_converges_from_its_bundle_to_the_pushs_state():
    STATE["push"] = host_state(HOST)
    files = files_sha256(HOST, constants.ROUTES_PATH, constants.DHCP_HOSTS_PATH)
    inst = FAB.hosts[HOST].instances[0]
    ok(HOST, "ip route del %s/32 proto 211 && rm %s && : > %s"
       % (ntoa(inst.ip), constants.ROUTES_PATH, constants.DHCP_HOSTS_PATH))
    assert host_state(HOST) != STATE["push"]  # the break shows
    res = pull("--store", STORE, check=True)
    assert "generation %d" % STATE["generation"] in res.stdout, res.stdout[-2000:]
    work = json.loads(ok(HOST, "cat %s/inventory.json" % constants.BUNDLE_WORK_DIR))
    hosts = [h for group in work["all"]["children"].values() for h in group["hosts"]]
    assert hosts == [HOST], work  # no fleet inventory on the host
    wait_for("%s back to the push's state" % HOST, lambda: host_state(HOST) == STATE["push"], 60)
    assert files_sha256(HOST, constants.ROUTES_PATH, constants.DHCP_HOSTS_PATH) == files
    assert ok(HOST, "cat %s" % constants.GENERATION_PATH).strip() == str(STATE["generation"])


@pytest.mark.parametrize("case", ["tampered", "other-signer"])
def test_round8_a_bad_bundle_is_refused_and_nothing_changes(case):
    good = STATE["good"]
    if case == "tampered":
        middle = len(good) // 2
        data = good[:middle] + bytes([good[middle] ^ 1]) + good[middle + 1:]
    else:  # a real bundle for this host's key, signed by a key the host did not pin
        other = os.path.join(TMP, "other.key")
        bundles.signing_key(other)
        data = publish(os.path.join(TMP, "store-other"), other, STATE["generation"])
    _store_bundle(data, case)
    before = host_state(HOST)
    res = pull("--store", STORE)
    assert res.rc == 1, (res.rc, res.stdout[-2000:], res.stderr[-2000:])
    assert "signature does not verify against the pinned controller key" in res.stderr, res.stdout + res.stderr
    assert host_state(HOST) == before
    assert ok(HOST, "cat %s" % constants.GENERATION_PATH).strip() == str(STATE["generation"])


def test_round8_the_good_bundle_again_changes_nothing():
    """The store's latest back to the good bundle, pulled again: applied with nothing changed."""
    _store_bundle(STATE["good"], "good")
    res = pull("--store", STORE, check=True)
    recap = re.search(r"^%s\s+: ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0" % HOST, res.stdout, re.M)
    assert recap and recap.group(1) == "0", res.stdout[-3000:]
    assert host_state(HOST) == STATE["push"]
