"""Your own data: a folder with ``train.npz`` and ``test.npz``, each holding ``x`` and ``labels``.

A config names it with ``dataset: arrays`` and the shape of one sample, ``input_shape: [C, H, W]``; the
folder comes from ``--data-dir`` (or ``$TSSLBP_DATA_DIR``, or the config's ``data_path``), as for CIFAR-10
and N-MNIST.  ``x`` is either

* static images ``(N, C, H, W)``: normalised per channel, ``(x - mean) / std``, with the mean and std of
  the training split's ``x`` (all of it, whatever ``--train-limit``), or the config's
  ``normalise: [mean, std]`` (numbers, or one per channel); then repeated at every step and passed
  through the PSP filter, as MNIST is; or
* spike frames, with ``frames_layout: NCHWT`` (``(N, C, H, W, T)``) or ``NTCHW`` (``(N, T, C, H, W)``):
  fed as they are, as N-MNIST's are; ``T`` must be the config's ``n_steps``.

Any real dtype that converts to float32 without loss of meaning (bool, integers, floats); ``labels`` are
integers ``0 .. n_class - 1``, one per sample.  Every problem is one line (:class:`DataError`) before
any training: a missing file or member, pickled objects, shapes that do not match the config, labels out
of range, NaN or inf, a split that would not fit in memory.  docs/own_data.md shows a whole run.
"""
from __future__ import annotations

import os
import sys
import zipfile

import numpy as np

from ..config import FRAMES_LAYOUTS, Config
from .data import DataError
from ..engines.evaluation import Split

SPLITS = ("train", "test")
#: The training split's per-channel statistics by file identity (path, size, mtime), so that loading the
#: test split right after the training one (as every training start does) does not read train.npz again.
_TRAIN_STATS: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
#: Refuse a split whose float32 copy would take more than this share of the machine's memory.
MEMORY_SHARE = 0.5


def _available_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def read_arrays(folder: str, split: str) -> tuple[np.ndarray, np.ndarray, str]:
    """``x`` and ``labels`` of ``<folder>/<split>.npz`` (no pickles), and the file's path.

    Raises :class:`DataError` with one line for a missing file or member, a file that is not an ``.npz``,
    or a member holding Python objects.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    path = os.path.join(os.fspath(folder), f"{split}.npz")
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO or a device was reported "not found"
        raise DataError(f"{path} is not a regular file (a folder, a pipe or a device); give the .npz file itself")
    if not os.path.isfile(path):
        raise DataError(f"{path} not found: a dataset 'arrays' folder holds train.npz and test.npz, each with "
                        f"x and labels (docs/own_data.md)")
    from .runs import check_npz_headers

    try:
        headers = check_npz_headers(path, bounded=False)  # shapes and dtypes, before anything is decompressed
        # reading a member costs all of it (--train-limit cuts after); its float32 copy is weighed in
        # load_arrays, where the limit is known
        if "x" in headers:
            dtype, shape = headers["x"]
            need, free = int(np.prod(shape, dtype=object)) * dtype.itemsize, _available_bytes()
            if free is not None and need > MEMORY_SHARE * free:
                raise DataError(f"{path}: x declares {shape} {dtype}, {need / 2**30:.1f} GiB to read, more than "
                                f"half of the {free / 2**30:.1f} GiB free (checked before reading it): write fewer "
                                f"samples per file, or a smaller dtype")
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("x", "labels") if k not in z.files]
            if missing:
                raise DataError(f"{path}: no member {' or '.join(missing)} (it holds {sorted(z.files)}); write it "
                                f"with np.savez(path, x=..., labels=...)")
            return z["x"], z["labels"], path
    except DataError:
        raise
    except ValueError as err:  # allow_pickle=False: an object array
        raise DataError(f"{path}: {err} (x and labels must be plain numeric arrays, not Python objects)") from None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        raise DataError(f"{path} is not a readable .npz file ({err})") from None


def _numeric(arr: np.ndarray, what: str) -> None:
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.issubdtype(arr.dtype, np.complexfloating):
        raise DataError(f"{what} has dtype {arr.dtype}; it must hold real numbers (bool, integers or floats)")


#: Largest float64 copy of ``x`` that :func:`channel_stats` makes at once, in bytes (128 MiB).
STATS_CHUNK_BYTES = 128 << 20


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std (float64, shape (C,)) of static images ``x`` (N, C, H, W).

    Up to :data:`STATS_CHUNK_BYTES` as float64, ``x.mean`` and ``x.std`` of one float64 copy.  A larger
    ``x`` is read in chunks of samples, twice (the sum, then the squared deviations from the mean): a
    float64 copy of a whole uint8 split took 8 times its size, three times over with ``std``'s temporary,
    so a file that fitted in memory could still exhaust it here.
    """
    per_sample = max(1, int(np.prod(x.shape[1:], dtype=np.int64)) * 8)
    if len(x) * per_sample <= STATS_CHUNK_BYTES:
        x = np.asarray(x, dtype=np.float64)
        return x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))
    step = max(1, STATS_CHUNK_BYTES // per_sample)
    count = len(x) * x.shape[2] * x.shape[3]
    total = np.zeros(x.shape[1])
    for i in range(0, len(x), step):
        total += np.asarray(x[i:i + step], dtype=np.float64).sum(axis=(0, 2, 3))
    mean = total / count
    squares = np.zeros(x.shape[1])
    for i in range(0, len(x), step):
        squares += np.square(np.asarray(x[i:i + step], dtype=np.float64) - mean[None, :, None, None]).sum(axis=(0, 2, 3))
    return mean, np.sqrt(squares / count)


def load_arrays(folder: str, split: str, config: Config, limit: int | None = None, verbose: bool = True) -> Split:
    """One split of a user's own arrays, checked against ``config`` and prepared for the network.

    Returns a :class:`~reference.engines.evaluation.Split` with float32 ``images`` (N, C, H, W) normalised, or
    (N, C, H, W, T) spike frames, and int64 ``labels`` (N,).  ``limit`` keeps the first samples.
    """
    net = config.network
    x, labels, path = read_arrays(folder, split)
    c, h, w = config.input_shape
    layout, T = net.get("frames_layout"), net["n_steps"]
    _numeric(x, f"{path}: x")
    if layout is None:
        if x.ndim != 4 or x.shape[1:] != (c, h, w):
            hint = (" (5 axes: spike frames? say frames_layout: NCHWT or NTCHW in the config)" if x.ndim == 5 else "")
            raise DataError(f"{path}: x has shape {x.shape}; the config's input_shape asks for (N, {c}, {h}, {w}){hint}")
    else:
        want = (c, h, w, T) if layout == "NCHWT" else (T, c, h, w)
        if x.ndim != 5 or x.shape[1:] != want:
            t_axis = 4 if layout == "NCHWT" else 1
            why = (f": its T = {x.shape[t_axis]} differs from the config's n_steps = {T}"
                   if x.ndim == 5 and x.shape[t_axis] != T else "")
            raise DataError(f"{path}: x has shape {x.shape}; frames_layout {layout} with input_shape and "
                            f"n_steps asks for (N, {', '.join(map(str, want))}){why}")
    if labels.ndim != 1 or len(labels) != len(x):
        raise DataError(f"{path}: labels has shape {labels.shape}; it must be (N,) = ({len(x)},), one per sample")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise DataError(f"{path}: labels has dtype {labels.dtype}; they must be integers 0..n_class-1")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= net["n_class"]):
        raise DataError(f"{path}: labels lie in {int(labels.min())}..{int(labels.max())}; the config's n_class "
                        f"is {net['n_class']}, so they must lie in 0..{net['n_class'] - 1}")
    if len(x) == 0:
        raise DataError(f"{path}: x holds no samples")
    stats = None
    if layout is None:  # before --train-limit cuts it: the statistics of the whole training split
        stats = normalisation(x if split == "train" else None, folder, config)
    if limit is not None:
        x, labels = x[:limit], labels[:limit]
    need, free = x.size * 4, _available_bytes()
    if free is not None and need > MEMORY_SHARE * free:
        raise DataError(f"{path}: {len(x)} samples take {need / 2**30:.1f} GiB as float32, more than half of the "
                        f"{free / 2**30:.1f} GiB free: use --train-limit/--test-limit N, or fewer samples per file")
    with np.errstate(over="ignore"):  # values beyond float32's range become inf: the test just below
        images = np.asarray(x, dtype=np.float32)
    if not np.all(np.isfinite(images)):  # one pass over the data; the source array only to say which case
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x))) if np.issubdtype(x.dtype, np.floating) else 0
        if bad:
            raise DataError(f"{path}: x holds {bad} NaN or inf values")
        raise DataError(f"{path}: x has values beyond float32's range ({np.finfo(np.float32).max:.3g})")
    if layout is None:
        mean, std = stats  # in place (float32 op float32, the same values): no temporaries of the split's size
        images -= mean[None, :, None, None]
        images /= std[None, :, None, None]
    elif layout == "NTCHW":
        images = np.ascontiguousarray(images.transpose(0, 2, 3, 4, 1))
    if verbose:
        kind = "images" if layout is None else f"spike frames ({layout})"
        print(f"[data] arrays {split}: {len(labels)} {kind} from {path}", file=sys.stderr)
    return Split(images, labels.astype(np.int64), path)


def normalisation(train_x, folder: str, config: Config) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(mean, std)`` as float32 (C,): the config's ``normalise``, else the statistics of the
    training split's ``x`` (``train_x``, or read from ``<folder>/train.npz`` when None)."""
    norm = config.network.get("normalise")
    c = config.input_shape[0]
    if norm is not None:
        mean, std = (np.broadcast_to(np.asarray(v, np.float64), (c,)) for v in norm)
        return mean.astype(np.float32), std.astype(np.float32)
    train_path = os.path.join(os.fspath(folder), "train.npz")
    info = os.stat(train_path) if os.path.isfile(train_path) else None
    key = (os.path.realpath(train_path), info.st_size, info.st_mtime_ns) if info else None
    if train_x is None and key in _TRAIN_STATS:
        return _TRAIN_STATS[key]
    if train_x is None:
        train_x = read_arrays(folder, "train")[0]
        _numeric(train_x, f"{train_path}: x")
        if train_x.ndim != 4 or train_x.shape[1] != c:
            raise DataError(f"{train_path}: x has shape {train_x.shape}; its statistics normalise the test "
                            f"split, so it must be (N, {c}, H, W) too")
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf and overflow are the test just below
        mean, std = channel_stats(train_x)
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
        if np.issubdtype(train_x.dtype, np.floating) and np.all(np.isfinite(train_x)):
            raise DataError(f"{train_path}: x has values so large (up to {float(np.abs(train_x).max()):.3g}) that "
                            f"their statistics overflow; scale the data, or give 'normalise: [mean, std]'")
        raise DataError(f"{train_path}: x holds NaN or inf values")
    if np.any(std == 0):
        raise DataError(f"{train_path}: channel(s) {np.flatnonzero(std == 0).tolist()} of x are constant "
                        f"(std 0): give 'normalise: [mean, std]' in the config")
    stats = mean.astype(np.float32), std.astype(np.float32)
    if key is not None:
        _TRAIN_STATS[key] = stats
    return stats


__all__ = ["load_arrays", "read_arrays", "channel_stats", "normalisation", "FRAMES_LAYOUTS"]
