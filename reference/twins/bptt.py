"""TSSL-BP against surrogate-gradient BPTT on the same network, weights and batch.

The first question of a learner who knows the usual way to train spiking networks: how does TSSL-BP's
gradient differ from a surrogate gradient?  Both use the same forward pass (the twin of
:mod:`reference.twins.model`); they differ only in ``ds/du``:

- TSSL-BP: the spike-timing derivative ``min(1/du, 8)`` where a neuron fires (inter-neuron), the
  carried reset/leak term (intra-neuron), the sigmoid surrogate only where the neuron is quiet (warm-up);
- BPTT: the sigmoid surrogate ``f(u)`` at every neuron and step, with the gradient unrolled through the
  membrane recursion, leak and reset included (``u_r = u (1 - s)`` is differentiated through ``s`` too).

:func:`compare_bptt` returns, per layer and time step, the cosine similarity of the two deltas
(``dL/dx[t]``) and their norms, and per layer the same for the weight gradients.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import TwinModel


@dataclass
class BpttRow:
    """One layer (and time step, or ``t = -1`` for the weight gradient) of the comparison."""

    layer: str
    t: int
    quantity: str
    cos: float
    norm_tsslbp: float
    norm_bptt: float

    @property
    def norm_ratio(self) -> float:
        """``|TSSL-BP| / |BPTT|`` (inf when BPTT's is zero and TSSL-BP's is not)."""
        if self.norm_bptt == 0:
            return 0.0 if self.norm_tsslbp == 0 else np.inf
        return self.norm_tsslbp / self.norm_bptt


def _cos(a, b) -> float:
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


def compare_bptt(config, backend, weights: dict, inputs, labels, options=None) -> tuple[list[BpttRow], dict, dict]:
    """Gradients of one batch by TSSL-BP and by surrogate BPTT, compared per layer and step.

    Parameters
    ----------
    config : Config or path; backend : from :func:`reference.twins.backend`
    weights : name -> authors' layout; inputs (N, C, H, W); labels (N,)
    options : TSSL-BP options for the TSSL-BP side (inter, intra, warmup, target_filter); the
        ``target_filter`` applies to both.

    Returns
    -------
    rows : list of BpttRow, spiking layers only, output layer last; per layer T rows of ``delta`` (t = 0..T-1)
        then one ``dL/dW`` row (t = -1)
    tsslbp, bptt : the two :meth:`TwinModel.gradients` results (same loss: the forward is shared)
    """
    options = dict(options or {})
    shared = {k: options.pop(k) for k in ("target_filter", "desired_pattern") if k in options}
    ts = TwinModel(config, backend, spike="tsslbp", **options, **shared).gradients(weights, inputs, labels)
    bp = TwinModel(config, backend, spike="bptt", **shared).gradients(weights, inputs, labels)
    rows = []
    for name in ts["spikes"]:
        d1, d2 = ts["deltas"][name], bp["deltas"][name]  # (N, C, H, W, T)
        for t in range(d1.shape[-1]):
            rows.append(BpttRow(name, t, "delta", _cos(d1[..., t], d2[..., t]),
                                float(np.linalg.norm(d1[..., t])), float(np.linalg.norm(d2[..., t]))))
        g1, g2 = ts["grads"][name], bp["grads"][name]
        rows.append(BpttRow(name, -1, "dL/dW", _cos(g1, g2), float(np.linalg.norm(g1)), float(np.linalg.norm(g2))))
    return rows, ts, bp


def format_bptt(rows: list[BpttRow]) -> str:
    """A table: layer, step, quantity, cosine, the two norms and their ratio."""
    lines = [f"{'layer':12s} {'t':>3s} {'quantity':9s} {'cos':>8s} {'|TSSL-BP|':>11s} {'|BPTT|':>11s} {'ratio':>8s}"]
    for r in rows:
        t = "all" if r.t < 0 else str(r.t)
        lines.append(f"{r.layer:12s} {t:>3s} {r.quantity:9s} {r.cos:8.4f} {r.norm_tsslbp:11.4e} {r.norm_bptt:11.4e} "
                     f"{r.norm_ratio:8.3f}")
    return "\n".join(lines)
