"""A network's loss and accuracy on a dataset split, and the split itself.

Shared by the training loop (:mod:`reference.app.train`) and both engines' evaluation (the PyTorch engine,
:mod:`reference.engines.torch_engine`, evaluates a share of the split per process with the same function).
Application layer: it only calls the network's methods.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..config import Config


@dataclass
class Split:
    """A dataset split ready for the network.

    Attributes
    ----------
    images : float32 (N, C, H, W) normalised images, or spike trains (N, C, H, W, T) (any object that
        ``images[idx]`` turns into such an array, e.g. :class:`reference.app.nmnist.SpikeFrames`)
    labels : int64 (N,)
    source : where the data came from
    augment : ``augment(batch, rng) -> batch`` applied to every training batch (CIFAR-10: the authors'
        random crop and flip), or None
    """

    images: np.ndarray
    labels: np.ndarray
    source: str
    augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None

    def fingerprint(self) -> str:
        """SHA-256 (hex) of the split's arrays: shapes, dtypes and bytes of the images (for sparse spike
        frames, their index arrays) and of the labels.  A run records it, so that ``--resume`` on other
        data (another ``--data-dir``) is refused instead of training on other images (~0.4 s for MNIST's
        60,000 training images)."""
        import hashlib

        h = hashlib.sha256()
        parts = ([self.images.indices, self.images.offsets, np.array(self.images.n_steps)]
                 if hasattr(self.images, "indices") and hasattr(self.images, "offsets") else [self.images])
        for arr in (*parts, self.labels):
            arr = np.ascontiguousarray(arr)
            h.update(f"{arr.dtype.str}{arr.shape};".encode())
            h.update(memoryview(arr.reshape(-1).view(np.uint8)))
        return h.hexdigest()


def eval_batch_size(config: Config, budget_bytes: int = 16 << 20) -> int:
    """The evaluation batch size: the largest spiking layer's input current for the whole batch
    (``T * batch * neurons`` float32 values) near ``budget_bytes``, between 50 and 500.

    Measured with ``benchmarks/test_pass.py`` on 2 cores: throughput peaks where one layer's arrays
    stay within the last-level cache (16 MB: the MNIST CNN at 50-100, 97 here; the 400-400 MLP at
    250-500, 500 here); larger batches make the elementwise kernels wait for memory, smaller ones make
    the matrix products small.
    """
    t = config.params.n_steps
    per_sample = max(t * math.prod(c["out_shape"]) * 4 for _, c in config.layers if c["type"] in ("conv", "linear"))
    return int(min(500, max(50, budget_bytes // per_sample)))


def evaluate(net, split: Split, batch_size: int | None = None, progress: bool = False):
    """Loss and accuracy of ``net`` on a split (no dropout, weights unchanged), through the forward-only
    path :meth:`reference.network.Network.infer`; ``batch_size`` defaults to :func:`eval_batch_size`.
    ``net`` is a :class:`~reference.network.Network` or anything with its ``config``, ``count_of``,
    ``infer``, ``loss``, ``loss_sum`` and ``predict`` (the torch engine's
    :class:`~reference.engines.torch_engine.TorchNetwork`).

    Returns ``(mean loss per sample, accuracy in [0, 1], predictions (N,))``; the loss is the config's,
    summed over samples (:meth:`reference.network.Network.loss_sum`) and divided by their number.
    """
    batch_size = batch_size or eval_batch_size(net.config)
    preds = np.empty(len(split.labels), dtype=np.int64)
    total = 0.0
    idx = range(0, len(split.labels), batch_size)
    if progress:
        from tqdm.auto import tqdm
        idx = tqdm(idx, desc="evaluate", unit="batch", leave=False)
    for i in idx:
        x, y = split.images[i:i + batch_size], split.labels[i:i + batch_size]
        out, spikes = net.infer(x, spikes=True) if net.count_of == "spikes" else (net.infer(x), None)
        loss, _ = net.loss(out, y)
        total += net.loss_sum(loss, len(y))
        preds[i:i + len(y)] = net.predict(out, spikes)
    accuracy = float(np.mean(preds == split.labels)) if len(preds) else 0.0
    return total / max(len(split.labels), 1), accuracy, preds
