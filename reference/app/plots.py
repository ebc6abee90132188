"""Pictures of a spiking network: membrane traces, spike rasters, PSPs, learning curves, confusion matrices.

Every function draws into a Matplotlib ``Axes`` (one is made when none is given) and returns it, so the
same pictures can be made of any network: pass arrays recorded by :class:`reference.network.Network`
(``net.records[i].state``, time first) or your own.  Importing this module leaves Matplotlib's backend
alone (a notebook keeps its inline backend); without a display Matplotlib itself falls back to Agg.
Time is in steps; membrane potential in threshold units.
"""
from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np


#: One colour per TSSL-BP branch (names of :data:`reference.tsslbp.BRANCH_NAMES`), the same in every picture.
BRANCH_COLORS = {"warm-up": "tab:gray", "inter (fired)": "tab:red", "intra (silent)": "tab:blue"}


def _axes(ax, figsize=(6, 3.2)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
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
    """Confusion matrix (rows: true class, columns: predicted), counts written in the cells.

    labels, predicted : (N,) int class indices.  A new figure, when no ``ax`` is given, is square.
    """
    ax = _axes(ax, figsize=(5, 4.4))
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


def gradient_flow_heatmap(deltas, ax=None, normalise=None, annotate: bool = True, title=None):
    """Where the error goes: mean ``|delta[t]|`` per layer (rows, first layer on top) and time step (columns).

    Parameters
    ----------
    deltas : dict name -> array (T, ...) time first, e.g. ``{r.name: r.delta for r in net.records if
        r.state is not None}`` after ``net.backward`` (``dL/dx`` of the spiking layers; a pooling record's
        delta is ``dL/d out``, another quantity, so leave those out or say so in the row name).
    normalise : None or "row"
        None: the magnitudes on a logarithmic colour scale (how much error reaches each layer);
        "row": each layer divided by its largest step (where in time each layer's error sits, 0..1).
    annotate : write each cell's value in it.

    Notes
    -----
    The value drawn is the (n_layers, T) array ``mean over neurons and samples of |delta[t]|``.
    """
    from matplotlib.colors import LogNorm

    ax = _axes(ax)
    names = list(deltas)
    vals = np.array([np.abs(np.asarray(deltas[k])).reshape(len(deltas[k]), -1).mean(axis=1) for k in names])
    if normalise == "row":
        vals = vals / np.maximum(vals.max(axis=1, keepdims=True), np.finfo(float).tiny)
        im = ax.imshow(vals, aspect="auto", cmap="magma", vmin=0, vmax=1)
        label, fmt = r"mean $|\delta[t]|$ / layer max", "{:.2f}"
    elif normalise is None:
        pos = vals[vals > 0]
        lo, hi = (pos.min(), pos.max()) if pos.size else (1e-12, 1.0)
        im = ax.imshow(np.where(vals > 0, vals, np.nan), aspect="auto", cmap="magma",
                       norm=LogNorm(vmin=lo, vmax=max(hi, lo * 1.0001)))
        label, fmt = r"mean $|\delta[t]|$ (log scale)", "{:.1e}"
    else:
        raise ValueError(f"normalise must be None or 'row', got {normalise!r}")
    if annotate:
        mid = np.nanmean(im.norm(vals))
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                ax.text(j, i, fmt.format(vals[i, j]), ha="center", va="center", fontsize=7,
                        color="black" if im.norm(vals[i, j]) > mid else "white")
    ax.set_xticks(range(vals.shape[1]))
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.set_xlabel("time step t")
    ax.set_ylabel("layer")
    ax.figure.colorbar(im, ax=ax, fraction=0.046, label=label)
    if title:
        ax.set_title(title)
    return ax


def branch_fractions_bar(branches, ax=None, weights=None, title=None):
    """Stacked horizontal bars: which TSSL-BP branch produced each delta, as fractions of neuron-steps.

    Parameters
    ----------
    branches : dict label -> int8 array of any shape (``net.records[i].branch`` after ``net.backward``,
        or a slice of it, e.g. one time step), codes of :data:`reference.tsslbp.BRANCH_NAMES`.
    weights : optional dict label -> non-negative array of the same shape (e.g. ``np.abs(rec.delta)``):
        then each segment is the branch's share of the summed weight (of ``sum |delta|``) instead of its
        share of neuron-steps (:func:`reference.tsslbp.branch_fractions`).

    Notes
    -----
    One bar per label (first on top), segments warm-up / inter (fired) / intra (silent), each segment
    labelled with its percentage when wide enough.
    """
    from ..tsslbp import BRANCH_NAMES, branch_fractions

    ax = _axes(ax)
    labels = list(branches)
    fr = [branch_fractions(branches[k], None if weights is None else weights[k]) for k in labels]
    y = np.arange(len(labels))
    left = np.zeros(len(labels))
    for name in BRANCH_NAMES.values():
        w = np.array([f[name] for f in fr])
        ax.barh(y, w, left=left, color=BRANCH_COLORS[name], label=name, edgecolor="white")
        for yi, (l0, wi) in enumerate(zip(left, w)):
            if wi >= 0.06:
                ax.text(l0 + wi / 2, yi, f"{100 * wi:.0f}%", ha="center", va="center", fontsize=7, color="white")
        left += w
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of neuron-steps" if weights is None else r"share of $\sum|\delta|$")
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False)
    if title:
        ax.set_title(title, pad=22)
    return ax


def delta_by_term(inter, intra, delta=None, branch=None, ax=None, title=None, legend: bool = True):
    """One neuron's TSSL-BP delta split into its terms, per time step, as side-by-side bars.

    Parameters
    ----------
    inter, intra : (T,) the neuron's inter- and intra-neuron terms (:func:`reference.tsslbp.inter_neuron_term`,
        :func:`reference.tsslbp.intra_neuron_term`, e.g. ``inter[:, n, i]`` of a layer's ``(T, N, F)`` arrays).
    delta : optional (T,), the delta the rule finally uses (``rec.delta`` or :func:`reference.tsslbp.tsslbp_delta`),
        drawn as a black line with markers.
    branch : optional (T,) int8 codes (:data:`reference.tsslbp.BRANCH_NAMES`); where it is the warm-up code the
        value of ``delta`` there (the surrogate ``G f(u)`` that replaced inter + intra) is drawn as a grey bar,
        the inter and intra bars it discarded faded and hatched, and each step's tick says which branch the
        neuron took ("TSSL-BP" or "warm-up").

    Notes
    -----
    Colours: :data:`BRANCH_COLORS` (inter red, intra blue, warm-up grey), as in :func:`branch_fractions_bar`.
    """
    from ..tsslbp import BRANCH_WARMUP

    ax = _axes(ax)
    inter, intra = np.asarray(inter, dtype=float), np.asarray(intra, dtype=float)
    t = np.arange(len(inter))
    width = 0.27
    warm = np.zeros(len(t), bool) if branch is None else np.asarray(branch) == BRANCH_WARMUP
    used = ~warm
    ax.bar(t[used] - width, inter[used], width, color=BRANCH_COLORS["inter (fired)"],
           label=r"inter $s\,\min(1/du,8)\,G$")
    ax.bar(t[used], intra[used], width, color=BRANCH_COLORS["intra (silent)"], label=r"intra (carried $c$)")
    if warm.any():  # what TSSL-BP computed there but the warm-up replaced: faded and hatched
        ax.bar(t[warm] - width, inter[warm], width, color=BRANCH_COLORS["inter (fired)"], alpha=0.25, hatch="///",
               edgecolor="0.4", lw=0)
        ax.bar(t[warm], intra[warm], width, color=BRANCH_COLORS["intra (silent)"], alpha=0.25, hatch="///",
               edgecolor="0.4", lw=0, label="inter / intra discarded (warm-up taken)")
        if delta is not None:
            ax.bar(t[warm] + width, np.asarray(delta, dtype=float)[warm], width, color=BRANCH_COLORS["warm-up"],
                   label=r"warm-up $G\,f(u)$ (replaces inter+intra)")
    if delta is not None:
        ax.plot(t, delta, "k.-", lw=1, ms=6, label=r"$\delta[k]$ used")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xticks(t)
    if branch is not None:  # which rule the neuron took at each step, under its step number
        ax.set_xticklabels([f"{k}\n{'warm-up' if w else 'TSSL-BP'}" for k, w in zip(t, warm)], fontsize=7)
    ax.set_xlabel("time step k (and the branch the neuron took)" if branch is not None else "time step k")
    ax.set_ylabel(r"$\delta[k] = \partial L/\partial x[k]$")
    if legend:
        ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return ax


def branch_fractions_curve(steps, fractions, ax=None, title=None, legend: bool = True):
    """Share of each TSSL-BP branch against the training step, for one layer, as stacked areas.

    Parameters
    ----------
    steps : (S,) training-step (mini-batch) indices.
    fractions : sequence of S dicts as returned by :func:`reference.tsslbp.branch_fractions` (one per
        recorded step, e.g. ``branch_fractions(net.records[i].branch)`` after each ``train_step``), or a dict
        branch name -> (S,) array.  The three shares of a step sum to 1.

    Notes
    -----
    Colours: :data:`BRANCH_COLORS` (warm-up grey, inter red, intra blue), as in :func:`branch_fractions_bar`.
    """
    from ..tsslbp import BRANCH_NAMES

    ax = _axes(ax)
    names = list(BRANCH_NAMES.values())
    if isinstance(fractions, dict):
        cols = [np.asarray(fractions[n], dtype=float) for n in names]
    else:
        cols = [np.array([f[n] for f in fractions], dtype=float) for n in names]
    ax.stackplot(np.asarray(steps), *cols, labels=names, colors=[BRANCH_COLORS[n] for n in names], alpha=0.85)
    ax.set_xlim(np.min(steps), np.max(steps))
    ax.set_ylim(0, 1)
    ax.set_xlabel("training step (mini-batch)")
    ax.set_ylabel("fraction of neuron-steps")
    if legend:
        ax.legend(fontsize=7, loc="lower left")
    if title:
        ax.set_title(title)
    return ax


def spike_count_histogram(s, ax=None, title=None, log: bool = True):
    """Histogram of the spike count of every neuron of a layer (the authors' issue #15: count firing).

    s : (T, ...) spikes, time first, any trailing shape (``net.records[i].state.s``, e.g. (T, N, H, W, C):
    every sample and neuron is one count).  Counts ``s.sum(axis=0)`` lie in 0..T; the title (unless given)
    states the firing rate (spikes per neuron and step) and the fraction of silent neurons.
    """
    ax = _axes(ax)
    s = np.asarray(s)
    n_steps = s.shape[0]
    counts = s.reshape(n_steps, -1).sum(axis=0)
    ax.hist(counts, bins=np.arange(n_steps + 2) - 0.5, color="C0", rwidth=0.85)
    if log:
        ax.set_yscale("log")
    ax.set_xlim(-0.6, n_steps + 0.6)
    ax.set_xlabel(f"spike count over T = {n_steps} steps")
    ax.set_ylabel("neurons" + (" (x samples)" if s.ndim > 2 else ""))
    rate = float(s.mean()) if s.size else 0.0
    ax.set_title(title or f"rate {rate:.3f} spikes/neuron/step, silent {np.mean(counts == 0):.0%}")
    return ax


def layer_firing_rates(runs: dict, ax=None, title=None):
    """Grouped bars: the firing rate (spikes per neuron and step) of every spiking layer, for one or more runs.

    runs : dict label -> ``net.records`` of a forward pass (list of LayerRecord; pooling/dropout layers are
    skipped) or label -> {layer name: rate}.  One colour per label, layers in the order of the first run.
    """
    ax = _axes(ax)
    rates = {}
    for label, run in runs.items():
        if isinstance(run, dict):
            rates[label] = dict(run)
        else:
            rates[label] = {rec.name: rec.state.firing_rate for rec in run if rec.state is not None}
    names = list(next(iter(rates.values())))
    k = np.arange(len(names))
    width = 0.8 / max(len(rates), 1)
    for j, (label, r) in enumerate(rates.items()):
        ax.bar(k + (j - (len(rates) - 1) / 2) * width, [r.get(n, np.nan) for n in names], width=width, label=label)
    ax.set_xticks(k)
    ax.set_xticklabels(names)
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    if len(rates) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    return ax


#: How every PNG file begins.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


#: The PNG ``Software`` text that :func:`save` writes into every figure; its ``Figure`` text is the name it
#: was drawn as.  By the two a command knows a figure of its own.
DRAWN_BY = "tsslbp-reference"


def not_a_png(path) -> bool:
    """Whether ``path`` exists and is not the figure :func:`save` drew under that name (a link, a folder,
    a user's text or own PNG image, or another of the project's figures copied there): a command replaces
    only a figure of its own, which carries :data:`DRAWN_BY` as its PNG ``Software`` text and its file
    name as its ``Figure`` text."""
    if not os.path.lexists(path):
        return False
    if os.path.islink(path) or not os.path.isfile(path):
        return True
    text = png_text(path)
    return (text.get("Software"), text.get("Figure")) != (DRAWN_BY, os.path.basename(path))


def png_text(path, limit: int = 1 << 16) -> dict:
    """The ``tEXt`` entries of a PNG file before its image data (``{}`` for a file that is no PNG), read
    from at most its first ``limit`` bytes."""
    import struct

    with open(path, "rb") as fh:
        head = fh.read(limit)
    if not head.startswith(PNG_SIGNATURE):
        return {}
    out, at = {}, len(PNG_SIGNATURE)
    while at + 8 <= len(head):
        length, kind = struct.unpack(">I4s", head[at:at + 8])
        if kind in (b"IDAT", b"IEND") or at + 12 + length > len(head):
            break
        if kind == b"tEXt":
            key, _, text = head[at + 8:at + 8 + length].partition(b"\0")
            out[key.decode("latin-1")] = text.decode("latin-1")
        at += 12 + length
    return out


def save(fig_or_ax, path, dpi: int = 150) -> str:
    """Save a figure (or an Axes' figure) as PNG at ``dpi`` (written atomically), close it, return the path."""
    fig = fig_or_ax.figure if hasattr(fig_or_ax, "figure") and not hasattr(fig_or_ax, "savefig") else fig_or_ax
    from .atomic import atomic_write

    fig.tight_layout()
    try:
        mark = {"Software": DRAWN_BY, "Figure": os.path.basename(path)}
        atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi, metadata=mark))
    finally:
        plt.close(fig)
    return str(path)


# ------------------------------------------------------------------------------------------- animation
def neuron_snapshot(net, x, y, layer: str, neurons, sample: int = 0) -> dict:
    """What a few neurons of one layer do on one sample, for :func:`training_animation`.

    Runs ``net.gradients(x, y)`` (no dropout, weights unchanged) and returns float64 arrays (T, k) for the
    ``k`` flat neuron indices ``neurons`` of layer ``layer``, sample ``sample``: ``u`` (membrane before reset),
    ``s`` (spikes), ``delta`` (``dL/dx``) and ``branch`` (int8 codes of :data:`reference.tsslbp.BRANCH_NAMES`).
    """
    net.gradients(x, y)
    rec = next((r for r in net.records if r.name == layer and r.state is not None), None)
    if rec is None:
        names = [r.name for r in net.records if r.state is not None]
        raise ValueError(f"no spiking layer {layer!r}; spiking layers: {names}")
    idx = np.asarray(neurons, dtype=np.int64)
    n_steps = rec.delta.shape[0]

    def pick(arr):
        return np.asarray(arr).reshape(n_steps, np.asarray(arr).shape[1], -1)[:, sample, idx]

    return {"u": pick(rec.state.u).astype(np.float64), "s": pick(rec.state.s).astype(np.float64),
            "delta": pick(rec.delta).astype(np.float64), "branch": pick(rec.branch).astype(np.int8),
            "neurons": idx.tolist(), "layer": layer}


def training_animation(snapshots, path, steps=None, threshold: float = 1.0, fps: float = 3, title=None) -> str:
    """An animated GIF of a few neurons over training: membrane (top row) and delta (bottom row) per neuron.

    Parameters
    ----------
    snapshots : sequence of dicts from :func:`neuron_snapshot` (one per frame, same layer and neurons)
    path : where to write the GIF (Matplotlib's Pillow writer: no ffmpeg needed)
    steps : the training step of each frame (default 0, 1, ...), shown in the title
    threshold : drawn as a dashed line on the membranes
    fps : frames per second

    Notes
    -----
    The axes keep the same limits in every frame (the range over all frames), so that growth shows; spikes
    are marked on the membrane, and each delta bar is coloured by the branch that produced it
    (:data:`BRANCH_COLORS`).  Returns ``path``.
    """
    from matplotlib.animation import FuncAnimation, PillowWriter

    from ..tsslbp import BRANCH_NAMES

    snaps = list(snapshots)
    if not snaps:
        raise ValueError("training_animation needs at least one snapshot")
    steps = list(range(len(snaps))) if steps is None else list(steps)
    if len(steps) != len(snaps):
        raise ValueError(f"{len(steps)} steps for {len(snaps)} snapshots")
    n_steps, k = snaps[0]["u"].shape
    t = np.arange(n_steps)
    u_all = np.stack([s["u"] for s in snaps])
    d_all = np.stack([s["delta"] for s in snaps])
    u_lim = (min(0.0, float(u_all.min())) - 0.1, max(threshold, float(u_all.max())) + 0.2)
    d_max = float(np.abs(d_all).max()) or 1.0
    fig, axes = plt.subplots(2, k, figsize=(2.6 * k + 0.6, 4.6), squeeze=False, sharex=True)
    colours = [BRANCH_COLORS[BRANCH_NAMES[c]] for c in sorted(BRANCH_NAMES)]

    def draw(i):
        snap = snaps[i]
        for j in range(k):
            top, bottom = axes[0, j], axes[1, j]
            top.clear()
            bottom.clear()
            top.plot(t, snap["u"][:, j], "o-", color="C0", ms=4, lw=1.2)
            fired = snap["s"][:, j] > 0
            top.plot(t[fired], snap["u"][fired, j], "^", color="k", ms=8, label="spike")
            top.axhline(threshold, color="k", ls="--", lw=0.8)
            top.set_ylim(*u_lim)
            top.set_title(f"{snap['layer']} neuron {snap['neurons'][j]}", fontsize=9)
            bottom.bar(t, snap["delta"][:, j], color=[colours[int(c)] for c in snap["branch"][:, j]])
            bottom.axhline(0, color="k", lw=0.5)
            bottom.set_ylim(-1.1 * d_max, 1.1 * d_max)
            bottom.set_xticks(t)
            bottom.set_xlabel("time step")
            if j == 0:
                top.set_ylabel("membrane u")
                bottom.set_ylabel(r"$\delta = \partial L/\partial x$")
        fig.suptitle(f"{title + ': ' if title else ''}training step {steps[i]}"
                     f"   (bars: grey warm-up, red inter, blue intra)", fontsize=10)
        return []

    draw(0)
    fig.tight_layout()
    anim = FuncAnimation(fig, draw, frames=len(snaps), blit=False)
    try:
        anim.save(str(path), writer=PillowWriter(fps=fps), dpi=80)
    finally:
        plt.close(fig)
    return str(path)


def plot_bptt(rows, path, title: str = "") -> str:
    """The rows of :func:`reference.twins.bptt.compare_bptt` in two panels: cosine of the deltas per layer x time step (heatmap), and the norms of the weight
    gradients per layer (bars).  Returns the path written."""
    from ..app.plots import plt  # the library's backend choice: Agg without a display, a notebook's own inside one

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
    return save(fig, path, dpi=120)
