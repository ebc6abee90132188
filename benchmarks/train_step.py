"""Time one TSSL-BP training step against its GEMM floor, measured in the same run.

    python benchmarks/train_step.py --config configs/FashionMNIST_400_400.yaml --batch 100
    python benchmarks/train_step.py --config configs/MNIST_CNN.yaml --batch 50 --steps 30

One step = forward, kernel loss, TSSL-BP backward, gradient-norm clipping, AdamW, weight clipping (the
authors' training step).  The floor is NumPy timed on exactly the matrix products that step needs:
forward ``x = a W^T``, weight gradients ``delta^T a`` and input gradients ``delta W`` (none for the first
layer), convolutions as im2col products over all N*T images, same shapes and dtype.  The ratio
``median_step_s / gemm_floor_s`` is what the project reports; absolute times depend on the CPU.

Also reported: first-call JIT compile time with a cold and a warm Numba cache (measured in subprocesses,
the cold one with an empty NUMBA_CACHE_DIR), and peak memory (ru_maxrss) of the timing process.
The last line is machine-readable: ``median_step_s=<float> gemm_floor_s=<float>``.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import reference  # noqa: E402,F401  (first: it sets the BLAS/OpenMP threading defaults before NumPy loads)
import numpy as np  # noqa: E402

from reference.config import load_config  # noqa: E402


def gemm_shapes(config, batch: int):
    """The (M, K) x (K, N) products of one training step: list of (label, M, K, N)."""
    T = config.params.n_steps
    shapes = []
    first = True
    for name, c in config.layers:
        if c["type"] == "linear":
            rows, k, n = T * batch, c["n_inputs"], c["n_outputs"]
        elif c["type"] == "conv":
            _, oh, ow = c["out_shape"]
            kh, kw = c["kernel_size"]
            rows, k, n = T * batch * oh * ow, c["in_channels"] * kh * kw, c["out_channels"]
        else:
            continue
        shapes.append((f"{name} forward", rows, k, n))       # cols (rows, k) @ W^T (k, n)
        shapes.append((f"{name} weight grad", n, rows, k))   # delta^T (n, rows) @ cols (rows, k)
        if not first:
            shapes.append((f"{name} input grad", rows, n, k))  # delta (rows, n) @ W (n, k)
        first = False
    return shapes


def time_floor(config, batch: int, repeats: int, dtype=np.float32) -> float:
    """Median over repeats of the summed time of all the step's matrix products."""
    rng = np.random.default_rng(0)
    ops = []
    for label, m, k, n in gemm_shapes(config, batch):
        if "weight grad" in label:
            a = rng.standard_normal((k, m), dtype=dtype).T  # transposed view, as delta^T in the step
        else:
            a = rng.standard_normal((m, k), dtype=dtype)
        b = rng.standard_normal((k, n), dtype=dtype)
        ops.append((a, b))
    for a, b in ops:
        a @ b
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for a, b in ops:
            a @ b
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def time_steps(config, batch: int, steps: int, warmup: int = 3):
    from reference.network import Network
    from reference.optim import AdamW, train_step

    net = Network(config, seed=0)
    rng = np.random.default_rng(0)
    c, h, w = config.input_shape
    x = rng.normal(0.0, 1.0, (batch, c, h, w)).astype(np.float32)
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "mnist_fixture.npz")
    if (c, h, w) == (1, 28, 28) and os.path.exists(fixture):  # real MNIST digits: realistic firing
        data = np.load(fixture)
        imgs = data["train_images"][np.arange(batch) % len(data["train_images"])]
        x = ((imgs / 255.0 - 0.1307) / 0.3081)[:, None].astype(np.float32)
    y = rng.integers(0, config.network["n_class"], batch)
    opt = AdamW(net.weights, lr=config.network["lr"])
    for _ in range(warmup):
        train_step(net, x, y, opt)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        train_step(net, x, y, opt)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), times


def compile_time(config_path: str, batch: int, cache_dir: str) -> float:
    """Seconds for import + first training step in a fresh process using ``cache_dir`` as Numba's cache."""
    code = (
        "import time, sys; t0 = time.perf_counter(); sys.path.insert(0, %r);"
        "from benchmarks.train_step import time_steps; from reference.config import load_config;"
        "time_steps(load_config(%r), %d, steps=1, warmup=0); print(time.perf_counter() - t0)"
        % (os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."), config_path, batch)
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--no-compile", action="store_true", help="skip the cold/warm JIT compile measurement")
    args = ap.parse_args(argv)
    config = load_config(args.config)

    if not args.no_compile:
        with tempfile.TemporaryDirectory() as cache:
            cold = compile_time(args.config, args.batch, cache)
            warm = compile_time(args.config, args.batch, cache)
        print(f"first step incl. import and JIT: cold cache {cold:.2f} s, warm cache {warm:.2f} s")

    median, times = time_steps(config, args.batch, args.steps)
    floor = time_floor(config, args.batch, repeats=max(args.steps, 10))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"config {args.config}  batch {args.batch}  steps {args.steps}  threads: numba "
          f"{__import__('numba').get_num_threads()}")
    print(f"step: median {median * 1e3:.2f} ms (min {min(times) * 1e3:.2f}, max {max(times) * 1e3:.2f}); "
          f"GEMM floor {floor * 1e3:.2f} ms; ratio {median / floor:.2f}x; "
          f"{args.batch / median:.0f} samples/s; peak memory {peak_mb:.0f} MB")
    print(f"median_step_s={median:.6f} gemm_floor_s={floor:.6f}")


if __name__ == "__main__":
    main()
