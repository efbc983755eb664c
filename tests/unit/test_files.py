"""module_utils/files.py: whole-file writes and the generation file, shared by host modules,
host programs and the controller's tools."""

import os
import stat

import pytest

from ansible_collections.ocs.l3.plugins.module_utils import files


def _mode(path):
    return stat.S_IMODE(os.stat(str(path)).st_mode)


def test_write_atomic_makes_the_directory_sets_the_mode_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a" / "b" / "f.txt"
    assert files.write_atomic(str(path), "one\n") == str(path)
    assert path.read_text() == "one\n" and _mode(path) == 0o644 and _mode(path.parent) == 0o755
    files.write_atomic(str(path), b"\x00two", mode=0o600)
    assert path.read_bytes() == b"\x00two" and _mode(path) == 0o600
    assert os.listdir(str(path.parent)) == ["f.txt"]


def test_write_atomic_keeps_the_old_file_when_the_write_fails(tmp_path):
    path = tmp_path / "f"
    path.write_text("old")
    with pytest.raises(TypeError):
        files.write_atomic(str(path), 42)
    assert path.read_text() == "old" and os.listdir(str(tmp_path)) == ["f"]


def test_write_if_different_writes_only_a_difference_and_nothing_in_check_mode(tmp_path):
    path = tmp_path / "d" / "f"
    assert files.write_if_different(str(path), "x\n", check=True) is True and not path.exists()
    assert files.write_if_different(str(path), "x\n") is True and path.read_text() == "x\n"
    inode = os.stat(str(path)).st_ino
    assert files.write_if_different(str(path), "x\n") is False and os.stat(str(path)).st_ino == inode
    assert files.write_if_different(str(path), b"x\n") is False  # bytes compare as bytes
    assert files.write_if_different(str(path), "y\n") is True and path.read_text() == "y\n"
    assert files.write_if_different(str(tmp_path / "p" / "k"), b"k", dir_mode=0o700) is True
    assert _mode(tmp_path / "p") == 0o700


def test_read_generation_absent_empty_number_or_a_damaged_file_named(tmp_path):
    path = tmp_path / "generation"
    assert files.read_generation(str(path)) is None
    path.write_text("\n")
    assert files.read_generation(str(path)) is None
    path.write_text("1733356800\n")
    assert files.read_generation(str(path)) == 1733356800
    path.write_text("garbage")
    with pytest.raises(ValueError, match=r"generation holds 'garbage', not a generation"):
        files.read_generation(str(path))


def test_write_generation_only_when_it_differs_and_mends_a_damaged_file(tmp_path):
    path = tmp_path / "state" / "generation"
    assert files.write_generation(str(path), 7) is True and path.read_text() == "7\n" and _mode(path) == 0o644
    assert files.write_generation(str(path), 7) is False
    path.write_text("7")  # another writer's layout: the same generation, left alone
    assert files.write_generation(str(path), 7) is False and path.read_text() == "7"
    path.write_text("garbage")
    assert files.write_generation(str(path), 8) is True and path.read_text() == "8\n"


def test_generation_or_none_reads_a_damaged_or_unreadable_file_as_none(tmp_path):
    path = tmp_path / "generation"
    assert files.generation_or_none(str(path)) is None
    path.write_text("12\n")
    assert files.generation_or_none(str(path)) == 12
    path.write_text("garbage")
    assert files.generation_or_none(str(path)) is None
    assert files.generation_or_none(str(tmp_path)) is None  # a directory: unreadable
