"""The PyTorch training engine: ``python -m reference train --engine torch [--device cpu|cuda|cuda:N]``.

The NumPy/Numba engine (:class:`reference.network.Network`) is the reference and the default.  This
engine trains the same configs with the PyTorch twin (:class:`.model.TwinModel`, whose only hand-written
derivative is the TSSL-BP ``autograd.Function``) in float32 on a CPU or a GPU, inside the very same
training loop (:func:`reference.app.train.train`): the same data order from the seed, kernel loss,
gradient-norm clip 1, AdamW (PyTorch's own, which :class:`reference.optim.AdamW` copies operation by
operation) with weight decay 0.01, weight clip +-4, dropout masks drawn from the same NumPy generator in
the same order, the same progress bar, ``metrics.csv``, figures and checkpoint file.  A run started on one
engine therefore resumes on the other, and ``evaluate`` reads either's weights.

Several processes (``torchrun --nproc_per_node N -m reference train --engine torch ...``) train one
model with ``DistributedDataParallel``:

- the config's batch size stays the **global** batch; every process draws the same order and the same
  dropout masks for the whole batch (same seed) and takes its contiguous share of rows;
- the loss of each share is normalised as the whole batch's (a sum, or for the softmax loss a mean over
  the global batch), and multiplied by the number of processes before ``backward``: DDP averages the
  processes' gradients, so the result is the gradient of the whole batch's loss, as one process computes
  it; clipping and AdamW then run identically on every process, and the weights stay equal;
- the paper-era rule's layer switch reads the firing rate of the whole batch (a sum over processes);
- only rank 0 writes the run folder (checkpoints, metrics, figures); the checkpoint is the file one
  process writes.  A stop (Ctrl-C, SIGTERM, ``--max-seconds``) seen by any process stops all of them at
  the same step, with a checkpoint (torchrun forwards Ctrl-C to every process, and kills them after its
  ``--shutdown-timeout``, 30 s by default).

Memory saved for the backward, per spiking layer of ``T * N * F`` neuron-steps: 9 bytes per neuron-step
(``u`` and ``du`` in float32, spikes as booleans; :class:`.torch_backend.TSSLBPSpike`), plus what PyTorch
keeps for the synapse's own backward (its input PSP, 4 bytes per input neuron-step).
"""
from __future__ import annotations

import math
import os

import numpy as np

from ..twins import require

torch = require("torch")
import torch.distributed as dist  # noqa: E402

from ..layers import Dropout  # noqa: E402
from ..network import Network  # noqa: E402
from ..options import NetOptions  # noqa: E402
from ..params import GRAD_NORM_CLIP, WEIGHT_CLIP  # noqa: E402
from .evaluation import Split, evaluate as evaluate_one  # noqa: E402
from . import EngineError  # noqa: E402
from ..twins.model import TwinModel  # noqa: E402
from ..twins.torch_backend import TorchBackend  # noqa: E402


# --------------------------------------------------------------------------------------- processes
def resolve_device(device: str | None, local_rank: int = 0, world: int = 1) -> "torch.device":
    """The ``torch.device`` for ``--device``: "cpu" (default), "cuda" (under torchrun: the process's
    ``cuda:LOCAL_RANK``) or "cuda:N".  Raises :class:`EngineError` when CUDA is asked for and absent."""
    name = (device or "cpu").strip().lower()
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise EngineError(f"--device {device!r}: give cpu, cuda or cuda:N")
    if world > 1 and name != "cuda":
        raise EngineError(f"--device {device} under torchrun would put every process on the same GPU: give "
                          f"--device cuda (each process takes cuda:LOCAL_RANK) and choose the GPUs with "
                          f"CUDA_VISIBLE_DEVICES")
    if not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + (" is a CPU-only build" if torch.version.cuda is None
                                                else f" (CUDA {torch.version.cuda}) sees no GPU")
        raise EngineError(f"--device {device}: CUDA is not available here ({build}); use --device cpu, or "
                          f"install a CUDA build of torch on a machine with a GPU")
    count = torch.cuda.device_count()
    index = local_rank if name == "cuda" and world > 1 else (int(name[5:]) if ":" in name else torch.cuda.current_device())
    if index >= count:
        raise EngineError(f"--device {device}: this process wants cuda:{index}, but only {count} GPU(s) are visible")
    return torch.device("cuda", index)


class Processes:
    """This process's place among the training processes: ``rank`` of ``world`` (1 without torchrun),
    its ``device``, and the few collective operations the engine needs (no-ops for one process)."""

    def __init__(self, rank: int = 0, world: int = 1, device="cpu"):
        self.rank, self.world, self.device = int(rank), int(world), torch.device(device)

    @classmethod
    def from_env(cls, device: str | None = None) -> "Processes":
        """From torchrun's environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``); joins the process group
        (NCCL on GPUs, gloo on CPUs) when there are several processes."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        dev = resolve_device(device, local, world)
        joined = False
        if world > 1 and not dist.is_initialized():
            if dev.type == "cuda":
                torch.cuda.set_device(dev)
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
            joined = True
        procs = cls(rank, world, dev)
        procs.joined = joined
        return procs

    joined = False  # whether this object joined the process group (and so leaves it in close())

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for with one)."""
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        """Leave the process group this object joined, after every process has arrived (a process that
        exits with gloo's threads still running may abort)."""
        if self.joined and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
            self.joined = False

    def sizes(self, n: int) -> list[int]:
        """Every process's share of a batch of ``n`` rows, in rank order (``numpy.array_split``'s sizes)."""
        base, extra = divmod(n, self.world)
        return [base + (rank < extra) for rank in range(self.world)]

    def share(self, n: int) -> slice:
        """This process's contiguous rows of a batch of ``n``."""
        sizes = self.sizes(n)
        lo = sum(sizes[:self.rank])
        return slice(lo, lo + sizes[self.rank])

    def sum(self, values) -> list[float]:
        """Sum over processes of a few numbers (float64)."""
        if self.world == 1:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def any(self, flag) -> bool:
        """Whether any process says yes (a stop asked for on one stops all, at the same step)."""
        return self.sum([bool(flag)])[0] > 0 if self.world > 1 else bool(flag)

    def gather_rows(self, t: "torch.Tensor", n: int) -> "torch.Tensor":
        """Every process's share of a (T, n_share, ...) tensor, joined along axis 1 into (T, n, ...)."""
        if self.world == 1:
            return t
        sizes = self.sizes(n)
        pad = max(sizes) - t.shape[1]
        if pad:
            t = torch.cat([t, t.new_zeros((t.shape[0], pad, *t.shape[2:]))], dim=1)
        parts = [torch.empty_like(t) for _ in range(self.world)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat([p[:, :size] for p, size in zip(parts, sizes)], dim=1)

    def gather_objects(self, obj) -> list:
        """One picklable object from every process, in rank order."""
        if self.world == 1:
            return [obj]
        out = [None] * self.world
        dist.all_gather_object(out, obj)
        return out


# ------------------------------------------------------------------------------------------ memory
def saved_state_bytes(config, batch_size: int, unit: str = "feature") -> dict[str, int]:
    """Bytes PyTorch keeps for the backward of one TSSL-BP training step, per weighted layer, for a batch
    (or one process's share) of ``batch_size``: 9 bytes per neuron and step (:class:`.torch_backend.TSSLBPSpike`:
    ``u``, ``du`` float32, spikes bool) plus 4 bytes per input value and step (the synapse's input PSP,
    saved by the matrix product or convolution); per dropout layer its float32 mask (``unit`` as
    ``--dropout-unit``).  The weights are saved by reference (no copy) and are not counted; the BPTT
    backward (``--backward bptt``) keeps other tensors.  Checked against ``torch.autograd.graph.saved_tensors_hooks`` in tests/test_torch_engine.py."""
    from ..config import Config, load_config

    cfg = config if isinstance(config, Config) else load_config(config)
    t = cfg.params.n_steps
    out = {}
    for name, c in cfg.layers:
        if c["type"] in ("conv", "linear"):
            neurons = int(np.prod(c["out_shape"]))
            inputs = int(np.prod(c["in_shape"]))
            out[name] = t * batch_size * (9 * neurons + 4 * inputs)
        elif c["type"] == "dropout" and c["p"] > 0:  # the mask, one value per unit, shared by the steps
            ch, h, w = c["in_shape"]  # the NumPy engine's layout: (N, F) after a dense layer, else (N, H, W, C)
            shape = (batch_size, ch) if (h, w) == (1, 1) else (batch_size, h, w, ch)
            out[name] = math.prod(Dropout(name, c["p"], c["in_shape"], unit).mask_shape(shape)) * 4
    return out



# ----------------------------------------------------------------------------------------- network
class _Weights(torch.nn.Module):
    """The trainable weights as an ``nn.Module`` (what DistributedDataParallel wraps); ``forward`` runs
    the twin model and returns the output PSP (T, N, n_class)."""

    def __init__(self, model: TwinModel, weights: dict, device):
        super().__init__()
        self.model = model
        self.w = torch.nn.ParameterDict({k: torch.nn.Parameter(torch.as_tensor(v, dtype=torch.float32, device=device))
                                         for k, v in weights.items()})

    def forward(self, x, masks=None):
        out, _ = self.model.forward(dict(self.w.items()), None, x, masks)
        return out


class TorchNetwork:
    """A network of a config trained by PyTorch, with what the training loop, checkpoints and
    ``evaluate`` use of :class:`reference.network.Network`.

    The NumPy network of the same config and seed is built first (:attr:`numpy`): it gives the initial
    weights, the dropout generator :attr:`rng`, the loss for evaluation and the predictions, so both
    engines start from the same numbers and draw the same masks.

    Parameters
    ----------
    config : Config, dict or path
    seed : int, as :class:`~reference.network.Network`
    processes : :class:`Processes` (default: one process on the CPU)
    **options : the Network options of a run (``variant``, ``inter``, ``intra``, ``warmup``,
        ``target_filter``, ``desired_pattern``, ``backward``, ``dropout_unit``); ``input_encoding`` other
        than "psp" and ``count_of="spikes"`` are refused (:class:`~reference.engines.EngineError`).
    """

    engine = "torch"

    def __init__(self, config, *, seed: int | None = 0, processes: Processes | None = None, **options):
        self.procs = processes or Processes()
        opts = options.pop("options", None) or NetOptions(**options)  # checked once, here
        if opts.input_encoding != "psp":
            raise EngineError(f"--input-encoding {opts.input_encoding} exists on the NumPy engine only "
                              f"(it reproduces the authors' operation order); the torch engine filters the input "
                              f"with the same PSP recursion as every layer")
        if opts.count_of != "psp":
            raise EngineError("count_of='spikes' exists on the NumPy engine only")
        self.numpy = Network(config, seed=seed, options=opts)
        self.config, self.rng, self.count_of = self.numpy.config, self.numpy.rng, "psp"
        twin = dict(spike="tsslbp" if opts.backward == "tsslbp" else "bptt",
                    detach_reset=opts.backward == "bptt-detached", options=opts)
        if self.procs.world > 1:
            twin["batch_mean"] = self._batch_mean
        self.model = TwinModel(self.config, TorchBackend("float32", self.procs.device), **twin)
        self.module = _Weights(self.model, self.numpy.weights, self.procs.device)
        self.ddp = None
        if self.procs.world > 1:
            ids = [self.procs.device.index] if self.procs.device.type == "cuda" else None
            self.ddp = torch.nn.parallel.DistributedDataParallel(self.module, device_ids=ids)
        self._dropouts = {layer.name: layer for layer in self.numpy.layers if layer.kind == "dropout"}

    # ------------------------------------------------------------------------------- weights
    @property
    def weights(self) -> dict[str, np.ndarray]:
        """Weights by layer name, authors' layouts, as float32 NumPy copies (what checkpoints save)."""
        return {k: p.detach().cpu().numpy().copy() for k, p in self.module.w.items()}

    def set_weights(self, weights: dict, strict: bool = True) -> None:
        """Copy weights in after :meth:`reference.network.Network.set_weights`'s checks (all or nothing)."""
        self.numpy.set_weights(weights, strict)
        with torch.no_grad():
            for k, w in self.numpy.weights.items():
                self.module.w[k].copy_(torch.as_tensor(w))

    def numpy_network(self) -> Network:
        """The NumPy network holding the current weights (for :mod:`reference.app.diagnostics`)."""
        self.numpy.set_weights(self.weights)
        return self.numpy

    # -------------------------------------------------------------------- what the loop asks
    def loss(self, out: np.ndarray, labels: np.ndarray):
        """The config's loss of a NumPy output PSP (T, N, n_class), as :meth:`Network.loss`."""
        return self.numpy.loss(out, labels)

    def loss_sum(self, loss: float, n: int) -> float:
        return self.numpy.loss_sum(loss, n)

    def predict(self, out: np.ndarray, spikes=None) -> np.ndarray:
        return self.numpy.predict(out)

    def check_batch_fits(self, batch_size: int) -> None:
        """On the CPU, the NumPy engine's memory check (the twin keeps less per neuron); on a GPU, CUDA
        reports its own out-of-memory errors."""
        if self.procs.device.type == "cpu":
            self.numpy.check_batch_fits(-(-batch_size // self.procs.world))

    def tensor(self, x: np.ndarray) -> "torch.Tensor":
        """A NumPy batch as a float32 tensor on the device; shape checked as :meth:`Network.encode` does."""
        c, h, w = self.config.input_shape
        x = np.asarray(x)
        if x.shape[1:] not in ((c, h, w), (c, h, w, self.config.params.n_steps)):
            raise ValueError(f"inputs have shape {x.shape}; this network expects (N, {c}, {h}, {w}) "
                             f"or (N, {c}, {h}, {w}, {self.config.params.n_steps})")
        t = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=self.procs.device)
        if not torch.isfinite(t).all():
            raise ValueError("inputs contain NaN or inf (in float32)")
        return t

    def infer(self, inputs: np.ndarray, *, spikes: bool = False):
        """Forward without gradients: the output PSP (T, N, n_class) as a NumPy array."""
        with torch.no_grad():
            return self.module(self.tensor(inputs)).cpu().numpy()

    def masks(self, n: int, share: slice):
        """The dropout callback of one training step on a global batch of ``n``: each dropout layer's mask
        drawn for the whole batch from :attr:`rng`, in the NumPy engine's layout and order
        (:meth:`reference.layers.Dropout.draw_mask`), then this process's rows, in the twin's layout."""
        def draw(name, a):
            layer = self._dropouts[name]
            if layer.p == 0.0:
                return None
            shape = (n, *a.shape[3:], a.shape[2]) if a.dim() == 5 else (n, *a.shape[2:])  # (N, H, W, C) / (N, F)
            mask = layer.draw_mask(shape, self.rng, np.float32)[share]
            if mask.ndim == 4:
                mask = mask.transpose(0, 3, 1, 2)  # to (N, C, H, W)
            return torch.as_tensor(np.ascontiguousarray(mask), device=a.device)
        return draw

    def _batch_mean(self, s):
        """Mean of ``s`` over the whole batch, all processes' shares together (the paper-era switch)."""
        total = torch.stack([s.sum().to(torch.float64), torch.tensor(float(s.numel()), dtype=torch.float64,
                                                                       device=s.device)])
        dist.all_reduce(total)
        return (total[0] / total[1]).to(s.dtype)


# --------------------------------------------------------------------------------------- optimiser
class TorchAdamW:
    """``torch.optim.AdamW`` (betas 0.9, 0.999, eps 1e-8, weight decay 0.01) over a :class:`TorchNetwork`,
    with :class:`reference.optim.AdamW`'s ``state_dict`` format (``step``, ``m``, ``v`` as NumPy arrays by
    layer name), so that checkpoints are the same file on both engines."""

    def __init__(self, net: TorchNetwork, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01):
        if lr <= 0:
            raise ValueError(f"invalid AdamW learning rate {lr}")
        self.names = list(net.module.w.keys())
        self.params = [net.module.w[k] for k in self.names]
        self.opt = torch.optim.AdamW(self.params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.step_count = 0

    def step(self) -> None:
        self.opt.step()
        self.step_count += 1

    def state_dict(self) -> dict:
        out = {"step": self.step_count, "m": {}, "v": {}}
        for name, p in zip(self.names, self.params):
            st = self.opt.state.get(p, {})
            zero = np.zeros(tuple(p.shape), dtype=np.float32)
            out["m"][name] = st["exp_avg"].detach().cpu().numpy().copy() if "exp_avg" in st else zero
            out["v"][name] = st["exp_avg_sq"].detach().cpu().numpy().copy() if "exp_avg_sq" in st else zero.copy()
        return out

    def load_state_dict(self, state: dict) -> None:
        self.step_count = int(state["step"])
        self.opt.state.clear()
        if self.step_count == 0:
            return
        for name, p in zip(self.names, self.params):
            m, v = np.asarray(state["m"][name]), np.asarray(state["v"][name])
            if m.shape != tuple(p.shape) or v.shape != tuple(p.shape):
                raise ValueError(f"AdamW state of layer {name!r} has shape {m.shape}, the weight {tuple(p.shape)}")
            self.opt.state[p] = {"step": torch.tensor(float(self.step_count), dtype=torch.float32),
                                 "exp_avg": torch.as_tensor(m, dtype=p.dtype, device=p.device).clone(),
                                 "exp_avg_sq": torch.as_tensor(v, dtype=p.dtype, device=p.device).clone()}


# ------------------------------------------------------------------------------------ step, evaluate
def train_step(net: TorchNetwork, inputs: np.ndarray, labels: np.ndarray, optimiser: TorchAdamW,
               max_grad_norm: float = GRAD_NORM_CLIP, weight_bound: float = WEIGHT_CLIP, hook=None):
    """One training step of the whole (global) batch, as :func:`reference.optim.train_step`: forward,
    loss, backward (TSSL-BP through the twin's ``autograd.Function``), gradient-norm clip, AdamW,
    weight clip.  Each process computes its share of the batch (module docstring).

    Returns ``(loss of the whole batch, output PSP (T, N, n_class) of the whole batch as NumPy, gradient
    norm before clipping)``.
    """
    hook = hook or (lambda point: None)
    procs = net.procs
    labels = np.asarray(labels)
    n = len(labels)
    share = procs.share(n)
    x = net.tensor(np.asarray(inputs)[share])
    out = (net.ddp or net.module)(x, net.masks(n, share))
    loss = net.model.loss(out, labels[share], n_total=n)
    optimiser.opt.zero_grad(set_to_none=True)
    (loss * procs.world).backward()  # DDP averages over processes: times world is the whole batch's gradient
    hook("gradients")
    norm = float(torch.nn.utils.clip_grad_norm_(optimiser.params, max_grad_norm))
    if not np.isfinite(norm):
        bad = [k for k, p in zip(optimiser.names, optimiser.params) if not torch.isfinite(p.grad).all()]
        raise FloatingPointError(f"gradient is not finite in layer(s) {bad}")
    hook("clip_grad")
    optimiser.step()
    hook("adamw")
    with torch.no_grad():
        for p in optimiser.params:
            p.clamp_(-weight_bound, weight_bound)
    hook("clip_weights")
    total = procs.sum([float(loss.detach())])[0]
    out_all = procs.gather_rows(out.detach(), n).cpu().numpy()
    return total, out_all, norm


class _Rows:
    """Rows ``lo:hi`` of a split's images, sliced lazily (N-MNIST's sparse frames stay sparse)."""

    def __init__(self, images, lo: int, hi: int):
        self.images, self.lo, self.hi = images, lo, hi

    def __len__(self):
        return self.hi - self.lo

    def __getitem__(self, idx: slice):
        start, stop = idx.start or 0, len(self) if idx.stop is None else min(idx.stop, len(self))
        return self.images[self.lo + start:self.lo + stop]


def evaluate(net: TorchNetwork, split: Split, batch_size: int | None = None, progress: bool = False):
    """:func:`reference.app.train.evaluate` on the torch engine; several processes each evaluate a share of
    the split and gather the predictions, so every process returns the whole split's numbers."""
    procs = net.procs
    if procs.world == 1:
        return evaluate_one(net, split, batch_size, progress)
    share = procs.share(len(split.labels))
    part = Split(_Rows(split.images, share.start, share.stop), split.labels[share], split.source)
    loss, _, preds = evaluate_one(net, part, batch_size, progress and procs.rank == 0)
    parts = procs.gather_objects((loss * len(part.labels), preds))
    preds = np.concatenate([p[1] for p in parts])
    n = max(len(split.labels), 1)
    return sum(p[0] for p in parts) / n, float(np.mean(preds == split.labels)), preds


# ------------------------------------------------------------------------------------------ engine
class TorchEngine:
    """What :func:`reference.app.train.train` asks of an engine, on PyTorch (see the module docstring)."""

    name = "torch"

    def __init__(self, processes: Processes):
        self.procs = processes
        self.writer = processes.rank == 0

    @classmethod
    def from_env(cls, device: str | None = None) -> "TorchEngine":
        return cls(Processes.from_env(device))

    def network(self, config, seed, options: dict) -> TorchNetwork:
        return TorchNetwork(config, seed=seed, processes=self.procs, **options)

    def optimiser(self, net: TorchNetwork, lr: float) -> TorchAdamW:
        return TorchAdamW(net, lr)

    train_step = staticmethod(train_step)
    evaluate = staticmethod(evaluate)

    def any(self, flag) -> bool:
        return self.procs.any(flag)

    def first(self, fn):
        """``fn()`` on rank 0 first, then on the others (e.g. loading a dataset that rank 0 may download
        into the shared cache); returns its result on every process."""
        if self.procs.world == 1:
            return fn()
        result = fn() if self.writer else None
        self.procs.barrier()
        return result if self.writer else fn()

    def abort(self, net: TorchNetwork | None = None) -> None:
        """After an error: release DDP and leave the process group without waiting for the others."""
        if net is not None and getattr(net, "ddp", None) is not None:
            net.ddp = None
        if self.procs.joined and dist.is_initialized():
            dist.destroy_process_group()
            self.procs.joined = False

    def close(self, net: TorchNetwork | None = None) -> None:
        """End of training: drop the DDP wrapper, then leave the process group.  (Destroying the group
        while DDP's reducer is alive made 1 exit in 16 abort with "terminate called without an active
        exception", torch 2.13 on CPU; with the wrapper released first, none in 24.)"""
        if net is not None and net.ddp is not None:
            net.ddp = None
            import gc

            gc.collect()
        self.procs.close()

    def describe(self, config=None, batch_size: int | None = None, options: dict | None = None) -> str:
        """One line: torch version, device, processes; with a config, the global batch and the run's
        Network options, the memory saved for the TSSL-BP backward per process (:func:`saved_state_bytes`)."""
        where = f"{self.procs.world} processes" if self.procs.world > 1 else "1 process"
        text = f"torch {torch.__version__} on {self.procs.device} ({where})"
        options = options or {}
        if config is not None and batch_size and options.get("backward", "tsslbp") == "tsslbp":
            share = -(-batch_size // self.procs.world)
            saved = saved_state_bytes(config, share, options.get("dropout_unit", "feature"))
            text += (f"; saved for the TSSL-BP backward per process (batch {share}): "
                     f"{sum(saved.values()) / 2**20:.1f} MiB (" + ", ".join(f"{k} {v / 2**20:.1f}" for k, v in saved.items())
                     + ")")
        return text

