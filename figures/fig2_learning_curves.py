"""Figure 2: learning curves of the training runs under ``results/``, with the paper's accuracy.

For each run (``results/<run>/metrics.csv``, written by ``python -m reference train``): train and test
accuracy per epoch (left) and the training loss per epoch (right); the paper's mean accuracy (its tables,
labelled) and the authors' final code's best accuracy (paper-notes section 4, labelled) as reference lines.
Nothing is trained here: the runs are the committed evidence of the reproduction issue.
"""
from __future__ import annotations

import os

from _common import AUTHORS_CODE, PAPER, ROOT, fast, read_csv, save, style, write_csv

NAME = "fig2_learning_curves"
RUNS = {"fmnist_mlp_400_400": "Fashion-MNIST MLP", "mnist_cnn": "MNIST CNN", "fmnist_cnn": "Fashion-MNIST CNN"}


def load_runs():
    """{label: metrics rows} for the runs that exist under results/ (tests/data fixture runs in fast mode)."""
    runs = {}
    for folder, label in RUNS.items():
        path = os.path.join(ROOT, "results", folder, "metrics.csv")
        if os.path.exists(path):
            rows = read_csv(path)
            if rows:
                runs[label] = rows
    return runs


def main():
    plt = style()
    from matplotlib.ticker import MaxNLocator

    runs = load_runs()
    if not runs:
        raise SystemExit("no results/<run>/metrics.csv found: train a run first (see results/README.md)")
    table = []
    fig, axes = plt.subplots(len(runs), 2, figsize=(10, 3.9 * len(runs)), squeeze=False)
    for (label, rows), (ax_acc, ax_loss) in zip(runs.items(), axes):
        ep = [int(r["epoch"]) for r in rows]
        tr = [100 * float(r["train_acc"]) for r in rows]
        te = [100 * float(r["test_acc"]) for r in rows]
        loss = [float(r["train_loss"]) for r in rows]
        best = max(range(len(te)), key=te.__getitem__)
        for r, a, b, c in zip(ep, tr, te, loss):
            table.append([label, r, a, b, c])
        ax_acc.plot(ep, tr, label="train (ours)", color="C0", lw=1.2)
        ax_acc.plot(ep, te, label="test (ours)", color="C1", lw=1.5)
        ax_acc.plot(ep[best], te[best], "*", color="C1", ms=10, label=f"best test {te[best]:.2f}% (epoch {ep[best]})")
        ax_acc.axhline(PAPER[label]["mean"], color="k", ls="--", lw=1,
                       label=f"paper, mean of runs: {PAPER[label]['mean']:.2f}%")
        if label in AUTHORS_CODE:
            ax_acc.axhline(AUTHORS_CODE[label]["best"], color="C2", ls=":", lw=1.2,
                           label=f"authors' final code, best: {AUTHORS_CODE[label]['best']:.2f}%")
        lo = min(min(te), PAPER[label]["mean"]) - 1.0
        ax_acc.set_ylim(lo, 100 if "MNIST CNN" == label else max(max(tr), PAPER[label]["mean"]) + 1.0)
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel("accuracy [%]")
        ax_acc.set_title(f"{label}: accuracy ({len(ep)} of {PAPER[label]['epochs']} epochs run)")
        below = [i for i, v in enumerate(tr) if v < lo]
        if below:  # the first epochs' train accuracy lies below the axis, which is scaled to the test curve
            text = (f"train accuracy {tr[0]:.1f}% at epoch {ep[0]}, below the axis" if len(below) == 1 else
                    f"train accuracy below the axis for epochs {ep[below[0]]}-{ep[below[-1]]} ({tr[0]:.1f}% at epoch {ep[0]})")
            ax_acc.annotate(text, (ep[0], lo), xytext=(0.2, 0.04), textcoords="axes fraction", fontsize=7, color="C0")
        ax_acc.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)
        ax_loss.plot(ep, loss, color="C3")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("training loss per sample")
        ax_loss.set_yscale("log")
        ax_loss.set_title(f"{label}: training loss (kernel loss, authors' target)")
        for ax in (ax_acc, ax_loss):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    write_csv(NAME, ["run", "epoch", "train_acc_percent", "test_acc_percent", "train_loss"], table)
    save(fig, NAME)
    if fast():
        print(f"{NAME}: drew {len(runs)} runs")


if __name__ == "__main__":
    main()
