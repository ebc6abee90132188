# %% [markdown]
# # Lesson 3: the loss, and the error that starts the backward pass
#
# TSSL-BP trains a network to fire *spike sequences*: the label's output neuron should fire a desired
# train of spikes, the others should stay silent. The loss compares the output PSPs with the PSP of that
# desired train, and its derivative `g = dL/da` on the output PSP is what the backward pass (lessons 4 and
# on) carries down through the layers.
#
# You will:
# - see the desired spike train (`reference.losses.desired_spike_train`) and the kernel-loss target
#   (`kernel_target`) in its two forms: the authors' code filters the desired train **twice**, the paper
#   once;
# - compute what the label neuron's loss is when it stays silent and when it fires exactly the desired
#   train, for `T` = 2, 3, 4, 5, 8, 10, and find that with the double filter and few steps, silence is
#   the cheaper answer;
# - apply the three losses of the authors' code (`kernel_loss`, `count_loss`, `softmax_loss`) to a
#   network's output, look at each one's `g = dL/da`, and check it against finite differences;
# - hand `g` to the backward pass (`Network.backward`) and read the prediction (`predict`).

# %%
import csv
import itertools
import os

import numpy as np
import matplotlib.pyplot as plt

from _lesson import Lesson, mnist_images

from reference.losses import (count_loss, desired_spike_train, kernel_loss, kernel_target, output_counts,
                              predict, softmax_loss)
from reference.network import Network
from reference.neuron import psp, psp_kernel
from reference.optim import AdamW, train_step
from reference.tsslbp import spike_error

L = Lesson("03_loss")
rng = np.random.default_rng(0)
tau_s = 3.0                       # the authors' final configs for static images (N-MNIST's: 4)
Ts = (2, 3, 4, 5, 8, 10)

# %% [markdown]
# ## 1. The desired spike train
#
# For classification the label's neuron should fire the train `d`, all other output neurons nothing. The
# authors' code defines `d = [0, 1, 1, 1, 1]` for `T = 5` (silent first step, then a spike at every step)
# and `[0, 1]` repeated for `T` a multiple of 10; for any other `T` it fails. This library generalises
# with a silent first step followed by a spike at every step (equal to theirs at `T = 5`). The paper
# quotes `[0, 1, 0, 1, 1]` (their issue #14; the author says any pattern may be chosen):
# `desired_spike_train(5, pattern=[0, 1, 0, 1, 1])`, or `Network(desired_pattern=...)`.

# %%
for T in Ts:
    print(f"T = {T:2d}: d = {desired_spike_train(T).astype(int).tolist()}")
print(f"paper's pattern: {desired_spike_train(5, pattern=[0, 1, 0, 1, 1]).astype(int).tolist()}")

# %% [markdown]
# ## 2. The kernel loss and its target
#
# The paper's spike-sequence loss compares PSPs, not spikes:
#
# `L = 1/2 sum_{n,i,t} (a^L_i[t] - target_i[t])^2`, with `g = dL/da^L = a^L - target`
#
# (`reference.losses.kernel_loss`, summed over the batch as in the authors' code). The target of the
# label neuron is the desired train seen through the synapse, `eps * d`, so a neuron that fires exactly
# `d` has PSP `psp(d)` and zero loss. That is the paper's form, as the notes give it (paper-notes section 2; `kernel_target(..., filter="single")`).
#
# The authors' code, however, filters the desired train once when it builds the target and once more
# inside the loss, so the target it trains with is `eps * (eps * d)` (`filter="double"`, the default here
# because it is what reproduces their numbers; README, table of differences). The second filter delays
# the target and shrinks it (its sum over time is smaller; for `d = [0, 1, 1, ...]` it lies below the PSP
# of the desired train at every step), so firing `d` is no longer free.

# %%
targets = {T: {f: kernel_target(T, tau_s, f, dtype=np.float64) for f in ("double", "single")} for T in Ts}
for T in Ts:   # the single-filter target IS the PSP of the desired train
    assert np.allclose(targets[T]["single"], psp(desired_spike_train(T), tau_s))
    assert targets[T]["double"].sum() < targets[T]["single"].sum()
    if desired_spike_train(T)[1:].all():
        assert np.all(targets[T]["double"] <= targets[T]["single"] + 1e-12)
print(f"T = 5 double: {np.round(targets[5]['double'], 4).tolist()}")
print(f"T = 5 single: {np.round(targets[5]['single'], 4).tolist()}")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), gridspec_kw={"width_ratios": [1, 1.6]})
for ax, T in zip(axes, (5, 10)):
    t = np.arange(T)
    d = desired_spike_train(T)
    ax.vlines(t[d > 0], 0, 0.12, color="k", lw=3, label="desired spikes d")
    ax.plot(t, targets[T]["single"], "o-", color="C0", label=r"$\epsilon * d$: PSP of d = paper's target")
    ax.plot(t, targets[T]["double"], "s--", color="C3", label=r"$\epsilon * (\epsilon * d)$: authors' target")
    ax.plot(t, np.zeros(T), "x:", color="gray", label="PSP of a silent neuron")
    ax.set_xticks(t)
    ax.set_xlabel("time step t")
    ax.set_ylabel("PSP / target")
    ax.set_ylim(-0.05, 1.0)
    ax.set_title(f"Label neuron's kernel-loss target, T = {T}, tau_s = {tau_s:g}")
axes[0].legend(fontsize=8, loc="upper left")
fig.tight_layout()
L.save(fig, "targets")

# %% [markdown]
# ## 3. Silent or firing: which one does the loss prefer?
#
# Take one output layer and one sample, and compare two answers of the label neuron: silent (`a = 0`,
# loss `1/2 sum target^2`) and firing exactly `d` (`a = psp(d)`). With the paper's single filter the
# second costs nothing. With the double filter both cost something, and which is cheaper depends on `T`.
# Since `T` is small we can also try *every* spike train the neuron could fire (`2^T` of them) and find
# the one the loss likes best.

# %%
def label_loss(spikes, T, target):
    """Kernel loss of one sample whose label neuron (class 0 of 10) fires `spikes` (T,), others silent."""
    a = np.zeros((T, 1, 10))
    a[:, 0, 0] = psp(np.asarray(spikes, float), tau_s)
    return kernel_loss(a, np.array([0]), target)[0]


rows = {}
for T in Ts:
    d = desired_spike_train(T)
    all_trains = np.array(list(itertools.product([0.0, 1.0], repeat=T)))          # (2^T, T)
    for f in ("double", "single"):
        tgt = targets[T][f]
        all_losses = 0.5 * ((psp(all_trains.T, tau_s) - tgt[:, None]) ** 2).sum(axis=0)   # (2^T,)
        best = all_trains[np.argmin(all_losses)]
        rows[T, f] = dict(silent=label_loss(np.zeros(T), T, tgt), desired=label_loss(d, T, tgt),
                          best=all_losses.min(), best_train=best.astype(int), n_best=int(best.sum()))
        assert np.isclose(all_losses[0], rows[T, f]["silent"])       # the all-zeros train is the first

print(f"{'T':>3s} {'filter':7s} {'silent':>8s} {'fires d':>8s} {'best':>8s}  {'best train':32s} (spikes)  cheaper")
for T in Ts:
    for f in ("double", "single"):
        r = rows[T, f]
        cheaper = "silence" if r["silent"] < r["desired"] else "firing d"
        print(f"{T:3d} {f:7s} {r['silent']:8.4f} {r['desired']:8.4f} {r['best']:8.4f}  "
              f"{str(r['best_train'].tolist()):32s} ({r['n_best']} of {int(desired_spike_train(T).sum())})  {cheaper}")

# the claims of this lesson, checked
for T in Ts:
    assert rows[T, "single"]["desired"] < 1e-12 < rows[T, "single"]["silent"]     # paper: d is free
for T in (2, 3):
    assert rows[T, "double"]["silent"] < rows[T, "double"]["desired"]             # authors', few steps: silence wins
for T in (4, 5, 8, 10):
    assert rows[T, "double"]["desired"] < rows[T, "double"]["silent"]
for T in Ts:
    assert rows[T, "double"]["n_best"] < desired_spike_train(T).sum()          # the optimum has fewer spikes than d

# %% [markdown]
# With the double filter and `T = 2` or `3`, a silent label neuron costs *less* than one firing the
# desired train, and the best train of all has fewer spikes than `d`: the loss itself asks the network for
# little or no output activity, the opposite of what the prediction needs (the label neuron must
# out-fire the others). From `T = 4` on, firing `d` is cheaper than silence again, though still not free,
# and the best train still keeps some steps silent. With the paper's single filter (`--target-filter
# single`, `Network(target_filter="single")`) the loss has no such problem: firing `d` is always its exact
# optimum. With the double filter no train is exact (at `T = 5` the best, `00101`, still costs 0.0277), so
# the gradient never vanishes at the best train the label neuron can fire; over a long run this pushes some
# digits past it into trains with extra spikes and the training loss rises while the accuracy stays
# (figure 8 of `figures/`, and `results/README.md`). What this does to training is the subject of the project's figure 3 (accuracy against `T` on
# Fashion-MNIST, both filters, `figures/fig3_time_steps.py`; see `figures/README.md`): the cell below
# prints the best test accuracy of each of its runs if the figure's data (`figures/data/fig3_time_steps.csv`)
# has been made.

# %%
fig3_csv = L.path("figures", "data", "fig3_time_steps.csv")
if os.path.exists(fig3_csv):
    with open(fig3_csv, newline="", encoding="utf-8") as fh:
        fig3 = list(csv.DictReader(fh))
    print("figure 3 (Fashion-MNIST 400-400): best test accuracy (%) per T and target filter")
    filters = sorted({r["target_filter"] for r in fig3})
    print(f"{'T':>3s} " + " ".join(f"{f:>8s}" for f in filters) + "   (epochs)")
    for T in sorted({int(r["n_steps"]) for r in fig3}):
        cells, epochs = [], set()
        for f in filters:
            hit = [r for r in fig3 if int(r["n_steps"]) == T and r["target_filter"] == f]
            cells.append(f"{float(hit[0]['best_test_acc_percent']):8.2f}" if hit else f"{'-':>8s}")
            epochs.update(r["epochs"] for r in hit)
        print(f"{T:3d} " + " ".join(cells) + f"   ({', '.join(sorted(epochs))})")
else:
    print(f"{os.path.relpath(fig3_csv, L.root)} is not there yet: make it with "
          "`python figures/make_all.py --only fig3` (it trains 12 networks)")

# %%
fig, ax = plt.subplots(figsize=(9, 4.5))
k = np.arange(len(Ts))
ratio = {(T, f, key): rows[T, f][key] / rows[T, f]["silent"] for T in Ts for f in ("double", "single")
         for key in ("desired", "best")}
ax.axhline(1, color="C7", lw=2, label="label neuron silent (reference, = 1)")
ax.axhspan(1, 5, color="C3", alpha=0.07)
ax.text(len(Ts) - 1.1, 1.15, "above 1: silence is cheaper", color="C3", ha="right", fontsize=9)
ax.plot(k, [ratio[T, "double", "desired"] for T in Ts], "o-", color="C3", lw=2,
        label=r"fires d, authors' target $\epsilon*(\epsilon*d)$")
ax.plot(k, [ratio[T, "double", "best"] for T in Ts], "s--", color="C2",
        label="best of all $2^T$ trains, authors' target")
ax.plot(k, [ratio[T, "single", "desired"] for T in Ts], "^-", color="C0",
        label=r"fires d, paper's target $\epsilon*d$ (always 0)")
ax.set_xticks(k)
ax.set_xticklabels([f"T={T}\nd={''.join(str(int(v)) for v in desired_spike_train(T))}\n"
                    f"best={''.join(map(str, rows[T, 'double']['best_train']))}" for T in Ts], fontsize=7,
                   family="monospace")
ax.set_xlabel("number of time steps T; desired train d; best train for the authors' target")
ax.set_ylabel("kernel loss / loss when silent")
ax.set_ylim(-0.1, 1.1 * max(ratio[T, "double", "desired"] for T in Ts))
ax.set_title("Label neuron's kernel loss: firing the desired train vs staying silent")
ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
L.save(fig, "silent_vs_desired")

# %% [markdown]
# ## 4. Three losses on a network's output
#
# Now a real output. We take the demo network (`configs/demo_MNIST_MLP.yaml`, the authors' Fashion-MNIST
# 400-400 MLP, here on MNIST), train it for a few quick steps on the fixture's 300 training digits so that its output neurons
# fire (`train_step`, lesson 2), and run test digits through it. The output PSP `out` has shape
# `(T, N, n_class)`. The authors' code offers three losses on it (config key `loss`):
#
# - **kernel** (`kernel_loss(out, labels, net.target)`): the sequence loss above, `g[t] = a[t] - target[t]`,
#   a different error at every step.
# - **count** (`count_loss(out, labels, desired_count, undesired_count)`): compares the "count"
#   `sum_t a_i[t]` with `desired_count` (label neuron) or `undesired_count` (others):
#   `delta_i = (count_i - target_i) / T`, set to 0 in the harmless direction (label neuron above its
#   target, others below theirs), `L = 1/2 sum_{n,i,t} delta_i^2`, and `g[t] = delta` at every step.
# - **softmax** (`softmax_loss(out, labels)`): cross-entropy of a softmax over the counts `sum_t a_i[t]`,
#   averaged over the batch; `g[t] = (softmax - onehot) / N` at every step.
#
# As in lesson 2, the "count" is the output PSP summed over time (their network returns PSPs).

# %%
net = Network(L.path("configs", "demo_MNIST_MLP.yaml"), seed=0)
x_train, y_train = mnist_images(300, "train")
x_test, y_test = mnist_images(100 if L.fast else 300, "test")
opt = AdamW(net.weights, lr=net.config.network["lr"])
batch = net.config.network["batch_size"]
for epoch in range(5 if L.fast else 20):
    order = rng.permutation(len(y_train))
    for i in range(0, len(order), batch):
        train_step(net, x_train[order[i:i + batch]], y_train[order[i:i + batch]], opt)
print(f"demo MLP after {opt.step_count} AdamW steps on {len(y_train)} training digits")

out = net.forward(x_test)                                  # (T, N, 10) float32
spikes = net.records[-1].state.s                          # (T, N, 10)
T = net.n_steps
cfg = net.config.network
losses = {
    "kernel": kernel_loss(out, y_test, net.target),
    "count": count_loss(out, y_test, cfg["desired_count"], cfg["undesired_count"]),
    "softmax": softmax_loss(out, y_test),
}
for name, (loss, g) in losses.items():
    print(f"{name:8s} loss {loss:10.4f} on {len(y_test)} digits; g = dL/da has shape {g.shape}")
assert np.isclose(net.loss(out, y_test)[0], losses[cfg["loss"]][0])   # the config's loss is the kernel loss

# %% [markdown]
# For one digit: the output PSP and the `g` of each loss, as (time step x class) maps; the label's column
# is framed. Red means `g > 0` (gradient descent lowers that PSP), blue `g < 0` (raises it). The kernel
# loss's error changes from step to step, following the target's shape; the count and softmax losses put
# the same error on every step. The count loss leaves alone every neuron already on the harmless side of
# its target (white columns). Look at the label neuron under the kernel loss: wherever its PSP is above
# the authors' double-filtered target, `g > 0` and gradient descent lowers it, even on a digit the network
# already classifies correctly: section 3's effect, at work at `T = 5`.

# %%
# a correctly predicted digit whose label neuron fires most, preferring one where other output neurons fire
# too (if none does, the label neuron's alone)
score = [spikes[:, n, y_test[n]].sum() + 0.5 * (spikes[:, n].sum(axis=0) > 0).sum()
         if net.predict(out)[n] == y_test[n] else -1 for n in range(len(y_test))]
n0 = int(np.argmax(score))
lab = y_test[n0]
fig, axes = plt.subplots(1, 4, figsize=(15, 3.6), layout="constrained")
panels = [("output PSP $a^L_i[t]$", out[:, n0], "viridis", None)]
panels += [(f"{name} loss: g = dL/da", g[:, n0], "RdBu_r", float(np.abs(g[:, n0]).max()) or 1.0)
           for name, (_, g) in losses.items()]
for ax, (title, data, cmap, lim) in zip(axes, panels):
    kw = dict(vmin=-lim, vmax=lim) if lim else {}
    im = ax.imshow(data, cmap=cmap, aspect="auto", **kw)
    ax.add_patch(plt.Rectangle((lab - 0.5, -0.5), 1, T, fill=False, ec="k", lw=2))
    ax.set_xticks(range(10))
    ax.set_yticks(range(T))
    ax.set_xlabel("output neuron (class)")
    ax.set_ylabel("time step t")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.85)
fig.suptitle(f"One test digit (label {lab}, framed): the output and the error each loss sends back")
L.save(fig, "g_per_loss")
print(f"digit {n0}: label {lab}; output spike counts {spikes[:, n0].sum(axis=0).astype(int).tolist()}")
print(f"  counts sum_t a: {np.round(out[:, n0].sum(axis=0).astype(float), 3).tolist()}")
g_lab = losses["kernel"][1][:, n0, lab]
print(f"  kernel loss, label neuron: PSP {np.round(out[:, n0, lab].astype(float), 3).tolist()}, "
      f"target {np.round(net.target.astype(float), 3).tolist()}, g > 0 at steps {np.flatnonzero(g_lab > 0).tolist()}")
assert (g_lab > 0).any()
g_count = losses["count"][1][:, n0]
assert np.all(g_count == g_count[0])                      # the same error at every step
print(f"  count loss: {int((g_count[0] == 0).sum())} of 10 neurons get g = 0 (harmless side of their target)")

# %% [markdown]
# ### What the count's target asks of the label neuron
#
# Since the "count" is a PSP sum, a spike does not count one: a spike at step `k` (`k = 0 .. T-1`) adds
# `sum_{m < T-k} eps[m] = 1 - (1 - 1/tau_s)^(T-k)`, less the later it comes. So whether `desired_count` can
# be met, and by which trains, depends on `tau_s`. Below, all 32 spike trains at `T = 5` sorted by their
# count, for `tau_s = 2` (the configs of the paper's time) and `tau_s = 3` (the final configs), against
# the CNN configs' `desired_count = 4` and `undesired_count = 1`. At `tau_s = 2` only `11111` (4.03) is at
# zero loss; the next, `11110`, counts 3.53 and still gets an error. So the loss keeps asking the label
# neuron for a spike at step 0, and that needs spikes at step 0 in every layer below it: a layer's input
# at step 0 is the PSP of the step-0 spikes under it alone. At `tau_s = 3` no train reaches 4, and the
# error never vanishes. The paper-era Fashion-MNIST CNN trains with this loss at `tau_s = 2`;
# `results/README.md` shows what it does to a long run (`python -m reference diagnose ... --trains 8`
# lists the label neuron's trains with their count loss).

# %%
trains = ((np.arange(32)[:, None] >> np.arange(4, -1, -1)) & 1).astype(np.float32)   # (32, 5), binary order
names = ["".join(map(str, t.astype(int))) for t in trains]
counts = {ts: psp(np.ascontiguousarray(trains.T), ts).sum(axis=0).astype(np.float64) for ts in (2.0, 3.0)}
order = np.argsort(-counts[2.0], kind="stable")              # one order for both bars: by the tau_s = 2 count
reach = {ts: [names[j] for j in order if counts[ts][j] >= 4] for ts in counts}   # trains at zero label loss
fig, ax = plt.subplots(figsize=(11, 3.8), layout="constrained")
for i, ts in enumerate((2.0, 3.0)):
    ax.bar(np.arange(32) + (i - 0.5) * 0.4, counts[ts][order], width=0.4, color=f"C{i}", label=f"tau_s = {ts:g}")
    top = int(np.argmax(counts[ts]))
    print(f"tau_s = {ts:g}: largest count {counts[ts][top]:.4f} ({names[top]}); trains reaching desired_count 4: {reach[ts]}")
assert reach[2.0] == ["11111"] and np.isclose(counts[2.0][order[1]], 3.53125)
assert counts[3.0].max() < 4 and np.isclose(counts[3.0].max(), 3 + 2 * (2 / 3) ** 5)   # 5 - sum_j (2/3)^j, j = 1..5
for level, name in ((4, "desired_count 4 (label neuron)"), (1, "undesired_count 1 (others)")):
    ax.axhline(level, color="k", ls="--" if level == 4 else ":", lw=1, label=name)
ax.set_xticks(range(32))
ax.set_xticklabels([names[j] for j in order], rotation=90, fontsize=7, family="monospace")
ax.set_xlabel("the 32 spike trains at T = 5 (steps 0..4), sorted by their count at tau_s = 2")
ax.set_ylabel("count = sum_t a[t]")
ax.set_title("The count loss's targets against what each spike train counts")
ax.legend(fontsize=8, loc="upper right")
L.save(fig, "count_targets")

# %% [markdown]
# ## 5. `g` really is `dL/da`, and it starts the backward pass
#
# Each loss function returns the loss and its gradient with respect to the output PSP. A finite-difference
# check on one digit's `T x 10` entries (in float64, nudging one `a_i[t]` at a time) confirms that `g` is
# the derivative of the returned loss.

# %%
a64 = out.astype(np.float64)
fns = {"kernel": lambda a: kernel_loss(a, y_test, net.target.astype(np.float64)),
       "count": lambda a: count_loss(a, y_test, cfg["desired_count"], cfg["undesired_count"]),
       "softmax": lambda a: softmax_loss(a, y_test)}
h = 1e-6
for name, fn in fns.items():
    _, g = fn(a64)
    fd = np.zeros((T, 10))
    for t_, i_ in itertools.product(range(T), range(10)):
        ap, am = a64.copy(), a64.copy()
        ap[t_, n0, i_] += h
        am[t_, n0, i_] -= h
        fd[t_, i_] = (fn(ap)[0] - fn(am)[0]) / (2 * h)
    err = np.abs(fd - g[:, n0]).max() / max(np.abs(g[:, n0]).max(), 1e-12)
    print(f"{name:8s} max |finite difference - g| / max|g| = {err:.1e}")
    assert err < 1e-5

# %% [markdown]
# The whole backward pass starts from this `g`: `net.backward(g)` runs TSSL-BP layer by layer, from the
# output down, and returns the weight gradients (`net.gradients(x, y)` does forward, loss and backward in
# one call). The first thing it does with `g` in the output layer is to turn the error on the neuron's PSP
# into the error on each of its spikes, `G[k] = sum_{m >= k} eps[m-k] g[m]` (`reference.tsslbp.spike_error`;
# a spike at `k` raises the PSP at every later step `m` by `eps[m-k]`; `G[k] > 0` means one more spike at
# `k` would raise the loss, `G[k] < 0` that it would lower it). Lesson 4 continues from there.
# Below: the three losses' weight-gradient norms per layer, and `g` and `G` of the label neuron.

# %%
for name, (_, g) in losses.items():
    grads = net.backward(g)                 # uses the records of the last forward (x_test)
    norms = ", ".join(f"{k} {np.linalg.norm(v):.3g}" for k, v in grads.items())
    print(f"{name:8s} |dL/dW|: {norms}")

eps = psp_kernel(T, net.params.tau_s)
g_kernel = losses["kernel"][1].astype(np.float64)
G = spike_error(g_kernel, eps)                                  # (T, N, 10)
m_ = np.arange(T)
G_by_hand = np.array([sum(eps[m - k] * g_kernel[m, n0, lab] for m in m_ if m >= k) for k in m_])
assert np.allclose(G[:, n0, lab], G_by_hand)
print(f"label neuron of digit {n0}: g = {np.round(g_kernel[:, n0, lab], 3).tolist()}")
print(f"                          G = {np.round(G[:, n0, lab], 3).tolist()}")

# %% [markdown]
# ## 6. Prediction
#
# The predicted class is the output neuron with the largest count: `predict(out)` = `argmax_i sum_t a_i[t]`
# (the authors' PSP sum, `Network.predict` uses the network's `count_of`), or with `count_of="spikes"` the
# true number of spikes, `argmax_i sum_t s_i[t]`. They can differ in two ways. Where several neurons tie on
# spikes, the PSP sum prefers the one that fired earlier, while the spike count takes the lowest index (as
# both do when every neuron is silent: class 0). And since an early spike is worth more than a late one
# (lesson 1), a neuron with fewer but earlier spikes can occasionally have the larger PSP sum.

# %%
pred_psp = predict(out)                                        # (N,)
pred_spk = predict(out, spikes, count_of="spikes")
counts_psp, counts_spk = output_counts(out), output_counts(out, spikes, "spikes")   # (N, 10) each
ties = (counts_spk == counts_spk.max(axis=1, keepdims=True)).sum(axis=1) > 1
silent = counts_spk.max(axis=1) == 0
print(f"accuracy on {len(y_test)} test digits: PSP-sum count {np.mean(pred_psp == y_test):.1%}, "
      f"spike count {np.mean(pred_spk == y_test):.1%}")
print(f"digits with a tie for the most spikes: {int(ties.sum())} (all outputs silent: {int(silent.sum())}); "
      f"the two predictions differ on {int((pred_psp != pred_spk).sum())}")
differ = pred_psp != pred_spk
print(f"  of these, on a tie: {int((differ & ties).sum())}; PSP sum outranking a higher spike count: "
      f"{int((differ & ~ties).sum())}")
assert np.array_equal(pred_psp, net.predict(out))

# %% [markdown]
# ## What's next
#
# Lesson 4 takes `g` into the output layer and follows TSSL-BP's terms one by one: the spike error `G`, the
# inter-neuron term through spike times, the intra-neuron term through reset and leak, and the warm-up.

# %%
L.done()
