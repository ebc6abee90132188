"""JAX backend of the twin model: the TSSL-BP non-linearity as a ``jax.custom_vjp``.

Arrays are time first, then ``(N, C, H, W)``; conv weights ``(out, in, kh, kw)`` (``OIHW``).  float64
runs inside ``jax.enable_x64(True)``, so importing this module does not switch JAX's global default.
"""
from __future__ import annotations

import numpy as np

from . import require

jax = require("jax")
jnp = jax.numpy

from .model import collect_results, lif, psp, spike_backward, surrogate  # noqa: E402


def _tsslbp_spike(x, consts):
    """``s = spikes(LIF(x))``; its VJP is TSSL-BP (``consts`` is a hashable tuple of the constants)."""
    c = dict(consts)
    return lif(jnp, x, c["theta_m"], c["threshold"])[2]


def _tsslbp_fwd(x, consts):
    c = dict(consts)
    u, du, s = lif(jnp, x, c["theta_m"], c["threshold"])
    a = psp(jnp, s, 1.0 / c["tau_s"])  # the neuron's own PSP, for the warm-up test
    return s, (u, du, s, a)


def _tsslbp_bwd(consts, res, G):
    # G = dL/ds, JAX's derivative of the PSP filter that follows: the spike error of paper-notes section 3
    return (spike_backward(jnp, G, *res, **dict(consts)),)


tsslbp_spike = jax.custom_vjp(_tsslbp_spike, nondiff_argnums=(1,))
tsslbp_spike.defvjp(_tsslbp_fwd, _tsslbp_bwd)


def _step(u, threshold):
    return jnp.where(u > threshold, jnp.ones_like(u), jnp.zeros_like(u))


def _step_fwd(u, threshold):
    return _step(u, threshold), u


def _step_bwd(threshold, u, g):
    return (g * surrogate(jnp, u, threshold),)


surrogate_step = jax.custom_vjp(_step, nondiff_argnums=(1,))
surrogate_step.defvjp(_step_fwd, _step_bwd)


class JaxBackend:
    """Array operations and autodiff of :class:`~reference.twins.model.TwinModel` in JAX (CPU).

    dtype : "float64" (checks to round-off) or "float32" (the authors' precision).
    """

    name = "jax"
    xp = jnp

    def __init__(self, dtype="float64"):
        self.dtype = self.np_dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")

    def asarray(self, x, like=None):
        return jnp.asarray(np.asarray(x), dtype=self.dtype if like is None else like.dtype)

    @staticmethod
    def permute(x, axes):
        return jnp.transpose(x, axes)

    @staticmethod
    def conv(a, w, stride, padding, dilation):
        """Per-step 2-D convolution of ``a`` (T, N, C, H, W) with ``w`` (out, in, kh, kw), no bias."""
        t, n = a.shape[:2]
        y = jax.lax.conv_general_dilated(
            a.reshape(t * n, *a.shape[2:]), w, window_strides=tuple(stride),
            padding=[(padding[0], padding[0]), (padding[1], padding[1])], rhs_dilation=tuple(dilation),
            dimension_numbers=("NCHW", "OIHW", "NCHW"), precision=jax.lax.Precision.HIGHEST)
        return y.reshape(t, n, *y.shape[1:])

    @staticmethod
    def log_softmax(z):
        return jax.nn.log_softmax(z, axis=1)

    @staticmethod
    def stop_gradient(x):
        return jax.lax.stop_gradient(x)

    @staticmethod
    def sigmoid(z):
        return jax.nn.sigmoid(z)

    def vjp(self, fn, args_np, cotangent_np):
        """Gradients of ``<cotangent, fn(*args)>`` w.r.t. each argument (NumPy in, NumPy out)."""
        with jax.enable_x64(self.dtype == np.float64):
            out, pullback = jax.vjp(fn, *[self.asarray(a) for a in args_np])
            return [np.asarray(g) for g in pullback(self.asarray(cotangent_np, like=out))]

    @staticmethod
    def tsslbp_spike(x, consts):
        return tsslbp_spike(x, tuple(sorted(consts.items())))

    @staticmethod
    def surrogate_step(u, threshold):
        return surrogate_step(u, threshold)

    def run(self, model, weights_np, probe_shapes, inputs_np, labels_np) -> dict:
        """Forward, loss and ``jax.value_and_grad``; see :meth:`TwinModel.gradients` for the result."""
        with jax.enable_x64(self.dtype == np.float64):
            weights = {k: self.asarray(v) for k, v in weights_np.items()}
            probes = {k: jnp.zeros(s, dtype=self.dtype) for k, s in probe_shapes.items()}
            x = self.asarray(inputs_np)

            def fn(w, p):
                return model.loss_fn(w, p, x, labels_np)

            grad_fn = jax.jit(jax.value_and_grad(fn, argnums=(0, 1), has_aux=True))
            (loss, records), (gw, gp) = grad_fn(weights, probes)
            return collect_results(float(loss), gw, gp, records, np.asarray)
