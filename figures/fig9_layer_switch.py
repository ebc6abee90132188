"""Figure 9: the paper-era rule's layer-wise warm-up switch, as the CNN runs met it.

The rule of the camera-ready (``--variant paper2020``) sends a whole layer to the warm-up surrogate when
its firing rate over the batch is at most 0.1 (``--rate-threshold``, docs/paper-notes.md section 7).
Reads the per-epoch diagnostics (``results/<run>/diagnostics.csv``, 1,000 training images after every
epoch, ``train --diagnostics 1000``) and ``metrics.csv`` of the paper-era CNN runs, and draws:

- (a) the firing rate of every spiking layer of the Fashion-MNIST CNN per epoch, at the switch's 0.1 and,
  where their runs exist, at the lowered thresholds 0.05 and 0.01, with the thresholds as lines;
- (b) which branch each of those layers took, epoch by epoch (the share of its neuron-steps on warm-up);
- (c) the output layer's rate in every paper-era kernel-loss CNN run, against the rate of a 10-class output layer
  that does its job: only the label neuron fires, its desired train ``[0, 1, 0, 1, 1]``, so
  3 / (10 x 5) = 0.06, under 0.1;
- (d) the Fashion-MNIST CNN's test accuracy per epoch for these runs and the final rule's, with the paper's.

Nothing is trained here. The data behind the figure: ``figures/data/fig9_layer_switch.csv``.
"""
from __future__ import annotations

import os

from _common import PAPER, ROOT, as_float, branch_strips, read_csv, save, style, write_csv

NAME = "fig9_layer_switch"
#: The Fashion-MNIST CNN runs on the paper-era rule: folder -> the switch's threshold.
FMNIST = {"fmnist_cnn_paper2020_kernel": 0.1, "fmnist_cnn_paper2020_kernel_rate005": 0.05,
          "fmnist_cnn_paper2020_kernel_rate001": 0.01}
FINAL = "fmnist_cnn"
#: Every paper-era CNN run with diagnostics, for panel (c): folder -> label.
OUTPUTS = {"mnist_cnn_paper2020": "MNIST CNN, seed 3", "mnist_cnn_paper2020_seed4": "MNIST CNN, seed 4",
           "mnist_cnn_paper2020_seed5": "MNIST CNN, seed 5",
           "fmnist_cnn_paper2020_kernel": "Fashion-MNIST CNN, switch 0.1",
           "fmnist_cnn_paper2020_kernel_rate005": "Fashion-MNIST CNN, switch 0.05",
           "fmnist_cnn_paper2020_kernel_rate001": "Fashion-MNIST CNN, switch 0.01"}


def _read(folder: str, name: str) -> list[dict]:
    path = os.path.join(ROOT, "results", folder, name)
    return read_csv(path) if os.path.isfile(path) else []


def main():
    import numpy as np

    from reference.paper2020 import desired_train_2020

    plt = style()
    diag = {run: _read(run, "diagnostics.csv") for run in OUTPUTS}
    if not diag["fmnist_cnn_paper2020_kernel"]:
        raise SystemExit("results/fmnist_cnn_paper2020_kernel/diagnostics.csv not found: record it with "
                         "`python -m reference train ... --diagnostics 1000` (results/README.md)")
    fm = {run: diag[run] for run in FMNIST if diag[run]}
    layers = [k.split("/", 1)[1] for k in diag["fmnist_cnn_paper2020_kernel"][0] if k.startswith("rate/")]
    ceiling = desired_train_2020(5).sum() / (10 * 5)

    fig, axes = plt.subplots(2, 2, figsize=(12, 7.8))
    ax = axes[0, 0]
    styles = ["-", "-.", "--"]
    for (run, rows), ls in zip(fm.items(), styles):
        epochs = [int(r["epoch"]) for r in rows]
        for i, name in enumerate(layers):
            ax.plot(epochs, [100 * as_float(r[f"rate/{name}"]) for r in rows], color=f"C{i}", ls=ls, lw=1.3,
                    label=f"{name}, switch {FMNIST[run]:g}")
    for thr, text in ((0.1, "0.1 (camera-ready)"), (0.05, "0.05 (their code, Dec 2020)"), (0.01, "0.01")):
        ax.axhline(100 * thr, color="k", lw=0.8, ls=":")
        below = thr == 0.05  # under its line: the output layer's 6% runs just above it
        ax.annotate(text, (100, 100 * thr), xytext=(-2, -9 if below else 2), textcoords="offset points",
                    fontsize=7, ha="right")
    ax.set_yscale("log")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks([1, 2, 5, 10, 20, 50, 100])
    ax.set_ylim(0.8, 400)  # room above the rates for the legend
    ax.set_xlabel("epoch")
    ax.set_ylabel("firing rate [% of neuron-steps]")
    ax.set_title("(a) Fashion-MNIST CNN, paper-era rule: each layer's firing rate")
    ax.legend(fontsize=6, ncol=2)
    short = max(len(rows) for run, rows in fm.items() if FMNIST[run] != 0.1)  # the stopped runs' epochs
    zoom = ax.inset_axes([0.19, 0.5, 0.26, 0.42])  # over empty space: the rates after epoch 15 lie below 20%
    for (run, rows), ls in zip(fm.items(), styles):
        rows = [r for r in rows if int(r["epoch"]) <= short]
        for i, name in enumerate(layers):
            zoom.plot([int(r["epoch"]) for r in rows], [100 * as_float(r[f"rate/{name}"]) for r in rows],
                      color=f"C{i}", ls=ls, lw=1.1)
    for thr in (0.1, 0.05, 0.01):
        zoom.axhline(100 * thr, color="k", lw=0.6, ls=":")
    zoom.set_yscale("log")
    zoom.yaxis.set_major_formatter(ScalarFormatter())
    zoom.yaxis.set_minor_formatter(NullFormatter())
    zoom.set_yticks([1, 5, 10, 50])
    zoom.set_ylim(0.8, 120)
    zoom.tick_params(labelsize=6)
    zoom.set_title(f"epochs 1-{short}", fontsize=7)

    ax = axes[0, 1]
    branch_strips(fig, ax, {f"switch {FMNIST[run]:g}": rows for run, rows in fm.items()}, layers)
    ax.set_title("(b) the branch each layer took (blue TSSL-BP, red warm-up; blank: no such epoch)")

    ax = axes[1, 0]
    for i, (run, label) in enumerate(OUTPUTS.items()):
        rows = diag[run]
        if rows:
            ax.plot([int(r["epoch"]) for r in rows], [100 * as_float(r["rate/output"]) for r in rows],
                    color=f"C{i}", lw=4 if i == 0 else 1.2, alpha=0.45 if i == 0 else 1, zorder=1 if i == 0 else 2,
                    label=label + (" (wide: others lie on it)" if i == 0 else ""))
    ax.axhline(100 * ceiling, color="k", ls="--", lw=1,
               label=f"label neuron fires 01011, the others never: {100 * ceiling:g}%")
    ax.axhline(10, color="k", ls=":", lw=0.8, label="the switch's 10% (camera-ready)")
    ax.set_ylim(1.5, 11)
    ax.set_xlabel("epoch")
    ax.set_ylabel("output layer's firing rate [%]")
    ax.set_title("(c) a trained 10-class output layer stays under the 0.1 switch")
    ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, 0.87), ncol=2)
    zoom = ax.inset_axes([0.3, 0.06, 0.4, 0.3])  # under the curves, which lie at 5-6% after epoch 13
    for i, (run, label) in enumerate(OUTPUTS.items()):
        rows = [r for r in diag[run] if int(r["epoch"]) <= short]
        if rows:
            zoom.plot([int(r["epoch"]) for r in rows], [100 * as_float(r["rate/output"]) for r in rows],
                      color=f"C{i}", lw=3 if i == 0 else 1.1, alpha=0.45 if i == 0 else 1, zorder=1 if i == 0 else 2)
    zoom.axhline(100 * ceiling, color="k", ls="--", lw=0.8)
    zoom.set_ylim(1.5, 7)
    zoom.tick_params(labelsize=6)
    zoom.set_title(f"epochs 1-{short}", fontsize=7)

    ax = axes[1, 1]
    curves = {"final rule": _read(FINAL, "metrics.csv")}
    curves.update({f"paper-era rule, switch {thr:g}": _read(run, "metrics.csv") for run, thr in FMNIST.items()})
    low = 84  # the 0.05 run falls to 86%; the 0.01 run (55%) is marked as off the axis
    for i, (label, rows) in enumerate(curves.items()):
        if rows:
            best = 100 * max(as_float(r["test_acc"]) for r in rows)
            ax.plot([int(r["epoch"]) for r in rows], [100 * as_float(r["test_acc"]) for r in rows], color=f"C{i}",
                    lw=1.2, marker="o" if len(rows) < 10 else None, ms=3,
                    label=f"{label}: best {best:.2f}%" + (f" ({len(rows)} epoch{'s' * (len(rows) > 1)}, off the axis)" if best < low else ""))
    paper = PAPER["Fashion-MNIST CNN"]
    ax.axhline(paper["mean"], color="k", ls="--", lw=1, label=f"paper, mean ({paper['mean']}%)")
    ax.axhline(paper["best"], color="k", ls=":", lw=1, label=f"paper, best ({paper['best']}%)")
    ax.set_ylim(low, 93.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy [%]")
    ax.set_title("(d) Fashion-MNIST CNN, seed 3: test accuracy")
    ax.legend(fontsize=7, loc="lower right")
    fig.suptitle("The paper-era rule's layer-wise warm-up switch (diagnostics on 1,000 training images per epoch)",
                 fontsize=11)
    fig.tight_layout()

    header = ["run", "epoch", "test_acc"] + [f"rate/{n}" for n in layers] + [f"warmup/{n}" for n in layers]
    rows = []
    for run, drows in diag.items():
        acc = {int(r["epoch"]): r["test_acc"] for r in _read(run, "metrics.csv")}
        for r in drows:
            rows.append([run, r["epoch"], acc.get(int(r["epoch"]), "")]
                        + [r.get(f"rate/{n}", "") for n in layers] + [r.get(f"warmup/{n}", "") for n in layers])
    write_csv(NAME, header, rows)
    save(fig, NAME)


if __name__ == "__main__":
    main()
