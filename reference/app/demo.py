"""The demo behind README's first command: train a small network on real MNIST, then draw it.

    python -m reference demo --out demo_output

Trains ``configs/demo_MNIST_MLP.yaml`` (the authors' Fashion-MNIST 400-400 MLP, here on MNIST, T = 5) for 3
epochs (README.md gives the time it takes), then writes to the output folder: the learning curve and confusion matrix, membrane
traces of a few hidden and output neurons on one real test digit (before reset, threshold and spikes
marked), and the spike raster of every layer on that digit.
"""
from __future__ import annotations

import os
from importlib import resources

import numpy as np

from . import plots
from ..config import load_config
from .runs import DEMO_FIGURES, DERIVED_FILES, RUN_LOG, RunError, RunExistsError, RunFolder
from .train import train

#: The demo's config, shipped inside the package (``configs/demo_MNIST_MLP.yaml`` links to it), so the demo
#: runs after any install, editable or not, from any folder.
DEMO_TAG = "demo"
DEMO_CONFIG = str(resources.files("reference") / "configs" / "demo_MNIST_MLP.yaml")


def draw_network_activity(net, image: np.ndarray, label: int, out_dir: str, prefix: str = "") -> list[str]:
    """Membrane traces and spike rasters of ``net`` on ONE image (C, H, W); returns the PNG paths."""
    import matplotlib.pyplot as plt

    out = net.forward(image[None], train=False)
    pred = int(net.predict(out)[0])
    spiking = [r for r in net.records if r.state is not None]
    paths = []

    fig, axes = plt.subplots(1, len(spiking), figsize=(4.2 * len(spiking), 3.4), squeeze=False)
    for ax, rec in zip(axes[0], spiking):
        u = rec.state.u[:, 0].reshape(net.n_steps, -1)
        s = rec.state.s[:, 0].reshape(net.n_steps, -1)
        if rec is spiking[-1]:
            picks = [label, pred] if pred != label else [label]
        else:  # the most active neurons and one that stays silent
            counts = s.sum(axis=0)
            picks = list(np.argsort(-counts, kind="stable")[:2]) + [int(np.argmin(counts))]
        for i in dict.fromkeys(int(p) for p in picks):
            plots.membrane_trace(u[:, i], s[:, i], ax=ax, label=f"neuron {i}")
        handles, labels = ax.get_legend_handles_labels()
        unique = {lab: h for h, lab in zip(handles, labels) if "spikes" not in lab}  # one threshold entry
        ax.legend(list(unique.values()), list(unique.keys()), fontsize=7, title="triangles: spikes",
                  title_fontsize=7)
        ax.set_title(f"layer {rec.name}: rate {rec.state.s[:, 0].mean():.2f} spikes/step")
    fig.suptitle(f"membrane potential on a test digit (label {label}, predicted {pred})")
    paths.append(plots.save(fig, os.path.join(out_dir, f"{prefix}membrane_traces.png")))

    fig, axes = plt.subplots(1, len(spiking), figsize=(4.2 * len(spiking), 3.4), squeeze=False)
    for ax, rec in zip(axes[0], spiking):
        plots.spike_raster(rec.state.s[:, 0].reshape(net.n_steps, -1), ax=ax, title=f"layer {rec.name}")
    fig.suptitle(f"spike raster on the same digit (label {label})")
    paths.append(plots.save(fig, os.path.join(out_dir, f"{prefix}spike_raster.png")))
    return paths


def _continued_sessions(folder: RunFolder) -> str | None:
    """What in ``run.log`` shows that a demo run was trained further by hand (a resumed session that
    finished an epoch; the demo itself always starts afresh), or None.  A ``run.log`` that cannot be read counts as continued: the demo
    replaces a run only when it can tell the run is all its own."""
    import json

    path = folder.file(RUN_LOG)
    if not os.path.lexists(path):
        return None
    if os.path.islink(path) or not os.path.isfile(path):  # a FIFO would block the demo for good
        return f"its {RUN_LOG} is a link or not a regular file"
    try:
        with open(path, encoding="utf-8") as fh:
            sessions = [json.loads(line) for line in fh if line.strip()]
        resumed = [s["command"] for s in sessions if s["resumed"] and s["epochs"][0] <= s["epochs"][1]]
    except (OSError, ValueError, TypeError, KeyError) as err:  # ValueError: JSON, UTF-8; the others: not a record
        return f"its {RUN_LOG} cannot be read, {type(err).__name__}"
    return f"{RUN_LOG} shows {len(resumed)} resumed session(s), the last: {resumed[-1]}" if resumed else None


def run_demo(out_dir: str = "demo_output", epochs: int = 3, seed: int = 0, data_dir=None, train_limit=None,
             test_limit=None, progress: bool = True) -> dict:
    """Train the demo network and write its figures; prints and returns the folder and the accuracy.

    Running the demo again replaces an earlier DEMO run in ``out_dir`` (not one continued with ``train
    --resume``, :func:`_continued_sessions`); a folder that holds any other run
    is refused (:class:`reference.app.runs.RunExistsError`), so the demo never overwrites real results.
    """
    config = load_config(DEMO_CONFIG)
    folder = RunFolder(out_dir)
    earlier_demo = False
    if not folder.run_files():  # the files a demo writes, and a run's others: a user's files of those names stay
        mine = [name for name in DERIVED_FILES if os.path.lexists(os.path.join(out_dir, name))]
        if mine:
            raise RunExistsError(f"{out_dir} holds no demo run but files the demo writes ({', '.join(mine)}); "
                                 f"give the demo another --out")
    if folder.run_files():
        try:
            earlier_demo = folder.read_checkpoint()["settings"].tag == DEMO_TAG
        except (RunError, OSError):
            earlier_demo = False
        if not earlier_demo:
            raise RunExistsError(f"{out_dir} holds a run the demo did not make ({', '.join(folder.run_files())}); "
                                 f"give the demo another --out")
        foreign = [name for name in (*DEMO_FIGURES, "learning_curve.png", "confusion_matrix.png")
                   if plots.not_a_png(os.path.join(out_dir, name))]
        if foreign:
            raise RunExistsError(f"{out_dir} holds the demo's earlier run, but {foreign[0]} is not a figure it "
                                 f"drew (a user's file of that name); give the demo another --out")
        continued = _continued_sessions(folder)
        if continued:
            what = ("a demo run continued with train --resume" if continued.startswith(RUN_LOG) else
                    "a demo run whose sessions cannot be told")
            raise RunExistsError(f"{out_dir} holds {what} ({continued}); the demo replaces only a run it can "
                                 f"tell is all its own: give the demo another --out")
    result = train(config, out_dir=out_dir, epochs=epochs, seed=seed, data_dir=data_dir, train_limit=train_limit,
                   test_limit=test_limit, progress=progress, overwrite=earlier_demo, tag=DEMO_TAG)
    undrawn = f"{' and '.join(DEMO_FIGURES)} may be missing (the demo draws them when run again)"
    if result["interrupted"]:
        if result.get("epoch") == epochs:  # stopped as the run ended: before the demo's own figures
            print(f"the demo's {undrawn}")
        return result
    net, test = result["net"], result["test_set"]
    try:
        paths = draw_network_activity(net, test.images[0], int(test.labels[0]), out_dir)
    except KeyboardInterrupt:  # the run is complete; only the pictures of one digit are missing
        print(f"\ninterrupted while the demo drew its figures: the run in {out_dir} has finished and is saved, "
              f"but {undrawn}")
        return {**result, "interrupted": True}
    paths += [os.path.join(out_dir, "learning_curve.png"), os.path.join(out_dir, "confusion_matrix.png")]
    print("figures:\n  " + "\n  ".join(paths))
    print(f"demo: test accuracy {result['test_acc']:.4f} after {result['epoch']} epochs; "
          f"everything is in {os.path.abspath(out_dir)}")
    return result
