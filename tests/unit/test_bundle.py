"""Signed per-host bundles (issue 19, item 2): the format (module_utils/bundle.py), the
controller's publish (plugin_utils/bundles.py) and the host's pull up to the apply
(plugin_utils/pull.py, --fetch-only). Every refusal names its reason and writes nothing."""

import builtins
import functools
import http.server
import json
import os
import subprocess
import threading

import pytest

from ansible_collections.ocs.l3.plugins.module_utils import bundle as lib
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import fabric_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.plugin_utils import bundles, pull, render
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input

EXAMPLE = os.path.join(render.COLLECTION_ROOT, "inventory", "example")
GENERATION = 1700000000
VERSION = render.collection_version()


@pytest.fixture(scope="module")
def fleet():
    """The example fabric, every host rendered as render.yml does (its default managed line)."""
    fab = build(load_fabric_input(EXAMPLE))
    templar = render.offline_templar()
    cache = {}
    rendered = {h: render.render_host(templar, h, arts, None, cache) for h, arts in fabric_artifacts(fab).items()}
    return fab, rendered


@pytest.fixture(scope="module")
def keys():
    signer_pem, signer_pub = lib.generate_key(lib.SIGNING_PUBLIC)
    other_pem, other_pub = lib.generate_key(lib.SIGNING_PUBLIC)
    hosts = {name: lib.generate_key(lib.HOST_PUBLIC) for name in ("a", "b")}
    return dict(signer=(signer_pem, signer_pub), other=(other_pem, other_pub), a=hosts["a"], b=hosts["b"])


def _pack(fleet, keys, host="hv-r01-01", generation=GENERATION, signer="signer", recipient="a"):
    fab, rendered = fleet
    return bundles.pack_host(fab, host, rendered[host], generation, keys[signer][0], keys[recipient][1], VERSION)


def test_every_host_of_the_example_round_trips_byte_for_byte(fleet, keys):
    fab, rendered = fleet
    for host, files in rendered.items():
        data = bundles.pack_host(fab, host, files, GENERATION, keys["signer"][0], keys["a"][1], VERSION)
        b = lib.open_bundle(data, keys["signer"][1], keys["a"][0], host, applied=GENERATION)
        assert [(p, m, body) for p, m, body in b.files] == [(a.path, a.mode, t.encode()) for a, t in files], host
        assert b.header["host"] == host and b.generation == GENERATION and b.header["collection"] == VERSION
        assert b.meta["group"] == fab.hosts[host].group
        assert [e["path"] for e in b.meta["render"]] == [a.path for a, dummy in files]
        # deterministic: the same files give the same bytes (the store name does not churn)
        assert data == bundles.pack_host(fab, host, files, GENERATION, keys["signer"][0], keys["a"][1], VERSION)


def test_the_meta_carries_what_the_roles_read_and_nothing_of_other_hosts(fleet, keys):
    b = lib.open_bundle(_pack(fleet, keys), keys["signer"][1], keys["a"][0], "hv-r01-01")
    meta = b.meta
    assert sorted(meta) == ["dual_stack", "group", "instance_ifname_prefix", "instances", "policy", "rack", "render", "role",
                            "secret", "uplinks"]
    assert meta["uplinks"] == [{"interface": "eth0", "peer": "198.18.1.1"}, {"interface": "eth1", "peer": "198.18.1.129"}]
    assert meta["policy"] == {"host_policy": True, "management_ranges": ["192.0.2.0/24"]}
    text = b"".join(body for dummy, dummy2, body in b.files)
    assert b"vm-r02-" not in text  # another rack's instances are not in this host's bundle


def test_the_ciphertext_hides_the_files(fleet, keys):
    """hv-r02-01's uplink has its own BGP password (the example): only its key reads it."""
    data = _pack(fleet, keys, host="hv-r02-01")
    fab, rendered = fleet
    frr = dict((a.path, t) for a, t in rendered["hv-r02-01"])["/etc/frr/frr.conf"]
    assert "password example-link-key-r02-01" in frr
    assert b"example-link-key" not in data and b"router bgp" not in data
    with pytest.raises(lib.BundleError, match="encrypted to key"):
        lib.open_bundle(data, keys["signer"][1], keys["b"][0], "hv-r02-01")


def _tamper(data, offset):
    return data[:offset] + bytes([data[offset] ^ 1]) + data[offset + 1:]


@pytest.mark.parametrize("case, message", [
    ("ciphertext", "signature does not verify"),
    ("header", "signature does not verify"),
    ("signature", "signature does not verify"),
    ("other signer", "signature does not verify"),
    ("truncated", "not an ocs-l3 bundle"),
    ("other host key", "is encrypted to key"),
    ("other host", "bundle is for host hv-r01-01, not hv-r01-02"),
    ("older", "is older than the generation 1700000001"),
])
def test_a_bad_bundle_is_refused_with_its_reason(fleet, keys, case, message):
    data = _pack(fleet, keys, signer="other" if case == "other signer" else "signer")
    host, key, applied = "hv-r01-01", keys["a"][0], GENERATION
    if case == "ciphertext":
        data = _tamper(data, len(data) - 200)
    elif case == "header":
        data = data.replace(b'"generation":%d' % GENERATION, b'"generation":%d' % (GENERATION + 9))
    elif case == "signature":
        data = _tamper(data, len(data) - 1)
    elif case == "truncated":
        data = data[:10]
    elif case == "other host key":
        key = keys["b"][0]
    elif case == "other host":
        host = "hv-r01-02"
    elif case == "older":
        applied = GENERATION + 1
    with pytest.raises(lib.BundleError, match=message):
        lib.open_bundle(data, keys["signer"][1], key, host, applied)


def test_the_signature_is_checked_before_the_header_is_read(keys):
    """A forged bundle with a plausible header but no valid signature says only that."""
    header = json.dumps(dict(format=1, host="x")).encode()
    forged = lib.MAGIC + len(header).to_bytes(4, "big") + header + b"\0" * 64
    with pytest.raises(lib.BundleError, match="signature does not verify"):
        lib.verify(forged, keys["signer"][1])


def test_keys_of_the_wrong_kind_are_named(keys):
    with pytest.raises(lib.BundleError, match="not an ocs-ed25519 public key"):
        lib.parse_public(keys["a"][1], lib.SIGNING_PUBLIC)
    with pytest.raises(lib.BundleError, match="not an X25519 key"):
        lib.load_private(keys["signer"][0], lib.HOST_PUBLIC)
    with pytest.raises(lib.BundleError, match="not 32 bytes"):
        lib.parse_public("ocs-x25519:AAAA", lib.HOST_PUBLIC)


def test_a_bad_path_in_a_signed_payload_is_refused(keys):
    """Defence in depth: even the controller's own signature cannot make the host write outside its directory."""
    for path in ("/../etc/passwd", "etc/x", "/etc//x", "/etc/x/"):
        data = lib.pack("h", 1, [(path, "0644", b"x")], {}, keys["signer"][0], keys["a"][1], VERSION)
        with pytest.raises(lib.BundleError, match="bad path"):
            lib.open_bundle(data, keys["signer"][1], keys["a"][0], "h")
    data = lib.pack("h", 1, [("/etc/x", "4755", b"x")], {}, keys["signer"][0], keys["a"][1], VERSION)
    with pytest.raises(lib.BundleError, match="bad mode"):
        lib.open_bundle(data, keys["signer"][1], keys["a"][0], "h")


def test_missing_cryptography_is_a_clear_error(monkeypatch):
    real = builtins.__import__

    def no_crypto(name, *args, **kwargs):
        if name.startswith("cryptography"):
            raise ImportError("No module named %r" % name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_crypto)
    with pytest.raises(lib.BundleError, match="need the Python package cryptography"):
        lib.generate_key(lib.HOST_PUBLIC)


@pytest.fixture()
def store(tmp_path, fleet, keys):
    """A directory store with hv-r01-01's bundle, the host's key and the pinned signer on disk."""
    fab, rendered = fleet
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "hv-r01-01.pub").write_text(keys["a"][1] + "\n")
    (tmp_path / "signer.key").write_bytes(keys["signer"][0])
    (tmp_path / "signer.pub").write_text(keys["signer"][1] + "\n")
    (tmp_path / "host.key").write_bytes(keys["a"][0])
    os.chmod(tmp_path / "host.key", 0o600)
    out = bundles.publish_fabric(fab, {"hv-r01-01": rendered["hv-r01-01"], "hv-r01-02": rendered["hv-r01-02"]},
                                 GENERATION, str(tmp_path / "store"), str(tmp_path / "keys"),
                                 str(tmp_path / "signer.key"))
    assert out["no_key"] == ["hv-r01-02"] and list(out["published"]) == ["hv-r01-01"]
    return tmp_path


def _pull(tmp_path, *extra, generation=None, url=None):
    gen = tmp_path / "generation"
    if generation is not None:
        gen.write_text("%d\n" % generation)
    return pull.main(["--store", url or str(tmp_path / "store"), "--host", "hv-r01-01",
                      "--key", str(tmp_path / "host.key"),
                      "--signer", str(tmp_path / "signer.pub"), "--work", str(tmp_path / "work"),
                      "--generation-file", str(gen), "--fetch-only"] + list(extra))


def test_pull_fetch_only_unpacks_the_render_result_and_a_one_host_inventory(store, fleet, capsys):
    assert _pull(store, generation=GENERATION) == 0
    fab, rendered = fleet
    base = store / "work" / "build" / "hv-r01-01"
    for art, text in rendered["hv-r01-01"]:
        assert (base / art.path.lstrip("/")).read_bytes() == text.encode(), art.path
    assert os.stat(store / "work" / "build").st_mode & 0o777 == 0o700
    result = json.loads((store / "work" / "result.json").read_text())
    assert result["generation"] == GENERATION and result["secret"] is True and result["files"] == len(rendered["hv-r01-01"])
    assert result["build_dir"] == str(store / "work" / "build") and os.path.isfile(result["host_archive"])
    inventory = json.loads((store / "work" / "inventory.json").read_text())
    hv = inventory["all"]["children"]["hypervisors"]["hosts"]["hv-r01-01"]
    assert hv["ansible_connection"] == "local" and hv["ocs_fabric"] == {"instance_ifname_prefix": "tap"}
    assert "verified (12 files)" in capsys.readouterr().out


def _replace(store_dir, data):
    """Put ``data`` in the store as an attacker with write access would: under its own hash, pointed at."""
    name = lib.bundle_name(data)
    (store_dir / "store" / "hv-r01-01" / name).write_bytes(data)
    (store_dir / "store" / "hv-r01-01" / "latest").write_text(name + "\n")


@pytest.mark.parametrize("case, message", [
    ("tampered", "signature does not verify"),
    ("other signer", "signature does not verify"),
    ("older", "older than the generation"),
    ("renamed", "does not hash to its name"),
    ("pointer", "does not name a bundle"),
    ("other version", "rendered by ocs.l3 0.0.1"),
    ("no key", "cannot read this host's bundle key"),
    ("key readable", "is readable by others"),
])
def test_pull_refuses_and_writes_nothing(store, fleet, keys, case, message, capsys):
    hdir = store / "store" / "hv-r01-01"
    name = (hdir / "latest").read_text().strip()
    data = (hdir / name).read_bytes()
    generation = GENERATION
    if case == "tampered":
        _replace(store, _tamper(data, len(data) // 2))
    elif case == "other signer":
        _replace(store, _pack(fleet, keys, signer="other"))
    elif case == "older":
        generation = GENERATION + 1
    elif case == "renamed":
        (hdir / name).write_bytes(_tamper(data, len(data) // 2))
    elif case == "pointer":
        (hdir / "latest").write_text("../../etc/passwd\n")
    elif case == "other version":
        fab, rendered = fleet
        _replace(store, bundles.pack_host(fab, "hv-r01-01", rendered["hv-r01-01"], GENERATION, keys["signer"][0],
                                          keys["a"][1], "0.0.1"))
    elif case == "no key":
        os.unlink(store / "host.key")
    elif case == "key readable":
        os.chmod(store / "host.key", 0o640)
    assert _pull(store, generation=generation) == 1
    assert message in capsys.readouterr().err
    assert not (store / "work" / "build").exists() and not (store / "work" / "result.json").exists()


def test_publish_keeps_the_newest_two_and_points_at_the_newest(store, fleet, keys):
    fab, rendered = fleet
    hdir = store / "store" / "hv-r01-01"
    first = (hdir / "latest").read_text().strip()
    names = [first]
    for gen in (GENERATION + 1, GENERATION + 2):
        data = bundles.pack_host(fab, "hv-r01-01", rendered["hv-r01-01"], gen, keys["signer"][0], keys["a"][1], VERSION)
        names.append(bundles.publish(str(store / "store"), "hv-r01-01", data))
    assert (hdir / "latest").read_text() == names[-1] + "\n"
    assert sorted(p for p in os.listdir(hdir) if p != "latest") == sorted(names[1:])
    # the same content again: the same name, nothing rewritten
    assert bundles.publish(str(store / "store"), "hv-r01-01", (hdir / names[-1]).read_bytes()) == names[-1]


def test_keygen_makes_a_private_key_once(tmp_path):
    path = str(tmp_path / "k" / "bundle.key")
    public = pull.keygen(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert pull.keygen(path) == public and public.startswith("ocs-x25519:")


def _unpacked_generation(tmp_path):
    return json.loads((tmp_path / "work" / "result.json").read_text())["generation"]


def test_pull_over_http(store, capsys):
    """The store served as static files (loopback only); the bundle is the same bytes."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(store / "store"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = "http://127.0.0.1:%d/" % server.server_address[1]
        assert _pull(store, url=url) == 0, capsys.readouterr().err
        assert _unpacked_generation(store) == GENERATION
        assert _pull(store, url=url + "nowhere") == 1
        assert "cannot fetch http://127.0.0.1" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()


def _git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"] + list(args), cwd=str(cwd),
                   check=True, capture_output=True)


def test_pull_from_git_checks_out_its_own_directory_only(store, fleet, keys, capsys):
    repo = store / "repo"
    repo.mkdir()
    _git("init", "-q", "-b", "main", cwd=repo)
    subprocess.run(["cp", "-r", str(store / "store" / "hv-r01-01"), str(repo)], check=True)
    (repo / "hv-r02-01").mkdir()
    (repo / "hv-r02-01" / "latest").write_text("another host's\n")
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "bundles", cwd=repo)
    url = "git+file://%s#main" % repo
    assert _pull(store, url=url) == 0, capsys.readouterr().err
    assert _unpacked_generation(store) == GENERATION
    assert not (store / "work" / "store.git" / "hv-r02-01").exists()  # sparse: its own directory only
    fab, rendered = fleet
    data = bundles.pack_host(fab, "hv-r01-01", rendered["hv-r01-01"], GENERATION + 5, keys["signer"][0],
                             keys["a"][1], VERSION)
    bundles.publish(str(repo), "hv-r01-01", data)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "newer", cwd=repo)
    assert _pull(store, url=url) == 0, capsys.readouterr().err
    assert _unpacked_generation(store) == GENERATION + 5


def test_pull_breaks_the_leases_of_its_own_failed_runs(store, monkeypatch, capsys):
    """As tools/ocs-reconcile: a failed or killed pull's run id is passed to the next run
    (ocs_guard_break_owners: its lease is broken at once); a good run clears the list."""
    calls = []

    def fake(cmd, env):
        calls.append((cmd, env))
        return 2 if len(calls) == 1 else 0

    monkeypatch.setattr(pull.subprocess, "call", fake)
    args = ["--store", str(store / "store"), "--host", "hv-r01-01", "--key", str(store / "host.key"),
            "--signer", str(store / "signer.pub"), "--work", str(store / "work"),
            "--generation-file", str(store / "generation")]
    assert pull.main(args + ["--run-id", "first"]) == 2
    assert pull.main(args + ["--run-id", "second", "--", "--diff"]) == 0
    assert pull.main(args + ["--run-id", "third"]) == 0
    owners = [json.loads(cmd[cmd.index("-e", cmd.index("-e") + 1) + 1])["ocs_guard_break_owners"] for cmd, env in calls]
    assert owners == [[], ["first"], []]
    cmd, env = calls[1]
    assert cmd[:4] == ["ansible-playbook", "-i", str(store / "work" / "inventory.json"), "ocs.l3.site"]
    assert cmd[-1] == "--diff" and "ocs_render_bundle=%s" % (store / "work" / "result.json") in cmd
    first = env["ANSIBLE_COLLECTIONS_PATH"].split(os.pathsep)[0]  # the collection this tool runs from
    assert os.path.samefile(os.path.join(first, "ansible_collections", "ocs", "l3"), render.COLLECTION_ROOT)
    assert (store / "work" / "applied").read_text().strip() == (store / "store" / "hv-r01-01" / "latest").read_text().strip()
    # --only-if-changed: the same bundle, applied last time: no run at all
    assert pull.main(args + ["--only-if-changed"]) == 0 and len(calls) == 3
    assert "already applied; nothing to do" in capsys.readouterr().out


def test_a_bad_public_key_file_is_named(tmp_path, keys):
    (tmp_path / "hv-x.pub").write_text(keys["signer"][1])  # the signer's key, not a host key
    with pytest.raises(lib.BundleError, match="hv-x.pub: not an ocs-x25519 public key"):
        bundles.read_keys(str(tmp_path))


def test_pin_writes_the_controller_key_once_and_refuses_a_host_key(tmp_path, keys, capsys):
    path = tmp_path / "etc" / "bundle-signer.pub"
    args = ["pin", keys["signer"][1], "--signer", str(path)]
    assert pull.main(args) == 0 and path.read_text() == keys["signer"][1] + "\n"
    mtime = os.stat(path).st_mtime_ns
    assert pull.main(args) == 0 and os.stat(path).st_mtime_ns == mtime
    assert pull.main(["pin", keys["a"][1], "--signer", str(path)]) == 1
    assert "not an ocs-ed25519 public key" in capsys.readouterr().err
    assert path.read_text() == keys["signer"][1] + "\n"
