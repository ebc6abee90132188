# %% [markdown]
# # Lesson 5: the intra-neuron term, or what a neuron's own reset and leak carry back in time
#
# Lesson 4's inter-neuron term puts error on a neuron only at the steps where it fires. But the
# membrane that fires at step `j` was built up over the steps before it, and the input of those steps
# deserves part of the blame. A neuron's own state links its time steps in two ways:
#
# - **leak**: while it is silent, its membrane carries over to the next step, shrunk by `1 - theta_m`;
# - **reset**: when it fires, its membrane drops to 0, and the history before the spike is wiped out.
#
# TSSL-BP's intra-neuron term follows these links backwards in time with a carried term `c`.
#
# You will:
# - write the backward loop of `c` by hand and check it against `intra_neuron_term`;
# - see the same neuron's delta with and without the intra term (`compose_delta(..., intra=False)`);
# - check with finite differences, on a hand-built neuron, that the leak part of the intra term is the
#   exact chain rule through the membrane, and see which part is TSSL-BP's model of the reset;
# - measure what the intra term changes in a real network on real MNIST digits.

# %%
from _lesson import Lesson, mnist_images

import matplotlib.pyplot as plt
import numpy as np

from reference.app import plots
from reference.losses import kernel_loss, kernel_target
from reference.network import Network
from reference.neuron import lif_forward, psp_kernel
from reference.optim import AdamW, train_step
from reference.params import NeuronParams
from reference.tsslbp import (BRANCH_INTRA, BRANCH_WARMUP, branch_fractions, compose_delta, inter_neuron_term, intra_neuron_term,
                              spike_error, spike_advance, tsslbp_delta)

L = Lesson("05_intra_neuron")
T = 10
P = NeuronParams(n_steps=T)  # tau_m = 5, tau_s = 3, threshold = 1; 10 steps for a longer trace
print(f"theta_m = 1/tau_m = {P.theta_m}, leak factor per silent step 1 - theta_m = {1 - P.theta_m}")

# %% [markdown]
# ## 1. A hand-made neuron
#
# One neuron, an input current `x[t]` chosen by hand, and a kernel loss asking it to fire at steps 3
# and 7 (`kernel_target(..., "single", pattern)`, the paper's singly filtered target; `kernel_loss`
# returns `g = dL/da = a - target`). Then its spike error `G` and inter-neuron term, as in lesson 4.

# %%
x = np.array([0.45, 0.45, 0.45, 0.1, 0.15, 0.7, 0.3, 0.2, 0.25, 0.6])[:, None, None]  # (T, N=1, 1)
st = lif_forward(x, P)
pattern = [0, 0, 0, 1, 0, 0, 0, 1, 0, 0]
target = kernel_target(T, P.tau_s, "single", pattern, np.float64)
loss, g = kernel_loss(st.a, np.array([0]), target)        # g: (T, 1, 1)
G = spike_error(g, psp_kernel(T, P.tau_s))
inter = inter_neuron_term(G, st.du, st.s)
fired = st.s[:, 0, 0] > 0
assert np.array_equal(np.flatnonzero(fired) + 1, np.flatnonzero(pattern)), "it fires one step before each desired spike"
print(f"spikes at steps {np.flatnonzero(fired).tolist()}, desired at {np.flatnonzero(pattern).tolist()}; "
      f"loss {loss:.4f}")
print(f"du at the spikes: {[round(float(v), 3) for v in st.du[fired, 0, 0]]}, "
      f"min(1/du, 8) there: {[round(float(v), 2) for v in spike_advance(st.du, st.s)[fired, 0, 0]]}")
L.explore(x, g, P)  # this neuron and its error on the site's page, every term per step

# %% [markdown]
# ## 2. The carried term `c`, written out
#
# ([`docs/paper-notes.md`](../docs/paper-notes.md) section 3, item 2.) Walk backwards in time,
# `k = T-1 .. 0`, with `c = 0` before the last step (nothing comes after it).
# `c` is the error carried on the neuron's state from the later steps: when step `k` is processed it is
# `dL/du[k+1]`, the error on the next step's membrane, *before* the factor `1 - theta_m` by which
# `u[k]` leaks into `u[k+1]` (the silent branch below applies that factor; the fired branch does not).
# At step `k`:
#
#     intra[k] = c theta_m u[k] min(1/du[k], 8) s[k]  +  c (1 - theta_m) (1 - s[k])
#     pre[k]   = inter[k] + intra[k]
#     c       <- pre[k] s[k]  +  c (1 - s[k]) (1 - theta_m)
#
# - **silent** at `k` (`s[k] = 0`): the membrane `u[k]` leaks into `u[k+1]` with the factor
#   `1 - theta_m`, so the error waiting on the later state reaches `u[k]` shrunk by that factor, and is
#   carried on, shrinking again at every silent step;
# - **fired** at `k` (`s[k] = 1`): the reset sets the state to 0, so nothing from the later state reaches
#   `u[k]` through the membrane. What does: the spike's *time* moves with `u[k]` (`-min(1/du, 8)`,
#   lesson 4), and with it the reset; TSSL-BP, as the authors' code implements it, models the later
#   membrane's dependence on that time by `theta_m u[k]` (the leak that the reset took away from `u[k]`).
#   And `c` restarts from this spike's own `pre[k]`: earlier steps reach the future only through this
#   spike.
#
# Here is the loop inline, beside the library's `intra_neuron_term` (authors: `theta` for `c`).

# %%
u, du, s = st.u[:, 0, 0], st.du[:, 0, 0], st.s[:, 0, 0]
advance = spike_advance(st.du, st.s)[:, 0, 0]           # min(1/du, 8) where fired, else 0
intra_loop = np.zeros(T)
c_in = np.zeros(T)                                           # c arriving at step k from the later steps
c = 0.0
for k in range(T - 1, -1, -1):
    c_in[k] = c
    intra_loop[k] = c * P.theta_m * u[k] * advance[k] + c * (1 - P.theta_m) * (1 - s[k])
    pre_k = inter[k, 0, 0] + intra_loop[k]
    c = pre_k * s[k] + c * (1 - s[k]) * (1 - P.theta_m)
intra = intra_neuron_term(inter, st.u, st.du, st.s, P.theta_m)
err_loop = np.max(np.abs(intra[:, 0, 0] - intra_loop))
print(f"inline loop against intra_neuron_term: max difference {err_loop:.1e}")
assert err_loop < 1e-15

# %% [markdown]
# The delta of this neuron with and without the intra term. We switch the warm-up off here
# (`warmup="never"`, lesson 6) so that we see the TSSL-BP terms alone; the last panel puts it back.

# %%
delta, branch = compose_delta(g, st, P, warmup="never")
delta_no, _ = compose_delta(g, st, P, warmup="never", intra=False)
delta_def, branch_def = compose_delta(g, st, P)              # the default rule: per-neuron warm-up
delta_fast, _ = tsslbp_delta(g, st, P, warmup="never")
assert np.allclose(delta, delta_fast, rtol=1e-12, atol=1e-15)  # the Numba kernel computes the same
assert np.allclose(delta, inter + intra, atol=1e-15) and np.allclose(delta_no, inter, atol=1e-15)
silent_with_error = np.flatnonzero((delta[:, 0, 0] != 0) & ~fired)
print(f"steps with a non-zero delta: {np.flatnonzero(delta_no[:, 0, 0]).tolist()} without the intra term, "
      f"{np.flatnonzero(delta[:, 0, 0]).tolist()} with it")
print(f"with the default warm-up, the warm-up replaces inter + intra at steps "
      f"{np.flatnonzero(branch_def[:, 0, 0] == BRANCH_WARMUP).tolist()}")

# %%
tt = np.arange(T)
fig, axes = plt.subplots(5, 1, figsize=(8, 13), sharex=True)
ax = axes[0]
plots.membrane_trace(u, s, P.threshold, ax=ax, label="u[k]")
want = np.flatnonzero(pattern)
ax.plot(want, np.full(len(want), -0.12), "^", color="k", ms=8, label="desired spike")
ax.set_ylim(-0.25, 1.75)
ax.set_xlabel("")
ax.set_title("A hand-made neuron: it fires one step too early, twice")
ax.legend(fontsize=7, loc="upper center", ncol=4)
ax = axes[1]
ax.bar(tt, x[:, 0, 0], 0.5, color="C7", alpha=0.6, label="input current x[k]")
ax.plot(tt, g[:, 0, 0], "s-", color="C4", label=r"$g = \partial L/\partial a$")
ax.plot(tt, G[:, 0, 0], "o-", color="C5", label=r"$G$ (error on a spike)")
ax.axhline(0, color="k", lw=0.5)
ax.set_ylabel("x, error")
ax.legend(fontsize=7, ncol=3)
ax = axes[2]
ax.step(tt, c_in, where="mid", color="C9", lw=2, label=r"$c$ arriving at step $k$ from later steps")
ax.plot(tt[fired], c_in[fired], "v", color="C3", ms=8,
        label="c arriving at a spike: used by the reset part, then replaced by pre[k]")
for k in range(T - 1):
    if c_in[k] != 0 or c_in[k + 1] != 0:
        ax.annotate("", xy=(k + 0.15, c_in[k]), xytext=(k + 0.85, c_in[k + 1]),
                    arrowprops=dict(arrowstyle="->", color="C9", alpha=0.5))
ax.axhline(0, color="k", lw=0.5)
ax.set_ylabel("carried c")
ax.set_ylim(min(0, c_in.min()) - 0.05, 1.4 * c_in.max())
ax.set_title("backwards in time: shrinks by (1 - theta_m) per silent step", fontsize=9)
ax.legend(fontsize=7)
ax = axes[3]
plots.delta_by_term(inter[:, 0, 0], intra[:, 0, 0], delta[:, 0, 0], ax=ax, legend=False)
ax.plot(tt, delta_no[:, 0, 0], "x--", color="k", alpha=0.5, ms=7, label=r"$\delta$ without intra ($=$ inter)")
ax.set_ylim(min(0, delta.min()) - 0.05, 1.45 * delta.max())
ax.legend(fontsize=7, ncol=4, loc="upper center")
ax.set_title("warm-up off: with the intra term the silent steps before a spike share its error", fontsize=9)
ax.set_xlabel("")
ax = axes[4]
plots.delta_by_term(inter[:, 0, 0], intra[:, 0, 0], delta_def[:, 0, 0], branch_def[:, 0, 0], ax=ax, legend=False)
ax.set_ylim(min(0, delta.min()) - 0.05, 1.45 * delta.max())
ax.legend(fontsize=7, ncol=4, loc="upper center")
ax.set_title("default rule: the warm-up replaces inter + intra where the neuron has been quiet", fontsize=9)
fig.tight_layout()
L.save(fig, "hand_trace")

# %% [markdown]
# Without the intra term only the two spike steps get error, so only the input of those two steps would
# change. With it, the silent steps that built up each spike get a share that shrinks with their
# distance from the spike. The steps after the last spike get nothing from either term: nothing there
# feeds a spike. (The loss also wants a spike at step 7, and the error `G[6]` on the spike at 6 does
# include `g[7..9]`. But TSSL-BP cannot ask for a new spike at 7: there is no spike there or later to
# differentiate; it can only move the spike at 6. Getting a silent neuron to fire is the warm-up's job,
# lesson 6.)

# %% [markdown]
# ## 3. What the intra term captures: finite differences on the membrane
#
# Within the discrete neuron, the only smooth path from `u[k]` to a later step is the membrane itself.
# Nudge the input `x[k]` (which raises `u[k]` by the same amount) by `+-1e-6` and watch every later
# membrane `u[j]`, a central difference `J[j, k] = d u[j] / d u[k]`, checking that no spike flips.
# The chain rule through the neuron's state predicts `(1 - theta_m)^(j-k)` while no spike happens in
# steps `k .. j-1`, and 0 across a spike (the reset wipes the dependence).

# %%
H = 1e-6
J = np.zeros((T, T))
for k in range(T):
    xp, xm = x.copy(), x.copy()
    xp[k] += H
    xm[k] -= H
    sp, sm = lif_forward(xp, P), lif_forward(xm, P)
    assert np.array_equal(sp.s, st.s) and np.array_equal(sm.s, st.s), f"a spike flipped when nudging step {k}"
    J[:, k] = (sp.u[:, 0, 0] - sm.u[:, 0, 0]) / (2 * H)
J_model = np.zeros((T, T))
for k in range(T):
    for j in range(k, T):
        J_model[j, k] = 0.0 if s[k:j].any() else (1 - P.theta_m) ** (j - k)
err_J = np.max(np.abs(J - J_model))
print(f"finite-difference J against (1 - theta_m)^(j-k) with a zero across spikes: max difference {err_J:.1e}")
assert err_J < 1e-8

# %% [markdown]
# Now the claim: at every **silent** step `k` that has a spike `j` after it, the intra term is the error
# TSSL-BP puts on that next spike's membrane, carried back through the membrane exactly by the chain
# rule: `intra[k] = pre[j] J[j, k]`. (Spikes after `j` reach `u[k]` only through `pre[j]`, whose own
# intra term carries them.)

# %%
pre = inter[:, 0, 0] + intra[:, 0, 0]
spikes = np.flatnonzero(fired)
checked = []
for k in np.flatnonzero(~fired):
    later = spikes[spikes > k]
    if later.size:
        j = later[0]
        checked.append(abs(intra[k, 0, 0] - pre[j] * J[j, k]) / max(abs(pre[j] * J[j, k]), 1e-30))
print(f"silent steps with a later spike: {len(checked)}; largest relative gap between intra[k] and "
      f"pre[j] * J[j, k]: {max(checked):.1e}")
assert max(checked) < 1e-6

# %% [markdown]
# So the leak half of the intra term is exact: it is backpropagation through the membrane's leak, from the
# next spike. The **reset half**, `c theta_m u[k] min(1/du[k], 8)` at a fired step, has no finite-difference
# counterpart in the discrete neuron: like the spike itself, the reset happens all-or-none at a step, and
# `J` is exactly 0 across it. It is TSSL-BP's model of what a moving spike time does to the later
# membrane (derived in section 3b below), and the only way error from later spikes reaches the input
# before a spike.

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
ax = axes[0]
im = ax.imshow(np.where(np.tril(np.ones((T, T))) > 0, J, np.nan), cmap="viridis", vmin=0, vmax=1)
for j in range(T):
    for k in range(j + 1):
        ax.text(k, j, f"{J[j, k]:.2f}", ha="center", va="center", fontsize=6,
                color="white" if J[j, k] < 0.5 else "black")
for k in spikes:  # below this line, in columns <= k, every path crosses the reset after step k
    ax.plot([-0.5, k + 0.5], [k + 0.5, k + 0.5], color="C3", lw=2)
ax.set_xticks(tt)
ax.set_yticks(tt)
for lab in ax.get_xticklabels() + ax.get_yticklabels():
    if int(lab.get_text()) in spikes:
        lab.set_color("C3")
        lab.set_fontweight("bold")
ax.set_xlabel("nudged step k")
ax.set_ylabel("later step j")
ax.set_title(r"$J[j,k] = \partial u[j]/\partial u[k]$ by finite differences" "\n(red: spike steps; below a red line the reset has cut the path)",
             fontsize=9)
fig.colorbar(im, ax=ax, fraction=0.046)
ax = axes[1]
silent = ~fired
ax.bar(tt - 0.2, intra[:, 0, 0], 0.4, color="tab:blue", label=r"intra[k] (intra_neuron_term)")
next_spike = [spikes[spikes > k][0] if (spikes > k).any() else None for k in tt]
chain = np.array([pre[j] * J[j, k] if (silent[k] and j is not None) else np.nan for k, j in zip(tt, next_spike)])
ax.bar(tt + 0.2, np.nan_to_num(chain), 0.4, color="C1", label=r"pre[j] J[j, k], j = next spike (silent k)")
for k in spikes:
    ax.axvspan(k - 0.5, k + 0.5, color="C3", alpha=0.1)
ax.axhline(0, color="k", lw=0.5)
ax.set_xticks(tt)
ax.set_xlabel("time step k (red band: the neuron fires; there the intra term is the reset model)")
ax.set_ylabel("error on u[k]")
ax.set_title("The leak part of the intra term is the chain rule", fontsize=10)
ax.set_ylim(min(0, np.nanmin(intra)) - 0.02, 1.35 * np.max(intra))
ax.legend(fontsize=8, loc="upper right")
fig.tight_layout()
L.save(fig, "finite_differences")

# %% [markdown]
# ## 3b. Where the reset factor `theta_m u[k] min(1/du[k], 8)` comes from
#
# Think of the reset as an input like any other: at its spike the neuron receives `-r`, with `r = u[k]`
# the membrane the reset removes. From then on that `-r` fades with the leak like any charge, by
# `1 - theta_m` per step. Now raise `u[k]` a little, by `du_in`. The spike stays (all-or-none) but comes
# earlier, by `min(1/du[k], 8) du_in` steps (lesson 4). An earlier `-r` has had longer to fade by the time
# a later membrane is read: `theta_m r` less of it per step of advance. So the later membrane is higher by
#
#     theta_m u[k] min(1/du[k], 8) du_in      (times the leak from there on)
#
# and the error `c = dL/du[k+1]` waiting there sends `c theta_m u[k] min(1/du[k], 8)` back to `u[k]`:
# the reset half of the intra term, with its sign (positive: an earlier reset leaves a higher membrane;
# lesson 9, section 4, sets it beside BPTT's negative one). The leak "from there on" is what `c`'s own
# recursion supplies, a factor `1 - theta_m` per silent step. For the step from `k` to `k + 1` the rule
# applies none: read at `k + 1`, the discrete version of the argument would give `theta_m (1 - theta_m)
# u[k]`, and the continuous one (below) a fade `exp(-theta_m (k + 1 - t*))` of one to two steps. The
# authors' code counts it so in both its versions (the paper era's reset record `D` of section 5, too,
# starts its leak factor at `(1 - theta_m)^0` for a next spike one step later); the rule is a model, and
# this is one of its approximations: a missing factor of about `1 - theta_m`.
#
# The same argument in continuous time can be checked exactly. For the neuron of lesson 4,
# `du/dt = -theta_m u + x` with constant `x`, the reset removes `V_th` at the crossing `t*` and the
# membrane then rises at `u'(t*) = x - theta_m V_th`. A raise before the crossing changes the membrane at
# a later time `t` (before the next spike) by
#
#     exp(-theta_m (t - t*)) (1 + theta_m V_th / u'(t*))      per unit of the raise.
#
# The second term is the argument above: the removed `V_th` fades longer, `theta_m V_th` per unit of
# time, and the crossing moves by `1/u'(t*)` per unit of membrane. The `1` is the raise itself, which in
# continuous time survives the reset (the reset removes `V_th` whatever the membrane held). In the
# discrete neuron it does not: the reset sets `u_r[k] = 0` and takes the raise with it (`J = 0` across a
# spike, above), and TSSL-BP, like the discrete neuron, passes nothing through the reset but the timing
# term. So the rule is: the discrete neuron's own derivative (0 across the reset) plus the timing
# term, with the coarse neuron's `u[k]` for `V_th` and its `du[k]` for the slope `u'(t*)`.
#
# The formula, measured on a clock 100,000 times finer (as in lesson 4: `lif_forward` with `tau_m/dt`
# and `x dt`), with a raise of `+-1e-3` a hundredth of a step before the crossing:

# %%
X_C, DT_FINE = 0.45, 1e-5                            # a constant input; the fine step (in coarse steps)
n_fine = int(round(6 / DT_FINE))                     # six coarse steps: time -1 .. 5
P_fine = P.replace(tau_m=P.tau_m / DT_FINE, n_steps=n_fine)
t_fine = -1 + DT_FINE * (np.arange(n_fine) + 1)      # the time of each fine step (coarse step k ends at k)


def fine_clock(raise_by=0.0, at=0):
    """The fine neuron on the constant input X_C, its membrane raised by raise_by at fine step at."""
    x_fine = np.full((n_fine, 1), X_C * DT_FINE)
    x_fine[at, 0] += raise_by
    return lif_forward(x_fine, P_fine)


base = fine_clock()
n_star = int(np.argmax(base.s[:, 0] > 0))
t_star = t_fine[n_star]
slope = (base.u[n_star, 0] - base.u[n_star - 1, 0]) / DT_FINE   # u'(t*) = x - theta_m V_th
at = n_star - 1000                                   # a hundredth of a step before the crossing
H_RAISE = 1e-3
up, down = fine_clock(H_RAISE, at), fine_clock(-H_RAISE, at)
t_next = t_fine[np.flatnonzero(base.s[:, 0])[1]]
after = np.array([0.25, 0.5, 1.0, 2.0])              # read the membrane this long after t* (before t_next)
j_read = n_star + np.round(after / DT_FINE).astype(int)
measured = (up.u[j_read, 0] - down.u[j_read, 0]) / (2 * H_RAISE)
faded = np.exp(-P.theta_m * (t_star - t_fine[at]))  # the raise's own leak before the crossing
predicted = faded * np.exp(-P.theta_m * (t_fine[j_read] - t_star)) * (1 + P.theta_m * P.threshold / slope)
gap = np.max(np.abs(measured / predicted - 1))
print(f"fine clock: crossing at t* = {t_star:.4f}, slope u'(t*) = {slope:.4f}, next spike at {t_next:.3f}")
for a_, m_, p_ in zip(after, measured, predicted):
    print(f"  membrane at t* + {a_:4.2f}: measured {m_:.4f} per unit of raise, formula {p_:.4f}")
print(f"largest relative gap {gap:.1e}; the timing part theta_m V_th / u'(t*) = {P.theta_m * P.threshold / slope:.4f}")
assert gap < 5e-3 and t_next > t_star + after[-1]
coarse = lif_forward(np.full((T, 1), X_C), P)
k_c = int(np.argmax(coarse.s[:, 0] > 0))
reset_factor = P.theta_m * coarse.u[k_c, 0] * spike_advance(coarse.du, coarse.s)[k_c, 0]
print(f"coarse neuron: fires at step {k_c}, u = {coarse.u[k_c, 0]:.3f}, du = {coarse.du[k_c, 0]:.3f}; "
      f"TSSL-BP's reset factor theta_m u min(1/du, 8) = {reset_factor:.4f}")
assert abs(reset_factor / (P.theta_m * P.threshold / slope) - 1) < 0.1

# %% [markdown]
# The formula holds on the fine clock (the largest gap is printed; the raise is small but finite). The
# coarse rule's reset factor is within a few percent of the bracket's timing part (both printed; asserted
# within 10%): `u[k]` is a little above `V_th` and `du[k]` a little above the slope at the crossing. This
# compares the brackets only: the fade before the later membrane is read, which the rule leaves out for
# the first step (above), is not in it. What the rule leaves out besides is the `1`, which the discrete
# neuron, whose reset happens at a step boundary, does not have.

# %% [markdown]
# ## 4. In a real network
#
# The demo MLP (`configs/demo_MNIST_MLP.yaml`, 784-400-400-10, T = 5) after a few training steps on real
# MNIST digits (as in lesson 4), and a twin network with the same weights built with `intra=False`.
# Same forward pass, same spikes, same loss; only the backward differs. Per layer we compare the deltas
# and the weight gradients, and see how much of `sum |delta|` comes from steps whose delta is the intra
# term alone (silent steps right after a spike, where the warm-up does not take over).

# %%
x_tr, y_tr = mnist_images(300, "train")
x_te, y_te = mnist_images(50 if L.fast else 100)
config = L.path("configs", "demo_MNIST_MLP.yaml")
net = Network(config, seed=0)
opt = AdamW(net.weights, lr=net.config.network["lr"])
batch_rng = np.random.default_rng(0)
for step in range(10 if L.fast else 40):
    idx = batch_rng.choice(len(y_tr), 50, replace=False)
    train_step(net, x_tr[idx], y_tr[idx], opt)
net_no = Network(config, seed=0, intra=False)
net_no.set_weights(net.weights)
loss, grads, _ = net.gradients(x_te, y_te)
loss_no, grads_no, _ = net_no.gradients(x_te, y_te)
assert loss == loss_no
assert all(r.state.firing_rate > 0 for r in net.records), "every layer fires"
names = [r.name for r in net.records]
rel_delta, cos_w = [], []
for r, r_no in zip(net.records, net_no.records):
    rel_delta.append(np.linalg.norm(r.delta - r_no.delta) / np.linalg.norm(r.delta))
    a, b = grads[r.name].ravel().astype(np.float64), grads_no[r.name].ravel().astype(np.float64)
    cos_w.append(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))))
    share = branch_fractions(r.branch, np.abs(r.delta))["intra (silent)"]
    print(f"{r.name}: |delta - delta(no intra)| / |delta| = {rel_delta[-1]:.3f}; cosine of the weight gradients "
          f"{cos_w[-1]:.3f}; share of sum|delta| on intra-branch steps {100 * share:.1f}%")

# %% [markdown]
# The output layer's own delta changes only through its own intra term; the hidden layers' deltas change
# also because the error they receive, `W^T delta`, comes from a layer above that changed.
#
# The default rule also throws most of the intra term away (the shares printed below; more than half in
# every layer, asserted): at a silent step where the neuron has been quiet for a while, the warm-up value
# replaces `inter + intra` (lesson 6). To see how much, we
# recompute each layer's terms from the error `g` it received (`W^T delta` of the layer above; the loss's
# `g` for the output layer) and sum `|intra|` over the steps where the warm-up took over.

# %%
eps5 = psp_kernel(net.n_steps, P.tau_s, np.float32)
_, g_layer = net.loss(net.records[-1].out.reshape(net.n_steps, len(y_te), -1), y_te)
terms = {}
for i in range(len(net.records) - 1, -1, -1):
    r = net.records[i]
    g_i = g_layer.reshape(r.state.u.shape)
    inter_i = inter_neuron_term(spike_error(g_i, eps5), r.state.du, r.state.s)
    intra_i = intra_neuron_term(inter_i, r.state.u, r.state.du, r.state.s, P.theta_m)
    terms[r.name] = (inter_i, intra_i)
    keep = r.branch != BRANCH_WARMUP
    assert np.allclose(r.delta[keep], (inter_i + intra_i)[keep], rtol=1e-5, atol=1e-7)  # the network's delta
    lost = np.abs(intra_i[r.branch == BRANCH_WARMUP]).sum() / max(np.abs(intra_i).sum(), 1e-30)
    print(f"{r.name}: share of sum|intra| on steps where the warm-up replaces it: {100 * lost:.1f}%")
    assert lost > 0.5, "the warm-up replaces most of the intra term"
    if i > 0:
        g_layer = net.layers[i].synapse.backward(r.delta, r.cache.synapse).g_in

# %% [markdown]
# A neuron of `hidden_2`, with and without the intra term:

# %%
i_layer = 1
rec, rec_no = net.records[i_layer], net_no.records[i_layer]
inter2, intra2 = terms[rec.name]
n0 = 0
score = np.abs(np.where(rec.branch[:, n0] == BRANCH_INTRA, intra2[:, n0], 0)).sum(axis=0)
j = int(np.argmax(score))                                    # the neuron with most intra-branch error
print(f"sample {n0} (digit {y_te[n0]}), neuron {j} of {rec.name}: spikes at "
      f"{np.flatnonzero(rec.state.s[:, n0, j]).tolist()}, branches {rec.branch[:, n0, j].tolist()} "
      f"(0 warm-up, 1 inter, 2 intra)")

# %%
fig = plt.figure(figsize=(13, 7.5))
gs = fig.add_gridspec(2, 2, height_ratios=[1, 1.1])
ax = fig.add_subplot(gs[0, 0])
plots.branch_fractions_bar({r.name: r.branch for r in net.records}, ax=ax,
                           weights={r.name: np.abs(r.delta) for r in net.records},
                           title=r"Which branch carries the error: share of $\sum|\delta|$")
ax = fig.add_subplot(gs[0, 1])
yy = np.arange(len(names))
ax.barh(yy - 0.2, rel_delta, 0.4, color="tab:blue", label=r"$\|\delta - \delta_{no\ intra}\| / \|\delta\|$")
ax.barh(yy + 0.2, cos_w, 0.4, color="C1", label=r"cosine($\partial L/\partial W$, same without intra)")
for yi, (a, b) in enumerate(zip(rel_delta, cos_w)):
    ax.text(a + 0.01, yi - 0.2, f"{a:.2f}", va="center", fontsize=7)
    ax.text(b + 0.01, yi + 0.2, f"{b:.2f}", va="center", fontsize=7)
ax.set_yticks(yy)
ax.set_yticklabels(names)
ax.invert_yaxis()
ax.set_xlim(0, 1.15)
ax.set_title("What switching the intra term off changes")
ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
ax = fig.add_subplot(gs[1, 0])
plots.membrane_trace(rec.state.u[:, n0, j], rec.state.s[:, n0, j], P.threshold, ax=ax, label="u[k]")
ax.set_title(f"{rec.name}, neuron {j}, MNIST digit {y_te[n0]}")
ax.legend(fontsize=7)
ax = fig.add_subplot(gs[1, 1])
plots.delta_by_term(inter2[:, n0, j], intra2[:, n0, j], rec.delta[:, n0, j], rec.branch[:, n0, j], ax=ax,
                    legend=False)
ax.plot(np.arange(net.n_steps), rec_no.delta[:, n0, j], "x--", color="k", alpha=0.5, ms=7,
        label=r"$\delta$ used, intra=False")
ax.legend(fontsize=7)
ax.set_title("its delta with and without the intra term (default warm-up)")
fig.tight_layout()
L.save(fig, "network")

# %% [markdown]
# ## 5. The paper's version of the same dependency: the reset record D
#
# The paper's tables were made with an earlier version of the authors' code (`--variant paper2020`,
# `reference.paper2020`, docs/paper-notes.md section 7). It models the reset differently: the forward
# keeps, per neuron, a T x T matrix `D`. When the neuron fires at `j` and next at `m`, the reset after `j`
# removed `u[j]` from the membrane; by step `m` the leak has shrunk what that removal is worth to
# `D[j, m] = theta_m u[j] (1 - theta_m)^(m-j-1)` of `du[m]`. Every other entry is 0: only the next spike
# counts, since its own reset wipes the earlier history. So each row has at most one entry, just above
# the diagonal of spikes. In the backward, `D` turns the error `g` arriving at the next spike into an
# extra error `h = D g` on the neuron's own spike `j`, which is filtered back in time exactly like `g`:
# `grad_a = P (g + h)`. The final rule instead carries one number `c` back in time (sections 2-4).
# Below: one neuron of 10 steps, its spikes, the matrix `D`, and `g` against `h`.

# %%
from reference.paper2020 import reset_error, reset_record

P20 = NeuronParams(tau_m=5.0, tau_s=2.0, n_steps=T)  # the paper-era tau_s
x20 = np.array([0.9, 0.7, 0.2, 0.6, 0.9, 0.1, 0.0, 1.3, 0.4, 1.2])  # input current of one neuron
st20 = lif_forward(x20, P20)
g20 = np.linspace(-0.3, 0.5, T)  # an error on its PSP, as a next layer would send
D = reset_record(st20.u, st20.s, P20.theta_m)
h20 = reset_error(g20, st20.u, st20.s, P20.theta_m)
spikes20 = np.flatnonzero(st20.s).tolist()
print("spikes at", spikes20)
for j, m in zip(*np.nonzero(D)):
    print(f"D[{j}, {m}] = theta_m u[{j}] (1 - theta_m)^{m - j - 1} = {D[j, m]:.4f};  h[{j}] = D[{j}, {m}] g[{m}] = {h20[j]:+.4f}")
L.explore(x20, g20, P20, rule="paper2020")  # its D and h, live
assert np.allclose(h20, D @ g20) and (np.count_nonzero(D, axis=1) <= 1).all()

fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
plots.membrane_trace(st20.u, st20.s, P20.threshold, ax=axes[0], label="u[k]")
axes[0].set_title("one neuron, tau_m 5, tau_s 2")
axes[0].legend(fontsize=7)
im = axes[1].imshow(D, cmap="Blues")
axes[1].set_xlabel("m (next spike)")
axes[1].set_ylabel("j (spike)")
axes[1].set_xticks(range(T))
axes[1].set_yticks(range(T))
for j, m in zip(*np.nonzero(D)):
    axes[1].text(m, j, f"{D[j, m]:.2f}", ha="center", va="center", fontsize=7, color="w")
fig.colorbar(im, ax=axes[1], fraction=0.046)
axes[1].set_title("reset record D (one entry per spike)")
axes[2].bar(np.arange(T) - 0.2, g20, 0.4, label="g = dL/da")
axes[2].bar(np.arange(T) + 0.2, h20, 0.4, label="h = D g (extra error on own spikes)")
axes[2].axhline(0, color="k", lw=0.5)
axes[2].set_xlabel("step")
axes[2].legend(fontsize=7)
axes[2].set_title("the reset as an extra error")
fig.tight_layout()
L.save(fig, "paper2020_reset_record")

# %% [markdown]
# Summary: the intra-neuron term is backpropagation through the neuron's own state. Through the leak it
# is exact (the finite differences above); through the reset it is TSSL-BP's model of a moving spike
# time. It spreads a spike's error onto the silent steps that built the spike up, and it is what
# `intra=False` (the ablation `--no-intra`) removes; `figures/fig4_ablation.py` trains with and without
# it. Where a neuron has been quiet for a few steps, the warm-up of lesson 6 replaces both terms, and
# with them the part of the intra term that falls on those steps (the shares printed in section 4).

# %%
L.done()
