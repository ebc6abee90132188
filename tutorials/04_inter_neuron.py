# %% [markdown]
# # Lesson 4: the inter-neuron term, or how a spike time depends on the membrane
#
# A spike is all-or-none: nudge a neuron's membrane a little and, almost always, the same steps fire.
# Its derivative "d spike / d u" is zero almost everywhere, so plain backpropagation gets nothing through
# it. TSSL-BP's answer is to differentiate the spike's *time* instead: a membrane that is a little higher
# crosses the threshold a little earlier, and an earlier spike changes the PSP the neuron sends on.
# This lesson takes that argument apart and checks its key number, `d t_k / d u = -1/du`, against a
# neuron simulated with a clock a thousand times finer.
#
# You will:
# - compute the error on a spike, `G[k] = sum_{m>=k} eps[m-k] g[m]` (`spike_error`), and check that it
#   is `dL/ds[k]`;
# - see why the spike comes earlier by `1/du` steps per unit of added membrane, `d t_k/d u = -1/du`
#   (`spike_advance` returns this advance, `-d t_k/d u`, clamped to 8): the steeper the membrane
#   crosses the threshold, the less its spike time moves;
# - measure `d t*/d u` in a finely time-stepped simulation of the same neuron and compare it with the
#   rule's `-1/du`, over a range of input strengths, and see where the clamp at 8 acts;
# - take apart the inter-neuron term `s[k] min(1/du[k], 8) G[k]` (`inter_neuron_term`) of a neuron
#   inside a real network on real MNIST digits.

# %%
from _lesson import Lesson, mnist_images

import matplotlib.pyplot as plt
import numpy as np

from reference.app import plots
from reference.network import Network
from reference.neuron import lif_forward, psp, psp_kernel
from reference.optim import AdamW, train_step
from reference.params import MAX_INV_DU, NeuronParams
from reference.tsslbp import inter_neuron_term, intra_neuron_term, spike_error, spike_advance

L = Lesson("04_inter_neuron")
P = NeuronParams()  # tau_m = 5, tau_s = 3, threshold = 1, T = 5: the authors' final configs
print(f"tau_m = {P.tau_m}, tau_s = {P.tau_s}, threshold = {P.threshold}, clamp of 1/du = {MAX_INV_DU}")

# %% [markdown]
# ## 1. The error on a spike, `G`
#
# A neuron's output is its PSP `a = eps * s`, its spike train `s` filtered by the kernel
# `eps[k] = theta_s (1 - theta_s)^k` (lessons 1-3; its index is the lag, the steps since the spike). The
# loss reaches the neuron as `g[m] = dL/da[m]`, the error on its PSP at every step (from the next layer
# or from the loss). A spike at step `k` adds `eps[m-k]` to `a[m]` for every `m >= k`, so the error on
# that spike is
#
#     G[k] = dL/ds[k] = sum_{m >= k} eps[m-k] g[m]          (spike_error; authors: grad_a)
#
# the PSP filter run backwards in time. Because `a` is linear in `s`, a finite difference on `s` gives
# `G` exactly (up to rounding): a first check, on a made-up spike train and error.

# %%
rng = np.random.default_rng(4)
T = 8
s_demo = (rng.random((T, 1)) < 0.4).astype(np.float64)  # (T, 1): one neuron
g_demo = rng.normal(size=(T, 1))                          # dL/da, made up
eps = psp_kernel(T, P.tau_s)
G_demo = spike_error(g_demo, eps)


def loss_of(s):  # any loss with dL/da = g_demo, e.g. the linear one L = sum_m g[m] a[m]
    return float(np.sum(g_demo * psp(s, P.tau_s)))


h = 1e-6
G_fd = np.array([(loss_of(s_demo + h * np.eye(T)[:, [k]]) - loss_of(s_demo - h * np.eye(T)[:, [k]])) / (2 * h)
                 for k in range(T)])
err_G = np.max(np.abs(G_fd - G_demo[:, 0]))
print(f"eps = {np.round(eps, 4)}")
print(f"max |G - dL/ds (finite differences)| = {err_G:.1e}")
assert err_G < 1e-8

# %% [markdown]
# `G[k]` says how much the loss would like a spike at `k`, but a spike cannot be "a bit more present".
# What the membrane *can* change continuously is **when** the neuron crosses the threshold.
#
# ## 2. Why `d t_k / d u = -1/du`
#
# Look at the step `k` in which the neuron fires. Its membrane goes from `u[k-1]` (after the previous
# step's reset, if any) to `u[k] > threshold`, an increment `du[k]`. Draw a straight line between the two
# points: it crosses the threshold at
#
#     t_k = k - (u[k] - threshold) / du[k]
#
# Raise the membrane by a small amount (the whole segment, `du[k]` unchanged) and the crossing moves by
#
#     d t_k / d u[k] = -1 / du[k]                       (spike_advance gives -d t_k/d u, clamped)
#
# earlier, never later: the minus sign. A steep membrane (large `du`) crosses the threshold at nearly
# the same time whatever the nudge; a membrane that barely creeps over the threshold (small `du`) moves
# its crossing a lot. At `du -> 0` the derivative blows up (a membrane that grazes the threshold can
# move its spike arbitrarily far, or lose it), so TSSL-BP clamps it: `min(1/du, 8)`, i.e.
# `d t_k/d u` in `[-8, 0]` (the authors' `clamp(-1/delta_u, -8, 0)`). Where the neuron does not fire
# there is no spike time and the term is 0.
#
# The straight line is an approximation: the real membrane between two steps is a curve. How good is
# it? We can ask a neuron that lives in (nearly) continuous time.

# %% [markdown]
# ## 3. The same neuron with a finer clock
#
# The LIF step `u[t] = u[t-1] - theta_m u[t-1] + x[t]` is one Euler step of length 1 of the
# differential equation `du/dt = -u/tau_m + x(t)`. Running the library's own `lif_forward` with a clock
# `1/dt` times finer (time constant `tau_m/dt` fine steps, input `x dt` per fine step) is the same
# neuron with Euler steps of `dt`; as `dt -> 0` it becomes the continuous-time neuron. Time is measured
# in coarse steps: the neuron is at rest (`u = 0`) at time -1 and the coarse step `k` is the interval
# `(k-1, k]`, so `u[k]` is the membrane at time `k`. The fine crossing time `t*` is found by linear
# interpolation between the two fine steps around it.
#
# The input is a constant current `x` per coarse step ("input strength"). Both neurons settle at
# `u = tau_m x` if they never fire, so both need `x > threshold/tau_m = 0.2` to fire at all.

# %%
DT = 1e-3                          # fine step, in coarse steps
T_COARSE = 40                      # long enough for the weakest input to fire
N_FINE = int(round(T_COARSE / DT))
P_fine = NeuronParams(tau_m=P.tau_m / DT, tau_s=P.tau_s, threshold=P.threshold, n_steps=N_FINE)
t_fine = -1 + DT * (np.arange(N_FINE) + 1)  # time of fine sample j


def fine_run(x_coarse, nudge=None):
    """Fine simulation of neurons with constant coarse inputs x_coarse (M,); returns u (N_FINE, M).

    nudge: optional (j0 (M,), delta) adds delta to the input of fine step j0, i.e. raises the membrane by
    delta from time t_fine[j0] on (it then leaks away with tau_m).
    """
    x = np.tile(np.asarray(x_coarse, dtype=np.float64) * DT, (N_FINE, 1))  # (N_FINE, M)
    if nudge is not None:
        j0, delta = nudge
        x[j0, np.arange(x.shape[1])] += delta
    return lif_forward(x, P_fine).u


def crossing(u):
    """First threshold crossing of each column of a fine trace u (N_FINE, M): time t* (M,), index (M,)."""
    n = np.argmax(u > P.threshold, axis=0)  # first fine step above threshold
    cols = np.arange(u.shape[1])
    u0, u1 = u[n - 1, cols], u[n, cols]
    return t_fine[n - 1] + DT * (P.threshold - u0) / (u1 - u0), n


def coarse_run(x_coarse, n_steps=T_COARSE):
    """The coarse (T = n_steps) neuron on the same constant inputs: its NeuronState, time first."""
    x = np.tile(np.asarray(x_coarse, dtype=np.float64), (n_steps, 1))
    return lif_forward(x, P.replace(n_steps=n_steps))


# %% [markdown]
# First one neuron, input `x = 0.45`, nudged: its membrane is raised by `delta_u = 0.05` at the start of
# the coarse step in which it fires (large, so that we can see it). Left: the whole trace, fine (line)
# and coarse (dots, joined by the straight lines the rule assumes). Right: the crossing, zoomed in.

# %%
X_SHOW, NUDGE_SHOW = 0.45, 0.05
st_c = coarse_run([X_SHOW])
k_spk = int(np.argmax(st_c.s[:, 0] > 0))               # coarse step that fires
u_f = fine_run([X_SHOW])
t_star, _ = crossing(u_f)
j_nudge = int(round(k_spk / DT)) - 1                    # fine sample at time k_spk - 1
u_fn = fine_run([X_SHOW], (np.array([j_nudge]), NUDGE_SHOW))
t_star_n, _ = crossing(u_fn)
du_k = float(st_c.du[k_spk, 0])
t_lin = k_spk - (st_c.u[k_spk, 0] - P.threshold) / du_k   # the rule's straight-line crossing
print(f"x = {X_SHOW}: the coarse neuron fires at step k = {k_spk} with du[k] = {du_k:.4f}; "
      f"straight-line crossing t_k = {t_lin:.3f}; fine crossing t* = {t_star[0]:.3f}")
print(f"nudge {NUDGE_SHOW} at time {k_spk - 1}: t* moves by {t_star_n[0] - t_star[0]:+.4f}; "
      f"the rule predicts -min(1/du, 8) * nudge = {-min(1 / du_k, MAX_INV_DU) * NUDGE_SHOW:+.4f}")

# %% [markdown]
# The nudge is large so that the picture shows it, and then the move is not the derivative: the crossing
# moves to where the membrane rises faster, so a finite nudge moves it less than `1/du` times the nudge
# (here the rule's straight line over-predicts the move). The rest of this section measures the derivative itself, with
# nudges small enough to be linear, and there the rule's `1/du` is the smaller of the two.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
kk = np.arange(-1, k_spk + 1)
u_coarse = np.concatenate([[0.0], st_c.u[: k_spk + 1, 0]])
for ax in axes:
    ax.plot(t_fine, u_f[:, 0], color="C0", lw=1.5, label=f"fine clock (dt = {DT:g})")
    ax.plot(t_fine, u_fn[:, 0], color="C1", lw=1.5, label=f"fine, nudged by {NUDGE_SHOW} at t = {k_spk - 1}")
    ax.plot(kk, u_coarse, "o--", color="C2", ms=6, lw=1, label="coarse steps u[k] (straight lines)")
    ax.axhline(P.threshold, color="k", ls=":", lw=1, label="threshold")
    ax.axvline(t_star[0], color="C0", lw=0.8)
    ax.axvline(t_star_n[0], color="C1", lw=0.8)
ax = axes[0]
ax.set_xlim(-1.1, k_spk + 1.5)
ax.set_ylim(-0.05, max(1.3, float(u_coarse.max()) + 0.1))
ax.set_xlabel("time (coarse steps)")
ax.set_ylabel("membrane u (before reset)")
ax.set_title(f"One LIF neuron, constant input x = {X_SHOW} per step")
ax.legend(fontsize=8, loc="upper left")
ax = axes[1]
# the rule's picture: the coarse segment of step k raised by the nudge, and its crossing
raised, = ax.plot([k_spk - 1, k_spk], u_coarse[-2:] + NUDGE_SHOW, "o:", color="C2", ms=4, lw=1.2,
                  label="coarse segment raised by the nudge")
t_lin_n = t_lin - NUDGE_SHOW / du_k
for t0, t1, y, col, name in [(t_star[0], t_star_n[0], P.threshold - 0.1, "C3", r"\Delta t^*"),
                             (t_lin, t_lin_n, P.threshold + 0.05, "C2", r"-\delta_u/du[k]")]:
    ax.annotate("", xy=(t1, y), xytext=(t0, y), arrowprops=dict(arrowstyle="->", color=col, lw=1.5))
    ax.text((t0 + t1) / 2, y + 0.005, rf"${name} = {t1 - t0:+.3f}$", color=col, ha="center", va="bottom")
ax.set_xlim(min(t_lin_n, t_star_n[0]) - 0.15, max(t_star[0], k_spk) + 0.1)
ax.set_ylim(P.threshold - 0.15, P.threshold + 0.12)
ax.legend(handles=[raised], fontsize=8, loc="upper left")
ax.set_xlabel("time (coarse steps)")
ax.set_ylabel("membrane u")
ax.set_title("Zoom on the crossing: a higher membrane fires earlier")
fig.tight_layout()
L.save(fig, "nudge")

# %% [markdown]
# Now the measurement, for many input strengths at once (one column of `lif_forward` per input). For
# each input we find the fine crossing `t*`, nudge the membrane by `+-1e-7` two fine steps before it
# (so that the leak has no time to shrink the nudge), and take the central difference
# `d t*/d u = (t*(+) - t*(-)) / 2e-7`. Beside it:
# - `-1/u'(t*)`, the fine membrane's slope at the crossing (`u'(t*) ~ x - threshold/tau_m`): what the
#   measurement should be, since a curve raised by `d u` crosses `d u / u'` earlier;
# - `-1/du[k]` of the coarse neuron, `du[k]` the increment of the coarse step in which it fires;
# - `-min(1/du[k], 8)`, what TSSL-BP uses.

# %%
x_in = np.geomspace(0.203, 1.6, 30 if L.fast else 80)
M = len(x_in)
u_f = fine_run(x_in)
t_star, n_cross = crossing(u_f)
H = 1e-7
j0 = n_cross - 2
t_plus, _ = crossing(fine_run(x_in, (j0, +H)))
t_minus, _ = crossing(fine_run(x_in, (j0, -H)))
dt_du_fine = (t_plus - t_minus) / (2 * H)                                   # measured d t*/d u
slope = (u_f[n_cross, np.arange(M)] - u_f[n_cross - 1, np.arange(M)]) / DT  # u'(t*)
st_c = coarse_run(x_in)
assert np.all(st_c.s.any(axis=0)), "every input must make the coarse neuron fire within T_COARSE steps"
k_c = np.argmax(st_c.s > 0, axis=0)                                         # coarse spike step
du_c = st_c.du[k_c, np.arange(M)]
advance_rule = spike_advance(st_c.du, st_c.s)[k_c, np.arange(M)]       # min(1/du, 8) at the spike

rel_fine = np.max(np.abs(-dt_du_fine * slope - 1))
ratio = (1 / du_c) / (-dt_du_fine)
clamped = advance_rule < 1 / du_c
print(f"{M} input strengths from {x_in[0]:.3f} to {x_in[-1]:.2f}")
print(f"measured d t*/d u against -1/u'(t*): largest relative difference {rel_fine:.1e}")
print(f"coarse 1/du[k] over measured |d t*/d u|: from {ratio.min():.2f} to {ratio.max():.2f} "
      f"(median {np.median(ratio):.2f})")
print(f"the clamp at {MAX_INV_DU:g} acts for {clamped.sum()} of {M} inputs, all with x <= {x_in[clamped].max():.3f}")
k_fine = np.ceil(t_star).astype(int)  # the coarse step (k-1, k] that contains the fine crossing
print(f"the coarse spike step k is the step containing t* for {np.sum(k_c == k_fine)} of {M} inputs; "
      f"largest |k - ceil(t*)| = {np.max(np.abs(k_c - k_fine))} steps")
assert rel_fine < 1e-3
assert np.all(ratio <= 1 + 1e-3), "for a neuron starting at rest, du[k] is at least the slope at the crossing"
u_c = st_c.u[k_c, np.arange(M)]
line = (P.threshold - (u_c - du_c)) / du_c ** 2  # |d t/d u| of the straight line whose slope moves with u[k]
print(f"the straight line with a moving slope, over 1/du[k]: from {(line * du_c).min():.2f} to {(line * du_c).max():.2f}")
assert np.all(line <= 1 / du_c * (1 + 1e-12)), "a moving slope moves the crossing less than 1/du"

# %% [markdown]
# What the numbers say:
#
# - The fine simulation is the continuous-time neuron: the measured `d t*/d u` equals `-1/u'(t*)`, the
#   inverse slope at the crossing. The `1/du` idea is right.
# - The coarse rule uses `du[k] = x - theta_m u_r[k-1]`, with `u_r[k-1]` the membrane carried from step
#   `k-1` (after its reset, if it fired there): the **average** slope over the whole step, where the fine
#   derivative uses the slope **at** the crossing, `x - theta_m * threshold`. The carried membrane is never
#   above the threshold (a membrane above it fires and is reset to 0), so the leak at `k-1` is never larger
#   than at the crossing and `du[k] >= u'(t*)`: the rule *under*-estimates how far the spike moves, by the
#   ratio printed above (checked by the assertion). The gap is the leak difference
#   `theta_m (threshold - u_r[k-1])` relative to `du[k]`: nil when the membrane enters the step already at
#   the threshold, largest when it enters far below it (just after a reset, or from rest as here) with an
#   input not much larger than the leak.
# - `du[k]` itself depends on `x[k]`, yet the rule uses it as a constant. The two answer different
#   questions. Holding the slope fixed, `-1/du[k]` is how far the crossing moves when the membrane is
#   raised *before* it crosses, the question the fine clock's nudge asks. Raising `x[k]` spread over the
#   whole step instead moves the crossing only by the part of the raise that has arrived when it
#   crosses: on the straight line, the crossing's fraction of the step, `(threshold - u_r[k-1])/du[k]`,
#   times `1/du[k]`, which is the straight line with its slope moving with `u[k]` (printed above as a
#   ratio to `1/du`). TSSL-BP takes the first: its `delta[k] = dL/du[k] = dL/dx[k]` treats the input of
#   step `k` as arriving whole, as the coarse neuron does. Like every other factor of the backward, `du[k]`
#   is read from the forward pass.
# - The coarse neuron is the same equation integrated with steps of 1, so it does not fire at the same
#   time as the fine one: its spike step `k` need not be the step that contains `t*` (count printed
#   above), and the curves below show a saw-tooth each time the coarse spike step `k` changes.
# - Near `x = 0.2` the membrane barely reaches the threshold; `1/u'` and `1/du` shoot up, and the clamp
#   at 8 takes over. The clamp is a design choice, not a property of the neuron: it trades a large,
#   true but unreliable sensitivity (a grazing membrane may just as well lose its spike) for a bounded one.

# %%
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

X_TICKS = [0.2, 0.3, 0.4, 0.6, 1.0, 1.5]
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.6, 1]})
ax = axes[0]
ax.plot(x_in, 1 / slope, color="C0", lw=2, label=r"fine: $1/u'(t^*)$, slope at the crossing")
ax.plot(x_in, -dt_du_fine, "o", color="C0", ms=3, mfc="white", label=r"fine, measured: $-\Delta t^*/\Delta u$")
ax.plot(x_in, advance_rule, "-", color="C3", lw=2.5, label=r"TSSL-BP: $\min(1/du[k], 8)$")
ax.plot(x_in, 1 / du_c, "-", color="C2", lw=1, label=r"coarse: $1/du[k]$")
ax.axhline(MAX_INV_DU, color="C3", ls=":", lw=1)
ax.text(x_in[-1], MAX_INV_DU * 1.1, "clamp 8", color="C3", ha="right", fontsize=8)
ax.axvline(P.threshold / P.tau_m, color="k", ls="--", lw=0.8)
ax.text(P.threshold / P.tau_m * 1.03, 0.6, r"$x = V_{th}/\tau_m$" + "\n(never fires below)", fontsize=8)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("input current x per coarse step")
ax.set_ylabel(r"$-d t_k / d u$  (coarse steps per unit of u)")
ax.set_title("How far the spike moves per unit of membrane")
ax.legend(fontsize=8)
ax = axes[1]
ax.plot(x_in, ratio, "-", color="C2")
ax.axhline(1, color="k", lw=0.8)
ax.set_xscale("log")
ax.set_xlabel("input current x per coarse step")
ax.set_ylabel(r"$(1/du[k]) \,/\, |d t^*/d u|$")
ax.set_title("Coarse rule over fine measurement")
ax2 = ax.twinx()
ax2.step(x_in, k_c, where="mid", color="C7", lw=0.8)
ax2.set_ylabel("coarse spike step k (grey)", color="C7")
ax2.yaxis.set_major_locator(MaxNLocator(integer=True))
for a in axes:
    a.set_xticks(X_TICKS)
    a.xaxis.set_major_formatter(ScalarFormatter())
    a.xaxis.set_minor_formatter(NullFormatter())
fig.tight_layout()
L.save(fig, "spike_time_derivative")

# %% [markdown]
# ## 4. The inter-neuron term
#
# Put the two pieces together. Moving the spike at `k` by `d t_k` changes the PSP the neuron sends at
# every later step `m`. The paper, as the notes give it, only says that `d a[m]/d t_k` is proportional to
# the kernel `eps[m-k]`; the authors' code writes it as `d a[m]/d t_k = -eps[m-k]/tau_s` (their `partial_a`) and uses
# `d t_k/d u[k] = -min(1/du[k], 8)` where it fires (authors' `partial_u`); the two minus signs and the
# `tau_s` (which the authors multiply back where they sum over `m`, a remnant of their code's history:
# paper-notes section 7) cancel, and summing over `m` with the errors `g[m]` gives
#
#     inter[k] = s[k] min(1/du[k], 8) G[k]               (inter_neuron_term)
#
# the error on the spike, times how easily the membrane moves it. It is zero wherever the neuron is
# silent: the dependency exists only through spikes that happened (the intra-neuron term of lesson 5
# and the warm-up of lesson 6 handle the rest).
#
# A neuron inside a real network: the demo MLP (`configs/demo_MNIST_MLP.yaml`, 784-400-400-10, T = 5)
# after a few training steps on real MNIST digits, so that every layer fires. The error arriving at
# layer `hidden_2`, `g = dL/da`, is what the next layer sends back, `W^T delta_output`
# (the synapse's backward of layer `i+1`, `net.layers[i+1].synapse.backward`, given the delta and the
# forward's cache).

# %%
x_tr, y_tr = mnist_images(300, "train")
x_te, y_te = mnist_images(50 if L.fast else 100)
net = Network(L.path("configs", "demo_MNIST_MLP.yaml"), seed=0)
opt = AdamW(net.weights, lr=net.config.network["lr"])
batch_rng = np.random.default_rng(0)
for step in range(10 if L.fast else 40):
    idx = batch_rng.choice(len(y_tr), 50, replace=False)
    train_step(net, x_tr[idx], y_tr[idx], opt)
loss, grads, out = net.gradients(x_te, y_te)
print(f"after {opt.step_count} AdamW steps: kernel loss on {len(y_te)} test digits {loss:.2f}")
for rec in net.records:
    print(f"  {rec.name}: firing rate {rec.state.firing_rate:.3f} spikes per neuron and step")
assert all(rec.state.firing_rate > 0 for rec in net.records), "every layer fires"

# %%
i_layer = 1                                            # hidden_2
rec = net.records[i_layer]
above = net.records[i_layer + 1]
g_in = net.layers[i_layer + 1].synapse.backward(above.delta, above.cache.synapse).g_in
g = g_in.reshape(rec.state.u.shape)                    # (T, N, 400): dL/da of hidden_2
st = rec.state
G = spike_error(g, psp_kernel(net.n_steps, P.tau_s, g.dtype))
inter = inter_neuron_term(G, st.du, st.s)
intra = intra_neuron_term(inter, st.u, st.du, st.s, P.theta_m)
fired = st.s > 0
gap = np.max(np.abs(rec.delta[fired] - (inter + intra)[fired])) / np.max(np.abs(rec.delta))
print(f"{rec.name}: at every step where a neuron fired, the network's delta = inter + intra "
      f"(lesson 5) to {gap:.1e} relative")
assert gap < 1e-5
# the neuron to look at: fires at least twice in sample 0 and has the largest inter term there
n0 = 0
score = np.where(st.s[:, n0].sum(axis=0) >= 2, np.abs(inter[:, n0]).sum(axis=0), -1)
j = int(np.argmax(score))
print(f"sample {n0} (digit {y_te[n0]}), neuron {j} of {rec.name}: spikes at steps "
      f"{np.flatnonzero(st.s[:, n0, j]).tolist()}, du there {[round(float(v), 3) for v in st.du[fired[:, n0, j], n0, j]]}")
# its input current, rebuilt from the recorded state: x[k] = du[k] + theta_m u_r[k-1] (lesson 1)
u_r = np.concatenate([[0.0], (st.u[:, n0, j] * (1 - st.s[:, n0, j]))[:-1]])
L.explore(st.du[:, n0, j] + net.params.theta_m * u_r, g[:, n0, j], net.params)

# %%
fig, axes = plt.subplots(4, 1, figsize=(7, 9), sharex=True)
tt = np.arange(net.n_steps)
plots.membrane_trace(st.u[:, n0, j], st.s[:, n0, j], P.threshold, ax=axes[0], label="u[k]")
axes[0].set_title(f"{rec.name}, neuron {j}, MNIST digit {y_te[n0]}")
axes[0].legend(fontsize=7, loc="best")
ax = axes[1]
ax.plot(tt, g[:, n0, j], "s-", color="C4", label=r"$g[m] = \partial L/\partial a[m]$")
ax.plot(tt, G[:, n0, j], "o-", color="C5", label=r"$G[k] = \sum_m \epsilon[m-k]\, g[m]$ (error on a spike)")
ax.axhline(0, color="k", lw=0.5)
ax.set_ylabel("error")
ax.legend(fontsize=7)
ax = axes[2]
ax.bar(tt, st.du[:, n0, j], 0.5, color="C7", label=r"$du[k]$")
advance_j = spike_advance(st.du, st.s)[:, n0, j]
ax.plot(tt[fired[:, n0, j]], advance_j[fired[:, n0, j]], "v", color="C3", ms=9,
        label=r"$\min(1/du[k], 8)$ where it fires")
ax.axhline(0, color="k", lw=0.5)
ax.set_ylabel(r"$du$, $-dt_k/du$")
ax.legend(fontsize=7)
plots.delta_by_term(inter[:, n0, j], intra[:, n0, j], rec.delta[:, n0, j], rec.branch[:, n0, j], ax=axes[3])
axes[3].set_title(r"inter $= s \cdot \min(1/du, 8) \cdot G$; the rest is lessons 5 and 6", fontsize=9)
for ax in axes[:3]:
    ax.set_xlabel("")
axes[3].set_xlabel("time step k")
fig.tight_layout()
L.save(fig, "network_neuron")

# %% [markdown]
# Across the whole layer and batch: how steep are the membranes when neurons fire, and how often does
# the clamp act? A firing step has `du > 0` (the membrane rose past the threshold); the clamp acts where
# `du < 1/8`.

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
bins = np.geomspace(1e-2, 20, 50)
for i, r in enumerate(net.records):
    d = r.state.du[r.state.s > 0]
    frac = float(np.mean(d < 1 / MAX_INV_DU)) if d.size else 0.0
    print(f"{r.name}: {d.size} spikes, median du at a spike {np.median(d):.3f}, "
          f"clamped (du < 1/8) {100 * frac:.2f}%")
    ax.hist(np.clip(d, bins[0], bins[-1]), bins=bins, weights=np.full(d.size, 1 / max(d.size, 1)),
            histtype="step", lw=1.5, color=f"C{i}", label=f"{r.name} ({d.size} spikes)")
ax.axvline(1 / MAX_INV_DU, color="C3", ls="--", lw=1)
ax.text(1 / MAX_INV_DU * 0.9, ax.get_ylim()[1] * 0.9, "clamp: 1/du > 8 left of here", color="C3", ha="right", fontsize=8)
ax.set_xscale("log")
ax.set_xlabel(r"$du[k]$ at the steps where a neuron fires")
ax.set_ylabel("fraction of the layer's spikes")
ax.set_title("Membrane increments at spikes, demo MLP on MNIST")
ax.legend(fontsize=8)
fig.tight_layout()
L.save(fig, "du_at_spikes")

# %% [markdown]
# ## 5. The sign of `d a[m] / d t_k`, checked rather than asserted
#
# Section 4 took the authors' `d a[m]/d t_k = -eps[m-k]/tau_s` as given. A reader who pictures a PSP
# that jumps at the spike and then decays will object: a *later* spike has decayed *less* by a fixed
# later step, so it leaves *more* PSP there, and the derivative should be positive. Let us measure both
# ways of moving a spike.
#
# **In continuous time.** Give the kernel its continuous form, `eps(tau) = theta_s (1 - theta_s)^tau`
# for `tau >= 0` (the discrete kernel at whole steps), put one spike at `t_k`, read its PSP at the whole
# steps `m > t_k`, and move the spike by `+-h`.

# %%
theta_s = 1 / P.tau_s


def eps_c(tau):
    """The continuous kernel: theta_s (1 - theta_s)^tau after the spike, 0 before it."""
    tau = np.asarray(tau, dtype=float)
    return np.where(tau >= 0, theta_s * (1 - theta_s) ** np.maximum(tau, 0), 0.0)


t_k, h, steps = 1.4, 1e-6, np.arange(2, 8)
da_dt = (eps_c(steps - (t_k + h)) - eps_c(steps - (t_k - h))) / (2 * h)
analytic = -np.log(1 - theta_s) * eps_c(steps - t_k)        # -d eps/d tau = +ln(1/(1-theta_s)) eps
print("continuous time, a spike at t_k = 1.4, its PSP at later whole steps m:")
print("  m          " + " ".join(f"{m:8d}" for m in steps))
print("  d a/d t_k  " + " ".join(f"{v:8.4f}" for v in da_dt))
print("  -eps/tau_s " + " ".join(f"{v:8.4f}" for v in -eps_c(steps - t_k) / P.tau_s))
assert np.all(da_dt > 0) and np.allclose(da_dt, analytic, rtol=1e-5)

# %% [markdown]
# Positive at every later step: the reader is right about the tail. Now **in discrete time**, where a
# spike can only move by whole steps: move it from step `k` to `k - 1`, one step *earlier*.

# %%
k_spk, T_sign = 3, 8
late = np.zeros(T_sign)
late[k_spk] = 1
early = np.zeros(T_sign)
early[k_spk - 1] = 1
change = psp(early, P.tau_s) - psp(late, P.tau_s)       # a[m] after moving the spike one step earlier
eps_T = psp_kernel(T_sign, P.tau_s)
print("a[m] change when the spike moves from step 3 to step 2:", np.round(change, 4))
print("-eps[m-k]/tau_s for m >= k:                          ", np.round(-eps_T[:T_sign - k_spk] / P.tau_s, 4))
assert np.isclose(change[k_spk - 1], theta_s)                      # the step it now covers gains eps[0]
assert np.allclose(change[k_spk:], -eps_T[:T_sign - k_spk] / P.tau_s)  # every later step loses eps[m-k]/tau_s

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
m_all = np.arange(T_sign)
axes[0].plot(m_all, psp(late, P.tau_s), "o-", color="C0", lw=2, label=f"spike at step {k_spk}")
axes[0].plot(m_all, psp(early, P.tau_s), "s--", color="C1", lw=2,
             label=f"spike at step {k_spk - 1} (one step earlier)")
axes[0].set_xlabel("step m")
axes[0].set_ylabel("PSP a[m]")
axes[0].set_title("moving a spike one step earlier", fontsize=9)
axes[0].set_ylim(-0.02, 0.48)
axes[0].legend(fontsize=7, loc="upper right")
axes[1].bar(m_all, change, color=np.where(change > 0, "C2", "C3"), width=0.6, label="a[m] change (early - late)")
axes[1].plot(m_all[k_spk:], -eps_T[:T_sign - k_spk] / P.tau_s, "kx", ms=8, label=r"$-\epsilon[m-k]/\tau_s$ (partial_a)")
axes[1].axhline(0, color="k", lw=0.5)
axes[1].set_xlabel("step m")
axes[1].set_title(r"the step newly covered gains $\epsilon[0]$; every later step loses $\epsilon[m-k]/\tau_s$", fontsize=9)
axes[1].legend(fontsize=7, loc="upper right")
fig.tight_layout()
L.save(fig, "partial_a_sign")

# %% [markdown]
# So `-eps[m-k]/tau_s` is exactly the change of `a[m]` (for `m >= k`) when the spike comes one step
# **earlier** (the picture above): the tail decays one step more. Read the other way, a spike one step
# *later* raises the tail by `+eps[m-k]/tau_s`: the positive sign of the continuous case, though not its
# size (the continuous slope printed above, `ln(1/(1 - theta_s)) eps`, is about 1.2 times larger at
# tau_s = 3: a one-step difference of a decaying exponential is not its slope). The authors' `partial_a` is the change per step of *advance*, and it is
# multiplied by `partial_u = d t_k/d u = -1/du`, a change of *time*. Counted consistently, raising the
# membrane advances the spike and **lowers** the PSP at every step after it: the true timing derivative
# of the tail is `-eps[m-k]/(tau_s du[k]) < 0`. The rule's product has the opposite sign,
#
#     inter[k] = + min(1/du[k], 8) G[k],   with G[k] = dL/ds[k],
#
# so it does not approximate the tail's timing derivative. What it does compute is the error on the
# spike `G[k]` times a sensitivity `min(1/du, 8) >= 0`: raising the membrane is treated as making the
# spike *more present* (like a surrogate `ds/du = 1/du` at the firing step), and its whole PSP `eps[m-k]`
# grows at every later step. That matches the one part of the discrete shift that adds PSP, the step the
# earlier spike newly covers (`+eps[0]` above), and it is what lets the loss that wants more output
# raise the membranes below it, the direction training needs. The timing argument supplies the
# magnitude, `1/du`: a membrane that creeps over the threshold is the one a nudge most easily changes.
# The numbers for the neuron of section 4: its inter term has the sign of `G` wherever it fires, the
# tail's timing derivative the opposite sign.

# %%
fired = rec.state.s[:, n0, j] > 0
G_n = G[:, n0, j][fired]
tail_timing = -(1 / P.tau_s) * G_n * np.minimum(1 / rec.state.du[:, n0, j][fired], MAX_INV_DU)
print(f"steps where the neuron fires: {np.flatnonzero(fired).tolist()}")
print(f"  G[k]                      {np.round(G_n.astype(float), 5).tolist()}")
print(f"  inter[k] (the rule)       {np.round(inter[:, n0, j][fired].astype(float), 5).tolist()}")
print(f"  tail timing derivative    {np.round(tail_timing.astype(float), 5).tolist()}")
assert np.all(np.sign(inter[:, n0, j][fired]) == np.sign(G_n))
assert np.all(np.sign(tail_timing) == -np.sign(G_n))

# %% [markdown]
# Summary: the inter-neuron term is the error on a spike (`G`, the PSP filter run backwards) times the
# spike's timing sensitivity (`min(1/du, 8)`), only where the neuron fires. `1/du` is the continuous-time
# derivative with the slope at the crossing replaced by the step's average slope, an under-estimate
# (by the ratio section 3 prints); the clamp bounds it where the membrane barely crosses. Lesson 5 adds what a spike does
# to its own neuron: the reset, and the leak that carries the membrane from step to step.

# %%
L.done()
