"""Command line: ``python -m reference {gradients,train,evaluate,demo,gradcheck,bptt-compare,...} ...``.

Every command checks its inputs and ends with a one-line message and exit code 2 on bad input (never a
traceback from inside a kernel); files are written atomically, and nothing is written on error.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from .config import ConfigError, load_config

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad user input: printed as ``error: ...`` with exit code 2."""


# ------------------------------------------------------------------------------------------- gradients
def _load_npz(path: str, what: str) -> dict:
    if not os.path.exists(path):
        raise UsageError(f"{what} file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.keys()}
    except Exception as err:  # zip/format errors come in many types
        raise UsageError(f"{what} file {path} is not a readable .npz archive ({err})") from None


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
    if x.shape[1:] not in ((c, h, w), (c, h, w, t)) or x.shape[0] < 1:
        raise UsageError(f"inputs: 'input' has shape {x.shape}; this config expects (N, {c}, {h}, {w}) "
                         f"or (N, {c}, {h}, {w}, {t})")
    if not np.all(np.isfinite(x)):
        raise UsageError("inputs: 'input' contains NaN or inf")
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (x.shape[0],):
        raise UsageError(f"inputs: 'labels' must be integers of shape ({x.shape[0]},), got {y.dtype} {y.shape}")
    n_class = config.network["n_class"]
    if y.min() < 0 or y.max() >= n_class:
        raise UsageError(f"inputs: 'labels' must lie in 0..{n_class - 1}, got {y.min()}..{y.max()}")
    return x, y.astype(np.int64)


def check_weights(data: dict, net) -> dict:
    """Validate a weights archive against a network: same layer names, shapes, finite floats."""
    own = net.weights
    unknown, missing = sorted(set(data) - set(own)), sorted(set(own) - set(data))
    if unknown or missing:
        raise UsageError(f"weights: layer names do not match the config: unknown {unknown}, missing {missing}; "
                         f"the config's weighted layers are {list(own)}")
    for name, w in data.items():
        if w.shape != own[name].shape:
            raise UsageError(f"weights: layer '{name}' has shape {w.shape}, expected {own[name].shape} "
                             f"(linear (out, in), conv (out, in, kh, kw))")
        if not np.issubdtype(w.dtype, np.floating):
            raise UsageError(f"weights: layer '{name}' must be floating point, got {w.dtype}")
        if not np.all(np.isfinite(w)):
            raise UsageError(f"weights: layer '{name}' contains NaN or inf")
    return data


def compute_gradients(config, weights: dict, inputs: np.ndarray, labels: np.ndarray, dtype=np.float32, **options) -> dict:
    """Loss, weight gradients, layer outputs and deltas of one batch, as the archive of ``gradients`` holds them.

    Returns a dict: ``loss`` (0-d float64), ``grad/<layer>`` (authors' weight layout), ``output/<layer>`` and
    ``delta/<layer>`` (N, C, H, W, T).
    """
    from .network import Network

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
    from .network import Network

    net_options = _net_options(args)
    inputs, labels = check_inputs(_load_npz(args.inputs, "inputs"), config)
    probe = Network(config, dtype=args.dtype, **net_options)
    weights = check_weights(_load_npz(args.weights, "weights"), probe)
    result = compute_gradients(config, weights, inputs, labels, dtype=args.dtype, **net_options)
    _atomic_savez(args.out, result)
    print(f"loss {float(result['loss']):.6g}; wrote {len(result)} arrays to {args.out}")
    return 0


# ----------------------------------------------------------------------------------- train / evaluate
def cmd_train(args) -> int:
    from .train import train

    if args.resume:
        out = args.resume
        config = None
    else:
        if not args.config:
            raise UsageError("train: give --config CONFIG.yaml (or --resume DIR)")
        config = _config(args.config)
        out = args.out or os.path.join("runs", f"{os.path.splitext(os.path.basename(args.config))[0]}-seed{args.seed}")
    try:
        result = train(config, out_dir=out, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed,
                       resume=bool(args.resume), data_dir=args.data_dir, train_limit=args.train_limit,
                       test_limit=args.test_limit, progress=not args.no_progress, max_seconds=args.max_seconds,
                       net_options=_net_options(args) or None)
    except KeyboardInterrupt:
        return 130
    print(f"run folder: {out}")
    if "test_acc" in result:
        print(f"accuracy={result['test_acc']:.6f}")
    return 0


def cmd_evaluate(args) -> int:
    from .network import Network
    from .train import evaluate, load_checkpoint, load_split

    try:
        ck = load_checkpoint(args.checkpoint)
    except (FileNotFoundError, ValueError, ConfigError) as err:
        raise UsageError(str(err)) from None
    cfg = ck["config"]
    dataset = args.dataset or cfg.network["dataset"]
    net = Network(cfg)
    try:
        net.set_weights(ck["weights"])
    except ValueError as err:
        raise UsageError(f"{args.checkpoint}: {err}") from None
    split = load_split(dataset, args.split, args.limit, args.data_dir)
    t0 = time.perf_counter()
    loss, acc, _ = evaluate(net, split, progress=not args.no_progress)
    print(f"{dataset} {args.split}: {len(split.labels)} samples from {split.source}; loss {loss:.4f}; "
          f"{len(split.labels) / (time.perf_counter() - t0):.0f} samples/s")
    print(f"accuracy={acc:.6f}")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    run_demo(out_dir=args.out, epochs=args.epochs, seed=args.seed, data_dir=args.data_dir,
             train_limit=args.train_limit, progress=not args.no_progress)
    return 0


# --------------------------------------------------------------------------------------------- helpers
def _config(path):
    try:
        return load_config(path)
    except ConfigError as err:
        raise UsageError(str(err)) from None


def _net_options(args) -> dict:
    opts = {}
    if getattr(args, "warmup", None) and args.warmup != "per-neuron":
        opts["warmup"] = args.warmup
    if getattr(args, "no_inter", False):
        opts["inter"] = False
    if getattr(args, "no_intra", False):
        opts["intra"] = False
    if getattr(args, "target_filter", None) and args.target_filter != "double":
        opts["target_filter"] = args.target_filter
    if getattr(args, "backward", None) and args.backward != "tsslbp":
        opts["backward"] = args.backward
    if getattr(args, "dropout_unit", None) and args.dropout_unit != "feature":
        opts["dropout_unit"] = args.dropout_unit
    return opts


def _atomic_savez(path: str, arrays: dict) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"output folder does not exist: {folder}")
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _add_tsslbp_options(p):
    g = p.add_argument_group("TSSL-BP options (paper-notes section 6)")
    g.add_argument("--warmup", choices=["per-neuron", "always", "never"], default="per-neuron",
                   help="warm-up surrogate: the authors' per-neuron rule (default), everywhere, or never")
    g.add_argument("--no-inter", action="store_true", help="drop the inter-neuron (spike timing) term; the intra term then has nothing to carry, so only warm-up deltas remain")
    g.add_argument("--no-intra", action="store_true", help="drop the intra-neuron (reset and leak) term")
    g.add_argument("--backward", choices=["tsslbp", "bptt"], default="tsslbp",
                   help="the spiking layers' backward: TSSL-BP (default) or the surrogate-gradient BPTT baseline")
    g.add_argument("--target-filter", choices=["double", "single"], default="double",
                   help="kernel-loss target filtered twice (authors' code, default) or once (paper)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m reference", description="TSSL-BP reference implementation")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("gradients", help="export loss, weight gradients, layer outputs and deltas of one batch")
    p.add_argument("--config", required=True, help="network YAML (the authors' schema)")
    p.add_argument("--weights", required=True, help=".npz: one array per layer name, authors' layout")
    p.add_argument("--inputs", required=True, help=".npz: 'input' (N, C, H, W) normalised float32, 'labels' (N,)")
    p.add_argument("--out", required=True, help=".npz to write")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    _add_tsslbp_options(p)
    p.set_defaults(func=cmd_gradients)

    p = sub.add_parser("train", help="train on the config's real dataset, checkpointing every epoch")
    p.add_argument("--config")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run folder (default runs/<config>-seed<S>)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its checkpoint")
    p.add_argument("--data-dir", help="folder holding the dataset files (tried after the cache)")
    p.add_argument("--train-limit", type=int, help="use only the first N training samples")
    p.add_argument("--test-limit", type=int, help="use only the first N test samples")
    p.add_argument("--max-seconds", type=float, help="stop after the epoch in which this much time has passed")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--dropout-unit", choices=["feature", "row", "sample"], default="feature",
                   help="what one dropout mask value covers: a feature (default, paper-notes), a row (the "
                        "authors' code in PyTorch 1.x), a whole sample (their code in PyTorch 2)")
    _add_tsslbp_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy of a checkpoint or weights file on the real test set")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", choices=["MNIST", "FashionMNIST"])
    p.add_argument("--split", choices=["test", "train"], default="test")
    p.add_argument("--limit", type=int)
    p.add_argument("--data-dir")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("demo", help="train a small network on real MNIST for about a minute and draw its figures")
    p.add_argument("--out", default="demo_output")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--train-limit", type=int)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)

    from .autograd.cli import add_commands  # imports no framework until a command runs

    add_commands(sub, _add_tsslbp_options)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "dtype", None):
        args.dtype = np.dtype(args.dtype)
    for name in ("epochs", "batch_size", "train_limit", "test_limit", "limit", "batch"):
        v = getattr(args, name, None)
        if v is not None and v < 1:
            print(f"error: --{name.replace('_', '-')} must be >= 1, got {v}", file=sys.stderr)
            return EXIT_BAD_INPUT
    try:
        return args.func(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as err:
        from .data import DataError

        if isinstance(err, (DataError, ConfigError)):
            print(f"error: {err}", file=sys.stderr)
            return EXIT_BAD_INPUT
        raise
