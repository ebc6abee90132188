"""Surrogate-gradient BPTT for the same LIF layer: the usual alternative TSSL-BP is compared with.

Backpropagation through time differentiates the forward recursion of :func:`reference.neuron.lif_forward`
step by step, replacing the spike's derivative ``ds/du`` (zero almost everywhere) by a smooth surrogate
at **every** neuron and step.  We use the sigmoid surrogate of TSSL-BP's warm-up,
:func:`reference.tsslbp.warmup_surrogate` (slope ``1/(4 * 0.2)`` at the threshold), so that the two rules
differ only where TSSL-BP uses spike timing (``1/du``) and its intra-neuron term.

With ``u_r[t] = u[t] (1 - s[t])`` the membrane carried to the next step and ``e[t] = dL/du_r[t]``:

.. math::

    e[T-1] = 0,\\qquad
    \\frac{dL}{du[t]} = \\bigl(G[t] - e[t]\\, u[t]\\bigr) f(u[t]) + e[t] (1 - s[t]),\\qquad
    e[t-1] = (1 - \\theta_m) \\frac{dL}{du[t]}

where ``G[t] = dL/ds[t]`` through the neuron's PSP (:func:`reference.tsslbp.spike_error`); the
``- e[t] u[t]`` term is the reset, differentiated through the spike.  ``delta[t] = dL/dx[t] = dL/du[t]``.

Common practice detaches the reset instead: SpyTorch's tutorial writes ``rst = out.detach()`` ("we do
not want to backprop through the reset"), and snnTorch's neurons build their reset signal with
``.detach()``.  The reset is then a constant of the backward pass, the ``- e[t] u[t]`` term disappears,
and the error carried through a spike step is ``e[t] (1 - s[t])`` only.  The dropped term,
``-e[t] u[t] f(u[t])``, is the reset's surrogate derivative: the membrane a spike removes, times the
error on the later membrane, largest around the threshold where ``f`` peaks.  ``detach_reset=True`` gives that variant.
The PyTorch/JAX twins compute the same gradient by autodiff (``TwinModel(spike="bptt")``); the tests
check the two against each other.
"""
from __future__ import annotations

import numpy as np

from .neuron import NeuronState, psp_kernel
from .params import NeuronParams
from .tsslbp import BRANCH_WARMUP, spike_error, warmup_surrogate


def bptt_delta(g: np.ndarray, state: NeuronState, params: NeuronParams, threshold: float | None = None,
               detach_reset: bool = False):
    """``delta = dL/dx`` of a LIF layer by surrogate-gradient BPTT (reset and leak unrolled).

    Parameters
    ----------
    g : ndarray, shape (T, ...), ``dL/da``: the error on the layer's output PSP
    state : NeuronState recorded by :func:`reference.neuron.lif_forward`
    params : NeuronParams
    threshold : float, optional (defaults to ``params.threshold``)
    detach_reset : treat the reset as a constant (drop the ``- e[t] u[t]`` term), as SpyTorch and snnTorch do

    Returns
    -------
    delta : ndarray, shape (T, ...), dtype of ``g``
    branch : int8 ndarray, all ``BRANCH_WARMUP`` (every delta comes from the surrogate), so that the
        same bookkeeping as :func:`reference.tsslbp.tsslbp_delta` applies
    """
    thr = params.threshold if threshold is None else threshold
    dt = g.dtype
    G = spike_error(g, psp_kernel(g.shape[0], params.tau_s, dt))
    f = warmup_surrogate(state.u, thr)
    leak = dt.type(1.0 - params.theta_m)
    delta = np.empty_like(g)
    e = np.zeros_like(g[0])
    for t in range(g.shape[0] - 1, -1, -1):
        u, s = state.u[t], state.s[t]
        delta[t] = (G[t] if detach_reset else G[t] - e * u) * f[t] + e * (1 - s)
        e = leak * delta[t]
    return delta, np.full(g.shape, BRANCH_WARMUP, dtype=np.int8)
