"""The run folder: what ``train`` writes, and the promises it keeps.

A run folder holds:

- ``config.yaml``: the network config (the authors' schema), written once when the run starts;
- ``checkpoint.npz``: the commit point: weights, AdamW state, the generator's state, the settings, the
  position in the epoch and EVERY epoch's metrics row;
- ``metrics.csv``: one row per finished epoch, rewritten from the checkpoint after each commit;
- ``weights.npz``: the weights after the last finished epoch (and the config);
- ``best_weights.npz``: the weights of the epoch with the best test accuracy so far;
- ``learning_curve.png``, ``confusion_matrix.png``: of the last epoch, redrawn at most every 30 s and when
  a session ends (:class:`reference.app.train.Figures`);
- ``diagnostics.csv``: with ``--diagnostics N``, one row per epoch (:mod:`reference.app.diagnostics`);
- ``settings.json``: the run's record once its bulk files are gone (results/): seed, net_options, the
  epochs it was started for, its command and the SHA-256 of its weights files (:func:`read_settings_json`);
  beside files written before the settings went inside them (November 2026) :func:`load_checkpoint` reads
  its seed and options;
- ``run.log``: one JSON line per training session: command, run id, seed, epochs, seconds, BLAS and its
  kernel, thread counts, versions (:meth:`RunFolder.log_session`);
- ``.lock``: held (``flock``) by the process that trains in the folder.

Promises, and how they are kept:

- **Never lost, never silently changed.**  A new run refuses a folder that already holds a run
  (:class:`RunExistsError`) unless asked to ``overwrite`` it; ``--resume`` refuses a folder without a
  checkpoint without creating anything.
- **One writer.**  :meth:`RunFolder.lock` takes an exclusive ``flock`` on ``.lock``; a second process gets
  :class:`RunLockedError` naming the holder's pid.  The kernel drops the lock when the holder dies.
- **Every write is atomic** (:mod:`reference.app.atomic`): a file is its old self or completely new.
- **Metrics and checkpoint commit together.**  The metrics rows live inside the checkpoint; ``metrics.csv``
  is derived from it (after each commit, and again on resume), so a kill between two writes can never
  duplicate or lose a row.  ``weights.npz`` and ``best_weights.npz`` are written before the checkpoint:
  a run killed after them redoes that epoch bit for bit and writes the same files again, and a checkpoint
  that cannot be written (a full disk) puts them back as they were with the last commit (hard links kept
  while the epoch commits, :func:`~reference.app.atomic.keep_previous`).
- **One run's files.**  A run draws a ``run_id`` when it starts, kept in its checkpoint, weights files and
  ``run.log``; a resume refuses a folder whose files are of two runs
  (:meth:`RunFolder.check_files_are_the_runs`).
- **Resume is exact.**  Checkpoints are only taken between whole training steps (Ctrl-C only sets a flag,
  :class:`StopSignal`), so weights, AdamW moments and step count, the dropout generator and the batch
  counter always describe the same moment.

Application layer: uses the engine (network, optimiser), never the reverse.
"""
from __future__ import annotations

import csv
import dataclasses
import errno
import io
import json
import math
import os
import re
import signal
import threading
from dataclasses import dataclass, field

import numpy as np

from .atomic import (atomic_savez, atomic_write_text, end_at_once, keep_previous, previous_path, put_back,
                     temporary_pattern)
from ..config import Config, ConfigError, load_config, load_config_text
from ..options import NetOptions

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "samples_per_s"]
CHECKPOINT, WEIGHTS, BEST_WEIGHTS, METRICS, CONFIG, LOCK, SETTINGS, RUN_LOG, DIAGNOSTICS = (
    "checkpoint.npz", "weights.npz", "best_weights.npz", "metrics.csv", "config.yaml", ".lock", "settings.json",
    "run.log", "diagnostics.csv")
#: Files that make a folder "a run" — their presence makes a new run refuse the folder.
RUN_FILES = (CHECKPOINT, WEIGHTS, BEST_WEIGHTS, METRICS, CONFIG)
#: The figures ``demo`` draws into its run's folder (:func:`reference.app.demo.draw_network_activity`).
DEMO_FIGURES = ("membrane_traces.png", "spike_raster.png")
#: Files a run may also hold, removed with the others by ``overwrite`` (``train.log`` is the progress
#: output that runs made before December 2026 kept; nothing writes it now).
DERIVED_FILES = ("learning_curve.png", "confusion_matrix.png", "train.log", RUN_LOG, SETTINGS, DIAGNOSTICS,
                 *DEMO_FIGURES)
#: Where ``--overwrite`` keeps the replaced run until the new one has finished a step.
REPLACED = ".replaced"
#: The file that RunFolder.set_aside writes first into ``.replaced/``, the names it moves there under a
#: first line that says whether it has moved them all (``moved``) or was still moving them (``moving``).
#: A ``.replaced/`` without it was not made by ``--overwrite``, and a run never moves or deletes its files.
REPLACED_MARK = ".set-aside"


class RunError(Exception):
    """A run folder cannot be used as asked; the message says why and what to do."""


class RunExistsError(RunError):
    """The folder already holds a run."""


class RunLockedError(RunError):
    """Another process holds the folder's lock."""


class CheckpointError(RunError):
    """A checkpoint or weights file that cannot be read or does not fit its network."""


# ------------------------------------------------------------------------------------------ run state
def _is_whole(v, low: int = 0) -> bool:
    """Whether ``v`` is an int (not a bool) of at least ``low``: the test of every recorded count."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _is_finite(v, low: float = -math.inf, high: float = math.inf) -> bool:
    """Whether ``v`` is a finite real number (not a bool) in ``[low, high]``: the test of every recorded value."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and low <= v <= high


@dataclass
class Settings:
    """What defines a run; fixed for its whole life (a resume that asks for other values is refused).

    ``epochs`` and ``max_seconds`` are the exceptions: a resumed run may be given more.
    """

    seed: int = 0
    epochs: int = 1
    batch_size: int = 1
    train_limit: int | None = None
    test_limit: int | None = None
    net_options: dict = field(default_factory=dict)
    max_seconds: float | None = None
    tag: str | None = None  # a label, e.g. "demo": the demo replaces only runs it made
    engine: str = "numpy"  # the engine of the latest session: "numpy" or "torch" (the checkpoint is the same)
    data: dict | None = None  # {"train": ..., "test": ...}: the splits' Split.fingerprint (None before 7 Dec 2026)
    diagnostics: int | None = None  # samples measured into diagnostics.csv after each epoch (0: none; None: not recorded, before 7 Dec 2026)
    run_id: str | None = None  # drawn when the run starts, kept in its weights files and run.log: which files are one run's (None before 8 Dec 2026)

    #: Settings a resume may change (``tag`` is not given on resume; the engine may change between sessions;
    #: ``data`` is compared with the data a resume loads, not given).
    RESUMABLE = ("epochs", "max_seconds", "tag", "engine", "data")

    def check(self, where: str) -> "Settings":
        """Refuse settings no run can have (a hand-edited or corrupt checkpoint): :class:`CheckpointError`
        naming ``where`` and the field.  Returns itself."""
        def bad(name, want):
            raise CheckpointError(f"{where}: settings.{name} is {getattr(self, name)!r:.60}, not {want}")

        for name, low, optional in (("seed", 0, False), ("epochs", 0, False), ("batch_size", 1, False),
                                    ("train_limit", 1, True), ("test_limit", 1, True), ("diagnostics", 0, True)):
            v = getattr(self, name)
            if not (optional and v is None) and not _is_whole(v, low):
                bad(name, f"a whole number >= {low}")
        if self.max_seconds is not None and not (_is_finite(self.max_seconds) and self.max_seconds > 0):
            bad("max_seconds", "a finite number of seconds > 0")
        if not isinstance(self.net_options, dict):
            bad("net_options", "a mapping")
        if self.run_id is not None and not (isinstance(self.run_id, str) and re.fullmatch(r"[0-9a-f]{32}", self.run_id)):
            bad("run_id", "32 hexadecimal digits")
        from ..engines import ENGINES
        if self.engine not in ENGINES:
            bad("engine", f"one of {sorted(ENGINES)}")
        return self


@dataclass
class Progress:
    """Where a run is; saved in every checkpoint.

    epoch : finished epochs;  batch : finished mini-batches of the current epoch
    loss_sum, correct, seen : running sums over the current epoch's mini-batches (loss summed per sample)
    train_seconds : time spent in training steps of the current epoch
    elapsed_total : training time of all finished epochs
    best_test_acc, best_epoch : the best epoch so far (-1, 0 before the first)
    metrics : one dict per finished epoch, keys :data:`METRIC_COLUMNS`
    """

    epoch: int = 0
    batch: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    train_seconds: float = 0.0
    elapsed_total: float = 0.0
    best_test_acc: float = -1.0
    best_epoch: int = 0
    metrics: list = field(default_factory=list)

    def finish_epoch(self, row: dict) -> bool:
        """Record a finished epoch's metrics row and reset the running sums; returns whether it is the best."""
        self.metrics.append(row)
        self.epoch += 1
        self.elapsed_total += self.train_seconds
        self.batch, self.loss_sum, self.correct, self.seen, self.train_seconds = 0, 0.0, 0, 0, 0.0
        if row["test_acc"] > self.best_test_acc:
            self.best_test_acc, self.best_epoch = row["test_acc"], row["epoch"]
            return True
        return False

    def check(self, where: str, metrics: bool = True) -> "Progress":
        """Refuse a progress no run can have (a hand-edited or corrupt checkpoint): :class:`CheckpointError`
        naming ``where`` and the field, before anything trains.  Returns itself.  How many batches an epoch
        has depends on the data, so :func:`reference.app.train.train` checks ``batch`` against it.  ``metrics``:
        also check that it holds one metrics row per finished epoch (the first checkpoint format kept them in
        ``metrics.csv`` only, which may hold fewer)."""
        for name in ("epoch", "batch", "correct", "seen", "best_epoch"):
            if not _is_whole(getattr(self, name)):
                raise CheckpointError(f"{where}: progress.{name} is {getattr(self, name)!r}, not a whole number >= 0")
        for name, low in (("loss_sum", 0.0), ("train_seconds", 0.0), ("elapsed_total", 0.0), ("best_test_acc", -1.0)):
            if not _is_finite(getattr(self, name), low):
                raise CheckpointError(f"{where}: progress.{name} is {getattr(self, name)!r}, not a finite number "
                                      f">= {low}")
        if self.correct > self.seen:
            raise CheckpointError(f"{where}: progress.correct ({self.correct}) exceeds progress.seen ({self.seen})")
        if self.best_test_acc > 1:  # an accuracy (or -1 before the first epoch): 5.0 froze best_weights.npz
            raise CheckpointError(f"{where}: progress.best_test_acc is {self.best_test_acc!r}, not an accuracy "
                                  f"in [0, 1] (or -1 before the first epoch)")
        if not isinstance(self.metrics, list) or (metrics and len(self.metrics) != self.epoch):
            n = len(self.metrics) if isinstance(self.metrics, list) else self.metrics
            raise CheckpointError(f"{where}: progress.epoch is {self.epoch} but it holds {n} epochs' metrics")
        if self.best_epoch > self.epoch:
            raise CheckpointError(f"{where}: progress.best_epoch ({self.best_epoch}) is after its last epoch "
                                  f"({self.epoch})")
        for i, row in enumerate(self.metrics):
            if not isinstance(row, dict) or set(row) != set(METRIC_COLUMNS) or row["epoch"] != i + 1:
                raise CheckpointError(f"{where}: progress.metrics[{i}] is not epoch {i + 1}'s row of {METRIC_COLUMNS}")
        return self


# ------------------------------------------------------------------------------------ weights files
def weights_arrays(net, extra: dict | None = None) -> dict:
    """The arrays of a weights file: one per weighted layer (authors' layouts), the config and ``extra``."""
    arrays = {k: v for k, v in net.weights.items()}
    arrays["config_yaml"] = np.array(_dump_yaml(net.config.raw))
    arrays["meta_json"] = np.array(json.dumps(extra or {}, default=_json_default))
    return arrays


def save_weights(path, net, extra: dict | None = None) -> None:
    """Write only the weights (authors' layouts, one array per layer name) and the config, atomically."""
    atomic_savez(path, weights_arrays(net, extra), compressed=True)


def save_checkpoint(path, net, opt, settings: Settings, progress: Progress) -> None:
    """Write weights, AdamW state, generator state, settings, progress and config to ``path`` atomically."""
    arrays = {f"weight/{k}": v for k, v in net.weights.items()}
    opt_state = opt.state_dict()
    arrays.update({f"adam_m/{k}": v for k, v in opt_state["m"].items()})
    arrays.update({f"adam_v/{k}": v for k, v in opt_state["v"].items()})
    meta = {"format": 2, "settings": dataclasses.asdict(settings), "progress": dataclasses.asdict(progress),
            "adam_step": opt_state["step"], "rng": net.rng.bit_generator.state}
    arrays["meta_json"] = np.array(json.dumps(meta, default=_json_default))
    arrays["config_yaml"] = np.array(_dump_yaml(net.config.raw))
    atomic_savez(path, arrays)


def load_checkpoint(path, config: Config | None = None) -> dict:
    """Read a checkpoint or weights file written by this project (or a plain weights ``.npz`` + ``config``).

    Returns a dict with ``config`` (Config), ``weights`` (name -> array), ``meta`` (dict), ``options``
    (the :class:`~reference.options.NetOptions` the run trained with, the defaults for a plain weights
    file) and, for checkpoints, ``adam`` (``{'step', 'm', 'v'}``).  A file without a config needs ``config`` (e.g. what
    ``import-checkpoint`` writes); when both exist, ``config`` wins and the file's must have the same layers.

    Weights files written before November's end record no training options (``--variant``,
    ``--target-filter``, ...): for them ``meta`` takes ``seed`` and ``net_options`` from a
    ``settings.json`` beside the file (:func:`read_settings_json`), where there is one, so that
    ``evaluate`` and ``diagnose`` rebuild the network the run trained (its loss target, its backward).

    Raises
    ------
    CheckpointError
        One line naming the file: missing, not a readable ``.npz`` (truncated, corrupt), a broken config
        inside, no config at all, or recorded network options that do not exist.
    """
    path = os.fspath(path)
    arrays = read_npz(path, "checkpoint")
    meta = _parse_meta(arrays.pop("meta_json"), path) if "meta_json" in arrays else {}
    own = None
    if "config_yaml" in arrays:
        text = arrays.pop("config_yaml")
        if text.dtype.kind != "U" or text.ndim != 0:
            raise CheckpointError(f"{path}: its config_yaml is a {text.dtype} array of shape {text.shape}, not the "
                                  f"config's YAML text")
        try:
            own = load_config_text(str(text), where=f"{path} (config_yaml)")
        except ConfigError as err:
            raise CheckpointError(str(err)) from None
    if config is None and own is None:
        raise CheckpointError(f"{path} holds no config (plain weights, e.g. from import-checkpoint): "
                              f"give --config CONFIG.yaml")
    cfg = config if config is not None else own
    if "settings" not in meta and "net_options" not in meta:
        side = os.path.join(os.path.dirname(os.path.abspath(path)), SETTINGS)
        if os.path.exists(side):
            recorded = read_settings_json(side)
            meta = {"seed": recorded["seed"], "net_options": recorded["net_options"], **meta}
    if any(k.startswith("weight/") for k in arrays):
        weights = {k[7:]: v for k, v in arrays.items() if k.startswith("weight/")}
        adam = {"step": meta.get("adam_step", 0),
                "m": {k[7:]: v for k, v in arrays.items() if k.startswith("adam_m/")},
                "v": {k[7:]: v for k, v in arrays.items() if k.startswith("adam_v/")}}
    else:
        weights, adam = arrays, None
    try:
        options = NetOptions.from_record(recorded_net_options(meta), where=f"{path}: its recorded net_options")
    except ValueError as err:
        raise CheckpointError(str(err)) from None
    return {"config": cfg, "weights": weights, "meta": meta, "adam": adam, "options": options, "own_config": own}


#: The fields of a weights or checkpoint file's ``meta_json`` that commands read, and what each must be.
META_FIELDS = {
    "epoch": (int, 0), "seed": (int, 0), "test_samples": (int, 0), "adam_step": (int, 0), "format": (int, 1),
    "test_acc": (float, 0.0), "net_options": (dict, None), "settings": (dict, None), "progress": (dict, None),
    "blas": (dict, None), "rng": (dict, None), "engine": (str, None), "run_id": (str, None),
}


def _check_meta(meta, path) -> None:
    """:class:`CheckpointError` naming the field when a file's ``meta_json`` is not a mapping, or a field
    of :data:`META_FIELDS` has the wrong type or is below its least value (a hand-edited or corrupt file);
    ``test_acc`` must be an accuracy in [0, 1]."""
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: its meta_json is {type(meta).__name__}, not a mapping of recorded fields")
    for key, (kind, low) in META_FIELDS.items():
        if key not in meta or meta[key] is None:
            continue
        v = meta[key]
        ok = (_is_whole(v, low) if kind is int else _is_finite(v, 0.0, 1.0) if kind is float else isinstance(v, kind))
        if not ok:
            want = {int: f"a whole number >= {low}", float: "an accuracy in [0, 1]", dict: "a mapping",
                    str: "a name"}[kind]
            raise CheckpointError(f"{path}: its meta_json field {key!r} is {v!r:.60}, not {want}")


def read_meta(path) -> dict:
    """The ``meta_json`` record of a weights or checkpoint file (``{}`` when it has none), checked as
    :func:`load_checkpoint` checks it, without reading the weights; one-line :class:`CheckpointError`
    otherwise."""
    arrays = read_npz(path, "weights", only=("meta_json",))
    return _parse_meta(arrays["meta_json"], path) if "meta_json" in arrays else {}


def _parse_meta(text, path) -> dict:
    """A file's ``meta_json`` entry as a dict, checked (:func:`_check_meta`)."""
    try:
        meta = json.loads(str(text))
    except (ValueError, TypeError, RecursionError) as err:
        raise CheckpointError(f"{path}: its meta_json entry is not valid JSON ({type(err).__name__})") from None
    _check_meta(meta, path)
    return meta


def recorded_net_options(meta: dict) -> dict:
    """The ``net_options`` a file's metadata records (a checkpoint's settings, a weights file's own, or
    those of a ``settings.json`` beside it, as :func:`load_checkpoint` merged them); ``{}`` if none."""
    return (meta.get("settings") or {}).get("net_options") or meta.get("net_options") or {}


#: What a ``settings.json`` may record, with the value :func:`read_settings_json` gives when it does not.
SETTINGS_KEYS = {"seed": None, "net_options": {}, "epochs": None, "command": None,
                 "weights_sha256": None, "best_weights_sha256": None}


def read_settings_json(path) -> dict:
    """A run's ``settings.json``: every key of :data:`SETTINGS_KEYS` (None, or ``{}`` for ``net_options``,
    where the file does not record it).

    ``seed`` and ``net_options`` rebuild the network (:func:`load_checkpoint`); ``epochs`` is what the run
    was started for, ``command`` what reproduces it, and the two hashes identify its ``weights.npz`` and
    ``best_weights.npz`` once they are no longer kept (``python -m reference summarize`` lists them in
    ``runs.csv``).

    Raises
    ------
    CheckpointError
        One line naming the file: not JSON, not an object, or ``net_options`` not an object.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not os.path.isfile(path):  # a FIFO would block the open, a device never end
        raise CheckpointError(f"{path} is not a regular file (a folder, a pipe or a device), not a settings file")
    try:
        with open(path, encoding="utf-8") as fh:
            raw = json.load(fh)
    except (OSError, ValueError, RecursionError) as err:  # RecursionError: nested past Python's stack
        raise CheckpointError(f"{path} is not a readable settings file ({type(err).__name__}: "
                              f"{str(err)[:120]})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("net_options", {}), dict):
        raise CheckpointError(f"{path}: expected {{\"seed\": ..., \"net_options\": {{...}}}}, got {raw!r:.80}")
    out = {key: raw.get(key, default) for key, default in SETTINGS_KEYS.items()}
    out["net_options"] = out["net_options"] or {}
    return out


#: A member of an .npz may declare this many bytes whatever its stored size (64 MiB) ...
NPZ_FREE_BYTES = 64 << 20
#: ... and beyond that at most this many bytes per stored byte — float weights, Adam moments and images
#: compress by 1.1-3x, a "zip bomb" by 1000x (4 MB declaring 4 GiB).
NPZ_MAX_EXPANSION = 100


def check_npz_headers(path, bounded: bool = True) -> dict:
    """Read only the headers of an ``.npz``'s members: ``{name: (dtype, shape)}``, or ``ValueError``.

    Before any array is decompressed: every member must be a ``.npy`` array (format 1.0 or 2.0) of plain
    numbers or text, no Python objects, and (with ``bounded``, for weights and checkpoints) may not declare
    more than :data:`NPZ_FREE_BYTES` unless its stored size is at least 1/:data:`NPZ_MAX_EXPANSION` of what
    it declares.  So a small file that would decompress to gigabytes, or a member that is not an array, is
    refused at the cost of its headers.  A user's dataset (``bounded=False``) may compress well; its
    declared size is weighed against the free memory instead (:mod:`reference.app.arrays`).
    """
    import zipfile

    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename
            if not name.endswith(".npy"):
                raise ValueError(f"member {name!r} is not an array (.npy)")
            with zf.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
                else:
                    raise ValueError(f"member {name!r}: .npy format {version} is not read here")
            if dtype.hasobject:
                raise ValueError(f"member {name!r} holds Python objects (a pickle); refused")
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            if bounded and declared > NPZ_FREE_BYTES and declared > NPZ_MAX_EXPANSION * max(info.compress_size, 1):
                raise ValueError(f"member {name!r} declares {shape} {dtype} ({declared / 2**20:.0f} MiB) in "
                                 f"{info.compress_size} stored bytes; refused before decompressing")
            out[name[:-4]] = (dtype, shape)
    return out


def read_npz(path, what: str = "file", only: tuple | None = None) -> dict:
    """Every array of an ``.npz`` file (or those named in ``only``), read now (no pickles); one-line
    :class:`CheckpointError` otherwise.

    ``what`` names the file's role in messages ("checkpoint", "weights", "inputs").  A missing file, a
    folder, and a truncated or corrupt archive (zip, CRC and EOF errors alike) are all reported the same way.
    The members' headers are checked first (:func:`check_npz_headers`), so a hostile file costs its
    headers, not its declared size.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"{what} file not found: {path}")
    if os.path.isdir(path):
        hint = "" if path.endswith(".npz") else f" (e.g. {os.path.join(path, WEIGHTS)})"
        raise CheckpointError(f"{what} file {path} is a folder; give a .npz file{hint}")
    if not os.path.isfile(path):  # a FIFO would block the open forever, a device never end
        raise CheckpointError(f"{what} file {path} is not a regular file (a pipe or a device); give a .npz file")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(6)
        is_zip = magic[:4] == b"PK\x03\x04"
        if magic[:4] == b"PK\x05\x06":  # a zip's end record first: an archive of no members (np.savez())
            raise CheckpointError(f"{what} file {path} is an .npz archive that holds no arrays")
        if is_zip:
            check_npz_headers(path)
        elif magic != b"\x93NUMPY":  # NumPy takes anything else for a pickle and suggests allow_pickle=True
            raise CheckpointError(f"{what} file {path} is not an .npz archive (it does not start as a zip "
                                  f"file does); nothing in it was loaded")
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not an .npz archive of named arrays")
        with data:
            # read now, so that a truncated member fails here
            return {k: data[k] for k in data.keys() if only is None or k in only}
    except CheckpointError:
        raise
    except Exception as err:  # zip, CRC, EOF and format errors come in many types
        raise CheckpointError(f"{what} file {path} is not a readable .npz archive ({type(err).__name__}: {err})") from None


def read_weights(path) -> dict:
    """Only the weight arrays of a plain weights ``.npz`` or of this project's weights/checkpoint files."""
    arrays = read_npz(path, "weights")
    if any(k.startswith("weight/") for k in arrays):
        return {k[7:]: v for k, v in arrays.items() if k.startswith("weight/")}
    return {k: v for k, v in arrays.items() if k not in ("config_yaml", "meta_json")}


def read_metrics(path) -> dict:
    """metrics.csv as a dict of columns (floats)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: [float(r[k]) for r in rows] for k in (rows[0].keys() if rows else METRIC_COLUMNS)}


def metrics_csv(rows: list) -> str:
    """The text of metrics.csv for a list of rows (dicts keyed by :data:`METRIC_COLUMNS`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(METRIC_COLUMNS)
    for row in rows:
        writer.writerow([row[k] if k == "epoch" else f"{row[k]:.6g}" for k in METRIC_COLUMNS])
    return out.getvalue()


def _dump_yaml(raw: dict) -> str:
    import yaml

    return yaml.safe_dump(raw, sort_keys=False)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def other_run_in_log(path, run_id: str | None) -> str | None:
    """The first run id other than ``run_id`` among the sessions ``run.log`` at ``path`` records (a log
    copied in from another run), or None: none, no ``run_id`` to compare, or no readable log (an
    unreadable run.log is reported where it is read, the demo, and never trusted)."""
    if not run_id or not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            ids = {json.loads(line).get("run_id") for line in fh if line.strip()}
    except (ValueError, AttributeError, OSError):
        return None
    other = sorted(i for i in ids - {None, run_id} if isinstance(i, str))
    return other[0] if other else None


def is_run_folder(folder) -> bool:
    """Whether ``folder`` holds a run: its checkpoint, weights or record (``settings.json``) as a regular
    file.  Only ``train`` and ``demo`` write into such a folder; every other command's output goes elsewhere."""
    return any(os.path.isfile(os.path.join(os.fspath(folder), name)) for name in (CHECKPOINT, WEIGHTS, SETTINGS))


def is_training(folder) -> bool:
    """Whether a live process holds the run folder's lock now (asked of the kernel with a non-blocking
    ``flock``, so a stale ``.lock`` of a killed run, or a pid reused by another process, does not count).
    A ``.lock`` that is a link or not a regular file is not followed and counts as no lock."""
    import fcntl
    import stat

    try:
        fd = os.open(os.path.join(os.fspath(folder), LOCK), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False  # nobody holds the exclusive lock (ours goes with the close)
    except OSError as err:
        return err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------- the folder
class RunFolder:
    """One run folder (see the module docstring); use as a context manager to hold its lock.

    Create with :meth:`create` (a new run) or :meth:`open` (resume).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._lock_fd = None
        self._made_lock = False  # whether lock() created .lock (a failed start then removes it)
        self.recovered = None  # what recover_replaced did when the folder was opened: None, "restored", "dropped"

    def file(self, name: str) -> str:
        """Path of one of the run's files."""
        return os.path.join(self.path, name)

    # ------------------------------------------------------------------------------------ opening
    @classmethod
    def create(cls, path, overwrite: bool = False) -> "RunFolder":
        """A folder for a new run, locked.  Refuses one that holds a run unless ``overwrite``.

        Raises RunExistsError, RunLockedError, or RunError (a file in the way, folder not writable).
        """
        folder = cls.check_new(path, overwrite)
        missing, parent = [], folder.path
        while parent and not os.path.lexists(parent) and parent != os.path.dirname(parent):
            missing.append(parent)  # deepest first
            parent = os.path.dirname(parent)
        try:
            os.makedirs(folder.path, exist_ok=True)
        except OSError as err:
            for made in missing:  # leave the file system as found (a path too long failed 28 levels deep)
                try:
                    os.rmdir(made)
                except OSError:
                    pass
            if err.errno == errno.ENOTDIR and parent and os.path.lexists(parent):
                raise RunError(f"cannot create the run folder {folder.path}: {parent} is a file, not a "
                               f"folder") from None
            raise RunError(f"cannot create the run folder {folder.path}: {err.strerror or err}") from None
        folder.lock()
        try:
            folder.recovered = folder.recover_replaced()
            if overwrite:
                try:
                    folder.set_aside()
                except BaseException:
                    state = folder._replaced_state()
                    if state is not None and state[0] == "moving":  # stopped mid-way (Ctrl-C, a full disk)
                        folder._move_back(state[1])
                    raise
            folder.remove_stale_temporaries()
        except BaseException:
            folder.release(created=False)
            for made in missing:  # the folders this call made, deepest first (only when empty)
                try:
                    os.rmdir(made)
                except OSError:
                    pass
            raise
        return folder

    def set_aside(self) -> None:
        """``--overwrite``: move the old run's files into ``.replaced/`` of the folder (renames, nothing is
        copied), where they stay until the new run has finished a step (:meth:`drop_replaced`) and from
        where a new run that fails before that puts them back (:meth:`undo_start`).

        :data:`REPLACED_MARK` is written before the first rename (``moving`` and the names) and again after
        the last (``moved``), so that a kill at any moment leaves a state :meth:`recover_replaced` settles
        without losing a file of either run."""
        old = [name for name in (*RUN_FILES, *DERIVED_FILES) if os.path.lexists(self.file(name))]
        if not old:
            return
        folders = [name for name in old if os.path.isdir(self.file(name)) and not os.path.islink(self.file(name))]
        if folders:
            raise RunError(f"{self.file(folders[0])} is a folder, not a run's file; a run never moves or deletes "
                           f"folders: move it out of {self.path}, then retry")
        aside = self.file(REPLACED)
        if os.path.lexists(aside):  # left by a process killed before its first step: the older run wins
            raise RunError(f"{aside} holds a run set aside by an --overwrite that never finished a step; "
                           f"move its files back into {self.path} or delete it, then retry")
        os.mkdir(aside)
        mark = os.path.join(aside, REPLACED_MARK)
        atomic_write_text(mark, "\n".join(["moving", *old]) + "\n")
        for name in old:
            os.rename(self.file(name), os.path.join(aside, name))
        atomic_write_text(mark, "\n".join(["moved", *old]) + "\n")

    def _replaced_state(self) -> tuple[str, list[str]] | None:
        """What ``.replaced/`` holds, checked: ``("moving" | "moved", names present in it)``; None when there
        is none or it is empty (a kill between its ``mkdir`` and the mark: nothing was moved).

        Raises :class:`RunError` (and nothing is touched) unless it is one :meth:`set_aside` made: its mark,
        and besides it only regular files or links it names (never a folder)."""
        aside = self.file(REPLACED)
        if not os.path.lexists(aside):
            return None
        if os.path.islink(aside) or not os.path.isdir(aside):
            raise RunError(f"{aside} is not a folder an --overwrite made (a link or a file); a run never "
                           f"follows or deletes it: move it out of {self.path}, then retry")
        try:
            entries = sorted(os.listdir(aside))
            if not entries:
                return None
            mark = os.path.join(aside, REPLACED_MARK)
            lines = None
            if os.path.isfile(mark) and not os.path.islink(mark) and os.path.getsize(mark) <= 4096:
                with open(mark, "rb") as fh:
                    lines = fh.read().decode("utf-8", errors="replace").split()
        except OSError as err:
            raise RunError(f"cannot read {aside}: {err.strerror or err}") from None
        allowed = set(RUN_FILES) | set(DERIVED_FILES)
        if not lines or lines[0] not in ("moving", "moved") or not set(lines[1:]) <= allowed:
            shown = [e for e in entries if e != REPLACED_MARK] or entries
            mark_is = (f"no {REPLACED_MARK} of one" if not os.path.lexists(mark) else
                       f"a {REPLACED_MARK} that is not a regular file of an --overwrite's" if lines is None else
                       f"a {REPLACED_MARK} an --overwrite did not write (it says {' '.join(lines)[:60]!r})")
            raise RunError(f"{aside} holds files no --overwrite put there ({', '.join(shown[:5])}) and {mark_is}; "
                           f"a run never moves or deletes them: move that folder out of {self.path}, then retry")
        names = [e for e in entries if e != REPLACED_MARK]
        foreign = [e for e in names if e not in lines[1:] or
                   (os.path.isdir(os.path.join(aside, e)) and not os.path.islink(os.path.join(aside, e)))]
        if foreign:
            raise RunError(f"{aside} holds files no --overwrite put there ({', '.join(foreign[:5])}); a run "
                           f"never moves or deletes them: move that folder out of {self.path}, then retry")
        return lines[0], names

    def recover_replaced(self) -> str | None:
        """Settle a ``.replaced/`` left by an ``--overwrite`` whose process was killed (SIGKILL, power loss),
        holding the folder's lock.  If the new run never finished a step (it was still setting the old run
        aside, or its checkpoint is the one written at the start, or unreadable, or absent), it had nothing
        of value: its files go and the replaced run is put back (returns "restored").  If it did (a committed
        epoch), the replaced run goes, as it would have after that step (returns "dropped").  None when there
        is no ``.replaced/`` (or an empty one, which is removed)."""
        state = self._replaced_state()
        if state is None:
            self._remove_empty_replaced()
            return None
        if state[0] == "moving":  # killed while moving the old run aside: the new run wrote nothing yet
            self._move_back(state[1])
            return "restored"
        if self.has_committed_step():
            self.drop_replaced()
            return "dropped"
        self.put_back_replaced()
        return "restored"

    def has_committed_step(self) -> bool:
        """Whether the checkpoint on disk is past a run's start (an epoch, or a step of one, committed).

        What decides, at every way a new run can stop, whether it is kept (and a run it replaces goes) or
        undone (and that run put back): a step counted in memory but not yet in the checkpoint is not
        kept.  False for a missing, torn or unreadable checkpoint: the replaced run wins."""
        if not os.path.isfile(self.file(CHECKPOINT)):
            return False
        try:
            progress = self.read_checkpoint()["progress"]
        except (RunError, OSError, ValueError):
            return False
        return progress.epoch > 0 or progress.batch > 0

    def check_replaced_is_ours(self) -> None:
        """:class:`RunError` when ``.replaced/`` is not one :meth:`set_aside` made (see :meth:`_replaced_state`)."""
        self._replaced_state()

    def put_back_replaced(self) -> None:
        """Remove the new run's files and move the run :meth:`set_aside` kept in ``.replaced/`` back (when
        there is one): the folder is as it was before the ``--overwrite``."""
        state = self._replaced_state()
        if state is None or state[0] == "moved":  # "moving": the new run wrote nothing yet, the folder's
            self.remove(*RUN_FILES, *DERIVED_FILES)  # files are still the old run's
        if state is not None:
            if state[0] == "moved":  # the folder now holds none of the new run's files: say so before the
                # first move back, so that a kill amid the moves is settled by moving the rest (not by
                # removing, as the new run's, the old files already back)
                atomic_write_text(self.file(os.path.join(REPLACED, REPLACED_MARK)),
                                  "\n".join(["moving", *state[1]]) + "\n")
            self._move_back(state[1])
        self._remove_empty_replaced()

    def _move_back(self, names: list[str]) -> None:
        aside = self.file(REPLACED)
        for name in names:
            if os.path.lexists(self.file(name)):
                raise RunError(f"{self.file(name)} exists and so does the one {REPLACED}/ keeps; a run never "
                               f"chooses between two files: move one of them, then retry")
            os.rename(os.path.join(aside, name), self.file(name))
        self.remove(os.path.join(REPLACED, REPLACED_MARK))
        self._remove_empty_replaced()

    def _remove_empty_replaced(self) -> None:
        try:
            os.rmdir(self.file(REPLACED))  # only when empty: a folder holding anything is never removed
        except OSError:
            pass

    def drop_replaced(self) -> None:
        """The new run has finished a step: delete the replaced run set aside by :meth:`set_aside` (file by
        file, the names it recorded; never a folder or anything else)."""
        state = self._replaced_state()
        if state is None:
            self._remove_empty_replaced()
            return
        self.remove(*(os.path.join(REPLACED, name) for name in state[1]), os.path.join(REPLACED, REPLACED_MARK))
        self._remove_empty_replaced()

    def undo_start(self, created: bool) -> None:
        """A new run failed before its first step: remove every file it wrote, put back a run it was to
        replace, and remove the folder if this run created it; the same command can then be run again."""
        self.put_back_replaced()
        self.remove(LOCK)
        self.unlock()
        if created:
            try:
                os.rmdir(self.path)
            except OSError:
                pass

    @classmethod
    def check_new(cls, path, overwrite: bool = False) -> "RunFolder":
        """What :meth:`create` checks first, touching nothing: a folder of the run's own (new, empty, or
        holding only a run's files), not inside another run's folder, no run there (unless ``overwrite``)."""
        folder = cls(path)
        folder.refuse_inside_replaced("--out")
        real = os.path.realpath(folder.path)
        if os.path.dirname(real) == real:  # "/": a run's files would lie among the system's folders
            raise RunError(f"--out {folder.path} is the file system's root; give a folder for the run, e.g. "
                           f"--out runs/my_run")
        if os.path.exists(folder.path) and not os.path.isdir(folder.path):
            raise RunError(f"--out {folder.path} is a file, not a folder")
        above = os.path.dirname(real)
        while os.path.dirname(above) != above:
            if is_run_folder(above):  # an --overwrite or a summary of that run would meet this one
                raise RunError(f"--out {folder.path} lies inside the run folder {above}; give each run a folder "
                               f"of its own, e.g. beside it")
            above = os.path.dirname(above)
        if os.path.isdir(folder.path):
            foreign = folder.foreign_entries()
            if foreign:
                shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
                raise RunError(f"--out {folder.path} holds files that are not a run's ({shown}); a run gets a "
                               f"folder of its own, so it never writes among other files: give a new or empty "
                               f"folder, e.g. --out {os.path.join(folder.path, 'run')}")
        folder.refuse_links()
        folders = [n for n in (*RUN_FILES, *DERIVED_FILES)
                   if os.path.isdir(folder.file(n)) and not os.path.islink(folder.file(n))]
        if folders:  # --overwrite would refuse it too (set_aside): say so now, not "pass --overwrite"
            raise RunError(f"{folder.file(folders[0])} is a folder, not a run's file; a run never moves or deletes "
                           f"folders: move it out of {folder.path}, or choose another --out")
        existing = folder.run_files()
        if not overwrite and os.path.lexists(folder.file(REPLACED)):
            folder.check_replaced_is_ours()
            new_run = f" and the new run that was to replace it ({', '.join(existing)})" if existing else ""
            raise RunExistsError(
                f"{folder.path} holds a run that an interrupted --overwrite set aside in {REPLACED}/{new_run}; "
                f"--resume {folder.path} settles it (puts the old run back if the new one never finished a "
                f"step) and continues, or pass --overwrite to replace the old run again")
        if existing and not overwrite:
            raise RunExistsError(
                f"{folder.path} already holds a run's files ({', '.join(existing)}); continue the run with "
                f"--resume {folder.path}, choose another --out, or pass --overwrite to replace them")
        derived = [name for name in DERIVED_FILES if os.path.lexists(folder.file(name))]
        if derived and not overwrite:  # a run would write over them (the figures) or append to them (run.log)
            raise RunExistsError(
                f"{folder.path} holds no run but files a run writes ({', '.join(derived)}); choose another "
                f"--out, or pass --overwrite to replace them")
        return folder

    def foreign_entries(self) -> list[str]:
        """The folder's entries that no run wrote, sorted: anything but :data:`RUN_FILES`,
        :data:`DERIVED_FILES`, ``.lock``, ``.replaced/`` and what a killed run leaves
        (:func:`~reference.app.atomic.temporary_pattern`)."""
        ours = (*RUN_FILES, *DERIVED_FILES)
        left = re.compile(temporary_pattern(ours))
        return sorted(name for name in os.listdir(self.path)
                      if name not in (*ours, LOCK, REPLACED) and not left.fullmatch(name))

    @classmethod
    def open(cls, path) -> "RunFolder":
        """An existing run to resume, locked.  Refuses (creating nothing) a folder without a checkpoint."""
        folder = cls(path)
        folder.refuse_inside_replaced("--resume")
        if not os.path.isdir(folder.path):
            raise RunError(f"--resume {folder.path}: no such run folder")
        aside = os.path.lexists(folder.file(REPLACED))
        if not os.path.exists(folder.file(CHECKPOINT)) and not aside:
            if folder.run_files() or folder.foreign_entries():  # a run's other files, or a user's: not to be
                # replaced by the new run the hint would start (and refused by it)
                raise RunError(f"--resume {folder.path}: the folder holds no {CHECKPOINT}, so there is nothing "
                               f"to resume; a new run needs a folder of its own (--out another folder)")
            raise RunError(f"--resume {folder.path}: the folder holds no {CHECKPOINT} (nothing to resume; "
                           f"start a run with --config ... --out {folder.path})")
        folder.refuse_links()
        if aside:
            folder.check_replaced_is_ours()  # before the lock: a foreign .replaced/ leaves no .lock behind
        folder.lock()
        try:
            folder.recovered = folder.recover_replaced()
            folder.remove_stale_temporaries()
        except BaseException:
            folder.release(created=False)
            raise
        if folder.recovered == "restored" and not os.path.exists(folder.file(CHECKPOINT)):
            folder.unlock()
            raise RunError(f"--resume {folder.path}: put back the run an interrupted --overwrite had set aside "
                           f"(the new run never finished a step); that run keeps no {CHECKPOINT} to resume")
        return folder

    def refuse_inside_replaced(self, option: str) -> None:
        """:class:`RunError` when the folder is a run's ``.replaced/`` or inside one: there an interrupted
        ``--overwrite`` keeps the old run until the next ``--resume`` of the folder above settles it, and no
        session may train in it or replace it."""
        for path in (os.path.abspath(self.path), os.path.realpath(self.path)):  # a link into one, too
            parts = path.split(os.sep)
            if REPLACED in parts:
                above = os.sep.join(parts[:parts.index(REPLACED)]) or os.sep
                raise RunError(f"{option} {self.path}: {REPLACED}/ holds the run an interrupted --overwrite set aside "
                               f"in {above}; it is never a run folder of its own: --resume {above} settles it")

    def refuse_links(self) -> None:
        """:class:`RunError` before any work when a file the run appends to (``.lock``, ``run.log``) is a
        symbolic link or not a regular file: a run never writes outside its folder through one."""
        for name in (LOCK, RUN_LOG):
            path = self.file(name)
            if os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path)):
                raise RunError(f"{path} is a link or not a regular file; a run writes only its own files: remove it")

    def remove_stale_temporaries(self) -> None:
        """Delete what a killed process (SIGKILL, power loss) left beside the run's files, holding the
        lock: :func:`~reference.app.atomic.temporary_pattern` of the run's own file names, regular files only."""
        import re

        pattern = re.compile(temporary_pattern((*RUN_FILES, *DERIVED_FILES)))
        try:
            entries = os.listdir(self.path)
        except OSError:
            return
        for entry in entries:
            path = self.file(entry)
            if pattern.fullmatch(entry) and os.path.isfile(path) and not os.path.islink(path):
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def release(self, created: bool) -> None:
        """Undo :meth:`lock` after a start that failed before writing anything: unlock, and remove the
        ``.lock`` file and the folder when this process made them."""
        made_lock = self._made_lock
        self.unlock()
        if made_lock:
            self.remove(LOCK)
        if created:
            try:
                os.rmdir(self.path)
            except OSError:
                pass

    def remove(self, *names: str) -> None:
        """Delete these files of the folder where they exist."""
        for name in names:
            try:
                os.unlink(self.file(name))
            except FileNotFoundError:
                pass

    def run_files(self) -> list[str]:
        """The run files (:data:`RUN_FILES`) present in the folder."""
        return [name for name in RUN_FILES if os.path.exists(self.file(name))]

    # --------------------------------------------------------------------------------------- lock
    def lock(self) -> None:
        """Take the folder's exclusive lock (``flock`` on ``.lock``), or raise RunLockedError."""
        import fcntl

        path = self.file(LOCK)
        nofollow = getattr(os, "O_NOFOLLOW", 0)
        try:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | nofollow, 0o644)
                self._made_lock = True
            except FileExistsError:
                fd = os.open(path, os.O_RDWR | nofollow)
                self._made_lock = False
        except OSError as err:
            if err.errno == errno.ELOOP:
                raise RunError(f"{path} is a link; a run writes only its own files: remove it") from None
            raise RunError(f"cannot write in the run folder {self.path}: {err.strerror or err}") from None
        if not self._made_lock and not self._is_a_lock(fd):
            os.close(fd)
            raise RunError(f"{path} is not a run's lock file (it holds something other than a pid); a run "
                           f"never writes over it: move or remove it, then retry")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunLockedError(f"another process (pid {holder}) is training in {self.path}; wait for it "
                                     f"to finish or stop it, or choose another --out") from None
            raise RunError(f"cannot lock {path}: {err.strerror or err}") from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except OSError:
            pass  # the pid is only informative
        self._lock_fd = fd

    @staticmethod
    def _is_a_lock(fd) -> bool:
        """Whether the open file is a regular file holding nothing or a pid (what :meth:`lock` writes)."""
        import stat

        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > 32:
            return False
        text = os.pread(fd, 32, 0).strip()
        return not text or text.isdigit()

    def unlock(self) -> None:
        """Release the lock (also released by the kernel when the process ends)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.unlock()
        return False

    # ------------------------------------------------------------------------------------- writes
    def write_config(self, config: Config) -> None:
        """``config.yaml``: the run's config as loaded (the authors' schema)."""
        atomic_write_text(self.file(CONFIG), _dump_yaml(config.raw))

    def checkpoint(self, net, opt, settings: Settings, progress: Progress) -> None:
        """Write ``checkpoint.npz`` (mid-epoch too: after Ctrl-C)."""
        save_checkpoint(self.file(CHECKPOINT), net, opt, settings, progress)

    def commit_epoch(self, net, opt, settings: Settings, progress: Progress, is_best: bool, hook=None,
                     record: dict | None = None) -> None:
        """After an epoch: weights, best weights, then the checkpoint (the commit point), then metrics.csv.

        The weights files' metadata holds the epoch, its test accuracy, the run's options and seed, and
        ``record`` (how the accuracy was measured: ``test_samples``, ``engine``, ``blas``), which lets
        ``evaluate`` say whether it reproduces the number and, if not, why.
        ``hook(point)``, if given, is called between the writes (fault-injection tests).
        """
        last = progress.metrics[-1]
        extra = {"epoch": last["epoch"], "test_acc": last["test_acc"], "net_options": settings.net_options,
                 "seed": settings.seed, "run_id": settings.run_id, **(record or {})}
        names = (WEIGHTS, BEST_WEIGHTS) if is_best else (WEIGHTS,)
        kept = [name for name in names if keep_previous(self.file(name))]  # no hard links: a full disk then
        # leaves the weights a commit ahead, as a kill does (a resume redoes that epoch)
        try:
            save_weights(self.file(WEIGHTS), net, extra)
            if is_best:  # the paper reports the best epoch: keep its weights
                save_weights(self.file(BEST_WEIGHTS), net, extra)
            if hook:
                hook("before_checkpoint")
            self.checkpoint(net, opt, settings, progress)
        except (OSError, KeyboardInterrupt):  # a full disk, a second Ctrl-C: the epoch is not committed, so
            for name in kept:                  # its weights files go back to the checkpoint's epoch
                put_back(self.file(name))
            raise
        for name in kept:
            self.remove(os.path.basename(previous_path(self.file(name))))
        if hook:
            hook("after_checkpoint")
        self.write_metrics(progress.metrics)

    def log_session(self, entry: dict) -> None:
        """Append one JSON line to ``run.log`` (see :func:`session_record`).

        The file is opened without following a link and must be a regular file, so a planted symlink
        never makes a run write outside its folder (:class:`RunError` instead)."""
        line = json.dumps(entry, default=_json_default) + "\n"
        path = self.file(RUN_LOG)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as err:
            raise RunError(f"cannot append to {path}: {err.strerror or err} (a link or not a file?)") from None
        try:
            import stat

            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise RunError(f"{path} is not a regular file; remove it")
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def write_metrics(self, rows: list) -> None:
        """``metrics.csv`` from the rows (derived from the checkpoint, so the two always agree)."""
        atomic_write_text(self.file(METRICS), metrics_csv(rows))

    # -------------------------------------------------------------------------------------- reads
    def read_checkpoint(self) -> dict:
        """The checkpoint, with ``settings`` and ``progress`` as dataclasses (older formats converted)."""
        ck = load_checkpoint(self.file(CHECKPOINT))
        if ck["adam"] is None:
            raise CheckpointError(f"{self.file(CHECKPOINT)} holds weights only, not a training checkpoint")
        meta = ck["meta"]
        try:
            if meta.get("format") == 2:
                settings = Settings(**meta["settings"])
                progress = Progress(**meta["progress"])
            else:
                settings, progress = self._legacy(meta)
            ck["rng"] = meta["rng"]
        except (KeyError, TypeError) as err:
            raise CheckpointError(f"{self.file(CHECKPOINT)}: incomplete training state ({err})") from None
        ck["settings"] = settings.check(self.file(CHECKPOINT))
        ck["progress"] = progress.check(self.file(CHECKPOINT), metrics=meta.get("format") == 2)
        return ck

    def _legacy(self, meta: dict):
        """Checkpoints of the first format (flat meta, metrics only in metrics.csv)."""
        settings = Settings(seed=meta["seed"], epochs=meta.get("epochs") or 0, batch_size=meta.get("batch_size") or 0,
                            train_limit=meta.get("train_limit"), test_limit=meta.get("test_limit"),
                            net_options=meta.get("net_options") or {}, max_seconds=meta.get("max_seconds"))
        rows = []
        if os.path.exists(self.file(METRICS)):
            cols = read_metrics(self.file(METRICS))
            n = len(cols.get("epoch", []))
            rows = [{k: (int(cols[k][i]) if k == "epoch" else cols[k][i]) for k in METRIC_COLUMNS} for i in range(n)]
        rows = rows[:meta["epoch"]]  # a row written after the checkpoint belongs to an epoch that will be redone
        progress = Progress(epoch=meta["epoch"], batch=meta["batch"], loss_sum=meta["loss_sum"],
                            correct=meta["correct"], seen=meta["seen"], train_seconds=meta["train_seconds"],
                            elapsed_total=meta.get("elapsed_total", 0.0), best_test_acc=meta.get("best_test_acc", -1.0),
                            best_epoch=meta.get("best_epoch", 0), metrics=rows)
        return settings, progress

    def check_files_are_the_runs(self, settings: Settings, progress: Progress) -> None:
        """:class:`RunError` when ``weights.npz``, ``best_weights.npz`` or ``run.log`` is of another run
        than ``checkpoint.npz`` (files copied between run folders by hand): another ``run_id``, another
        seed, or an epoch the checkpoint cannot be at (the weights are of its epoch, or of the next one
        when a kill came between their write and the checkpoint's).  A resume would otherwise continue
        the checkpoint's run among another run's weights, figures and log, without a word."""
        def refuse(name, what):
            raise RunError(f"--resume {self.path}: {name} is of another run than {CHECKPOINT} ({what}); files "
                           f"of two runs were mixed: put back the run's own files, or start a new run")

        for name in (WEIGHTS, BEST_WEIGHTS):
            if not os.path.isfile(self.file(name)):
                continue
            meta = read_meta(self.file(name))
            if settings.run_id and meta.get("run_id") and meta["run_id"] != settings.run_id:
                refuse(name, f"run {meta['run_id'][:8]}..., the checkpoint's {settings.run_id[:8]}...")
            if meta.get("seed") is not None and meta["seed"] != settings.seed:
                refuse(name, f"seed {meta['seed']}, the checkpoint's {settings.seed}")
            epoch = meta.get("epoch")
            latest = progress.epoch + 1 if name == WEIGHTS else max(progress.best_epoch, progress.epoch) + 1
            if epoch is not None and (epoch > latest or name == WEIGHTS and epoch < progress.epoch):
                refuse(name, f"its weights are of epoch {epoch}, the checkpoint has finished {progress.epoch}")
        other = other_run_in_log(self.file(RUN_LOG), settings.run_id)
        if other:
            refuse(RUN_LOG, f"it logs sessions of run {other[:8]}..., the checkpoint's is {settings.run_id[:8]}...")

    def read_config_file(self) -> Config | None:
        """The folder's ``config.yaml`` (None when absent)."""
        if not os.path.exists(self.file(CONFIG)):
            return None
        return load_config(self.file(CONFIG))


class ReadOnlyFolder(RunFolder):
    """The run folder as the processes other than rank 0 of a distributed run see it: they read the
    checkpoint to resume, and write nothing (no lock, no checkpoint, metrics, weights or config)."""

    @classmethod
    def open(cls, path) -> "ReadOnlyFolder":
        folder = cls(path)
        if not os.path.exists(folder.file(CHECKPOINT)):
            raise RunError(f"--resume {folder.path}: the folder holds no {CHECKPOINT} (nothing to resume)")
        return folder

    def lock(self) -> None: ...

    def remove(self, *names: str) -> None: ...

    def drop_replaced(self) -> None: ...

    def write_config(self, config) -> None: ...

    def checkpoint(self, net, opt, settings, progress) -> None: ...

    def commit_epoch(self, net, opt, settings, progress, is_best, hook=None, record=None) -> None: ...

    def write_metrics(self, rows) -> None: ...


# ------------------------------------------------------------------------------------------- Ctrl-C
class StopSignal:
    """Turns Ctrl-C (SIGINT) and SIGTERM into a request to stop at the next safe point.

    Inside ``with StopSignal() as stop:`` the first signal only sets ``stop.requested``; the training
    loop checks it between whole steps and then saves a checkpoint.  The handlers are restored on exit,
    and a second Ctrl-C raises KeyboardInterrupt as usual (every write being atomic, that too leaves no
    partial file).  Outside the main thread (where Python cannot install handlers) it does nothing.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self._previous = {}

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C interrupts at once

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        return False


class HeldSignal(StopSignal):
    """Holds Ctrl-C (SIGINT) and SIGTERM while a session is being set up, and acts on them after.

    Inside ``with HeldSignal() as held:`` a signal only sets ``requested`` (as :class:`StopSignal` does);
    the block ends with ``KeyboardInterrupt`` if one came, at a line of Python of the caller's choosing.
    Without it, Python raises ``KeyboardInterrupt`` wherever the signal lands: inside a C callback (Numba
    loading its cached kernels) it is printed as "Exception ignored" and lost, and the session went on
    to replace the run an ``--overwrite`` had just set aside.  A second signal ends the process at once
    (:func:`~reference.app.atomic.end_at_once`: a long data load can still be stopped, with no traceback
    from a callback it came in) until the caller says with :meth:`touching` that it starts to change the
    folder; from then on it is held too.  Outside the main thread it does nothing.
    """

    _touching = False

    def touching(self) -> None:
        """The folder is about to change (an old run set aside, a checkpoint written): from now on a
        second signal is held as the first, so that the block's end undoes what was done."""
        self._touching = True

    def _handle(self, signum, frame):
        if self.requested and not self._touching:
            end_at_once(signum, frame)
        self.requested = True

    def __exit__(self, exc_type, *exc):
        super().__exit__(exc_type, *exc)
        if self.requested and exc_type is None:
            raise KeyboardInterrupt
        return False

