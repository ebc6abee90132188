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
ROWS = [  # (row label, rule, paper row, a results folder of the row's group of seeds, config)
    ("MNIST CNN", "final", "MNIST CNN", "mnist_cnn", "MNIST_CNN"),
    ("MNIST CNN", "paper-era", "MNIST CNN", "mnist_cnn_paper2020", "paper2020/MNIST_CNN"),
    ("N-MNIST CNN", "final", "N-MNIST CNN", None, "NMNIST_CNN"),
    ("Fashion-MNIST MLP", "final", "Fashion-MNIST MLP", "fmnist_mlp_400_400", "FashionMNIST_400_400"),
    ("Fashion-MNIST MLP", "final, paper's single-filtered target", "Fashion-MNIST MLP",
     "fmnist_mlp_400_400_single", "FashionMNIST_400_400"),
    ("Fashion-MNIST MLP", "paper-era", "Fashion-MNIST MLP", "fmnist_mlp_400_400_paper2020_seed3",
     "paper2020/FashionMNIST_400_400"),
    ("Fashion-MNIST CNN", "final", "Fashion-MNIST CNN", "fmnist_cnn", "FashionMNIST_CNN"),
    ("Fashion-MNIST CNN", "paper-era, kernel loss", "Fashion-MNIST CNN", "fmnist_cnn_paper2020_kernel",
     "paper2020/FashionMNIST_CNN"),
    ("CIFAR10 CNN", "final", "CIFAR10 CNN", None, "CIFAR10"),
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
    """One row per ROWS entry: the paper's numbers and ours over the row's group of seeds (the runs that
    differ from the named folder only in their seed: ``python -m reference summarize``'s groups,
    :func:`reference.app.summary.groups_of`)."""
    import statistics

    from reference.app.summary import groups_of, read_runs

    runs = read_runs(os.path.join(ROOT, "results"))
    group_of = {r.folder: members for members in groups_of(runs).values() for r in members}  # summarize's groups
    rows = []
    for label, rule, key, folder, config in ROWS:
        paper = PAPER[key]
        authors = AUTHORS_CODE.get(key) if rule == "final" and folder == ROWS_FINAL.get(key, folder) else None
        theirs = f"{authors['best']:.2f} ({authors['epochs']} ep.)" if authors else ""
        if folder in group_of:
            group = group_of[folder]
            bests, lasts = [100 * r.best for r in group], [100 * r.last for r in group]
            std = f"{statistics.stdev(bests):.2f}" if len(bests) > 1 else ""
            epochs = sorted({r.epochs for r in group})
            done = all(r.epochs >= paper["epochs"] for r in group)
            status = "complete" if done else f"stopped at {', '.join(map(str, epochs))} of {paper['epochs']} epochs"
            seeds = " ".join(str(r.seed) for r in group)
            rows.append([label, rule, paper["mean"], paper["best"], theirs, seeds, f"{statistics.mean(bests):.2f}",
                         std, f"{max(bests):.2f}", f"{statistics.mean(lasts):.2f}",
                         " ".join(map(str, epochs)), status, ""])
        else:
            cmd = f"python -m reference train --config configs/{config}.yaml --seed 3 --out results/<run>"
            rows.append([label, rule, paper["mean"], paper["best"], theirs, "", "", "", "", "", "", 
                         f"not run: {estimate(config, paper['epochs'])}", cmd])
    return rows


#: The row that carries the authors' final code's own result (their code, run unchanged).
ROWS_FINAL = {"MNIST CNN": "mnist_cnn", "Fashion-MNIST MLP": "fmnist_mlp_400_400"}


def main():
    plt = style()
    rows = collect()
    header = ["dataset / network", "rule", "paper mean %", "paper best %", "authors' final code best %", "seeds",
              "ours best: mean %", "ours best: std", "ours best of seeds %", "ours last: mean %", "epochs",
              "status", "command"]
    write_csv(NAME, header, rows)
    md = ["| " + " | ".join(header[:-1]) + " |", "|" + " --- |" * (len(header) - 1)]
    md += ["| " + " | ".join(f"{c:.2f}" if isinstance(c, float) else str(c) for c in r[:-1]) + " |" for r in rows]
    md.append("")
    md += [f"- {r[0]}: `{r[-1]}`" for r in rows if r[-1]]
    with open(os.path.join(out_dir(), "data", f"{NAME}.md"), "w", encoding="utf-8") as fh:
        fh.write("Paper values: Zhang & Li 2020 (mean and best over runs of the best epoch). Authors' final code: "
                 "run unchanged on a GPU, seed 3 (paper-notes section 4). Ours: the best epoch of each seed, "
                 "its mean and sample std over the seeds, the best seed, and the last epoch's mean.\n\n"
                 + "\n".join(md) + "\n")

    def wrap(text, width):
        return "\n".join(textwrap.wrap(text, width)) or "-"

    def ours(r):
        if not r[6]:
            return "-"
        return f"{r[6]} ± {r[7]}" if r[7] else r[6]

    cells = [[wrap(r[0], 20), wrap(r[1], 17), f"{r[2]:.2f}", f"{r[3]:.2f}", wrap(r[4], 10), wrap(r[5], 10) or "-",
              ours(r), r[8] or "-", r[9] or "-", wrap(r[11], 40)] for r in rows]
    fig, ax = plt.subplots(figsize=(14, 0.62 * len(rows) + 1.4))
    ax.axis("off")
    t = ax.table(cellText=cells, colLabels=["dataset / network", "rule", "paper\nmean", "paper\nbest",
                                            "authors'\ncode best", "seeds", "ours best:\nmean ± std",
                                            "ours best\nof seeds", "ours last:\nmean", "status"],
                 loc="center", cellLoc="left", colWidths=[0.13, 0.12, 0.05, 0.05, 0.08, 0.07, 0.09, 0.07, 0.07, 0.27])
    t.auto_set_font_size(False)
    t.set_fontsize(8)
    t.scale(1, 2.6)
    ax.set_title("Test accuracy [%]: the paper's and the authors' final code's values (labelled) beside this "
                 "project's runs on 2 CPU cores (best epoch of each seed)", fontsize=10)
    save(fig, NAME)
    for r in rows:
        print(f"{r[0] + ', ' + r[1]:60s} paper {r[2]:.2f}/{r[3]:.2f}  ours best {ours(r):>14s}  {r[11]}")


if __name__ == "__main__":
    main()
