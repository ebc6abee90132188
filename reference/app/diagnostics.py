"""What a network is doing, in numbers one can follow over epochs: loss split by neuron, spike counts,
firing rates, the share of each backward branch, gradient and weight norms.

:func:`diagnostics` measures one network on a fixed set of samples (no dropout, weights unchanged);
:class:`DiagnosticsLog` is the training-loop callback that appends one row per epoch to the run's
``diagnostics.csv`` (``train --diagnostics N``); ``python -m reference diagnose`` measures weight files
(e.g. a run's best and last epochs) after the fact.  Application layer: it only reads the engine.

Columns (floats; per sample means unless said):

* ``loss``, ``loss_label``, ``loss_other``: the config's loss and, for the kernel and count losses, its
  parts from the label neuron and from the other neurons (``loss = loss_label + loss_other``);
* ``label_spikes``, ``other_spikes``: output spikes of the label neuron, and per other neuron;
  ``label_psp_last``: the label neuron's output PSP at the last step (against the target's last value);
* kernel loss, T <= 12: ``label_floor``, the smallest label-neuron loss any 0/1 spike train reaches
  (:func:`best_spike_train`: 0 when the target is itself the PSP of a spike train, as the paper's single
  filter; above 0 for the authors' double filter); ``label_at_best``, ``label_more``, ``label_fewer``: the
  share of samples whose label neuron fires exactly that train, more spikes than it, fewer spikes;
  ``label_trains`` (text, kernel and count losses): the label neuron's six most common trains with their
  shares, ``"00101:0.633 ..."``;
* ``rate/<layer>``: spikes per neuron and step of each spiking layer;
* ``warmup/<layer>``, ``inter/<layer>``, ``intra/<layer>``: share of the layer's neuron-steps whose delta came
  from each branch of the backward (:data:`reference.tsslbp.BRANCH_NAMES`);
* ``grad_norm``: the joint L2 norm of a batch's weight gradient before clipping (the authors clip at 1),
  averaged over the batches;
* ``norm/<layer>``: the Frobenius norm of a weight; ``clipped/<layer>``: the share of its entries at the
  +-4 weight clip.
"""
from __future__ import annotations

import csv
import io
import math
import os

import numpy as np

from .atomic import atomic_write_text
from ..losses import count_loss
from ..optim import WEIGHT_CLIP
from .runs import DIAGNOSTICS  # noqa: F401  (the run folder's file names live in runs)
from ..tsslbp import BRANCH_INTER, BRANCH_INTRA, BRANCH_WARMUP

_BRANCHES = {"warmup": BRANCH_WARMUP, "inter": BRANCH_INTER, "intra": BRANCH_INTRA}


def best_spike_train(target: np.ndarray, tau_s: float) -> tuple[np.ndarray, float]:
    """The 0/1 spike train whose PSP is nearest the kernel-loss ``target`` (T,), by trying all 2**T trains.

    Returns ``(train float32 (T,), its loss 1/2 sum (psp - target)^2)``; ties go to the first train in
    binary counting order.  Meant for the paper's few steps (T <= 12: 4096 trains).
    """
    from ..neuron import psp

    t = len(target)
    if t > 12:
        raise ValueError(f"best_spike_train tries all 2**T spike trains; T = {t} is too many (at most 12)")
    trains = ((np.arange(2 ** t)[:, None] >> np.arange(t - 1, -1, -1)) & 1).astype(np.float32)  # (2**T, T)
    psps = psp(np.ascontiguousarray(trains.T), tau_s).T.astype(np.float64)
    losses = 0.5 * np.sum((psps - np.asarray(target, dtype=np.float64)) ** 2, axis=1)
    i = int(np.argmin(losses))
    return trains[i], float(losses[i])


def train_key(train) -> str:
    """A 0/1 spike train (T,) as the text key used in reports, e.g. ``"00101"``."""
    return "".join(str(int(v)) for v in train)


def train_loss(key: str, target: np.ndarray, tau_s: float) -> float:
    """The label-neuron loss ``1/2 sum (psp(train) - target)^2`` of the spike train ``key`` ("00101")."""
    from ..neuron import psp

    train = np.array([float(ch) for ch in key], dtype=np.float32)
    return 0.5 * float(np.sum((psp(train, tau_s).astype(np.float64) - np.asarray(target, np.float64)) ** 2))


def count_train_loss(key: str, tau_s: float, desired_count: float) -> float:
    """The label neuron's part of the count loss, per sample, when it fires the spike train ``key``.

    ``key`` is T characters 0/1, step 0 first ("11110"); ``tau_s`` is in time steps; ``desired_count`` is
    the config's key.  The count is the PSP summed over time (:func:`reference.losses.count_loss`): a
    spike at step k (k = 0 .. T-1) adds ``sum_{m<T-k} eps[m] = 1 - (1 - 1/tau_s)^(T-k)``.  The label
    neuron's error ``d = (count - desired_count) / T`` counts only below the target (``d = 0`` above it)
    and is the gradient at each of the T steps, so its loss is ``1/2 T d^2`` (a float).  At tau_s = 2,
    T = 5 only ``11111`` (count 4.03) is at zero loss for ``desired_count = 4``: the next best, ``11110``,
    counts 3.53.
    """
    from ..neuron import psp

    train = np.array([float(ch) for ch in key], dtype=np.float32)
    a = psp(train, tau_s).astype(np.float64)[:, None, None]  # (T, 1 sample, 1 class: the label neuron)
    return count_loss(a, np.zeros(1, np.int64), desired_count, desired_count)[0]  # no other class: undesired unused


def diagnostics(net, images, labels: np.ndarray, batch_size: int = 100) -> dict[str, float]:
    """Measure ``net`` on ``images`` (N, C, H, W) or (N, C, H, W, T), ``labels`` int (N,): see the module
    docstring for the keys.  Runs forward (no dropout) and backward per batch of ``batch_size``; the weights,
    the network's generator and its optimiser are not touched."""
    n = len(labels)
    if n == 0:
        raise ValueError("diagnostics need at least one sample")
    sums: dict[str, float] = {}

    def add(key, value):
        sums[key] = sums.get(key, 0.0) + float(value)

    n_class = net.config.network["n_class"]
    best, train_counts = None, {}
    if net.loss_name == "kernel" and net.n_steps <= 12:
        best, floor = best_spike_train(net.target, net.params.tau_s)
        sums["label_floor"] = floor * n
    list_trains = best is not None or net.loss_name == "count"
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)  # images may hold more samples than labels: read only the first n
        x, y = images[start:stop], np.asarray(labels[start:stop])
        b = len(y)
        loss, grads, out = net.gradients(x, y, train=False)
        add("loss", net.loss_sum(loss, b))
        if net.loss_name == "kernel":
            label_part = 0.5 * np.sum((out[:, np.arange(b), y].astype(np.float64) - net.target[:, None]) ** 2)
            add("loss_label", label_part)
            add("loss_other", net.loss_sum(loss, b) - label_part)
        elif net.loss_name == "count":  # the count loss of the label column alone (no other class, so
            # undesired_count is unused): 1/2 T d^2 per sample
            desired = net.config.network["desired_count"]
            label_part = count_loss(out[:, np.arange(b), y].astype(np.float64)[:, :, None], np.zeros(b, np.int64),
                                    desired, desired)[0]
            add("loss_label", label_part)
            add("loss_other", net.loss_sum(loss, b) - label_part)
        s_out = net.records[-1].state.s.reshape(out.shape).astype(np.float64)
        label_mask = np.zeros((b, n_class), dtype=bool)
        label_mask[np.arange(b), y] = True
        counts = s_out.sum(axis=0)
        add("label_spikes", counts[label_mask].sum())
        add("other_spikes", counts[~label_mask].sum() / max(n_class - 1, 1))
        add("label_psp_last", out[-1, np.arange(b), y].astype(np.float64).sum())
        label_trains = s_out[:, np.arange(b), y].T  # (b, T)
        if best is not None:
            add("label_at_best", np.all(label_trains == best, axis=1).sum())
            add("label_more", (label_trains.sum(axis=1) > best.sum()).sum())
            add("label_fewer", (label_trains.sum(axis=1) < best.sum()).sum())
        if list_trains:
            for train in label_trains:
                key = train_key(train)
                train_counts[key] = train_counts.get(key, 0) + 1
        for rec in net.records:
            if rec.state is None:
                continue
            add(f"rate/{rec.name}", np.mean(rec.state.s, dtype=np.float64) * b)
            if rec.branch is not None:
                for key, code in _BRANCHES.items():
                    add(f"{key}/{rec.name}", np.count_nonzero(rec.branch == code) / rec.branch.size * b)
        add("grad_norm", math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values())) * b)
    row: dict = {key: value / n for key, value in sums.items()}
    if list_trains:
        common = sorted(train_counts.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
        row["label_trains"] = " ".join(f"{k}:{c / n:.4f}" for k, c in common)
    for name, w in net.weights.items():
        row[f"norm/{name}"] = float(np.sqrt(np.sum(w.astype(np.float64) ** 2)))
        row[f"clipped/{name}"] = float(np.mean(np.abs(w) >= WEIGHT_CLIP))
    return row


def label_trains(net, images, labels: np.ndarray, batch_size: int = 200) -> list[tuple[str, float, float]]:
    """The label neuron's output spike trains over ``images``, most common first: ``(train as "00101",
    share of the samples, its label loss)``.  The label loss is ``1/2 sum (psp - target)^2`` for the kernel
    loss (:func:`train_loss`) and ``1/2 T d^2`` for the count loss (:func:`count_train_loss`); other losses
    raise ``ValueError``."""
    if net.loss_name == "kernel":
        def score(key):
            return train_loss(key, net.target, net.params.tau_s)
    elif net.loss_name == "count":
        def score(key):
            return count_train_loss(key, net.params.tau_s, net.config.network["desired_count"])
    else:
        raise ValueError(f"label_trains scores trains by the kernel or count loss, not {net.loss_name!r}")
    counts: dict[str, int] = {}
    for start in range(0, len(labels), batch_size):
        stop = min(start + batch_size, len(labels))
        x, y = images[start:stop], np.asarray(labels[start:stop])
        out, spikes = net.infer(x, spikes=True)
        for row in spikes[:, np.arange(len(y)), y].T:
            key = train_key(row)
            counts[key] = counts.get(key, 0) + 1
    return [(key, c / len(labels), score(key))
            for key, c in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]


def _cell(v):
    return f"{v:.6g}" if isinstance(v, float) else v


#: Largest CSV a command appends to or replaces (its own hold a row per epoch, file or run, a few KB).
MAX_OWN_CSV_BYTES = 16 << 20


#: The columns of :func:`diagnostics` that name no layer (``weights`` and ``epoch`` name the file or epoch
#: measured); the others are ``<kind>/<layer>`` for the kinds of :data:`LAYER_COLUMN_KINDS`.
SCALAR_COLUMNS = ("weights", "epoch", "loss", "loss_label", "loss_other", "label_floor", "label_spikes",
                  "other_spikes", "label_psp_last", "label_at_best", "label_more", "label_fewer", "label_trains",
                  "grad_norm")
#: The per-layer kinds of :func:`diagnostics`' columns, ``<kind>/<layer>``.
LAYER_COLUMN_KINDS = ("rate", "norm", "clipped", *_BRANCHES)


def is_diagnostics_column(name: str) -> bool:
    """Whether ``name`` is a column :func:`diagnostics` (or ``diagnose --out``) can write."""
    kind, _, layer = name.partition("/")
    return name in SCALAR_COLUMNS or (kind in LAYER_COLUMN_KINDS and bool(layer))


def check_own_csv(path, first_column, columns=None) -> None:
    """Refuse to append to or replace ``path`` unless it is absent, empty, or a CSV this command wrote:
    ``ValueError`` naming what is there, before any work is done.

    A CSV of ours is UTF-8 text of at most :data:`MAX_OWN_CSV_BYTES` whose header starts with
    ``first_column`` (a str, or a collection of allowed names: a file :func:`append_row` wrote with such
    rows), whose header names only ``columns`` when they are given (the command's known columns, or a
    predicate that tells them), and
    whose every line parses with no more fields than the header (so an append never fails on it after
    the work).  A link, a folder or a device is refused without being opened.
    """
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isfile(path):
        raise ValueError(f"{path} is not a regular file")
    size = os.path.getsize(path)
    if size == 0:
        return
    if size > MAX_OWN_CSV_BYTES:
        raise ValueError(f"{path} exists and is not a CSV this command wrote ({size / 2**20:.0f} MiB; its own "
                         f"are a few KB)")
    with open(path, "rb") as fh:
        blob = fh.read()
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not a text CSV this command wrote (binary data at byte {err.start})") from None
    head = text.split("\n", 1)[0].rstrip("\r")
    allowed = {first_column} if isinstance(first_column, str) else set(first_column)
    try:
        lines = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as err:  # a field beyond csv's limit (128 KiB), a NUL byte
        raise ValueError(f"{path} exists and is not a CSV this command wrote ({err})") from None
    header = lines[0] if lines else []
    if not header or header[0] not in allowed:
        want = first_column if isinstance(first_column, str) else "one of its columns"
        raise ValueError(f"{path} exists and is not a CSV this command wrote (its header should start with "
                         f"{want!r}, its first line starts with {head[:40]!r})")
    if columns is not None:
        known = columns if callable(columns) else set(columns).__contains__
        foreign = [c for c in header if not known(c)]
        if foreign:
            raise ValueError(f"{path} exists and is not a CSV this command wrote (its header has "
                             f"{', '.join(map(repr, foreign[:3]))}, which this command never writes)")
    long = next((i for i, line in enumerate(lines[1:], 2) if len(line) > len(header)), None)
    if long is not None:
        raise ValueError(f"{path} exists and is not a CSV this command wrote (line {long} has more fields "
                         f"than its header)")


def append_row(path, row: dict) -> None:
    """Append ``row`` (column name -> number or text) to the CSV ``path``; the header is written when the
    file is new or empty.

    The file's header decides the columns: a row that lacks some leaves them empty, and a row that brings
    new ones (a run resumed by a version that measures more) rewrites the file once with the union of
    the columns, the old ones first.  A file whose last line has no line end gets one before the row.
    ``ValueError`` for a file this function did not write (:func:`check_own_csv`: its header must start
    with one of the row's columns) or with a line longer than its header.
    """
    check_own_csv(path, list(row))
    header, ends_in_newline = [], True
    if os.path.exists(path) and os.path.getsize(path) > 0:
        with open(path, newline="") as fh:
            header = next(csv.reader(fh), [])
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            ends_in_newline = fh.read(1) in (b"\n", b"\r")
    cells = {k: _cell(v) for k, v in row.items()}
    new = [k for k in row if k not in header]
    if header and new:
        with open(path, newline="") as fh:
            old = list(csv.DictReader(fh))
        if any(None in r for r in old):
            line = next(i for i, r in enumerate(old, 2) if None in r)
            raise ValueError(f"{path}: line {line} has more fields than the header")
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=header + new, restval="", lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(old)
        writer.writerow(cells)
        atomic_write_text(path, out.getvalue())
        return
    with open(path, "a", newline="") as fh:
        if not ends_in_newline:
            fh.write("\r\n")
        writer = csv.DictWriter(fh, fieldnames=header or list(row), restval="")
        if not header:
            writer.writeheader()
        writer.writerow(cells)


def read_rows(path) -> list[dict]:
    """The rows of a diagnostics CSV, numbers as floats (``epoch`` as int; text columns kept)."""
    rows = []
    with open(path, newline="") as fh:
        for raw in csv.DictReader(fh):
            row = {}
            for k, v in raw.items():
                try:
                    row[k] = int(v) if k == "epoch" else float(v)
                except (TypeError, ValueError):
                    row[k] = v
            rows.append(row)
    return rows


class DiagnosticsLog:
    """Training-loop callback: after every epoch, :func:`diagnostics` on the first ``n_samples`` training
    samples, appended to ``<run>/diagnostics.csv`` with the epoch number.  A resumed run appends after
    the rows it has.  The row is written before the epoch's checkpoint (:meth:`before_commit`), so a
    checkpoint never exists without its row; a row of an epoch the run redoes (killed between the two
    writes) is replaced."""

    def __init__(self, net, train_set, n_samples: int = 1000):
        self.net, self.images, self.labels = net, train_set.images, train_set.labels[:n_samples]

    # the hooks of reference.app.train.Callback (not subclassed: train imports this module)
    def on_epoch_start(self, epoch, n_epochs, n_batches, progress) -> None: ...

    def on_step(self, progress) -> None: ...

    def on_stop(self) -> None: ...

    def on_epoch_end(self, row, folder, labels, preds, config) -> None: ...

    def before_commit(self, row, folder):
        path = folder.file(DIAGNOSTICS)
        if os.path.exists(path):  # drop rows of epochs at or after this one (a redone epoch)
            rows = read_rows(path)
            kept = [r for r in rows if int(r["epoch"]) < row["epoch"]]
            if len(kept) != len(rows):
                os.remove(path)
                for r in kept:
                    append_row(path, r)
        net = self.net.numpy_network() if hasattr(self.net, "numpy_network") else self.net  # torch engine: its weights
        diag = diagnostics(net, self.images, self.labels)  # it reads images batch by batch
        append_row(path, {"epoch": row["epoch"], **diag})
