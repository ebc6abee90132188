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
#: The whole tracked tree (bytes), and what of it lies under results/ (the evidence of the runs).
MAX_TREE = 60_000_000
MAX_RESULTS = 40_000_000
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


def test_the_results_stay_small():
    total = sum(n for p, n in _tracked().items() if p.startswith("results/"))
    assert total <= MAX_RESULTS, f"results/ tracks {total / 1e6:.1f} MB (at most {MAX_RESULTS / 1e6:.0f} MB)"


def test_only_the_headline_runs_keep_weights():
    """The runs with tracked weights are the folders that figure 6 names, one per row of the paper's tables
    that we report and its paper-era twin (``figures/fig6_tables.py``'s ``ROWS``, their one home)."""
    import sys
    sys.path.insert(0, os.path.join(ROOT, "figures"))
    try:
        from fig6_tables import ROWS
    finally:
        sys.path.remove(os.path.join(ROOT, "figures"))
    headline = {folder for _, _, _, folder, _ in ROWS if folder}
    with_weights = {os.path.dirname(p)[len("results/"):] for p in _tracked()
                    if p.startswith("results/") and p.endswith(".npz")}
    assert with_weights == headline


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
