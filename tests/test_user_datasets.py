"""CIFAR-10 and N-MNIST from a user's folder: the authors' preprocessing, checked against literal twins, and
training / evaluation through the CLI on small files written in the real formats."""
import math
import os
import pickle

import numpy as np
import pytest

from reference.app import data, nmnist
from reference.app.cli import main
from reference.config import ConfigError, load_config
from reference.app.data import DataError
from reference.app.train import load_split, train

ROOT = os.path.join(os.path.dirname(__file__), "..")


# ------------------------------------------------------------------ writers of the real formats
def write_cifar(folder, per_class=1, seed=0):
    """CIFAR-10 python batches (data_batch_1..5, test_batch) with ``per_class`` images of each class."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.permutation(np.repeat(np.arange(10), per_class)).tolist()
        d = {b"batch_label": name.encode(), b"labels": labels,
             b"data": rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8), b"filenames": [b"a.png"] * len(labels)}
        (folder / name).write_bytes(pickle.dumps(d, protocol=2))
    return folder


def random_events(rng, n=400, t_max=316_000, grid=None):
    ev = np.zeros(n, data.NMNIST_EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n)
    t = rng.integers(0, t_max, n) if grid is None else rng.integers(0, t_max // grid, n) * grid
    ev["t"] = np.sort(t)
    return ev


def write_nmnist(root, per_class=(2, 1), seed=0, n_events=400):
    """Train/<digit>/<id>.bin and Test/<digit>/<id>.bin, ids numbered across classes as MNIST's are."""
    rng = np.random.default_rng(seed)
    sample_id = 0
    for split, per in zip(("Train", "Test"), per_class):
        for k in range(per):
            for label in rng.permutation(10):
                (root / split / str(label)).mkdir(parents=True, exist_ok=True)
                data.write_nmnist_events(root / split / str(label) / f"{sample_id:05d}.bin",
                                         random_events(rng, n_events))
                sample_id += 1
    return root


# ------------------------------------------------------------------ N-MNIST: literal twin of the authors' pipeline
def _matlab_round(v):
    return math.copysign(math.floor(abs(v) + 0.5), v)


def authors_pipeline(ev, n_steps, w):
    """Read_Ndataset + stabilize + NMNIST_Converter (MATLAB, 1-based) + loadNMNIST_Spiking.py, one event at a time."""
    lines = {}
    for e in ev:
        x, y, ts = float(e["x"]) + 1, float(e["y"]) + 1, float(e["t"])
        if ts <= 105e3:
            x, y = x - 3.5 * ts / 105e3, y - 7 * ts / 105e3
        elif ts <= 210e3:
            x, y = x - 3.5 - 3.5 * (ts - 105e3) / 105e3, y - 7 + 7 * (ts - 105e3) / 105e3
        else:
            x = x - 7 + 7 * (ts - 210e3) / 105e3
        x, y = _matlab_round(x), _matlab_round(y)
        if x < 1 or y < 1 or x > 34 or y > 34:
            continue
        channel = int((x - 1) * 34 + y) + (34 * 34 if e["p"] == 1 else 0)  # MATLAB p == 2: on events
        lines.setdefault(channel, []).append(math.ceil(ts / w))
    out = np.zeros((2, 34, 34, n_steps), dtype=np.float32)
    for channel, times in lines.items():
        pos, c = channel - 1, 0
        if pos >= 1156:
            c, pos = 1, pos - 1156
        for t in times:
            if t >= n_steps:
                break
            out[c, pos // 34, pos % 34, t - 1] = 1  # t = 0 -> index -1 (the last step), as their loader
    return out


def dense(indices, n_steps):
    out = np.zeros(2 * 34 * 34 * n_steps, np.float32)
    out[indices] = 1
    return out.reshape(2, 34, 34, n_steps)


@pytest.mark.parametrize("n_steps,w,grid", [(30, 10_000, None), (30, 10_000, 7_500), (7, 4_000, 1_000), (100, 3_000, 1_500)])
def test_authors_binning_equals_their_pipeline(n_steps, w, grid):
    """Every spike equal (0/1 frames: exact) on events that hit the rounding halves (times on a 7.5 ms
    or 1.5 ms grid put stabilised addresses on .5), bin 0, the last bins, and the sensor's edges."""
    rng = np.random.default_rng(n_steps + w)
    for _ in range(4):
        ev = random_events(rng, 600, grid=grid)
        ev["t"][:3] = 0  # bin 0: the authors' loader puts these in the last step
        got = dense(nmnist.frame_indices(ev, n_steps, w), n_steps)
        np.testing.assert_array_equal(got, authors_pipeline(ev, n_steps, w))
    assert got[..., -1].sum() > 0  # the t = 0 events


def test_authors_binning_stops_at_first_late_bin_per_pixel():
    """Unsorted times: the loader stops reading a pixel's list at its first bin >= T (later, earlier bins are lost)."""
    ev = np.zeros(3, data.NMNIST_EVENT_DTYPE)
    # all three land on pixel (10, 10) once stabilised (1-based (11, 11)); the second is past the last bin
    ev["x"], ev["y"], ev["t"] = [10, 4, 10], [10, 10, 10], [1_000, 400_000, 7_000]
    got = dense(nmnist.frame_indices(ev, 30, 2_000), 30)
    np.testing.assert_array_equal(got, authors_pipeline(ev, 30, 2_000))
    assert got.sum() == 1 and got[0, 10, 10, 0] == 1  # the third (bin 4, step 3) comes after the late one: lost
    ev["t"][1] = 3_000  # not late: all three read (stabilised elsewhere, so 3 spikes)
    assert dense(nmnist.frame_indices(ev, 30, 2_000), 30)[0, 10, 10].sum() == 2


def test_uniform_binning_and_no_stabilisation():
    ev = np.zeros(4, data.NMNIST_EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"], ev["t"] = [0, 5, 33, 2], [0, 6, 33, 2], [0, 1, 1, 0], [0, 9_999, 29_999, 30_000]
    got = dense(nmnist.frame_indices(ev, 3, 10_000, binning="uniform", stabilise_motion=False), 3)
    assert got.sum() == 3 and got[0, 0, 0, 0] == 1 and got[1, 5, 6, 0] == 1 and got[1, 33, 33, 2] == 1
    assert nmnist.window_spanning(30) == 10_000 and nmnist.window_spanning(7) == 42_858
    assert nmnist.AUTHORS_WINDOW_US == 3000  # their config's data folder 2312_3000_stable
    with pytest.raises(ValueError, match="binning"):
        nmnist.frame_indices(ev, 3, binning="nearest")
    with pytest.raises(ValueError, match="time_window_us"):
        nmnist.frame_indices(ev, 3, 0)


def test_spike_frames_index_like_an_array():
    rng = np.random.default_rng(1)
    per_sample = [nmnist.frame_indices(random_events(rng, 300), 6, 50_000) for _ in range(5)]
    frames = nmnist.SpikeFrames(np.concatenate(per_sample), np.r_[0, np.cumsum([len(i) for i in per_sample])], 6)
    full = np.stack([dense(i, 6) for i in per_sample])
    assert frames.shape == (5, 2, 34, 34, 6) and len(frames) == 5 and frames.ndim == 5
    np.testing.assert_array_equal(frames[:], full)
    np.testing.assert_array_equal(frames[[3, 0, 3]], full[[3, 0, 3]])
    np.testing.assert_array_equal(frames[1:4], full[1:4])
    np.testing.assert_array_equal(frames[-1], full[-1])
    np.testing.assert_array_equal(frames[np.array([True, False, False, False, True])], full[[0, 4]])
    assert frames[[2]].dtype == np.float32
    with pytest.raises(IndexError):
        frames[[5]]
    with pytest.raises(ValueError, match="offsets"):
        nmnist.SpikeFrames(np.zeros(3, np.uint32), np.array([0, 2]), 6)


def test_nmnist_folder_order_and_errors(tmp_path):
    root = write_nmnist(tmp_path / "nm")
    samples = nmnist.list_samples(root, "train")
    assert len(samples) == 20 and [int(f.stem) for f, _ in samples] == list(range(20))  # MNIST order: ids
    assert sorted(label for _, label in samples[:10]) == list(range(10))  # classes mixed
    frames, labels, source = nmnist.load_nmnist(root, "test", 30, limit=4)
    assert frames.shape == (4, 2, 34, 34, 30) and labels.tolist() == [int(f.parent.name) for f, _ in
                                                                      nmnist.list_samples(root, "test")[:4]]
    first = nmnist.list_samples(root, "test")[0][0]
    np.testing.assert_array_equal(frames[0], authors_pipeline(data.read_nmnist_events(first), 30, 3_000))
    with pytest.raises(DataError, match="no Train/ folder"):
        nmnist.list_samples(tmp_path, "train")
    with pytest.raises(DataError, match="does not exist"):
        nmnist.list_samples(tmp_path / "nowhere", "test")
    for f in (root / "Test" / "3").iterdir():
        f.unlink()
    (root / "Test" / "3").rmdir()
    with pytest.raises(DataError, match=r"missing class folder\(s\) 3"):
        nmnist.list_samples(root, "test")
    (root / "Train" / "0" / "99999.bin").write_bytes(b"\x01\x02\x03")
    with pytest.raises(DataError, match="99999.bin: 3 bytes is not a positive multiple of 5"):
        nmnist.load_nmnist(root, "train", 30)


# ------------------------------------------------------------------ CIFAR-10 augmentation
def test_random_crop_flip_is_torchvisions_on_uint8_then_normalised():
    """Padding the uint8 image with 0, cropping, flipping, then normalising (torchvision's order) equals
    cropping and flipping the normalised image padded with the normalised black, for the same draws."""
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8)
    x = data.normalise(raw, "CIFAR10")
    got = data.random_crop_flip(x, np.random.default_rng(7))
    draw = np.random.default_rng(7)
    top, left, flip = draw.integers(0, 9, 16), draw.integers(0, 9, 16), draw.random(16) < 0.5
    padded = np.pad(raw, ((0, 0), (0, 0), (4, 4), (4, 4)))
    want = np.stack([padded[i, :, top[i]:top[i] + 32, left[i]:left[i] + 32][:, :, ::-1 if flip[i] else 1]
                     for i in range(16)])
    np.testing.assert_array_equal(got, data.normalise(want, "CIFAR10"))
    assert 0 < flip.sum() < 16 and len(set(top.tolist())) > 1  # the draws cover both cases
    np.testing.assert_array_equal(x, data.normalise(raw, "CIFAR10"))  # input untouched
    np.testing.assert_allclose(data.cifar_pad_value(), -np.array([0.4914, 0.4822, 0.4465]) / [0.2023, 0.1994, 0.2010],
                               rtol=1e-6)


def test_cifar_split_from_folder(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")
    cfg = load_config(os.path.join(ROOT, "configs", "CIFAR10.yaml"))
    tr = load_split("CIFAR10", "train", 7, data_dir=tmp_path, verbose=False, config=cfg)
    te = load_split("CIFAR10", "test", None, data_dir=tmp_path, verbose=False, config=cfg)
    assert tr.images.shape == (7, 3, 32, 32) and tr.augment is not None and te.augment is None
    assert te.images.shape == (10, 3, 32, 32) and sorted(te.labels.tolist()) == list(range(10))


def test_user_folder_errors_and_data_path(tmp_path, monkeypatch):
    monkeypatch.delenv("TSSLBP_DATA_DIR", raising=False)
    cfg = load_config(os.path.join(ROOT, "configs", "NMNIST_CNN.yaml"))
    with pytest.raises(DataError, match=r"NMNIST_Spiking cannot be downloaded .*Train/0..9/\*.bin.*--data-dir"):
        load_split("NMNIST_Spiking", "test", config=_with_path(cfg, tmp_path / "none"))
    write_nmnist(tmp_path / "nm")
    split = load_split("NMNIST_Spiking", "test", verbose=False, config=_with_path(cfg, tmp_path / "nm"))
    assert split.images.shape == (10, 2, 34, 34, 30)
    with pytest.raises(DataError, match="n_steps"):
        load_split("NMNIST_Spiking", "test", data_dir=tmp_path / "nm")
    with pytest.raises(DataError, match="CIFAR10 cannot be downloaded.*cifar-10-python.tar.gz"):
        load_split("CIFAR10", "test")


def _with_path(cfg, path):
    raw = {"Network": {**cfg.raw["Network"], "data_path": str(path)}, "Layers": cfg.raw["Layers"]}
    return load_config(raw)


def test_event_config_keys_are_checked():
    cfg = load_config(os.path.join(ROOT, "configs", "NMNIST_CNN.yaml"))
    for key, bad in (("time_window_us", 0), ("time_window_us", 2.5), ("event_binning", "floor")):
        raw = {"Network": {**cfg.raw["Network"], key: bad}, "Layers": cfg.raw["Layers"]}
        with pytest.raises(ConfigError, match=key):
            load_config(raw)


# ------------------------------------------------------------------ through the CLI, the paper's configs
def test_nmnist_config_trains_and_evaluates_through_cli(tmp_path, capsys):
    root = write_nmnist(tmp_path / "nm")
    out = tmp_path / "run"
    assert main(["train", "--config", os.path.join(ROOT, "configs", "NMNIST_CNN.yaml"), "--data-dir", str(root),
                 "--epochs", "1", "--batch-size", "5", "--out", str(out), "--no-progress"]) == 0
    rows = open(out / "metrics.csv").read().splitlines()
    assert len(rows) == 2
    test_acc = float(rows[1].split(",")[4])
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out / "weights.npz"), "--data-dir", str(root), "--no-progress"]) == 0
    assert f"accuracy={test_acc:.6f}" in capsys.readouterr().out


# The full-size CIFAR-10 network through the CLI: 13 s, 6 of them zlib compressing its random weights.  The
# CIFAR reader, augmentation and resume are unit-tested on a small network (SMALL_CIFAR) below.
@pytest.mark.integration
def test_cifar_config_trains_one_step_through_cli(tmp_path, capsys):
    write_cifar(tmp_path / "c" / "cifar-10-batches-py")
    out = tmp_path / "run"
    assert main(["train", "--config", os.path.join(ROOT, "configs", "CIFAR10.yaml"), "--data-dir", str(tmp_path / "c"),
                 "--epochs", "1", "--batch-size", "2", "--train-limit", "2", "--test-limit", "2", "--out", str(out),
                 "--no-progress"]) == 0
    test_acc = float(open(out / "metrics.csv").read().splitlines()[1].split(",")[4])
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(out / "weights.npz"), "--data-dir", str(tmp_path / "c"),
                 "--limit", "2", "--no-progress"]) == 0
    assert f"accuracy={test_acc:.6f}" in capsys.readouterr().out
    assert main(["train", "--config", os.path.join(ROOT, "configs", "CIFAR10.yaml"), "--data-dir", str(tmp_path),
                 "--epochs", "1", "--out", str(tmp_path / "run2")]) == 2
    assert "missing CIFAR-10 batch files" in capsys.readouterr().err


SMALL_CIFAR = {
    "Network": {"epochs": 2, "batch_size": 4, "n_steps": 3, "dataset": "CIFAR10", "lr": 0.001, "loss": "kernel",
                "n_class": 10, "tau_m": 5, "tau_s": 3, "desired_count": 3, "undesired_count": 1},
    "Layers": {"conv_1": {"type": "conv", "in_channels": 3, "out_channels": 4, "kernel_size": 3, "padding": 1,
                          "threshold": 1, "weight_scale": 5},
               "pooling_1": {"type": "pooling", "kernel_size": 4},
               "output": {"type": "linear", "n_inputs": 256, "n_outputs": 10, "threshold": 1}},
}


def test_cifar_augmentation_resumes_exactly_and_changes_training(tmp_path):
    """The crops and flips are drawn per (seed, epoch, batch): a run stopped and resumed ends with the same
    weights, bit for bit, as one that ran through; and the augmentation is really applied."""
    write_cifar(tmp_path / "c", per_class=2)
    kw = dict(data_dir=tmp_path / "c", progress=False, callbacks=[], log=lambda *a: None, seed=3)
    through = train(SMALL_CIFAR, out_dir=str(tmp_path / "a"), **kw)["net"].weights
    train(SMALL_CIFAR, out_dir=str(tmp_path / "b"), epochs=1, **kw)
    resumed = train(None, out_dir=str(tmp_path / "b"), epochs=2, resume=True, **{**kw, "seed": None})["net"].weights
    for name in through:
        np.testing.assert_array_equal(through[name], resumed[name])
    cfg = load_config(SMALL_CIFAR)
    splits = tuple(load_split("CIFAR10", s, data_dir=tmp_path / "c", verbose=False, config=cfg) for s in ("train", "test"))
    plain = (splits[0].__class__(splits[0].images, splits[0].labels, "no augmentation"), splits[1])
    unaugmented = train(SMALL_CIFAR, out_dir=str(tmp_path / "p"), splits=plain, **kw)["net"].weights
    assert any(not np.array_equal(through[n], unaugmented[n]) for n in through)


@pytest.mark.parametrize("labels, message", [([1.7] + [0.0] * 9, "label 1.7 is not a whole number"),
                                             ([b"x"] * 10, "not integers"), ([True] * 10, "not integers")])
def test_cifar_labels_must_be_whole_class_numbers(tmp_path, labels, message):
    """Issue 30, item 8: a label 1.7 was read as class 1. Whole floats (3.0) are still classes."""
    folder = write_cifar(tmp_path / "cifar-10-batches-py")
    d = pickle.loads((folder / "test_batch").read_bytes())
    d[b"labels"] = labels
    (folder / "test_batch").write_bytes(pickle.dumps(d, protocol=2))
    cfg = load_config(os.path.join(ROOT, "configs", "CIFAR10.yaml"))
    with pytest.raises(DataError, match=message):
        load_split("CIFAR10", "test", None, data_dir=tmp_path, verbose=False, config=cfg)
    d[b"labels"] = [float(v) for v in range(10)]
    (folder / "test_batch").write_bytes(pickle.dumps(d, protocol=2))
    assert sorted(load_split("CIFAR10", "test", None, data_dir=tmp_path, verbose=False, config=cfg).labels) == list(range(10))


def test_an_event_outside_the_sensor_is_a_corrupt_file(tmp_path):
    """Issue 30, item 8: raw events outside the 34 x 34 sensor were dropped without a word."""
    ev = np.zeros(3, dtype=data.NMNIST_EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"] = [3, 40, 5], [4, 5, 34], [10, 20, 30]
    path = tmp_path / "00001.bin"
    data.write_nmnist_events(path, ev)
    with pytest.raises(DataError, match=r"2 of 3 events lie outside the 34 x 34 sensor .*event 1, at x=40, y=5"):
        data.read_nmnist_events(path)
    ev["x"], ev["y"] = [3, 33, 5], [4, 5, 33]  # the sensor's last row and column are on it
    data.write_nmnist_events(path, ev)
    assert data.read_nmnist_events(path)["x"].tolist() == [3, 33, 5]


def test_labels_beyond_n_class_are_one_line_before_training(tmp_path, capsys):
    """Issue 30, item 11: labels beyond the config's n_class failed inside the first step with a
    traceback ('labels must lie in 0..4'). load_split refuses them with the fix in one line."""
    import yaml

    write_cifar(tmp_path / "cifar-10-batches-py")
    raw = load_config(os.path.join(ROOT, "configs", "CIFAR10.yaml")).raw
    last = list(raw["Layers"])[-1]
    raw = {"Network": {**raw["Network"], "n_class": 5},
           "Layers": {**raw["Layers"], last: {**raw["Layers"][last], "n_outputs": 5}}}
    with pytest.raises(DataError, match="labels reach 9, but the config's n_class is 5 .* at least 10"):
        load_split("CIFAR10", "test", None, data_dir=tmp_path, verbose=False, config=load_config(raw))
    path = tmp_path / "five.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main(["train", "--config", str(path), "--data-dir", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--epochs", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "n_class is 5" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "run").exists()
