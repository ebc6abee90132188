"""What the figure scripts share: output folders, fast mode, cached training runs, the paper's numbers.

Full mode writes ``figures/<name>.png`` and ``figures/data/<name>.csv`` (committed). Fast mode
(``FIGURES_FAST=1`` or ``make_all.py --fast``) runs every script end to end on tiny budgets and writes to
``figures/_fast/`` (or ``$FIGURES_OUT``), never over the committed figures.

Training runs are cached under ``figures/runs/<name>/`` (metrics.csv, checkpoint): a finished run is
read back, an unfinished one resumes where it stopped (``--rerun`` starts over), so that redrawing takes
seconds and a long sweep can span several sessions.
"""
from __future__ import annotations

import copy
import csv
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

#: The paper's accuracies (Zhang & Li 2020, tables; paper-notes section 4): mean and best over runs of the
#: best test accuracy over epochs, in percent.  These are the only typed-in numbers in the figures.
PAPER = {
    "MNIST CNN": {"mean": 99.50, "best": 99.53, "T": 5, "epochs": 100},
    "N-MNIST CNN": {"mean": 99.35, "best": 99.40, "T": 100, "epochs": 100},
    "Fashion-MNIST MLP": {"mean": 89.75, "best": 89.92, "T": 5, "epochs": 100},
    "Fashion-MNIST CNN": {"mean": 92.69, "best": 92.83, "T": 5, "epochs": 100},
    "CIFAR10 CNN": {"mean": 88.98, "best": 89.37, "T": 5, "epochs": 150},
}
#: The authors' final code run unchanged (paper-notes section 4, measured on a GPU, seed 3): best and last
#: test accuracy over the epochs run, in percent.
AUTHORS_CODE = {
    "MNIST CNN": {"best": 99.40, "last": 99.36, "epochs": 34},
    "Fashion-MNIST MLP": {"best": 89.43, "last": 89.39, "epochs": 98},
}


def fast() -> bool:
    """Whether the scripts run in fast mode (``FIGURES_FAST=1``)."""
    return os.environ.get("FIGURES_FAST", "") not in ("", "0")


def out_dir() -> str:
    """Folder for PNGs (CSVs go to its ``data/``): ``figures/`` in full mode, ``figures/_fast/`` in fast mode."""
    d = os.environ.get("FIGURES_OUT") or (os.path.join(HERE, "_fast") if fast() else HERE)
    os.makedirs(os.path.join(d, "data"), exist_ok=True)
    return d


def checking() -> bool:
    """Whether ``make_all.py --check`` runs the scripts: outputs go to a scratch ``$FIGURES_OUT``, the
    cached runs are read from ``figures/runs/`` and nothing is trained (:func:`cached_run` refuses)."""
    return os.environ.get("FIGURES_CHECK", "") not in ("", "0")


def runs_dir() -> str:
    return os.path.join(HERE if checking() else out_dir(), "runs")


def png_path(name: str) -> str:
    return os.path.join(out_dir(), f"{name}.png")


def write_csv(name: str, header: list[str], rows: list) -> str:
    """Write ``figures[/_fast]/data/<name>.csv``; returns its path."""
    path = os.path.join(out_dir(), "data", f"{name}.csv")
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def read_csv(path: str) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def as_float(value) -> float:
    """A CSV cell as a float; NaN for an empty or non-numeric cell (a column a run did not record)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def branch_strips(fig, ax, runs: dict, layers: list) -> None:
    """Draw on ``ax`` which TSSL-BP branch each layer took per epoch: one colour strip per (run, layer),
    the share of its neuron-steps on the warm-up branch (``warmup/<layer>`` of a run's ``diagnostics.csv``;
    blue 0 = TSSL-BP, red 1 = warm-up, blank = no such epoch).  ``runs``: label -> diagnostics rows."""
    import numpy as np

    strips, labels = [], []
    n_epochs = max((len(rows) for rows in runs.values()), default=1)
    for label, rows in runs.items():
        for layer in layers:
            strip = np.full(n_epochs, np.nan)
            strip[:len(rows)] = [as_float(r[f"warmup/{layer}"]) for r in rows]
            strips.append(strip)
            labels.append(f"{layer}, {label}")
    if strips:
        img = ax.imshow(np.array(strips), aspect="auto", cmap="coolwarm", vmin=0, vmax=1, interpolation="nearest",
                        extent=(0.5, n_epochs + 0.5, len(strips) - 0.5, -0.5))
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        fig.colorbar(img, ax=ax, label="share of neuron-steps on warm-up", fraction=0.04)
    ax.grid(False)
    ax.set_xlabel("epoch")


def config_dict(name: str, **network) -> dict:
    """The raw config ``configs/<name>.yaml`` with ``Network`` keys overridden (e.g. ``n_steps=8``)."""
    import yaml

    with open(os.path.join(ROOT, "configs", f"{name}.yaml"), encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    raw = copy.deepcopy(raw)
    raw["Network"].update(network)
    return raw


def budget(full_epochs: int) -> dict:
    """Training budget: ``full_epochs`` on the whole dataset, or 1 epoch on 300/200 samples in fast mode."""
    if fast():
        return {"epochs": 1, "train_limit": 300, "test_limit": 200}
    return {"epochs": full_epochs, "train_limit": None, "test_limit": None}


def cached_run(name: str, config: dict, *, epochs: int, seed: int = 3, net_options: dict | None = None,
               train_limit=None, test_limit=None, rerun: bool = False) -> list[dict]:
    """Train (or resume, or just read) the run ``runs/<name>``; returns its metrics rows (one per epoch).

    The run is complete when its metrics.csv has ``epochs`` rows; otherwise it resumes from its checkpoint.
    """
    from reference.app.train import train

    folder = os.path.join(runs_dir(), name)
    metrics = os.path.join(folder, "metrics.csv")
    if rerun and os.path.isdir(folder):
        shutil.rmtree(folder)
    done = read_csv(metrics) if os.path.exists(metrics) else []
    if len(done) >= epochs:
        return done[:epochs]
    if checking():
        raise SystemExit(f"[{name}] figures/runs/{name} has {len(done)} of {epochs} epochs: --check trains nothing "
                         "(python figures/make_all.py trains what is missing)")
    resume = os.path.exists(os.path.join(folder, "checkpoint.npz"))
    print(f"[{name}] {'resuming' if resume else 'training'}: {epochs} epochs ({len(done)} done)", flush=True)
    train(config if not resume else None, out_dir=folder, epochs=epochs, seed=None if resume else seed,
          resume=resume, overwrite=not resume, net_options=None if resume else net_options,
          train_limit=train_limit, test_limit=test_limit, progress=not fast() and sys.stderr.isatty(),
          log=lambda msg: print(f"[{name}] {msg}", flush=True))
    return read_csv(metrics)[:epochs]


def style():
    """matplotlib with the Agg backend and a consistent look; returns pyplot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
                         "axes.spines.right": False, "font.size": 9})
    return plt


def save(fig, name: str) -> str:
    path = png_path(name)
    fig.savefig(path, dpi=130, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"wrote {os.path.relpath(path, ROOT)}")
    return path
