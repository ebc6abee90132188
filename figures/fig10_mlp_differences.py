"""Figure 10: which of the paper-era rule's differences matters on the Fashion-MNIST MLP?

The paper-era rule with its config (``--variant paper2020``, ``configs/paper2020/FashionMNIST_400_400.yaml``)
reaches the paper's accuracy on this network.  It differs from the authors' final code in several things
at once (docs/paper-notes.md section 7); the single-difference runs each switch one back, everything else
(seed, initial weights, data order, dropout) equal:

- the target filtered twice, as the final code does (``--target-filter double``);
- tau_s 3, the final configs' value (``configs/paper2020/FashionMNIST_400_400_tau_s3.yaml``);
- the layer switch at 0.05, the authors' December 2020 value (``--rate-threshold 0.05``).

Reads the runs under ``results/`` through :mod:`reference.app.summary` and draws:

- (a) each seed's best-epoch test accuracy minus the paper-era run's of the same seed (paired: the seed
  fixes the initial weights and the data order), with the mean over seeds, and the final rule's runs for
  comparison;
- (b) the share of training images whose label neuron fires exactly the spike train nearest its target
  (``label_at_best`` of ``diagnostics.csv``; ``01011`` itself except for the double-filtered target),
  the mean over the seeds that recorded diagnostics;
- (c) each layer's firing rate per epoch in the runs of one seed (:data:`SEED`), against the thresholds;
- (d) which branch each layer took in those runs, epoch by epoch (share of neuron-steps on warm-up).

Nothing is trained here.  The data behind the figure: ``figures/data/fig10_mlp_differences.csv`` (one row per
run: best and last epoch, the paired difference); panels (b)-(d) plot the runs' own ``diagnostics.csv``.
"""
from __future__ import annotations

import os

from _common import ROOT, as_float, branch_strips, read_csv, save, style, write_csv

NAME = "fig10_mlp_differences"
#: The seed whose runs panels (c) and (d) show (its paper-era run was recorded again with diagnostics).
SEED = 6
BASE = "paper-era rule"
#: Group name -> (options as reference.app.summary writes them, the config's tau_s); the order of the panels.
GROUPS = {
    BASE: ("variant=paper2020", 2),
    "double target": ("target_filter=double, variant=paper2020", 2),
    "tau_s 3": ("variant=paper2020", 3),
    "switch at 0.05": ("rate_threshold=0.05, variant=paper2020", 2),
    "final rule (all differences)": ("defaults", 3),
    "final rule, single target": ("target_filter=single", 3),
}


def _runs() -> dict:
    """Group name -> {seed: (folder, RunResult)} of the Fashion-MNIST MLP runs under results/."""
    from reference.app.summary import read_runs

    results = os.path.join(ROOT, "results")
    found = {name: {} for name in GROUPS}
    for run in read_runs(results):
        if (run.dataset, run.network) != ("FashionMNIST", "400-400-10") or run.epochs < 100:
            continue
        for name, (options, tau_s) in GROUPS.items():
            if run.options == options and f"tau_s {tau_s}," in run.config and run.seed is not None:
                found[name][run.seed] = (os.path.join(results, run.folder), run)
    return found


def main():
    import numpy as np

    plt = style()
    found = _runs()
    base = found[BASE]
    if not base:
        raise SystemExit("no paper-era Fashion-MNIST MLP run under results/ (results/README.md has the commands)")
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.2))
    table = []

    ax = axes[0, 0]
    others = [n for n in GROUPS if n != BASE]
    for i, name in enumerate(others):
        seeds = sorted(set(found[name]) & set(base))
        diffs = [100 * (found[name][s][1].best - base[s][1].best) for s in seeds]
        if not diffs:
            continue
        mean = sum(diffs) / len(diffs)
        std = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else float("nan")
        ax.plot([i] * len(diffs), diffs, "o", color=f"C{i + 1}", alpha=0.75, ms=5)
        at: dict[float, list] = {}  # seeds with the same difference share one label
        for s, d in zip(seeds, diffs):
            at.setdefault(round(d, 2), []).append(str(s))
        for d, names in at.items():
            ax.annotate(",".join(names), (i, d), xytext=(5, -3), textcoords="offset points", fontsize=6, color="0.35")
        ax.plot([i - 0.25, i + 0.25], [mean] * 2, color=f"C{i + 1}", lw=2)
        ax.annotate(f"{mean:+.2f}", (i + 0.27, mean), va="center", fontsize=7)
        print(f"{name}: {mean:+.2f} +- {std:.2f} points against the paper-era run, seeds {seeds}")
    ax.axhline(0, color="k", lw=1)
    ax.annotate(f"0: the {BASE}, same seed", (-0.55, 0), xytext=(0, -10), textcoords="offset points", fontsize=7)
    ax.set_xticks(range(len(others)), [n.replace(" (", "\n(").replace(", ", ",\n") for n in others], fontsize=7)
    ax.set_xlim(-0.6, len(others) - 0.2)
    ax.set_ylabel("best-epoch accuracy minus the paper-era run's [points]")
    ax.set_title("(a) one difference at a time, paired by seed (dots: seeds, bar: mean)")

    ax = axes[0, 1]
    for i, name in enumerate(GROUPS):
        curves = []
        for seed, (folder, _) in sorted(found[name].items()):
            path = os.path.join(folder, "diagnostics.csv")
            if os.path.isfile(path):
                curves.append([as_float(r["label_at_best"]) for r in read_csv(path)])
        if not curves:
            continue
        n = min(len(c) for c in curves)
        mean = np.mean([c[:n] for c in curves], axis=0)
        ax.plot(range(1, n + 1), 100 * mean, color=f"C{i}", lw=1.3,
                label=f"{name} ({len(curves)} seed{'s' * (len(curves) > 1)})")
    ax.set_ylim(0, 100)
    ax.set_xlabel("epoch")
    ax.set_ylabel("label neuron fires the train nearest its target [% of images]")
    ax.set_title("(b) how often the label neuron's train is exactly right")
    ax.legend(fontsize=7, loc="lower right")

    shown = [(name, found[name][SEED][0]) for name in ("switch at 0.05", BASE, "tau_s 3")
             if SEED in found[name] and os.path.isfile(os.path.join(found[name][SEED][0], "diagnostics.csv"))]
    diag = {name: read_csv(os.path.join(folder, "diagnostics.csv")) for name, folder in shown}
    layers = [k.split("/", 1)[1] for k in next(iter(diag.values()))[0] if k.startswith("rate/")] if diag else []
    ax = axes[1, 0]
    for (name, rows), ls in zip(diag.items(), ["-.", "-", ":"]):
        for j, layer in enumerate(layers):
            ax.plot([int(r["epoch"]) for r in rows], [100 * as_float(r[f"rate/{layer}"]) for r in rows],
                    color=f"C{j}", ls=ls, lw=1.3, label=f"{layer}, {name}")
    for thr, text in ((0.1, "0.1 (camera-ready)"), (0.05, "0.05 (Dec 2020)")):
        ax.axhline(100 * thr, color="k", lw=0.8, ls=":")
        ax.annotate(text, (100, 100 * thr), xytext=(-2, 2), textcoords="offset points", fontsize=7, ha="right")
    ax.set_ylim(0, 32)
    ax.set_xlabel("epoch")
    ax.set_ylabel("firing rate [% of neuron-steps]")
    ax.set_title(f"(c) each layer's firing rate, seed {SEED}")
    if diag:
        ax.legend(fontsize=6, ncol=3, loc="upper right")
    else:
        for a in (ax, axes[1, 1]):
            a.text(0.5, 0.5, f"no seed-{SEED} runs with diagnostics.csv yet", ha="center", transform=a.transAxes)

    ax = axes[1, 1]
    branch_strips(fig, ax, diag, layers)
    ax.set_title(f"(d) the branch each layer took, seed {SEED} (blue TSSL-BP, red warm-up)")
    fig.suptitle("Fashion-MNIST MLP: which of the paper-era rule's differences matters "
                 "(diagnostics on 1,000 training images per epoch)", fontsize=11)
    fig.tight_layout()

    for name in GROUPS:
        for seed, (folder, run) in sorted(found[name].items()):
            paired = 100 * (run.best - base[seed][1].best) if seed in base else float("nan")
            table.append([name, seed, os.path.basename(folder), round(100 * run.best, 2),
                          run.accuracies.index(run.best) + 1, round(100 * run.last, 2), round(paired, 2),
                          os.path.isfile(os.path.join(folder, "diagnostics.csv"))])
    write_csv(NAME, ["group", "seed", "run", "best_percent", "best_epoch", "last_percent",
                     "best_minus_paper_era_same_seed", "has_diagnostics"], table)
    save(fig, NAME)


if __name__ == "__main__":
    main()
