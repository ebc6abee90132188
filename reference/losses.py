"""Losses on the output layer's PSP, their gradients ``g = dL/da^L``, and prediction.

All take the output PSP ``a`` of shape ``(T, N, n_class)`` (time first) and integer labels ``(N,)``, and
return ``(loss, g)`` with ``g`` of the shape and dtype of ``a``.  Paper-notes section 2.

- :func:`kernel_loss` (the paper's spike-sequence loss): ``L = 1/2 sum_{n,i,t} (a_i[t] - target_i[t])^2``
  summed over the batch (not averaged, as the authors' code), ``g = a - target``.  The target is the
  desired spike train passed through the PSP filter; the authors' code filters it TWICE (see
  :func:`kernel_target`), which is our default.
- :func:`count_loss`: the spike-count loss of the authors' code.
- :func:`softmax_loss`: cross-entropy on the output "counts", averaged over the batch.

Note on "counts": the authors' code counts the output PSP summed over time, ``sum_t a_i[t]``, not the
number of spikes (their network returns PSPs).  The PSP sum weighs each spike by how long its PSP
lasts before the end of the window (a spike at t adds ``sum_{k < T-t} eps[k]``), so it breaks ties in
favour of earlier spikes and can even rank fewer, earlier spikes above more, later ones (T = 5,
tau_s = 3: ``[1,1,0,0,0]`` sums to 1.671, ``[0,0,1,1,1]`` to 1.593; tutorial lesson 1).  :func:`predict` and :func:`count_loss` follow the code by
default (``count_of="psp"``) and offer ``"spikes"``.
"""
from __future__ import annotations

import numpy as np

from .neuron import psp

TARGET_FILTERS = ("double", "single")


def desired_spike_train(n_steps: int, pattern=None) -> np.ndarray:
    """The spike train the label neuron should fire, shape (n_steps,), float64 0/1.

    The authors' code defines it for ``T = 5`` as ``[0, 1, 1, 1, 1]`` and for ``T`` a multiple of 10 as
    ``[0, 1]`` repeated; for every other ``T`` it fails.  We generalise with a silent first step and then
    a spike at every step, ``[0, 1, 1, ..., 1]`` (our choice, which equals theirs at T = 5).  The paper
    quotes ``[0, 1, 0, 1, 1]`` (their issue #14); pass any ``pattern`` of length ``n_steps`` to use it.
    """
    if pattern is not None:
        pattern = np.asarray(pattern, dtype=np.float64)
        if pattern.shape != (n_steps,) or not np.isin(pattern, (0, 1)).all():
            raise ValueError(f"pattern must be {n_steps} values of 0 or 1, got {pattern.tolist()}")
        return pattern
    if n_steps >= 10 and n_steps % 10 == 0:
        return np.tile([0.0, 1.0], n_steps // 2)
    out = np.ones(n_steps)
    out[0] = 0.0
    return out


def kernel_target(n_steps: int, tau_s: float, filter: str = "double", pattern=None, dtype=np.float32) -> np.ndarray:
    """The target PSP of the label neuron for the kernel loss, shape (n_steps,).

    ``filter="double"`` (default, the authors' code): ``eps * (eps * d)``, since their training loop filters
    the desired train once and the loss filters it again; for T = 5, tau_s = 3 this is
    ``[0, 0.1111, 0.2593, 0.4074, 0.5391]``.  ``filter="single"`` (the paper's equation): ``eps * d``,
    ``[0, 0.3333, 0.5556, 0.7037, 0.8025]``.  Other neurons' target is 0.
    """
    if filter not in TARGET_FILTERS:
        raise ValueError(f"filter must be one of {TARGET_FILTERS}, got {filter!r}")
    d = desired_spike_train(n_steps, pattern).astype(dtype)
    once = psp(d, tau_s)
    return psp(once, tau_s) if filter == "double" else once


def _check(a: np.ndarray, labels: np.ndarray) -> np.ndarray:
    if a.ndim != 3:
        raise ValueError(f"output PSP must have shape (T, N, n_class), got {a.shape}")
    labels = np.asarray(labels)
    if labels.shape != (a.shape[1],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers of shape ({a.shape[1]},), got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= a.shape[2]):
        raise ValueError(f"labels must lie in 0..{a.shape[2] - 1}, got {labels.min()}..{labels.max()}")
    return labels


def kernel_loss(a: np.ndarray, labels: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Kernel (spike-sequence) loss ``L = 1/2 sum (a - target)^2`` and ``g = a - target``.

    Parameters
    ----------
    a : (T, N, n_class) output PSP
    labels : (N,) int
    target : (T,) the label neuron's target PSP (:func:`kernel_target`)
    """
    labels = _check(a, labels)
    full = np.zeros_like(a)
    full[:, np.arange(a.shape[1]), labels] = target.astype(a.dtype)[:, None]
    g = a - full
    return float(0.5 * np.sum(g.astype(np.float64) ** 2)), g


def output_counts(a: np.ndarray, spikes: np.ndarray | None = None, count_of: str = "psp") -> np.ndarray:
    """Per-sample, per-class "count": ``sum_t a[t]`` (authors' code) or the number of spikes. Shape (N, n_class)."""
    if count_of == "psp":
        return a.sum(axis=0)
    if count_of == "spikes":
        if spikes is None:
            raise ValueError("count_of='spikes' needs the output spikes")
        return spikes.sum(axis=0)
    raise ValueError(f"count_of must be 'psp' or 'spikes', got {count_of!r}")


def count_loss(a: np.ndarray, labels: np.ndarray, desired_count: float, undesired_count: float) -> tuple[float, np.ndarray]:
    """Spike-count loss of the authors' code.

    ``delta_i = (count_i - target_i)/T`` with ``count_i = sum_t a_i[t]`` and target ``desired_count`` for
    the label neuron, ``undesired_count`` for the others; delta is zeroed in the harmless direction (label
    neuron above its target, other neurons below theirs).  The same delta is the gradient at every step,
    ``g[t] = delta`` (their straight-through backward), and ``L = 1/2 sum_{n,i,t} delta^2``.
    """
    labels = _check(a, labels)
    n_steps = a.shape[0]
    target = np.full(a.shape[1:], undesired_count, dtype=a.dtype)
    target[np.arange(a.shape[1]), labels] = desired_count
    delta = (a.sum(axis=0) - target) / a.dtype.type(n_steps)
    is_label = np.zeros(a.shape[1:], bool)
    is_label[np.arange(a.shape[1]), labels] = True
    delta[is_label & (delta > 0)] = 0
    delta[~is_label & (delta < 0)] = 0
    g = np.broadcast_to(delta, a.shape).copy()
    return float(0.5 * np.sum(g.astype(np.float64) ** 2)), g


def softmax_loss(a: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Cross-entropy of softmax over ``sum_t a[t]``, averaged over the batch; ``g[t] = (softmax - onehot)/N``."""
    labels = _check(a, labels)
    z = a.sum(axis=0).astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = a.shape[1]
    loss = -logp[np.arange(n), labels].mean()
    grad = np.exp(logp)
    grad[np.arange(n), labels] -= 1.0
    g = np.broadcast_to((grad / n).astype(a.dtype), a.shape).copy()
    return float(loss), g


def predict(a: np.ndarray, spikes: np.ndarray | None = None, count_of: str = "psp") -> np.ndarray:
    """Predicted class per sample: argmax of the output counts (:func:`output_counts`). Shape (N,), int64.

    Ties go to the lowest class index (``np.argmax``): a sample whose output layer stays silent is
    predicted as class 0.  Early in training, when most output neurons are silent, this inflates the
    share of class 0 among the predictions (tutorial lesson 8).
    """
    return np.argmax(output_counts(a, spikes, count_of), axis=1)
