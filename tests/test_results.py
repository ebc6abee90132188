"""The committed evidence: every finished run under results/ reproduces its own numbers.

For each run folder with a metrics.csv that is not training now (a live process holding its ``.lock``:
its files change under the test), ``evaluate`` on the real test set gives the last epoch's test accuracy from ``weights.npz``
and the best epoch's from ``best_weights.npz``, exactly as metrics.csv wrote them (6 digits).  Slow:
about a second per MLP run and a few per CNN run; needs the datasets (CI installs them).
"""
import csv
import os

import pytest

from conftest import ROOT, dataset_missing

RESULTS = os.path.join(ROOT, "results")


def _training(folder) -> bool:
    """Whether a live process holds the run's lock (a stale lock of a killed run does not count)."""
    try:
        pid = int(open(os.path.join(folder, ".lock")).read().split()[0])
        os.kill(pid, 0)
        return True
    except (OSError, ValueError, IndexError):
        return False


def _finished_runs():
    runs = []
    for name in sorted(os.listdir(RESULTS)):
        folder = os.path.join(RESULTS, name)
        if os.path.isfile(os.path.join(folder, "metrics.csv")) and not _training(folder):
            runs.append(name)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("run", _finished_runs())
def test_weights_reproduce_the_recorded_accuracies(run, capsys):
    from reference.cli import main

    folder = os.path.join(RESULTS, run)
    with open(os.path.join(folder, "metrics.csv")) as fh:
        rows = list(csv.DictReader(fh))
    dataset = "FashionMNIST" if "fmnist" in run else "MNIST"
    why = dataset_missing(dataset)
    if why:
        pytest.skip(f"{dataset} is not available here ({why})")
    last = float(rows[-1]["test_acc"])
    best = max(float(r["test_acc"]) for r in rows)
    for weights, expected in (("weights.npz", last), ("best_weights.npz", best)):
        path = os.path.join(folder, weights)
        if weights == "best_weights.npz" and not os.path.exists(path):
            continue  # runs from before 2026-11-25 kept only the last epoch's weights
        assert main(["evaluate", "--checkpoint", path, "--no-progress"]) == 0
        out = capsys.readouterr().out
        assert f"accuracy={expected:.6f}" in out, f"{run}/{weights}: {out.strip().splitlines()[-1]} vs {expected}"
