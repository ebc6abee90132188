"""The committed evidence: every finished run under results/ reproduces its own numbers.

For each run folder with a metrics.csv that is not training now (a live process holding its ``.lock``:
its files change under the test), ``evaluate`` on the real test set gives the last epoch's test accuracy from ``weights.npz``
and the best epoch's from ``best_weights.npz``, exactly as metrics.csv wrote them (6 digits).  Slow:
a few seconds per run (each evaluation runs in its own process); needs the datasets (CI installs them).

Exactly, on one condition: OpenBLAS's compute kernel.  It picks one per CPU model, and kernels round
float32 products differently, which can move a spike decision and so a test digit.  Measured on an AMD
EPYC (OpenBLAS's Zen kernel): 1 of 21 runs read 0.8913 for a recorded 0.8914; with OPENBLAS_CORETYPE=Haswell
(AVX2, the kernel of the Intel machines the runs were recorded on) all 21 are exact.  So on x86-64 the
evaluations run with that kernel pinned (an environment variable OpenBLAS reads when NumPy loads it,
hence the subprocess).
"""
import csv
import os
import platform
import subprocess
import sys

import pytest

from conftest import ROOT, dataset_missing

RESULTS = os.path.join(ROOT, "results")
#: The evaluations' environment: OpenBLAS's Haswell kernel on x86-64 (see the module docstring).
ENV = {**os.environ, **({"OPENBLAS_CORETYPE": "Haswell"} if platform.machine() in ("x86_64", "AMD64") else {})}


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
def test_weights_reproduce_the_recorded_accuracies(run):
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
        proc = subprocess.run([sys.executable, "-m", "reference", "evaluate", "--checkpoint", path, "--no-progress"],
                              env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        out = proc.stdout
        assert f"accuracy={expected:.6f}" in out, f"{run}/{weights}: {out.strip().splitlines()[-1]} vs {expected}"
