# %% [markdown]
# # Lesson 1: one spiking neuron
#
# A spiking network is built from one simple unit: a *leaky integrate-and-fire* (LIF) neuron whose output
# spikes are smoothed by a synapse into a *post-synaptic potential* (PSP). TSSL-BP differentiates through
# exactly this unit, so before any network or gradient we look at one neuron, step by step, with the
# library's own forward pass (`reference.neuron`).
#
# You will:
# - drive one LIF neuron with an input current and watch its membrane `u` integrate, leak, cross the
#   threshold, spike and reset (`lif_forward`, `plots.membrane_trace`);
# - meet the PSP kernel `eps[k] = theta_s (1 - theta_s)^k` and see that a neuron's output `a` is its spike
#   train filtered by it (`psp_kernel`, `psp`);
# - see what the membrane time constant `tau_m`, the synaptic time constant `tau_s` and the number of time
#   steps `T` do;
# - learn the names used here and in the authors' code (a symbol table);
# - read spike counts and firing rates from a recorded layer.

# %%
import numpy as np
import matplotlib.pyplot as plt

from _lesson import Lesson

from reference.app import plots
from reference.neuron import lif_forward, psp, psp_kernel
from reference.params import NeuronParams

L = Lesson("01_one_neuron")
np.random.seed(0)
rng = np.random.default_rng(0)

P = NeuronParams()  # the authors' final configs: tau_m = 5, tau_s = 3, threshold = 1, T = n_steps = 5
print(P, f"theta_m = 1/tau_m = {P.theta_m:.4f}, theta_s = 1/tau_s = {P.theta_s:.4f}")

# %% [markdown]
# ## 1. Integrate, leak, fire, reset
#
# Time is discrete, `t = 0 .. T-1`. At every step the neuron receives an input current `x[t]` (in a network,
# `x_i[t] = sum_j W_ij a_j[t]`, the weighted PSPs of the previous layer). Its membrane first leaks a
# fraction `theta_m = 1/tau_m` of what it held, then integrates the current:
#
# `du[t] = -theta_m u_r[t-1] + x[t]`, `u[t] = u_r[t-1] + du[t]`
#
# It fires when the membrane is *strictly* above the threshold, `s[t] = 1 if u[t] > threshold`, and is then
# reset to zero: the state carried to the next step is `u_r[t] = u[t] (1 - s[t])`. The library keeps the
# **pre-reset** `u[t]` and the increment `du[t]` (the backward pass needs both; `u` is also the trace one
# plots against the threshold). All of this is `reference.neuron.lif_forward(x, params)`, which takes `x` of
# shape `(T, ...)`: time first, then any number of neurons. One neuron is just a `(T,)` vector.
#
# To see the dynamics we run 20 steps here (the paper uses `T = 5`; section 3 comes back to that), with a
# current that switches on, stays on, and then drops to a level too weak to reach the threshold.

# %%
T_demo = 20
x = np.zeros(T_demo)
x[2:12] = 0.45   # strong enough: the membrane climbs to the threshold in a few steps
x[12:] = 0.15    # weak: leak and input balance at x / theta_m = 0.75, below threshold
state = lif_forward(x, P)     # NeuronState with u, du, s, a, each (T,)
u_after_reset = state.u * (1 - state.s)

print(" t     x[t]    du[t]    u[t]  s[t]  u_r[t]    a[t]")
for t in range(12):
    print(f"{t:2d}  {x[t]:6.3f}  {state.du[t]:7.3f}  {state.u[t]:6.3f}  {int(state.s[t]):3d}  "
          f"{u_after_reset[t]:6.3f}  {state.a[t]:6.3f}")

# the recorded numbers obey the update rule exactly:
u_r_prev = np.concatenate([[0.0], u_after_reset[:-1]])
assert np.allclose(state.du, -P.theta_m * u_r_prev + x)
assert np.allclose(state.u, u_r_prev + state.du)
L.explore(x, np.zeros_like(x), P)  # this neuron on the site's page: drag its current, watch it fire
assert np.array_equal(state.s, (state.u > P.threshold).astype(float))
assert state.s[:2].sum() == 0 and state.s[2:12].sum() > 0 and state.s[12:].sum() == 0
print(f"spikes at t = {np.flatnonzero(state.s).tolist()}")

# %% [markdown]
# Three panels of the same run: the input current, the membrane (pre-reset `u`, drawn by
# `plots.membrane_trace`, with the reset to 0 after each spike drawn in red), and
# the spikes with the neuron's output PSP `a` (next section).

# %%
t_axis = np.arange(T_demo)
fig, axes = plt.subplots(3, 1, figsize=(8, 7.5), sharex=True, gridspec_kw={"height_ratios": [1, 2, 1.4]})
axes[0].step(t_axis, x, where="mid", color="C2")
axes[0].set_ylabel("input current $x[t]$")
axes[0].set_title("One LIF neuron (tau_m = 5, tau_s = 3, threshold 1)")
plots.membrane_trace(state.u, state.s, P.threshold, ax=axes[1], label="u (before reset)", color="C0")
fired = state.s > 0
axes[1].vlines(t_axis[fired], 0, state.u[fired], color="C3", ls=":", lw=1.5, label="reset to 0 after the spike")
axes[1].plot(t_axis[fired], u_after_reset[fired], ls="none", marker="o", mfc="white", color="C3",
             label=r"$u_r[t]=u[t](1-s[t])$, carried to t+1")
axes[1].set_xlabel("")
axes[1].legend(loc="upper right", fontsize=8)
plots.psp_trace(state.a, state.s, ax=axes[2], label="output PSP $a[t]$")
axes[2].legend(loc="upper right", fontsize=8)
axes[2].set_xlabel("time step t  (ticks at the bottom: spikes $s[t]=1$)")
fig.tight_layout()
L.save(fig, "membrane")

# %% [markdown]
# ## 2. The PSP: what a spike sends to the next layer
#
# A neuron does not pass its raw 0/1 spikes on. Each spike goes through a first-order synapse,
#
# `a[t] = (1 - theta_s) a[t-1] + theta_s s[t]`, `a[-1] = 0`,
#
# so the output `a` is the spike train convolved with the **PSP kernel** `eps[k] = theta_s (1 - theta_s)^k`
# (`reference.neuron.psp_kernel`): `a[t] = sum_{k <= t} eps[t-k] s[k]`. The kernel is the response to a
# single spike. It is normalised by `theta_s = 1/tau_s` (the authors' `glv.syn_a`; their issue #4 asks why
# it is divided by `tau_s`: this is why), so it sums to `1 - (1 - theta_s)^T`: below one, approaching one as
# `T` grows (the sum at `T = 5` is printed below; it is well short of one). The function
# `reference.neuron.psp(s, tau_s)` applies the filter to any `(T, ...)` array; `lif_forward` returns the
# same thing as `state.a`.

# %%
eps = psp_kernel(T_demo, P.tau_s)
one_spike = np.zeros(T_demo)
one_spike[0] = 1
assert np.allclose(psp(one_spike, P.tau_s), eps)                        # the kernel IS the response to one spike
assert np.allclose(np.convolve(state.s, eps)[:T_demo], state.a)         # a = eps * s
assert np.allclose(psp(state.s, P.tau_s), state.a)                      # the same filter, by the library
print(f"eps[:5] = {np.round(eps[:5], 4).tolist()}")
print(f"sum of eps over T = 5: {psp_kernel(5, P.tau_s).sum():.4f} "
      f"(= 1 - (1 - theta_s)^5 = {1 - (1 - P.theta_s) ** 5:.4f})")
assert psp_kernel(5, P.tau_s).sum() < 0.9   # at T = 5 the kernel's mass is clearly below one

# %% [markdown]
# In a network the current itself is made of PSPs: `x[t] = sum_j W_j a_j[t]`, the weighted PSPs of the
# presynaptic neurons. Here three presynaptic neurons with fixed spike trains drive our neuron through
# weights `W` (one inhibitory): the whole chain *spikes -> PSP -> weighted sum -> membrane -> spikes -> PSP*
# that a network layer repeats.

# %%
pre_s = np.zeros((T_demo, 3))
pre_s[[1, 2, 3, 4, 6, 8], 0] = 1        # an early burst
pre_s[[5, 7, 9, 11, 13, 15], 1] = 1     # a regular train
pre_s[[10, 11, 12, 13], 2] = 1          # an inhibitory burst
W = np.array([1.0, 0.8, -1.5])
pre_a = psp(pre_s, P.tau_s)              # (T, 3): each presynaptic PSP
x_net = pre_a @ W                        # (T,): the current x[t] = sum_j W_j a_j[t]
post = lif_forward(x_net, P)

fig, axes = plt.subplots(4, 1, figsize=(8, 8.5), sharex=True, gridspec_kw={"height_ratios": [1, 1.3, 1, 1.6]})
axes[0].eventplot([np.flatnonzero(pre_s[:, j]) for j in range(3)], colors=["C0", "C1", "C2"],
                  lineoffsets=[0, 1, 2], linelengths=0.6)
axes[0].set_title("Presynaptic spikes and PSPs feed one neuron")
axes[0].set_yticks([0, 1, 2])
axes[0].set_yticklabels([f"j={j}, W={w:+.1f}" for j, w in enumerate(W)], fontsize=8)
axes[0].set_ylabel("presynaptic\nspikes $s_j[t]$")
for j in range(3):
    axes[1].plot(t_axis, pre_a[:, j], marker="s", ms=3, label=f"$a_{j}[t]$ (W={W[j]:+.1f})")
axes[1].set_ylabel("presynaptic PSP")
axes[1].legend(fontsize=8, ncol=3)
axes[2].step(t_axis, x_net, where="mid", color="C2")
axes[2].axhline(0, color="gray", lw=0.5)
axes[2].set_ylabel(r"$x[t]=\sum_j W_j a_j[t]$")
plots.membrane_trace(post.u, post.s, P.threshold, ax=axes[3], label="u", color="C0")
axes[3].legend(loc="upper right", fontsize=8)
fig.tight_layout()
L.save(fig, "presynaptic")
print(f"postsynaptic spikes at t = {np.flatnonzero(post.s).tolist()}")

# %% [markdown]
# ## 3. What `tau_m`, `tau_s` and `T` do
#
# - `tau_m` (membrane time constant) sets the leak: a constant current `x` drives the membrane towards
#   `x tau_m` (where leak `theta_m u` equals input). If `x tau_m` is not above the threshold the neuron
#   never fires; a longer `tau_m` means less leak and earlier, more frequent spikes.
# - `tau_s` (synaptic time constant) sets how long a spike's PSP lasts: `tau_s = 1` gives `a = s` (no
#   smoothing); a long `tau_s` spreads each spike thinly over many steps. It changes `a` (and so the next
#   layer's current), not this neuron's membrane.
# - `T` (number of steps) bounds what a neuron can say: at most `T` spikes, so its firing rate
#   (`count / T`) can only take `T + 1` values. TSSL-BP's point is to work with very few steps (`T = 5`),
#   where a neuron fires a handful of spikes at most, and a weak current that makes it fire now and then
#   in a long run can leave it silent for all 5 steps (the membrane has not yet climbed to the threshold).

# %%
x_const = np.full(T_demo, 0.3)
tau_ms, tau_ss, Ts = (2.0, 5.0, 20.0), (1.0, 3.0, 10.0), (5, 20, 100)
currents = np.linspace(0.0, 1.2, 241)

fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
# (a) tau_m: membrane traces under the same constant current
for i, tm in enumerate(tau_ms):
    st = lif_forward(x_const, P.replace(tau_m=tm))
    plots.membrane_trace(st.u, st.s, P.threshold, ax=axes[0, 0], label=f"tau_m={tm:g}", color=f"C{i}")
axes[0, 0].set_title(f"vary tau_m, constant current x = {x_const[0]:g}")
axes[0, 0].set_xticks(range(0, T_demo, 2))
handles, labels = axes[0, 0].get_legend_handles_labels()
keep = {lab: h for h, lab in zip(handles, labels) if "spikes" not in lab}   # one entry per line
axes[0, 0].legend(keep.values(), keep.keys(), fontsize=7, loc="lower right")
# (b) tau_s: the same spike train, filtered with different synapses
st5 = lif_forward(x_const, P)
for i, ts in enumerate(tau_ss):
    plots.psp_trace(psp(st5.s, ts), st5.s if i == 0 else None, ax=axes[0, 1], label=f"tau_s={ts:g}")
axes[0, 1].set_title("vary tau_s: PSP of the same spikes (ticks)")
axes[0, 1].set_xticks(range(0, T_demo, 2))
axes[0, 1].legend(fontsize=8)
# (c) T: the paper's 5 steps are the first 5 of a longer run
plots.membrane_trace(st5.u, st5.s, P.threshold, ax=axes[0, 2], label="u", color="C0")
axes[0, 2].axvspan(-0.5, 4.5, color="C1", alpha=0.15, label="the paper's T = 5")
axes[0, 2].set_xticks(range(0, T_demo, 2))
axes[0, 2].set_title(f"T: x = {x_const[0]:g}, the first 5 steps hold {int(st5.s[:5].sum())} spike(s)")
axes[0, 2].legend(fontsize=8, loc="lower right")

# (d) firing rate against constant current, per tau_m (T = 100 steps)
rates_tm = {}
for i, tm in enumerate(tau_ms):
    xs = np.broadcast_to(currents, (100, len(currents)))          # (T, n_currents): one neuron per current
    rates_tm[tm] = lif_forward(xs, P.replace(tau_m=tm)).s.mean(axis=0)
    axes[1, 0].plot(currents, rates_tm[tm], color=f"C{i}", label=f"tau_m={tm:g}")
    axes[1, 0].axvline(P.threshold / tm, color=f"C{i}", ls=":", lw=1)
axes[1, 0].set_xlabel("constant current x")
axes[1, 0].set_ylabel("firing rate (spikes / step)")
axes[1, 0].set_title("rate vs current (dotted: x = threshold / tau_m)")
axes[1, 0].legend(fontsize=8)
# (e) the kernels
for i, ts in enumerate(tau_ss):
    k = psp_kernel(T_demo, ts)
    axes[1, 1].plot(t_axis, k, marker="o", ms=3, color=f"C{i}",
                    label=f"tau_s={ts:g}: sum over 5 steps {k[:5].sum():.2f}")
axes[1, 1].set_xlabel("steps after the spike k")
axes[1, 1].set_ylabel(r"$\epsilon[k]=\theta_s(1-\theta_s)^k$")
axes[1, 1].set_title("the PSP kernel")
axes[1, 1].set_xticks(range(0, T_demo, 2))
axes[1, 1].legend(fontsize=8)
# (f) rate vs current for different T: few steps, coarse rates
for i, T in enumerate(Ts):
    xs = np.broadcast_to(currents, (T, len(currents)))
    axes[1, 2].step(currents, lif_forward(xs, P).s.mean(axis=0), where="post", color=f"C{i}", label=f"T={T}")
axes[1, 2].set_xlabel("constant current x")
axes[1, 2].set_ylabel("spike count / T")
axes[1, 2].set_title("rate vs current: T = 5 allows only 6 values")
axes[1, 2].legend(fontsize=8)
fig.suptitle("What tau_m, tau_s and T do (defaults tau_m = 5, tau_s = 3, threshold 1)", y=1.0)
fig.tight_layout()
L.save(fig, "time_constants")

# the claims of the text, checked on these runs
assert all(rates_tm[tm][currents * tm <= P.threshold].max() == 0 for tm in tau_ms)  # x tau_m <= threshold: silent
assert np.all(rates_tm[20.0] >= rates_tm[5.0]) and np.all(rates_tm[5.0] >= rates_tm[2.0])  # less leak, more spikes
assert np.allclose(psp(st5.s, 1.0), st5.s)  # tau_s = 1: the PSP is the spike train itself
rate_T5 = lif_forward(np.broadcast_to(currents, (5, len(currents))), P).s.mean(axis=0)
rate_T100 = lif_forward(np.broadcast_to(currents, (100, len(currents))), P).s.mean(axis=0)
assert len(np.unique(rate_T5)) <= 6
weak = (rate_T100 > 0) & (rate_T5 == 0)
assert weak.any()
print(f"currents {currents[weak].min():.3f} .. {currents[weak].max():.3f} fire in 100 steps "
      f"(rate up to {rate_T100[weak].max():.3f}) but never within T = 5")
for tm in tau_ms:
    i_on = np.argmax(rates_tm[tm] > 0)
    print(f"tau_m = {tm:4g}: first fires at x = {currents[i_on]:.3f} (threshold / tau_m = {P.threshold / tm:.3f})")

# %% [markdown]
# ## 4. Names: this project, the paper and the authors' code
#
# The most common question on the authors' repository (their issue #11) is what the variables of their
# `functions/tsslbp.py` mean. The dictionary, used in every lesson, is the table of
# [`docs/paper-notes.md`](../docs/paper-notes.md) section 6: `u`, `du`, `s`, `a` are their `mems`,
# `mem_updates`, `outputs`, `syns_posts` (what you have just plotted); the backward rows (`grad_delta`,
# `grad_a`, `partial_u`, `partial_a`, `theta`, `grad`) are lessons 4 and later, with the sign convention
# of each.
#
# Also: `theta_m = 1/tau_m` and `theta_s = 1/tau_s` (the authors read `tau_m`, `tau_s` from the config),
# `T` is their `n_steps`, and the threshold is each layer's config key `threshold`. In this library,
# `NeuronState` fields are `u`, `du`, `s`, `a` (`reference.neuron`), and the backward functions are named
# after the terms (`spike_error` for `G`, `inter_neuron_term`, `intra_neuron_term`, `warmup_term`, in
# `reference.tsslbp`).
#
# Three warnings on notation, for all lessons:
# - `t`, `k` and `m` are all **time steps** (0 .. T-1). In the backward lessons `k` is the step being
#   differentiated (the spike or membrane at `k`) and `m >= k` a later step whose PSP `a[m]` it affects;
#   the kernel is indexed by the lag between them, `eps[m-k]` (in general `eps[k]`, `k` steps after a
#   spike). (Only inside the Numba kernel read in lesson 10 is `m` a neuron index.)
# - Three different "theta"s: `theta_m = 1/tau_m` and `theta_s = 1/tau_s` are our leak and synapse
#   factors; the authors' variable `theta` in `functions/tsslbp.py` is our carried term `c` (table above);
#   and the pooling layers' config key `theta` (default 1.1) is the fixed weight of a pooling window.

# %% [markdown]
# ## 5. Reading spike counts and firing rates
#
# The authors' issue #15 asks how to plot the membrane potential and count firing rates. With the state
# recorded by `lif_forward` (or, in a network, `net.records[i].state`, lesson 2) it is one line each:
#
# - spike count of each neuron: `state.s.sum(axis=0)` (time is axis 0);
# - firing rate of each neuron: `state.s.mean(axis=0)` = count / T (spikes per step);
# - mean rate of the whole layer: `state.firing_rate`;
# - membrane of neuron `i`: `plots.membrane_trace(state.u[:, i], state.s[:, i])` (pre-reset `u`, threshold,
#   spikes marked).
#
# Careful with the word "count": the authors' network returns PSPs, so what their code calls the output
# "spike count" (for prediction and the count loss) is the PSP summed over time, `state.a.sum(axis=0)`
# (`reference.losses.output_counts`). A spike at step `t` adds
# `sum_{k < T-t} eps[k] = 1 - (1 - theta_s)^(T-t)` to it: the most for a spike at step 0 (still below one
# at `T = 5`, printed below), only `theta_s` for a spike at the last step. So the PSP sum mostly follows
# the spike count, but it also weighs timing: among equal counts it prefers earlier spikes, and a few
# early spikes can even outweigh one more spike fired late (checked below).
# Below: 40 neurons, the paper's `T = 5`, each with its own mean current plus noise over time.

# %%
n_neurons = 40
mean_x = rng.uniform(0.0, 1.0, n_neurons)                                      # (40,)
layer_x = mean_x + 0.25 * rng.standard_normal((P.n_steps, n_neurons))         # (T, 40)
layer = lif_forward(layer_x, P)
count = layer.s.sum(axis=0)                # (40,) spikes per neuron
rate = layer.s.mean(axis=0)                # (40,) spikes per step
psp_count = layer.a.sum(axis=0)            # (40,) the authors' "count"
assert np.allclose(rate, count / P.n_steps)
print(f"mean firing rate of the layer: {layer.firing_rate:.3f} spikes/neuron/step; "
      f"{int((count == 0).sum())} of {n_neurons} neurons silent; max count {int(count.max())} of T = {P.n_steps}")
# earlier spikes weigh more in the PSP sum: among neurons with the same count, rank by psp_count
for c in np.unique(count[count > 0]):
    same = count == c
    print(f"neurons with {int(c)} spike(s): {int(same.sum()):2d}, their PSP sums range "
          f"{psp_count[same].min():.3f} .. {psp_count[same].max():.3f}")

# what one spike at step t adds to the PSP sum, and an inversion of the order at T = 5
per_spike = psp_kernel(P.n_steps, P.tau_s).cumsum()[::-1]     # (T,): spike at t adds per_spike[t]
assert np.allclose(per_spike, 1 - (1 - P.theta_s) ** (P.n_steps - np.arange(P.n_steps)))
print(f"PSP-sum value of one spike at t = 0..{P.n_steps - 1}: {np.round(per_spike, 3).tolist()} "
      f"(the largest, at t = 0, is the kernel's sum over T = {P.n_steps}: {per_spike[0]:.3f} < 1)")
assert per_spike[0] < 1
early2, late3 = np.zeros(P.n_steps), np.zeros(P.n_steps)
early2[:2], late3[-3:] = 1, 1
print(f"2 spikes at t=0,1: PSP sum {psp(early2, P.tau_s).sum():.3f};  "
      f"3 spikes at t=2,3,4: {psp(late3, P.tau_s).sum():.3f}")
assert psp(early2, P.tau_s).sum() > psp(late3, P.tau_s).sum()

order = np.argsort(mean_x)                 # sort neurons by their mean current for a readable raster
fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
plots.spike_raster(layer.s[:, order], ax=axes[0], title="40 neurons, T = 5 (sorted by mean current)")
axes[1].scatter(mean_x, count, label="spike count  s.sum(0)", color="C0")
axes[1].scatter(mean_x, psp_count, marker="x", label="PSP sum  a.sum(0) (authors' 'count')", color="C3")
axes[1].set_xlabel("mean input current")
axes[1].set_ylabel("count over T = 5 steps")
axes[1].set_title("reading counts")
axes[1].legend(fontsize=8)
for j, c in enumerate(sorted(set(count[count > 0].astype(int)))[:3]):
    i = int(np.flatnonzero(count == c)[0])   # the first neuron with c spikes
    plots.membrane_trace(layer.u[:, i], layer.s[:, i], P.threshold, ax=axes[2], label=f"neuron {i}: {c} spike(s)",
                         color=f"C{j}")
handles, labels = axes[2].get_legend_handles_labels()
keep = {lab: h for h, lab in zip(handles, labels) if ": spikes" not in lab}
axes[2].legend(keep.values(), keep.keys(), fontsize=8)
axes[2].set_title("membranes: plots.membrane_trace(u[:, i], s[:, i])")
fig.tight_layout()
L.save(fig, "counts")

# %% [markdown]
# ## What's next
#
# Lesson 2 puts thousands of these neurons in layers, feeds them a real MNIST digit and reads the same
# `u`, `s`, `a` from every layer. Lesson 3 asks what the output neurons *should* have fired (the loss).

# %%
L.done()
