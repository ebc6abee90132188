"""Your own data (``dataset: arrays``, reference/app/arrays.py): two .npz files to a trained, evaluated,
resumable run through the CLI, and one clear line for each bad file.

The data: 8x8 images of a horizontal, vertical or diagonal bar with noise (``examples/own_data/make_bars.py``,
the worked example of docs/own_data.md), and spike frames made from them; small, so each training takes about a second.
"""
import os
import re
import sys

import numpy as np
import pytest

from conftest import ROOT
from reference.app.cli import main

sys.path.insert(0, os.path.join(ROOT, "examples", "own_data"))
from make_bars import bars  # noqa: E402  (the worked example's data, one home)

CONFIG = """Network:
  epochs: {epochs}
  batch_size: 50
  n_steps: 5
  dataset: "arrays"
  input_shape: [1, 8, 8]
{extra}  lr: 0.002
  loss: "kernel"
  n_class: 3
  tau_m: 5
  tau_s: 3

Layers:
  hidden:
    type: "linear"
    n_inputs: 64
    n_outputs: 100
    threshold: 1
  output:
    type: "linear"
    n_inputs: 100
    n_outputs: 3
    threshold: 1
"""


def _folder(path, n_train=3000, n_test=600, transform=lambda x: x):
    os.makedirs(path, exist_ok=True)
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        x, labels = bars(n, seed)
        np.savez(os.path.join(path, f"{split}.npz"), x=transform(x), labels=labels)
    return str(path)


def _config(tmp_path, epochs=2, extra=""):
    path = tmp_path / "bars.yaml"
    path.write_text(CONFIG.format(epochs=epochs, extra=extra))
    return str(path)


def _accuracy(out):
    return float(re.findall(r"accuracy=([0-9.]+)", out)[-1])


def test_two_npz_files_train_evaluate_and_resume(tmp_path, capsys):
    data, cfg, run = _folder(tmp_path / "data"), _config(tmp_path), str(tmp_path / "run")
    assert main(["train", "--config", cfg, "--data-dir", data, "--out", run, "--no-progress"]) == 0
    trained = _accuracy(capsys.readouterr().out)
    assert trained > 0.6  # three bar orientations, 2 epochs on 3,000 noisy images: far above chance (1/3)
    assert main(["evaluate", "--checkpoint", os.path.join(run, "weights.npz"), "--data-dir", data, "--no-progress"]) == 0
    assert _accuracy(capsys.readouterr().out) == trained
    for f in ("learning_curve.png", "confusion_matrix.png", "metrics.csv", "run.log"):
        assert os.path.getsize(os.path.join(run, f)) > 0, f
    assert main(["train", "--resume", run, "--epochs", "3", "--data-dir", data, "--no-progress"]) == 0
    capsys.readouterr()
    other = _folder(tmp_path / "other", n_train=2999)  # other files: the resume is refused, with one line
    assert main(["train", "--resume", run, "--epochs", "4", "--data-dir", other, "--no-progress"]) == 2
    assert "data differ from the run's" in capsys.readouterr().err  # train (and test: normalised by train)


def test_statistics_come_from_the_whole_training_split(tmp_path):
    """Normalised by the training split's per-channel mean and std (also for the test split, and whatever
    --train-limit), or by the config's own."""
    from reference.app.arrays import load_arrays
    from reference.config import load_config
    data = _folder(tmp_path / "data", transform=lambda x: 3 * x + 2)
    cfg = load_config(_config(tmp_path))
    raw = np.load(os.path.join(data, "train.npz"))["x"].astype(np.float64)
    mean, std = raw.mean(), raw.std()
    train = load_arrays(data, "train", cfg, limit=50, verbose=False)
    test = load_arrays(data, "test", cfg, verbose=False)
    assert np.allclose(train.images, (raw[:50] - mean) / std, atol=1e-5)
    assert abs(float(test.images.mean())) < 0.1 and train.images.dtype == np.float32
    import reference.app.arrays as arrays
    reads = []
    real = arrays.read_arrays
    arrays.read_arrays = lambda folder, split: reads.append(split) or real(folder, split)
    try:  # the test split after the training one: train.npz's statistics are not read again
        assert np.array_equal(load_arrays(data, "test", cfg, verbose=False).images, test.images)
    finally:
        arrays.read_arrays = real
    assert reads == ["test"]
    own = load_config(_config(tmp_path, extra="  normalise: [2.0, 3.0]\n"))
    assert np.allclose(load_arrays(data, "train", own, verbose=False).images, (raw - 2) / 3, atol=1e-5)


@pytest.mark.parametrize("layout", ["NCHWT", "NTCHW"])
def test_spike_frames_train_in_either_layout(tmp_path, capsys, layout):
    def frames(x):  # each pixel fires at every step where it is above 0.5 (the same train at all 5 steps)
        s = np.repeat((x > 0.5)[..., None], 5, axis=-1).astype(np.uint8)  # (N, C, H, W, T)
        return s if layout == "NCHWT" else s.transpose(0, 4, 1, 2, 3)
    data = _folder(tmp_path / "data", transform=frames)
    cfg = _config(tmp_path, extra=f"  frames_layout: {layout}\n")
    assert main(["train", "--config", cfg, "--data-dir", data, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert _accuracy(capsys.readouterr().out) > 0.6


def _bad(tmp_path, capsys, cfg_extra="", **arrays):
    data = _folder(tmp_path / "data")
    for split, members in arrays.items():
        if members is None:
            os.remove(os.path.join(data, f"{split}.npz"))
        else:
            np.savez(os.path.join(data, f"{split}.npz"), **members)
    code = main(["train", "--config", _config(tmp_path, extra=cfg_extra), "--data-dir", data, "--out",
                 str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert not os.path.exists(tmp_path / "run" / "checkpoint.npz")  # refused before any training
    return err


def test_bad_files_get_one_line_each(tmp_path, capsys):
    x, y = bars(100, 0)
    cases = [
        ({"test": None}, "test.npz not found"),
        ({"train": {"x": x}}, "no member labels"),
        ({"train": {"x": x[:, :, :6], "labels": y}}, "x has shape (100, 1, 6, 8); the config's input_shape asks for (N, 1, 8, 8)"),
        ({"train": {"x": x, "labels": y + 1}}, "labels lie in 1..3; the config's n_class is 3"),
        ({"train": {"x": x, "labels": y[:50]}}, "labels has shape (50,)"),
        ({"train": {"x": x, "labels": y.astype(float)}}, "labels has dtype float64"),
        ({"train": {"x": np.where(x > 1.1, np.nan, x), "labels": y}}, "NaN or inf"),
        ({"train": {"x": x.astype("U8"), "labels": y}}, "dtype <U8"),
        ({"train": {"x": np.array([object()] * 3, dtype=object), "labels": y[:3]}}, "not Python objects"),
        ({"train": {"x": x[..., None].repeat(4, -1), "labels": y}}, "spike frames? say frames_layout"),
    ]
    for i, (arrays, message) in enumerate(cases):
        sub = tmp_path / f"case{i}"
        sub.mkdir()
        assert message in _bad(sub, capsys, **arrays), message
    sub = tmp_path / "T"
    sub.mkdir()
    frames = np.zeros((100, 1, 8, 8, 4), np.uint8)
    assert "its T = 4 differs from the config's n_steps = 5" in _bad(
        sub, capsys, "  frames_layout: NCHWT\n", train={"x": frames, "labels": y})


def test_config_keys_of_own_arrays_are_checked(tmp_path):
    from reference.config import ConfigError, load_config
    (tmp_path / "a.yaml").write_text(CONFIG.format(epochs=1, extra="").replace("  input_shape: [1, 8, 8]\n", ""))
    with pytest.raises(ConfigError, match="needs 'input_shape: \\[C, H, W\\]'"):
        load_config(str(tmp_path / "a.yaml"))
    with pytest.raises(ConfigError, match="'frames_layout' must be one of"):
        load_config(_config(tmp_path, extra="  frames_layout: NHWC\n"))
    with pytest.raises(ConfigError, match="std of 'normalise' must be > 0"):
        load_config(_config(tmp_path, extra="  normalise: [0, 0]\n"))
    mnist = open(os.path.join(ROOT, "configs", "demo_MNIST_MLP.yaml")).read().replace(
        '  dataset: "MNIST"\n', '  dataset: "MNIST"\n  input_shape: [1, 28, 28]\n')
    (tmp_path / "m.yaml").write_text(mnist)
    with pytest.raises(ConfigError, match="'input_shape' is for dataset 'arrays'"):
        load_config(str(tmp_path / "m.yaml"))


def test_no_data_dir_says_what_to_give(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("TSSLBP_DATA_DIR", raising=False)
    assert main(["train", "--config", _config(tmp_path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "dataset 'arrays' reads your own files: pass --data-dir DIR" in capsys.readouterr().err


def test_the_worked_example_config_trains(tmp_path, capsys):
    """examples/own_data/bars.yaml on make_bars.py's files, as docs/own_data.md runs them (its 5 epochs)."""
    from make_bars import write
    write(str(tmp_path / "bars_data"))
    assert main(["train", "--config", os.path.join(ROOT, "examples", "own_data", "bars.yaml"), "--data-dir",
                 str(tmp_path / "bars_data"), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert _accuracy(capsys.readouterr().out) > 0.9


def test_overflowing_data_is_one_line_without_numpy_warnings(tmp_path, capsys):
    """Issue 30 (adversarial pass, 7 Dec): x holding inf, or float64 values of 1e300, printed NumPy's
    RuntimeWarning lines (invalid value in subtract, overflow in square) before the error.  Under
    ``-W error::RuntimeWarning`` (here: a warnings filter) any such warning would now fail the command."""
    import warnings

    x, y = bars(100, 0)
    cases = [(np.where(x > 1.1, np.inf, x), "x holds NaN or inf values"),
             (np.where(x > 1.1, 1e300, x.astype(np.float64)), "statistics overflow; scale the data")]
    for i, (bad_x, message) in enumerate(cases):
        sub = tmp_path / f"case{i}"
        sub.mkdir()
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            assert message in _bad(sub, capsys, train={"x": bad_x, "labels": y}), message


def test_a_file_declaring_more_than_memory_is_refused_from_its_header(tmp_path, capsys):
    """Issue 30 (adversarial pass, 7 Dec): a 164 KB train.npz whose x declared (1e9, 1, 8, 8) got 'out of
    memory (...): use a smaller batch or network', naming no file.  The members' headers are read first and
    what x declares is weighed against the free memory, before anything is decompressed."""
    import io
    import zipfile

    x, y = bars(100, 0)
    sub = tmp_path / "huge"
    sub.mkdir()
    data = _folder(sub / "data")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 9, 1, 8, 8)})
    labels = io.BytesIO()
    np.save(labels, y)
    with zipfile.ZipFile(os.path.join(data, "train.npz"), "w") as z:  # the header only: 238 GiB declared
        z.writestr("x.npy", header.getvalue())
        z.writestr("labels.npy", labels.getvalue())
    code = main(["train", "--config", _config(sub), "--data-dir", data, "--out", str(sub / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "train.npz: x declares (1000000000, 1, 8, 8) float32" in err
    assert "checked before reading it" in err and len(err.strip().splitlines()) == 1


def test_channel_statistics_in_chunks_equal_the_whole_array_and_bound_the_copy(monkeypatch):
    """Issue 30: the statistics made a float64 copy of the whole split (8x a uint8 file, 3x with std's
    temporary).  Past STATS_CHUNK_BYTES they are summed per chunk of samples: equal to the one-copy result to
    1e-12 relative (float64 sums of a few million terms in another order: about 1e-16 per term), and the
    largest allocation is about one chunk, not the split (tracemalloc counts NumPy's buffers)."""
    import tracemalloc

    from reference.app import arrays

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(300, 3, 16, 16), dtype=np.uint8)
    whole = arrays.channel_stats(x)  # 1.8 MB as float64: one copy
    monkeypatch.setattr(arrays, "STATS_CHUNK_BYTES", 64 * 1024)  # 10 samples per chunk
    tracemalloc.start()
    chunked = arrays.channel_stats(x)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    for a, b in zip(chunked, whole):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert peak < 4 * 64 * 1024 < x.size * 8 // 4, peak  # a chunk and its squared deviations, not the split


def test_a_fifo_in_place_of_a_split_is_named_as_such(tmp_path):
    """Issue 30, second pass: a train.npz that is a FIFO was reported as 'not found'."""
    from reference.app.arrays import read_arrays
    from reference.app.data import DataError

    os.mkfifo(tmp_path / "train.npz")
    with pytest.raises(DataError, match="is not a regular file"):
        read_arrays(str(tmp_path), "train")
