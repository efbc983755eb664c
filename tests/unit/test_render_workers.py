"""The render shared among worker processes writes the same build directory, byte for byte, as one
process, and hands the bundles the same files (issue 19: render.yml's time at scale)."""

import filecmp
import os

from ansible_collections.ocs.l3.plugins.action import ocs_render
from ansible_collections.ocs.l3.plugins.module_utils.artifacts import host_artifacts
from ansible_collections.ocs.l3.plugins.module_utils.fabric import build
from ansible_collections.ocs.l3.plugins.plugin_utils import render
from ansible_collections.ocs.l3.plugins.plugin_utils.inventory import load_fabric_input
from ansible_collections.ocs.l3.tools import gen_fabric as gen


def _render(fab, build_dir, workers, keep=True, names=None):
    templar = render.offline_templar()
    cache = {}

    def produce(host):
        return render.render_host(templar, host, host_artifacts(fab, fab.hosts[host]), "test", cache)

    names = sorted(fab.hosts) if names is None else names
    return ocs_render._write(str(build_dir), fab, names, produce, full=names == sorted(fab.hosts),
                             workers=workers, keep=keep)


def _same_tree(a, b):
    cmp = filecmp.dircmp(a, b, ignore=[".lock"])
    assert not cmp.left_only and not cmp.right_only and not cmp.funny_files, (a, b)
    match, mismatch, errors = filecmp.cmpfiles(a, b, cmp.common_files, shallow=False)
    assert not mismatch and not errors, (a, mismatch, errors)
    for sub in cmp.common_dirs:
        _same_tree(os.path.join(a, sub), os.path.join(b, sub))


def test_workers_write_what_one_process_writes(tmp_path):
    inv = str(tmp_path / "inv")
    gen.generate(inv, racks=3, hypervisors=4, instances=6, floating_share=0.5, nat_mode="gateway")
    fab = build(load_fabric_input(inv))
    one = _render(fab, tmp_path / "one", workers=1)
    three = _render(fab, tmp_path / "three", workers=3)
    _same_tree(str(tmp_path / "one"), str(tmp_path / "three"))
    assert one[0] == three[0] and len(one[0]) > 100  # the changed paths
    assert one[1] == three[1]  # the manifest
    # what the bundles get: each file's path, kind, role, mode and text, host by host
    flat = {h: [(a.path, a.kind, a.role, a.mode, t) for a, t in files] for h, files in one[2].items()}
    assert flat == {h: [(a.path, a.kind, a.role, a.mode, t) for a, t in files] for h, files in three[2].items()}
    assert sorted(flat) == sorted(fab.hosts)
    assert all(not a.vars for files in three[2].values() for a, dummy in files)  # not sent back twice


def test_a_second_render_with_workers_changes_nothing_and_a_limit_keeps_the_rest(tmp_path):
    inv = str(tmp_path / "inv")
    gen.generate(inv, racks=2, hypervisors=3, instances=4, floating_share=0.5, dual_stack=True)
    fab = build(load_fabric_input(inv))
    _render(fab, tmp_path / "b", workers=2)
    before = {h: os.stat(tmp_path / "b" / h).st_ino for h in fab.hosts}
    changed, manifest, dummy = _render(fab, tmp_path / "b", workers=2, keep=False)
    assert changed == [] and sorted(manifest["hosts"]) == sorted(fab.hosts)
    assert before == {h: os.stat(tmp_path / "b" / h).st_ino for h in fab.hosts}  # no directory swapped
    some = sorted(fab.hosts)[::3]
    changed, manifest, dummy = _render(fab, tmp_path / "b", workers=2, keep=False, names=some)
    assert changed == [] and sorted(manifest["hosts"]) == sorted(fab.hosts)
