"""Figure 4: ablation on the Fashion-MNIST 400-400 MLP: full TSSL-BP against its parts and against BPTT.

Same network, seed, data order and epoch budget; only the backward of the spiking layers changes:

- full TSSL-BP (the authors' final rule: inter + intra, warm-up per neuron);
- (a) no intra-neuron term (``--no-intra``);
- (b) warm-up surrogate everywhere, i.e. no inter-neuron timing term (``--warmup always``; their issue #2
  reports this trains CIFAR-10 about as well);
- (c) surrogate-gradient BPTT (``--backward bptt``: the same sigmoid surrogate at every neuron and step,
  unrolled through leak and reset; :mod:`reference.surrogate`).

Runs are cached under ``figures/runs/ablation-<variant>/``; ``--rerun`` retrains.
"""
from __future__ import annotations

import sys

from _common import PAPER, budget, cached_run, config_dict, save, style, write_csv

NAME = "fig4_ablation"
EPOCHS = 20  # the same budget as figure 3, so its T = 5 run and the full TSSL-BP run here coincide
VARIANTS = {
    "full TSSL-BP": {},
    "(a) no intra-neuron term": {"intra": False},
    "(b) warm-up surrogate only (no inter)": {"warmup": "always"},
    "(c) surrogate-gradient BPTT": {"backward": "bptt"},
}
SLUG = {"full TSSL-BP": "full", "(a) no intra-neuron term": "no-intra",
        "(b) warm-up surrogate only (no inter)": "warmup-only", "(c) surrogate-gradient BPTT": "bptt"}


def main(rerun: bool = False):
    plt = style()
    b = budget(EPOCHS)
    curves, rows = {}, []
    for label, options in VARIANTS.items():
        metrics = cached_run(f"ablation-{SLUG[label]}", config_dict("FashionMNIST_400_400"), epochs=b["epochs"],
                             net_options=options, train_limit=b["train_limit"], test_limit=b["test_limit"],
                             rerun=rerun)
        curves[label] = metrics
        test = [100 * float(r["test_acc"]) for r in metrics]
        for r in metrics:
            rows.append([label, int(r["epoch"]), 100 * float(r["train_acc"]), 100 * float(r["test_acc"]),
                         float(r["train_loss"])])
        print(f"{label}: best {max(test):.2f}%, last {test[-1]:.2f}% ({len(test)} epochs)")
    write_csv(NAME, ["variant", "epoch", "train_acc_percent", "test_acc_percent", "train_loss"], rows)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, (label, metrics) in enumerate(curves.items()):
        ep = [int(r["epoch"]) for r in metrics]
        ax.plot(ep, [100 * float(r["test_acc"]) for r in metrics], "o-" if len(ep) < 3 else "-", color=f"C{i}", label=label)
        ax2.plot(ep, [float(r["train_loss"]) for r in metrics], "o-" if len(ep) < 3 else "-", color=f"C{i}", label=label)
    ax.axhline(PAPER["Fashion-MNIST MLP"]["mean"], color="k", ls="--", lw=1,
               label=f"paper, 100 epochs: {PAPER['Fashion-MNIST MLP']['mean']:.2f}% (mean)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy [%]")
    ax.set_title("Fashion-MNIST 400-400: test accuracy")
    ax.legend(fontsize=7, loc="lower right")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("training loss per sample")
    ax2.set_yscale("log")
    ax2.set_title("training loss")
    ax2.legend(fontsize=7, loc="upper right")
    from matplotlib.ticker import MaxNLocator

    for a in (ax, ax2):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    save(fig, NAME)


if __name__ == "__main__":
    main(rerun="--rerun" in sys.argv)
