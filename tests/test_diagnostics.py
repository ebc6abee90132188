"""Per-epoch diagnostics: each number checked against a direct computation, and recording them leaves a run
bit for bit unchanged."""
import numpy as np
import pytest

from reference.app.cli import main
from reference.app.diagnostics import DIAGNOSTICS, diagnostics, read_rows
from reference.losses import count_loss, kernel_loss
from reference.network import Network
from reference.app.train import load_checkpoint, train
from reference.tsslbp import BRANCH_INTER, BRANCH_INTRA, BRANCH_WARMUP
from test_core import TINY_CNN, mnist
from test_train import NO_FIGURES, TINY, splits  # noqa: F401  (fixture)


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
    quiet = dict(seed=5, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
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
    train(TINY, out_dir=str(tmp_path / "run"), seed=1, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, epochs=1)
    # the command reads real MNIST (the first training samples): check it runs and prints every key
    assert main(["diagnose", str(tmp_path / "run" / "weights.npz"), "--samples", "40",
                 "--out", str(tmp_path / "d.csv")]) == 0
    text = capsys.readouterr().out
    assert "40 training samples" in text and "warmup/hidden" in text and "norm/output" in text
    assert len(read_rows(tmp_path / "d.csv")) == 1
    assert main(["diagnose", str(tmp_path / "run" / "weights.npz"), "--samples", "0"]) == 2
    capsys.readouterr()  # seventh pass F6: a column header longer than 14 characters was cut from the left
    assert main(["diagnose", str(tmp_path / "run" / "best_weights.npz"), str(tmp_path / "run" / "weights.npz"),
                 "--samples", "20"]) == 0
    header = capsys.readouterr().out.splitlines()[2].split()
    assert header == ["best_weights.npz", "weights.npz"]


def test_best_spike_train_and_label_trains():
    """The double-filtered target of the authors' code is reached by no spike train (floor 0.0277 at T 5,
    tau_s 3, by trying all 32 against a hand computation); the paper's single filter is reached exactly."""
    from reference.app.diagnostics import best_spike_train, label_trains
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
    from reference.app.diagnostics import label_trains

    net = Network(TINY_CNN, seed=2)
    x, y = mnist(20)
    listed = [item.split(":") for item in diagnostics(net, x, y)["label_trains"].split()]
    direct = label_trains(net, x, y)
    assert len(listed) == min(6, len(direct))
    assert sorted(float(share) for _, share in listed) == pytest.approx(sorted(s for _, s, _ in direct)[::-1][:len(listed)][::-1])


def test_count_train_loss_by_hand():
    """tau_s 2, T 5: a spike at step k adds 1 - 2^-(5-k) to the PSP sum, so only 11111 (4.03125) reaches the
    paper-era desired count 4; 11110 counts 3.53125, d = -0.46875 / 5, loss 1/2 * 5 * d^2 (exact in binary)."""
    from reference.app.diagnostics import count_train_loss

    assert count_train_loss("11111", 2, 4) == 0.0
    assert count_train_loss("11110", 2, 4) == 0.5 * 5 * (0.46875 / 5) ** 2
    assert count_train_loss("00000", 2, 4) == pytest.approx(1.6, rel=1e-15)  # 1/2 * 5 * (4/5)^2
    # tau_s 3 (the final configs): 4 is out of reach, 11111 counts 3 + 2 (2/3)^5 = 3.2634
    assert count_train_loss("11111", 3, 4) == pytest.approx(0.5 * 5 * ((1 - 2 * (2 / 3) ** 5) / 5) ** 2, rel=1e-6)


def test_count_loss_diagnostics_split_the_loss_and_list_the_trains():
    """Count loss: loss_label + loss_other is the loss, and loss_label is the trains' shares times their
    hand-checked label loss (float32 PSP sums against float64: 1e-5)."""
    from reference.app.diagnostics import label_trains

    cfg = {**TINY_CNN, "Network": {**TINY_CNN["Network"], "loss": "count", "tau_s": 2,
                                   "desired_count": 4, "undesired_count": 1}}
    net = Network(cfg, seed=2, variant="paper2020")
    x, y = mnist(20)
    d = diagnostics(net, x, y, batch_size=7)
    assert d["loss_label"] + d["loss_other"] == pytest.approx(d["loss"], rel=1e-9)
    loss, _, out = net.gradients(x, y, train=False)
    label_only, _ = count_loss(out[:, np.arange(20), y][:, :, None], np.zeros(20, np.int64), 4, 1)  # label column alone
    assert label_only > 0 and d["loss_label"] == pytest.approx(label_only / 20, rel=1e-6)
    assert d["loss_other"] == pytest.approx((loss - label_only) / 20, rel=1e-5, abs=1e-9)
    trains = label_trains(net, x, y, batch_size=6)
    assert sum(share for _, share, _ in trains) == pytest.approx(1.0)
    assert d["loss_label"] == pytest.approx(sum(share * loss for _, share, loss in trains), rel=1e-5)
    listed = dict(item.split(":") for item in d["label_trains"].split())
    assert {k: float(v) for k, v in listed.items()} == pytest.approx({k: s for k, s, _ in trains[:len(listed)]})
    soft = Network({**cfg, "Network": {**cfg["Network"], "loss": "softmax"}}, seed=2)
    with pytest.raises(ValueError, match="kernel or count"):
        label_trains(soft, x, y)
    assert "label_trains" not in diagnostics(soft, x, y)


def test_append_row_with_new_columns_rewrites_the_file(tmp_path):
    """A run resumed by a version that measures more keeps its old rows, under the union of the columns."""
    from reference.app.diagnostics import append_row

    path = tmp_path / DIAGNOSTICS
    append_row(path, {"epoch": 1, "loss": 0.5})
    append_row(path, {"epoch": 2, "loss": 0.25})
    append_row(path, {"epoch": 3, "loss": 0.125, "loss_label": 0.1, "label_trains": "11111:0.5"})
    append_row(path, {"epoch": 4, "loss": 0.0625})
    rows = read_rows(path)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert [r["loss"] for r in rows] == [0.5, 0.25, 0.125, 0.0625]
    assert [r["loss_label"] for r in rows] == ["", "", 0.1, ""] and rows[2]["label_trains"] == "11111:0.5"
    assert open(path).readline().strip() == "epoch,loss,loss_label,label_trains"
    assert sorted(p.name for p in tmp_path.iterdir()) == [DIAGNOSTICS]  # no temporary file left


def test_diagnose_lists_the_label_trains_of_a_count_loss_run(tmp_path, splits, capsys):  # noqa: F811
    from reference.app.diagnostics import count_train_loss

    cfg = {**TINY, "Network": {**TINY["Network"], "loss": "count", "desired_count": 4, "undesired_count": 1}}
    train(cfg, out_dir=str(tmp_path / "run"), seed=1, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, epochs=1)
    assert main(["diagnose", str(tmp_path / "run" / "weights.npz"), "--samples", "40", "--trains", "3"]) == 0
    text = capsys.readouterr().out
    assert "loss_label" in text and "(count loss, desired count 4)" in text
    listed = [line.split() for line in text.splitlines() if line.startswith("  ") and "label loss" in line]
    assert 1 <= len(listed) <= 3 and all(len(t) == 5 and set(t) <= {"0", "1"} for t, *_ in listed)
    for t, _, _, _, loss in listed:  # "  11110   24.50%  label loss 0.0220"
        assert float(loss) == pytest.approx(count_train_loss(t, 3, 4), abs=5e-5)
    soft = {**TINY, "Network": {**TINY["Network"], "loss": "softmax"}}
    train(soft, out_dir=str(tmp_path / "soft"), seed=1, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, epochs=1)
    assert main(["diagnose", str(tmp_path / "soft" / "weights.npz"), "--samples", "10", "--trains", "3"]) == 2
    assert "kernel- or count-loss" in capsys.readouterr().err


def test_append_row_appends_short_rows_and_mends_a_missing_line_end(tmp_path):
    from reference.app.diagnostics import append_row

    path = tmp_path / DIAGNOSTICS
    append_row(path, {"epoch": 1, "loss": 0.5, "rate/fc": 0.25})
    append_row(path, {"rate/fc": 0.125, "epoch": 2})  # fewer columns, another order: appended under the header
    with open(path, "ab") as fh:
        fh.write(b"3,0.75,0.5")  # a last line without its line end (an interrupted writer)
    append_row(path, {"epoch": 4, "loss": 0.0625, "rate/fc": 1.0})
    rows = read_rows(path)
    assert [(r["epoch"], r["loss"], r["rate/fc"]) for r in rows] == [(1, 0.5, 0.25), (2, "", 0.125), (3, 0.75, 0.5),
                                                                     (4, 0.0625, 1.0)]
    with open(path, "ab") as fh:
        fh.write(b"5,1,2,3\r\n")  # more fields than the header: not ours
    with pytest.raises(ValueError, match="line 6 has more fields"):
        append_row(path, {"epoch": 6, "loss": 1.0, "new_column": 2.0})


@pytest.mark.parametrize("point", ["before_checkpoint", "after_checkpoint"])
def test_a_kill_around_the_checkpoint_loses_no_diagnostics_row(tmp_path, splits, point):  # noqa: F811
    """The epoch's diagnostics row is part of its commit: killed just before or just after the checkpoint,
    the resumed run has one row per epoch, equal to an uninterrupted run's (issue 30, item 3: before, the
    row came after the checkpoint and a kill between the two lost it for good)."""
    from test_train import _killed_child

    quiet = dict(progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    train(TINY, out_dir=str(tmp_path / "whole"), seed=5, epochs=2, diagnostics=30, **quiet)
    # a real SIGKILL in a child process (an exception in the first epoch would undo the new run)
    _killed_child(str(tmp_path / "cut"), 0, point=point, seed=5, epochs=2, diagnostics=30, overwrite=False)
    train(None, out_dir=str(tmp_path / "cut"), resume=True, diagnostics=30, **quiet)
    whole, cut = (read_rows(tmp_path / run / DIAGNOSTICS) for run in ("whole", "cut"))
    assert [r["epoch"] for r in cut] == [1, 2]
    assert cut == whole


def test_diagnostics_are_part_of_the_run(tmp_path, splits):  # noqa: F811
    """Issue 30 (adversarial pass, 7 Dec): --diagnostics was not a setting of the run, so a resume without
    it wrote no more rows, and one with another number mixed rows measured on other samples.  The run
    records it: a plain resume continues the rows (equal to an uninterrupted run's), another number is refused."""
    from reference.app.runs import RunError

    class Killed(Exception):
        pass

    def hook(p, step):
        if p == "after_checkpoint" and step == 0:
            raise Killed

    quiet = dict(progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    train(TINY, out_dir=str(tmp_path / "whole"), seed=5, epochs=3, diagnostics=30, **quiet)
    with pytest.raises(Killed):
        train(TINY, out_dir=str(tmp_path / "cut"), seed=5, epochs=3, diagnostics=30, fault_hook=hook, **quiet)
    with pytest.raises(RunError, match="diagnostics=7 \\(the run has 30\\)"):
        train(None, out_dir=str(tmp_path / "cut"), resume=True, diagnostics=7, **quiet)
    train(None, out_dir=str(tmp_path / "cut"), resume=True, **quiet)  # no --diagnostics: the run's 30
    whole, cut = (read_rows(tmp_path / run / DIAGNOSTICS) for run in ("whole", "cut"))
    assert [r["epoch"] for r in cut] == [1, 2, 3] and cut == whole
    ck = load_checkpoint(str(tmp_path / "cut" / "checkpoint.npz"))
    assert ck["meta"]["settings"]["diagnostics"] == 30


@pytest.mark.parametrize("content", [
    b"name,score\nada,3\n", b"\x89PNG\r\n\x1a\n\x00\x00binary", b"epoch,loss\n1,0.5\n",
    # third pass F9/F10: right header, then bytes that are no UTF-8, a field beyond csv's limit, or a line
    # with more fields than the header; each failed with a traceback after the whole run
    b"weights,loss\nw.npz,0.5\n\xff\xfe\x00\n", b"weights,loss\nw.npz," + b"9" * 200_000 + b"\n",
    b"weights,loss\nw.npz,0.5,1,2\n",
    b"weights,my_accuracy\nmodelA,0.9\n"])  # fifth pass F5: a user's table that only starts like ours
def test_diagnose_out_refuses_a_file_it_did_not_write(tmp_path, capsys, content):
    """diagnose --out FILE on someone else's CSV (or a binary file, or a run's diagnostics.csv) is refused
    in one line before any work, and the file is left byte for byte (issue 30, item 2: it merged the
    file's first line into its header and rewrote it)."""
    other = tmp_path / "theirs.csv"
    other.write_bytes(content)
    assert main(["diagnose", str(tmp_path / "missing.npz"), "--out", str(other)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "give another file" in err and len(err.strip().splitlines()) == 1
    assert other.read_bytes() == content


def test_append_row_refuses_a_foreign_header(tmp_path):
    from reference.app.diagnostics import append_row

    path = tmp_path / "d.csv"
    append_row(path, {"epoch": 1, "loss": 0.5})
    append_row(path, {"epoch": 2, "loss": 0.25, "rate/x": 0.1})  # a new column: the file is rewritten, its own
    assert [r["epoch"] for r in read_rows(path)] == [1, 2]
    with pytest.raises(ValueError, match="not a CSV this command wrote"):
        append_row(path, {"weights": "w.npz", "loss": 0.5})
    link = tmp_path / "link.csv"
    link.symlink_to(path)
    with pytest.raises(ValueError, match="not a regular file"):
        append_row(link, {"epoch": 3, "loss": 0.1})


def test_diagnose_trains_must_not_be_negative(capsys):
    assert main(["diagnose", "w.npz", "--trains", "-1"]) == 2
    assert "--trains must be >= 0" in capsys.readouterr().err


def test_diagnose_refuses_files_of_networks_of_other_data(tmp_path, capsys):
    """Issue 30 (adversarial pass, 7 Dec): diagnose A B with B a network of other data measured B on A's
    samples and died with a ValueError from inside the network.  Now one line names both."""
    import os

    from reference.app.runs import save_weights

    root = os.path.join(os.path.dirname(__file__), "..", "configs")
    for name, config in (("a", "MNIST_CNN.yaml"), ("b", "FashionMNIST_400_400.yaml")):
        save_weights(str(tmp_path / f"{name}.npz"), Network(os.path.join(root, config), seed=0))
    assert main(["diagnose", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "--samples", "5"]) == 2
    err = capsys.readouterr().err
    assert "is a network of FashionMNIST (1, 28, 28)" in err and len(err.strip().splitlines()) == 1


def test_more_diagnostics_samples_than_training_samples_is_said(tmp_path, splits):  # noqa: F811
    """Fourth pass: --diagnostics 100000000 was taken without a word (it measures every training sample)."""
    said = []
    train(TINY, out_dir=str(tmp_path / "d"), seed=5, epochs=1, diagnostics=10 ** 8, progress=False,
          log=said.append, callbacks=NO_FIGURES, splits=splits)
    n_train = len(splits[0].labels)
    assert f"note: --diagnostics 100000000 is more than the {n_train} training samples" in "\n".join(said)
    assert len(read_rows(tmp_path / "d" / DIAGNOSTICS)) == 1


def test_every_column_diagnose_writes_is_one_it_recognises_as_its_own(tmp_path, capsys):
    """The check that refuses a user's CSV (above) must accept every column diagnose writes, so that
    ``diagnose --out`` appends to its own file: a diagnose twice into the same file."""
    from reference.app.diagnostics import is_diagnostics_column

    net = Network(TINY, seed=0)
    x, y = mnist(6)
    row = {"weights": "w.npz", "epoch": 1, **diagnostics(net, x.astype(np.float32), y)}
    assert [k for k in row if not is_diagnostics_column(k)] == []
