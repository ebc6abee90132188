"""Figure 7: which version of the rule reproduces the paper? Runs of each variant over seeds, against the paper.

Reads every run under ``results/`` through :mod:`reference.app.summary` (runs that differ only in their seed
form a group: the final rule, the single-filtered target, the paper-era rule ``--variant paper2020``, ...)
and draws, per network:

- left: test accuracy per epoch, the mean over the group's seeds with the band from the lowest to the
  highest seed (a group's unfinished runs count for the epochs they have);
- right: each run's best-epoch accuracy (dots; runs with fewer epochs than the group's longest are left
  out) and their mean, beside the paper's mean and best over its runs and the authors' final code
  (paper-notes section 4), the paper's protocol.  A group whose runs have not yet run the epochs they were
  started for (``RunResult.planned_epochs``, from their checkpoint) is labelled "stopped at N of M epochs".

Runs with the paper-era rule's layer switch moved (``--rate-threshold``) on the CNNs are left out: they
are experiments on that switch, not versions of the rule, and figure 9 draws them.  On the Fashion-MNIST
MLP the switch at 0.05 is one of the single-difference runs (with the double target and tau_s 3) that ask
which of the paper-era rule's differences matters, so it is drawn here.

Nothing is trained here; the runs are the committed evidence of the reproduction issue (results/README.md).
The data behind the figure: ``figures/data/fig7_variants.csv`` (one row per group, as ``summary.csv``).
"""
from __future__ import annotations

import os
import textwrap

from _common import AUTHORS_CODE, PAPER, ROOT, fast, save, style, write_csv

NAME = "fig7_variants"
#: Options of runs that figure 9 draws instead (experiments on the layer-wise switch), on these networks.
SWITCH_EXPERIMENTS = "rate_threshold="
SWITCH_IN_FIG9 = ("MNIST CNN", "Fashion-MNIST CNN")
#: The paper's label of a network, by dataset and layer description (reference.app.summary's network names).
NETWORKS = {("FashionMNIST", "400-400-10"): "Fashion-MNIST MLP", ("MNIST", "15C5-P2-40C5-P2-300-10"): "MNIST CNN",
            ("FashionMNIST", "32C5-P2-64C5-P2-1024-10"): "Fashion-MNIST CNN"}


def _short(options: str) -> str:
    return {"defaults": "final rule", "target_filter=single": "final rule, single target",
            "variant=paper2020": "paper-era rule (--variant paper2020)",
            "target_filter=double, variant=paper2020": "paper-era rule, double target",
            "rate_threshold=0.05, variant=paper2020": "paper-era rule, switch at 0.05"}.get(options, options)


def _name(label: str, options: str, config: str, groups) -> str:
    """A group's legend name: its options in words, plus the config values that set it apart where the
    network has groups of the same options with other configs (the paper-era Fashion-MNIST CNN with the
    count and with the kernel loss)."""
    twins = [c.split(", ") for (lab, o, c) in groups if lab == label and o == options]
    if len(twins) == 1:
        return _short(options)
    mine = config.split(", ")
    differ = [part for i, part in enumerate(mine) if any(len(t) != len(mine) or t[i] != part for t in twins)]
    return f"{_short(options)}, {', '.join(differ)}"


def main():
    from reference.app.summary import read_runs

    plt = style()
    groups: dict[tuple, list] = {}
    for run in read_runs(os.path.join(ROOT, "results")):
        label = NETWORKS.get((run.dataset, run.network))
        if label is None or (SWITCH_EXPERIMENTS in run.options and label in SWITCH_IN_FIG9):
            continue
        groups.setdefault((label, run.options, run.config), []).append((run, [100 * a for a in run.accuracies]))
    if not groups:
        raise SystemExit("no results/<run>/metrics.csv of a paper network found: train runs first (results/README.md)")
    networks = sorted({label for label, _, _ in groups}, key=list(NETWORKS.values()).index)
    named = {(label, _name(label, options, config, groups)): runs for (label, options, config), runs in groups.items()}
    assert len(named) == len(groups), "two groups of runs got the same legend name"
    groups = named
    fig, axes = plt.subplots(len(networks), 2, figsize=(12, 5.0 * len(networks)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.6, 1]})
    table = []
    for (ax_curve, ax_best), label in zip(axes, networks):
        mine = [(k[1], v) for k, v in groups.items() if k[0] == label]
        for i, (variant, runs) in enumerate(mine):
            n_ep = max(len(acc) for _, acc in runs)
            mean, lo, hi = [], [], []
            for e in range(n_ep):
                vals = [acc[e] for _, acc in runs if len(acc) > e]
                mean.append(sum(vals) / len(vals))
                lo.append(min(vals))
                hi.append(max(vals))
            ep = list(range(1, n_ep + 1))
            n_runs = f"{len(runs)} seed{'s' if len(runs) > 1 else ''}"
            lens = sorted({len(acc) for _, acc in runs})
            ax_curve.plot(ep, mean, color=f"C{i}", lw=1.3,
                          label=f"{variant} ({n_runs}; epochs run: {'/'.join(map(str, lens))})")
            ax_curve.fill_between(ep, lo, hi, color=f"C{i}", alpha=0.2, lw=0)
            bests = [max(acc) for _, acc in runs if len(acc) == n_ep]  # right panel: runs with all epochs
            ax_best.plot([i] * len(bests), bests, "o", color=f"C{i}", alpha=0.7, ms=5)
            ax_best.plot([i - 0.25, i + 0.25], [sum(bests) / len(bests)] * 2, color=f"C{i}", lw=2)
            table.append([label, variant, len(runs), " ".join(str(r.seed) for r, _ in runs),
                          " ".join(str(len(a)) for _, a in runs), round(sum(bests) / len(bests), 3),
                          round(max(bests), 3)])
        paper = PAPER[label]
        for ax in (ax_curve, ax_best):
            ax.axhline(paper["mean"], color="k", ls="--", lw=1, label=f"paper: mean {paper['mean']:.2f}%")
            ax.axhline(paper["best"], color="k", ls=":", lw=1, label=f"paper: best {paper['best']:.2f}%")
            if label in AUTHORS_CODE:
                ax.axhline(AUTHORS_CODE[label]["best"], color="C7", ls="-.", lw=1,
                           label=f"authors' final code: best {AUTHORS_CODE[label]['best']:.2f}%")
        top = max(max(max(a) for _, a in runs) for _, runs in mine)
        # down to 3 points below the paper's mean (hides the first epochs' climb), or lower when a group's
        # later epochs lie there (a run that degrades must show it)
        late = min(min(a[len(a) // 2:]) for _, runs in mine for _, a in runs)
        ax_curve.set_ylim(min(paper["mean"] - 3.0, late - 0.5), max(top, paper["best"]) + 0.5)
        ax_curve.set_xlabel("epoch")
        ax_curve.set_ylabel("test accuracy [%] (mean over seeds; band: min to max)")
        ax_curve.set_title(f"{label}: test accuracy per epoch")
        ax_curve.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
        ax_best.set_xticks(range(len(mine)))
        ticks = []
        for v, runs in mine:
            n_ep, plan = max(len(a) for _, a in runs), max(r.planned_epochs for r, _ in runs)
            tick = v.replace(" (", "\n(").replace(", ", ",\n").replace("(--variant ", "(--variant\n")
            if len(mine) > 4:  # six groups on the MLP row: narrower labels
                tick = "\n".join(textwrap.fill(line, 11) for line in tick.splitlines())
            ticks.append(tick + (f"\nstopped at {n_ep} of {plan} epochs" if n_ep < plan else ""))
        ax_best.set_xticklabels(ticks, fontsize=7)
        ax_best.set_xlim(-0.6, len(mine) - 0.4)
        lows = [min(max(a) for _, a in runs if len(a) == max(len(b) for _, b in runs)) for _, runs in mine]
        y0, y1 = min(min(lows), paper["mean"]) - 0.3, max(top, paper["best"]) + 0.2
        ax_best.set_ylim(y0, y1 + 0.3 * (y1 - y0))  # room above the dots for the legend
        ax_best.set_ylabel("best-epoch test accuracy [%]")
        ax_best.set_title("each seed's best epoch (dots) and their mean (bar)")
        ax_best.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    write_csv(NAME, ["network", "variant", "runs", "seeds", "epochs", "best_mean_percent", "best_max_percent"], table)
    save(fig, NAME)
    if fast():
        print(f"{NAME}: drew {len(groups)} groups")


if __name__ == "__main__":
    main()
