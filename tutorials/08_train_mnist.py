# %% [markdown]
# # Lesson 8: train a spiking network on MNIST
#
# Everything so far was one forward and one backward pass. Training repeats them over mini-batches of
# real data with the authors' optimiser, and the network's spiking changes: the output layer learns to
# fire the desired train for the right class and to stay silent otherwise. This lesson trains the
# authors' 400-400 MLP on the real MNIST set for two epochs (the time it takes is in tutorials/README.md;
# in fast mode seconds, on a subset) and looks at the network before and after.
#
# You will:
# - train with `reference.app.train.train` (the authors' loop: shuffled mini-batches, TSSL-BP, gradient-norm
#   clipping, AdamW, weight clipping), and read its `metrics.csv` with `reference.app.train.read_metrics`;
# - draw the learning curves (`reference.app.plots.learning_curve`);
# - compare, before and after training: the output spike counts per class, the membrane traces of a
#   few neurons of each layer on the same digit (`reference.app.plots.membrane_trace`), and the firing
#   rate of every layer;
# - reload the saved weights and compute the test accuracy from them.
#
# The same from the shell: `python -m reference train --config configs/demo_MNIST_MLP.yaml --epochs 2
# --out DIR`, or `python -m reference demo` (3 epochs, with figures).

# %%
import itertools
import os

import matplotlib.pyplot as plt
import numpy as np
from _lesson import Lesson

L = Lesson("08_train_mnist")

from reference.app import plots
from reference.losses import desired_spike_train, kernel_target
from reference.network import Network
from reference.neuron import psp
from reference.app.train import evaluate, load_checkpoint, load_split, read_metrics, train

# %% [markdown]
# ## 1. Data and network
#
# `reference.app.train.load_split` reads MNIST (from `~/.cache/tsslbp-reference`, downloading it once if
# needed) and normalises it as the authors do, `(pixel/255 - 0.1307)/0.3081`. In fast mode we keep only
# the first images of each split.
#
# The network is `configs/demo_MNIST_MLP.yaml`: 784 -> 400 -> 400 -> 10 LIF neurons, `T = 5` steps,
# `tau_m = 5`, `tau_s = 3`, kernel loss, AdamW with learning rate 5e-4 (the authors' Fashion-MNIST MLP,
# here on MNIST). `train` builds its network as `Network(config, seed=seed)`, so a network built with
# the same seed is exactly the untrained starting point: we keep one to compare with.

# %%
CONFIG = L.path("configs", "demo_MNIST_MLP.yaml")
SEED = 0
if L.fast:
    EPOCHS, BATCH, TRAIN_LIMIT, TEST_LIMIT = 2, 50, 1000, 500
else:
    EPOCHS, BATCH, TRAIN_LIMIT, TEST_LIMIT = 2, 100, None, None
train_set = load_split("MNIST", "train", limit=TRAIN_LIMIT, verbose=False)
test_set = load_split("MNIST", "test", limit=TEST_LIMIT, verbose=False)
print(f"MNIST from {train_set.source}: {len(train_set.labels)} training and {len(test_set.labels)} test "
      f"images, {train_set.images.shape[1:]} each; {EPOCHS} epochs of mini-batches of {BATCH}")

before = Network(CONFIG, seed=SEED)  # the untrained network train() will start from
loss_before, acc_before, _ = evaluate(before, test_set)
print(f"untrained: test accuracy {acc_before:.2%} (chance is 10%)")

# %% [markdown]
# ## 2. Train
#
# One epoch of `train`: the training set in a shuffled order (drawn from
# `numpy.random.default_rng([seed, epoch])`), and for each mini-batch the authors' step
# (`reference.optim.train_step`): forward, kernel loss, TSSL-BP backward, all gradients scaled to a
# joint norm of at most 1, one AdamW update, every weight clipped to `[-4, 4]`. Then the whole test set.
# After each epoch it saves `weights.npz` and `best_weights.npz`, then a `checkpoint.npz` that resumes bit
# for bit and holds every epoch's metrics row, rewrites `metrics.csv` from it, and redraws
# `learning_curve.png` and `confusion_matrix.png`, all in `out_dir` (here a `run/` folder beside this
# lesson's figures). A folder that already holds a run is refused unless `overwrite=True`, as below: the
# lesson replaces its own run of last time (`reference/app/runs.py` lists the run folder's promises).

# %%
RUN = os.path.join(L.out, "run")
result = train(CONFIG, out_dir=RUN, epochs=EPOCHS, batch_size=BATCH, seed=SEED, progress=False,
               splits=(train_set, test_set), overwrite=True)  # overwrite: this lesson's run of last time
after = result["net"]
print(f"\ntrained: test accuracy {result['test_acc']:.2%} after {result['epoch']} epochs "
      f"({sum(read_metrics(os.path.join(RUN, 'metrics.csv'))['seconds']):.1f} s of training)")
assert result["test_acc"] > acc_before + 0.3  # training did something

# %% [markdown]
# ## 3. Learning curves
#
# `read_metrics` returns `metrics.csv` as a dict of columns; `plots.learning_curve` draws the training
# accuracy (the running accuracy over the epoch's mini-batches, measured while the weights change) and
# the test accuracy (measured after the epoch). Right: the kernel loss per sample. Epoch 0 is the
# untrained network, evaluated above.

# %%
metrics = read_metrics(os.path.join(RUN, "metrics.csv"))
for row in zip(*(metrics[k] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds"))):
    print("epoch {:.0f}: train loss {:.4f} acc {:.2%} | test loss {:.4f} acc {:.2%} | {:.1f} s".format(*row))

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
curve = {k: [v0] + list(metrics[k]) for k, v0 in (("epoch", 0), ("train_acc", np.nan), ("test_acc", acc_before))}
plots.learning_curve(curve, ax=ax1, title="accuracy per epoch (epoch 0: untrained)")
ax1.set_ylim(0, 100)
ax1.set_xticks(curve["epoch"])
ax2.plot(metrics["epoch"], metrics["train_loss"], marker="o", ms=3, label="train (running, over the epoch)")
ax2.plot([0] + metrics["epoch"], [loss_before] + metrics["test_loss"], marker="s", ms=3,
         label="test (after the epoch)")
ax2.set_xlabel("epoch")
ax2.set_ylabel("kernel loss per sample")
ax2.set_xticks(curve["epoch"])
ax2.grid(alpha=0.3)
ax2.legend()
ax2.set_title("kernel loss $1/2 \\sum_{i,t} (a_L - \\mathrm{target})^2$ per sample")
fig.tight_layout()
L.save(fig, "learning_curves")

# %% [markdown]
# ## 4. Output spike counts per class, before and after
#
# The kernel loss asks the label neuron's output PSP to follow a target made from the desired train
# `[0, 1, 1, 1, 1]` (`reference.losses.desired_spike_train`, four spikes), and every other output
# neuron to stay silent. But the authors' target is that train filtered **twice** (`Network.target`,
# `reference.losses.kernel_target`), so it lies below the PSP of the desired train itself. Which spike
# train of the label neuron fits it best? With `T = 5` there are only `2^5 = 32` trains: try them all.

# %%
trains = np.array(list(itertools.product([0.0, 1.0], repeat=after.n_steps)))  # (32, T)
fit = 0.5 * ((psp(trains.T, after.params.tau_s).T - after.target) ** 2).sum(axis=1)  # kernel loss of each
best = trains[np.argmin(fit)]
want = desired_spike_train(after.n_steps)
fit_want = fit[np.flatnonzero((trains == want).all(axis=1))[0]]
print(f"desired train {want.astype(int).tolist()}: loss {fit_want:.4f}; "
      f"best train {best.astype(int).tolist()}: loss {fit.min():.4f}, {int(best.sum())} spikes")
assert best.sum() < want.sum()
single = kernel_target(after.n_steps, after.params.tau_s, "single", dtype=np.float64)
assert np.allclose(psp(want, after.params.tau_s), single)  # the paper's single-filtered target: want fits

# %% [markdown]
# So with the double-filtered target the loss is lowest for fewer spikes than the desired train has
# (with the paper's single filter, `Network(target_filter="single")`, the desired train itself fits
# exactly). Below: the mean number of spikes of each output neuron (columns) over the test digits of
# each class (rows). Training lights up the diagonal while the others stay (nearly) silent (the mean
# off-diagonal count before and after is printed below the figure), and the label neuron's count
# goes towards the best-fitting train's rather than the desired train's. (The network predicts the neuron
# whose output PSP summed over time is largest, the authors' "spike count", `Network.predict`.)

# %%
def output_spikes_per_class(net, split, n_class=10, batch=500):
    """Mean output spike count, (true class, output neuron), over a split."""
    total = np.zeros((n_class, n_class))
    for i in range(0, len(split.labels), batch):
        net.forward(split.images[i:i + batch])
        counts = net.records[-1].state.s.sum(axis=0)  # (N, n_class) spikes over the T steps
        np.add.at(total, split.labels[i:i + batch], counts)
    return total / np.maximum(np.bincount(split.labels, minlength=n_class), 1)[:, None]


counts = {"before": output_spikes_per_class(before, test_set), "after": output_spikes_per_class(after, test_set)}
top = max(best.sum(), max(c.max() for c in counts.values()))
fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
for ax, (name, c) in zip(axes, counts.items()):
    im = ax.imshow(c, cmap="viridis", vmin=0, vmax=top)
    for i in range(10):
        for j in range(10):
            ax.text(j, i, f"{c[i, j]:.1f}", ha="center", va="center", fontsize=7,
                    color="black" if c[i, j] > top / 2 else "white")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("output neuron")
    ax.set_ylabel("true class of the test digit")
    ax.set_title(f"{name} training: mean output spikes per digit")
fig.colorbar(im, ax=axes, fraction=0.025, label=f"mean spikes in T = {before.n_steps} steps")
fig.suptitle(f"output spikes per test digit, by class (desired train: {want.sum():.0f} spikes on the diagonal, "
             f"best fit to the target: {best.sum():.0f}; 0 elsewhere)", fontsize=10)
L.save(fig, "output_counts_per_class")

for name, c in counts.items():
    diag, off = np.diag(c).mean(), c[~np.eye(10, dtype=bool)].mean()
    print(f"{name:6s}: label neuron {diag:.2f} spikes per digit, other neurons {off:.3f}; "
          f"label neuron fires most in {np.sum(c.argmax(1) == np.arange(10))} of 10 classes")
label_count = np.diag(counts["after"]).mean()
off_after = counts["after"][~np.eye(10, dtype=bool)].mean()
assert label_count > np.diag(counts["before"]).mean()
assert off_after < 0.1 * label_count, "after training the other neurons stay (nearly) silent"
assert abs(label_count - best.sum()) < abs(label_count - want.sum())
assert np.sum(counts["after"].argmax(1) == np.arange(10)) > np.sum(counts["before"].argmax(1) == np.arange(10))

# %% [markdown]
# ## 5. Inside the network on one digit: membrane traces before and after
#
# The same test digit through the untrained and the trained network. For each layer a few neurons,
# the same ones in both rows: the membrane `u[t]` before reset, the threshold (dashed) and the spikes
# (triangles; after each the membrane restarts from 0). Hidden layers: the two neurons most active
# after training and the one most active before; output layer: the label neuron and each network's
# most active other neuron.

# %%
digit = 0
image, label = test_set.images[digit], int(test_set.labels[digit])
states = {}
for name, net in (("before", before), ("after", after)):
    out = net.forward(image[None])
    states[name] = ([r.state for r in net.records], int(net.predict(out)[0]))


def active(state, k):
    """Indices of the k most active neurons of a layer on the digit (ties: lower index first)."""
    return list(np.argsort(-state.s[:, 0].sum(0), kind="stable")[:k])


def top_other(state, label):
    """The output neuron other than the label with the largest summed PSP (the runner-up or the winner)."""
    return [int(i) for i in np.argsort(-state.a[:, 0].sum(0), kind="stable") if i != label][:1]


layer_names = [r.name for r in after.records]
picks = []
for li in range(len(layer_names)):
    sb, sa = states["before"][0][li], states["after"][0][li]
    if li < len(layer_names) - 1:
        chosen = active(sa, 2) + active(sb, 1)
    else:
        chosen = [label] + top_other(sb, label) + top_other(sa, label)
    picks.append(list(dict.fromkeys(int(i) for i in chosen)))

fig, axes = plt.subplots(2, len(layer_names), figsize=(4.4 * len(layer_names), 6.4), sharey="col")
for row, name in enumerate(("before", "after")):
    st_list, pred = states[name]
    for col, (lname, st) in enumerate(zip(layer_names, st_list)):
        ax = axes[row, col]
        for j, i in enumerate(picks[col]):
            tag = " (label)" if col == len(layer_names) - 1 and i == label else ""
            plots.membrane_trace(st.u[:, 0, i], st.s[:, 0, i], ax=ax, label=f"neuron {i}{tag}", color=f"C{j}")
        handles, labs = ax.get_legend_handles_labels()
        keep = {lab: h for h, lab in zip(handles, labs) if "spikes" not in lab}  # one threshold entry
        ax.legend(list(keep.values()), list(keep.keys()), fontsize=7, loc="upper left")
        extra = f", predicted {pred}" if col == len(layer_names) - 1 else ""
        ax.set_title(f"{name} training: {lname} ({int(st.s[:, 0].sum())} spikes in the layer{extra})",
                     fontsize=9)
fig.suptitle(f"membrane potential on test digit {digit} (label {label}); triangles: spikes", fontsize=11)
fig.tight_layout()
L.save(fig, "membrane_before_after")
for name in states:
    print(f"{name:6s}: predicted {states[name][1]} for label {label}; spikes per layer: "
          + ", ".join(f"{n} {int(st.s.sum())}" for n, st in zip(layer_names, states[name][0])))

# %% [markdown]
# ## 6. Firing rates per layer
#
# The mean number of spikes per neuron and time step (as `NeuronState.firing_rate`) over test digits,
# and the share of neurons that never fire on them. The loss pulls the output layer's rate towards that
# of its best fit: one neuron in ten firing the best-fitting train of section 4, the others silent (the
# check below asserts that training moved it closer); the hidden layers' rates are free and change as
# the gradients push them.

# %%
def layer_rates(net, images, batch=500):
    """Mean firing rate per layer and the share of neurons silent on all images."""
    spikes = None
    for i in range(0, len(images), batch):
        net.forward(images[i:i + batch])
        per_neuron = [r.state.s.sum(axis=(0, 1)) for r in net.records]  # spikes per neuron
        spikes = per_neuron if spikes is None else [a + b for a, b in zip(spikes, per_neuron)]
    n = len(images) * net.n_steps
    return [float(s.sum() / (n * s.size)) for s in spikes], [float(np.mean(s == 0)) for s in spikes]


sample = test_set.images[:1000]
rates = {name: layer_rates(net, sample) for name, net in (("before", before), ("after", after))}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.4))
plots.layer_firing_rates({name: dict(zip(layer_names, r)) for name, (r, _) in rates.items()}, ax=ax1)
xpos = np.arange(len(layer_names))
for k, (name, (_, silent)) in enumerate(rates.items()):
    ax2.bar(xpos + (k - 0.5) * 0.4, np.array(silent) * 100, width=0.4, label=name)
out_target = best.mean() / 10  # one neuron in ten firing the best-fitting train, the others silent
ax1.hlines(out_target, xpos[-1] - 0.45, xpos[-1] + 0.45, color="k", ls=":",
           label=f"output: best fit to the target, {out_target:.2f}")
ax1.legend(fontsize=8)
ax2.set_xticks(xpos)
ax2.set_xticklabels(layer_names)
ax2.set_ylabel("neurons never firing (%)")
ax2.legend(fontsize=8)
ax1.set_title(f"firing rate per layer ({len(sample)} test digits)")
ax2.set_title("silent neurons per layer")
fig.tight_layout()
L.save(fig, "firing_rates")
for name, (r, silent) in rates.items():
    print(f"{name:6s}: " + ", ".join(f"{n} rate {a:.3f} ({b:.0%} silent)" for n, a, b in zip(layer_names, r, silent)))
assert abs(rates["after"][0][-1] - out_target) < abs(rates["before"][0][-1] - out_target)

# %% [markdown]
# ## 7. The saved weights
#
# `train` wrote the weights in the authors' layouts (one array per layer name) with the config. Load
# them into a fresh network and compute the test accuracy again: it must be the number `train` printed.

# %%
ck = load_checkpoint(os.path.join(RUN, "weights.npz"))
fresh = Network(ck["config"], seed=123)  # any seed: the weights are overwritten
fresh.set_weights(ck["weights"])
_, acc, preds = evaluate(fresh, test_set)
print(f"test accuracy from {os.path.relpath(os.path.join(RUN, 'weights.npz'), L.root)}: {acc:.2%} "
      f"({int(np.sum(preds == test_set.labels))} of {len(test_set.labels)} test digits)")
assert acc == result["test_acc"]
internals = {".lock", "checkpoint.npz"}  # the lock of a running train, and the resume point (README: the run folder)
print(f"files of the run to read: {sorted(f for f in os.listdir(RUN) if f not in internals)}")

# %% [markdown]
# `train` also drew the confusion matrix of the last epoch (`run/confusion_matrix.png`); here it is
# again from the reloaded weights (`reference.app.plots.confusion_matrix`). One column deserves a look:
# when no output neuron fires on a digit, every output PSP sum is 0, and the prediction, the argmax
# over classes, is the first class, 0. Such digits all land in column 0.

# %%
silent = np.concatenate([fresh.forward(test_set.images[i:i + 500]).sum(axis=(0, 2)) == 0
                         for i in range(0, len(test_set.labels), 500)])
wrong = preds != test_set.labels
assert np.all(preds[silent] == 0)
print(f"{silent.sum()} test digits make no output neuron fire; all are predicted 0, and the "
      f"{np.sum(silent & wrong)} of them that are not zeros make {np.sum(silent & wrong) / max(wrong.sum(), 1):.0%} "
      f"of the {wrong.sum()} errors")

fig, ax = plt.subplots(figsize=(6, 5))
plots.confusion_matrix(test_set.labels, preds, ax=ax,
                       title=f"test set after {result['epoch']} epochs ({acc:.2%} correct)")
L.save(fig, "confusion_matrix")

# %% [markdown]
# ## 8. Three neurons while they learn (an animation)
#
# The pictures so far compare before and after. `plots.neuron_snapshot` records what a few neurons do on
# one digit at one moment (membrane `u`, spikes, and the delta TSSL-BP gives them, with its branch), and
# `plots.training_animation` turns a list of such snapshots into an animated GIF (Matplotlib's Pillow
# writer: no ffmpeg). We train a fresh copy of the network on the same batches with `train_step` and
# take a snapshot of layer `hidden_2` on the first test digit every few steps; then we show the three
# neurons whose delta moved the most.

# %%
from reference.optim import AdamW, train_step

watch = Network(CONFIG, seed=SEED)
watch_opt = AdamW(watch.weights, lr=watch.config.network["lr"])
N_WATCH, EVERY = (24, 4) if L.fast else (120, 10)
x0, y0 = test_set.images[:1], test_set.labels[:1]
order = np.random.default_rng(SEED).permutation(len(train_set.labels))
frames, frame_steps = [], []
for step in range(N_WATCH + 1):
    if step % EVERY == 0:
        frames.append(plots.neuron_snapshot(watch, x0, y0, "hidden_2", range(400)))
        frame_steps.append(step)
    if step < N_WATCH:
        idx = order[(step * BATCH) % len(order):][:BATCH]
        train_step(watch, train_set.images[idx], train_set.labels[idx], watch_opt)
moved = np.sum([np.abs(f["delta"]).sum(axis=0) for f in frames], axis=0)
chosen = np.argsort(-moved)[:3]
three = [{**f, "neurons": chosen.tolist(), **{k: f[k][:, chosen] for k in ("u", "s", "delta", "branch")}}
         for f in frames]
gif = plots.training_animation(three, os.path.join(L.out, "neurons_learning.gif"), frame_steps,
                               threshold=watch.params.threshold, fps=2, title=f"digit {int(y0[0])}")
L.show(gif)
print(f"{len(frames)} frames, steps {frame_steps[0]}..{frame_steps[-1]}; neurons {chosen.tolist()} of hidden_2")

# %% [markdown]
# The paper's accuracies ([`docs/paper-notes.md`](../docs/paper-notes.md) section 4) need tens to hundreds
# of epochs, and its MNIST result uses the CNN (`configs/MNIST_CNN.yaml`); `results/` and `figures/` hold
# this project's long runs.
#
# ## Summary
#
# - `train(config, out_dir=..., epochs=...)` runs the authors' loop and leaves `metrics.csv`, weights,
#   a resumable checkpoint and pictures in `out_dir`; `read_metrics` + `plots.learning_curve` redraw it.
# - Training makes the label neuron fire and keeps the others quiet: the diagonal of the spike-count
#   matrix lights up, with the label neuron's count going to that of the spike train that best fits the
#   authors' double-filtered target, not to the desired train's.
# - A digit that leaves the output layer silent is predicted 0 (the argmax of all-zero sums).
# - `plots.membrane_trace` and `plots.spike_raster` on `net.records[i].state` show what any layer does
#   on any input, for any network; `plots.neuron_snapshot` + `plots.training_animation` animate a few
#   neurons over training.

# %%
L.done()
