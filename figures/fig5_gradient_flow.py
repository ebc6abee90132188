"""Figure 5: gradient flow during training: per-layer gradient norms and TSSL-BP's branch fractions.

The Fashion-MNIST 400-400 MLP is trained (seed 3, the authors' loop: AdamW, gradient-norm clipping to 1,
weight clipping) and every ``EVERY`` mini-batches we record, per layer, the weight-gradient norm before
clipping and the fraction of neuron-steps whose delta came from each branch of TSSL-BP: warm-up
(surrogate, the neuron was quiet), inter (it fired: spike timing) and intra (silent, but a later spike's
error is carried back through leak and reset).  The recording is cached in ``data/fig5_gradient_flow.csv``.
"""
from __future__ import annotations

import os
import sys

import numpy as np

from _common import budget, out_dir, read_csv, save, style, write_csv

NAME = "fig5_gradient_flow"
EPOCHS = 5
EVERY = 50  # mini-batches between records (600 per epoch at batch 100)


def record(epochs, train_limit, test_limit, seed=3):
    """Train and record; returns rows [step, epoch, layer, grad_norm, warm-up, inter, intra, test_acc]."""
    from reference.app.data import iterate_minibatches
    from reference.network import Network
    from reference.optim import AdamW, clip_grad_norm, clip_weights
    from reference.app.train import evaluate, load_split
    from reference.tsslbp import branch_fractions
    from _common import config_dict
    from reference.config import load_config

    cfg = load_config(config_dict("FashionMNIST_400_400"))
    train = load_split("FashionMNIST", "train", train_limit, verbose=False)
    test = load_split("FashionMNIST", "test", test_limit, verbose=False)
    net = Network(cfg, seed=seed)
    opt = AdamW(net.weights, lr=cfg.network["lr"])
    bs = cfg.network["batch_size"] if train_limit is None else 50
    every = EVERY if train_limit is None else 1
    rows, step = [], 0
    for epoch in range(epochs):
        for idx in iterate_minibatches(len(train.labels), bs, np.random.default_rng([seed, epoch])):
            loss, grads, _ = net.gradients(train.images[idx], train.labels[idx], train=True)
            if step % every == 0:
                for rec in net.records:
                    if rec.branch is not None:
                        fr = branch_fractions(rec.branch)
                        rows.append([step, epoch + 1, rec.name, float(np.linalg.norm(grads[rec.name])),
                                     fr["warm-up"], fr["inter (fired)"], fr["intra (silent)"], ""])
            clip_grad_norm(grads)
            opt.step(grads)
            clip_weights(net.weights)
            step += 1
        acc = evaluate(net, test)[1]
        rows.append([step, epoch + 1, "test", "", "", "", "", 100 * acc])
        print(f"epoch {epoch + 1}: test accuracy {100 * acc:.2f}%", flush=True)
    return rows


def main(rerun: bool = False):
    plt = style()
    b = budget(EPOCHS)
    header = ["step", "epoch", "layer", "grad_norm", "warmup_fraction", "inter_fraction", "intra_fraction",
              "test_acc_percent"]
    cache = os.path.join(out_dir(), "data", f"{NAME}.csv")
    if rerun or not os.path.exists(cache):
        write_csv(NAME, header, record(b["epochs"], b["train_limit"], b["test_limit"]))
    rows = read_csv(cache)
    layers = list(dict.fromkeys(r["layer"] for r in rows if r["layer"] != "test"))
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for i, name in enumerate(layers):
        rs = [r for r in rows if r["layer"] == name]
        step = [int(r["step"]) for r in rs]
        axes[0].plot(step, [float(r["grad_norm"]) for r in rs], color=f"C{i}", label=name, lw=1)
        axes[1].plot(step, [float(r["warmup_fraction"]) for r in rs], color=f"C{i}", label=f"{name}: warm-up")
        axes[1].plot(step, [float(r["inter_fraction"]) for r in rs], color=f"C{i}", ls="--", label=f"{name}: inter")
        axes[2].plot(step, [float(r["intra_fraction"]) for r in rs], color=f"C{i}", label=name)
    ends = [int(r["step"]) for r in rows if r["layer"] == "test"]
    for ax in axes:
        for e in ends[:-1]:
            ax.axvline(e, color="k", lw=0.5, alpha=0.3)
        ax.set_xlabel("training step (mini-batch)")
    axes[0].set_yscale("log")
    axes[0].set_ylabel(r"$\|\partial L/\partial W\|$ before clipping")
    axes[0].set_title("weight-gradient norm per layer")
    axes[0].legend(fontsize=7)
    axes[1].set_ylabel("fraction of neuron-steps")
    axes[1].set_title("warm-up (solid) and inter-neuron (dashed) deltas")
    axes[1].legend(fontsize=6, ncol=2)
    axes[2].set_ylabel("fraction of neuron-steps")
    axes[2].set_title("intra-neuron deltas (silent, carried term)")
    axes[2].legend(fontsize=7, loc="lower right")
    fig.suptitle("Gradient flow while training the Fashion-MNIST 400-400 MLP (epoch boundaries: thin lines)", y=1.02)
    fig.tight_layout()
    save(fig, NAME)


if __name__ == "__main__":
    main(rerun="--rerun" in sys.argv)
