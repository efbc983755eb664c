"""module_utils/install.py: several files in one call, content only where it differs."""

import base64
import hashlib
import os

import pytest

from ansible_collections.ocs.l3.plugins.module_utils import install, units
from ansible_collections.ocs.l3.plugins.modules import ocs_units

ME = dict(owner=__import__("pwd").getpwuid(os.getuid()).pw_name, group=__import__("grp").getgrgid(os.getgid()).gr_name)


def spec(path, text, mode="0644", send=False):
    data = text.encode()
    s = dict(dest=str(path), mode=mode, sha256=hashlib.sha256(data).hexdigest())
    if send:
        s["content"] = base64.b64encode(data).decode()
    return s


def test_a_missing_file_needs_its_content_then_is_written(tmp_path):
    dest = tmp_path / "sub" / "a.conf"
    assert install.apply([spec(dest, "one\n")], **ME) == ([], [str(dest)])
    assert not dest.exists()
    assert install.apply([spec(dest, "one\n", send=True)], **ME) == ([str(dest)], [])
    assert dest.read_text() == "one\n" and oct(dest.stat().st_mode & 0o777) == "0o644"
    assert install.apply([spec(dest, "one\n")], **ME) == ([], [])  # in place: nothing to do


def test_an_alternate_sent_with_its_content_is_written_in_the_same_call(tmp_path):
    dest, flag = tmp_path / "frr.conf", tmp_path / "drain.json"
    plain, drained = spec(dest, "plain\n", send=True), spec(dest, "drained\n", send=True)
    both = dict(plain, alternate_if=str(flag), alternate_sha256=drained["sha256"], alternate_content=drained["content"])
    assert install.apply(install.choose_alternates([both]), **ME) == ([str(dest)], [])
    assert dest.read_text() == "plain\n"
    flag.write_text("{}")
    chosen = install.choose_alternates([both])
    assert chosen[0]["alternate_chosen"] and install.apply(chosen, **ME) == ([str(dest)], [])
    assert dest.read_text() == "drained\n"
    # sent without content (checksums first): the chosen alternate is needed, the file left alone
    bare = {k: v for k, v in both.items() if k not in ("content", "alternate_content")}
    flag.unlink()
    assert install.apply(install.choose_alternates([bare]), **ME) == ([], [str(dest)])
    assert dest.read_text() == "drained\n"


def test_only_what_differs_is_reported_and_written(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("same\n")
    a.chmod(0o644)
    b.write_text("old\n")
    b.chmod(0o644)
    files = [spec(a, "same\n"), spec(b, "new\n")]
    assert install.apply(files, **ME) == ([], [str(b)])
    assert install.apply([spec(b, "new\n", send=True)], **ME) == ([str(b)], [])
    assert b.read_text() == "new\n" and a.read_text() == "same\n"


def test_a_wrong_mode_is_fixed_without_content(tmp_path):
    a = tmp_path / "a"
    a.write_text("x\n")
    a.chmod(0o600)
    assert install.apply([spec(a, "x\n", mode="0755")], **ME) == ([str(a)], [])
    assert oct(a.stat().st_mode & 0o777) == "0o755"


def test_check_mode_writes_nothing_and_needs_no_content(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("old\n")
    a.chmod(0o600)
    assert install.apply([spec(a, "new\n"), spec(b, "b\n")], check=True, **ME) == ([str(a), str(b)], [])
    assert a.read_text() == "old\n" and not b.exists() and oct(a.stat().st_mode & 0o777) == "0o600"


def test_content_that_does_not_match_its_checksum_is_refused(tmp_path):
    a = tmp_path / "a"
    a.write_text("old\n")
    bad = dict(spec(a, "new\n"), content=base64.b64encode(b"other\n").decode())
    with pytest.raises(ValueError, match="does not match its checksum"):
        install.apply([bad], **ME)
    assert a.read_text() == "old\n" and os.listdir(tmp_path) == ["a"]  # no temporary file left


def test_a_symlink_is_replaced_by_the_file(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("x\n")
    link = tmp_path / "a"
    link.symlink_to(target)
    assert install.apply([spec(link, "x\n")], **ME) == ([], [str(link)])
    install.apply([spec(link, "x\n", send=True)], **ME)
    assert not link.is_symlink() and link.read_text() == "x\n" and target.read_text() == "x\n"


def test_absent_removes_files_links_and_trees_where_they_exist(tmp_path):
    f, tree = tmp_path / "f", tmp_path / "tree"
    f.write_text("x")
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "m.py").write_text("x")
    gone = [dict(dest=str(p), state="absent") for p in (f, tree, tmp_path / "never")]
    assert install.apply(gone, check=True, **ME) == ([str(f), str(tree)], [])
    assert f.exists()
    assert install.apply(gone, **ME) == ([str(f), str(tree)], [])
    assert os.listdir(tmp_path) == []
    assert install.apply(gone, **ME) == ([], [])


def test_directories_are_made_with_their_mode(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b" / "c"
    a.mkdir(mode=0o700)
    a.chmod(0o700)
    assert install.directories([str(a), str(b)], mode="0755", check=True, **ME) == [str(a), str(b)]
    assert not b.exists()
    assert install.directories([str(a), str(b)], mode="0755", **ME) == [str(a), str(b)]
    assert oct(a.stat().st_mode & 0o777) == oct(b.stat().st_mode & 0o777) == "0o755"
    assert install.directories([str(a), str(b)], mode="0755", **ME) == []


def test_validate_runs_on_the_new_content_and_one_rejected_file_installs_none(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("old a\n")
    b.write_text("old b\n")
    good = dict(spec(a, "new a\n", send=True), validate="grep -q new %s")
    bad = dict(spec(b, "bad b\n", send=True), validate="grep -q new %s")
    with pytest.raises(ValueError, match=r"/b: failed to validate \(grep -q new %s, exit 1\)"):
        install.apply([good, bad], **ME)
    assert a.read_text() == "old a\n" and b.read_text() == "old b\n"
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]  # no temporary file left
    assert install.apply([good, dict(bad, content=base64.b64encode(b"new b\n").decode(),
                                     sha256=hashlib.sha256(b"new b\n").hexdigest())], **ME) == ([str(a), str(b)], [])
    assert a.read_text() == "new a\n" and b.read_text() == "new b\n"


def test_units_plan_enables_and_starts_only_what_is_not():
    """ocs_units (one module run for several systemd units): two queries per unit, no action when converged."""
    answers = {("is-enabled", "a.service"): "enabled", ("is-active", "a.service"): "active",
               ("is-enabled", "b.service"): "disabled", ("is-active", "b.service"): "inactive",
               ("is-enabled", "c.timer"): "static", ("is-active", "c.timer"): "failed",
               ("is-enabled", "d.service"): "not-found", ("is-active", "d.service"): "inactive"}
    asked = []

    def query(verb, name):
        asked.append((verb, name))
        return answers[(verb, name)]

    units = [{"name": "a.service"}, {"name": "b.service"}, {"name": "c.timer"},
             {"name": "d.service", "manage": False}, {"name": "b.service", "started": False, "enabled": False}]
    assert ocs_units.plan(units, query) == [("enable", "b.service"), ("start", "b.service"), ("start", "c.timer")]
    assert ("is-enabled", "d.service") not in asked  # an unmanaged unit is not even asked about
    assert ocs_units.plan([{"name": "a.service"}], query) == []


class _Module:
    """What units.converge uses of AnsibleModule: a systemctl that answers from ``state``."""

    def __init__(self, state, check_mode=False, fail=()):
        self.state, self.check_mode, self.fail, self.ran = state, check_mode, fail, []

    def get_bin_path(self, name, required=False):
        return "/bin/" + name

    def run_command(self, argv):
        verb, rest = argv[1], argv[2:]
        self.ran.append(" ".join(argv[1:]))
        if verb in ("is-enabled", "is-active"):
            return 0, self.state.get((verb, rest[0]), "unknown") + "\n", ""
        return (1, "", "boom") if verb in self.fail else (0, "", "")

    def fail_json(self, **kw):
        raise RuntimeError(kw)


def test_units_converge_reloads_systemd_only_for_a_changed_unit_file_then_starts_what_is_not():
    state = {("is-enabled", "frr.service"): "enabled", ("is-active", "frr.service"): "inactive"}
    frr = [{"name": "frr.service", "enabled": True, "started": True, "manage": True}]
    # a changed frr.conf is not systemd's business
    m = _Module(state)
    assert units.converge(m, frr, ["/etc/frr/frr.conf"]) == ["start frr.service"]
    assert m.ran == ["is-enabled frr.service", "is-active frr.service", "start frr.service"]
    # a changed unit or drop-in: re-read first
    m = _Module(state)
    assert units.converge(m, frr, ["/etc/systemd/system/frr.service.d/ocs-l3-restore.conf"]) == [
        "daemon-reload", "start frr.service"]
    assert m.ran[0] == "daemon-reload"
    # converged: two queries, nothing done
    m = _Module({("is-enabled", "frr.service"): "enabled", ("is-active", "frr.service"): "active"})
    assert units.converge(m, frr, []) == [] and len(m.ran) == 2
    # check mode: what it would do, nothing run but the queries
    m = _Module(state, check_mode=True)
    assert units.converge(m, frr, ["/etc/systemd/system/x.service"]) == ["daemon-reload", "start frr.service"]
    assert m.ran == ["is-enabled frr.service", "is-active frr.service"]
    # nothing managed: not even a daemon-reload for a changed unit (the operator's units)
    m = _Module(state)
    assert units.converge(m, [dict(frr[0], manage=False)], ["/etc/systemd/system/x.service"]) == [] and m.ran == []
    # a failing systemctl fails the module, naming the command
    with pytest.raises(RuntimeError, match="systemctl start frr.service failed"):
        units.converge(_Module(state, fail=("start",)), frr, [])


def test_needs_daemon_reload():
    assert units.needs_daemon_reload(["/etc/systemd/system/ocs-dhcp.service"])
    assert units.needs_daemon_reload(["/usr/lib/systemd/system/frr.service"])
    assert not units.needs_daemon_reload(["/etc/ocs-l3/dnsmasq.conf", "/etc/systemdx/a", "/usr/lib/ocs-l3/ocs-l3.pyz"])
