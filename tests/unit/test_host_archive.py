"""The host archive (plugin_utils/host_library.py): the library and programs the ocs_agent role installs."""

import io
import os
import subprocess
import sys
import zipfile

from fabric_data import ROOT
from ansible_collections.ocs.l3.plugins.module_utils import constants
from ansible_collections.ocs.l3.plugins.plugin_utils import host_library


def test_the_same_sources_give_the_same_bytes(tmp_path):
    first = host_library.archive_bytes()
    assert host_library.archive_bytes() == first
    path = host_library.write_archive(str(tmp_path))
    mtime = os.stat(path).st_mtime_ns
    os.utime(path, ns=(1, 1))
    assert host_library.write_archive(str(tmp_path)) == path
    assert os.stat(path).st_mtime_ns == 1 and mtime != 1  # unchanged bytes: the file is not rewritten
    assert open(path, "rb").read() == first


def test_it_holds_the_library_files_byte_for_byte_and_nothing_else():
    zf = zipfile.ZipFile(io.BytesIO(host_library.archive_bytes()))
    pkg = constants.HOST_LIBRARY_PACKAGE
    files = [n for n in zf.namelist() if not n.endswith("/")]
    assert sorted(files) == sorted(["__main__.py"] + ["%s/%s" % (pkg, n) for n in constants.HOST_LIBRARY])
    for name in constants.HOST_LIBRARY:
        with open(os.path.join(ROOT, "plugins", "module_utils", name), "rb") as fh:
            assert zf.read("%s/%s" % (pkg, name)) == fh.read()
    # a directory entry per level: zipimport finds namespace packages (no __init__.py) only so
    assert [n for n in zf.namelist() if n.endswith("/")] == [
        "/".join(pkg.split("/")[:i]) + "/" for i in range(1, len(pkg.split("/")) + 1)]
    assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_a_changed_module_changes_the_archive(tmp_path):
    root = tmp_path / "collection"
    mu = root / "plugins" / "module_utils"
    mu.mkdir(parents=True)
    for name in constants.HOST_LIBRARY:
        mu.joinpath(name).write_bytes(open(os.path.join(ROOT, "plugins", "module_utils", name), "rb").read())
    assert host_library.archive_bytes(str(root)) == host_library.archive_bytes()
    mu.joinpath("host_agent.py").write_text("# changed\n", encoding="utf-8")
    assert host_library.archive_bytes(str(root)) != host_library.archive_bytes()


def _run(path, *args):
    # As the units run it: the host's python3 and only what the archive holds (-S, no checkout on the path).
    return subprocess.run([sys.executable, "-S", "-I", path] + list(args), capture_output=True, text=True,
                          timeout=60, cwd="/")


def test_each_program_runs_from_the_archive_alone(tmp_path):
    path = host_library.write_archive(str(tmp_path))
    for name, module in constants.HOST_PROGRAMS:
        proc = _run(path, name, "--help")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith("usage: ocs-l3-%s" % name), proc.stdout
    unknown = _run(path, "nonsense")
    assert unknown.returncode == 2 and "{agent,restore,status}" in unknown.stderr
    assert _run(path).returncode == 2
