"""The module payload cache (plugins/callback/module_cache.py): its key, what it keeps, where it
refuses to keep anything, and two real ansible-playbook runs (the second takes the first's payload)."""

import os
import shutil
import subprocess
import sys

from ansible_collections.ocs.l3.plugins.callback import module_cache as mc

from fabric_data import ROOT


def tree(tmp_path):
    root = tmp_path / "coll"
    for sub in ("modules", "module_utils"):
        (root / "plugins" / sub).mkdir(parents=True)
    (root / "plugins" / "modules" / "m.py").write_text("import x\n")
    (root / "plugins" / "module_utils" / "u.py").write_text("X = 1\n")
    (root / "plugins" / "action").mkdir()
    return root


def test_the_key_follows_every_module_and_module_util_and_the_versions(tmp_path):
    root = tree(tmp_path)
    key = mc.source_key(str(root), "2.19.0", "3.11")
    assert key == mc.source_key(str(root), "2.19.0", "3.11")
    assert key != mc.source_key(str(root), "2.19.1", "3.11") and key != mc.source_key(str(root), "2.19.0", "3.12")
    (root / "plugins" / "action" / "a.py").write_text("# not shipped in a payload\n")
    (root / "plugins" / "module_utils" / "notes.txt").write_text("not python\n")
    assert mc.source_key(str(root), "2.19.0", "3.11") == key
    (root / "plugins" / "module_utils" / "u.py").write_text("X = 2\n")
    changed = mc.source_key(str(root), "2.19.0", "3.11")
    assert changed != key
    (root / "plugins" / "module_utils" / "u.py").write_text("X = 1\n")
    (root / "plugins" / "module_utils" / "sub").mkdir()
    (root / "plugins" / "module_utils" / "sub" / "v.py").write_text("")
    assert mc.source_key(str(root), "2.19.0", "3.11") not in (key, changed)  # a new file, even empty


def test_only_payloads_the_key_fixes_are_kept():
    assert mc.keepable("ansible_collections.ocs.l3.plugins.modules.ocs_install-ZIP_DEFLATED-none")
    assert mc.keepable("ansible.modules.ping-ZIP_DEFLATED-none")
    # another collection's module: its content is not in the key
    assert not mc.keepable("ansible_collections.ansible.posix.plugins.modules.sysctl-ZIP_DEFLATED-none")
    assert not mc.keepable("ansible.modules.ping-ZIP_DEFLATED-none.lock")
    assert not mc.keepable("ansible.modules.ping-ZIP_DEFLATED-none-part")


def test_a_store_others_can_write_is_refused(tmp_path):
    top = tmp_path / "store" / "cache"
    assert mc.private_dir(str(top)) is None
    assert oct(os.stat(top).st_mode & 0o777) == oct(0o700)
    os.chmod(top, 0o770)
    assert "writable by others" in mc.private_dir(str(top))
    os.chmod(top, 0o700)
    os.chmod(top.parent, 0o757)
    assert "writable by others" in mc.private_dir(str(top))
    os.chmod(top.parent, 0o700)
    link = tmp_path / "link"
    os.symlink(str(top), str(link))
    assert "not a directory" in mc.private_dir(str(link / "x"))  # a symlink is not followed
    if os.geteuid() == 0:
        os.chown(top, 4242, -1)
        assert "uid 4242" in mc.private_dir(str(top))


def test_copy_fills_what_is_missing_and_prune_keeps_the_newest(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    for n in ("a", "b"):
        (src / n).write_text(n)
    (dst / "a").write_text("kept")
    assert mc.copy_new(str(src), str(dst), ["a", "b"]) == 1
    assert (dst / "a").read_text() == "kept" and (dst / "b").read_text() == "b"
    assert sorted(os.listdir(dst)) == ["a", "b"]  # no partial file left
    top = tmp_path / "top"
    for i in range(6):
        (top / ("k%d" % i)).mkdir(parents=True)
        os.utime(top / ("k%d" % i), (1000 + i, 1000 + i))
    os.utime(top / "k0", (999, 999))
    mc.prune(str(top), str(top / "k0"), keep=2)
    assert sorted(os.listdir(top)) == ["k0", "k4", "k5"]  # the newest two and the run's own


PLAY = """- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.ping:
    - ocs.l3.ocs_units:
        units: []
      check_mode: true
"""


def test_a_second_run_takes_the_first_runs_payloads(tmp_path):
    """Two real runs: the first builds and keeps the payloads, the second starts with them (and does
    not build them again: the run cache's files are the store's, byte for byte)."""
    play = tmp_path / "p.yml"
    play.write_text(PLAY)
    store = tmp_path / "cache"
    env = dict(os.environ, OCS_MODULE_CACHE_DIR=str(store), ANSIBLE_CALLBACKS_ENABLED="ocs.l3.module_cache",
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % sys.executable, "-vvv", str(play)]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "ocs.l3.module_cache: 0 payloads from" in first.stdout
    (key,) = os.listdir(store)
    kept = sorted(os.listdir(store / key))
    assert kept == ["ansible.modules.ping-ZIP_DEFLATED-none",
                    "ansible_collections.ocs.l3.plugins.modules.ocs_units-ZIP_DEFLATED-none"], kept
    assert "ocs.l3.module_cache: 2 payloads kept in" in first.stdout
    import pickle
    import zipfile
    import base64
    import io
    with open(store / key / kept[1], "rb") as fh:
        names = zipfile.ZipFile(io.BytesIO(base64.b64decode(pickle.load(fh).zip_data))).namelist()
    assert "ansible/module_utils/basic.py" in names and "ansible/module_utils/basic.pyc" in names
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert second.returncode == 0, second.stdout[-3000:]
    assert "ocs.l3.module_cache: 2 payloads from" in second.stdout
    assert "ocs.l3.module_cache: 0 payloads kept in" in second.stdout  # nothing new was built
    shutil.rmtree(store / key)
    os.chmod(store, 0o777)
    third = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    assert third.returncode == 0 and "is writable by others" in third.stdout + third.stderr
    assert os.listdir(store) == []  # nothing kept in a store others can write


def zip_of(files):
    import io
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def import_x(tmp_path, data):
    """X of module ``m`` imported by a fresh Python from the zip ``data``."""
    path = tmp_path / "p.zip"
    path.write_bytes(data)
    code = "import sys; sys.path.insert(0, %r); import m; print(m.X)" % str(path)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_bytecode_is_used_while_it_matches_its_source_and_ignored_otherwise(tmp_path):
    import io
    import zipfile
    plain = zip_of({"m.py": b"X = 1\n", "pkg/__init__.py": b"", "bad.py": b"def (:\n"})
    data = mc.with_bytecode(plain)
    z = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(z.namelist()) == ["bad.py", "m.py", "m.pyc", "pkg/__init__.py", "pkg/__init__.pyc"]
    assert z.read("m.py") == b"X = 1\n" and import_x(tmp_path, data) == "1"
    # used: bytecode whose hash matches the source is what runs (here it says 3 where the source says 1)
    forged = mc.pyc(b"X = 1\n", "m.py")[:16] + mc.pyc(b"X = 3\n", "m.py")[16:]
    assert import_x(tmp_path, zip_of({"m.py": b"X = 1\n", "m.pyc": forged})) == "3"
    # ignored: the source changed (a stale .pyc), or another Python's magic
    assert import_x(tmp_path, zip_of({"m.py": b"X = 2\n", "m.pyc": z.read("m.pyc")})) == "2"
    other = b"\x00\x00\r\n" + forged[4:]
    assert import_x(tmp_path, zip_of({"m.py": b"X = 1\n", "m.pyc": other})) == "1"
    assert mc.with_bytecode(data) == mc.with_bytecode(data)  # nothing added twice
    assert zipfile.ZipFile(io.BytesIO(mc.with_bytecode(data))).namelist().count("m.pyc") == 1
