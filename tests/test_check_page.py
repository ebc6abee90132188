"""docs/check.md's example is what the commands it shows print (the trained MNIST CNN, 4 test digits,
the full rule against ``--no-intra``); every row it quotes is recomputed here."""
import os
import re

import numpy as np
import pytest

from conftest import ROOT, load_mnist

WEIGHTS = os.path.join(ROOT, "results", "mnist_cnn", "weights.npz")


def test_the_compare_example_is_what_the_commands_print(tmp_path, capsys):
    if not os.path.exists(WEIGHTS):
        pytest.skip("results/mnist_cnn/weights.npz is not in this copy (a light clone)")
    from reference.app.cli import main
    x, y = load_mnist(4)
    np.savez(tmp_path / "X.npz", input=x.astype(np.float32), labels=y)
    base = ["gradients", "--config", os.path.join(ROOT, "configs", "MNIST_CNN.yaml"), "--weights", WEIGHTS,
            "--inputs", str(tmp_path / "X.npz")]
    assert main(base + ["--out", str(tmp_path / "G_ours.npz")]) == 0
    assert main(base + ["--out", str(tmp_path / "G_yours.npz"), "--no-intra"]) == 0
    capsys.readouterr()
    assert main(["compare", "--ours", str(tmp_path / "G_ours.npz"), "--theirs", str(tmp_path / "G_yours.npz"),
                 "--rtol", "1e-4"]) == 1
    printed = capsys.readouterr().out
    page = open(os.path.join(ROOT, "docs", "check.md"), encoding="utf-8").read()
    block = re.search(r"```text\n(quantity.*?)```", page, re.S).group(1)
    quoted = [line for line in block.splitlines() if line.strip() and line.strip() != "..."]
    assert len(quoted) >= 10
    for line in quoted:
        assert line.rstrip() in {p.rstrip() for p in printed.splitlines()}, line
