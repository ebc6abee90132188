"""Forward of the neuron and its synapse: the PSP filter and the leaky integrate-and-fire (LIF) neuron.

Time is the FIRST axis of every array here: ``(T, ...)`` with any trailing neuron shape, so one neuron's
trace is just a ``(T,)`` vector.  Units: time in steps, membrane potential ``u`` in units of the threshold
scale (the configs use ``threshold = 1``), PSPs are dimensionless (a spike train filtered by a kernel that
sums to about one).

Equations (paper-notes section 1; the paper's Eq. (1)-(3) describe the continuous-time model, this is its
discrete form as the authors' code runs it):

.. math::

    a[t] &= a[t-1] + \\theta_s (s[t] - a[t-1]),                 &a[-1] = 0    &\\quad\\text{(PSP)}\\\\
    du[t] &= -\\theta_m u_r[t-1] + x[t],  \\quad u[t] = u_r[t-1] + du[t]   &&\\quad\\text{(leak, integrate)}\\\\
    s[t] &= [u[t] > V_{th}], \\quad u_r[t] = u[t] (1 - s[t])              &&\\quad\\text{(fire, reset to 0)}

with ``theta_s = 1/tau_s`` and ``theta_m = 1/tau_m``.  ``u`` is kept BEFORE the reset: the backward pass
needs it, and it is the trace one plots against the threshold.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._jit import as_scalar, kernel, n_chunks, prange
from .params import NeuronParams


def psp_kernel(n_steps: int, tau_s: float, dtype=np.float64) -> np.ndarray:
    """The PSP kernel ``eps[k] = theta_s (1 - theta_s)^k`` for ``k = 0 .. n_steps-1``.

    It is the response ``a`` of the synaptic filter to one spike at ``t = 0``; it sums to
    ``1 - (1 - theta_s)^T``, about one (the authors' ``glv.syn_a``, their issue #4 asks why it is divided
    by ``tau_s``: that normalisation is this ``theta_s`` factor).

    Returns
    -------
    eps : ndarray, shape (n_steps,), ``dtype``
    """
    theta_s = 1.0 / tau_s
    k = np.arange(n_steps, dtype=np.float64)
    return (theta_s * (1.0 - theta_s) ** k).astype(dtype)


def _psp_kernel(s, theta_s, chunks, out):
    """Recursive first-order filter over time for a ``(T, M)`` array (see :func:`psp`)."""
    n_steps, n = s.shape
    for c in prange(chunks):
        lo = c * n // chunks
        hi = (c + 1) * n // chunks
        for m in range(lo, hi):
            out[0, m] = s[0, m] * theta_s
        for t in range(1, n_steps):
            for m in range(lo, hi):
                prev = out[t - 1, m]
                out[t, m] = prev + (s[t, m] - prev) * theta_s


_psp_kernel_py = _psp_kernel
_psp_kernel = kernel(_psp_kernel_py)


def psp(s: np.ndarray, tau_s: float) -> np.ndarray:
    """Filter a spike train (or any input over time) through the synapse: ``a = eps * s``.

    .. math:: a[t] = a[t-1] + \\theta_s (s[t] - a[t-1]),\\quad a[-1] = 0

    The same filter turns the input image (repeated over time) into the first layer's input, and every
    layer's spikes into its output (paper-notes section 1); :func:`encode_input` is the same filter in the
    authors' operation order for the input, equal to this one to a few float32 ulps.

    Parameters
    ----------
    s : ndarray, shape (T, ...), float32 or float64
        Spike train (0/1) or input current over time; time is axis 0.
    tau_s : float
        Synaptic time constant in steps.

    Returns
    -------
    a : ndarray, same shape and dtype as ``s``
    """
    s = _as_float_array(s, "s")
    flat = np.ascontiguousarray(s.reshape(s.shape[0], -1))
    out = np.empty_like(flat)
    _psp_kernel(flat, as_scalar(1.0 / tau_s, flat.dtype), n_chunks(flat.shape[1]), out)
    return out.reshape(s.shape)


def _encode_kernel(x, tau_s, inv_tau_s, reciprocal, chunks, out):
    """The authors' input filter over time for a ``(T, M)`` array, in their operation order (see :func:`encode_input`).

    ``S[t] = (S[t-1] - S[t-1]/tau_s) + x[t]``, ``out[t] = S[t]/tau_s``, ``S[-1] = 0``; with
    ``reciprocal`` every ``/tau_s`` is ``* inv_tau_s`` instead (PyTorch's CUDA division by a scalar).
    """
    n_steps, n = x.shape
    syn = np.zeros(n, dtype=x.dtype)
    for c in prange(chunks):
        lo = c * n // chunks
        hi = (c + 1) * n // chunks
        for t in range(n_steps):
            for m in range(lo, hi):
                prev = syn[m]
                leak = prev * inv_tau_s if reciprocal else prev / tau_s
                cur = prev - leak + x[t, m]
                syn[m] = cur
                out[t, m] = cur * inv_tau_s if reciprocal else cur / tau_s


_encode_kernel_py = _encode_kernel
_encode_kernel = kernel(_encode_kernel_py)

#: How :func:`encode_input` divides by ``tau_s``: ``"true"`` (PyTorch on the CPU) or ``"reciprocal"``
#: (PyTorch on CUDA, which multiplies by the float32 reciprocal of a Python-scalar divisor).
ENCODE_DIVISIONS = ("true", "reciprocal")


def encode_input(x: np.ndarray, tau_s: float, *, division: str = "true") -> np.ndarray:
    """The first layer's input: a current over time (the image repeated T times) through the synaptic filter,
    computed in the authors' operation order.

    Two forms of the same filter (paper-notes section 1), equal in exact arithmetic:

    .. math::

        a[t] &= a[t-1] + \\theta_s (x[t] - a[t-1]),\\quad a[-1] = 0
              &&\\quad\\text{(psp; the authors' form inside their neurons)}\\\\
        S[t] &= S[t-1] - S[t-1]/\\tau_s + x[t],\\quad a[t] = S[t]/\\tau_s,\\quad S[-1] = 0
              &&\\quad\\text{(this function; the authors' input encoding)}

    (``S = tau_s a``).  Rounded, they differ: in float32, with ``tau_s = 3``, about a quarter of the
    entries of an encoded batch of normalised MNIST digits differ, by 1 to 3 ulp (at most 3.6e-7), and a
    membrane of the first layer that lands within an ulp of the threshold can then decide the other way
    (measured with a trained MNIST CNN: 2 of 13 million first-layer spike decisions on 300 test digits).
    The authors encode the input with the second form (the ``psp`` function of their
    ``functions/tsslbp.py``: ``syn = syn - syn / tau_s + inputs[..., t]; syns[..., t] = syn / tau_s``),
    so this function gives a first-layer input bit-identical to theirs; only the summation order of the
    first layer's weighted sum (BLAS, cuDNN) then separates the two.  Inside the layers they use the
    first form, as :func:`lif_forward` does.

    PyTorch semantics: a float32 tensor divided by a Python number is a float32 operation with the
    number rounded to float32 (``tau_s = 3`` is exact).  On the CPU that is a true division
    (``division="true"``); PyTorch's CUDA kernel instead multiplies by the reciprocal,
    ``x * float32(1/tau_s)`` (``division="reciprocal"``; "may lose one bit", says the comment in its
    ``div_true_kernel_cuda``), which differs from the true division in a third or more of the float32
    results for ``tau_s = 3`` (none for ``tau_s`` a power of two).  The authors' code is written for
    CUDA (their tensors live on the GPU), so ``"reciprocal"`` is what their runs computed; ``"true"`` is
    what their code computes on a CPU, the one the tests can compare with PyTorch here.  (The reciprocal
    is ``float32(1/tau_s)``; PyTorch versions compute it as ``1.0f/float32(tau_s)`` or from the double
    ``1/tau_s``, the same float32 for every integer ``tau_s`` below 1000.)

    Parameters
    ----------
    x : ndarray, shape (T, ...), float32 or float64
        Input current over time (time first), e.g. the normalised image repeated T times.
    tau_s : float
        Synaptic time constant in steps.
    division : {"true", "reciprocal"}
        How ``/tau_s`` is computed: PyTorch on the CPU, or on CUDA (see above).

    Returns
    -------
    a : ndarray, same shape and dtype as ``x``
    """
    if division not in ENCODE_DIVISIONS:
        raise ValueError(f"division must be one of {ENCODE_DIVISIONS}, got {division!r}")
    x = _as_float_array(x, "x")
    flat = np.ascontiguousarray(x.reshape(x.shape[0], -1))
    out = np.empty_like(flat)
    dt = flat.dtype
    _encode_kernel(flat, as_scalar(tau_s, dt), as_scalar(1.0 / tau_s, dt), division == "reciprocal",
                   n_chunks(flat.shape[1]), out)
    return out.reshape(x.shape)


@dataclass
class NeuronState:
    """What the forward pass of a spiking layer records, for the backward pass and for plots.

    All arrays have shape ``(T, ...)`` (time first, then the layer's neuron shape) and the input's dtype.

    Attributes
    ----------
    u : membrane potential before reset (authors: ``mems``)
    du : membrane increment at each step (authors: ``mem_updates``)
    s : spikes, 0.0 or 1.0 (authors: ``outputs``)
    a : the neuron's output PSP (authors: ``syns_posts``)
    """

    u: np.ndarray
    du: np.ndarray
    s: np.ndarray
    a: np.ndarray

    @property
    def firing_rate(self) -> float:
        """Mean number of spikes per neuron and time step."""
        return float(self.s.mean()) if self.s.size else 0.0


def _lif_kernel(x, theta_m, theta_s, threshold, chunks, u, du, s, a):
    """LIF neurons with reset to zero, and their output PSP, for a ``(T, M)`` current ``x``.

    The arithmetic is written in the order of the authors' float32 code (``du = (-theta_m) * mem + x``,
    ``mem += du``, ``syn = syn + (out - syn) * theta_s``), so the spike decisions are bit-identical for
    identical input currents.
    """
    n_steps, n = x.shape
    mem = np.zeros(n, dtype=x.dtype)
    syn = np.zeros(n, dtype=x.dtype)
    neg_theta_m = -theta_m
    for c in prange(chunks):
        lo = c * n // chunks
        hi = (c + 1) * n // chunks
        for t in range(n_steps):
            for m in range(lo, hi):
                step = neg_theta_m * mem[m] + x[t, m]
                v = mem[m] + step
                du[t, m] = step
                u[t, m] = v
                fired = v > threshold
                s[t, m] = fired
                o = s[t, m]
                if fired:
                    mem[m] = 0.0
                else:
                    mem[m] = v
                syn[m] = syn[m] + (o - syn[m]) * theta_s
                a[t, m] = syn[m]


_lif_kernel_py = _lif_kernel
_lif_kernel = kernel(_lif_kernel_py, parallel=True)


def lif_forward(x: np.ndarray, params: NeuronParams, threshold: float | None = None) -> NeuronState:
    """Run LIF neurons over time on an input current and record their state.

    .. math::

        du[t] = -\\theta_m u_r[t-1] + x[t],\\quad u[t] = u_r[t-1] + du[t],\\quad
        s[t] = [u[t] > V_{th}],\\quad u_r[t] = u[t](1 - s[t]),\\quad a = \\epsilon * s

    Parameters
    ----------
    x : ndarray, shape (T, ...), float32 or float64
        Input current of each neuron at each step (``x_i[t] = sum_j W_ij a_j[t]``).
    params : NeuronParams
        ``tau_m``, ``tau_s`` and the default ``threshold``.
    threshold : float, optional
        Per-layer threshold (config key ``threshold``); defaults to ``params.threshold``.

    Returns
    -------
    NeuronState
        ``u``, ``du``, ``s``, ``a``, each of the shape and dtype of ``x``.
    """
    x = _as_float_array(x, "x")
    if not np.all(np.isfinite(x)):
        raise FloatingPointError(
            "lif_forward: the input current contains NaN or inf (check the weights and the input scaling)"
        )
    thr = params.threshold if threshold is None else threshold
    flat = np.ascontiguousarray(x.reshape(x.shape[0], -1))
    u, du, s, a = (np.empty_like(flat) for _ in range(4))
    dt = flat.dtype
    _lif_kernel(
        flat, as_scalar(params.theta_m, dt), as_scalar(params.theta_s, dt), as_scalar(thr, dt),
        n_chunks(flat.shape[1]), u, du, s, a,
    )
    shape = x.shape
    return NeuronState(u.reshape(shape), du.reshape(shape), s.reshape(shape), a.reshape(shape))


def _as_float_array(arr, name: str) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype not in (np.float32, np.float64):
        if np.issubdtype(arr.dtype, np.number) or arr.dtype == bool:
            arr = arr.astype(np.float64)
        else:
            raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.shape[0] < 1:
        raise ValueError(f"{name} must have a time axis first with T >= 1, got shape {arr.shape}")
    return arr
