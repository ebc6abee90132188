"""Neuron constants of TSSL-BP and the named numbers of its backward pass.

Every bare number of the authors' ``functions/tsslbp.py`` has a name here, with the paper-notes section
(``docs/paper-notes.md``) that defines it.  Kernels never read these globals: Numba freezes globals
at compile time, so every value is passed to a kernel as an argument.

Why these values: the authors' code gives no reason for them (and the paper could not be checked
here); they are the values their code uses (the paper-era code clamped ``1/du`` at 10, paper-notes section 7).  What each does is
shown where it acts: the ``1/du`` clamp binds only for spikes whose membrane barely crossed the
threshold (lesson 4, section 3, measures for which inputs); the surrogate's width sets how far from
the threshold a silent neuron still gets error (lesson 6, section 2); the warm-up switch ``1/(4 tau_s)`` is a
PSP that a spike leaves only after some silent steps (:func:`reference.tsslbp.warmup_mask`); the weight
and gradient-norm clips are the authors' training loop (paper-notes section 3).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Upper clamp of ``1/du`` in the inter-neuron term (the authors' ``torch.clamp(-1/delta_u, -8, 0)``).
MAX_INV_DU = 8.0
#: Width ``a`` of the warm-up sigmoid surrogate (the authors' ``a = 0.2``); its slope at threshold is 1/(4*0.2).
WARMUP_SIGMA = 0.2
#: Clamp of the surrogate's argument ``z = (threshold - u)/sigma`` (the authors' ``torch.clamp(..., -8, 8)``).
WARMUP_Z_CLIP = 8.0
#: Weights are clipped to ``[-WEIGHT_CLIP, WEIGHT_CLIP]`` after every optimiser step (the authors' ``clamp(-4, 4)``).
WEIGHT_CLIP = 4.0
#: Gradient-norm clipping over all weights (the authors' ``clip_grad_norm_(params, 1)``).
GRAD_NORM_CLIP = 1.0
#: Default fixed weight of the sum-pooling layers (config key ``theta``).
POOL_THETA = 1.1
#: Largest ``tau_m`` and ``tau_s`` accepted, in time steps.  A membrane with ``tau_m = 1e6`` leaks 1% over
#: the longest simulation a config may ask for (10,000 steps), so it is already leak-free in practice;
#: larger values only push ``1/tau`` (the leak, the PSP's gain) toward float32's underflow, and ``tau_s`` of
#: 1e308 made every PSP zero and the network silent without a word.
MAX_TAU = 1e6


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis (PyTorch's formula); used by the config and the layers."""
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


def warmup_psp_threshold(tau_s: float) -> float:
    """The warm-up switch ``1/(4 tau_s)`` on a neuron's own PSP (authors: ``th``), paper-notes section 3, item 3."""
    return 1.0 / (4.0 * tau_s)


@dataclass(frozen=True)
class NeuronParams:
    """Constants of the LIF neuron with first-order synaptic PSP (paper-notes section 1)."""

    #: Membrane time constant, in time steps (``theta_m = 1/tau_m`` is the leak per step).
    tau_m: float = 5.0
    #: Synaptic time constant, in time steps (``theta_s = 1/tau_s``).
    tau_s: float = 3.0
    #: Firing threshold ``V_th`` (dimensionless membrane units); a spike needs ``u > threshold``.
    threshold: float = 1.0
    #: Number of time steps ``T`` of one simulation.
    n_steps: int = 5

    def __post_init__(self):
        for name in ("tau_m", "tau_s"):
            value = getattr(self, name)
            if not (np.isfinite(value) and 1.0 <= value <= MAX_TAU):
                raise ValueError(f"{name} must be a number of time steps from 1 to {MAX_TAU:g}, got {value!r}")
        if not np.isfinite(self.threshold):
            raise ValueError(f"threshold must be finite, got {self.threshold!r}")
        if int(self.n_steps) != self.n_steps or self.n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, got {self.n_steps!r}")

    @property
    def theta_m(self) -> float:
        """Leak per step ``1/tau_m``."""
        return 1.0 / self.tau_m

    @property
    def theta_s(self) -> float:
        """Synaptic decay per step ``1/tau_s``."""
        return 1.0 / self.tau_s

    def replace(self, **changes) -> "NeuronParams":
        """A copy with some fields changed."""
        fields = {k: getattr(self, k) for k in ("tau_m", "tau_s", "threshold", "n_steps")}
        fields.update(changes)
        return NeuronParams(**fields)
