"""The TSSL-BP backward pass of a layer of spiking neurons, one function per dependency type.

Given ``g[m] = dL/da[m]``, the error on a neuron's own output PSP (from the next layer or the loss), we
want ``delta[k] = dL/dx[k]``, the error on the layer's input current, which the layer's weight gradient
uses.  It equals ``dL/du[k]``: ``x[k]`` enters the membrane with weight one,
``u[k] = (1 - theta_m) u[k-1] + x[k]`` (``u[k-1]`` after its reset), and reaches the loss only through ``u[k]``; the code says ``dL/dx``.  Paper-notes section 3 (we could not confirm the paper's section and
equation numbers here, so none are cited) splits it as follows.  Time is the first
axis of every array: ``(T, ...)``.

1. Spike error (the PSP filter's adjoint): :func:`spike_error`

   .. math:: G[k] = \\sum_{m \\ge k} \\epsilon[m-k]\\, g[m]

2. Inter-neuron dependency, through the neuron's spike times (all-or-none, only where it fires):
   :func:`inter_neuron_term`

   .. math:: \\mathrm{inter}[k] = s[k] \\min(1/du[k], 8)\\, G[k]

3. Intra-neuron dependency, through the neuron's own reset and leak, carried backwards in time by ``c``
   (``c = 0`` before the last step): :func:`intra_neuron_term`

   .. math::

       \\mathrm{intra}[k] &= c\\, \\theta_m u[k] \\min(1/du[k], 8)\\, s[k] + c (1 - \\theta_m)(1 - s[k])\\\\
       \\mathrm{pre}[k] &= \\mathrm{inter}[k] + \\mathrm{intra}[k],\\quad
       c \\leftarrow \\mathrm{pre}[k]\\, s[k] + c (1 - s[k]) (1 - \\theta_m)

4. Warm-up for (nearly) silent neurons, where no spike time exists to differentiate:
   :func:`warmup_mask`, :func:`warmup_term`

   .. math::

       \\delta[k] = G[k] f(u[k]) \\text{ if } a[k] < 1/(4\\tau_s) \\text{ else } \\mathrm{pre}[k],\\quad
       f(u) = \\frac{e^z}{(1+e^z)^2\\, 0.2},\\; z = \\mathrm{clip}((V_{th} - u)/0.2, -8, 8)

   The carried ``c`` is updated from ``pre[k]``, never from the warm-up value.  With the default
   per-neuron switch this changes nothing: at a spike step ``a[k] >= theta_s = 1/tau_s > 1/(4 tau_s)``,
   so the warm-up never replaces a step that fired, and at a silent step ``c`` only leaks and does not
   read ``pre[k]``.  It matters with ``warmup="always"``.

:func:`compose_delta` chains these NumPy functions exactly as written (slow, for reading, plotting and
testing); :func:`tsslbp_delta` computes the same numbers in one Numba kernel and is what the network
uses.  Both also return, per neuron and step, which branch produced ``delta`` (:data:`BRANCH_NAMES`).

Where the authors' code and the paper differ (paper-notes section 6), the code is the default:
warm-up is tested per neuron and step on the neuron's own PSP (the authors' code of the paper's time
switched whole layers by firing rate); ``tau_s = 3`` in the final configs (2 in the paper's time).  The ablations a user asks for
are options: ``inter=False`` (no spike-timing term), ``intra=False`` (no reset/leak term),
``warmup="always"`` (surrogate everywhere) and ``warmup="never"``.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ._jit import as_scalar, kernel, n_chunks, prange
from .neuron import BLOCK, CompactState, NeuronState, psp_kernel
from .params import MAX_INV_DU, WARMUP_SIGMA, WARMUP_Z_CLIP, NeuronParams, warmup_psp_threshold
from .steps import (carry, integrate, intra_term, inter_term, inv_du_clamped, psp_step, reset, spike_error_add,
                    warmup_f, warmup_z)

#: Branch code of a ``delta`` made by the warm-up surrogate ``G f(u)`` (a quiet neuron).
BRANCH_WARMUP = 0
#: Branch code of a ``delta`` at a step where the neuron fired (the inter-neuron term and the reset).
BRANCH_INTER = 1
#: Branch code of a ``delta`` at a silent step that is not on warm-up, the carried leak term ``c (1 - theta_m)``
#: alone (intra-neuron); it is 0 where no error reaches the step (no later spike sends any; the paper-era
#: rule, which has no such term, gives 0 at every such step).  With the default warm-up these are the steps
#: soon after a spike; with ``warmup="never"``, every silent step.  The one definition the lessons link to.
BRANCH_INTRA = 2
BRANCH_NAMES = {BRANCH_WARMUP: "warm-up", BRANCH_INTER: "inter (fired)", BRANCH_INTRA: "intra (silent)"}
WARMUP_MODES = {"per-neuron": 0, "always": 1, "never": 2}


def spike_error(g: np.ndarray, eps: np.ndarray) -> np.ndarray:
    """The error on a spike at step k: ``G[k] = sum_{m >= k} eps[m-k] g[m]`` (authors: ``grad_a``).

    .. math:: G[k] = \\sum_{m=k}^{T-1} \\epsilon[m-k]\\, g[m] = \\frac{\\partial L}{\\partial s[k]}

    Since ``a = eps * s``, this is ``dL/ds[k]``, the adjoint of the PSP filter applied to ``g``.

    Parameters
    ----------
    g : ndarray, shape (T, ...)
        ``dL/da``, the error on the neuron's output PSP at every step.
    eps : ndarray, shape (T,)
        The PSP kernel (:func:`reference.neuron.psp_kernel`).

    Returns
    -------
    G : ndarray, shape (T, ...)
    """
    n_steps = g.shape[0]
    G = np.zeros_like(g)
    for k in range(n_steps):
        for m in range(k, n_steps):
            G[k] += eps[m - k] * g[m]
    return G


def spike_advance(du: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The spike's advance ``-d t_k / d u[k] = min(1/du[k], 8)`` where the neuron fires at k, else 0.

    How many steps earlier the spike at k comes per unit of added membrane (authors: ``-partial_u``; the
    sign convention of every name is in paper-notes section 6).

    .. math:: -\\frac{\\partial t_k}{\\partial u[k]} = s[k] \\min\\left(\\frac{1}{du[k]},\\, 8\\right)

    Raising the membrane brings the spike earlier, by ``1/du`` steps per unit: less the steeper the
    membrane crosses the threshold (``d t_k/d u = -1/du``); the clamp to 8 bounds it for spikes that barely crossed the threshold.  As in the authors'
    ``clamp(-1/du, -8, 0)``, a step with ``du < 0`` gives 0, and IEEE division decides ``du == 0``:
    ``+0.0`` gives 8 and ``-0.0`` gives 0, exactly as their clamp does.  Neither case occurs at a spike
    while the threshold is positive (``u_r[k-1] <= V_th < u[k]``, so ``du[k] > 0``); both need a
    threshold of 0 or below.

    Parameters
    ----------
    du : ndarray, shape (T, ...), membrane increments
    s : ndarray, shape (T, ...), spikes (0/1)

    Returns
    -------
    ndarray, shape (T, ...), values in [0, 8]
    """
    with np.errstate(divide="ignore"):
        inv = 1 / du  # +0.0 -> +inf (clamped to 8), -0.0 -> -inf (clamped to 0), as the authors' clamp
    return np.where(s > 0, np.minimum(np.maximum(inv, 0), MAX_INV_DU), 0).astype(du.dtype)


def spike_time_derivative(du: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Deprecated name of :func:`spike_advance` (it returns ``-d t_k/d u``, not ``d t_k/d u``)."""
    warnings.warn("spike_time_derivative is renamed spike_advance: it returns -d t_k/d u = min(1/du, 8) s",
                  DeprecationWarning, stacklevel=2)
    return spike_advance(du, s)


def inter_neuron_term(G: np.ndarray, du: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Inter-neuron dependency: ``inter[k] = s[k] min(1/du[k], 8) G[k]``.

    .. math:: \\mathrm{inter}[k] = s[k] \\min\\left(\\frac{1}{du[k]},\\, 8\\right) G[k]

    The neuron's PSP ``a[m]`` depends on the time of its spike at k.  The authors multiply
    ``-eps[m-k]/tau_s`` (``partial_a``), the change of ``a[m]`` when the spike comes one step *earlier*,
    by ``d t_k/d u[k] = -1/du[k]`` (``partial_u``), and multiply the result back by ``tau_s``: the two
    minus signs cancel, and so does the ``1/tau_s``, leaving this product.  Since an earlier spike leaves less of its decaying tail at later steps, the tail's true
    timing derivative ``d a[m]/d u[k]`` is negative; the rule's product is positive: it treats a higher
    membrane as a spike made more present (``ds/du ~ 1/du``), the direction learning needs (lesson 4,
    section 5, measures both).
    Zero wherever the neuron does not fire: the all-or-none dependency.

    Parameters
    ----------
    G : ndarray, shape (T, ...), the spike error (:func:`spike_error`)
    du, s : ndarray, shape (T, ...), recorded by the forward pass

    Returns
    -------
    inter : ndarray, shape (T, ...)
    """
    return spike_advance(du, s) * G


def intra_neuron_term(inter: np.ndarray, u: np.ndarray, du: np.ndarray, s: np.ndarray, theta_m: float) -> np.ndarray:
    """Intra-neuron dependency through the neuron's own reset and leak, carried backwards in time.

    With ``c`` the carried error on the neuron's state (authors: ``theta``), ``c = 0`` before the last
    step is processed, for ``k = T-1 .. 0``:

    .. math::

        \\mathrm{intra}[k] &= c\\,\\theta_m u[k] \\min(1/du[k], 8)\\, s[k] + c (1-\\theta_m)(1-s[k])\\\\
        c &\\leftarrow (\\mathrm{inter}[k] + \\mathrm{intra}[k])\\, s[k] + c (1-s[k])(1-\\theta_m)

    ``c`` is ``dL/du[k+1]`` when step k is processed, before the leak factor ``1 - theta_m``.  First
    term: a higher ``u[k]`` brings the spike, and with it the reset, earlier by ``min(1/du[k], 8)``
    steps per unit; the ``u[k]`` the reset removes then fades with the leak for longer, ``theta_m u[k]``
    per step of advance, so the later membrane is higher (lesson 5, section 3b, derives it and checks
    the continuous-time version on a fine clock).  Second term: no spike at k, so the membrane leaks,
    scaled by ``1 - theta_m``, into the next step (exact: lesson 5, section 3).

    Parameters
    ----------
    inter : ndarray, shape (T, ...), from :func:`inter_neuron_term`
    u, du, s : ndarray, shape (T, ...), recorded by the forward pass (``u`` before reset)
    theta_m : float, ``1/tau_m``

    Returns
    -------
    intra : ndarray, shape (T, ...)
    """
    return intra_neuron_carry(inter, u, du, s, theta_m)[0]


def intra_neuron_carry(inter: np.ndarray, u: np.ndarray, du: np.ndarray, s: np.ndarray,
                       theta_m: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`intra_neuron_term` and the carried error ``c`` it used at every step.

    ``c[k]`` is the value of ``c`` when step ``k`` is processed: the error that the steps after ``k``
    send back to the neuron's state at ``k`` (``c[T-1] = 0``), by the recursion of
    :func:`intra_neuron_term`.  For plots and the "Explore one neuron" page, which show it per step.

    Returns
    -------
    intra, c : ndarray, shape (T, ...) each
    """
    advance = spike_advance(du, s)
    fired = (s > 0).astype(u.dtype)
    intra = np.zeros_like(inter)
    carried = np.zeros_like(inter)
    c = np.zeros_like(inter[0])
    for k in range(inter.shape[0] - 1, -1, -1):
        carried[k] = c
        intra[k] = c * theta_m * u[k] * advance[k] + c * (1.0 - theta_m) * (1.0 - fired[k])
        pre = inter[k] + intra[k]
        c = pre * fired[k] + c * (1.0 - fired[k]) * (1.0 - theta_m)
    return intra, carried


def warmup_surrogate(u: np.ndarray, threshold: float) -> np.ndarray:
    """The warm-up surrogate ``ds/du ~ f(u) = e^z / ((1 + e^z)^2 sigma)``, ``z = clip((V_th - u)/sigma, -8, 8)``.

    .. math:: f(u) = \\frac{e^z}{(1 + e^z)^2\\, \\sigma},\\quad z = \\mathrm{clip}\\left(\\frac{V_{th} - u}{\\sigma}, -8, 8\\right),
        \\quad \\sigma = 0.2

    A sigmoid's derivative centred on the threshold, width ``sigma = 0.2`` (peak ``1/(4 sigma) = 1.25``
    at ``u = V_th``).  Written in the order of the authors' code.

    Parameters
    ----------
    u : ndarray, shape (T, ...), membrane before reset
    threshold : float

    Returns
    -------
    f : ndarray, shape (T, ...)
    """
    z = np.exp(np.clip((-1 * u + threshold) / WARMUP_SIGMA, -WARMUP_Z_CLIP, WARMUP_Z_CLIP))
    return (z / ((1 + z) * (1 + z) * WARMUP_SIGMA)).astype(u.dtype)


def warmup_mask(a: np.ndarray, tau_s: float) -> np.ndarray:
    """Where the warm-up replaces TSSL-BP: the neuron's own PSP ``a[k] < 1/(4 tau_s)`` (authors: ``syn < th``).

    .. math:: \\mathrm{warm}[k] = \\left(a[k] < \\frac{1}{4 \\tau_s}\\right)

    True when the neuron has been silent long enough (the current step included) for its PSP to decay
    below ``1/(4 tau_s)``: a spike at k gives ``a[k] >= 1/tau_s``, and ``a`` shrinks by ``1 - 1/tau_s``
    per silent step, so it takes a few silent steps after a lone spike and more after a burst (which
    lifts ``a`` towards 1).

    Parameters
    ----------
    a : ndarray, shape (T, ...), the neuron's output PSP
    tau_s : float

    Returns
    -------
    mask : bool ndarray, shape (T, ...)
    """
    return a < as_scalar(warmup_psp_threshold(tau_s), a.dtype)


def warmup_term(G: np.ndarray, u: np.ndarray, threshold: float) -> np.ndarray:
    """Warm-up value of delta: ``G[k] f(u[k])``, the spike error times the sigmoid surrogate of ``ds/du``.

    .. math:: \\delta_{\\mathrm{warm}}[k] = G[k]\\, f(u[k])

    Parameters
    ----------
    G : ndarray, shape (T, ...), spike error
    u : ndarray, shape (T, ...), membrane before reset
    threshold : float

    Returns
    -------
    ndarray, shape (T, ...)
    """
    return G * warmup_surrogate(u, threshold)


def compose_delta(
    g: np.ndarray,
    state: NeuronState,
    params: NeuronParams,
    threshold: float | None = None,
    *,
    inter: bool = True,
    intra: bool = True,
    warmup: str = "per-neuron",
) -> tuple[np.ndarray, np.ndarray]:
    """``delta = dL/dx`` from the named terms, exactly as the equations read (slow; see :func:`tsslbp_delta`).

    .. math::

        \\delta[k] = \\begin{cases} G[k]\\, f(u[k]) & \\text{if } a[k] < 1/(4\\tau_s) \\text{ (warm-up)}\\\\
            \\mathrm{inter}[k] + \\mathrm{intra}[k] & \\text{otherwise} \\end{cases}

    Parameters and returns as :func:`tsslbp_delta`.
    """
    mode = _warmup_mode(warmup)
    thr = params.threshold if threshold is None else threshold
    eps = psp_kernel(g.shape[0], params.tau_s, g.dtype)
    G = spike_error(g, eps)
    inter_t = inter_neuron_term(G, state.du, state.s) if inter else np.zeros_like(G)
    intra_t = intra_neuron_term(inter_t, state.u, state.du, state.s, params.theta_m) if intra else np.zeros_like(G)
    pre = inter_t + intra_t
    fired = state.s > 0
    branch = np.where(fired, BRANCH_INTER, BRANCH_INTRA).astype(np.int8)
    if mode == WARMUP_MODES["never"]:
        return pre, branch
    use_warm = warmup_mask(state.a, params.tau_s) if mode == WARMUP_MODES["per-neuron"] else np.ones(g.shape, bool)
    delta = np.where(use_warm, warmup_term(G, state.u, thr), pre)
    branch[use_warm] = BRANCH_WARMUP
    return delta, branch


def _exp_clipped(z):
    """``exp(z)`` for ``|z| <= 8``, in float64, as plain arithmetic that LLVM can vectorise.

    ``exp(z) = exp(z/16)^16``: a degree-10 Taylor polynomial of ``exp`` on ``|z/16| <= 0.5`` (truncation
    ``0.5^11/11! e^0.5 = 2e-11`` relative), then four squarings (error times 16): at most 3.2e-10 relative,
    200 times below float32's resolution 6e-8, so the float32 result is the correctly rounded ``exp``
    except in rare near-ties (at most 1 ulp).
    Used for float32 arrays only; float64 arrays use libm's ``exp``.  (Numba cannot vectorise ``np.exp``
    without Intel's SVML, and the warm-up surrogate evaluates it for most neurons of every layer.)
    """
    y = np.float64(z) * 0.0625
    p = 1.0 + y * (1.0 + y * 0.5 * (1.0 + y * (1.0 / 3.0) * (1.0 + y * 0.25 * (1.0 + y * 0.2 * (
        1.0 + y * (1.0 / 6.0) * (1.0 + y * (1.0 / 7.0) * (1.0 + y * 0.125 * (1.0 + y * (1.0 / 9.0) * (
            1.0 + y * 0.1)))))))))
    p = p * p
    p = p * p
    p = p * p
    return p * p


_exp_clipped_py = _exp_clipped
_exp_clipped = kernel(_exp_clipped_py)


def _tsslbp_kernel(g, u, du, s, a, eps, consts, switches, chunks, delta, branch):
    """Fused loop of :func:`compose_delta` over a ``(T, M)`` block of neurons, backwards in time.

    Inputs ``g, u, du, s, a`` and outputs ``delta`` are ``(T, M)`` arrays of one float dtype, ``branch``
    is ``(T, M)`` int8, ``eps`` is the ``(T,)`` PSP kernel.  Per neuron, for ``k = T-1 .. 0``
    (paper-notes section 3)::

        G[k]     = sum_{m >= k} eps[m-k] g[m]
        advance     = min(max(1/du[k], 0), 8) s[k]
        pre[k]   = advance G[k] + c theta_m u[k] advance + c (1 - theta_m)(1 - s[k])
        c        = pre[k] s[k] + c (1 - s[k])(1 - theta_m)
        delta[k] = G[k] f(u[k]) where warm-up applies (a[k] < warm_a, or always), else pre[k]

    Each chunk of neurons owns its carried term ``c`` and spike error ``G``, so chunks run in parallel
    with results independent of scheduling.  Every constant arrives as an argument (Numba would freeze a
    module global at compile time), by name: ``consts`` (:class:`KernelConstants`, the float constants
    as scalars of the arrays' dtype, so float32 stays float32 throughout) and ``switches``
    (:class:`KernelSwitches`: the terms kept, the warm-up mode and the codes of :data:`WARMUP_MODES`, the
    branch codes :data:`BRANCH_WARMUP`, ... as int8).  The loops over neurons are branch-free (``s`` is 0
    or 1, so products and selects choose), which lets LLVM vectorise them; the surrogate's ``exp`` runs
    in a second loop, only where the warm-up applies.
    """
    one, theta_m, decay_m, threshold = consts.one, consts.theta_m, consts.decay_m, consts.threshold
    warm_a, max_inv_du, sigma, z_clip = consts.warm_a, consts.max_inv_du, consts.sigma, consts.z_clip
    use_inter, use_intra, fast_exp = switches.use_inter, switches.use_intra, switches.fast_exp
    warmup_mode, mode_always, mode_never = switches.warmup_mode, switches.mode_always, switches.mode_never
    code_warmup, code_inter, code_intra = switches.code_warmup, switches.code_inter, switches.code_intra
    n_steps, n = g.shape
    c = np.zeros(n, dtype=g.dtype)
    G = np.zeros(n, dtype=g.dtype)
    E = np.zeros(n, dtype=g.dtype)  # e^z of the warm-up surrogate, fast_exp path
    zero = one - one
    k_inter = one if use_inter else zero
    k_intra = one if use_intra else zero
    always = warmup_mode == mode_always
    for ch in prange(chunks):
        lo = ch * n // chunks
        hi = (ch + 1) * n // chunks
        for k in range(n_steps - 1, -1, -1):
            # spike error G[k] = sum_{m>=k} eps[m-k] g[m]                                    (spike_error)
            for m in range(lo, hi):
                G[m] = zero
            for j in range(n_steps - k):
                e = eps[j]
                for m in range(lo, hi):
                    G[m] = spike_error_add(G[m], e, g[k + j, m])
            for m in range(lo, hi):
                sk = s[k, m]
                inv_du = inv_du_clamped(du[k, m], sk, one, zero, max_inv_du)
                cm = c[m]
                pre = inter_term(k_inter, inv_du, G[m]) + intra_term(cm, theta_m, u[k, m], inv_du, decay_m, sk, one)
                c[m] = carry(k_intra, pre, sk, cm, one, decay_m)
                delta[k, m] = pre
                branch[k, m] = code_inter if sk > zero else code_intra  # fired at k, or silent
            if warmup_mode != mode_never:  # warm-up where the neuron's own PSP is small  (warmup_mask, warmup_term)
                if fast_exp:  # float32: branch-free loops LLVM vectorises; f is computed, then selected
                    for m in range(lo, hi):
                        E[m] = _exp_clipped(warmup_z(threshold, u[k, m], sigma, z_clip))  # stored in the arrays' dtype
                    for m in range(lo, hi):
                        f = warmup_f(E[m], one, sigma)
                        warm = always | (a[k, m] < warm_a)  # no short-circuit: stays vectorisable
                        delta[k, m] = G[m] * f if warm else delta[k, m]
                        branch[k, m] = code_warmup if warm else branch[k, m]
                else:
                    for m in range(lo, hi):
                        if always or a[k, m] < warm_a:
                            ez = np.exp(warmup_z(threshold, u[k, m], sigma, z_clip))
                            delta[k, m] = G[m] * warmup_f(ez, one, sigma)
                            branch[k, m] = code_warmup


_tsslbp_kernel_py = _tsslbp_kernel
_tsslbp_kernel = kernel(_tsslbp_kernel_py, parallel=True)


def _tsslbp_compact_kernel(g, du, s, eps, consts, switches, pool, chunks, delta, branch):
    """:func:`_tsslbp_kernel` on a :class:`reference.neuron.CompactState`: ``u`` and ``a`` recomputed.

    ``du`` and ``delta`` are ``(T, M)`` arrays of one float dtype, the spikes ``s`` and ``branch``
    ``(T, M)`` uint8/int8.  Neurons are taken in blocks: for a block, a forward loop over time first
    recomputes ``u`` and ``a`` exactly as the LIF kernel computed them (``u[t] = mem + du[t]``,
    ``a[t] = a[t-1] + (s[t] - a[t-1]) theta_s``: the same operations on the same floats, so the same
    bits), into small arrays that stay in the cache; then the backward loop of :func:`_tsslbp_kernel`,
    with the same operations in the same order, so ``delta`` and ``branch`` are bit-identical to that
    kernel's on the full state.  Reading 9 bytes per neuron-step (``du`` and a uint8 spike) instead of
    16 (``u``, ``du``, ``s``, ``a``) is what makes it faster: the kernel is limited by memory traffic.
    The warm-up choice is a select (not a branch), so the loop vectorises.

    ``g``: with ``pool.k`` (``pool_k`` below) ``== 0``, ``dL/da`` of these neurons, ``(T, M)``, and a block is
    :data:`reference.neuron.BLOCK` neurons.  With ``pool_k > 0`` the neurons are a conv layer's
    ``(N, height, width, n_ch)`` followed by ``pool_k x pool_k`` sum-pooling with weight ``theta_pool``,
    and ``g`` is ``dL/d(pooled PSP)``, ``(T, N*(height//pool_k)*(width//pool_k)*n_ch)``: a block is the
    ``pool_k`` neuron rows under one pooled row of one image (plus one block per image for rows no window
    covers), and the pooling's backward (``dL/da = theta_pool g`` spread over each window, 0 outside,
    as :func:`reference.layers._sum_pool_backward` computes it) is done into the block's scratch, so
    the full-size ``dL/da`` is never written to memory.  ``consts``, ``switches``: as for
    :func:`_tsslbp_kernel` (here ``consts.theta_s`` recomputes the PSP); ``pool``: :class:`PoolGeometry`.
    """
    one, theta_m, decay_m, theta_s = consts.one, consts.theta_m, consts.decay_m, consts.theta_s
    threshold, warm_a, max_inv_du = consts.threshold, consts.warm_a, consts.max_inv_du
    sigma, z_clip = consts.sigma, consts.z_clip
    use_inter, use_intra, fast_exp = switches.use_inter, switches.use_intra, switches.fast_exp
    warmup_mode, mode_always, mode_never = switches.warmup_mode, switches.mode_always, switches.mode_never
    code_warmup, code_inter, code_intra = switches.code_warmup, switches.code_inter, switches.code_intra
    pool_k, theta_pool, height, width, n_ch = pool.k, pool.theta, pool.height, pool.width, pool.n_ch
    n_steps, n = du.shape
    zero = one - one
    k_inter = one if use_inter else zero
    k_intra = one if use_intra else zero
    always = warmup_mode == mode_always
    fast_warm = fast_exp and warmup_mode != mode_never
    slow_warm = not fast_exp and warmup_mode != mode_never
    pooled = pool_k > 0
    row_len = width * n_ch
    if pooled:
        oh, ow = height // pool_k, width // pool_k
        per_img = oh + (1 if height % pool_k else 0)
        jobs = (n // (height * row_len)) * per_img
        size = max(pool_k, height - oh * pool_k) * row_len
    else:
        oh = ow = per_img = 1
        jobs = (n + BLOCK - 1) // BLOCK
        size = BLOCK
    for ch in prange(chunks):
        U = np.empty((n_steps, size), dtype=du.dtype)
        A = np.empty((n_steps, size), dtype=du.dtype)
        S = np.empty((n_steps, size), dtype=du.dtype)
        Gin = np.empty((n_steps, size if pooled else 0), dtype=du.dtype)  # dL/da of a pooled block
        G = np.empty(size, dtype=du.dtype)
        c = np.empty(size, dtype=du.dtype)
        E = np.empty(size, dtype=du.dtype)
        for job in range(ch * jobs // chunks, (ch + 1) * jobs // chunks):
            if pooled:
                img, r = job // per_img, job % per_img
                b0 = (img * height + r * pool_k) * row_len
                nb = (pool_k if r < oh else height - oh * pool_k) * row_len
                g_src, g_off = Gin, 0
                for t in range(n_steps):  # the pooling's backward for this block   (layers._sum_pool_backward)
                    Gt = Gin[t]
                    for i in range(nb):
                        Gt[i] = zero
                    if r < oh:
                        gp = g[t, (img * oh + r) * ow * n_ch:(img * oh + r + 1) * ow * n_ch]
                        for p in range(pool_k):
                            for jj in range(ow):
                                src = gp[jj * n_ch:(jj + 1) * n_ch]
                                for q in range(pool_k):
                                    off = p * row_len + (jj * pool_k + q) * n_ch
                                    dst = Gt[off:off + n_ch]
                                    for cc in range(n_ch):
                                        dst[cc] = theta_pool * src[cc]
            else:
                b0 = job * BLOCK
                nb = min(BLOCK, n - b0)
                g_src, g_off = g, b0
            b1 = b0 + nb
            # (row views of the block are indexed from 0 throughout: LLVM then vectorises the loops)
            # forward in time: u and a of the block, as the LIF kernel computed them
            for i in range(nb):
                c[i] = zero  # the membrane after reset here; the carried term below
                G[i] = zero  # the PSP here; the spike error below
            for t in range(n_steps):
                dut, st, Ut, At, St = du[t, b0:b1], s[t, b0:b1], U[t], A[t], S[t]
                for i in range(nb):
                    o = one if st[i] else zero
                    v = integrate(c[i], dut[i])
                    Ut[i] = v
                    St[i] = o
                    c[i] = reset(v, st[i], zero)
                    y = psp_step(G[i], o, theta_s)
                    G[i] = y
                    At[i] = y
            for i in range(nb):
                c[i] = zero
            # backward in time: the TSSL-BP terms, as in _tsslbp_kernel
            for k in range(n_steps - 1, -1, -1):
                gk = g_src[k, g_off:g_off + nb]
                e0 = eps[0]
                for i in range(nb):  # G[k] = sum_{m>=k} eps[m-k] g[m], summed from m = k up   (spike_error)
                    G[i] = spike_error_add(zero, e0, gk[i])
                for j in range(1, n_steps - k):
                    e = eps[j]
                    gj = g_src[k + j, g_off:g_off + nb]
                    for i in range(nb):
                        G[i] = spike_error_add(G[i], e, gj[i])
                Uk, Ak, Sk, duk = U[k], A[k], S[k], du[k, b0:b1]
                dk, bk = delta[k, b0:b1], branch[k, b0:b1]
                if fast_warm:
                    for i in range(nb):
                        E[i] = _exp_clipped(warmup_z(threshold, Uk[i], sigma, z_clip))
                for i in range(nb):
                    sk = Sk[i]
                    inv_du = inv_du_clamped(duk[i], sk, one, zero, max_inv_du)
                    cm = c[i]
                    pre = inter_term(k_inter, inv_du, G[i]) + intra_term(cm, theta_m, Uk[i], inv_du, decay_m, sk, one)
                    c[i] = carry(k_intra, pre, sk, cm, one, decay_m)
                    br = code_inter if sk > zero else code_intra
                    if fast_warm:  # (warmup_mask, warmup_term)
                        warm_value = G[i] * warmup_f(E[i], one, sigma)
                        warm = always | (Ak[i] < warm_a)
                        pre = warm_value if warm else pre
                        br = code_warmup if warm else br
                    dk[i] = pre
                    bk[i] = br
                if slow_warm:
                    for i in range(nb):
                        if always or Ak[i] < warm_a:
                            ez = np.exp(warmup_z(threshold, Uk[i], sigma, z_clip))
                            dk[i] = G[i] * warmup_f(ez, one, sigma)
                            bk[i] = code_warmup


_tsslbp_compact_kernel_py = _tsslbp_compact_kernel
_tsslbp_compact_kernel = kernel(_tsslbp_compact_kernel_py, parallel=True)


class KernelConstants(NamedTuple):
    """The float constants of a backward kernel, by name; each a scalar of the arrays' dtype.

    Built by :func:`kernel_constants`.  ``one`` (1, so ``zero = one - one`` has the dtype too),
    ``theta_m = 1/tau_m``, ``decay_m = 1 - theta_m``, ``theta_s = 1/tau_s``, ``threshold`` (the layer's),
    ``warm_a = 1/(4 tau_s)`` (the warm-up test on the neuron's own PSP), ``max_inv_du`` (the clamp of
    ``1/du``: :data:`reference.params.MAX_INV_DU`, 10 for the paper-era rule), ``sigma`` and ``z_clip``
    (the warm-up surrogate's :data:`~reference.params.WARMUP_SIGMA`, :data:`~reference.params.WARMUP_Z_CLIP`).
    """

    one: float
    theta_m: float
    decay_m: float
    theta_s: float
    threshold: float
    warm_a: float
    max_inv_du: float
    sigma: float
    z_clip: float


class KernelSwitches(NamedTuple):
    """What a backward kernel computes, by name: the terms kept, the warm-up mode, the codes it writes.

    ``use_inter``, ``use_intra`` (the ablations), ``warmup_mode`` with ``mode_always`` and ``mode_never``
    (the codes of :data:`WARMUP_MODES`), ``code_warmup``, ``code_inter``, ``code_intra`` (int8,
    :data:`BRANCH_WARMUP`, ...), ``fast_exp`` (float32 arrays: :func:`_exp_clipped` instead of ``exp``).
    """

    use_inter: bool
    use_intra: bool
    warmup_mode: int
    mode_always: int
    mode_never: int
    code_warmup: np.int8
    code_inter: np.int8
    code_intra: np.int8
    fast_exp: bool


class PoolGeometry(NamedTuple):
    """The sum-pooling fused into :func:`_tsslbp_compact_kernel`: ``k x k`` windows of weight ``theta``
    over a conv layer's ``height x width x n_ch`` neurons per image; ``k = 0`` for none."""

    k: int
    theta: float
    height: int
    width: int
    n_ch: int


def kernel_constants(params: NeuronParams, threshold: float, dtype, max_inv_du: float = MAX_INV_DU) -> KernelConstants:
    """The :class:`KernelConstants` of a layer with ``params`` and ``threshold``, as scalars of ``dtype``."""
    c = lambda value: as_scalar(value, dtype)
    return KernelConstants(one=c(1.0), theta_m=c(params.theta_m), decay_m=c(1.0 - params.theta_m),
                           theta_s=c(params.theta_s), threshold=c(threshold),
                           warm_a=c(warmup_psp_threshold(params.tau_s)), max_inv_du=c(max_inv_du),
                           sigma=c(WARMUP_SIGMA), z_clip=c(WARMUP_Z_CLIP))


def kernel_switches(dtype, *, inter: bool = True, intra: bool = True, warmup: str = "per-neuron") -> KernelSwitches:
    """The :class:`KernelSwitches` of the options (as :func:`tsslbp_delta` takes them) for arrays of ``dtype``."""
    code = lambda value: as_scalar(value, np.int8)
    return KernelSwitches(use_inter=bool(inter), use_intra=bool(intra), warmup_mode=_warmup_mode(warmup),
                          mode_always=WARMUP_MODES["always"], mode_never=WARMUP_MODES["never"],
                          code_warmup=code(BRANCH_WARMUP), code_inter=code(BRANCH_INTER),
                          code_intra=code(BRANCH_INTRA), fast_exp=bool(np.dtype(dtype) == np.float32))


def _kernel_args(
    g: np.ndarray,
    state: NeuronState,
    params: NeuronParams,
    threshold: float | None = None,
    *,
    inter: bool = True,
    intra: bool = True,
    warmup: str = "per-neuron",
    pool: tuple | None = None,
) -> tuple:
    """The argument tuple of :func:`_tsslbp_kernel` or :func:`_tsslbp_compact_kernel` (and of their
    twins ``_py``) for one layer: the latter for a :class:`reference.neuron.CompactState`.

    Checks the inputs, flattens ``g`` and the state to ``(T, M)`` C-contiguous arrays of ``g``'s dtype,
    gathers the constants by name (:func:`kernel_constants`, :func:`kernel_switches`, and for the compact
    kernel a :class:`PoolGeometry`), and allocates the outputs: the last two
    entries are ``delta`` ``(T, M)`` and ``branch`` ``(T, M)`` int8, which the kernel fills.  Parameters as
    :func:`tsslbp_delta`.  The one place that knows the kernels' argument order: ``tsslbp_delta`` and the
    tests call ``kernel(*_kernel_args(...))``.
    """
    _warmup_mode(warmup)  # a bad mode is named before anything else
    g = np.asarray(g)
    if g.dtype not in (np.float32, np.float64):
        raise TypeError(f"g must be float32 or float64, got {g.dtype}")
    compact = isinstance(state, CompactState)
    neurons = state.du.shape
    if pool is not None:
        k, theta_pool = pool
        if not compact or len(neurons) != 5:
            raise ValueError("pool needs the CompactState of a conv layer, (T, N, H, W, C)")
        t_, n_, h_, w_, c_ = neurons
        if g.shape != (t_, n_, h_ // k, w_ // k, c_):
            raise ValueError(f"g has shape {g.shape}; the pooled output of neurons {neurons} is "
                             f"{(t_, n_, h_ // k, w_ // k, c_)}")
    for name in ("du", "spikes") if compact else ("u", "du", "s", "a"):
        arr = getattr(state, name)
        if arr.shape != (neurons if pool is not None else g.shape):
            raise ValueError(f"state.{name} has shape {arr.shape}, g has shape {g.shape}: they must match")
    dt = g.dtype
    thr = params.threshold if threshold is None else threshold
    n_steps = g.shape[0]
    if compact:
        flat = [np.ascontiguousarray(g.reshape(n_steps, -1), dtype=dt),
                np.ascontiguousarray(state.du.reshape(n_steps, -1), dtype=dt),
                np.ascontiguousarray(state.spikes.reshape(n_steps, -1), dtype=np.uint8)]
    else:
        flat = [np.ascontiguousarray(x.reshape(n_steps, -1), dtype=dt) for x in (g, state.u, state.du, state.s, state.a)]
    n = flat[1].shape[1]  # neurons (g may be pooled)
    consts = kernel_constants(params, thr, dt)
    switches = kernel_switches(dt, inter=inter, intra=intra, warmup=warmup)
    geometry = ()  # the compact kernel's pooling
    if compact:
        geometry = (PoolGeometry(int(pool[0]), as_scalar(pool[1], dt), *neurons[2:]) if pool is not None else
                    PoolGeometry(0, as_scalar(0.0, dt), 0, 0, 0),)
    return (*flat, psp_kernel(n_steps, params.tau_s, dt), consts, switches, *geometry, n_chunks(n),
            np.empty((n_steps, n), dtype=dt), np.empty((n_steps, n), dtype=np.int8))


def tsslbp_delta(
    g: np.ndarray,
    state: NeuronState,
    params: NeuronParams,
    threshold: float | None = None,
    *,
    inter: bool = True,
    intra: bool = True,
    warmup: str = "per-neuron",
    pool: tuple | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``delta[k] = dL/dx[k]`` of a layer of spiking neurons: the whole TSSL-BP rule (fast kernel).

    ``delta = pre = inter + intra`` (:func:`inter_neuron_term`, :func:`intra_neuron_term`), replaced by
    :func:`warmup_term` where :func:`warmup_mask` holds; paper-notes section 3.  Same numbers as
    :func:`compose_delta` (to round-off: the kernel sums in the same order).

    Parameters
    ----------
    g : ndarray, shape (T, ...), float32 or float64
        ``dL/da``, the error on the layer's output PSP.
    state : NeuronState
        ``u``, ``du``, ``s``, ``a`` of the same shape, from :func:`reference.neuron.lif_forward`.
    params : NeuronParams
    threshold : float, optional
        The layer's threshold (defaults to ``params.threshold``).
    inter, intra : bool
        Keep the inter-neuron (spike timing) and intra-neuron (reset and leak) terms; switch one off for
        an ablation.  The intra term only carries error that an inter term put in at a later spike, so
        ``inter=False`` makes the whole TSSL-BP part zero and only warm-up deltas remain.
    warmup : {"per-neuron", "always", "never"}
        ``"per-neuron"``: the authors' final rule (own PSP below ``1/(4 tau_s)``); ``"always"``: the
        surrogate everywhere (no TSSL-BP terms at all, the warm-up-only ablation of their issue #2);
        ``"never"``: pure TSSL-BP.
    pool : (k, theta), optional
        The layer is a conv layer followed by ``k x k`` sum-pooling with weight ``theta``, and ``g`` is the
        error on the POOLED output, (T, N, H//k, W//k, C); the pooling's backward is done inside the
        kernel (the same numbers as :meth:`reference.layers.SumPool2d.backward` first).  Needs a
        :class:`reference.neuron.CompactState`.

    Returns
    -------
    delta : ndarray, shape (T, ...) of the neurons, dtype of ``g``
    branch : int8 ndarray, shape (T, ...)
        :data:`BRANCH_WARMUP`, :data:`BRANCH_INTER` or :data:`BRANCH_INTRA` per neuron and step.
    """
    args = _kernel_args(g, state, params, threshold, inter=inter, intra=intra, warmup=warmup, pool=pool)
    delta, branch = args[-2:]
    if delta.shape[1]:
        with np.errstate(divide="ignore"):  # 1/du at du = +-0 is +-inf by design (then clamped), as compiled
            (_tsslbp_compact_kernel if isinstance(state, CompactState) else _tsslbp_kernel)(*args)
    shape = state.du.shape
    return delta.reshape(shape), branch.reshape(shape)


def branch_fractions(branch: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """Share of each branch, keyed by :data:`BRANCH_NAMES`: of the neuron-steps, or of a summed weight.

    Parameters
    ----------
    branch : int8 array of any shape (the codes :func:`tsslbp_delta` returns).
    weights : optional non-negative array of the same shape, e.g. ``np.abs(delta)``: then each share is
        the branch's part of ``weights.sum()`` (summed in float64) instead of its part of the neuron-steps.
        All shares are 0 for an empty array or zero total weight.
    """
    branch = np.asarray(branch)
    if weights is None:
        total = max(branch.size, 1)
        return {name: float(np.count_nonzero(branch == code)) / total for code, name in BRANCH_NAMES.items()}
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != branch.shape:
        raise ValueError(f"weights shape {w.shape} differs from branch shape {branch.shape}")
    total = w.sum()
    if total == 0:
        return {name: 0.0 for name in BRANCH_NAMES.values()}
    return {name: float(w[branch == code].sum() / total) for code, name in BRANCH_NAMES.items()}


def _warmup_mode(warmup: str) -> int:
    if warmup not in WARMUP_MODES:
        raise ValueError(f"warmup must be one of {sorted(WARMUP_MODES)}, got {warmup!r}")
    return WARMUP_MODES[warmup]
