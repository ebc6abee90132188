"""``python -m reference summarize results/``: the paper's protocol over seeds, from run folders.

The paper reports, per network, the mean, standard deviation and best over runs of each run's **best test
accuracy over its epochs**.  This module reads every run folder under a directory (a folder with a
``metrics.csv``), groups the runs that differ only in their seed (same dataset, network, config values,
and training options such as ``--variant`` or ``--target-filter``), and writes ``summary.csv`` and
``summary.md`` (a markdown table) in that directory.  Where the directory's ``README.md`` holds the lines
``<!-- summary:start -->`` and ``<!-- summary:end -->``, the table between them is replaced by the new one,
so the README that shows it is never typed by hand nor stale.

Where a run's settings come from, first found: its ``checkpoint.npz`` (settings since the run folder
existed), its ``weights.npz`` (``net_options`` and ``seed`` recorded since December 2026), or a
``settings.json`` beside them (what a run folder keeps once its bulk files are gone:
:func:`reference.app.runs.read_settings_json`).  The seed may also be the folder name's ``_seed<N>`` suffix.

It also writes ``runs.csv``: one row per run folder at any depth (:data:`RUNS_COLUMNS`), with the SHA-256
of its weights files (from the files, or from ``settings.json`` once they are gone) and the command that
trained it (from ``run.log``, else ``settings.json``).
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import os
import re
from dataclasses import dataclass

from .atomic import atomic_write_text
from ..config import load_config, load_config_text
from ..options import NetOptions
from .runs import (BEST_WEIGHTS, CHECKPOINT, REPLACED, RUN_LOG, SETTINGS, WEIGHTS, RunError, is_run_folder,
                   other_run_in_log, read_meta, read_npz, read_settings_json)

#: Columns of ``runs.csv``, one row per run.
RUNS_COLUMNS = ("run", "dataset", "network", "variant", "options", "seed", "epochs", "best_acc", "best_epoch",
                "last_acc", "seconds", "weights_sha256", "best_weights_sha256", "command")

#: Columns of ``summary.csv``.
SUMMARY_COLUMNS = ("group", "dataset", "network", "config", "options", "runs", "seeds", "epochs",
                   "best_mean", "best_std", "best_max", "last_mean", "last_std", "folders")


@dataclass
class RunResult:
    """One finished or unfinished run: where, what, and its accuracies (fractions in [0, 1])."""

    folder: str
    dataset: str
    network: str
    config: str
    options: str
    seed: int | None
    epochs: int
    best: float
    last: float
    #: the epochs the run was started for — its checkpoint's ``epochs`` while it has one (a run still
    #: training, or stopped early), else ``epochs`` (a finished run planned what it ran)
    planned_epochs: int
    #: the test accuracy of every epoch, in order (``best`` is their max, ``last`` the final one)
    accuracies: tuple = ()
    #: the config's other settings as (key, value) pairs, see _config_items; runs that differ in them
    #: are not seeds of one experiment (:func:`groups_of`)
    config_items: tuple = ()

    @property
    def group(self) -> str:
        return " | ".join(x for x in (self.dataset, self.network, self.config, self.options) if x)


#: Config keys that do not make two runs different experiments (``epochs`` since a run is summarised with
#: the epochs it has, ``data_path`` where the same dataset was read from) or that ``config`` already
#: shows (the trained batch size, which a command may override).
_NOT_THE_EXPERIMENT = {"Network.epochs", "Network.data_path", "Network.batch_size"}


def _config_items(raw: dict, prefix: str = "") -> tuple:
    """The settings of a config as sorted ``(dotted key, value)`` pairs, leaves only, without
    :data:`_NOT_THE_EXPERIMENT`."""
    items = []
    for k, v in raw.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            items.extend(_config_items(v, key + "."))
        elif key not in _NOT_THE_EXPERIMENT:
            items.append((key, repr(v) if isinstance(v, (list, tuple)) else v))
    return tuple(sorted(items, key=lambda kv: kv[0]))


def groups_of(runs: list[RunResult]) -> dict[str, list[RunResult]]:
    """The runs by experiment: their :attr:`RunResult.group`, split further where the members' configs
    differ in another setting (a threshold, a weight scale, the desired counts); such a group's label
    then ends with the settings that tell its runs apart (``... | Layers.hidden.threshold=2``)."""
    by_label: dict[str, list[RunResult]] = {}
    for run in runs:
        by_label.setdefault(run.group, []).append(run)
    out: dict[str, list[RunResult]] = {}
    for label, members in by_label.items():
        kinds = list(dict.fromkeys(r.config_items for r in members))
        if len(kinds) == 1:
            out[label] = members
            continue
        keys = sorted({k for kind in kinds for k, _ in kind})
        differ = [k for k in keys if len({dict(kind).get(k, "(none)") for kind in kinds}) > 1]
        for kind in kinds:
            d = dict(kind)
            tag = ", ".join(f"{k}={d.get(k, '(none)')}" for k in differ)
            out[f"{label} | {tag}"] = [r for r in members if r.config_items == kind]
    return out


def _network_name(cfg) -> str:
    """``15C5-P2-40C5-P2-300-10`` style description of a config's layers."""
    parts = []
    for _, c in cfg.layers:
        if c["type"] == "conv":
            parts.append(f"{c['out_channels']}C{c['kernel_size'][0]}")
        elif c["type"] == "pooling":
            parts.append(f"P{c['kernel_size']}")
        elif c["type"] == "linear":
            parts.append(str(c["n_outputs"]))
    return "-".join(parts)


def _settings(folder: str) -> dict:
    """``{"seed": ..., "net_options": {...}, "epochs": ...}`` of a run folder, from the first file that
    records them (checkpoint, weights, ``settings.json``); ``epochs`` is what the run was started for, from
    its checkpoint or its ``settings.json`` (None where neither says)."""
    side = os.path.join(folder, SETTINGS)
    recorded = read_settings_json(side) if os.path.exists(side) else None
    ck = os.path.join(folder, "checkpoint.npz")
    if os.path.exists(ck):
        full = _mapping(json.loads(str(read_npz(ck, "checkpoint")["meta_json"])), ck)
        meta = _mapping(full.get("settings", full), ck)  # format 2 nests them; the first format kept them flat
        rows = _mapping(full.get("progress") or {}, ck).get("metrics") if full.get("format") == 2 else None
        return {"seed": meta.get("seed"), "net_options": meta.get("net_options") or {}, "epochs": meta.get("epochs"),
                **{k: meta.get(k) for k in ("batch_size", "train_limit", "test_limit")},
                "command": recorded and recorded.get("command"), "recorded": ("checkpoint.npz", rows)}
    w = os.path.join(folder, "weights.npz")
    if os.path.exists(w):
        arrays = read_npz(w, "weights")
        meta = _mapping(json.loads(str(arrays["meta_json"])), w) if "meta_json" in arrays else {}
        if "net_options" in meta:
            last = [{"epoch": meta["epoch"], "test_acc": meta["test_acc"]}] if "test_acc" in meta else None
            return {"seed": meta.get("seed"), "net_options": meta["net_options"],
                    "epochs": recorded and recorded["epochs"], "command": recorded and recorded.get("command"),
                    "recorded": ("weights.npz", last), "best": _best_record(folder)}
    if recorded is not None:  # (the form of results/: settings.json, with best_weights.npz or no weights)
        return {**recorded, "best": _best_record(folder)}
    return {"seed": None, "net_options": {}}


def _best_record(folder: str) -> dict | None:
    """The ``epoch`` and ``test_acc`` its ``best_weights.npz`` records (None without one, or a record)."""
    best = os.path.join(folder, BEST_WEIGHTS)
    meta = _mapping(read_meta(best), best) if os.path.isfile(best) else {}
    return {"epoch": meta["epoch"], "test_acc": meta["test_acc"]} if "test_acc" in meta and "epoch" in meta else None


def _mapping(meta, path) -> dict:
    """``meta`` when it is a mapping (a file's recorded settings), else :class:`RunError` naming the file."""
    if not isinstance(meta, dict):
        raise RunError(f"{path}: its meta_json is {type(meta).__name__}, not a mapping of recorded fields")
    return meta


#: Largest metrics.csv a summary reads (a row per epoch is about 80 bytes).
MAX_METRICS_BYTES = 16 << 20


def _holds_metrics(folder: str) -> bool:
    """Whether ``folder`` has an entry named ``metrics.csv`` of any kind (a file, a link, a folder, a FIFO)."""
    return os.path.lexists(os.path.join(folder, "metrics.csv"))


def _may_hold_a_run(folder: str) -> bool:
    """Whether a summary looks at ``folder``: it holds a ``metrics.csv``, a run's checkpoint, weights or
    record, or an interrupted ``--overwrite``'s ``.replaced/`` (those without a metrics.csv are named as
    skipped, not left out without a word: a seed would vanish from a mean)."""
    return _holds_metrics(folder) or is_run_folder(folder) or os.path.lexists(os.path.join(folder, REPLACED))


def not_a_run(folder: str) -> str | None:
    """Why ``folder`` (which holds a ``metrics.csv``) does not count as a run, or None when it does.

    A run counts when it is finished or resumable: a readable ``config.yaml``, at least one epoch in
    ``metrics.csv`` with every test accuracy a number in [0, 1] and the rows its checkpoint or weights file
    records (:func:`_differs_from_record`), and its weights, checkpoint or record (``weights.npz``,
    ``checkpoint.npz`` or ``settings.json``)."""
    metrics = os.path.join(folder, "metrics.csv")
    if not _holds_metrics(folder):
        if os.path.lexists(os.path.join(folder, REPLACED)):
            return (f"an --overwrite stopped before its new run finished an epoch (the run it replaces waits in "
                    f"{REPLACED}/): train --resume {folder} settles it")
        return ("no metrics.csv (train --resume writes it again from the checkpoint)" if
                os.path.isfile(os.path.join(folder, CHECKPOINT)) else "no metrics.csv")
    if not os.path.isfile(metrics):  # a FIFO would block, /dev/zero never end (a link is followed)
        return "metrics.csv is not a regular file (a folder, a pipe or a device)"
    if os.path.getsize(metrics) > MAX_METRICS_BYTES:
        return f"metrics.csv holds {os.path.getsize(metrics) / 2**20:.0f} MiB, not a run's rows (a few KB)"
    if not is_run_folder(folder):
        return "no weights.npz, checkpoint.npz or settings.json (not a finished or resumable run)"
    try:
        cfg = load_config(os.path.join(folder, "config.yaml"))
    except Exception as err:  # missing or broken: ConfigError, OSError
        return f"config.yaml: {err}"
    why = _not_the_runs_files(folder, cfg)
    if why is not None:
        return why
    try:  # the options it records must be ones a network can be built with (an unknown variant is not a run)
        settings = _settings(folder)
        NetOptions.from_record(settings.get("net_options"), where="its recorded net_options")
    except (ValueError, TypeError, RunError, RecursionError) as err:
        return str(err) or type(err).__name__
    try:
        with open(os.path.join(folder, "metrics.csv"), encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        accs = [float(r["test_acc"]) for r in rows]
        epochs = [r["epoch"] for r in rows]
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError, csv.Error) as err:
        return f"metrics.csv is not a metrics file ({type(err).__name__}: {err})"
    if not rows:
        return "no epoch yet"
    wrong = next((i for i, e in enumerate(epochs) if e != str(i + 1)), None)  # train writes 1, 2, ..., n
    if wrong is not None:
        return (f"metrics.csv: row {wrong + 1} is epoch {epochs[wrong]!r}, not {wrong + 1} "
                "(epochs must run 1, 2, ... with no row repeated or missing)")
    bad = [i + 1 for i, a in enumerate(accs) if not 0.0 <= a <= 1.0]  # also NaN
    if bad:
        return f"metrics.csv: test_acc of epoch {bad[0]} is {accs[bad[0] - 1]!r}, not an accuracy"
    return (_differs_from_record(rows, *settings.get("recorded", (None, None)))
            or _differs_from_best(rows, settings.get("best")))


def _differs_from_best(rows: list[dict], best: dict | None) -> str | None:
    """Why ``metrics.csv``'s ``rows`` contradict the best epoch ``best_weights.npz`` records (``best``:
    its ``epoch`` and ``test_acc``; None when not read), or None.  Read where the run's checkpoint is gone
    (it holds every row): the best epoch's row must be the recorded one and no row above it, so a
    summary's best accuracy is the run's.  (An edit that lowers another row cannot be told then.)"""
    if not best:
        return None
    epoch, acc = best.get("epoch"), best.get("test_acc")
    if not isinstance(epoch, int) or not 1 <= epoch <= len(rows):
        return f"metrics.csv has {len(rows)} epochs, its best_weights.npz records epoch {epoch} as the best"
    if not _as_train_wrote("test_acc", rows[epoch - 1].get("test_acc"), acc):
        return (f"metrics.csv differs from what its best_weights.npz records: epoch {epoch}'s test_acc is "
                f"{rows[epoch - 1].get('test_acc')!s:.12} there, {acc!s:.12} recorded (edited, or of another run)")
    above = next((r for r in rows if float(r["test_acc"]) > float(f"{float(acc):.6g}")), None)
    if above is not None:
        return (f"metrics.csv: epoch {above['epoch']}'s test_acc {above['test_acc']} is above the best its "
                f"best_weights.npz records (epoch {epoch}, {float(acc):.6g}) (edited, or of another run)")
    return None


def _not_the_runs_files(folder: str, cfg) -> str | None:
    """Why ``config.yaml`` (loaded: ``cfg``) or a weights file is not the run's own, or None.

    The config inside ``checkpoint.npz`` (else inside ``weights.npz``) is the run's: a ``config.yaml``
    edited after the run started would group the run under values it did not train with.  The weights
    files must carry the checkpoint's run id: another run's copied in would be counted (``runs.csv``'s
    hashes) as this one's.  A resume refuses both (:func:`reference.app.train` and
    :meth:`reference.app.runs.RunFolder.check_files_are_the_runs`); a summary skips such a folder."""
    ck, weights = os.path.join(folder, CHECKPOINT), os.path.join(folder, WEIGHTS)
    own = next((p for p in (ck, weights) if os.path.isfile(p)), None)
    if own is not None:
        text = read_npz(own, "checkpoint" if own == ck else "weights", only=("config_yaml",)).get("config_yaml")
        if text is not None and load_config_text(str(text), where=f"{own} (config_yaml)").raw != cfg.raw:
            return (f"config.yaml differs from the config inside its {os.path.basename(own)} (edited after the "
                    "run started, or of another run)")
    if not os.path.isfile(ck):
        return None
    meta = read_meta(ck)
    run_id = (meta.get("settings") or {}).get("run_id") if isinstance(meta.get("settings"), dict) else None
    for name in (WEIGHTS, BEST_WEIGHTS):
        path = os.path.join(folder, name)
        other = read_meta(path).get("run_id") if run_id and os.path.isfile(path) else None
        if other and other != run_id:
            return f"{name} is of another run than its {CHECKPOINT} (run {other[:8]}..., the checkpoint's {run_id[:8]}...)"
    other = other_run_in_log(os.path.join(folder, RUN_LOG), run_id)
    if other:  # runs.csv's command would be the other run's
        return f"{RUN_LOG} logs sessions of another run than its {CHECKPOINT} (run {other[:8]}..., the checkpoint's {run_id[:8]}...)"
    return None


def _differs_from_record(rows: list[dict], source: str | None, recorded: list | None) -> str | None:
    """Why ``metrics.csv``'s ``rows`` are not the run's own, or None when they agree with what the run's
    ``source`` file records: every row (a checkpoint holds them all, :mod:`reference.app.runs`) or the
    last one (a weights file holds its epoch and test accuracy).  ``metrics.csv`` is derived from the
    checkpoint, so a difference means it was edited or copied from another run; a summary must not report
    numbers the run did not reach.  Values are compared as train wrote them (6 significant digits)."""
    if not recorded:
        return None
    if source == "checkpoint.npz" and len(recorded) != len(rows):
        return (f"metrics.csv has {len(rows)} epochs, its checkpoint.npz records {len(recorded)} "
                "(train --resume rewrites metrics.csv from the checkpoint)")
    pairs = zip(rows, recorded) if source == "checkpoint.npz" else [(rows[-1], recorded[-1])]
    for row, own in pairs:
        for key, value in own.items():
            if not _as_train_wrote(key, row.get(key), value):
                fix = " (train --resume rewrites metrics.csv from the checkpoint)" if source == "checkpoint.npz" else ""
                what = (f"its last row is epoch {row.get(key)!s:.12}, {value} recorded" if key == "epoch" else
                        f"epoch {own.get('epoch')}'s {key} is {row.get(key)!s:.12} there, {value!s:.12} recorded")
                return f"metrics.csv differs from what its {source} records: {what} (edited, or of another run){fix}"
    return None


def _as_train_wrote(key: str, written, recorded) -> bool:
    """Whether ``written`` (a metrics.csv field) is what train writes for the ``recorded`` value: the
    epoch as it is, the others to 6 significant digits (NaN as NaN)."""
    try:
        if key == "epoch":
            return str(written) == str(recorded)
        a, b = float(written), float(f"{float(recorded):.6g}")
    except (TypeError, ValueError):
        return False
    return a == b or math.isnan(a) and math.isnan(b)


#: What reading a folder's files may raise beyond :class:`RunError` when they are not what train wrote
#: (hand-edited, truncated, of another program): the folder is skipped with the error as the reason.
UNREADABLE = (OSError, ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError, csv.Error)


def _read_or_why(folder: str) -> tuple[RunResult | None, str | None]:
    """``(run, None)`` for a folder that counts as a run, ``(None, why)`` for one that does not or whose
    files cannot be read (:data:`UNREADABLE`): a summary never stops on one folder."""
    try:
        why = not_a_run(folder)
        return (_read_counted_run(folder), None) if why is None else (None, why)
    except (RunError, *UNREADABLE) as err:
        return None, f"{type(err).__name__}: {str(err)[:160]}"


def read_run(folder: str) -> RunResult | None:
    """The :class:`RunResult` of a run folder, or None when it does not count (:func:`not_a_run`)."""
    return None if not_a_run(folder) is not None else _read_counted_run(folder)


def _read_counted_run(folder: str) -> RunResult:
    """:func:`read_run` of a folder :func:`not_a_run` has found to count (its checks are not made again)."""
    with open(os.path.join(folder, "metrics.csv")) as fh:
        rows = list(csv.DictReader(fh))
    cfg = load_config(os.path.join(folder, "config.yaml"))
    net = cfg.network
    settings = _settings(folder)
    seed = settings.get("seed")
    if seed is None:
        m = re.search(r"_seed(\d+)$", os.path.basename(os.path.normpath(folder)))
        seed = int(m.group(1)) if m else None
    options = ", ".join(f"{k}={v}" for k, v in sorted((settings.get("net_options") or {}).items()))
    trained = _trained_with(settings, folder)
    batch = trained.get("batch_size") or net["batch_size"]
    limits = "".join(f", {k.replace('_', ' ')} {trained[k]}" for k in ("train_limit", "test_limit") if trained.get(k))
    config = (f"T {net['n_steps']}, tau_m {net['tau_m']:g}, tau_s {net['tau_s']:g}, lr {net['lr']:g}, "
              f"batch {batch}, {net['loss']} loss{limits}")
    accs = [float(r["test_acc"]) for r in rows]
    return RunResult(os.path.basename(os.path.normpath(folder)), net["dataset"], _network_name(cfg), config,
                     options or "defaults", seed, len(rows), max(accs), accs[-1],
                     int(settings.get("epochs") or len(rows)), tuple(accs), _config_items(cfg.raw))


def _trained_with(settings: dict, folder: str) -> dict:
    """The batch size and the train/test limits a run trained with (None where not given): from its
    checkpoint's settings, else from the command its ``settings.json`` or ``run.log`` records.  Runs that
    differ in them are not seeds of one experiment (a batch-2 run on 500 images was pooled with batch-100
    runs, under the config's "batch 100")."""
    import shlex

    if any(k in settings for k in ("batch_size", "train_limit", "test_limit")):
        return {k: settings.get(k) for k in ("batch_size", "train_limit", "test_limit")}
    command = settings.get("command") or _first_command(folder) or ""
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    out = {}
    for flag, key in (("--batch-size", "batch_size"), ("--train-limit", "train_limit"), ("--test-limit", "test_limit")):
        for i, w in enumerate(words):
            value = w.split("=", 1)[1] if w.startswith(flag + "=") else (words[i + 1] if w == flag and i + 1 < len(words) else None)
            if value is not None and value.isdigit():
                out[key] = int(value)
    return out


def _identities(folder: str, run: RunResult) -> list[tuple[str, str]]:
    """What makes two folders one run: ``("weights", SHA-256)`` of its weights (recorded in
    ``settings.json``, else of ``weights.npz``), and ``("metrics", SHA-256)`` of its ``metrics.csv`` with
    its seed (every epoch's losses, accuracies and seconds: a copy kept without its weights files has
    them, an independent run does not)."""
    out = []
    side = os.path.join(folder, SETTINGS)
    recorded = read_settings_json(side).get("weights_sha256") if os.path.exists(side) else None
    w = os.path.join(folder, WEIGHTS)
    weights = recorded or (_sha256_once(w) if os.path.isfile(w) else None)
    if weights:
        out.append(("weights", weights))
    h = hashlib.sha256(f"seed {run.seed}\n".encode())
    with open(os.path.join(folder, "metrics.csv"), "rb") as fh:
        h.update(fh.read())
    out.append(("metrics", h.hexdigest()))
    return out


def counted_folders(directory: str) -> list[tuple[str, RunResult | None, str | None]]:
    """``(folder, run, why)`` for every folder at any depth under ``directory`` that holds a run's files
    (:func:`_may_hold_a_run`), in the order of their paths: ``run`` when it counts (:func:`not_a_run`;
    its :attr:`RunResult.folder` is its path relative to ``directory``), else ``why`` not.  A copy of a
    folder counted before it (the same weights, or the same seed and metrics.csv) does not count, nor
    does a link to a folder (a run counts where it lies), nor an interrupted ``--overwrite``'s
    ``.replaced/``.  The one list the summary's groups and ``runs.csv`` both read, so they always name
    the same runs."""
    import dataclasses

    out, seen, walked = [], {}, []
    for here, dirs, _ in os.walk(directory):  # (links are not followed: they are listed below)
        dirs[:] = sorted(d for d in dirs if d != REPLACED)  # an interrupted --overwrite's old run is no run of its own
        walked += [(os.path.join(here, d), True) for d in dirs if os.path.islink(os.path.join(here, d))]
        if here != directory:
            walked.append((here, False))
    # the shallower first: a run directly under the directory is the original of a copy deeper down
    for folder, is_link in sorted(walked, key=lambda w: (w[0].count(os.sep), w[0])):
        if not _may_hold_a_run(folder):
            continue
        if is_link:
            out.append((folder, None, f"a link to {os.path.realpath(folder)}: a run counts in the folder where "
                                      f"it lies, not through a link"))
            continue
        name = os.path.relpath(folder, directory)
        run, why = _read_or_why(folder)
        identities = []
        if why is None:
            try:
                identities = _identities(folder, run)
            except (RunError, *UNREADABLE) as err:
                run, why = None, f"{type(err).__name__}: {str(err)[:160]}"
        same = next((i for i in identities if i in seen), None)
        if same is not None:  # a copied folder is not a second seed
            what = "weights" if same[0] == "weights" else "seed and metrics.csv"
            run, why = None, f"a copy of {seen[same]} (the same {what}, SHA-256 {same[1][:12]}...)"
        if why is None:
            seen.update((i, name) for i in identities)
            run = dataclasses.replace(run, folder=name)
        out.append((folder, run, why))
    return sorted(out, key=lambda entry: entry[0])


def read_runs(directory: str, skipped: list | None = None, counted: list | None = None) -> list[RunResult]:
    """The :class:`RunResult` of every run folder directly under ``directory`` (of
    :func:`counted_folders`, or ``counted``, its result), in the order of their names: the runs a
    summary's groups count.  ``skipped``, if given, receives ``(folder, why)`` for each folder of a run's
    files that does not count, and for each run deeper down (``runs.csv`` lists those, e.g. the reruns
    of ``results/reruns/``)."""
    runs = []
    for folder, run, why in counted_folders(directory) if counted is None else counted:
        if run is not None and os.sep in run.folder:
            run, why = None, (f"in a subfolder: the groups count only the runs directly under {directory} "
                              f"(summarize {os.path.dirname(folder)} to group it)")
        if run is not None:
            runs.append(run)
        elif skipped is not None:
            skipped.append((folder, why))
    return runs


def _sha256_once(path: str) -> str:
    """:func:`sha256_file`, computed once per file version (path, size, mtime) while the process lives:
    a summary reads each weights file for its group and again for runs.csv."""
    info = os.stat(path)
    return _sha256_cached(os.path.realpath(path), info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def sha256_file(path: str) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _first_command(folder: str) -> str | None:
    """The command of the first session in a run's ``run.log``, after the variables of its environment
    that decide threads and BLAS kernel (``OPENBLAS_CORETYPE=Haswell python -m reference train ...``);
    None without a ``run.log``."""
    path = os.path.join(folder, RUN_LOG)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    entry = json.loads(line)
                except (ValueError, RecursionError):
                    return None
                if not isinstance(entry, dict) or not isinstance(entry.get("command"), str) or not entry["command"]:
                    return None  # a line this project did not write: no command to report
                env = entry.get("env")
                env = " ".join(f"{k}={v}" for k, v in sorted(env.items())) if isinstance(env, dict) else ""
                return f"{env} {entry['command']}" if env else entry["command"]
    return None


def run_rows(directory: str, skipped: list | None = None, counted: list | None = None) -> list[dict]:
    """One :data:`RUNS_COLUMNS` row per run folder under ``directory`` (:func:`counted_folders`, or
    ``counted``, its result: the runs the summary's groups count), in the order of their paths; accuracies as
    ``metrics.csv``, ``seconds`` the training time summed over the epochs (empty when its metrics.csv has
    no such column).  ``skipped`` receives ``(folder, why)`` for the others."""
    rows = []
    for here, run, why in counted_folders(directory) if counted is None else counted:
        if run is not None:
            try:
                rows.append(_run_row(directory, here, run))
                continue
            except (RunError, *UNREADABLE) as err:
                why = f"{type(err).__name__}: {str(err)[:160]}"
        if skipped is not None:
            skipped.append((here, why))
    return rows


def _run_row(directory: str, here: str, run: RunResult) -> dict:
    """The :data:`RUNS_COLUMNS` row of the run folder ``here`` (:func:`run_rows`)."""
    with open(os.path.join(here, "metrics.csv"), encoding="utf-8") as fh:
        seconds = _seconds(csv.DictReader(fh))
    side = os.path.join(here, SETTINGS)
    recorded = read_settings_json(side) if os.path.exists(side) else {}
    opts = dict(_settings(here).get("net_options") or {})
    variant = opts.pop("variant", "final")
    hashes = {}
    for column, name in (("weights_sha256", WEIGHTS), ("best_weights_sha256", BEST_WEIGHTS)):
        path = os.path.join(here, name)
        hashes[column] = _sha256_once(path) if os.path.isfile(path) else (recorded.get(column) or "")
    best_epoch = 1 + max(range(len(run.accuracies)), key=lambda i: run.accuracies[i])  # the first best
    return {
        "run": os.path.relpath(here, directory).replace(os.sep, "/"), "dataset": run.dataset,
        "network": run.network, "variant": variant,
        "options": ", ".join(f"{k}={v}" for k, v in sorted(opts.items())) or "defaults",
        "seed": "" if run.seed is None else run.seed, "epochs": run.epochs,
        "best_acc": f"{run.best:.6f}", "best_epoch": best_epoch, "last_acc": f"{run.last:.6f}",
        "seconds": "" if seconds is None else f"{seconds:.1f}", **hashes,
        "command": _first_command(here) or recorded.get("command") or "",
    }


def _seconds(rows) -> float | None:
    """The training seconds summed over a metrics file's rows; None when a row has no such number (a
    metrics.csv without the column, or with text in it, is not one train wrote: its time is unknown)."""
    total = 0.0
    for r in rows:
        try:
            v = float(r.get("seconds"))
        except (TypeError, ValueError):
            return None
        if not math.isfinite(v) or v < 0:
            return None
        total += v
    return total


def runs_csv(rows: list[dict]) -> str:
    """The text of ``runs.csv`` for the rows of :func:`run_rows`."""
    out = io.StringIO()
    writer = csv.DictWriter(out, RUNS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _mean_std(xs):
    mean = sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else float("nan")
    return mean, std


def summarize(directory: str, skipped: list | None = None) -> list[dict]:
    """Read every run folder under ``directory``, write ``summary.csv``, ``summary.md`` and ``runs.csv``
    (:func:`run_rows`) there (and the table into its README.md between the marker lines, if it has
    them), and return the rows of the summary (one per
    group of seeds; accuracies in percent).  With no run folder, writes nothing.  ``ValueError``, before
    anything is written, for a README whose markers are unpaired or out of order.  ``skipped`` receives
    the folders that do not count as runs, with why (:func:`read_runs`)."""
    counted = counted_folders(directory)  # one reading for the groups and runs.csv
    runs = read_runs(directory, skipped, counted)
    rows = []
    for group, members in groups_of(runs).items():
        best_mean, best_std = _mean_std([100 * r.best for r in members])
        last_mean, last_std = _mean_std([100 * r.last for r in members])
        first = members[0]
        rows.append({
            "group": group, "dataset": first.dataset, "network": first.network,
            "config": first.config + group[len(first.group):].replace(" | ", "; ", 1),
            "options": first.options, "runs": len(members),
            "seeds": " ".join(str(r.seed) for r in members), "epochs": " ".join(str(r.epochs) for r in members),
            "best_mean": round(best_mean, 3), "best_std": round(best_std, 3),
            "best_max": round(max(100 * r.best for r in members), 3),
            "last_mean": round(last_mean, 3), "last_std": round(last_std, 3),
            "folders": " ".join(r.folder for r in members),
        })
    if not rows:
        return rows  # nothing to summarise: no files written
    readme = os.path.join(directory, "README.md")
    text = None
    if os.path.islink(readme):  # replacing it would turn the link into a file and leave its target stale
        raise ValueError(f"{readme} is a symbolic link; summarize writes its table only into a regular "
                         f"README.md: summarize into the folder that holds the file, or replace the link by it")
    if os.path.isfile(readme):
        try:
            with open(readme, encoding="utf-8", newline="") as fh:  # newline="": a CRLF file stays CRLF
                text = fh.read()
        except UnicodeDecodeError as err:
            raise ValueError(f"{readme} is not UTF-8 text (byte {err.start}); summarize writes its table into "
                             f"a README only between its marker lines: fix or move it") from None
        try:
            _block(text)  # checked before anything is written
        except ValueError as err:
            raise ValueError(f"{readme}: {err}") from None
    _refuse_foreign_outputs(directory)  # before anything is written
    every_run = runs_csv(run_rows(directory, counted=counted))  # made before anything is written, too
    out = io.StringIO()
    writer = csv.DictWriter(out, SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(os.path.join(directory, "summary.csv"), out.getvalue())
    atomic_write_text(os.path.join(directory, "runs.csv"), every_run)
    table = markdown(rows)
    atomic_write_text(os.path.join(directory, "summary.md"), table)
    if text is not None:
        shown = embed(text, table.replace("\n", "\r\n") if "\r\n" in text else table)
        if shown != text:
            atomic_write_text(readme, shown)
    return rows


#: The lines of a README between which :func:`summarize` writes its table.
BLOCK_START, BLOCK_END = "<!-- summary:start -->", "<!-- summary:end -->"


def _block(text: str):
    """``(start, end)`` offsets of the text between the marker lines of ``text``, or None without markers.

    A marker counts only as a whole line (trailing spaces and a CR allowed).  ``ValueError`` for a start
    line without an end line after it, or an end line without a start before it."""
    starts = [m for m in re.finditer(rf"^{re.escape(BLOCK_START)}[ \t]*\r?\n", text, re.M)]
    ends = [m for m in re.finditer(rf"^{re.escape(BLOCK_END)}[ \t]*\r?$", text, re.M)]
    if not starts and not ends:
        return None
    if len(starts) != 1 or len(ends) != 1 or ends[0].start() < starts[0].end():
        raise ValueError(f"expected one {BLOCK_START} line and, after it, one {BLOCK_END} line; "
                         f"found {len(starts)} and {len(ends)}")
    return starts[0].end(), ends[0].start()


def embed(text: str, table: str) -> str:
    """``text`` with the lines between its :data:`BLOCK_START` and :data:`BLOCK_END` lines replaced by
    ``table`` (given a final line end if it lacks one); unchanged when it has neither marker.
    ``ValueError`` as :func:`embedded`."""
    block = _block(text)
    if block is None:
        return text
    if not table.endswith("\n"):
        table += "\n"
    return text[:block[0]] + table + text[block[1]:]


def embedded(text: str) -> str | None:
    """The text between the marker lines of ``text`` (the table :func:`embed` wrote), or None when it has
    neither marker.  ``ValueError`` for markers out of order, unpaired or repeated."""
    block = _block(text)
    return None if block is None else text[block[0]:block[1]]


#: How ``summary.md`` begins (:func:`markdown`); an existing summary.md that does not is a user's file.
MARKDOWN_START = "Each run's best test accuracy over its epochs"


def _refuse_foreign_outputs(directory: str) -> None:
    """``ValueError`` when ``summary.csv``, ``runs.csv`` or ``summary.md`` in ``directory`` exists and is not
    what :func:`summarize` writes (a user's file of that name is never replaced)."""
    from .diagnostics import check_own_csv

    check_own_csv(os.path.join(directory, "summary.csv"), SUMMARY_COLUMNS[0], SUMMARY_COLUMNS)
    check_own_csv(os.path.join(directory, "runs.csv"), RUNS_COLUMNS[0], RUNS_COLUMNS)
    md = os.path.join(directory, "summary.md")
    if os.path.lexists(md):
        if os.path.islink(md) or not os.path.isfile(md):
            raise ValueError(f"{md} is not a regular file")
        with open(md, "rb") as fh:
            head = fh.read(len(MARKDOWN_START.encode()))
        if head and head != MARKDOWN_START.encode():
            raise ValueError(f"{md} exists and is not a summary this command wrote (it begins "
                             f"{head[:30].decode('utf-8', 'replace')!r}); move it, or summarize into another folder")


def markdown(rows: list[dict]) -> str:
    """The summary as a markdown table (the paper's protocol: mean, std and best of each run's best epoch)."""
    lines = [MARKDOWN_START + " (the paper's protocol), its mean ± sample std and best "
             "over the runs of a group, and the last epoch; epochs: the epochs each run has so far (a run still "
             "training counts with those).", "",
             "| dataset | network | config | options | runs (seeds) | epochs | best epoch: mean ± std | best of runs "
             "| last epoch: mean ± std |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        std = lambda v: "" if math.isnan(v) else f" ± {v:.2f}"
        lines.append(f"| {r['dataset']} | {r['network']} | {r['config']} | {r['options']} | {r['runs']} ({r['seeds']}) "
                     f"| {r['epochs']} | {r['best_mean']:.2f}%{std(r['best_std'])} | {r['best_max']:.2f}% "
                     f"| {r['last_mean']:.2f}%{std(r['last_std'])} |")
    return "\n".join(lines) + "\n"
