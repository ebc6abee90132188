"""Command line: ``python -m reference {train,evaluate,demo,gradients,gradcheck,bptt-compare,...} ...``.

Every command checks its inputs first.  A failure is one line on stderr, ``error: ...``, with exit code 2
(never a traceback from inside a kernel), and leaves nothing behind: every file is written atomically
(:mod:`reference.app.atomic`) and the run folder keeps its promises (:mod:`reference.app.runs`).  Ctrl-C during
``train`` saves a checkpoint and exits with 130.

The commands that need PyTorch or JAX (``gradcheck``, ``bptt-compare``, ``import-checkpoint``,
``export-checkpoint``) import them only when they run; a missing framework is one line saying how to
install it.  This is the one CLI module: :mod:`reference.twins` does not import it.
"""
from __future__ import annotations

import argparse
import math
import os
import shlex
import signal
import sys
import time

import numpy as np

from .atomic import WriteError, atomic_savez
from ..config import ConfigError, load_config
from ..params import WEIGHT_CLIP

EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad user input: printed as ``error: ...`` with exit code 2."""


# ---------------------------------------------------------------------------------- shared helpers
def _config(path):
    try:
        return load_config(path)
    except ConfigError as err:
        raise UsageError(str(err)) from None


def _load_npz(path: str, what: str) -> dict:
    from .runs import read_npz

    return read_npz(path, what)  # its CheckpointError is a RunError: one line, exit 2


def _read_weights(path) -> dict:
    """Weight arrays of a plain weights ``.npz`` or of this project's ``weights.npz`` / ``checkpoint.npz``."""
    from .runs import read_weights

    return read_weights(path)


def check_inputs(data: dict, config) -> tuple[np.ndarray, np.ndarray]:
    """Validate an inputs archive (``input`` float (N, C, H, W) or (N, C, H, W, T), ``labels`` int (N,))."""
    for key in ("input", "labels"):
        if key not in data:
            raise UsageError(f"inputs: missing array '{key}' (found {sorted(data)}); expected 'input' (N, C, H, W) "
                             f"float32 and 'labels' (N,) int")
    x, y = data["input"], data["labels"]
    c, h, w = config.input_shape
    t = config.params.n_steps
    if not np.issubdtype(x.dtype, np.floating):
        raise UsageError(f"inputs: 'input' must be floating point (normalised images), got {x.dtype}")
    if x.ndim and x.shape[0] == 0:
        raise UsageError(f"inputs: 'input' holds no images (shape {x.shape}); give at least one")
    if x.shape[1:] not in ((c, h, w), (c, h, w, t)):
        raise UsageError(f"inputs: 'input' has shape {x.shape}; this config expects (N, {c}, {h}, {w}) "
                         f"or (N, {c}, {h}, {w}, {t})")
    with np.errstate(over="ignore"):  # overflow is what we test for
        finite32 = np.all(np.isfinite(x.astype(np.float32)))
    if not finite32:
        raise UsageError("inputs: 'input' contains NaN or inf (or values beyond float32's range, ~3.4e38)")
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (x.shape[0],):
        raise UsageError(f"inputs: 'labels' must be integers of shape ({x.shape[0]},), got {y.dtype} {y.shape}")
    n_class = config.network["n_class"]
    if y.min() < 0 or y.max() >= n_class:
        raise UsageError(f"inputs: 'labels' must lie in 0..{n_class - 1}, got {y.min()}..{y.max()}")
    return x, y.astype(np.int64)


def check_weights(data: dict, config) -> dict:
    """Validate weight arrays against a config: same layer names, shapes, finite floats."""
    own = config.weight_shapes
    unknown, missing = sorted(set(data) - set(own)), sorted(set(own) - set(data))
    if unknown or missing:
        raise UsageError(f"weights: layer names do not match the config: unknown {unknown}, missing {missing}; "
                         f"the config's weighted layers are {list(own)}")
    for name, w in data.items():
        if w.shape != own[name]:
            raise UsageError(f"weights: layer '{name}' has shape {w.shape}, expected {own[name]} "
                             f"(linear (out, in), conv (out, in, kh, kw))")
        if not np.issubdtype(w.dtype, np.floating):
            raise UsageError(f"weights: layer '{name}' must be floating point, got {w.dtype}")
        if not np.all(np.isfinite(w)):
            raise UsageError(f"weights: layer '{name}' contains NaN or inf")
        largest = float(np.abs(w).max()) if w.size else 0.0
        if largest > MAX_ABS_WEIGHT:
            raise UsageError(f"weights: layer '{name}' holds {largest:.3g} in size; trained weights stay within "
                             f"+-{WEIGHT_CLIP:g} (the clip after every step), and beyond {MAX_ABS_WEIGHT:g} the "
                             f"currents only overflow float32")
    return data


#: Largest size (absolute value) of a weight a weights file may hold (training clips to +-WEIGHT_CLIP, 4;
#: far larger ones only overflow float32 in the first layer's product, after NumPy's warnings).
MAX_ABS_WEIGHT = 1e6


def _zip_members(path: str) -> list[str] | None:
    """The member names of the zip file ``path`` (an ``.npz``, a ``torch.save`` file), read from its
    directory only; None when it is not a zip."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def _weighted_layers(config) -> list[str]:
    """The names of ``config``'s layers that hold weights (conv and linear), as a weights file keys them."""
    return [name for name, c in config.layers if c["type"] in ("conv", "linear")]


def _is_gradients_archive(path: str, names, layers) -> bool:
    """What ``gradients`` writes: ``loss`` and ``grad/``, ``delta/``, ``output/`` arrays, nothing else,
    under its zip comment :data:`GRADIENTS_MARK` (a user's own archive of those keys, the ``--theirs`` of
    ``compare``, is not)."""
    from .atomic import zip_comment

    return (names is not None and "loss.npy" in names and any(n.startswith("grad/") for n in names)
            and all(n == "loss.npy" or n.split("/", 1)[0] in ("grad", "delta", "output") for n in names)
            and zip_comment(path) == GRADIENTS_MARK)


#: The zip comment of the archives the gradients command writes (numpy.load ignores it).
GRADIENTS_MARK = b"tsslbp-reference gradients"
#: The zip comment of the weights files import-checkpoint writes (numpy.load ignores it).
IMPORTED_MARK = b"tsslbp-reference import-checkpoint"
#: The key export-checkpoint adds beside ``net`` in the dict it saves (the authors' code reads ``net`` only).
EXPORTED_KEY, EXPORTED_BY = "written_by", "tsslbp-reference export-checkpoint"


def _is_imported_weights(path: str, names, layers) -> bool:
    """What ``import-checkpoint`` writes: one array per weighted layer of the config, nothing else, under
    its zip comment :data:`IMPORTED_MARK` (a user's ``{input, labels}``, a run's weights with their config,
    or a user's own weights of the same layer names are not)."""
    from .atomic import zip_comment

    return (names is not None and layers is not None and sorted(names) == sorted(f"{k}.npy" for k in layers)
            and zip_comment(path) == IMPORTED_MARK)


def _is_authors_checkpoint(path: str, names, layers) -> bool:
    """What ``export-checkpoint`` writes: a ``torch.save`` zip whose pickle holds ``net``,
    ``my_parameters.N`` keys and :data:`EXPORTED_BY` (an authors' training checkpoint, with its optimizer
    and epoch, has no such mark).  The pickle's bytes are searched for them, never unpickled."""
    import zipfile

    pickles = [n for n in names or () if n.endswith("/data.pkl")]
    if len(pickles) != 1:
        return False
    try:
        with zipfile.ZipFile(path) as z:
            if z.getinfo(pickles[0]).file_size > 1 << 20:  # a state_dict's pickle is a few KB
                return False
            data = z.read(pickles[0])
    except (zipfile.BadZipFile, OSError, KeyError, ValueError):
        return False
    return b"my_parameters." in data and b"net" in data and EXPORTED_BY.encode() in data


#: What each command's ``--out`` file is, for replacing an existing one; a test of the existing file
#: (its path, its zip members or None when it is no zip, the config's weighted layers or None) and the
#: words for the message.
OUT_KINDS = {
    "gradients": (_is_gradients_archive, "a gradients archive this command wrote (loss and grad/, delta/, output/ "
                                         "arrays only, marked in its zip comment)"),
    "weights": (_is_imported_weights, "a weights file import-checkpoint wrote (one array per layer of --config, "
                                      "marked in its zip comment)"),
    "pth": (_is_authors_checkpoint, "an authors'-format checkpoint export-checkpoint wrote ({'net': my_parameters.N, "
                                    f"'{EXPORTED_KEY}': '{EXPORTED_BY}'}})"),
}


def _output_file(path: str, *inputs, kind: str | None = None, layers=None) -> str:
    """Check that ``path`` may be written as a new or replaced regular file, before any work is done.

    Refused: a missing folder; a folder; anything but a regular file (a device such as /dev/null, a FIFO, a
    symlink: the atomic rename would replace the node itself); one of the command's own ``inputs``; a file
    of a run folder (``weights.npz``, ``checkpoint.npz``, ... beside a checkpoint): results are never
    overwritten by another command; and, with ``kind`` (:data:`OUT_KINDS`), an existing file that is not
    what the command writes (a user's text, a dataset, a run's weights with their config): only a file of
    the command's own kind is replaced.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        above = folder
        while above and not os.path.lexists(above) and above != os.path.dirname(above):
            above = os.path.dirname(above)
        if os.path.lexists(above) and not os.path.isdir(above):
            raise UsageError(f"--out {path}: {above} is a file, not a folder")
        raise UsageError(f"output folder does not exist: {folder}")
    if os.path.isdir(path):
        raise UsageError(f"--out {path} is a folder; give a file name")
    _outside_run_folders(path, folder)
    if os.path.lexists(path):
        if os.path.islink(path) or not os.path.isfile(path):
            raise UsageError(f"--out {path} exists and is not a regular file (a link, device or pipe); give a file name")
        for src in inputs:
            if src and os.path.exists(src) and os.path.samefile(src, path):
                raise UsageError(f"--out {path} is one of this command's inputs; give another file name")
        if kind is not None and os.path.getsize(path) > 0:
            ours, what = OUT_KINDS[kind]
            if not ours(path, _zip_members(path), layers):
                raise UsageError(f"--out {path} exists and is not {what}, which is all this command replaces; "
                                 f"give another file name (or remove it)")
    return path


def _outside_run_folders(out: str, folder: str) -> None:
    """:class:`UsageError` when ``folder``, where ``--out out`` would write, is a run folder
    (:func:`~reference.app.runs.is_run_folder`): only train and demo write there, so no other command's
    result ever replaces or sits among a run's files."""
    from .runs import is_run_folder

    if is_run_folder(folder):
        raise UsageError(f"--out {out} is in the run folder {folder}, where only train writes; give a place "
                         f"outside run folders")


def _own_outputs(csv_path: str, columns, *beside: str) -> None:
    """Refuse (before any work) to replace ``csv_path`` unless it is absent or a CSV of the command's
    ``columns`` (:func:`~reference.app.diagnostics.check_own_csv`), and the files ``beside`` it unless they
    are absent or that CSV is there too (they were written together)."""
    from .diagnostics import check_own_csv

    try:
        check_own_csv(csv_path, columns[0], columns)
    except ValueError as err:
        raise UsageError(f"{err}; give another --out") from None
    from .plots import not_a_png

    for path in beside:
        if os.path.lexists(path) and not os.path.isfile(csv_path):
            raise UsageError(f"{path} exists without the {os.path.basename(csv_path)} this command writes beside "
                             f"it: it is not this command's; give another --out")
        if path.endswith(".png") and not_a_png(path):
            raise UsageError(f"{path} exists and is not a PNG image this command drew; give another --out")


def _output_folder(path: str) -> str:
    """Create the output folder ``path`` (or accept an existing one); a file in the way is an error."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise UsageError(f"--out {path} is a file; give a folder")
    os.makedirs(path, exist_ok=True)
    return path


def _net_options(args) -> dict:
    """The Network options the user gave explicitly (None means "not given"), checked by
    :class:`~reference.options.NetOptions` (when resuming, together with the run's own, by ``train``)."""
    from ..options import NetOptions

    opts = {}
    for key in ("warmup", "target_filter", "backward", "dropout_unit", "input_encoding", "variant"):
        if getattr(args, key, None) is not None:
            opts[key] = getattr(args, key)
    if getattr(args, "no_inter", False):
        opts["inter"] = False
    if getattr(args, "no_intra", False):
        opts["intra"] = False
    if getattr(args, "rate_threshold", None) is not None:
        opts["rate_threshold"] = args.rate_threshold
    if not getattr(args, "resume", None):  # a resumed run's own options complete these: train checks them
        try:
            NetOptions(**opts)
        except ValueError as err:
            raise UsageError(str(err)) from None
    return opts


def _options_for(ck: dict, given: dict, what: str):
    """The options of the run a loaded file (:func:`reference.app.runs.load_checkpoint`) recorded, with the
    options given on the command line (``given``) changing them; a combination that does not exist is
    one line naming ``what``."""
    if not given:
        return ck["options"]
    try:
        return ck["options"].replace(**given)
    except ValueError as err:
        raise UsageError(f"{what}'s run options {ck['options'].record() or '(defaults)'} with {given}: {err}") from None


def _batch(args, config):
    """Inputs and labels: from ``--inputs`` or the first ``--batch`` images of the dataset's test split."""
    if args.inputs:
        x, y = check_inputs(_load_npz(args.inputs, "inputs"), config)
        return x, y, f"{len(y)} samples from {args.inputs}"
    from .train import load_split

    name = config.network["dataset"]
    if name is None:
        raise UsageError("the config names no dataset; give --inputs X.npz")
    split = load_split(name, "test", limit=args.batch, data_dir=args.data_dir, verbose=False, config=config)
    return (split.images[:len(split.labels)], split.labels,
            f"the first {len(split.labels)} {name} test samples ({split.source})")


def _require(framework):
    from ..twins import require

    try:
        require(framework)
    except ImportError as err:
        raise UsageError(str(err)) from None


# ------------------------------------------------------------------------------------------- gradients
def compute_gradients(config, weights: dict, inputs: np.ndarray, labels: np.ndarray, dtype=np.float32, **options) -> dict:
    """Loss, weight gradients, layer outputs and deltas of one batch, as the archive of ``gradients`` holds them.

    ``options``: the network's options, as :class:`~reference.network.Network` takes them (keywords, or
    ``options=NetOptions(...)``).

    Returns a dict: ``loss`` (0-d float64), ``grad/<layer>`` (authors' weight layout), ``output/<layer>`` and
    ``delta/<layer>`` (N, C, H, W, T).
    """
    from ..network import Network

    net = Network(config, dtype=dtype, **options)
    net.set_weights(weights)
    loss, grads, _ = net.gradients(inputs, labels, train=False)
    out = {"loss": np.array(loss, dtype=np.float64)}
    out.update({f"grad/{k}": v for k, v in grads.items()})
    out.update({f"output/{k}": v for k, v in net.layer_outputs().items()})
    out.update({f"delta/{k}": v for k, v in net.layer_deltas().items()})
    return out


def cmd_gradients(args) -> int:
    config = _config(args.config)
    _output_file(args.out, args.inputs, args.weights, args.config, kind="gradients")
    inputs, labels = check_inputs(_load_npz(args.inputs, "inputs"), config)
    ck = _load_file(args.weights, config)
    weights = check_weights(ck["weights"], config)
    options = _options_for(ck, _net_options(args), args.weights)
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below, by quantity
        result = compute_gradients(config, weights, inputs, labels, dtype=args.dtype, options=options)
    bad = [k for k, v in result.items() if np.asarray(v).dtype.kind == "f" and not np.all(np.isfinite(v))]
    if bad:
        raise UsageError(f"{len(bad)} of the {len(result)} quantities hold NaN or inf ({', '.join(bad[:4])}"
                         f"{', ...' if len(bad) > 4 else ''}): the inputs or weights overflow {args.dtype}; "
                         f"nothing written")
    atomic_savez(args.out, result, comment=GRADIENTS_MARK)
    recorded, given = ck["options"].record(), _net_options(args)
    from_file = {k: v for k, v in recorded.items() if k not in given}
    parts = ([f"{from_file} as {args.weights} records them"] if from_file else []) + \
        ([f"{given} from the command line"] if given else [])
    note = f" (options {'; '.join(parts)})" if parts else ""
    print(f"loss {float(result['loss']):.6g}; wrote {len(result)} arrays to {args.out}{note}")
    differs = _config_differs(args.config, config, ck, args.weights)
    if differs:
        print(f"note: {differs}: these gradients are for --config", file=sys.stderr)
    return 0


def _config_differs(config_path, config, ck, path) -> str | None:
    """What differs between ``--config`` and the config a weights file keeps inside it (None when the
    file keeps none, or the same): evaluate, diagnose and gradients all say so."""
    own = ck.get("own_config")
    if config is None or own is None or own.raw == config.raw:
        return None
    changed = sorted(k for k in set(own.network) | set(config.network) if own.network.get(k) != config.network.get(k))
    parts = (["Network: " + ", ".join(changed)] if changed else []) + (
        ["its layers"] if own.raw.get("Layers") != config.raw.get("Layers") else [])
    return f"--config {config_path} differs from the config inside {path} ({'; '.join(parts) or 'its other keys'})"


def cmd_compare(args) -> int:
    from .compare import compare, report

    if not (args.rtol > 0 and math.isfinite(args.rtol)):
        raise UsageError(f"--rtol must be a positive finite number (inf would pass anything), got {args.rtol}")
    if args.entries < 0:
        raise UsageError(f"--entries must be 0 or more (how many of the worst entries to print), got {args.entries}")
    ours, theirs = _load_npz(args.ours, "ours"), _load_npz(args.theirs, "theirs")
    rows, only_ours, only_theirs = compare(ours, theirs)
    if not rows:
        raise UsageError(f"{args.ours} and {args.theirs} share no quantity (keys: {sorted(ours)} vs {sorted(theirs)}); "
                         f"both should be in the gradients command's format (loss, output/<layer>, delta/<layer>, "
                         f"grad/<layer>)")
    text, ok = report(rows, only_ours, only_theirs, args.rtol, ours, theirs, args.entries)
    print(text, end="")
    if only_ours and not args.allow_missing:
        print(f"{args.theirs} lacks {len(only_ours)} quantities of {args.ours} ({', '.join(only_ours[:5])}"
              f"{', ...' if len(only_ours) > 5 else ''}): exit 1; --allow-missing compares a partial archive")
        return 1
    return 0 if ok else 1


# ----------------------------------------------------------------------------------- train / evaluate
def cmd_train(args) -> int:
    from .train import train

    if args.diagnostics is not None and args.diagnostics < 0:
        raise UsageError(f"--diagnostics N: N is how many training samples to measure after each epoch (0: none), "
                         f"got {args.diagnostics}")
    if args.resume:
        if args.out or args.overwrite:
            raise UsageError("--resume DIR continues the run in DIR: --out and --overwrite do not go with it")
        out = args.resume
        config = _config(args.config) if args.config else None
    else:
        if not args.config:
            raise UsageError("train: give --config CONFIG.yaml (or --resume DIR)")
        config = _config(args.config)
        seed = 0 if args.seed is None else args.seed
        out = args.out or os.path.join("runs", f"{os.path.splitext(os.path.basename(args.config))[0]}-seed{seed}")
    result = train(config, out_dir=out, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                   resume=bool(args.resume), overwrite=args.overwrite, data_dir=args.data_dir,
                   train_limit=args.train_limit, test_limit=args.test_limit, progress=not args.no_progress,
                   max_seconds=args.max_seconds, net_options=_net_options(args) or None,
                   diagnostics=args.diagnostics, engine=args.engine, device=args.device,
                   command=getattr(args, "command_line", None))
    if not result["writer"]:  # another process of a distributed run: rank 0 reports
        return EXIT_INTERRUPTED if result["interrupted"] else 0
    if result["kept"]:
        print(f"run folder: {out}")
    if result["interrupted"]:
        return EXIT_INTERRUPTED
    if "test_acc" in result:
        print(f"accuracy={result['test_acc']:.6f}")
    return 0


def cmd_evaluate(args) -> int:
    from .blas import recorded_accuracy_note
    from .train import evaluate, load_split

    config = _config(args.config) if args.config else None
    given = {"variant": args.variant} if args.variant else {}
    net, cfg, ck = _load_run_weights(args.checkpoint, config, given)  # every option the run recorded
    dataset = args.dataset or cfg.network["dataset"]
    split = load_split(dataset, args.split, args.limit, args.data_dir, config=cfg)
    t0 = time.perf_counter()
    loss, acc, _ = evaluate(net, split, progress=not args.no_progress)
    print(f"{dataset} {args.split}: {len(split.labels)} samples from {split.source}; loss {loss:.4f}; "
          f"{len(split.labels) / (time.perf_counter() - t0):.0f} samples/s")
    differs = _config_differs(args.config, config, ck, args.checkpoint)
    if args.variant and args.variant != ck["options"].variant:  # the loss is that variant's, not the run's
        print(f"note: --variant {args.variant} differs from the run's variant ({ck['options'].variant}): the loss "
              f"above is that rule's; leave --variant out to evaluate the run as it was trained")
    if differs:
        print(f"{differs}: the accuracy the run recorded is for its own config; leave --config out to "
              f"evaluate the run as it was trained")
    elif args.split == "test" and dataset == cfg.network["dataset"]:
        meta = ck["meta"] if "progress" not in ck["meta"] else _checkpoint_record(ck["meta"], args.limit, len(split.labels))
        weights = os.path.join(os.path.dirname(args.checkpoint), "weights.npz")
        print(recorded_accuracy_note(meta, acc, len(split.labels)) if meta is not None else (
            f"not compared with a recorded accuracy: {args.checkpoint} was saved inside an epoch, whose "
            f"weights no test measured " + (f"(evaluate {weights}, the last finished epoch's)" if os.path.isfile(weights)
                                            else "(no epoch of the run has finished yet)")))
    else:
        print(f"not compared with a recorded accuracy: train records the accuracy on the {cfg.network['dataset']} "
              f"test split" + (f", this is the {args.split} split" if args.split != "test" else f", this is {dataset}"))
    print(f"accuracy={acc:.6f}")
    return 0


def _checkpoint_record(meta: dict, limit: int | None, samples: int) -> dict | None:
    """A checkpoint's record of its weights' test accuracy, in a weights file's terms (``epoch``,
    ``test_acc``, ``test_samples``, ``engine``; :func:`reference.app.blas.recorded_accuracy_note`): the last
    epoch's row when the checkpoint was saved at an epoch's end; None when it was saved inside an epoch
    (Ctrl-C), whose weights no test measured.  The test images are the
    run's ``test_limit`` first ones, or the whole split: ``samples`` when ``--limit`` did not cut it, else
    ``"all the"`` (a checkpoint does not record how many that was)."""
    settings, progress = meta.get("settings") or {}, meta.get("progress") or {}
    rows = progress.get("metrics") or []
    if progress.get("batch") or not rows:
        return None
    n = settings.get("test_limit") or (samples if limit is None or samples < limit else "all the")
    return {"epoch": rows[-1].get("epoch"), "test_acc": rows[-1].get("test_acc"), "test_samples": n,
            "engine": settings.get("engine")}


def _load_file(path, config):
    """:func:`reference.app.runs.load_checkpoint`, its errors as one line."""
    from .runs import CheckpointError, load_checkpoint

    try:
        return load_checkpoint(path, config)
    except CheckpointError as err:
        raise UsageError(str(err)) from None


def _load_run_weights(path, config, given: dict | None = None):
    """(Network with the weights of ``path``, its config, the loaded file) for a run's weights or
    checkpoint file; the network takes every option the run recorded (variant, target, encoding,
    prediction, ...; :class:`~reference.options.NetOptions`), changed by ``given``."""
    from ..network import Network

    ck = _load_file(path, config)
    cfg = ck["config"]
    net = Network(cfg, options=_options_for(ck, given or {}, path))
    try:
        net.set_weights(check_weights(ck["weights"], cfg))
    except ValueError as err:
        raise UsageError(f"{path}: {err}") from None
    return net, cfg, ck


def cmd_diagnose(args) -> int:
    from .diagnostics import append_row, check_own_csv, diagnostics, is_diagnostics_column
    from .train import load_split

    if args.samples < 1:
        raise UsageError("--samples must be at least 1")
    config = _config(args.config) if args.config else None
    if args.out:  # append only to a file diagnose wrote; anything else is refused before any work
        _outside_run_folders(args.out, os.path.dirname(os.path.abspath(args.out)))
        try:
            check_own_csv(args.out, "weights", is_diagnostics_column)
        except ValueError as err:
            raise UsageError(f"--out {err}; give another file") from None
    split = first = None
    rows, nets = [], []
    for path in args.checkpoints:
        net, cfg, ck = _load_run_weights(path, config)
        differs = _config_differs(args.config, config, ck, path)
        if differs:
            print(f"note: {differs}: diagnosing it with --config", file=sys.stderr)
        nets.append(net)
        if split is None:
            split = load_split(cfg.network["dataset"], "train", args.samples, args.data_dir, verbose=False, config=cfg)
            first = (path, cfg)
        elif (cfg.network["dataset"], cfg.input_shape) != (first[1].network["dataset"], first[1].input_shape):
            raise UsageError(f"{path} is a network of {cfg.network['dataset']} {cfg.input_shape}, {first[0]} of "
                             f"{first[1].network['dataset']} {first[1].input_shape}: diagnose measures the files on "
                             f"the same samples, so they must take the same data; run it once per dataset")
        row = {"weights": path, **diagnostics(net, split.images, split.labels)}
        rows.append(row)
        if args.out:
            append_row(args.out, row)
    keys = list(dict.fromkeys(k for r in rows for k in r if not isinstance(r[k], str)))  # label_trains: --trains
    width = max(len(k) for k in keys)
    print(f"{len(split.labels)} training samples from {split.source}")
    heads = [(os.path.basename(os.path.dirname(r["weights"]) or "."), os.path.basename(r["weights"])) for r in rows]
    col = max([14] + [len(h) for pair in heads for h in pair])  # a column as wide as its names: none is cut
    for line in (0, 1):
        print(f"{'':<{width}}  " + "  ".join(f"{pair[line]:>{col}}" for pair in heads))
    for k in keys:
        print(f"{k:<{width}}  " + "  ".join(f"{r[k]:>{col}.6g}" if k in r else f"{'-':>{col}}" for r in rows))
    if args.trains:
        from .diagnostics import label_trains

        for path, net in zip(args.checkpoints, nets):
            if net.loss_name == "kernel":
                against = f"target {np.round(net.target.astype(np.float64), 4).tolist()}"
            elif net.loss_name == "count":
                against = f"count loss, desired count {net.config.network['desired_count']:g}"
            else:
                raise UsageError("--trains needs a kernel- or count-loss config (it scores trains by their loss)")
            print(f"\nlabel neuron's spike trains, {path} ({against}):")
            for train, share, loss in label_trains(net, split.images, split.labels)[:args.trains]:
                print(f"  {train}  {share:7.2%}  label loss {loss:.4f}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    result = run_demo(out_dir=args.out, epochs=args.epochs, seed=args.seed, data_dir=args.data_dir,
                      train_limit=args.train_limit, test_limit=args.test_limit, progress=not args.no_progress)
    return EXIT_INTERRUPTED if result["interrupted"] else 0


# ------------------------------------------------------------------------- commands with PyTorch / JAX
def _weights(args, config, x, y):
    """Weights from ``--weights`` (or initial ones from ``--seed``), then ``--steps`` AdamW steps on the batch.

    Returns (weights, a description, the NetOptions): the options a run's ``--weights`` file recorded,
    changed by those given on the command line (the steps train with them too)."""
    from ..network import Network
    from ..optim import AdamW, train_step
    from ..options import NetOptions

    given = _net_options(args)
    ck = _load_file(args.weights, config) if args.weights else None
    options = _options_for(ck, given, args.weights) if ck else NetOptions(**given)
    net = Network(config, dtype=np.float32, seed=args.seed, options=options)
    what = f"initial (seed {args.seed})"
    if ck:
        net.set_weights(check_weights(ck["weights"], config))
        what = args.weights
    if args.steps:
        opt = AdamW(net.weights, lr=config.network["lr"])
        for _ in range(args.steps):
            train_step(net, x.astype(np.float32), y, opt)
        what += f", then {args.steps} AdamW steps on this batch"
    return {k: v.copy() for k, v in net.weights.items()}, what, options


def cmd_gradcheck(args) -> int:
    from ..twins import FRAMEWORKS, backend
    from ..twins.check import check_finite_differences, check_network, check_parts, format_rows

    config = _config(args.config)
    frameworks = FRAMEWORKS if args.framework == "all" else (args.framework,)
    for fw in frameworks:
        _require(fw)
    x, y, data = _batch(args, config)
    weights, what, net_options = _weights(args, config, x, y)
    options = net_options.record()
    dtypes = ("float64", "float32") if args.precision == "both" else (args.precision,)
    print(f"gradcheck {args.config}: {data}; weights {what}; options {options or 'default'}")
    rows = [] if args.skip_parts else check_finite_differences()
    for fw in frameworks:
        if not args.skip_parts:
            rows += check_parts(backend(fw, "float64"))
        for dt in dtypes:
            rows += check_network(config, backend(fw, dt), weights, x, y, dtype=dt, options=options)
    print(format_rows(rows))
    failed = [r for r in rows if not r.ok]
    if failed:
        print(f"\nFAILED: {len(failed)} of {len(rows)} checks above tolerance")
        return EXIT_CHECK_FAILED
    print(f"\nall {len(rows)} checks within tolerance")
    return 0


def cmd_summarize(args) -> int:
    from .runs import REPLACED, is_run_folder
    from .summary import summarize

    if not os.path.isdir(args.directory):
        raise UsageError(f"{args.directory} is not a folder of run folders")
    if is_run_folder(args.directory) or any(os.path.lexists(os.path.join(args.directory, name))
                                            for name in ("metrics.csv", REPLACED)):
        parent = os.path.dirname(os.path.abspath(args.directory))
        raise UsageError(f"{args.directory} is a run folder itself; summarize reads the run folders under a "
                         f"folder: python -m reference summarize {shlex.quote(os.path.relpath(parent))}")
    skipped = []
    try:
        rows = summarize(args.directory, skipped)
    except ValueError as err:
        raise UsageError(str(err)) from None
    for folder, why in skipped:
        print(f"skipped {folder}: {why}", file=sys.stderr)
    for row in rows:  # the paper's statistics are over seeds; a seed twice is the same run trained again
        seeds, folders = row["seeds"].split(), row["folders"].split()
        twice = sorted({s for s in seeds if seeds.count(s) > 1 and s != "None"})
        for seed in twice:
            same = [f for f, s in zip(folders, seeds) if s == seed]
            print(f"note: seed {seed} appears in {len(same)} runs of one group ({', '.join(same)}): their mean and "
                  f"std count it {len(same)} times, not once per independent seed", file=sys.stderr)
    if not rows:
        raise UsageError(f"no run to summarize under {args.directory}: " + (
            f"the {len(skipped)} folder(s) with a metrics.csv were skipped (above)" if skipped else
            "no folder holds a metrics.csv"))
    from .summary import markdown

    print(markdown(rows), end="")
    readme = os.path.join(args.directory, "README.md")
    also = ", and the table into README.md" if os.path.isfile(readme) and _has_summary_block(readme) else ""
    print(f"wrote {os.path.join(args.directory, 'summary.csv')}, summary.md ({len(rows)} groups) and runs.csv "
          f"(one row per run){also}")
    return 0


def _has_summary_block(readme: str) -> bool:
    from .summary import BLOCK_START

    with open(readme, encoding="utf-8", errors="replace") as fh:
        return BLOCK_START in fh.read()


def _bptt_columns() -> tuple[str, ...]:
    """Columns of ``bptt_compare.csv``: the fields of :class:`reference.twins.bptt.BpttRow` and ``norm_ratio``."""
    from dataclasses import fields

    from ..twins.bptt import BpttRow

    return (*(f.name for f in fields(BpttRow)), "norm_ratio")


def _write_bptt_csv(rows, path) -> None:
    """The rows of :func:`reference.twins.bptt.compare_bptt` as CSV (``t = -1`` marks the weight-gradient rows)."""
    import csv
    import io
    from dataclasses import asdict

    from .atomic import atomic_write_text

    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=_bptt_columns(), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**asdict(r), "norm_ratio": r.norm_ratio})
    atomic_write_text(path, text.getvalue())


def cmd_bptt(args) -> int:
    from ..twins import backend
    from ..twins.bptt import compare_bptt, format_bptt
    from .plots import plot_bptt

    config = _config(args.config)
    _require(args.framework)
    if args.out:
        if os.path.exists(args.out) and not os.path.isdir(args.out):
            raise UsageError(f"--out {args.out} is a file; give a folder")
        parent = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(parent):
            raise UsageError(f"--out {args.out}: its parent folder {parent} does not exist")
        for where in (args.out, parent):  # neither the folder itself nor a folder made inside a run
            _outside_run_folders(args.out, where)
        _own_outputs(os.path.join(args.out, "bptt_compare.csv"), _bptt_columns(), os.path.join(args.out, "bptt_compare.png"))
    x, y, data = _batch(args, config)
    weights, what, options = _weights(args, config, x, y)
    rows, ts, _ = compare_bptt(config, backend(args.framework, "float64"), weights, x, y, options.record())
    print(f"TSSL-BP vs surrogate-gradient BPTT, {args.config}: {data}; weights {what}; loss {ts['loss']:.6g}")
    print(format_bptt(rows))
    if args.out:
        from .atomic import signals_held

        _output_folder(args.out)
        with signals_held():  # the pair is written whole: a Ctrl-C between them left one run's CSV, another's PNG
            _write_bptt_csv(rows, os.path.join(args.out, "bptt_compare.csv"))
            png = plot_bptt(rows, os.path.join(args.out, "bptt_compare.png"), os.path.basename(args.config))
            print(f"wrote {png} and bptt_compare.csv", flush=True)  # said before a held Ctrl-C ends the command
    return 0


def cmd_import_checkpoint(args) -> int:
    config = _config(args.config)
    _output_file(args.out, args.checkpoint, args.config, kind="weights", layers=_weighted_layers(config))
    _require("torch")
    from .authors_checkpoint import import_checkpoint

    try:
        weights = import_checkpoint(args.checkpoint, config)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    atomic_savez(args.out, weights, comment=IMPORTED_MARK)
    print(f"wrote {len(weights)} layers ({', '.join(weights)}) to {args.out}")
    return 0


def cmd_export_checkpoint(args) -> int:
    config = _config(args.config)
    _output_file(args.out, args.weights, args.config, kind="pth")
    _require("torch")
    from .authors_checkpoint import export_checkpoint

    data = check_weights(_read_weights(args.weights), config)  # no NaN/inf exported: import would reject it
    try:
        export_checkpoint(data, config, args.out, **{EXPORTED_KEY: EXPORTED_BY})
    except ValueError as err:
        raise UsageError(str(err)) from None
    print(f"wrote {args.out} (authors' format: {{'net': state_dict, '{EXPORTED_KEY}': '{EXPORTED_BY}'}} with "
          f"my_parameters.0..{len(data) - 1})")
    return 0


# ---------------------------------------------------------------------------------------------- parser
def _add_variant_option(p):
    p.add_argument("--variant", choices=["final", "paper2020"],
                   help="the TSSL-BP rule: the authors' final code (default) or their code of the NeurIPS "
                        "camera-ready, with its target and conv init; use configs/paper2020/ with it "
                        "(docs/paper-notes.md section 7)")


def _rate(text: str) -> float:
    """argparse type of ``--rate-threshold``: a number in [0, 1]."""
    from ..paper2020 import check_rate_threshold

    try:
        return check_rate_threshold(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1] (a firing rate), got {text!r}") from None


def _add_tsslbp_options(p):
    g = p.add_argument_group("TSSL-BP options (docs/paper-notes.md section 6)")
    _add_variant_option(g)
    g.add_argument("--warmup", choices=["per-neuron", "always", "never"],
                   help="warm-up surrogate: the authors' per-neuron rule (default), everywhere, or never")
    g.add_argument("--no-inter", action="store_true", help="drop the inter-neuron (spike timing) term; the intra "
                   "term then has nothing to carry, so only warm-up deltas remain")
    g.add_argument("--no-intra", action="store_true", help="drop the intra-neuron (reset and leak) term")
    g.add_argument("--rate-threshold", type=_rate, metavar="R",
                   help="with --variant paper2020: a layer takes the TSSL-BP delta when its firing rate over the "
                        "batch is above R, else the warm-up surrogate (default 0.1, the camera-ready's; 0.05 in "
                        "their code of December 2020; 0: TSSL-BP in every layer that fires)")
    g.add_argument("--backward", choices=["tsslbp", "bptt", "bptt-detached"],
                   help="the spiking layers' backward: TSSL-BP (default) or the surrogate-gradient BPTT baseline, "
                        "through the reset or with it detached (as SpyTorch and snnTorch)")
    g.add_argument("--target-filter", choices=["double", "single"],
                   help="kernel-loss target filtered twice (authors' code, default) or once (paper)")
    g.add_argument("--input-encoding", choices=["psp", "authors", "authors-cuda"],
                   help="the input's PSP filter: our psp (default), or the authors' operation order as PyTorch "
                        "runs it on a CPU or on CUDA (differs by 1-3 ulp; see Network)")


def _add_data_options(p):
    p.add_argument("--config", required=True, help="network YAML (the authors' schema)")
    p.add_argument("--weights", help=".npz of weights (authors' layout, or a results/*/weights.npz); "
                   "default: initial weights from --seed")
    p.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
    p.add_argument("--steps", type=int, default=0, help="AdamW training steps on the batch before checking")
    p.add_argument("--inputs", help=".npz with 'input' (N, C, H, W) and 'labels' (N,); default: real test images")
    p.add_argument("--batch", type=int, default=16, help="number of test images when --inputs is not given")
    p.add_argument("--data-dir", help="folder holding the dataset files")
    _add_tsslbp_options(p)


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error format: one line ``error: ...``, exit code 2."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="python -m reference", description="TSSL-BP reference implementation")
    sub = ap.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("train", help="train on the config's real dataset, checkpointing every epoch")
    p.add_argument("--config", help="network YAML; with --resume optional (must then equal the run's)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int, help="seeds the weights, dropout and data order (default 0)")
    p.add_argument("--out", help="run folder (default runs/<config>-seed<S>); refused if it holds a run")
    p.add_argument("--overwrite", action="store_true", help="replace the run that --out already holds")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint")
    p.add_argument("--data-dir", help="folder holding the dataset files (tried before the cache)")
    p.add_argument("--train-limit", type=int, help="use only the first N training samples")
    p.add_argument("--test-limit", type=int, help="use only the first N test samples")
    p.add_argument("--max-seconds", type=float, help="stop after the epoch in which this much time has passed")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--dropout-unit", choices=["feature", "row", "sample"],
                   help="what one dropout mask value covers: a feature (default, paper-notes), a row (the "
                        "authors' code in PyTorch 1.x), a whole sample (their code in PyTorch 2)")
    p.add_argument("--diagnostics", type=int, default=None, metavar="N",
                   help="after every epoch, measure the network on the first N training samples (loss parts, "
                        "spike counts, backward branch shares, norms) into DIR/diagnostics.csv; part of the "
                        "run: --resume continues with the run's N")
    p.add_argument("--engine", choices=["numpy", "torch"], default="numpy",
                   help="numpy: the NumPy/Numba reference (default); torch: the PyTorch twin in float32, on "
                        "--device, and on several processes under torchrun (same checkpoints: a run resumes on "
                        "either engine)")
    p.add_argument("--device", help="torch engine: cpu (default), cuda or cuda:N; under torchrun give cuda: each "
                                    "process takes its cuda:LOCAL_RANK")
    _add_tsslbp_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("compare", help="compare two gradient archives quantity by quantity and name the first "
                       "that disagrees (exit 1 above --rtol)")
    p.add_argument("--ours", required=True, help="archive of the gradients command (e.g. this project's)")
    p.add_argument("--theirs", required=True, help="archive to check, same keys and layouts (e.g. your implementation's)")
    p.add_argument("--rtol", type=float, default=1e-4, help="largest accepted max|ours - theirs| / max|theirs| per "
                   "quantity (default 1e-4: float32 implementations of the same equations)")
    p.add_argument("--entries", type=int, default=5, help="how many of the worst entries to print (default 5)")
    p.add_argument("--allow-missing", action="store_true", help="exit 0 even when --theirs lacks quantities of "
                   "--ours (a partial archive, e.g. weight gradients only); by default that is exit 1")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("diagnose", help="loss parts, spike counts, backward branch shares and norms of weight files "
                       "on the first training samples (e.g. a run's best and last epochs)")
    p.add_argument("checkpoints", nargs="+", metavar="WEIGHTS", help="weights.npz, best_weights.npz or checkpoint.npz")
    p.add_argument("--config", help="network YAML for plain weights files")
    p.add_argument("--samples", type=int, default=1000, help="how many training samples (default 1000)")
    p.add_argument("--data-dir")
    p.add_argument("--out", help="write the rows to this CSV too")
    p.add_argument("--trains", type=int, default=0, metavar="K",
                   help="also list the K most common spike trains of the label neuron, with their loss")
    p.set_defaults(func=cmd_diagnose)

    p = sub.add_parser("evaluate", help="test accuracy of a checkpoint or weights file on the real test set")
    p.add_argument("--checkpoint", required=True, help="weights.npz, best_weights.npz, checkpoint.npz, or a "
                   "plain weights .npz (then give --config)")
    p.add_argument("--config", help="network YAML for a weights file that holds no config (import-checkpoint's)")
    p.add_argument("--dataset", choices=["MNIST", "FashionMNIST"])
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--limit", type=int)
    p.add_argument("--data-dir")
    p.add_argument("--no-progress", action="store_true")
    _add_variant_option(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="train a small network on real MNIST for about a minute and draw its figures")
    p.add_argument("--out", default="demo_output", help="folder for the demo's run and figures (replaced if it "
                   "holds an earlier demo run that train --resume did not continue)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--train-limit", type=int)
    p.add_argument("--test-limit", type=int)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("gradients", help="export loss, weight gradients, layer outputs and deltas of one batch")
    p.add_argument("--config", required=True, help="network YAML (the authors' schema)")
    p.add_argument("--weights", required=True, help=".npz: one array per layer name, authors' layout (or a "
                   "results/*/weights.npz)")
    p.add_argument("--inputs", required=True, help=".npz: 'input' (N, C, H, W) normalised float32, 'labels' (N,)")
    p.add_argument("--out", required=True, help=".npz to write")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    _add_tsslbp_options(p)
    p.set_defaults(func=cmd_gradients)

    p = sub.add_parser("gradcheck", help="check our TSSL-BP gradients against PyTorch/JAX autodiff twins")
    _add_data_options(p)
    p.add_argument("--framework", choices=["torch", "jax", "all"], default="torch")
    p.add_argument("--dtype", dest="precision", choices=["float64", "float32", "both"], default="both",
                   help="precision of the full-network check (the parts are always checked in float64)")
    p.add_argument("--skip-parts", action="store_true", help="only the full-network check")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("bptt-compare", help="TSSL-BP's gradient against surrogate-gradient BPTT, per layer and step")
    _add_data_options(p)
    p.add_argument("--framework", choices=["torch", "jax"], default="torch")
    p.add_argument("--out", help="folder for bptt_compare.png and bptt_compare.csv")
    p.set_defaults(func=cmd_bptt)

    p = sub.add_parser("summarize", help="mean, std and best over seeds of the runs in a folder (the paper's "
                       "protocol) -> summary.csv and summary.md there")
    p.add_argument("directory", help="a folder of run folders, e.g. results/")
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser("import-checkpoint", help="authors' .pth checkpoint -> our weights .npz")
    p.add_argument("checkpoint", help="file saved by the authors' training script")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True, help=".npz to write")
    p.set_defaults(func=cmd_import_checkpoint)

    p = sub.add_parser("export-checkpoint", help="our weights .npz -> authors' .pth checkpoint")
    p.add_argument("weights", help=".npz of weights (e.g. results/<run>/weights.npz)")
    p.add_argument("--config", required=True)
    p.add_argument("--out", required=True, help=".pth to write")
    p.set_defaults(func=cmd_export_checkpoint)
    return ap


#: Integer options and their smallest allowed value.
_MINIMUM = {"epochs": 1, "batch_size": 1, "train_limit": 1, "test_limit": 1, "limit": 1, "batch": 1,
            "seed": 0, "steps": 0, "trains": 0}


#: The path arguments given without an option name, by command (an empty one is named by its placeholder).
_POSITIONAL = {("summarize", "directory"), ("import-checkpoint", "checkpoint"), ("export-checkpoint", "weights"),
               ("diagnose", "checkpoints")}


def main(argv=None) -> int:
    """Run one command; returns the exit code (0 ok, 1 a check failed, 2 bad input, 130 interrupted)."""
    args = build_parser().parse_args(argv)
    args.command_line = "python -m reference " + shlex.join(sys.argv[1:] if argv is None else argv)  # for run.log
    if getattr(args, "dtype", None):
        args.dtype = np.dtype(args.dtype)
    for name, lo in _MINIMUM.items():
        v = getattr(args, name, None)
        if v is not None and v < lo:
            print(f"error: --{name.replace('_', '-')} must be >= {lo}, got {v}", file=sys.stderr)
            return EXIT_BAD_INPUT
    for name in ("out", "config", "checkpoint", "checkpoints", "weights", "inputs", "data_dir", "ours", "theirs",
                 "directory"):
        v = getattr(args, name, None)
        if v == "" or isinstance(v, list) and "" in v:
            shown = name.upper() if (args.command, name) in _POSITIONAL else f"--{name.replace('_', '-')}"
            print(f"error: {shown} is empty; give a path", file=sys.stderr)
            return EXIT_BAD_INPUT
    if getattr(args, "max_seconds", None) is not None and not args.max_seconds > 0:
        print(f"error: --max-seconds must be > 0, got {args.max_seconds}", file=sys.stderr)
        return EXIT_BAD_INPUT
    previous = _signals_for(args.command)
    try:
        return args.func(args)
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside training: every write is atomic
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except ImportError as err:
        if "pip install" not in str(err):  # ours say how to install what is missing (Numba, PyTorch, JAX)
            raise
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as err:
        message = _user_error(err)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        if argv is not None:  # called from Python (tests, a notebook): put its handlers back.  As the
            for sig, handler in previous.items():  # program, keep them: a signal after the work, as the
                signal.signal(sig, handler)        # process ends, still says "interrupted"


#: The commands that stop at a whole training step on Ctrl-C or SIGTERM (:class:`~reference.app.runs.StopSignal`)
#: and leave a resumable checkpoint; every other command ends at once (:func:`~reference.app.atomic.end_at_once`).
STOPS_AT_A_STEP = ("train", "demo")


def _signals_for(command: str) -> dict:
    """Install what Ctrl-C and SIGTERM do while ``command`` runs; returns the handlers to restore.

    ``train`` and ``demo``: SIGTERM raises KeyboardInterrupt as Ctrl-C does, until training's own handlers
    take over (a stop at a whole step).  The other commands end at once: a KeyboardInterrupt raised in
    them could land in a C callback of Numba, PyTorch or JAX, where it was dropped (the command went on)
    or aborted the process (exit 134)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    if command in STOPS_AT_A_STEP:
        return {signal.SIGTERM: signal.signal(signal.SIGTERM, signal.default_int_handler)}
    from .atomic import end_at_once

    return {sig: signal.signal(sig, end_at_once) for sig in (signal.SIGINT, signal.SIGTERM)}


def _user_error(err: Exception) -> str | None:
    """The one-line message of an error caused by input or environment; None for a bug (re-raised)."""
    from .data import DataError
    from ..network import SizeError
    from .runs import RunError
    from ..engines import EngineError

    if isinstance(err, (UsageError, ConfigError, DataError, RunError, EngineError, WriteError)):
        return str(err)
    if isinstance(err, SizeError):
        return str(err)
    if isinstance(err, MemoryError):
        return f"out of memory ({err or 'the arrays do not fit'}): use a smaller batch or network"
    if isinstance(err, FloatingPointError):
        return f"{err} (the weights or the learning rate may have diverged)"
    if isinstance(err, OSError):
        where = f" {err.filename}" if getattr(err, "filename", None) else ""
        return f"cannot read or write{where}: {err.strerror or err}"
    if _lost_a_peer(err):
        from ..engines import world_size

        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return (f"process {os.environ.get('RANK', '?')} of {world_size()}: another process of this run ended "
                f"(its own error line, or torchrun's report of how it ended, says why), so this one stopped too "
                f"({first[:160]})")
    return None


def _lost_a_peer(err: Exception) -> bool:
    """Whether ``err`` is a collective operation of a torchrun process group that failed because another
    process ended (gloo: "Connection closed by peer"; NCCL and torch's ``DistError`` family), which gave
    the surviving processes a traceback beside the one-line error of the process that ended."""
    from ..engines import world_size

    if not isinstance(err, RuntimeError) or world_size() <= 1:
        return False
    text = str(err)
    return (any(c.__name__.startswith("Dist") for c in type(err).__mro__)
            or any(k in text for k in ("gloo", "NCCL", "Connection closed by peer", "Connection reset by peer")))
