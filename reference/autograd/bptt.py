"""TSSL-BP against surrogate-gradient BPTT on the same network, weights and batch.

The first question of a learner who knows the usual way to train spiking networks: how does TSSL-BP's
gradient differ from a surrogate gradient?  Both use the same forward pass (the twin of
:mod:`reference.autograd.model`); they differ only in ``ds/du``:

- TSSL-BP: the spike-timing derivative ``min(1/du, 8)`` where a neuron fires (inter-neuron), the
  carried reset/leak term (intra-neuron), the sigmoid surrogate only where the neuron is quiet (warm-up);
- BPTT: the sigmoid surrogate ``f(u)`` at every neuron and step, with the gradient unrolled through the
  membrane recursion, leak and reset included (``u_r = u (1 - s)`` is differentiated through ``s`` too).

:func:`compare_bptt` returns, per layer and time step, the cosine similarity of the two deltas
(``dL/dx[t]``) and their norms, and per layer the same for the weight gradients.
"""
from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass

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
    config : Config or path; backend : from :func:`reference.autograd.backend`
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


def write_csv(rows: list[BpttRow], path) -> None:
    """The rows as CSV (``t = -1`` marks the weight-gradient rows)."""
    from ..atomic import atomic_write_text

    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=[*asdict(rows[0]), "norm_ratio"], lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({**asdict(r), "norm_ratio": r.norm_ratio})
    atomic_write_text(path, text.getvalue())


def plot_bptt(rows: list[BpttRow], path, title: str = "") -> str:
    """Two panels: cosine of the deltas per layer x time step (heatmap), and the norms of the weight
    gradients per layer (bars).  Returns the path written."""
    from ..plots import plt  # the library's backend choice: Agg without a display, a notebook's own inside one

    layers = list(dict.fromkeys(r.layer for r in rows))
    steps = sorted({r.t for r in rows if r.t >= 0})
    cos = np.full((len(layers), len(steps)), np.nan)
    for r in rows:
        if r.t >= 0:
            cos[layers.index(r.layer), steps.index(r.t)] = r.cos
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 0.6 * len(layers) + 2.6))
    im = ax1.imshow(cos, vmin=-1, vmax=1, cmap="RdBu", aspect="auto")
    for i in range(len(layers)):
        for j in range(len(steps)):
            if np.isfinite(cos[i, j]):
                ax1.text(j, i, f"{cos[i, j]:.2f}", ha="center", va="center", fontsize=8)
    ax1.set_xticks(range(len(steps)), [str(t) for t in steps])
    ax1.set_yticks(range(len(layers)), layers)
    ax1.set_xlabel("time step t")
    ax1.set_title("cos(delta TSSL-BP, delta BPTT) per layer and step")
    fig.colorbar(im, ax=ax1, fraction=0.046, pad=0.04, label="cosine similarity")
    w = [r for r in rows if r.t < 0]
    y = np.arange(len(w))
    ax2.barh(y - 0.2, [r.norm_tsslbp for r in w], height=0.4, label="TSSL-BP")
    ax2.barh(y + 0.2, [r.norm_bptt for r in w], height=0.4, label="surrogate BPTT")
    for yi, r in zip(y, w):
        ax2.text(max(r.norm_tsslbp, r.norm_bptt), yi, f" cos {r.cos:.2f}", va="center", fontsize=8)
    ax2.set_yticks(y, [r.layer for r in w])
    ax2.invert_yaxis()
    ax2.set_xlabel("|dL/dW| (Frobenius norm)")
    ax2.set_title("weight gradients")
    ax2.legend(loc="lower right", fontsize=8)
    if title:
        fig.suptitle(title)
    from ..atomic import atomic_write

    fig.tight_layout()
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=120))
    finally:
        plt.close(fig)
    return str(path)
