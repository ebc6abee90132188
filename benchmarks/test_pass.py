"""Time a full pass over a real test set (10,000 images, already in memory) against its forward GEMM floor.

    python benchmarks/test_pass.py --config configs/MNIST_CNN.yaml
    python benchmarks/test_pass.py --config configs/FashionMNIST_400_400.yaml --batch 1000
    python benchmarks/test_pass.py --config configs/MNIST_CNN.yaml --weights results/mnist_cnn/weights.npz

The pass is what ``python -m reference evaluate`` runs (:func:`reference.app.train.evaluate`): the forward-only
path :meth:`reference.network.Network.infer`, the loss and the predictions, batch by batch.  The floor is
NumPy timed on exactly the forward's matrix products (``x = a W^T`` of every dense layer, the im2col
product of every convolution, same shapes and dtype) for every batch of the pass, so
``pass_s / forward_gemm_floor_s`` is the price of everything else (encoding, im2col, LIF, pooling).
The dataset is the config's (MNIST or Fashion-MNIST, from the usual sources; ``--data-dir`` as in the CLI).
Weights: ``--weights`` (a ``weights.npz`` of a run, e.g. trained ones for realistic firing) or the
initialisation from seed 0.  Peak memory is ru_maxrss of this process.

The last line is machine-readable: ``samples_per_s=<float> forward_gemm_floor_s=<float>``.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import reference  # noqa: E402,F401  (first: it sets the BLAS/OpenMP threading defaults before NumPy loads)
import numpy as np  # noqa: E402

from reference.config import load_config  # noqa: E402


def forward_shapes(config, batch: int):
    """The (M, K) x (K, N) products of the forward pass of one batch: list of (label, M, K, N)."""
    T = config.params.n_steps
    shapes = []
    for name, c in config.layers:
        if c["type"] == "linear":
            shapes.append((name, T * batch, c["n_inputs"], c["n_outputs"]))
        elif c["type"] == "conv":
            _, oh, ow = c["out_shape"]
            kh, kw = c["kernel_size"]
            shapes.append((name, T * batch * oh * ow, c["in_channels"] * kh * kw, c["out_channels"]))
    return shapes


def time_forward_floor(config, n_samples: int, batch: int, repeats: int = 3, dtype=np.float32) -> float:
    """Seconds NumPy takes for the forward products of a whole pass (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    sizes = [batch] * (n_samples // batch) + ([n_samples % batch] if n_samples % batch else [])
    ops = {}
    for size in set(sizes):
        ops[size] = [(rng.standard_normal((m, k), dtype=dtype), rng.standard_normal((k, n), dtype=dtype))
                     for _, m, k, n in forward_shapes(config, size)]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for size in sizes:
            for a, b in ops[size]:
                a @ b
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, default=None, help="evaluation batch size (default: evaluate's, eval_batch_size)")
    ap.add_argument("--weights", default=None, help="weights.npz to load (default: initialisation, seed 0)")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes; the best is reported")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args(argv)

    from reference.network import Network
    from reference.app.runs import read_weights
    from reference.app.train import eval_batch_size, evaluate, load_split

    config = load_config(args.config)
    batch = args.batch or eval_batch_size(config)
    split = load_split(config.network["dataset"], "test", data_dir=args.data_dir, verbose=False)
    net = Network(config, seed=0)
    if args.weights:
        net.set_weights(read_weights(args.weights))
    evaluate(net, type(split)(split.images[:batch], split.labels[:batch], split.source), batch)  # JIT, warm
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        _, acc, _ = evaluate(net, split, batch)
        times.append(time.perf_counter() - t0)
    best = min(times)
    floor = time_forward_floor(config, len(split.labels), batch)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = len(split.labels)
    print(f"config {args.config}  {n} test images  batch {batch}  weights {args.weights or 'init (seed 0)'}  "
          f"accuracy {100 * acc:.2f}%")
    print(f"pass: best {best:.3f} s of {args.repeats} (max {max(times):.3f}); {n / best:,.0f} samples/s; "
          f"forward GEMM floor {floor:.3f} s; ratio {best / floor:.2f}x; peak memory {peak_mb:.0f} MB")
    print(f"samples_per_s={n / best:.1f} forward_gemm_floor_s={floor:.6f}")


if __name__ == "__main__":
    main()
