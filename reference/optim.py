"""The authors' training step around the gradient: norm clipping, AdamW, weight clipping.

Their loop (``main.py``): ``clip_grad_norm_(params, 1)``, ``torch.optim.AdamW(lr, betas=(0.9, 0.999))``
(PyTorch defaults otherwise: ``eps = 1e-8``, ``weight_decay = 0.01``), then every weight clamped to
``[-4, 4]``.  The update below follows PyTorch's AdamW (decoupled weight decay) operation by operation.
"""
from __future__ import annotations

import math

import numpy as np

from ._jit import kernel
from .params import GRAD_NORM_CLIP, WEIGHT_CLIP


def _sum_squares(x):
    """sum(x**2) accumulated in float64, over a flat array."""
    total = 0.0
    for i in range(x.size):
        v = np.float64(x[i])
        total += v * v
    return total


def _adamw_kernel(w, g, m, v, decay, b1, one_minus_b1, b2, one_minus_b2, bc2_sqrt, eps, step_size):
    """One AdamW update of flat arrays, element by element in PyTorch's order (see :class:`AdamW`)."""
    for i in range(w.size):
        wi = w[i] * decay
        mi = m[i] * b1 + one_minus_b1 * g[i]
        vi = v[i] * b2 + one_minus_b2 * g[i] * g[i]
        m[i] = mi
        v[i] = vi
        w[i] = wi - step_size * (mi / (np.sqrt(vi) / bc2_sqrt + eps))


_sum_squares_py, _adamw_kernel_py = _sum_squares, _adamw_kernel
_sum_squares = kernel(_sum_squares_py)
_adamw_kernel = kernel(_adamw_kernel_py)


def clip_grad_norm(grads: dict[str, np.ndarray], max_norm: float = GRAD_NORM_CLIP) -> float:
    """Scale all gradients in place so that their joint L2 norm is at most ``max_norm`` (as PyTorch).

    ``coef = max_norm / (total_norm + 1e-6)``, applied when ``coef < 1``.  Returns the norm before clipping.
    Raises FloatingPointError on a NaN or infinite norm, instead of spreading NaN into the weights.
    """
    total = math.sqrt(sum(_sum_squares(np.ascontiguousarray(g).reshape(-1)) for g in grads.values()))
    if not math.isfinite(total):
        bad = [name for name, g in grads.items() if not np.all(np.isfinite(g))]
        raise FloatingPointError(f"gradient is not finite in layer(s) {bad}")
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= g.dtype.type(coef)
    return total


def clip_weights(weights: dict[str, np.ndarray], bound: float = WEIGHT_CLIP) -> None:
    """Clamp every weight to ``[-bound, bound]`` in place (the authors' ``weight_clipper``)."""
    for w in weights.values():
        np.clip(w, -bound, bound, out=w)


class AdamW:
    """AdamW with PyTorch's semantics, on a dict of weight arrays updated in place.

    .. math::

        w &\\leftarrow w (1 - \\eta \\lambda),\\quad m \\leftarrow \\beta_1 m + (1-\\beta_1) g,\\quad
        v \\leftarrow \\beta_2 v + (1-\\beta_2) g^2\\\\
        w &\\leftarrow w - \\frac{\\eta}{1-\\beta_1^t}\\, \\frac{m}{\\sqrt{v}/\\sqrt{1-\\beta_2^t} + \\epsilon}

    Parameters
    ----------
    weights : dict name -> ndarray, updated in place
    lr : float, learning rate ``eta`` (config key ``lr``)
    betas : (float, float)
    eps : float
    weight_decay : float, ``lambda`` (PyTorch's AdamW default 0.01)
    """

    def __init__(self, weights: dict, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.01):
        if lr <= 0 or not 0 <= betas[0] < 1 or not 0 <= betas[1] < 1 or eps <= 0 or weight_decay < 0:
            raise ValueError(f"invalid AdamW settings lr={lr}, betas={betas}, eps={eps}, weight_decay={weight_decay}")
        self.weights = weights
        self.lr, self.betas, self.eps, self.weight_decay = float(lr), tuple(betas), float(eps), float(weight_decay)
        self.step_count = 0
        self.m = {k: np.zeros_like(w) for k, w in weights.items()}
        self.v = {k: np.zeros_like(w) for k, w in weights.items()}

    def step(self, grads: dict[str, np.ndarray]) -> None:
        """One update of every weight from its gradient (same keys as the weights)."""
        self.step_count += 1
        b1, b2 = self.betas
        bc1 = 1.0 - b1 ** self.step_count
        bc2_sqrt = math.sqrt(1.0 - b2 ** self.step_count)
        step_size = self.lr / bc1
        for name, w in self.weights.items():
            t = w.dtype.type
            g = np.ascontiguousarray(grads[name], dtype=w.dtype)
            if not (w.flags.c_contiguous and self.m[name].flags.c_contiguous):
                raise ValueError(f"AdamW needs contiguous arrays (layer {name!r})")
            _adamw_kernel(
                w.reshape(-1), g.reshape(-1), self.m[name].reshape(-1), self.v[name].reshape(-1),
                t(1.0 - self.lr * self.weight_decay), t(b1), t(1.0 - b1), t(b2), t(1.0 - b2), t(bc2_sqrt),
                t(self.eps), t(step_size),
            )

    def state_dict(self) -> dict:
        """Arrays and counters needed to resume exactly."""
        return {"step": self.step_count, "m": {k: v.copy() for k, v in self.m.items()},
                "v": {k: v.copy() for k, v in self.v.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`."""
        self.step_count = int(state["step"])
        for k in self.weights:
            self.m[k][...] = state["m"][k]
            self.v[k][...] = state["v"][k]


def train_step(net, inputs: np.ndarray, labels: np.ndarray, optimiser: AdamW,
               max_grad_norm: float = GRAD_NORM_CLIP, weight_bound: float = WEIGHT_CLIP, hook=None):
    """One training step as the authors' loop: forward, loss, TSSL-BP backward, clip, AdamW, clip weights.

    ``hook(point)``, if given, is called after each phase ("gradients", "clip_grad", "adamw",
    "clip_weights"); the training loop's fault-injection tests use it.

    Returns ``(loss, out, grad_norm)``: the loss before the update, the output PSP (T, N, n_class) and the
    gradient norm before clipping.
    """
    hook = hook or (lambda point: None)
    loss, grads, out = net.gradients(inputs, labels, train=True)
    hook("gradients")
    norm = clip_grad_norm(grads, max_grad_norm)
    hook("clip_grad")
    optimiser.step(grads)
    hook("adamw")
    clip_weights(net.weights, weight_bound)
    hook("clip_weights")
    return loss, out, norm
