"""infer.atomic: files and directories appear whole or not at all; a crash keeps the old content."""

import os

import pytest

from infer.atomic import atomic_dir, atomic_file, check_output_path, replace_dir


def _umask() -> int:
    old = os.umask(0)
    os.umask(old)
    return old


def test_file_is_written_whole_with_normal_permissions(tmp_path):
    with atomic_file(tmp_path / "out.txt") as fh:
        fh.write("héllo")
        assert not (tmp_path / "out.txt").exists()  # only the temporary exists while writing
        assert [p.name.startswith(".out.txt.") for p in tmp_path.iterdir()] == [True]
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "héllo"
    assert os.listdir(tmp_path) == ["out.txt"]
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o666 & ~_umask()
    with atomic_file(tmp_path / "out.bin", "wb") as fh:
        fh.write(b"\x00\x01")
    assert (tmp_path / "out.bin").read_bytes() == b"\x00\x01"


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_crash_in_a_file_block_keeps_the_old_content_and_no_temp(tmp_path, error):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(error):
        with atomic_file(target) as fh:
            fh.write("new, half written")
            raise error()
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_crash_in_a_dir_block_keeps_the_old_directory_and_no_staging(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "a.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as staging:
            (staging / "a.txt").write_text("new")
            raise RuntimeError("crash")
    assert (target / "a.txt").read_text() == "old"
    assert os.listdir(tmp_path) == ["run"]


def test_dir_is_swapped_in_and_the_old_one_removed(tmp_path):
    target = tmp_path / "run"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_dir(target) as staging:
        (staging / "new.txt").write_text("new")
        assert staging.parent == tmp_path and staging != target
    assert os.listdir(target) == ["new.txt"]
    assert os.listdir(tmp_path) == ["run"]
    assert target.stat().st_mode & 0o777 == 0o777 & ~_umask()


def test_replace_dir_keeps_a_valid_existing_copy_when_asked(tmp_path):
    theirs, ours = tmp_path / "entry", tmp_path / "ours"
    theirs.mkdir()
    (theirs / "f").write_text("theirs")
    ours.mkdir()
    (ours / "f").write_text("ours")
    assert replace_dir(ours, theirs, keep_existing=lambda p: True) == theirs
    assert (theirs / "f").read_text() == "theirs" and not ours.exists()


def test_output_path_errors_name_the_users_path(tmp_path):
    with pytest.raises(IsADirectoryError, match=f"output file {tmp_path} is a directory"):
        check_output_path(tmp_path)
    missing = tmp_path / "nope" / "out.jsonl"
    with pytest.raises(FileNotFoundError, match=f"its directory {tmp_path / 'nope'} does not exist"):
        with atomic_file(missing):
            pass
    assert os.listdir(tmp_path) == []
