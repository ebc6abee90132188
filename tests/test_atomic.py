"""reference.app.atomic: the one atomic-write helper every file of the project goes through."""
import os

import numpy as np
import pytest

from reference.app.atomic import WriteError, atomic_savez, atomic_write, atomic_write_bytes


def test_writes_and_replaces(tmp_path):
    path = tmp_path / "f.bin"
    atomic_write_bytes(path, b"one")
    atomic_write_bytes(path, b"two")
    assert path.read_bytes() == b"two"
    assert os.listdir(tmp_path) == ["f.bin"]
    atomic_savez(tmp_path / "a.npz", {"x": np.arange(3)})
    with np.load(tmp_path / "a.npz") as d:
        np.testing.assert_array_equal(d["x"], np.arange(3))


def test_planted_symlink_at_a_guessable_name_is_not_followed(tmp_path):
    """The old helpers wrote '<out>.tmp.npz' by name: a symlink planted there redirected the write."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    for guess in ("G.npz.tmp.npz", "G.npz.tmp", ".G.npz.tmp"):
        os.symlink(victim, tmp_path / guess)
    atomic_savez(tmp_path / "G.npz", {"x": np.zeros(2)})
    assert victim.read_text() == "keep me"
    assert (tmp_path / "G.npz").is_file() and not (tmp_path / "G.npz").is_symlink()


def test_failure_leaves_old_file_and_no_temp(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def broken(fh):
        fh.write(b"half")
        raise OSError(28, "No space left on device")  # what a full disk raises mid-write

    with pytest.raises(WriteError, match="No space left"):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.bin"]
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C mid-write: also cleaned up, and not turned into a WriteError
        atomic_write(path, lambda fh: (_ for _ in ()).throw(KeyboardInterrupt))
    assert os.listdir(tmp_path) == ["f.bin"]


def test_full_disk_at_replace_is_a_write_error(tmp_path, monkeypatch):
    def full(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(WriteError, match="f.bin"):
        atomic_write_bytes(tmp_path / "f.bin", b"x")
    assert os.listdir(tmp_path) == []


def test_missing_folder_and_folder_target(tmp_path):
    with pytest.raises(WriteError, match="does not exist"):
        atomic_write_bytes(tmp_path / "no" / "f.bin", b"x")
    with pytest.raises(WriteError, match="is a folder"):
        atomic_write_bytes(tmp_path, b"x")


def test_new_file_has_ordinary_permissions(tmp_path):
    atomic_write_bytes(tmp_path / "f", b"x")
    mask = os.umask(0)
    os.umask(mask)
    assert os.stat(tmp_path / "f").st_mode & 0o777 == 0o644 & ~mask  # mkstemp's 0600 widened like open()


def test_only_one_copy_of_the_helper_in_the_package():
    """Every write goes through reference.app.atomic: no other module renames temp files into place."""
    root = os.path.join(os.path.dirname(__file__), "..", "reference")
    offenders = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py") and name != "atomic.py":
                text = open(os.path.join(folder, name), encoding="utf-8").read()
                if "os.replace(" in text or ".tmp" in text or "mkstemp" in text:
                    offenders.append(name)
    assert offenders == []


def test_signals_held_delivers_a_signal_after_its_block():
    """What must not be cut (a listing of a temporary file, a run's undoing, a command's pair of outputs)
    runs whole: a Ctrl-C inside comes after the block, to the handler that was there."""
    import signal
    import time

    from reference.app.atomic import signals_held

    done = []
    with pytest.raises(KeyboardInterrupt):
        with signals_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # a Python handler would have run here
            done.append("whole")
        time.sleep(0.05)
    assert done == ["whole"] and signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("at", ["mkstemp", "replace"])
def test_a_ctrl_c_held_at_a_temporary_files_listing_leaves_no_temporary_file(tmp_path, monkeypatch, at):
    """Tenth pass F5: a Ctrl-C that came while the temporary file was made (and listed) was sent again
    as that block ended, outside the clean-up: a double Ctrl-C left ``.checkpoint.npz.<rand>.tmp``, once as
    the only file of a new run's folder.  At the rename, the file is in place and nothing is removed."""
    import signal
    import tempfile

    from reference.app import atomic

    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    real = tempfile.mkstemp if at == "mkstemp" else os.replace

    def with_a_ctrl_c(*args, **kwargs):
        out = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGINT)  # held by signals_held, sent again when its block ends
        return out

    monkeypatch.setattr(tempfile if at == "mkstemp" else atomic.os, "mkstemp" if at == "mkstemp" else "replace",
                        with_a_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(target, b"new")
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["f.bin"] and not atomic._UNFINISHED
    assert target.read_bytes() == (b"old" if at == "mkstemp" else b"new")
