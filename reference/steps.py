"""The equations of TSSL-BP, one small function each: the only place a compiled kernel's arithmetic is written.

Every kernel of the package (``neuron``, ``layers``, ``tsslbp``, ``paper2020``) is loops and memory
layout around calls to these functions; none writes an equation itself.  The readable whole-array NumPy
versions (``tsslbp.spike_advance``, ``inter_neuron_term``, ``intra_neuron_term``, ``warmup_term``,
``compose_delta``, the paper-era and BPTT functions) are written apart on purpose, as a second reading of
the same equations, and the tests check the kernels against them.  They take and return scalars
of one float dtype (float32 stays float32: every constant arrives in the arrays' dtype, see
:func:`reference._jit.as_scalar`), in the operation order of the authors' float32 code, which decides
the bits.  Compiled, each is inlined into the kernel that calls it (:func:`reference._jit.step`); from
Python, and under ``NUMBA_DISABLE_JIT=1``, each is the plain function below, so a learner stepping
through a training step lands here, in the equation (lesson 10).

Notation (docs/paper-notes section 1 and 3): ``theta_m = 1/tau_m``, ``theta_s = 1/tau_s``, ``decay_m =
1 - theta_m``; ``u`` the membrane before reset, ``du`` its increment, ``s`` the spike (0 or 1), ``a``
the PSP, ``g = dL/da``, ``G`` the spike error, ``c`` the carried intra-neuron term.

Where to change the neuron: :func:`lif_step` (and :func:`psp_step` for the synapse).  Where to change
the rule: the functions of the backward below; the paper-era rule's own three are at the end.
"""
from __future__ import annotations

from ._jit import step


# -------------------------------------------------------------------------------------- the forward pass
@step
def membrane_increment(mem, x, neg_theta_m):
    """``du[t] = -theta_m u_r[t-1] + x[t]``: leak of the membrane after reset, plus the input current."""
    return neg_theta_m * mem + x


@step
def integrate(mem, du):
    """``u[t] = u_r[t-1] + du[t]``: the membrane before reset."""
    return mem + du


@step
def fires(u, threshold):
    """``s[t] = [u[t] > V_th]``: strictly above the threshold (a membrane exactly at it does not fire)."""
    return u > threshold


@step
def reset(u, fired, zero):
    """``u_r[t] = u[t] (1 - s[t])``: reset to zero after a spike, written as a select."""
    return zero if fired else u


@step
def lif_step(mem, x, neg_theta_m, threshold, zero):
    """One step of a LIF neuron: returns ``(du, u, fired, u_r)`` from the membrane after the last reset.

    .. math:: du = -\\theta_m u_r[t-1] + x[t],\\quad u = u_r[t-1] + du,\\quad s = [u > V_{th}],
        \\quad u_r[t] = u (1 - s)
    """
    du = membrane_increment(mem, x, neg_theta_m)
    u = integrate(mem, du)
    fired = fires(u, threshold)
    return du, u, fired, reset(u, fired, zero)


@step
def psp_step(prev, s, theta_s):
    """``a[t] = a[t-1] + theta_s (s[t] - a[t-1])``: the synapse's first-order filter (``a[-1] = 0``)."""
    return prev + (s - prev) * theta_s


# --------------------------------------------------------------------------- the backward pass (final rule)
@step
def spike_error_add(G, eps_j, g):
    """One term of the spike error ``G[k] = sum_{j >= 0} eps[j] g[k + j]`` (``dL/ds[k]`` through the PSP;
    docs/paper-notes section 3)."""
    return G + eps_j * g


@step
def inv_du_clamped(du, s, one, zero, max_inv_du):
    """``min(1/du, 8) s``: how far the spike at step k moves (earlier) per unit of added membrane, where
    the neuron fired; 0 where it did not.  The authors' ``clamp(-1/du, -8, 0) * s`` with the sign turned:
    a ``du < 0`` or ``du = -0`` at a spike gives 0 (``1/(-0) = -inf``), ``du = +0`` gives 8 (``1/(+0) = +inf``).
    Paper-notes section 3, item 1 (inter-neuron)."""
    return min(max(one / du, zero), max_inv_du) * s


@step
def inter_term(k_inter, inv_du, G):
    """Inter-neuron term ``G[k] min(1/du[k], 8) s[k]`` (``k_inter`` 1, or 0 for the ``--no-inter`` ablation;
    paper-notes section 3, item 1)."""
    return k_inter * inv_du * G


@step
def intra_term(c, theta_m, u, inv_du, decay_m, s, one):
    """Intra-neuron term ``c theta_m u[k] min(1/du[k], 8) s[k] + c (1 - theta_m)(1 - s[k])``: the error
    carried from later steps, through the reset where the neuron fired, through the leak where it did not
    (paper-notes section 3, item 2)."""
    return c * theta_m * u * inv_du + c * decay_m * (one - s)


@step
def carry(k_intra, pre, s, c, one, decay_m):
    """The carried term for step k-1: ``delta_pre[k]`` where the neuron fired at k, else ``c (1 - theta_m)``
    (``k_intra`` 1, or 0 for the ``--no-intra`` ablation, which carries nothing; paper-notes section 3, item 2)."""
    return k_intra * (pre * s + c * (one - s) * decay_m)


@step
def warmup_z(threshold, u, sigma, z_clip):
    """``z = clip((V_th - u)/sigma, -8, 8)``: where the membrane is on the warm-up sigmoid (paper-notes section 3,
    item 3)."""
    return min(max((threshold - u) / sigma, -z_clip), z_clip)


@step
def warmup_f(e, one, sigma):
    """The warm-up surrogate ``f = e^z / ((1 + e^z)^2 sigma)`` from ``e = e^z`` (peak ``1/(4 sigma)`` at the threshold;
    paper-notes section 3, item 3)."""
    return e / ((one + e) * (one + e) * sigma)


# ------------------------------------------------------------------------------ the paper-era rule (2020)
@step
def reset_carry_2020(fired_next, g_next, q, one, decay_m):
    """The paper-era reset record ``q[j] = s[j+1] g[j+1] + (1 - s[j+1])(1 - theta_m) q[j+1]``
    (paper-notes section 7)."""
    return fired_next * g_next + (one - fired_next) * decay_m * q


@step
def reset_term_2020(fired, theta_m, u, q):
    """The paper-era reset error ``h[j] = s[j] theta_m u[j] q[j]``, added to ``g`` before the PSP's sum (paper-notes
    section 7)."""
    return fired * theta_m * u * q


@step
def inv_du_2020(du, one, max_inv_du):
    """The paper-era clamp ``clamp(1/du, -10, 10)`` (both signs kept; multiplied by the spike after;
    paper-notes section 7)."""
    return min(max(one / du, -max_inv_du), max_inv_du)
