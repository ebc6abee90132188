# %% [markdown]
# # Lesson 6: the warm-up, or what a quiet neuron learns from
#
# Lessons 4 and 5 built the TSSL-BP delta from spike times: the inter-neuron term lives only where a
# neuron fires, and the intra-neuron term only carries back what some later spike put in. A neuron that
# does not fire during a sample therefore gets **no error at all**: there is no spike time to
# differentiate. At initialisation most neurons of a network are quiet most of the time (section 3 measures
# it for the demo MLP), so pure TSSL-BP leaves much of the network without a gradient, and a neuron that is
# supposed to fire but never does gets nothing that tells it so.
#
# The authors' code handles this with a **warm-up**: wherever a neuron has been quiet for a few steps,
# `delta[k]` is the spike error times a smooth surrogate of `ds/du`, as surrogate-gradient methods do.
#
# You will:
# - see a silent neuron get zero delta from TSSL-BP and a useful one from the warm-up;
# - plot the surrogate `f(u)` (`warmup_surrogate`) and the switch on the neuron's own PSP,
#   `a[k] < 1/(4 tau_s)` (`warmup_mask`), and compute after how many quiet steps it fires;
# - train the demo MLP on real MNIST and watch, per layer, the share of deltas made by each branch
#   (warm-up / inter / intra) change over the mini-batches (`branch_fractions`);
# - compare training with the default rule against `warmup="never"` and `warmup="always"`, and read where
#   the paper and the authors' final code differ.

# %%
from _lesson import Lesson

import time

import matplotlib.pyplot as plt
import numpy as np

from reference.app import plots
from reference.app.data import iterate_minibatches
from reference.losses import kernel_loss, kernel_target
from reference.network import Network
from reference.neuron import lif_forward, psp, psp_kernel
from reference.optim import AdamW, train_step
from reference.params import WARMUP_SIGMA, WARMUP_Z_CLIP, NeuronParams, warmup_psp_threshold
from reference.app.train import evaluate, load_split
from reference.tsslbp import (BRANCH_NAMES, BRANCH_WARMUP, branch_fractions, compose_delta, spike_error,
                              warmup_mask, warmup_surrogate, warmup_term)

L = Lesson("06_warmup")
P = NeuronParams()  # tau_m = 5, tau_s = 3, threshold = 1, T = 5
TH = warmup_psp_threshold(P.tau_s)
print(f"warm-up switch 1/(4 tau_s) = {TH:.4f}; surrogate width sigma = {WARMUP_SIGMA}, z clipped to +-{WARMUP_Z_CLIP}")

# %% [markdown]
# ## 1. A silent neuron gets no TSSL-BP error
#
# One neuron with a weak, constant input: its membrane rises towards `tau_m x` but stays below the
# threshold. The kernel loss asks it to fire the label's train `[0, 1, 1, 1, 1]` (the authors' target,
# `kernel_target`), so its error `g = dL/da` is large. Without the warm-up (`warmup="never"`) its delta is
# zero at every step; with the default rule it is `G[k] f(u[k])`.

# %%
x = np.full((P.n_steps, 1, 1), 0.15)                      # tau_m x = 0.75 < threshold: never fires
st = lif_forward(x, P)
assert st.s.sum() == 0
loss, g = kernel_loss(st.a, np.array([0]), kernel_target(P.n_steps, P.tau_s))
G = spike_error(g, psp_kernel(P.n_steps, P.tau_s))
d_never, _ = compose_delta(g, st, P, warmup="never")
d_default, b_default = compose_delta(g, st, P)
assert np.all(d_never == 0) and np.all(b_default == BRANCH_WARMUP)
assert np.allclose(d_default, warmup_term(G, st.u, P.threshold)) and np.all(d_default < 0)
print(f"membrane u = {np.round(st.u[:, 0, 0], 3).tolist()}; loss {loss:.3f}")
print(f"delta without warm-up: {d_never[:, 0, 0].tolist()}")
print(f"delta with warm-up:    {[f'{v:.4f}' for v in d_default[:, 0, 0]]}  (negative: raise u to lower the loss)")
L.explore(x, g, P)  # live: raise x until it fires, and watch the warm-up give way step by step

# %% [markdown]
# ## 2. The surrogate and the switch
#
# The warm-up delta is `G[k] f(u[k])` with
#
#     f(u) = e^z / ((1 + e^z)^2 * 0.2),   z = clip((threshold - u) / 0.2, -8, 8)      (warmup_surrogate)
#
# the derivative of a sigmoid `1 / (1 + e^z)` of width `0.2` centred on the threshold: a smooth stand-in
# for `ds/du`, largest (`1/(4 * 0.2) = 1.25`) at `u = threshold`, and small but never zero far from it.
# The clip at `|z| = 8` makes it flat beyond `u = threshold +- 1.6`. It applies where
#
#     a[k] < 1/(4 tau_s)                                                              (warmup_mask)
#
# i.e. where the neuron's own output PSP is small: it has not fired recently. `warmup_term` is the
# product `G f(u)`. Everywhere else the TSSL-BP value `inter + intra` stays.

# %%
uu = np.linspace(-1.5, 3.5, 801)
f = warmup_surrogate(uu, P.threshold)
print(f"f at the threshold {warmup_surrogate(np.array([P.threshold]), P.threshold)[0]:.4f}; "
      f"f beyond the clip (|u - threshold| >= {WARMUP_SIGMA * WARMUP_Z_CLIP:g}) {f[0]:.2e}")
# After one spike at step 0 and silence, the PSP is eps[n] after n steps: when does the switch come on?
n_long = 12
a_one = psp(np.eye(n_long)[:, [0]], P.tau_s)[:, 0]        # PSP of a single spike at step 0
quiet = warmup_mask(a_one, P.tau_s)
n_first = int(np.argmax(quiet))
print(f"after a single spike, the warm-up comes back {n_first} steps later "
      f"(PSP {a_one[n_first - 1]:.4f} -> {a_one[n_first]:.4f}, switch at {TH:.4f})")
assert n_first >= 1 and not quiet[:n_first].any()
# With T = 5, check every one of the 32 possible spike trains: the switch is on at step k exactly when the
# neuron fired at none of the steps k - n_first + 1 .. k.
trains = ((np.arange(2 ** P.n_steps)[:, None] >> np.arange(P.n_steps)) & 1).T.astype(float)  # (T, 32)
mask = warmup_mask(psp(trains, P.tau_s), P.tau_s)
recent = np.array([[trains[max(0, k - n_first + 1):k + 1, i].any() for i in range(trains.shape[1])]
                   for k in range(P.n_steps)])
assert np.array_equal(mask, ~recent)
print(f"T = {P.n_steps}: for all {trains.shape[1]} spike trains, warm-up at k <=> no spike in the last {n_first} steps")
only_0 = trains[:, 1]                            # train number 1: a single spike at step 0
assert only_0[0] == 1 and only_0[1:].sum() == 0
print(f"T = {P.n_steps}, one spike at step 0: TSSL-BP at steps {np.flatnonzero(~mask[:, 1]).tolist()}, "
      f"warm-up at steps {np.flatnonzero(mask[:, 1]).tolist()}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(15, 4))
ax = axes[0]
ax.plot(uu, f, color="C0", lw=2, label=r"$f(u)$, width 0.2")
ax.axvline(P.threshold, color="k", ls="--", lw=1, label=r"threshold $V_{th}$")
ax.axvspan(P.threshold - WARMUP_SIGMA * WARMUP_Z_CLIP, P.threshold + WARMUP_SIGMA * WARMUP_Z_CLIP,
           color="C0", alpha=0.07, label=r"$|z| < 8$ (not clipped)")
ax.plot(st.u[:, 0, 0], warmup_surrogate(st.u[:, 0, 0], P.threshold), "o", color="C3",
        label="the silent neuron of section 1")
ax.set_xlabel("membrane u (before reset)")
ax.set_ylabel(r"$f(u)$, surrogate of $ds/du$")
ax.set_title("The warm-up surrogate")
ax.legend(fontsize=8)
ax = axes[1]
ax.semilogy(uu, f, color="C0", lw=2)
ax.axvline(P.threshold, color="k", ls="--", lw=1)
ax.set_xlabel("membrane u")
ax.set_ylabel(r"$f(u)$ (log scale)")
ax.set_title(r"...never zero: flat beyond $u = V_{th} \pm 1.6$")
ax = axes[2]
tt = np.arange(n_long)
ax.bar(tt, a_one, 0.6, color=np.where(quiet, "tab:gray", "tab:red"))
ax.axhline(TH, color="k", ls="--", lw=1, label=r"switch $1/(4\tau_s)$")
ax.bar([0], [0], color="tab:red", label="TSSL-BP (inter/intra)")
ax.bar([0], [0], color="tab:gray", label="warm-up")
ax.set_xlabel("steps since a single spike")
ax.set_ylabel("own PSP a")
ax.set_title("One spike keeps the warm-up off for a few steps")
ax.set_xticks(tt)
ax.legend(fontsize=8)
fig.tight_layout()
L.save(fig, "surrogate_and_switch")

# %% [markdown]
# With `T = 5` steps, that means: a neuron gets the warm-up delta at step `k` exactly when it fired at
# none of the last `n_first` steps (the number printed above, counting the current one; checked on every
# possible spike train). So a neuron that fires in a sample gets TSSL-BP deltas from each spike until
# `n_first` steps after it, when the warm-up returns unless it has fired again (the single spike at step 0
# printed above), and warm-up deltas before its first spike; a neuron that never fires in a sample gets
# only warm-up deltas.
#
# ## 3. The three branches during training
#
# Every backward pass records which branch made each delta (`net.records[i].branch`; codes in
# `BRANCH_NAMES`): **warm-up**, **inter (fired)** (the neuron fired at `k`: inter term plus the reset part
# of the intra term) or **intra (silent)** (silent at `k` and not on warm-up, so soon after a spike: the
# carried leak term alone, 0 where no later spike sends error; `reference.tsslbp.BRANCH_INTRA` defines it). `branch_fractions` turns it into shares of the layer's neuron-steps. We train the demo MLP
# (`configs/demo_MNIST_MLP.yaml`: the authors' 400-400 MLP, batch 100, AdamW lr 5e-4) on real MNIST with
# the authors' training step (`train_step`: forward, kernel loss, TSSL-BP backward, gradient-norm
# clipping, AdamW, weight clipping), and record the shares after every mini-batch.

# %%
N_TRAIN = 4_000 if L.fast else 60_000   # one epoch of the full training set in full mode
N_TEST = 500 if L.fast else 10_000
train_set = load_split("MNIST", "train", limit=N_TRAIN, verbose=False)
test_set = load_split("MNIST", "test", limit=N_TEST, verbose=False)
config = L.path("configs", "demo_MNIST_MLP.yaml")
BATCH = Network(config).config.network["batch_size"]
print(f"MNIST: {len(train_set.labels)} training images ({train_set.source}), {len(test_set.labels)} test images; "
      f"batch {BATCH}")


def run(warmup, seed=0):
    """Train one epoch over train_set with the given warm-up mode; record loss and branch shares."""
    net = Network(config, seed=seed, warmup=warmup)
    opt = AdamW(net.weights, lr=net.config.network["lr"])
    losses, shares = [], {r: [] for r in ("hidden_1", "hidden_2", "output")}
    t0 = time.perf_counter()
    for idx in iterate_minibatches(len(train_set.labels), BATCH, np.random.default_rng(seed)):
        loss, _, _ = train_step(net, train_set.images[idx], train_set.labels[idx], opt)
        losses.append(loss / len(idx))
        for rec in net.records:               # filled by the backward of this step (before the update)
            shares[rec.name].append(branch_fractions(rec.branch))
    _, acc, _ = evaluate(net, test_set)
    print(f"warmup={warmup!r:13s}: {len(losses)} mini-batches in {time.perf_counter() - t0:.1f} s, "
          f"mean loss of the last {min(50, len(losses))} {np.mean(losses[-50:]):.3f} per sample, "
          f"test accuracy {100 * acc:.2f}%")
    return net, np.array(losses), shares, acc


runs = {mode: run(mode) for mode in ("per-neuron", "never", "always")}

# %%
net, losses, shares, _ = runs["per-neuron"]
steps = np.arange(len(losses))
first, last = {}, {}
for name, fr in shares.items():
    first[name], last[name] = fr[0], {k: float(np.mean([f[k] for f in fr[-20:]])) for k in fr[0]}
    print(f"{name}: first mini-batch " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in first[name].items())
          + " | last 20 mini-batches " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in last[name].items()))
warm = BRANCH_NAMES[BRANCH_WARMUP]
fell = [name for name in shares if last[name][warm] < first[name][warm]]
print(f"layers whose warm-up share fell during training: {fell}")
end_warm = [last[name][warm] for name in shares]
assert all(np.diff(end_warm) > 0), "the deeper the layer, the larger its warm-up share"
assert last["output"][warm] > 0.5 and min(end_warm) > 0
acc = {mode: r[3] for mode, r in runs.items()}
assert acc["never"] < acc["per-neuron"]

# %%
fig, axes = plt.subplots(1, 4, figsize=(17, 3.8), gridspec_kw={"width_ratios": [1, 1, 1, 1.1]})
for ax, (name, fr) in zip(axes, shares.items()):
    plots.branch_fractions_curve(steps, fr, ax=ax, title=f"{name}: branch of each delta",
                                 legend=name == "hidden_1")
ax = axes[3]
win = 10 if L.fast else 25
for mode, (_, ls, _, acc) in runs.items():
    smooth = np.convolve(ls, np.ones(win) / win, mode="valid")
    ax.plot(np.arange(len(smooth)) + win - 1, smooth, label=f'warmup="{mode}" (test {100 * acc:.1f}%)')
ax.set_xlabel("training step (mini-batch)")
ax.set_ylabel(f"kernel loss per sample ({win}-batch mean)")
ax.set_title("Training with and without the warm-up")
ax.legend(fontsize=7)
fig.suptitle(f"Demo MLP (784-400-400-10, T = 5) on MNIST: {len(losses)} mini-batches of {BATCH}, "
             "default warm-up (left three)", y=1.02)
fig.tight_layout()
L.save(fig, "branches_during_training")

# %% [markdown]
# Read the stacked areas per layer: grey is the share of neuron-steps whose delta is the warm-up
# surrogate, red the steps where the neuron fired (TSSL-BP's spike-time term), blue the silent steps
# right after a spike (the carried leak term). The printed shares give the numbers at the start and at
# the end of training. Here the deeper a layer, the more of its neuron-steps run on the warm-up (checked
# in code); the output layer, where only the label neuron should fire, stays mostly in
# warm-up: for nine of its ten neurons, silence is the target.
#
# The right panel compares the three modes on the same data and initial weights (test accuracies in its
# legend and printed above). `warmup="never"` is pure TSSL-BP: a neuron silent in a sample gets no error
# from that sample, and a neuron that fires for no input gets no gradient at all; only changes elsewhere
# in the network can wake it. The count below shows how many neurons end up firing for no test digit in
# each mode. `warmup="always"` replaces every TSSL-BP delta by the surrogate (a surrogate-gradient rule
# without the unrolled leak and reset; the ablation of the authors' issue #2).

# %%
for mode, (net_m, _, _, _) in runs.items():
    net_m.forward(test_set.images[:500])
    dead = {r.name: float(np.mean(r.state.s.sum(axis=(0, 1)) == 0)) for r in net_m.records}
    print(f'warmup="{mode}": neurons that fire for none of 500 test digits: '
          + ", ".join(f"{k} {100 * v:.1f}%" for k, v in dead.items()))

# %% [markdown]
# ## 4. Paper and code
#
# The warm-up is where the paper and the authors' final code differ most
# ([`docs/paper-notes.md`](../docs/paper-notes.md) section 6):
#
# - The **paper** describes the warm-up as a phase *before* TSSL-BP takes over, to get quiet neurons
#   firing. The code of the paper's time (`variant="paper2020"`, `--variant paper2020`; paper-notes
#   section 7) switched **whole layers**: a layer whose firing rate over the batch was at most 0.1 took the
#   surrogate for all its neurons and steps (`--rate-threshold` moves that 0.1; the authors lowered it to
#   0.05 in December 2020 before they moved to the per-neuron switch).
# - The **final code** (the fidelity target of this project, and our default `warmup="per-neuron"`)
#   switches **per neuron and per step** on the neuron's own PSP, `a[k] < 1/(4 tau_s)`, at every epoch,
#   for the whole training: the warm-up never ends, as the shares above show.
# - Options: `warmup="always"` (surrogate everywhere: the warm-up-only ablation; the authors' issue #2
#   reports that it trains CIFAR-10 about as well) and `warmup="never"` (pure TSSL-BP), in
#   `Network(..., warmup=...)`, `tsslbp_delta` and `compose_delta`, and `--warmup always|never` on the
#   command line.
# - The carried intra term `c` is updated from the TSSL-BP value `pre[k]` even where the warm-up replaced
#   it (lesson 10 reads this line in the kernel), as in the authors' code.
#
# A layer-wise switch at 0.1 has a consequence for the output layer that one line of arithmetic shows.
# When the network does its job, only the label neuron fires, and it fires its desired train. With the
# paper-era train `[0, 1, 0, 1, 1]` that is 3 spikes in 5 steps for 1 of 10 neurons:

# %%
from reference.paper2020 import RATE_THRESHOLD_2020, desired_train_2020

n_class = 10
ideal_rate = desired_train_2020(P.n_steps).sum() / (n_class * P.n_steps)
print(f"a perfect {n_class}-class output layer fires at rate {ideal_rate:.2f}; "
      f"the layer switch needs more than {RATE_THRESHOLD_2020}: warm-up branch = {ideal_rate <= RATE_THRESHOLD_2020}")

# %% [markdown]
# So the better the output layer gets, the surer it stays on the warm-up surrogate. The paper-era CNN
# runs in `results/` show exactly this: their output layer (kernel loss) fires at about 6% in every recorded
# epoch (results/README.md gives the range), always on the warm-up branch (`figures/fig9_layer_switch.py`, panel c).
#
# Moving the switch shows what that buys. At `--rate-threshold 0.05` (the authors' value of December 2020)
# a trained output layer, at about 5%, straddles the switch and takes the TSSL-BP delta in most batches.
# On the Fashion-MNIST MLP (five seeds, `figures/fig10_mlp_differences.py`) its label neuron then fires
# fewer spikes than `01011` asks for in 35-45% of the training images, against 6% at 0.1: the TSSL-BP
# value `grad_a clamp(1/du) s` is zero at a step without a spike, so it cannot ask a silent step for the
# spike the target wants there, and the surrogate `grad_a f(u)` can. The best-epoch test accuracy moves
# less than the seeds do (-0.15 ± 0.32 points against the same seeds at 0.1): the label neuron still
# fires more than the other nine.
#
# One epoch of a small network is a small experiment: `figures/fig4_ablation.py` trains the ablations
# longer, and `figures/fig5_gradient_flow.py` records these branch shares over five epochs of the
# Fashion-MNIST MLP.

# %%
L.done()
