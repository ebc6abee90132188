"""PyTorch backend of the twin model: the TSSL-BP non-linearity as a ``torch.autograd.Function``.

Tensors are time first, then PyTorch's ``(N, C, H, W)``; conv weights are ``(out, in, kh, kw)`` as in
``torch.nn.functional.conv2d`` (the authors' layout without their trailing time axis of size 1).
"""
from __future__ import annotations

import numpy as np

from . import require

torch = require("torch")
F = torch.nn.functional

from .model import collect_results, lif, psp, spike_backward, surrogate  # noqa: E402  (after the import check)


class TSSLBPSpike(torch.autograd.Function):
    """``s = spikes(LIF(x))`` forward; TSSL-BP backward: ``dL/dx = tsslbp_backward(dL/ds, ...)``.

    The incoming gradient is ``dL/ds``, which PyTorch computes by differentiating the PSP filter that
    follows: exactly the spike error ``G[k] = sum_m eps[m-k] dL/da[m]`` of paper-notes section 3.
    Vectorised over neurons; the only Python loops run over the T time steps.

    Saved for the backward, per spiking layer of ``T * N * F`` neuron-steps: ``u`` and ``du`` in the
    input's dtype and the spikes as booleans, 9 bytes per neuron-step in float32.  The neuron's own PSP
    ``a`` (the warm-up test) is recomputed from the spikes in the backward instead of being kept.
    """

    @staticmethod
    def forward(ctx, x, consts):
        u, du, s = lif(torch, x, consts["theta_m"], consts["threshold"])
        ctx.save_for_backward(u, du, s > 0)
        ctx.consts = consts
        return s

    @staticmethod
    def backward(ctx, G):
        u, du, fired = ctx.saved_tensors
        s = fired.to(u.dtype)
        a = psp(torch, s, 1.0 / ctx.consts["tau_s"])  # the neuron's own PSP, for the warm-up test
        return spike_backward(torch, G, u, du, s, a, **ctx.consts), None


class SurrogateStep(torch.autograd.Function):
    """``s = [u > threshold]`` forward; backward ``dL/du = dL/ds f(u)`` with the sigmoid surrogate ``f``."""

    @staticmethod
    def forward(ctx, u, threshold):
        ctx.save_for_backward(u)
        ctx.threshold = threshold
        return (u > threshold).to(u.dtype)

    @staticmethod
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return g * surrogate(torch, u, ctx.threshold), None


class TorchBackend:
    """Array operations and autodiff of :class:`~reference.twins.model.TwinModel` in PyTorch, on ``device``.

    dtype : "float64" (checks to round-off) or "float32" (the authors' precision).
    device : where new tensors go ("cpu", "cuda", "cuda:1", or a ``torch.device``).
    """

    name = "torch"
    xp = torch

    def __init__(self, dtype="float64", device="cpu"):
        self.np_dtype = np.dtype(dtype)
        if self.np_dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.np_dtype}")
        self.dtype = {"float64": torch.float64, "float32": torch.float32}[self.np_dtype.name]
        self.device = torch.device(device)

    def asarray(self, x, like=None):
        if like is None:
            return torch.as_tensor(np.asarray(x), dtype=self.dtype, device=self.device)
        return torch.as_tensor(np.asarray(x), dtype=like.dtype, device=like.device)

    @staticmethod
    def permute(x, axes):
        return x.permute(*axes)

    @staticmethod
    def conv(a, w, stride, padding, dilation):
        """Per-step 2-D convolution of ``a`` (T, N, C, H, W) with ``w`` (out, in, kh, kw), no bias."""
        t, n = a.shape[:2]
        y = F.conv2d(a.reshape(t * n, *a.shape[2:]), w, stride=stride, padding=padding, dilation=dilation)
        return y.reshape(t, n, *y.shape[1:])

    @staticmethod
    def log_softmax(z):
        return torch.log_softmax(z, dim=1)

    @staticmethod
    def stop_gradient(x):
        return x.detach()

    @staticmethod
    def sigmoid(z):
        return torch.sigmoid(z)

    def vjp(self, fn, args_np, cotangent_np):
        """Gradients of ``<cotangent, fn(*args)>`` w.r.t. each argument (NumPy in, NumPy out)."""
        args = [self.asarray(a).requires_grad_(True) for a in args_np]
        out = fn(*args)
        out.backward(self.asarray(cotangent_np))
        return [a.grad.detach().cpu().numpy() for a in args]

    @staticmethod
    def tsslbp_spike(x, consts):
        return TSSLBPSpike.apply(x, consts)

    @staticmethod
    def surrogate_step(u, threshold):
        return SurrogateStep.apply(u, threshold)

    def run(self, model, weights_np, probe_shapes, inputs_np, labels_np) -> dict:
        """Forward, loss and ``loss.backward()``; see :meth:`TwinModel.gradients` for the result."""
        weights = {k: self.asarray(v).requires_grad_(True) for k, v in weights_np.items()}
        probes = {k: torch.zeros(s, dtype=self.dtype, device=self.device, requires_grad=True)
                  for k, s in probe_shapes.items()}
        loss, records = model.loss_fn(weights, probes, self.asarray(inputs_np), labels_np)
        loss.backward()
        return collect_results(float(loss.detach()), {k: w.grad for k, w in weights.items()},
                        {k: p.grad for k, p in probes.items()}, records, lambda t: t.detach().cpu().numpy())

