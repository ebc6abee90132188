"""Time one TSSL-BP training step against its GEMM floor, measured in the same run.

    python benchmarks/train_step.py --config configs/FashionMNIST_400_400.yaml --batch 100
    python benchmarks/train_step.py --config configs/MNIST_CNN.yaml --batch 50 --steps 30
    python benchmarks/train_step.py --config configs/MNIST_CNN.yaml --batch 50 --engine torch [--device cuda]

One step = forward, kernel loss, TSSL-BP backward, gradient-norm clipping, AdamW, weight clipping (the
authors' training step).  The floor is NumPy timed on exactly the matrix products that step needs:
forward ``x = a W^T``, weight gradients ``delta^T a`` and input gradients ``delta W`` (none for the first
layer), convolutions as im2col products over all N*T images, same shapes and dtype.  The ratio
``median_step_s / gemm_floor_s`` is what the project reports; absolute times depend on the CPU.

Also reported: first-call JIT compile time with a cold and a warm Numba cache (measured in subprocesses,
the cold one with an empty NUMBA_CACHE_DIR), and peak memory (ru_maxrss) of the timing process.
The last line is machine-readable: ``median_step_s=<float> gemm_floor_s=<float>``.

``--breakdown`` adds a table of where a step's time goes: one row per phase and layer (input encoding,
im2col, forward GEMM, LIF, pooling, loss, TSSL-BP kernel, weight- and input-gradient GEMMs, col2im,
gradient clipping, AdamW, weight clipping), in ms per step and share of the step, beside the floor's
time for the same matrix product where there is one.  It is measured on extra steps in which the
network's own methods and kernels are wrapped with timers (:class:`PhaseTimer`); each row counts its own
time only (a layer's forward without the GEMM and im2col inside it is its LIF kernel), and "other" is
what no row covers (Python, allocation).  The wrappers cost little, but the instrumented step is
typically 5-20% slower than the plain one: read the shares, and the plain median for the total.
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


def batch_data(config, batch: int):
    """A training batch: real MNIST digits from the test fixture for 28x28 grey inputs (realistic firing),
    else standard normal images; labels from a seeded generator."""
    rng = np.random.default_rng(0)
    c, h, w = config.input_shape
    x = rng.normal(0.0, 1.0, (batch, c, h, w)).astype(np.float32)
    fixture = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "mnist_fixture.npz")
    if (c, h, w) == (1, 28, 28) and os.path.exists(fixture):
        data = np.load(fixture)
        imgs = data["train_images"][np.arange(batch) % len(data["train_images"])]
        x = ((imgs / 255.0 - 0.1307) / 0.3081)[:, None].astype(np.float32)
    y = rng.integers(0, config.network["n_class"], batch)
    return x, y


def time_steps(config, batch: int, steps: int, warmup: int = 10):
    from reference.network import Network
    from reference.optim import AdamW, train_step

    net = Network(config, seed=0)
    x, y = batch_data(config, batch)
    opt = AdamW(net.weights, lr=config.network["lr"])
    for _ in range(warmup):
        train_step(net, x, y, opt)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        train_step(net, x, y, opt)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), times


def time_torch_steps(config, batch: int, steps: int, device: str = "cpu", warmup: int = 5):
    """Median and all times of the torch engine's training step (:mod:`reference.engines.torch_engine`) on
    ``device``, same batch and weights as :func:`time_steps`.  Each step ends by copying the loss and the
    output to the host, so on a GPU the time includes the whole step (no separate synchronisation needed)."""
    from reference.engines.torch_engine import Processes, TorchEngine, resolve_device

    eng = TorchEngine(Processes(device=resolve_device(device)))
    net = eng.network(config, 0, {})
    opt = eng.optimiser(net, config.network["lr"])
    x, y = batch_data(config, batch)
    for _ in range(warmup):
        eng.train_step(net, x, y, opt)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        eng.train_step(net, x, y, opt)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), times


class PhaseTimer:
    """Wrap a network's methods and kernels with timers; each call's time is charged to its label, minus
    the time of wrapped calls inside it (exclusive time), so the rows add up to the timed steps.

    Wrapping sets instance attributes (``layer.forward = timed(layer.forward)``) and module attributes
    (``reference.layers._col2im``); :meth:`restore` undoes every one of them.
    """

    def __init__(self):
        self.totals: dict[str, float] = {}
        self._stack: list[list] = []  # [label, time of wrapped children]
        self._undo: list = []

    def wrap(self, owner, attr: str, label):
        """Replace ``owner.attr`` by a timed version; ``label`` is a string or ``f(enclosing label)``."""
        if not hasattr(owner, attr):
            return
        original = getattr(owner, attr)
        had_own = isinstance(owner, type(os)) or attr in getattr(owner, "__dict__", {})

        def timed(*args, **kwargs):
            name = label(self._stack[-1][0] if self._stack else "") if callable(label) else label
            self._stack.append([name, 0.0])
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - t0
                _, children = self._stack.pop()
                self.totals[name] = self.totals.get(name, 0.0) + elapsed - children
                if self._stack:
                    self._stack[-1][1] += elapsed

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original if had_own else None))

    def restore(self):
        for owner, attr, original in reversed(self._undo):
            if original is None:
                delattr(owner, attr)
            else:
                setattr(owner, attr, original)
        self._undo.clear()


def _layer_of(label: str) -> str:
    return label.split(" ")[0]


def instrument(net, opt) -> PhaseTimer:
    """A :class:`PhaseTimer` on every phase of ``train_step(net, ...)`` with optimiser ``opt``."""
    from reference import layers, optim

    timer = PhaseTimer()
    timer.wrap(net, "encode", "input encoding")
    timer.wrap(net, "loss", "loss")
    for layer in net.layers:
        name = layer.name
        if hasattr(layer, "synapse"):  # a spiking layer: synapse, neurons, backward rule
            syn = layer.synapse
            timer.wrap(layer, "forward", f"{name} LIF neurons")  # what is left after the synapse's forward
            timer.wrap(syn, "forward", f"{name} forward GEMM")
            timer.wrap(layer, "rule", f"{name} TSSL-BP kernel")
            timer.wrap(layer, "backward", f"{name} backward (Python)")
            timer.wrap(syn, "backward", f"{name} backward (Python)")
            timer.wrap(syn, "weight_grad", f"{name} weight-grad GEMM")
            timer.wrap(syn, "input_grad", f"{name} input-grad GEMM")
        else:
            timer.wrap(layer, "forward", f"{name} forward")
            timer.wrap(layer, "backward", f"{name} backward")
    for kern, what in (("_im2col", "im2col"), ("_im2col_one_channel", "im2col"), ("_col2im", "col2im")):
        timer.wrap(layers, kern, lambda enclosing, what=what: f"{_layer_of(enclosing)} {what}")
    timer.wrap(optim, "clip_grad_norm", "gradient-norm clipping")
    timer.wrap(opt, "step", "AdamW")
    timer.wrap(optim, "clip_weights", "weight clipping")
    return timer


def floor_rows(config, batch: int, repeats: int, dtype=np.float32) -> dict[str, float]:
    """Median time of each of the floor's matrix products alone, keyed like the breakdown's GEMM rows."""
    rng = np.random.default_rng(0)
    rows = {}
    kinds = {"forward": "forward GEMM", "weight grad": "weight-grad GEMM", "input grad": "input-grad GEMM"}
    for label, m, k, n in gemm_shapes(config, batch):
        layer, kind = label.split(" ", 1)
        a = rng.standard_normal((k, m), dtype=dtype).T if kind == "weight grad" else rng.standard_normal((m, k), dtype=dtype)
        b = rng.standard_normal((k, n), dtype=dtype)
        a @ b
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        rows[f"{layer} {kinds[kind]}"] = float(np.median(times))
    return rows


def breakdown(config, batch: int, steps: int) -> list[tuple[str, float, float | None]]:
    """Rows ``(phase, ms per step, floor ms or None)`` in the order the step runs them, plus "other"."""
    from reference.network import Network
    from reference.optim import AdamW, train_step

    net = Network(config, seed=0)
    x, y = batch_data(config, batch)
    opt = AdamW(net.weights, lr=config.network["lr"])
    for _ in range(20):  # the allocator's heap takes a few dozen steps to settle (first steps: im2col 3x slower)
        train_step(net, x, y, opt)
    timer = instrument(net, opt)
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(net, x, y, opt)
    total = time.perf_counter() - t0
    timer.restore()
    floors = floor_rows(config, batch, repeats=max(steps, 10))
    rows = [(label, t / steps, floors.get(label)) for label, t in timer.totals.items() if t / steps >= 5e-6]
    rows.append(("other (Python, allocation)", (total - sum(timer.totals.values())) / steps, None))
    return rows, total / steps


def print_breakdown(rows, step_s: float) -> None:
    print(f"\n{'phase':36s} {'ms':>8s} {'share':>6s} {'floor ms':>9s}")
    for label, t, floor in rows:
        f = f"{floor * 1e3:9.2f}" if floor is not None else " " * 9
        print(f"{label:36s} {t * 1e3:8.2f} {100 * t / step_s:5.1f}% {f}")
    print(f"{'step (instrumented)':36s} {step_s * 1e3:8.2f} 100.0% {sum(r[2] or 0 for r in rows) * 1e3:9.2f}\n")


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
    ap.add_argument("--breakdown", action="store_true", help="also print where the step's time goes, per phase and layer")
    ap.add_argument("--engine", choices=["numpy", "torch"], default="numpy",
                    help="torch: also time the PyTorch engine's step on --device, beside the NumPy engine's")
    ap.add_argument("--device", default="cpu", help="torch engine: cpu, cuda or cuda:N")
    args = ap.parse_args(argv)
    config = load_config(args.config)
    if args.engine == "torch":
        import torch

        median_t, times_t = time_torch_steps(config, args.batch, args.steps, args.device)
        print(f"torch engine ({torch.__version__}, {args.device}, {torch.get_num_threads()} threads): median "
              f"{median_t * 1e3:.2f} ms (min {min(times_t) * 1e3:.2f}, max {max(times_t) * 1e3:.2f}); "
              f"{args.batch / median_t:.0f} samples/s")

    if not args.no_compile:
        with tempfile.TemporaryDirectory() as cache:
            cold = compile_time(args.config, args.batch, cache)
            warm = compile_time(args.config, args.batch, cache)
        print(f"first step incl. import and JIT: cold cache {cold:.2f} s, warm cache {warm:.2f} s")

    if args.breakdown:
        print_breakdown(*breakdown(config, args.batch, args.steps))
    median, times = time_steps(config, args.batch, args.steps)
    floor = time_floor(config, args.batch, repeats=max(args.steps, 10))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"config {args.config}  batch {args.batch}  steps {args.steps}  threads: numba "
          f"{__import__('numba').get_num_threads()}")
    print(f"step: median {median * 1e3:.2f} ms (min {min(times) * 1e3:.2f}, max {max(times) * 1e3:.2f}); "
          f"GEMM floor {floor * 1e3:.2f} ms; ratio {median / floor:.2f}x; "
          f"{args.batch / median:.0f} samples/s; peak memory {peak_mb:.0f} MB")
    if args.engine == "torch":
        print(f"torch engine / NumPy engine step time: {median_t / median:.2f}x")
        print(f"median_step_s={median:.6f} gemm_floor_s={floor:.6f} torch_step_s={median_t:.6f}")
    else:
        print(f"median_step_s={median:.6f} gemm_floor_s={floor:.6f}")


if __name__ == "__main__":
    main()
