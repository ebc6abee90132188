"""The repository stays light: what git tracks is code, configs and small evidence, never bulk files.

A run's checkpoint, lock and progress-bar log, and the weights of runs that are not headline runs, are
never tracked (results/README.md says which runs keep their weights, and how the others are identified
and rebuilt: their SHA-256 and command in results/runs.csv).  Skips outside a git checkout (an installed
wheel has no repository to check).
"""
import os
import subprocess

import pytest

from conftest import ROOT

#: No tracked file may be larger (bytes): a trained Fashion-MNIST CNN's weights are 12.2 MB.
MAX_FILE = 15_000_000
#: The whole tracked tree (bytes).  Issue 28 asks for 60 MB; the bulk leaves git over two sessions (one
#: session may submit at most 256 MiB of diffs, and a deleted binary counts at its size), so until the
#: second half is gone this ceiling only keeps the tree from growing again.
MAX_TREE = 180_000_000
#: Files no run folder may commit: the commit point of a run (tens of MB each), its lock, its progress log.
NEVER_TRACKED = ("checkpoint.npz", ".lock", "train.log")


def _tracked():
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    paths = [p for p in out.decode().split("\0") if p]
    return {p: os.path.getsize(os.path.join(ROOT, p)) for p in paths if os.path.isfile(os.path.join(ROOT, p))}


def test_no_tracked_file_is_bulk():
    big = {p: n for p, n in _tracked().items() if n > MAX_FILE}
    assert not big, f"tracked files over {MAX_FILE / 1e6:.0f} MB: {big}"


def test_the_tracked_tree_stays_small():
    total = sum(_tracked().values())
    assert total <= MAX_TREE, f"the tracked tree is {total / 1e6:.1f} MB (at most {MAX_TREE / 1e6:.0f} MB)"


def test_no_checkpoint_lock_or_progress_log_is_tracked():
    bad = [p for p in _tracked() if os.path.basename(p) in NEVER_TRACKED]
    assert not bad, f"tracked, but never to be: {bad}"


@pytest.mark.parametrize("name", NEVER_TRACKED)
def test_gitignore_keeps_them_out(name):
    """A new run's bulk files under results/ (and anywhere) are ignored by git, so no `git add -A` takes them."""
    path = f"results/some_new_run/{name}"
    proc = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=ROOT, timeout=60)
    if proc.returncode == 128:
        pytest.skip("not a git checkout")
    assert proc.returncode == 0, f".gitignore does not cover {path}"
