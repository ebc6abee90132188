"""The BLAS record: train writes how it measured each epoch's accuracy into the weights files, and evaluate
says whether it reproduces that number and, if not, which OpenBLAS kernel would."""
import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from reference.app.blas import blas_info, describe, recorded_accuracy_note
from reference.app.cli import main
from test_cli import cli_data  # noqa: F401  (the fixture: train and evaluate on fixture digits)

HERE = blas_info()


@pytest.mark.skipif(HERE["core"] is None or platform.machine() not in ("x86_64", "AMD64"),
                    reason="NumPy here does not use OpenBLAS on x86-64")
def test_core_is_the_kernel_openblas_runs_and_openblas_coretype_picks_it():
    # Haswell (AVX2) runs on every x86-64 CPU this project's CI uses; OpenBLAS reads the variable at load
    out = subprocess.run([sys.executable, "-c", "from reference.app.blas import blas_info; print(blas_info()['core'])"],
                         env={**os.environ, "OPENBLAS_CORETYPE": "Haswell"}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "Haswell"
    assert HERE["numpy"] == np.__version__ and "openblas" in (HERE["blas"] or "openblas").lower()


def test_describe_names_library_version_and_kernel():
    assert describe({"blas": "scipy-openblas", "version": "0.3.31", "core": "Zen"}) == "scipy-openblas 0.3.31 (kernel Zen)"
    assert describe({"blas": "accelerate", "version": None, "core": None}) == "accelerate"
    assert describe(None) == "an unrecorded BLAS"
    assert describe({"blas": "scipy-openblas", "version": "0.3.31", "core": "Haswell", "threads": 1}) == \
        "scipy-openblas 0.3.31 (kernel Haswell, 1 thread)"
    assert describe({"blas": "openblas", "version": None, "core": None, "threads": 2}) == "openblas (2 threads)"


@pytest.mark.skipif(HERE["core"] is None, reason="NumPy here does not use OpenBLAS")
def test_blas_info_records_the_thread_count_and_the_note_names_a_different_one():
    out = subprocess.run([sys.executable, "-c", "from reference.app.blas import blas_info; print(blas_info()['threads'])"],
                         env={**os.environ, "OPENBLAS_NUM_THREADS": "1"}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"
    assert HERE["threads"] >= 1
    then = {**HERE, "threads": HERE["threads"] + 1}
    meta = {"epoch": 3, "test_acc": 0.5, "test_samples": 60, "engine": "numpy", "blas": then}
    note = recorded_accuracy_note(meta, 31 / 60, 60)
    assert f"OPENBLAS_NUM_THREADS={HERE['threads'] + 1} before the command" in note


def test_note_needs_a_record_on_the_same_test_images():
    meta = {"epoch": 3, "test_acc": 0.5, "test_samples": 60, "engine": "numpy", "blas": HERE}
    assert recorded_accuracy_note({}, 0.5, 60) == (                        # plain weights: nothing recorded
        "not compared with a recorded accuracy: the file records none (plain weights, e.g. import-checkpoint's)")
    assert recorded_accuracy_note({"epoch": 3, "test_acc": 0.5}, 0.5, 60) == (  # older files: count unknown
        "not compared with the accuracy train recorded for epoch 3 (0.500000): the file does not record on how "
        "many test images (an older file)")
    assert recorded_accuracy_note(meta, 0.5, 59) == (                      # --limit: other images
        "not compared with the accuracy train recorded for epoch 3 (0.500000): that was measured on 60 test "
        "images, this on 59 (--limit 60 measures those)")
    assert recorded_accuracy_note(meta, 0.5, 60) == "reproduces the accuracy train recorded for epoch 3 (0.500000)"
    same = recorded_accuracy_note(meta, 31 / 60, 60)
    assert "by +1 of 60 images" in same and "OPENBLAS_CORETYPE" not in same
    assert "not its rounding" in same or HERE["core"] is None
    torch = recorded_accuracy_note({**meta, "engine": "torch", "blas": None}, 29 / 60, 60)
    assert "by -1 of 60 images" in torch and "torch engine" in torch and "Another engine" in torch


def test_train_records_and_evaluate_checks_the_accuracy(cli_data, capsys):
    from reference.app.runs import read_npz

    assert main(["train", "--config", str(cli_data), "--out", "run", "--no-progress"]) == 0
    assert f"BLAS: {describe(HERE)}" in capsys.readouterr().out
    arrays = read_npz("run/weights.npz")
    meta = json.loads(str(arrays["meta_json"]))
    assert meta["test_samples"] == 60 and meta["engine"] == "numpy" and meta["blas"] == HERE
    assert main(["evaluate", "--checkpoint", "run/weights.npz", "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2] == f"reproduces the accuracy train recorded for epoch 1 ({meta['test_acc']:.6f})"
    assert out[-1] == f"accuracy={meta['test_acc']:.6f}"  # still the last line

    # the same weights, as if recorded on a machine whose OpenBLAS picked another kernel and read 1 image more
    other = {**meta, "test_acc": meta["test_acc"] + 1 / 60, "blas": {**HERE, "core": "Nehalem"}}
    arrays["meta_json"] = np.array(json.dumps(other))
    np.savez("moved.npz", **arrays)
    assert main(["evaluate", "--checkpoint", "moved.npz", "--no-progress"]) == 0
    note = capsys.readouterr().out.splitlines()[-2]
    assert "differs from the accuracy train recorded for epoch 1" in note and "by -1 of 60 images" in note
    assert "(kernel Nehalem" in note and "OPENBLAS_CORETYPE=Nehalem" in note


def test_evaluate_says_why_it_does_not_compare_and_checks_a_checkpoint_too(cli_data, capsys, monkeypatch):
    """Left open last session: ``evaluate --limit`` and ``evaluate`` of a checkpoint.npz said nothing
    about the run's recorded accuracy.  A checkpoint saved at an epoch's end holds its test accuracy in its
    rows; one saved inside an epoch holds weights no test measured; ``--limit`` measures other images."""
    from reference.app.runs import load_checkpoint

    from reference.app import train as train_mod

    assert main(["train", "--config", str(cli_data), "--out", "run", "--no-progress"]) == 0
    acc = load_checkpoint("run/weights.npz")["meta"]["test_acc"]
    full = train_mod.load_split()  # the fixture's 60 digits, whatever is asked; --limit cuts them below
    monkeypatch.setattr(train_mod, "load_split", lambda dataset, split, limit=None, *a, **k: train_mod.Split(
        full.images[:limit], full.labels[:limit], full.source))
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", "run/checkpoint.npz", "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[-2] == f"reproduces the accuracy train recorded for epoch 1 ({acc:.6f})"
    for file, n, how in (("weights.npz", "60", "--limit 60 measures those"),  # (a checkpoint does not record
                         ("checkpoint.npz", "all the", "leave --limit out to measure them all")):  # the count)
        assert main(["evaluate", "--checkpoint", f"run/{file}", "--limit", "30", "--no-progress"]) == 0
        assert capsys.readouterr().out.splitlines()[-2] == (
            f"not compared with the accuracy train recorded for epoch 1 ({acc:.6f}): that was measured on {n} "
            f"test images, this on 30 ({how})")
    assert main(["evaluate", "--checkpoint", "run/checkpoint.npz", "--limit", "100", "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[-2].startswith("reproduces")  # a --limit beyond the split cuts nothing
    # ninth pass F3: a run trained with --test-limit, evaluated without --limit, was told to "leave --limit out"
    assert main(["train", "--config", str(cli_data), "--out", "cut", "--test-limit", "30", "--no-progress"]) == 0
    cut = load_checkpoint("cut/weights.npz")["meta"]["test_acc"]
    for file in ("weights.npz", "checkpoint.npz"):
        capsys.readouterr()
        assert main(["evaluate", "--checkpoint", f"cut/{file}", "--no-progress"]) == 0
        assert capsys.readouterr().out.splitlines()[-2] == (
            f"not compared with the accuracy train recorded for epoch 1 ({cut:.6f}): that was measured on 30 "
            f"test images, this on 60 (--limit 30 measures those)")
        assert main(["evaluate", "--checkpoint", f"cut/{file}", "--limit", "30", "--no-progress"]) == 0
        assert capsys.readouterr().out.splitlines()[-2].startswith("reproduces the accuracy train recorded")
    assert main(["evaluate", "--checkpoint", "run/weights.npz", "--split", "train", "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[-2] == ("not compared with a recorded accuracy: train records the "
                                                        "accuracy on the MNIST test split, this is the train split")
    arrays = dict(np.load("run/checkpoint.npz"))
    meta = json.loads(str(arrays["meta_json"]))
    meta["progress"]["batch"] = 1  # as a Ctrl-C inside epoch 2 saves it
    arrays["meta_json"] = np.array(json.dumps(meta))
    np.savez("mid.npz", **arrays)
    assert main(["evaluate", "--checkpoint", "mid.npz", "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[-2] == (  # (no weights.npz beside it: tenth pass F4)
        "not compared with a recorded accuracy: mid.npz was saved inside an epoch, whose weights no test "
        "measured (no epoch of the run has finished yet)")
    os.replace("mid.npz", "run/mid.npz")
    assert main(["evaluate", "--checkpoint", "run/mid.npz", "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[-2] == (
        "not compared with a recorded accuracy: run/mid.npz was saved inside an epoch, whose weights no test "
        "measured (evaluate run/weights.npz, the last finished epoch's)")
