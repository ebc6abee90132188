"""Commands that need PyTorch or JAX: ``gradcheck``, ``bptt-compare``, ``import-checkpoint``, ``export-checkpoint``.

Registered by :func:`add_commands` on ``python -m reference``'s parser; the frameworks are imported only
when one of these commands runs, and a missing one gives a one-line error that says how to install it.
"""
from __future__ import annotations

import os

import numpy as np

EXIT_CHECK_FAILED = 1


def _usage_error():
    from ..cli import UsageError

    return UsageError


def _require(framework):
    from . import require

    try:
        require(framework)
    except ImportError as err:
        raise _usage_error()(str(err)) from None


def _batch(args, config):
    """Inputs and labels: from ``--inputs`` or the first ``--batch`` images of the dataset's test split."""
    from ..cli import _load_npz, check_inputs

    if args.inputs:
        x, y = check_inputs(_load_npz(args.inputs, "inputs"), config)
        return x, y, f"{len(y)} samples from {args.inputs}"
    from ..train import load_split

    name = config.network["dataset"]
    if name not in ("MNIST", "FashionMNIST"):
        raise _usage_error()(f"the config's dataset {name!r} is not downloaded by this project; give --inputs X.npz")
    split = load_split(name, "test", limit=args.batch, data_dir=args.data_dir, verbose=False)
    return split.images, split.labels, f"the first {len(split.labels)} {name} test images ({split.source})"


def _read_weights(path) -> dict:
    """Weight arrays of a plain weights ``.npz`` or of this project's ``weights.npz`` / ``checkpoint.npz``."""
    from ..cli import _load_npz

    data = _load_npz(path, "weights")
    if "config_yaml" in data:
        from ..train import load_checkpoint

        return load_checkpoint(path)["weights"]
    return data


def _weights(args, config, x, y):
    """Weights from ``--weights`` (or initial ones from ``--seed``), then ``--steps`` AdamW steps on the batch."""
    from ..cli import check_weights
    from ..network import Network
    from ..optim import AdamW, train_step

    net = Network(config, dtype=np.float32, seed=args.seed)
    what = f"initial (seed {args.seed})"
    if args.weights:
        net.set_weights(check_weights(_read_weights(args.weights), net))
        what = args.weights
    if args.steps:
        opt = AdamW(net.weights, lr=config.network["lr"])
        for _ in range(args.steps):
            train_step(net, x.astype(np.float32), y, opt)
        what += f", then {args.steps} AdamW steps on this batch"
    return {k: v.copy() for k, v in net.weights.items()}, what


def cmd_gradcheck(args) -> int:
    from ..cli import _config, _net_options
    from . import FRAMEWORKS, backend
    from .check import check_finite_differences, check_network, check_parts, format_rows

    config = _config(args.config)
    frameworks = FRAMEWORKS if args.framework == "all" else (args.framework,)
    for fw in frameworks:
        _require(fw)
    x, y, data = _batch(args, config)
    weights, what = _weights(args, config, x, y)
    options = _net_options(args)
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


def cmd_bptt(args) -> int:
    from ..cli import _config, _net_options
    from . import backend
    from .bptt import compare_bptt, format_bptt, plot_bptt, write_csv

    config = _config(args.config)
    _require(args.framework)
    x, y, data = _batch(args, config)
    weights, what = _weights(args, config, x, y)
    rows, ts, _ = compare_bptt(config, backend(args.framework, "float64"), weights, x, y, _net_options(args))
    print(f"TSSL-BP vs surrogate-gradient BPTT, {args.config}: {data}; weights {what}; loss {ts['loss']:.6g}")
    print(format_bptt(rows))
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        write_csv(rows, os.path.join(args.out, "bptt_compare.csv"))
        png = plot_bptt(rows, os.path.join(args.out, "bptt_compare.png"), os.path.basename(args.config))
        print(f"wrote {png} and bptt_compare.csv")
    return 0


def cmd_import_checkpoint(args) -> int:
    from ..cli import _atomic_savez, _config
    from .checkpoint import import_checkpoint

    config = _config(args.config)
    _require("torch")
    try:
        weights = import_checkpoint(args.checkpoint, config)
    except (FileNotFoundError, ValueError) as err:
        raise _usage_error()(str(err)) from None
    _atomic_savez(args.out, weights)
    print(f"wrote {len(weights)} layers ({', '.join(weights)}) to {args.out}")
    return 0


def cmd_export_checkpoint(args) -> int:
    from ..cli import _config
    from .checkpoint import export_checkpoint

    config = _config(args.config)
    _require("torch")
    data = _read_weights(args.weights)
    folder = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(folder):
        raise _usage_error()(f"output folder does not exist: {folder}")
    try:
        export_checkpoint(data, config, args.out)
    except ValueError as err:
        raise _usage_error()(str(err)) from None
    print(f"wrote {args.out} (authors' format: {{'net': state_dict}} with my_parameters.0..{len(data) - 1})")
    return 0


def add_commands(sub, add_tsslbp_options) -> None:
    """Register the four commands on ``python -m reference``'s subparsers."""
    def data_options(p):
        p.add_argument("--config", required=True, help="network YAML (the authors' schema)")
        p.add_argument("--weights", help=".npz of weights (authors' layout); default: initial weights from --seed")
        p.add_argument("--seed", type=int, default=0, help="seed of the initial weights")
        p.add_argument("--steps", type=int, default=0, help="AdamW training steps on the batch before checking")
        p.add_argument("--inputs", help=".npz with 'input' (N, C, H, W) and 'labels' (N,); default: real test images")
        p.add_argument("--batch", type=int, default=16, help="number of test images when --inputs is not given")
        p.add_argument("--data-dir", help="folder holding the dataset files (tried after the cache)")
        add_tsslbp_options(p)

    p = sub.add_parser("gradcheck", help="check our TSSL-BP gradients against PyTorch/JAX autodiff twins")
    data_options(p)
    p.add_argument("--framework", choices=["torch", "jax", "all"], default="torch")
    p.add_argument("--dtype", dest="precision", choices=["float64", "float32", "both"], default="both",
                   help="precision of the full-network check (the parts are always checked in float64)")
    p.add_argument("--skip-parts", action="store_true", help="only the full-network check")
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("bptt-compare", help="TSSL-BP's gradient against surrogate-gradient BPTT, per layer and step")
    data_options(p)
    p.add_argument("--framework", choices=["torch", "jax"], default="torch")
    p.add_argument("--out", help="folder for bptt_compare.png and bptt_compare.csv")
    p.set_defaults(func=cmd_bptt)

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
