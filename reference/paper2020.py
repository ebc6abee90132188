"""The paper-era TSSL-BP rule: the authors' code at the NeurIPS camera-ready (their commit 5947a03,
1 October 2020), which produced the paper's tables.  Option ``variant="paper2020"`` (``--variant``).

The forward pass is the one of :mod:`reference.neuron`; the configs of that time use ``tau_s = 2``
(``configs/paper2020/``).  What differs is the backward of a spiking layer, the loss target and the conv
initialisation (docs/paper-notes.md section 7).  Per neuron, time first, steps ``j, k, m`` in ``0 .. T-1``:

1. The reset record :func:`reset_record` (their ``delta_refs``): ``D[j, m] = theta_m u[j] (1 -
   theta_m)^(m-j-1)`` when the neuron fires at ``j`` and next at ``m``, else 0.  The reset after spike
   ``j`` removed ``u[j]`` from the membrane; through the leak that removal is worth this much of ``du[m]``,
   and only until the next reset wipes the history.
2. The intra-neuron (reset) dependency as an extra error on the neuron's own spikes, :func:`reset_error`:
   ``h[j] = sum_m D[j, m] g[m] = s[j] theta_m u[j] (1 - theta_m)^(n-j-1) g[n]``, ``n`` the next spike.
3. The error on a spike, inter plus intra, :func:`spike_error_with_reset`:
   ``grad_a[k] = sum_{j >= k} eps[j-k] (g[j] + h[j])`` (their ``P g + P D g``).
4. A switch per LAYER on its firing rate over the whole batch, :func:`layer_firing_rate`: above
   ``rate_threshold`` (strict; 0.1 in the camera-ready code, :data:`RATE_THRESHOLD_2020`) every neuron
   takes the TSSL-BP value :func:`tsslbp_term_2020`,
   ``delta[k] = grad_a[k] clamp(1/du[k], -10, 10) s[k]`` (zero at every step without a spike); otherwise
   the whole layer takes the warm-up value :func:`warmup_term_2020`, ``delta[k] = grad_a[k] f(u[k])`` at
   every step, with the sigmoid surrogate ``f`` of the final rule (:func:`reference.tsslbp.warmup_surrogate`)
   and the intra term still inside ``grad_a``.
5. Loss: the desired train ``[0, 1, 0, 1, 1]`` (:func:`desired_train_2020`) filtered ONCE (``target = eps
   * d``, no second filter); conv weights Kaiming-normal (fan-in) times ``weight_scale``.

Against the final rule (:mod:`reference.tsslbp`): the reset acts through ``D``/``h`` instead of the carried
``c``; the clamp is 10 instead of 8; the warm-up decision is one per layer and batch instead of one per
neuron and step.  :func:`paper2020_delta` composes the terms, in NumPy over neurons with a loop over the
``T`` steps for a :class:`reference.neuron.NeuronState`, and through one Numba kernel
(:func:`_paper2020_kernel`, the same operations per neuron) for the compact state a training step records.

Their code worked through the batch in chunks of 5 samples and left samples after the last full chunk
uninitialised (fixed by their commit d9693e0 of 12 October 2020); the configs' batches are multiples of 5.
This module computes every sample, whatever the batch size.
"""
from __future__ import annotations

import numpy as np

from ._jit import kernel, n_chunks, prange
from .neuron import BLOCK, CompactState, NeuronState, psp_kernel
from .params import NeuronParams
from .steps import (integrate, inv_du_2020, reset, reset_carry_2020, reset_term_2020, spike_error_add, warmup_f,
                    warmup_z)
from .tsslbp import (BRANCH_INTER, BRANCH_INTRA, BRANCH_WARMUP, _exp_clipped, kernel_constants, kernel_switches,
                     spike_error, warmup_surrogate)

#: ``1/du`` is clamped to ``[-10, 10]`` (the final rule — 8).
MAX_INV_DU_2020 = 10.0
#: A layer whose firing rate over the batch is above this takes the TSSL-BP value, else the warm-up.
RATE_THRESHOLD_2020 = 0.1
#: The desired spike train of the label neuron for T = 5 (the paper's, their issue #14).
DESIRED_2020 = (0.0, 1.0, 0.0, 1.0, 1.0)


def check_rate_threshold(rate_threshold) -> float:
    """The layer switch's firing-rate threshold as a float: ``None`` gives :data:`RATE_THRESHOLD_2020`.

    A layer's firing rate lies in ``[0, 1]``, so the threshold must too (1 puts every layer on the warm-up
    branch, 0 every layer that fires at all on the TSSL-BP one); anything else is a ``ValueError``.
    """
    if rate_threshold is None:
        return RATE_THRESHOLD_2020
    try:
        value = float(rate_threshold)
    except (TypeError, ValueError):
        raise ValueError(f"rate_threshold must be a number in [0, 1], got {rate_threshold!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"rate_threshold must be in [0, 1] (a firing rate), got {rate_threshold!r}")
    return value


def desired_train_2020(n_steps: int) -> np.ndarray:
    """The label neuron's desired spike train of the paper-era code, shape (n_steps,), float64 0/1.

    ``[0, 1, 0, 1, 1]`` at T = 5 and ``[0, 1]`` repeated at T >= 10, as their code builds it: T = 5 is the
    only T that gets ``[0, 1, 0, 1, 1]``.  Their code fails at every other T < 10; there, and wherever the
    pattern does not tile T, we cut the repeated pattern to length T (our choice).
    """
    base = (0.0, 1.0) if n_steps >= 10 else DESIRED_2020
    return np.resize(np.asarray(base), n_steps)


def reset_record(u: np.ndarray, s: np.ndarray, theta_m: float) -> np.ndarray:
    """The reset matrix ``D`` of every neuron (authors: ``delta_refs``), shape (T, T, ...).

    .. math:: D[j, m] = s[j]\\, s[m] \\prod_{j < i < m} (1 - s[i])\\; \\theta_m u[j] (1 - \\theta_m)^{m-j-1}

    ``D[j, m] = theta_m u[j] (1 - theta_m)^(m-j-1)`` if the neuron fires at ``j`` and next at ``m`` (no spike
    strictly between), else 0; so ``D[j, m] = 0`` for ``m <= j`` and each row has at most one non-zero.

    Parameters
    ----------
    u, s : ndarray, shape (T, ...), membrane before reset and spikes (0/1)
    theta_m : float, ``1/tau_m``

    Returns
    -------
    D : ndarray, shape (T, T, ...), ``u``'s dtype (slow and explicit: for reading, plots and tests)
    """
    n_steps = u.shape[0]
    fired = s > 0
    D = np.zeros((n_steps, *u.shape), dtype=u.dtype)
    for j in range(n_steps):
        still_open = fired[j].copy()  # neurons whose spike at j has not met its next spike yet
        for m in range(j + 1, n_steps):
            hit = still_open & fired[m]
            D[j, m] = np.where(hit, theta_m * u[j] * (1.0 - theta_m) ** (m - j - 1), 0.0)
            still_open &= ~fired[m]
    return D


def reset_error(g: np.ndarray, u: np.ndarray, s: np.ndarray, theta_m: float) -> np.ndarray:
    """The reset (intra-neuron) dependency as an extra error on the neuron's own spikes, ``h = D g``.

    .. math:: h[j] = \\sum_m D[j, m]\\, g[m] = s[j]\\, \\theta_m u[j]\\, q[j],\\quad
              q[j] = s[j+1] g[j+1] + (1 - s[j+1]) (1 - \\theta_m) q[j+1],\\quad q[T-1] = 0

    ``q[j] = (1 - theta_m)^(n-j-1) g[n]`` is the error at the next spike ``n`` after ``j``, leaked back to
    ``j + 1``; computed backwards in time, one step at a time (the same numbers as ``D g`` with
    :func:`reset_record`, up to rounding).

    Parameters
    ----------
    g : ndarray, shape (T, ...), ``dL/da``
    u, s : ndarray, shape (T, ...)
    theta_m : float

    Returns
    -------
    h : ndarray, shape (T, ...)
    """
    n_steps = g.shape[0]
    fired = (s > 0).astype(g.dtype)
    h = np.zeros_like(g)
    q = np.zeros_like(g[0])
    decay = g.dtype.type(1.0 - theta_m)
    for j in range(n_steps - 2, -1, -1):
        q = fired[j + 1] * g[j + 1] + (1 - fired[j + 1]) * decay * q
        h[j] = fired[j] * g.dtype.type(theta_m) * u[j] * q
    return h


def spike_error_with_reset(g: np.ndarray, h: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """``grad_a[k] = sum_{j >= k} eps[j-k] (g[j] + h[j])``: inter plus intra (their ``P g + P D g``).

    .. math:: \\mathrm{grad\\_a}[k] = \\sum_{j \\ge k} \\epsilon[j-k] \\bigl(g[j] + h[j]\\bigr)

    g, h : (T, ...); eps : (T,) PSP kernel.  Returns (T, ...).
    """
    return spike_error(g + h, eps)


def layer_firing_rate(s: np.ndarray) -> float:
    """The layer's firing rate over the whole batch: spikes / (neurons x samples x steps), a float in [0, 1].

    .. math:: r = \\frac{1}{N M T} \\sum_{n, i, t} s_{n,i}[t]
    """
    return float(np.count_nonzero(s)) / max(s.size, 1)


def tsslbp_term_2020(grad_a: np.ndarray, du: np.ndarray, s: np.ndarray,
                     max_inv_du: float = MAX_INV_DU_2020) -> np.ndarray:
    """The TSSL-BP branch: ``delta[k] = grad_a[k] clamp(1/du[k], -10, 10) s[k]`` (0 where no spike).

    .. math:: \\delta[k] = s[k]\\, \\mathrm{clip}\\left(\\frac{1}{du[k]}, -10, 10\\right) \\mathrm{grad\\_a}[k]

    Where ``s = 1``, ``du > 0`` for a positive threshold, so this is ``min(1/du, 10) grad_a``.  IEEE
    division for ``du = +-0`` (``+-inf``, then clamped), as their ``clamp``.
    """
    with np.errstate(divide="ignore"):
        inv = 1 / du
    return grad_a * np.clip(inv, -max_inv_du, max_inv_du).astype(du.dtype) * (s > 0)


def warmup_term_2020(grad_a: np.ndarray, u: np.ndarray, threshold: float) -> np.ndarray:
    """The warm-up branch: ``delta[k] = grad_a[k] f(u[k])`` at every step (intra term included in grad_a).

    .. math:: \\delta[k] = \\mathrm{grad\\_a}[k]\\, f(u[k])
    """
    return grad_a * warmup_surrogate(u, threshold)


def _paper2020_kernel(g, du, s, eps, consts, switches, tsslbp_branch, chunks, delta, branch):
    """:func:`paper2020_delta` for a :class:`reference.neuron.CompactState`, in blocks of neurons (Numba).

    ``g``, ``du``, ``delta`` (T, M) floats; ``s`` (T, M) uint8 spikes; ``branch`` (T, M) int8; ``eps``
    (T,) the PSP kernel.  ``tsslbp_branch``: the layer-wise switch, decided by the caller from the layer's
    firing rate.  Per block, ``u`` is recomputed from ``du`` and the spikes (bit for bit the forward's),
    then, with the operations of the NumPy functions in their order: ``q`` and ``h`` (:func:`reset_error`),
    ``grad_a`` (:func:`spike_error_with_reset`), and the branch's value.  The warm-up's ``exp`` is the
    correctly rounded one of :func:`reference.tsslbp._exp_clipped` for float32 (NumPy's float32 ``exp``
    may differ by an ulp) and libm's for float64.  ``consts`` and ``switches``: the
    :class:`reference.tsslbp.KernelConstants` (``max_inv_du`` = 10 here; ``theta_s`` and ``warm_a`` unused)
    and :class:`reference.tsslbp.KernelSwitches` (``use_intra``, ``fast_exp`` and the branch codes read).
    """
    one, theta_m, decay_m, threshold = consts.one, consts.theta_m, consts.decay_m, consts.threshold
    max_inv_du, sigma, z_clip = consts.max_inv_du, consts.sigma, consts.z_clip
    use_intra, fast_exp = switches.use_intra, switches.fast_exp
    code_warmup, code_inter, code_intra = switches.code_warmup, switches.code_inter, switches.code_intra
    n_steps, n = du.shape
    zero = one - one
    for ch in prange(chunks):
        U = np.empty((n_steps, BLOCK), dtype=du.dtype)
        X = np.empty((n_steps, BLOCK), dtype=du.dtype)  # g + h
        mem = np.empty(BLOCK, dtype=du.dtype)
        q = np.empty(BLOCK, dtype=du.dtype)
        acc = np.empty(BLOCK, dtype=du.dtype)
        E = np.empty(BLOCK, dtype=du.dtype)
        lo = ch * n // chunks
        hi = (ch + 1) * n // chunks
        for b0 in range(lo, hi, BLOCK):
            nb = min(BLOCK, hi - b0)
            b1 = b0 + nb
            for i in range(nb):
                mem[i] = zero
            for t in range(n_steps):  # u[t] = mem + du[t], as the LIF kernel computed it
                dut, st, Ut = du[t, b0:b1], s[t, b0:b1], U[t]
                for i in range(nb):
                    v = integrate(mem[i], dut[i])
                    Ut[i] = v
                    mem[i] = reset(v, st[i], zero)
            for i in range(nb):
                q[i] = zero
            last = X[n_steps - 1]
            gl = g[n_steps - 1, b0:b1]
            for i in range(nb):
                last[i] = gl[i] + zero  # h[T-1] = 0
            for j in range(n_steps - 2, -1, -1):  # q and h, backwards in time                (reset_error)
                gj, gn, sj, sn, Uj, Xj = g[j, b0:b1], g[j + 1, b0:b1], s[j, b0:b1], s[j + 1, b0:b1], U[j], X[j]
                for i in range(nb):
                    q[i] = reset_carry_2020(one if sn[i] else zero, gn[i], q[i], one, decay_m)
                    h = reset_term_2020(one if sj[i] else zero, theta_m, Uj[i], q[i]) if use_intra else zero
                    Xj[i] = gj[i] + h
            for k in range(n_steps):  # grad_a[k] = sum_{m>=k} eps[m-k] (g + h)[m]  (spike_error_with_reset)
                for i in range(nb):
                    acc[i] = zero
                for m in range(k, n_steps):
                    e = eps[m - k]
                    Xm = X[m]
                    for i in range(nb):
                        acc[i] = spike_error_add(acc[i], e, Xm[i])
                dk, bk, duk, sk, Uk = delta[k, b0:b1], branch[k, b0:b1], du[k, b0:b1], s[k, b0:b1], U[k]
                if tsslbp_branch:  # grad_a clamp(1/du, -10, 10) s                          (tsslbp_term_2020)
                    for i in range(nb):
                        fk = one if sk[i] else zero
                        dk[i] = acc[i] * inv_du_2020(duk[i], one, max_inv_du) * fk
                        bk[i] = code_inter if sk[i] else code_intra
                else:  # grad_a f(u)                                                        (warmup_term_2020)
                    for i in range(nb):
                        z = warmup_z(threshold, Uk[i], sigma, z_clip)
                        E[i] = _exp_clipped(z) if fast_exp else np.exp(z)  # stored in the arrays' dtype
                        dk[i] = acc[i] * warmup_f(E[i], one, sigma)
                        bk[i] = code_warmup


_paper2020_kernel_py = _paper2020_kernel
_paper2020_kernel = kernel(_paper2020_kernel_py, parallel=True)


def paper2020_delta(
    g: np.ndarray,
    state: NeuronState,
    params: NeuronParams,
    threshold: float | None = None,
    *,
    rate_threshold: float = RATE_THRESHOLD_2020,
    max_inv_du: float = MAX_INV_DU_2020,
    intra: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``delta = dL/dx`` of a layer of spiking neurons by the paper-era rule (module docstring, items 1-4).

    .. math::

        \\delta[k] = \\begin{cases}
            s[k]\\, \\mathrm{clip}(1/du[k], -10, 10)\\, \\mathrm{grad\\_a}[k] & \\text{if the layer's rate } r > r_\\mathrm{thr}\\\\
            \\mathrm{grad\\_a}[k]\\, f(u[k]) & \\text{otherwise (the whole layer warms up)}
        \\end{cases}

    Parameters
    ----------
    g : ndarray, shape (T, ...), float32 or float64, ``dL/da`` of the layer's output PSP
    state : NeuronState or CompactState of the same shape (``u``, ``du``, ``s`` are read)
    params : NeuronParams (``tau_m``, ``tau_s``)
    threshold : float, optional, the layer's threshold (default ``params.threshold``)
    rate_threshold : float, the layer-wise switch r_thr (0.1; :func:`check_rate_threshold`)
    max_inv_du : float, the clamp of ``1/du`` (10)
    intra : bool, keep the reset term ``h`` (False: the ablation without it)

    Returns
    -------
    delta : ndarray, shape (T, ...), ``g``'s dtype
    branch : int8 ndarray, shape (T, ...): :data:`reference.tsslbp.BRANCH_WARMUP` for every neuron and step
        of a warm-up layer; else ``BRANCH_INTER`` where the neuron fired and ``BRANCH_INTRA`` elsewhere
        (delta 0 there).
    """
    g = np.asarray(g)
    if g.dtype not in (np.float32, np.float64):
        raise TypeError(f"g must be float32 or float64, got {g.dtype}")
    if isinstance(state, CompactState):  # what training records: the block kernel
        return _paper2020_compact(g, state, params, threshold, rate_threshold, max_inv_du, intra)
    u, du, s = state.u, state.du, state.s
    for name, arr in (("u", u), ("du", du), ("s", s)):
        if arr.shape != g.shape:
            raise ValueError(f"state.{name} has shape {arr.shape}, g has shape {g.shape}: they must match")
    thr = params.threshold if threshold is None else threshold
    dt = g.dtype
    u, du = u.astype(dt, copy=False), du.astype(dt, copy=False)
    eps = psp_kernel(g.shape[0], params.tau_s, dt)
    h = reset_error(g, u, s, params.theta_m) if intra else np.zeros_like(g)
    grad_a = spike_error_with_reset(g, h, eps)
    if layer_firing_rate(s) > rate_threshold:
        delta = tsslbp_term_2020(grad_a, du, s, max_inv_du)
        branch = np.where(s > 0, BRANCH_INTER, BRANCH_INTRA).astype(np.int8)
    else:
        delta = warmup_term_2020(grad_a, u, thr)
        branch = np.full(g.shape, BRANCH_WARMUP, np.int8)
    return delta.astype(dt, copy=False), branch


def _paper2020_compact(g, state, params, threshold, rate_threshold, max_inv_du, intra):
    """:func:`paper2020_delta` on a CompactState through :func:`_paper2020_kernel`."""
    if state.du.shape != g.shape:
        raise ValueError(f"state.du has shape {state.du.shape}, g has shape {g.shape}: they must match")
    dt = g.dtype
    thr = params.threshold if threshold is None else threshold
    n_steps = g.shape[0]
    flat = [np.ascontiguousarray(a.reshape(n_steps, -1), dtype=d) for a, d in
            ((g, dt), (state.du, dt), (state.spikes, np.uint8))]
    n = flat[0].shape[1]
    delta, branch = np.empty((n_steps, n), dt), np.empty((n_steps, n), np.int8)
    if n:
        with np.errstate(divide="ignore"):
            _paper2020_kernel(*flat, psp_kernel(n_steps, params.tau_s, dt),
                              kernel_constants(params, thr, dt, max_inv_du=max_inv_du),
                              kernel_switches(dt, intra=intra), layer_firing_rate(state.spikes) > rate_threshold,
                              n_chunks(n), delta, branch)
    return delta.reshape(g.shape), branch.reshape(g.shape)
