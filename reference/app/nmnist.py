"""N-MNIST as the authors feed it to their network: event files -> spike frames (N, 2, 34, 34, T).

N-MNIST (Orchard et al. 2015) records each MNIST digit with an event camera that makes three saccades of
105 ms each; every sample is a ``.bin`` file of events (x, y, polarity, time in microseconds), stored as
``Train/<digit>/<id>.bin`` and ``Test/<digit>/<id>.bin`` once the official ``Train.zip`` and ``Test.zip``
are unpacked (``<id>`` is the digit's index in MNIST).

The authors turn events into frames in two programs (stonezwr/TSSL-BP, ``preprocessing/NMNIST_Converter.m``
and ``datasets/loadNMNIST_Spiking.py``).  :func:`frame_indices` reproduces both, step by step:

1. **Stabilise** (Orchard's ``stabilize.m``): undo the camera's motion.  With 1-based pixel addresses,
   an event at time ``ts`` of saccade 1 (``ts <= 105 ms``) moves by ``(-3.5, -7) * ts / 105 ms``; of
   saccade 2 by ``(-3.5 - 3.5 s, -7 + 7 s)`` with ``s = (ts - 105 ms) / 105 ms``; of saccade 3 by
   ``(-7 + 7 s, 0)`` with ``s = (ts - 210 ms) / 105 ms``.  Addresses are rounded half away from zero
   (MATLAB's ``round``) and events that leave the 34 x 34 sensor are dropped.
2. **Bin**: an event at ``ts`` goes to bin ``k = ceil(ts / w)`` for a window of ``w`` microseconds.
3. **Frame**: bin ``k`` (1 <= k <= T - 1) sets frame step ``k - 1`` to 1 at ``[polarity, x, y]``; the
   loader stops reading a pixel's list at its first bin ``>= T``.  So step ``T - 1`` never receives a bin
   ``T`` event, and an event at exactly ``ts = 0`` (bin 0) lands in step ``T - 1`` (the loader writes
   ``data[..., k - 1]`` and index -1 is the last step).  Both are the authors' behaviour, kept by
   ``binning="authors"``; ``binning="uniform"`` puts an event in step ``floor(ts / w)`` for all T steps.

The window ``w`` is an argument of the authors' converter, which names its output folder
``<channels>_<window>_stable``; their ``Networks/NMNIST_CNN.yaml`` reads ``2312_3000_stable``, so
``w = 3000`` microseconds, our default (:data:`AUTHORS_WINDOW_US`).  With the authors' binning at their
T = 30, steps 0..28 then hold the events of (0, 87 ms] of the recording (the three saccades last 315 ms) and
step 29 only those at t = 0.  ``time_window_us`` in the config changes it, e.g. ``ceil(300 ms / T)``
(:func:`window_spanning`) to spread the whole recording over the T steps.

Polarity: channel 0 holds OFF events and channel 1 ON events, as in the authors' converter.
Frames are 0/1 (several events of one pixel in one step count once, as in the authors' loader).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from .data import N_CLASSES, NMNIST_SENSOR, DataError, read_nmnist_events

#: Sensor size (pixels) and polarity channels of N-MNIST.
SENSOR = NMNIST_SENSOR  # 34 pixels a side
SHAPE = (2, SENSOR, SENSOR)
#: Length of one saccade, microseconds (stabilize.m).
SACCADE_US = 105e3
#: The authors' bin width, microseconds — their N-MNIST config reads the converter's folder 2312_3000_stable.
AUTHORS_WINDOW_US = 3000
#: About the length of a recording (three saccades of 105 ms), microseconds.
RECORDING_US = 300_000
BINNINGS = ("authors", "uniform")
SPLIT_FOLDERS = {"train": ("Train", "train"), "test": ("Test", "test")}


def window_spanning(n_steps: int, span_us: int = RECORDING_US) -> int:
    """The bin width in microseconds that spreads ``span_us`` (default 300 ms) over ``n_steps`` steps:
    ``ceil(span_us / n_steps)`` (10,000 us at T = 30).  Not the authors' choice (:data:`AUTHORS_WINDOW_US`)."""
    return int(math.ceil(int(span_us) / int(n_steps)))


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """MATLAB's ``round``: halves go away from zero (NumPy's ``round`` goes to even)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def stabilise(events: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undo the saccades' motion of an N-MNIST sample (Orchard's ``stabilize.m``, in float64 as MATLAB).

    events : structured array (N,) with fields x, y (0-based pixel), p, t (microseconds).
    Returns ``keep`` (bool (N,): the event stays on the sensor), and the stabilised 0-based ``x``, ``y``
    (int64 (N,), meaningful where ``keep``).
    """
    ts = np.asarray(events["t"], dtype=np.float64)
    x = np.asarray(events["x"], dtype=np.float64) + 1.0  # MATLAB's 1-based addresses
    y = np.asarray(events["y"], dtype=np.float64) + 1.0
    s1 = ts <= SACCADE_US
    s2 = (ts > SACCADE_US) & (ts <= 2 * SACCADE_US)
    s3 = ts > 2 * SACCADE_US
    # the same operations in the same order as stabilize.m, so every float rounds as it does there
    x[s1] = x[s1] - 3.5 * ts[s1] / SACCADE_US
    y[s1] = y[s1] - 7 * ts[s1] / SACCADE_US
    x[s2] = x[s2] - 3.5 - 3.5 * (ts[s2] - SACCADE_US) / SACCADE_US
    y[s2] = y[s2] - 7 + 7 * (ts[s2] - SACCADE_US) / SACCADE_US
    x[s3] = x[s3] - 7 + 7 * (ts[s3] - 2 * SACCADE_US) / SACCADE_US
    x, y = _round_half_away(x), _round_half_away(y)
    keep = (x >= 1) & (y >= 1) & (x <= SENSOR) & (y <= SENSOR)
    return keep, x.astype(np.int64) - 1, y.astype(np.int64) - 1


def frame_indices(events: np.ndarray, n_steps: int, time_window_us: int | None = None, *,
                  binning: str = "authors", stabilise_motion: bool = True) -> np.ndarray:
    """The spikes of one sample's frames as sorted, unique flat indices into (2, 34, 34, T) (C order).

    Parameters
    ----------
    events : structured array (N,) (fields x, y, p, t; see :func:`reference.app.data.read_nmnist_events`)
    n_steps : T
    time_window_us : bin width w in microseconds (default :data:`AUTHORS_WINDOW_US`, 3000)
    binning : "authors" (bin ``ceil(t / w)`` -> step ``bin - 1``, the authors' loader: see the module
        docstring) or "uniform" (step ``floor(t / w)``, steps 0..T-1)
    stabilise_motion : apply :func:`stabilise` first (the authors do)

    Returns
    -------
    uint32 (S,) indices ``((p * 34 + x) * 34 + y) * T + step``; :class:`SpikeFrames` stores these.
    """
    t_steps = int(n_steps)
    if t_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    if binning not in BINNINGS:
        raise ValueError(f"binning must be one of {BINNINGS}, got {binning!r}")
    w = AUTHORS_WINDOW_US if time_window_us is None else int(time_window_us)
    if w < 1:
        raise ValueError(f"time_window_us must be >= 1 microsecond, got {time_window_us}")
    if stabilise_motion:
        keep, x, y = stabilise(events)
    else:
        x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
        keep = (x < SENSOR) & (y < SENSOR)
    p = np.asarray(events["p"], dtype=np.int64)
    t = np.asarray(events["t"], dtype=np.int64)
    x, y, p, t = x[keep], y[keep], p[keep], t[keep]
    pixel = (p * SENSOR + x) * SENSOR + y
    if binning == "uniform":
        step = t // w
        ok = step < t_steps
        return np.unique(pixel[ok] * t_steps + step[ok]).astype(np.uint32)
    k = -(-t // w)  # ceil(t / w) for t >= 0, in integers (exact, unlike t / w in floats)
    # the loader reads each pixel's bins in event order and stops at the first bin >= T
    order = np.argsort(pixel, kind="stable")
    pix_sorted, late = pixel[order], (k[order] >= t_steps).astype(np.int64)
    seen_late = np.cumsum(late)
    group_start = np.r_[0, np.flatnonzero(np.diff(pix_sorted)) + 1] if len(order) else np.zeros(0, np.int64)
    before = np.repeat(seen_late[group_start] - late[group_start],
                       np.diff(np.r_[group_start, len(order)])) if len(order) else seen_late
    read = np.empty(len(order), dtype=bool)
    read[order] = (seen_late - before) == 0
    step = np.where(k == 0, t_steps - 1, k - 1)  # bin 0 -> index -1 -> the last step
    return np.unique(pixel[read] * t_steps + step[read]).astype(np.uint32)


class SpikeFrames:
    """N-MNIST samples as spike frames, stored sparse and made dense one batch at a time.

    Behaves like a read-only float32 array of shape (N, 2, 34, 34, T) for the training loop and
    :func:`reference.app.train.evaluate`: ``frames[idx]`` (int, slice or integer array) returns a dense
    float32 array of 0s and 1s.  Dense, the 60,000 training samples at T = 30 would take 16.6 GB;
    sparse they take about 4 bytes per spike.

    indices : uint32 (S,) the flat spike indices of all samples, concatenated (:func:`frame_indices`)
    offsets : int64 (N + 1,) sample i owns ``indices[offsets[i]:offsets[i + 1]]``
    n_steps : T
    """

    dtype = np.dtype(np.float32)
    ndim = 5

    def __init__(self, indices: np.ndarray, offsets: np.ndarray, n_steps: int):
        self.indices = np.asarray(indices, dtype=np.uint32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.n_steps = int(n_steps)
        if self.offsets.ndim != 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.indices) \
                or np.any(np.diff(self.offsets) < 0):
            raise ValueError("offsets must rise from 0 to len(indices)")

    @property
    def shape(self) -> tuple:
        return (len(self.offsets) - 1, *SHAPE, self.n_steps)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, key) -> np.ndarray:
        n = len(self)
        if isinstance(key, slice):
            rows = np.arange(n)[key]
        elif np.isscalar(key):
            return self[np.array([key])][0]
        else:
            rows = np.asarray(key)
            if rows.dtype == bool:
                rows = np.flatnonzero(rows)
            rows = np.where(rows < 0, rows + n, rows)
            if rows.size and (rows.min() < 0 or rows.max() >= n):
                raise IndexError(f"index out of range for {n} samples")
        size = math.prod(SHAPE) * self.n_steps
        out = np.zeros((len(rows), size), dtype=np.float32)
        starts, stops = self.offsets[rows], self.offsets[rows + 1]
        counts = stops - starts
        which = np.repeat(np.arange(len(rows)), counts)
        pos = np.repeat(starts - np.r_[0, np.cumsum(counts)[:-1]], counts) + np.arange(counts.sum())
        out[which, self.indices[pos]] = 1.0
        return out.reshape(len(rows), *SHAPE, self.n_steps)


def _split_folder(folder: Path, split: str) -> Path:
    for name in SPLIT_FOLDERS[split]:
        if (folder / name).is_dir():
            return folder / name
    raise DataError(f"{folder}: no {SPLIT_FOLDERS[split][0]}/ folder; pass the folder that holds N-MNIST's "
                    f"Train/ and Test/ (unpacked Train.zip and Test.zip: Train/0/00002.bin, ...)")


def list_samples(folder, split: str) -> list[tuple[Path, int]]:
    """The ``(file, label)`` pairs of a split, in MNIST order (by the files' numeric ids, then label).

    folder : the N-MNIST root holding ``Train/<digit>/*.bin`` and ``Test/<digit>/*.bin``.
    Sorting by id mixes the classes as MNIST does, so ``--train-limit N`` takes a sample of every class.
    """
    if split not in SPLIT_FOLDERS:
        raise DataError(f"unknown split {split!r}; use 'train' or 'test'")
    root = Path(os.path.expanduser(str(folder)))
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise DataError(f"N-MNIST folder {root} {what}")
    base = _split_folder(root, split)
    samples = []
    missing = []
    for label in range(N_CLASSES):
        sub = base / str(label)
        if not sub.is_dir():
            missing.append(str(label))
            continue
        for f in sub.iterdir():
            if f.suffix == ".bin" and f.is_file():
                m = re.search(r"\d+", f.stem)
                samples.append((int(m.group()) if m else -1, label, f))
    if missing:
        raise DataError(f"{base}: missing class folder(s) {', '.join(missing)}; expected {base}/0 .. {base}/9 "
                        f"holding .bin event files")
    if not samples:
        raise DataError(f"{base}: no .bin event files in its class folders 0..9")
    samples.sort(key=lambda s: (s[0], s[1], s[2].name))
    return [(f, label) for _, label, f in samples]


def load_nmnist(folder, split: str, n_steps: int, time_window_us: int | None = None, *, limit: int | None = None,
                binning: str = "authors", progress: bool = False) -> tuple[SpikeFrames, np.ndarray, str]:
    """Read an N-MNIST split from its event files into :class:`SpikeFrames`.

    Returns ``(frames, labels int64 (N,), source description)``.  ``limit`` reads only the first N
    samples of :func:`list_samples`'s order.  A file that is not an event file raises
    :class:`reference.app.data.DataError` naming it.
    """
    samples = list_samples(folder, split)[:limit]
    w = AUTHORS_WINDOW_US if time_window_us is None else int(time_window_us)
    chunks, offsets = [], [0]
    it = samples
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(samples, desc=f"N-MNIST {split}", unit="file", leave=False)
    for path, _ in it:
        idx = frame_indices(read_nmnist_events(path), n_steps, w, binning=binning)
        chunks.append(idx)
        offsets.append(offsets[-1] + len(idx))
    indices = np.concatenate(chunks) if chunks else np.zeros(0, np.uint32)
    labels = np.array([label for _, label in samples], dtype=np.int64)
    source = (f"folder ({Path(os.path.expanduser(str(folder)))}; {binning} binning, window {w} us, "
              f"T {int(n_steps)})")
    return SpikeFrames(indices, np.asarray(offsets), n_steps), labels, source
