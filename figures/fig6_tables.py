"""Figure 6 / table: accuracy for every dataset of the paper, ours beside the paper's mean and best.

Our numbers are read from the committed runs (``results/<run>/metrics.csv``): best test accuracy over the
epochs run (the paper's protocol) and last epoch. Datasets without a run say why and give the command and
config that would run them. Writes a PNG of the table, its CSV and a Markdown copy.
"""
from __future__ import annotations

import os
import textwrap

from _common import AUTHORS_CODE, PAPER, ROOT, out_dir, read_csv, save, style, write_csv

NAME = "fig6_tables"
ROWS = [  # (row label, paper row, results folder, config)
    ("MNIST CNN", "MNIST CNN", "mnist_cnn", "MNIST_CNN"),
    ("N-MNIST CNN", "N-MNIST CNN", None, "NMNIST_CNN"),
    ("Fashion-MNIST MLP", "Fashion-MNIST MLP", "fmnist_mlp_400_400", "FashionMNIST_400_400"),
    ("Fashion-MNIST MLP, paper's single-filtered target", "Fashion-MNIST MLP", "fmnist_mlp_400_400_single",
     "FashionMNIST_400_400"),
    ("Fashion-MNIST CNN", "Fashion-MNIST CNN", "fmnist_cnn", "FashionMNIST_CNN"),
    ("CIFAR10 CNN", "CIFAR10 CNN", None, "CIFAR10"),
]
#: Training-set sizes (dataset facts) for the time estimates.
TRAIN_SIZE = {"MNIST": 60000, "FashionMNIST": 60000, "NMNIST_Spiking": 60000, "CIFAR10": 50000}


def macs_per_sample(cfg) -> int:
    """Multiply-adds of the weighted layers for one sample over all time steps (forward pass)."""
    total = 0
    for _, c in cfg.layers:
        if c["type"] == "linear":
            total += c["n_inputs"] * c["n_outputs"]
        elif c["type"] == "conv":
            out_c, oh, ow = c["out_shape"]
            total += out_c * oh * ow * c["in_channels"] * c["kernel_size"][0] * c["kernel_size"][1]
    return total * cfg.params.n_steps


def estimate(config_name, paper_epochs):
    """Why a run is not here: its compute relative to the MNIST CNN, and the time that would take on this
    machine, scaled from the MNIST CNN run's measured seconds per epoch."""
    from reference.config import load_config

    cfg = load_config(os.path.join(ROOT, "configs", f"{config_name}.yaml"))
    ref = load_config(os.path.join(ROOT, "configs", "MNIST_CNN.yaml"))
    ratio = macs_per_sample(cfg) / macs_per_sample(ref)
    path = os.path.join(ROOT, "results", "mnist_cnn", "metrics.csv")
    secs = [float(r["seconds"]) for r in read_csv(path)] if os.path.exists(path) else []
    text = f"{ratio:.0f}x the MNIST CNN's multiply-adds per sample"
    if secs:
        hours = ratio * sorted(secs)[len(secs) // 2] * paper_epochs * TRAIN_SIZE[cfg.network["dataset"]] / 60000 / 3600
        text += f", ~{hours:.0f} h for {paper_epochs} epochs on this machine"
    return text


def collect():
    rows = []
    for label, key, folder, config in ROWS:
        paper = PAPER[key]
        authors = AUTHORS_CODE.get(key) if label == key else None
        theirs = f"{authors['best']:.2f} ({authors['epochs']} ep.)" if authors else ""
        path = os.path.join(ROOT, "results", folder, "metrics.csv") if folder else ""
        if folder and os.path.exists(path) and read_csv(path):
            m = read_csv(path)
            test = [100 * float(r["test_acc"]) for r in m]
            best = max(range(len(test)), key=test.__getitem__)
            status = "complete" if len(m) >= paper["epochs"] else f"in progress ({len(m)} of {paper['epochs']} epochs)"
            rows.append([label, paper["mean"], paper["best"], theirs, f"{test[best]:.2f}", best + 1,
                         f"{test[-1]:.2f}", len(m), status, ""])
        else:
            cmd = f"python -m reference train --config configs/{config}.yaml --seed 3 --out results/<run>"
            rows.append([label, paper["mean"], paper["best"], theirs, "", "", "", 0,
                         f"not run yet: {estimate(config, paper['epochs'])}", cmd])
    return rows


def main():
    plt = style()
    rows = collect()
    header = ["dataset / network", "paper mean %", "paper best %", "authors' final code best %", "ours best %",
              "best epoch", "ours last %", "epochs run", "status", "command"]
    write_csv(NAME, header, rows)
    md = ["| " + " | ".join(header[:-1]) + " |", "|" + " --- |" * (len(header) - 1)]
    md += ["| " + " | ".join(f"{c:.2f}" if isinstance(c, float) else str(c) for c in r[:-1]) + " |" for r in rows]
    md.append("")
    md += [f"- {r[0]}: `{r[9]}`" for r in rows if r[9]]
    with open(os.path.join(out_dir(), "data", f"{NAME}.md"), "w", encoding="utf-8") as fh:
        fh.write("Paper values: Zhang & Li 2020 (mean and best over runs of the best epoch). Authors' final code: "
                 "run unchanged on a GPU, seed 3 (paper-notes section 4).\n\n" + "\n".join(md) + "\n")

    def wrap(text, width):
        return "\n".join(textwrap.wrap(text, width)) or "-"

    cells = [[wrap(r[0], 26), f"{r[1]:.2f}", f"{r[2]:.2f}", wrap(r[3], 10), r[4] or "-", str(r[5] or "-"),
              r[6] or "-", str(r[7]), wrap(r[8], 58)] for r in rows]
    fig, ax = plt.subplots(figsize=(13, 0.62 * len(rows) + 1.4))
    ax.axis("off")
    t = ax.table(cellText=cells, colLabels=["dataset / network", "paper\nmean", "paper\nbest", "authors'\ncode best",
                                            "ours\nbest", "best\nepoch", "ours\nlast", "epochs\nrun", "status"],
                 loc="center", cellLoc="left", colWidths=[0.19, 0.06, 0.06, 0.09, 0.06, 0.05, 0.06, 0.06, 0.37])
    t.auto_set_font_size(False)
    t.set_fontsize(8)
    t.scale(1, 2.6)
    ax.set_title("Test accuracy [%]: the paper's and the authors' final code's values (labelled) beside this "
                 "project's runs on 2 CPU cores", fontsize=10)
    save(fig, NAME)
    for r in rows:
        print(f"{r[0]:50s} paper {r[1]:.2f}/{r[2]:.2f}  ours best {r[4] or '-':>6s}  last {r[6] or '-':>6s}  {r[8]}")


if __name__ == "__main__":
    main()
