"""Figure 8: why the MNIST CNN's training loss rises after epoch 60 while its accuracy stays at 99.9%.

Reads the per-epoch diagnostics of the MNIST CNN runs (``results/<run>/diagnostics.csv``, written by
``train --diagnostics 1000`` or ``python -m reference diagnose``: :mod:`reference.app.diagnostics`) and their
``metrics.csv``, and draws, per epoch:

- (a) the training loss and its label-neuron part, with the *floor* of the authors' target: the kernel
  loss's target is filtered twice, so it is the PSP of no spike train, and the label neuron's loss can
  never go below that of the nearest train (00101 at T = 5, tau_s = 3: 0.0277 per sample);
- (b) which spike trains the label neuron fires (share of the 1,000 training samples), each with its loss;
- (c) the weights' Frobenius norms per layer;
- (d) each spiking layer's firing rate and the share of its neuron-steps that TSSL-BP, not the warm-up,
  handled (1 - the warm-up share).

Nothing is trained here. The data behind the figure: ``figures/data/fig8_loss_rise.csv``.
"""
from __future__ import annotations

import os

from _common import ROOT, fast, read_csv, save, style, write_csv

NAME = "fig8_loss_rise"
RUN = os.path.join("reruns", "mnist_cnn_seed3")  # results/mnist_cnn run again with --diagnostics 1000
ORIGINAL = "mnist_cnn"


def _float(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def main():
    plt = style()
    folder = os.path.join(ROOT, "results", RUN)
    path = os.path.join(folder, "diagnostics.csv")
    if not os.path.isfile(path):
        raise SystemExit(f"{path} not found: record it with `python -m reference train ... --diagnostics 1000` "
                         f"(results/README.md)")
    diag = read_csv(path)
    metrics = {int(r["epoch"]): r for r in read_csv(os.path.join(folder, "metrics.csv"))}
    original = {int(r["epoch"]): r for r in read_csv(os.path.join(ROOT, "results", ORIGINAL, "metrics.csv"))}
    same = [e for e in metrics if all(metrics[e][k] == original[e][k] for k in ("train_loss", "train_acc", "test_acc"))]
    print(f"{NAME}: epochs 1-{max(metrics)} of the run; the November run of the same seed with older code "
          f"(results/{ORIGINAL}/metrics.csv) has the same loss and accuracies "
          f"in {len(same)} of {len(metrics)} epochs")
    epochs = [int(r["epoch"]) for r in diag]
    from reference.app.diagnostics import train_loss
    from reference.losses import kernel_target

    target = kernel_target(5, 3, "double")  # the config's T = 5, tau_s = 3

    shares: dict[str, list[float]] = {}
    for i, r in enumerate(diag):
        for item in r["label_trains"].split():
            train, share = item.split(":")
            shares.setdefault(train, [0.0] * len(diag))[i] = float(share)
    top = sorted(shares, key=lambda t: -max(shares[t]))[:6]

    fig, axes = plt.subplots(2, 2, figsize=(12, 8.3))
    ax = axes[0, 0]
    ax.plot(list(metrics), [_float(m["train_loss"]) for m in metrics.values()], color="C0", lw=1.3,
            label="training loss (metrics.csv, all training samples)")
    ax.plot(epochs, [_float(r["loss_label"]) for r in diag], color="C1", lw=1.3,
            label="its label-neuron part (1,000 training samples)")
    floor = _float(diag[0]["label_floor"])
    ax.axhline(floor, color="k", ls="--", lw=1, label=f"floor: the nearest spike train 00101 ({floor:.4f})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss per sample")
    ax.set_title("(a) training loss and the floor of the double-filtered target")
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    for i, train in enumerate(top):
        ax.plot(epochs, [100 * s for s in shares[train]], color=f"C{i}", lw=1.3,
                label=f"{train} (loss {train_loss(train, target, 3):.4f})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("share of samples [%]")
    ax.set_title("(b) the label neuron's spike train")
    ax.set_ylim(top=ax.get_ylim()[1] * 1.3)  # room above the curves for the legend
    ax.legend(fontsize=7, ncol=3, loc="upper center")

    layers = [k.split("/", 1)[1] for k in diag[0] if k.startswith("norm/")]
    ax = axes[1, 0]
    for i, name in enumerate(layers):
        ax.plot(epochs, [_float(r[f"norm/{name}"]) for r in diag], color=f"C{i}", lw=1.3, label=name)
    ax.set_yscale("log")
    from matplotlib.ticker import LogLocator, ScalarFormatter
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 3.0, 5.0, 7.0)))  # readable norms, not 10 alone
    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(plt.NullFormatter())
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    ax.yaxis.set_major_formatter(ScalarFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("epoch")
    ax.set_ylabel("weight norm (Frobenius)")
    ax.set_title("(c) weight norms")
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    for i, name in enumerate(layers):
        ax.plot(epochs, [100 * _float(r[f"rate/{name}"]) for r in diag], color=f"C{i}", lw=1.3, label=f"{name}: firing rate")
        ax.plot(epochs, [100 * (1 - _float(r[f"warmup/{name}"])) for r in diag], color=f"C{i}", lw=1, ls=":",
                label=f"{name}: TSSL-BP share (1 - warm-up)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("% of neuron-steps")
    ax.set_title("(d) firing rate and the neuron-steps TSSL-BP (not warm-up) handled")
    ax.legend(fontsize=6.5, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.13), frameon=False)
    fig.suptitle(f"MNIST CNN, final rule, seed 3 with today's code (results/{RUN}): diagnostics per epoch "
                 f"on 1,000 training digits", fontsize=11)
    fig.tight_layout()

    header = ["epoch", "train_loss", "loss_label", "label_floor"] + [f"share_{t}" for t in top] + \
             [f"norm/{n}" for n in layers] + [f"rate/{n}" for n in layers] + [f"warmup/{n}" for n in layers]
    rows = [[e, metrics.get(e, {}).get("train_loss", ""), r["loss_label"], r["label_floor"]]
            + [round(shares[t][i], 4) for t in top] + [r[f"norm/{n}"] for n in layers]
            + [r[f"rate/{n}"] for n in layers] + [r[f"warmup/{n}"] for n in layers]
            for i, (e, r) in enumerate(zip(epochs, diag))]
    write_csv(NAME, header, rows)
    save(fig, NAME)
    if fast():
        print(f"{NAME}: drew {len(diag)} epochs")


if __name__ == "__main__":
    main()
