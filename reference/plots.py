"""Pictures of a spiking network: membrane traces, spike rasters, PSPs, learning curves, confusion matrices.

Every function draws into a Matplotlib ``Axes`` (one is made when none is given) and returns it, so the
same pictures can be made of any network: pass arrays recorded by :class:`reference.network.Network`
(``net.records[i].state``, time first) or your own.  Uses the non-interactive Agg backend when no display
is set.  Time is in steps; membrane potential in threshold units.
"""
from __future__ import annotations

import os

import matplotlib

if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.2))
    return ax


def membrane_trace(u, s, threshold: float = 1.0, ax=None, label=None, color=None):
    """Membrane potential before reset ``u[t]`` of ONE neuron with the threshold and its spikes marked.

    u, s : (T,) arrays (``state.u[:, i]``, ``state.s[:, i]``).  Spikes are drawn as markers on top of the
    step where ``u > threshold``; the reset to 0 happens after each marked step.
    """
    ax = _axes(ax)
    t = np.arange(len(u))
    line, = ax.plot(t, u, marker="o", ms=3, label=label, color=color)
    fired = np.asarray(s) > 0
    ax.plot(t[fired], np.asarray(u)[fired], ls="none", marker="^", ms=9, color=line.get_color(),
            markeredgecolor="k", label=None if label is None else f"{label}: spikes")
    ax.axhline(threshold, color="k", ls="--", lw=1, label=r"threshold $V_{th}$")
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"membrane $u[t]$ (before reset)")
    ax.set_xticks(t)
    return ax


def spike_raster(s, ax=None, max_neurons: int = 200, title=None):
    """Spike raster of a layer for one sample: ``s`` of shape (T, n_neurons); a dot per spike."""
    ax = _axes(ax)
    s = np.asarray(s).reshape(len(s), -1)[:, :max_neurons]
    t_idx, n_idx = np.nonzero(s)
    ax.scatter(t_idx, n_idx, s=6, marker="|", color="k")
    ax.set_xlabel("time step t")
    ax.set_ylabel("neuron index")
    ax.set_xlim(-0.5, s.shape[0] - 0.5)
    ax.set_ylim(-1, s.shape[1])
    if title:
        ax.set_title(title)
    return ax


def psp_trace(a, s=None, ax=None, label=None):
    """The output PSP ``a[t]`` of one neuron, with its spikes as vertical ticks at the bottom."""
    ax = _axes(ax)
    t = np.arange(len(a))
    ax.plot(t, a, marker="s", ms=3, label=label)
    if s is not None:
        for ti in t[np.asarray(s) > 0]:
            ax.axvline(ti, ymax=0.08, color="k", lw=2)
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"PSP $a[t]$")
    return ax


def learning_curve(metrics: dict, ax=None, paper_accuracy: float | None = None, title=None):
    """Train/test accuracy (%) per epoch from a metrics table (dict of columns, as read from metrics.csv).

    ``paper_accuracy`` (in %) draws the paper's reported value as a labelled reference line.
    """
    ax = _axes(ax)
    ep = np.asarray(metrics["epoch"], dtype=float)
    ax.plot(ep, 100 * np.asarray(metrics["train_acc"], float), marker="o", ms=3, label="train")
    if "test_acc" in metrics:
        ax.plot(ep, 100 * np.asarray(metrics["test_acc"], float), marker="s", ms=3, label="test")
    if paper_accuracy is not None:
        ax.axhline(paper_accuracy, color="gray", ls=":", label=f"paper (reported) {paper_accuracy:.2f}%")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def confusion_matrix(labels, predicted, n_class: int = 10, ax=None, title=None):
    """Confusion matrix (rows: true class, columns: predicted), counts written in the cells."""
    ax = _axes(ax)
    cm = np.zeros((n_class, n_class), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels), np.asarray(predicted)), 1)
    im = ax.imshow(cm, cmap="Blues")
    for i in range(n_class):
        for j in range(n_class):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_xticks(range(n_class))
    ax.set_yticks(range(n_class))
    ax.figure.colorbar(im, ax=ax, fraction=0.046)
    if title:
        ax.set_title(title)
    return ax


def save(fig_or_ax, path) -> str:
    """Save a figure (or an Axes' figure) as PNG at 150 dpi, close it, return the path."""
    fig = fig_or_ax.figure if hasattr(fig_or_ax, "figure") and not hasattr(fig_or_ax, "savefig") else fig_or_ax
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return str(path)
