"""Training loop: same seed same result, resume (after an epoch or mid-epoch Ctrl-C) equals an
uninterrupted run bit for bit, evaluate reproduces the recorded accuracy.  Real MNIST fixture images."""
import os

import numpy as np
import pytest

from reference.train import Split, evaluate, load_checkpoint, read_metrics, train
from reference.network import Network

TINY = {
    "Network": {"epochs": 2, "batch_size": 20, "n_steps": 5, "dataset": "MNIST", "rule": "TSSLBP",
                "lr": 0.0005, "loss": "kernel", "n_class": 10, "tau_m": 5, "tau_s": 3, "model": "LIF"},
    "Layers": {"hidden": {"type": "linear", "n_inputs": 784, "n_outputs": 64, "weight_scale": 1, "threshold": 1},
               "drop": {"type": "dropout", "p": 0.2},
               "output": {"type": "linear", "n_inputs": 64, "n_outputs": 10, "weight_scale": 1, "threshold": 1}},
}


@pytest.fixture(scope="module")
def splits():
    data = np.load(os.path.join(os.path.dirname(__file__), "data", "mnist_fixture.npz"))
    norm = lambda im: ((im / 255.0 - 0.1307) / 0.3081)[:, None].astype(np.float32)
    return (Split(norm(data["train_images"][:100]), data["train_labels"][:100].astype(np.int64), "fixture"),
            Split(norm(data["test_images"][:60]), data["test_labels"][:60].astype(np.int64), "fixture"))


def _run(tmp_path, name, splits, **kw):
    out = str(tmp_path / name)
    train(TINY, out_dir=out, seed=5, progress=False, log=lambda *a: None, splits=splits, **kw)
    return out


def _weights(out):
    return load_checkpoint(os.path.join(out, "checkpoint.npz"))["weights"]


def test_same_seed_same_result(tmp_path, splits):
    a, b = _run(tmp_path, "a", splits), _run(tmp_path, "b", splits)
    for k, w in _weights(a).items():
        np.testing.assert_array_equal(w, _weights(b)[k])  # deterministic: bit-identical


def test_resume_after_epoch_equals_uninterrupted(tmp_path, splits):
    full = _run(tmp_path, "full", splits)
    part = _run(tmp_path, "part", splits, epochs=1)
    train(None, out_dir=part, resume=True, epochs=2, progress=False, log=lambda *a: None, splits=splits)
    for k, w in _weights(full).items():
        np.testing.assert_array_equal(w, _weights(part)[k])
    m_full, m_part = read_metrics(os.path.join(full, "metrics.csv")), read_metrics(os.path.join(part, "metrics.csv"))
    assert m_full["test_acc"] == m_part["test_acc"] and m_full["train_loss"] == m_part["train_loss"]


def test_ctrl_c_mid_epoch_then_resume_equals_uninterrupted(tmp_path, splits):
    full = _run(tmp_path, "full", splits)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "cut", splits, stop_after_batches=7)  # epoch 2, batch 2 of 5
    ck = load_checkpoint(os.path.join(tmp_path, "cut", "checkpoint.npz"))
    assert (ck["meta"]["epoch"], ck["meta"]["batch"]) == (1, 2)
    train(None, out_dir=str(tmp_path / "cut"), resume=True, progress=False, log=lambda *a: None, splits=splits)
    for k, w in _weights(full).items():
        np.testing.assert_array_equal(w, _weights(str(tmp_path / "cut"))[k])


def test_weights_file_reproduces_recorded_accuracy(tmp_path, splits):
    out = _run(tmp_path, "w", splits)
    ck = load_checkpoint(os.path.join(out, "weights.npz"))
    net = Network(ck["config"])
    net.set_weights(ck["weights"])
    _, acc, _ = evaluate(net, splits[1])
    assert acc == pytest.approx(read_metrics(os.path.join(out, "metrics.csv"))["test_acc"][-1], abs=1e-6)
    for png in ("learning_curve.png", "confusion_matrix.png"):
        assert os.path.getsize(os.path.join(out, png)) > 1000
