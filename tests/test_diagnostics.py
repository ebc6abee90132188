"""Per-epoch diagnostics: each number checked against a direct computation, and recording them leaves a run
bit for bit unchanged."""
import numpy as np
import pytest

from reference.cli import main
from reference.diagnostics import DIAGNOSTICS, diagnostics, read_rows
from reference.losses import kernel_loss
from reference.network import Network
from reference.train import load_checkpoint, train
from reference.tsslbp import BRANCH_INTER, BRANCH_INTRA, BRANCH_WARMUP
from test_core import TINY_CNN, mnist
from test_train import TINY, splits  # noqa: F401  (fixture)


@pytest.mark.parametrize("variant", ["final", "paper2020"])
def test_diagnostics_equal_direct_computation(variant):
    """Sums over batches of 7 equal one pass over all 20 samples (float64 sums of float32 values: 1e-9)."""
    net = Network(TINY_CNN, seed=2, variant=variant)
    x, y = mnist(20)
    d = diagnostics(net, x, y, batch_size=7)
    loss, grads, out = net.gradients(x, y)
    assert d["loss"] == pytest.approx(loss / 20, rel=1e-6)
    label_loss, _ = kernel_loss(out[:, np.arange(20), y][:, :, None], np.zeros(20, np.int64), net.target)
    assert d["loss_label"] == pytest.approx(label_loss / 20, rel=1e-6)
    others = np.ones(out.shape[1:], bool)
    others[np.arange(20), y] = False
    assert d["loss_other"] == pytest.approx(0.5 * np.sum(out.astype(np.float64)[:, others] ** 2) / 20, rel=1e-5)
    s = net.records[-1].state.s.reshape(out.shape)
    assert d["label_spikes"] == pytest.approx(s[:, np.arange(20), y].sum() / 20, rel=1e-9)
    assert d["other_spikes"] == pytest.approx((s.sum() - s[:, np.arange(20), y].sum()) / 20 / 9, rel=1e-9)
    for rec in net.records:
        if rec.state is None:
            continue
        assert d[f"rate/{rec.name}"] == pytest.approx(rec.state.s.mean(), rel=1e-9)
        shares = [d[f"{k}/{rec.name}"] for k in ("warmup", "inter", "intra")]
        assert sum(shares) == pytest.approx(1.0, rel=1e-9)
        assert shares == pytest.approx([np.mean(rec.branch == c) for c in (BRANCH_WARMUP, BRANCH_INTER, BRANCH_INTRA)],
                                       rel=1e-9)
    for name, w in net.weights.items():
        assert d[f"norm/{name}"] == pytest.approx(np.linalg.norm(w.astype(np.float64)), rel=1e-9)
        assert d[f"clipped/{name}"] == 0.0
    net.weights["fc"][0, :3] = [4.0, -4.0, 3.9]
    assert diagnostics(net, x, y)["clipped/fc"] == pytest.approx(2 / net.weights["fc"].size)


def test_recording_diagnostics_leaves_the_run_unchanged(tmp_path, splits):  # noqa: F811
    quiet = dict(seed=5, progress=False, log=lambda *a: None, splits=splits)
    train(TINY, out_dir=str(tmp_path / "plain"), **quiet)
    train(TINY, out_dir=str(tmp_path / "diag"), diagnostics=30, epochs=1, **quiet)
    train(None, out_dir=str(tmp_path / "diag"), resume=True, epochs=2, diagnostics=30,
          **{**quiet, "seed": None})
    a = load_checkpoint(tmp_path / "plain" / "checkpoint.npz")["weights"]
    b = load_checkpoint(tmp_path / "diag" / "checkpoint.npz")["weights"]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])  # dropout draws, order and updates untouched
    rows = read_rows(tmp_path / "diag" / DIAGNOSTICS)
    assert [r["epoch"] for r in rows] == [1, 2]
    net = Network(TINY, seed=0)
    net.set_weights(b)
    last = diagnostics(net, splits[0].images[:30], splits[0].labels[:30])
    assert rows[-1]["loss"] == pytest.approx(last["loss"], rel=1e-5)  # CSV keeps 6 significant digits


def test_diagnose_command(tmp_path, splits, capsys):  # noqa: F811
    train(TINY, out_dir=str(tmp_path / "run"), seed=1, progress=False, log=lambda *a: None, splits=splits, epochs=1)
    # the command reads real MNIST (the first training samples): check it runs and prints every key
    assert main(["diagnose", str(tmp_path / "run" / "weights.npz"), "--samples", "40",
                 "--out", str(tmp_path / "d.csv")]) == 0
    text = capsys.readouterr().out
    assert "40 training samples" in text and "warmup/hidden" in text and "norm/output" in text
    assert len(read_rows(tmp_path / "d.csv")) == 1
    assert main(["diagnose", str(tmp_path / "run" / "weights.npz"), "--samples", "0"]) == 2


def test_best_spike_train_and_label_trains():
    """The double-filtered target of the authors' code is reached by no spike train (floor 0.0277 at T 5,
    tau_s 3, by trying all 32 against a hand computation); the paper's single filter is reached exactly."""
    from reference.diagnostics import best_spike_train, label_trains
    from reference.losses import kernel_target

    train, floor = best_spike_train(kernel_target(5, 3, "double"), 3)
    assert train.tolist() == [0, 0, 1, 0, 1]
    a = [0, 0, 1 / 3, 2 / 9, 4 / 27 + 1 / 3]  # its PSP by hand: a += (s - a) / 3
    assert floor == pytest.approx(0.5 * sum((x - t) ** 2 for x, t in zip(a, kernel_target(5, 3, "double", dtype=np.float64))), rel=1e-6)
    assert best_spike_train(kernel_target(5, 3, "single"), 3)[1] == pytest.approx(0, abs=1e-12)
    assert best_spike_train(kernel_target(5, 2, "single", [0, 1, 0, 1, 1]), 2)[0].tolist() == [0, 1, 0, 1, 1]
    with pytest.raises(ValueError, match="at most 12"):
        best_spike_train(np.zeros(13), 3)
    net = Network(TINY_CNN, seed=2)
    x, y = mnist(20)
    trains = label_trains(net, x, y, batch_size=6)
    assert sum(share for _, share, _ in trains) == pytest.approx(1.0)
    d = diagnostics(net, x, y)
    assert d["label_floor"] == pytest.approx(floor, rel=1e-9)
    at_best = sum(share for t, share, _ in trains if t == "00101")
    assert d["label_at_best"] == pytest.approx(at_best)
    assert d["loss_label"] == pytest.approx(sum(share * loss for _, share, loss in trains), rel=1e-5)


def test_label_trains_column_lists_the_most_common_trains():
    from reference.diagnostics import label_trains

    net = Network(TINY_CNN, seed=2)
    x, y = mnist(20)
    listed = [item.split(":") for item in diagnostics(net, x, y)["label_trains"].split()]
    direct = label_trains(net, x, y)
    assert len(listed) == min(6, len(direct))
    assert sorted(float(share) for _, share in listed) == pytest.approx(sorted(s for _, s, _ in direct)[::-1][:len(listed)][::-1])
