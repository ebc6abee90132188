"""Forward of the neuron and its synapse: the PSP filter and the leaky integrate-and-fire (LIF) neuron.

Time is the FIRST axis of every array here: ``(T, ...)`` with any trailing neuron shape, so one neuron's
trace is just a ``(T,)`` vector.  Units: time in steps, membrane potential ``u`` in units of the threshold
scale (the configs use ``threshold = 1``), PSPs are dimensionless (a spike train filtered by a kernel whose sum
over T steps is ``1 - (1 - 1/tau_s)^T``: 0.868 at T = 5, tau_s = 3, reaching 1 only as T grows).

Equations (paper-notes section 1; the paper describes the continuous-time model, this is its
discrete form as the authors' code runs it):

.. math::

    a[t] &= a[t-1] + \\theta_s (s[t] - a[t-1]),                 &a[-1] = 0    &\\quad\\text{(PSP)}\\\\
    du[t] &= -\\theta_m u_r[t-1] + x[t],  \\quad u[t] = u_r[t-1] + du[t]   &&\\quad\\text{(leak, integrate)}\\\\
    s[t] &= [u[t] > V_{th}], \\quad u_r[t] = u[t] (1 - s[t])              &&\\quad\\text{(fire, reset to 0)}

with ``theta_s = 1/tau_s`` and ``theta_m = 1/tau_m``.  ``u`` is kept BEFORE the reset: the backward pass
needs it, and it is the trace one plots against the threshold.

Dtypes.  Every function computes in its input's precision, float32 (the authors') or float64 (checks).
Integer and boolean arrays (a spike train typed as ``[0, 1, 1]``) and float16 are computed in float64;
any other dtype (complex, strings, objects) is a ``TypeError``.  Give float32 to compute as the authors do.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ._jit import as_scalar, kernel, n_chunks, prange
from .params import NeuronParams
from .steps import integrate, lif_step, psp_step, reset


def psp_kernel(n_steps: int, tau_s: float, dtype=np.float64) -> np.ndarray:
    """The PSP kernel ``eps[k] = theta_s (1 - theta_s)^k`` for ``k = 0 .. n_steps-1``.

    It is the response ``a`` of the synaptic filter to one spike at ``t = 0``; it sums to
    ``1 - (1 - theta_s)^T`` over ``T`` steps, below one (0.868 at T = 5, tau_s = 3).  It is the authors'
    ``glv.syn_a``; their issue #4 asks why it is divided by ``tau_s``: that normalisation is this
    ``theta_s`` factor.

    Precision (decided, and tested in ``tests/test_neuron.py``): the kernel is computed in float64 as a
    power and then rounded to ``dtype``; the backward passes use it so.  In float32 it is not bit-equal to
    the two recurrences it stands for.  Against the authors' ``glv.syn_a`` (their float32 recurrence
    ``x - x/tau_s``, then ``/tau_s``) it differs by at most 1 ulp at T = 5 (2 of 5 entries at tau_s = 3,
    none at tau_s = 2) and 2 ulp at T = 30; against the impulse response of this module's own float32
    PSP filter (the forward's), by 0 ulp at T = 5 and up to 12 ulp at T = 30, tau_s = 3 (1e-6 relative).
    Both are below the float32 agreement of the gradients with the authors' (a few 1e-6).  Changing it
    would change every committed run's training bit for bit, so it stays.

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
        s0, o0 = s[0, lo:hi], out[0, lo:hi]  # views indexed from 0: LLVM vectorises these loops
        for i in range(hi - lo):
            o0[i] = s0[i] * theta_s
        for t in range(1, n_steps):
            st, prev, ot = s[t, lo:hi], out[t - 1, lo:hi], out[t, lo:hi]
            for i in range(hi - lo):
                ot[i] = psp_step(prev[i], st[i], theta_s)


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
    s : ndarray, shape (T, ...), float32 or float64 (int and bool: float64, see the module's dtypes)
        Spike train (0/1) or input current over time; time is axis 0.
    tau_s : float
        Synaptic time constant in steps.

    Returns
    -------
    a : ndarray, same shape and dtype as ``s``
    """
    s = _as_float_array(s, "s")
    flat = _time_by_neuron(s)
    out = np.empty(flat.shape, flat.dtype)
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
        sc = syn[lo:hi]
        for t in range(n_steps):
            xt, ot = x[t, lo:hi], out[t, lo:hi]  # views indexed from 0: LLVM vectorises the loop
            for i in range(hi - lo):
                prev = sc[i]
                leak = prev * inv_tau_s if reciprocal else prev / tau_s
                cur = prev - leak + xt[i]
                sc[i] = cur
                ot[i] = cur * inv_tau_s if reciprocal else cur / tau_s


_encode_kernel_py = _encode_kernel
_encode_kernel = kernel(_encode_kernel_py)

#: How :func:`encode_input` divides by ``tau_s`` — ``"true"`` (PyTorch on the CPU) or ``"reciprocal"``
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
    (measured with the trained MNIST CNN ``results/mnist_cnn/weights.npz`` on the first 300 test digits:
    3 of its 17.3 million spike decisions differ, 2 of the first layer's 13.0 million, 1 in the second
    layer, none later, and no prediction).
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
    x : ndarray, shape (T, ...), float32 or float64 (int and bool: float64, see the module's dtypes)
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
    flat = _time_by_neuron(x)
    out = np.empty(flat.shape, flat.dtype)
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
    zero = theta_m - theta_m
    for c in prange(chunks):
        lo = c * n // chunks
        hi = (c + 1) * n // chunks
        for t in range(n_steps):
            for m in range(lo, hi):
                du[t, m], u[t, m], fired, mem[m] = lif_step(mem[m], x[t, m], neg_theta_m, threshold, zero)
                s[t, m] = fired
                syn[m] = psp_step(syn[m], s[t, m], theta_s)
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
    x : ndarray, shape (T, ...), float32 or float64 (int and bool: float64, see the module's dtypes)
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
    x, flat, thr = _checked_current(x, params, threshold)
    u, du, s, a = (np.empty_like(flat) for _ in range(4))
    dt = flat.dtype
    _lif_kernel(
        flat, as_scalar(params.theta_m, dt), as_scalar(params.theta_s, dt), as_scalar(thr, dt),
        n_chunks(flat.shape[1]), u, du, s, a,
    )
    shape = x.shape
    return NeuronState(u.reshape(shape), du.reshape(shape), s.reshape(shape), a.reshape(shape))


#: Neurons per block in the compact kernels — a block's carried state (membrane, PSP, and in the backward
#: the block's ``u``, ``a`` for all steps) stays in the L1/L2 cache while the loops over it vectorise.
BLOCK = 512


def _lif_compact_kernel(x, one, theta_m, theta_s, threshold, record, chunks, du, s, a):
    """:func:`_lif_kernel` storing only what the backward needs, in blocks of :data:`BLOCK` neurons.

    Writes the output PSP ``a`` and, with ``record``, ``du`` and the spikes ``s`` as uint8 (0/1); ``u`` is
    not stored (:class:`CompactState` recomputes it).  The float operations are those of
    :func:`_lif_kernel`, in the same order, so ``du``, the spikes and ``a`` are bit-identical to its
    output; the fire/reset choice is written as selects, which lets LLVM vectorise the loop over a
    block.  With ``record=False`` (inference) ``du`` and ``s`` are not touched and may be ``(T, 0)``.
    """
    n_steps, n = x.shape
    zero = one - one
    neg_theta_m = -theta_m
    for c in prange(chunks):
        lo = c * n // chunks
        hi = (c + 1) * n // chunks
        mem = np.empty(BLOCK, dtype=x.dtype)
        syn = np.empty(BLOCK, dtype=x.dtype)
        for b0 in range(lo, hi, BLOCK):
            nb = min(BLOCK, hi - b0)
            for i in range(nb):
                mem[i] = zero
                syn[i] = zero
            for t in range(n_steps):
                # row views of the block, indexed from 0: LLVM then knows no index is negative and
                # vectorises the loop (with x[t, b0 + i] it keeps a wraparound test per access: 8x slower)
                xt, at = x[t, b0:b0 + nb], a[t, b0:b0 + nb]
                dut, st = du[t, b0:b0 + nb], s[t, b0:b0 + nb]  # empty views when not recording
                for i in range(nb):
                    step, _, fired, mem[i] = lif_step(mem[i], xt[i], neg_theta_m, threshold, zero)
                    y = psp_step(syn[i], one if fired else zero, theta_s)
                    syn[i] = y
                    at[i] = y
                    if record:
                        dut[i] = step
                        st[i] = 1 if fired else 0


_lif_compact_kernel_py = _lif_compact_kernel
_lif_compact_kernel = kernel(_lif_compact_kernel_py, parallel=True)


def _recompute_u_kernel(du, s, zero, u):
    """``u[t] = u_r[t-1] + du[t]``, ``u_r = u (1 - s)``: the membrane from its increments and spikes, (T, M).

    The LIF kernel computes ``u[t] = mem + du[t]`` with ``mem`` the previous ``u`` or 0 after a spike, the
    same addition of the same two floats, so this gives its ``u`` bit for bit.
    """
    n_steps, n = du.shape
    for m in range(n):
        mem = zero
        for t in range(n_steps):
            v = integrate(mem, du[t, m])
            u[t, m] = v
            mem = reset(v, s[t, m], zero)


_recompute_u_kernel_py = _recompute_u_kernel
_recompute_u_kernel = kernel(_recompute_u_kernel_py)


class CompactState:
    """The neuron state as a training step records it: ``du`` and the spikes, with ``u`` recomputed.

    A layer's backward needs ``u``, ``du``, ``s`` and ``a`` (:class:`NeuronState`); storing ``u`` and the
    spikes as floats costs memory traffic that the backward kernel avoids by recomputing ``u`` from ``du``
    and the spikes (bit for bit the forward's values, :func:`_recompute_u_kernel`).  Reading ``u`` or ``s``
    here computes and keeps them, so code written for :class:`NeuronState` works on this too.  ``a`` may
    be left out (a conv layer whose pooling ran in the same kernel never writes it): it is then
    recomputed from the spikes with the synapse's filter (:func:`psp`, the LIF kernel's own operations).

    Parameters / attributes
    -----------------------
    du : (T, ...) membrane increments, the current's dtype
    spikes : (T, ...) uint8, 1 where the neuron fired
    a : (T, ...) the neuron's output PSP, or None to recompute it from the spikes with ``tau_s``
    tau_s : float, needed when ``a`` is None
    """

    def __init__(self, du: np.ndarray, spikes: np.ndarray, a: np.ndarray | None = None, tau_s: float | None = None):
        if a is None and tau_s is None:
            raise ValueError("CompactState without a needs tau_s to recompute it")
        self.du, self.spikes, self._a, self.tau_s = du, spikes, a, tau_s

    def __repr__(self) -> str:
        return f"CompactState(shape={self.du.shape}, dtype={self.du.dtype}, firing_rate={self.firing_rate:.3f})"

    @property
    def a(self) -> np.ndarray:
        """The output PSP (T, ...): as recorded, or recomputed from the spikes (bit-exact) and kept."""
        if self._a is None:
            self._a = psp(self.s, self.tau_s)
        return self._a

    @functools.cached_property
    def u(self) -> np.ndarray:
        """Membrane potential before reset, (T, ...), recomputed from ``du`` and the spikes (bit-exact)."""
        flat_du = self.du.reshape(self.du.shape[0], -1)
        u = np.empty_like(flat_du)
        _recompute_u_kernel(flat_du, self.spikes.reshape(flat_du.shape), as_scalar(0.0, u.dtype), u)
        return u.reshape(self.du.shape)

    @functools.cached_property
    def s(self) -> np.ndarray:
        """Spikes as 0.0/1.0 in the state's float dtype, (T, ...)."""
        return self.spikes.astype(self.du.dtype)

    @property
    def firing_rate(self) -> float:
        """Mean number of spikes per neuron and time step."""
        return float(self.spikes.mean()) if self.spikes.size else 0.0

    def expand(self) -> NeuronState:
        """The full :class:`NeuronState` (u, du, s, a)."""
        return NeuronState(self.u, self.du, self.s, self.a)


def lif_compact(x: np.ndarray, params: NeuronParams, threshold: float | None = None, *,
                record: bool = True):
    """:func:`lif_forward` for the network: the output PSP and, with ``record``, a :class:`CompactState`.

    Same equations and the same float operations as :func:`lif_forward`, so ``a``, ``du`` and the spikes
    are bit-identical to its; only ``du`` and the spikes (uint8) are stored besides ``a``, which cuts the
    memory a training step writes and reads for each neuron-step from 20 to 13 bytes (float32).

    Parameters
    ----------
    x : ndarray, shape (T, ...), float32 or float64 (int and bool: float64), the input current
    params, threshold : as :func:`lif_forward`
    record : bool
        False for inference: nothing but ``a`` is written, and the state returned is None.

    Returns
    -------
    a : ndarray, shape and dtype of ``x``
    state : CompactState or None
    """
    x, flat, thr = _checked_current(x, params, threshold)
    dt = flat.dtype
    a = np.empty_like(flat)
    if record:
        du, s = np.empty_like(flat), np.empty(flat.shape, np.uint8)
    else:
        du, s = np.empty((flat.shape[0], 0), dt), np.empty((flat.shape[0], 0), np.uint8)
    _lif_compact_kernel(flat, as_scalar(1.0, dt), as_scalar(params.theta_m, dt), as_scalar(params.theta_s, dt),
                        as_scalar(thr, dt), bool(record), n_chunks(flat.shape[1]), du, s, a)
    if not record:
        return a.reshape(x.shape), None
    return a.reshape(x.shape), CompactState(du.reshape(x.shape), s.reshape(x.shape), a.reshape(x.shape))


def _checked_current(x, params: NeuronParams, threshold):
    """The input current as a float array, its C-contiguous (T, M) view or copy, and the threshold to use.

    Raises FloatingPointError on NaN or inf (a kernel would silently spread them)."""
    x = _as_float_array(x, "x")
    if not np.all(np.isfinite(x)):
        raise FloatingPointError(
            "lif_forward: the input current contains NaN or inf (check the weights and the input scaling)"
        )
    thr = params.threshold if threshold is None else threshold
    return x, np.ascontiguousarray(x.reshape(x.shape[0], -1)), thr


def _time_by_neuron(arr: np.ndarray) -> np.ndarray:
    """``arr`` (T, ...) as a (T, M) array for a kernel: a view where one exists, else a contiguous copy.

    An input repeated over time (``np.broadcast_to(image, (T, ...))``, stride 0 along time) stays a view:
    the kernel reads the one image T times instead of a copy T times its size (same values, same bits).
    """
    flat = arr.reshape(arr.shape[0], -1)
    inner_contiguous = flat.shape[1] <= 1 or flat.strides[1] == flat.itemsize
    return flat if inner_contiguous and (flat.strides[0] in (0, flat.shape[1] * flat.itemsize)) else np.ascontiguousarray(flat)


def _as_float_array(arr, name: str) -> np.ndarray:
    """``arr`` as float32 or float64 with a time axis: int and bool become float64 (the module's dtypes)."""
    arr = np.asarray(arr)
    if arr.dtype not in (np.float32, np.float64):
        if np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating) or arr.dtype == bool:
            arr = arr.astype(np.float64)
        else:
            raise TypeError(f"{name} must be a numeric array of real numbers, got dtype {arr.dtype}")
    if arr.ndim < 1 or arr.shape[0] < 1:
        raise ValueError(f"{name} must have a time axis first with T >= 1, got shape {arr.shape}")
    return arr
