# %% [markdown]
# # Lesson 9: check TSSL-BP against PyTorch and JAX, and against surrogate-gradient BPTT
#
# Our backward pass is written by hand. How do we know it is right, and how does it differ from the
# surrogate gradient most spiking-network code uses? This lesson runs the project's two tools:
#
# 1. **`gradcheck`**: the network written a second time in PyTorch (and JAX), where only the spiking
#    non-linearity's backward is hand-written (a `torch.autograd.Function`) and everything else, including
#    the PSP filter that hands TSSL-BP its spike error `G = dL/ds`, is the framework's autodiff.
# 2. **`bptt-compare`**: the same forward pass, differentiated by surrogate-gradient BPTT: the sigmoid
#    surrogate of TSSL-BP's warm-up at every neuron and step, unrolled through leak and reset.
#
# A green gradcheck checks the plumbing, not the rule: the twins' spiking backward comes from the same notes
# as ours. README's "Checking against PyTorch and JAX" says which checks are independent of our
# reading.
#
# Needs `pip install -r requirements-autograd.txt` (torch, jax). The same from the shell:
# `python -m reference gradcheck --config configs/MNIST_CNN.yaml` and
# `python -m reference bptt-compare --config configs/MNIST_CNN.yaml --out bptt/`.

# %%
import os
import sys

from _lesson import Lesson, mnist_images

L = Lesson("09_autograd_check")
OUT, ROOT = L.out, L.root

from reference.twins import available, backend

if not available("torch"):
    NEED = "this lesson needs PyTorch (and, for section 1b, JAX): pip install -r requirements-autograd.txt"
    if "ipykernel" in sys.modules:
        raise RuntimeError(NEED)   # in a notebook: stop here, with the install command
    raise SystemExit(NEED)         # as a script: print the message and stop

# %% [markdown]
# A batch of 32 real MNIST test images, and the authors' MNIST CNN after ten training steps on 32 MNIST
# *training* images (so that every layer fires and every branch of TSSL-BP is used; the gradients are then
# checked on images the network has not been trained on). This lesson has no fast mode: it runs in
# seconds as it is (tutorials/README.md lists the times), and section 3's comparison needs the 32 images
# (on 8, the differences it measures are smaller than the noise of so few digits).

# %%
from reference.network import Network
from reference.optim import AdamW, train_step

n = 32
x_train, y_train = mnist_images(n, "train")   # to train on
x, y = mnist_images(n)                         # to check the gradients on (test images)
config = os.path.join(ROOT, "configs", "MNIST_CNN.yaml")
net = Network(config, seed=0)
opt = AdamW(net.weights, lr=5e-4)
for _ in range(10):
    train_step(net, x_train, y_train, opt)
weights = {k: v.copy() for k, v in net.weights.items()}
print(f"weights after {opt.step_count} AdamW steps on {n} MNIST training images; gradients checked on "
      f"{n} MNIST test images")

# %% [markdown]
# ## 1. Ours against the PyTorch twin
# Per layer: the largest absolute difference, the same relative to the largest entry, and the cosine
# similarity of our weight gradient and delta with the twin's. In float64 the two differ only by the
# order of the sums; in float32 (the authors' precision) by rounding.

# %%
from reference.twins.check import check_network, check_parts, format_rows

rows = check_parts(backend("torch", "float64"))
rows += check_network(config, backend("torch", "float64"), weights, x, y, dtype="float64")
rows += check_network(config, backend("torch", "float32"), weights, x, y, dtype="float32")
print(format_rows(rows))
worst64 = max(r.rel for r in rows if "float64" in r.group)
worst32 = max(r.rel for r in rows if "float32" in r.group)
print(f"\nworst relative error: parts {max(r.rel for r in rows if r.group == 'parts'):.1e}, "
      f"network float64 {worst64:.1e}, float32 {worst32:.1e}; all within tolerance: {all(r.ok for r in rows)}")

# %% [markdown]
# ## 1b. Ours against the JAX twin
# The same network written with JAX (the spiking non-linearity's backward as a `jax.custom_vjp`), in
# float64. It runs only if JAX is installed.

# %%
if available("jax"):
    jrows = check_network(config, backend("jax", "float64"), weights, x, y, dtype="float64")
    print(format_rows(jrows))
    worst_jax = max(r.rel for r in jrows)
    print(f"\nJAX twin, network float64: worst relative error {worst_jax:.1e}; "
          f"all within tolerance: {all(r.ok for r in jrows)}")
    assert all(r.ok for r in jrows)
else:
    print("JAX is not installed, so the JAX twin is skipped: pip install -r requirements-autograd.txt")

# %% [markdown]
# ## 2. TSSL-BP against surrogate-gradient BPTT
# Both gradients come from the same forward pass (same spikes, same loss). TSSL-BP uses the spike
# timing (`min(1/du, 8)`) where a neuron fires and carries reset and leak through its intra-neuron term;
# BPTT uses the sigmoid surrogate everywhere and unrolls the membrane. How alike are they?

# %%
from reference.app.plots import plot_bptt
from reference.twins.bptt import compare_bptt, format_bptt

brows, ts, bp = compare_bptt(config, backend("torch", "float64"), weights, x, y)
print(format_bptt(brows))
png = plot_bptt(brows, os.path.join(OUT, "tsslbp_vs_bptt.png"), "MNIST CNN, TSSL-BP vs surrogate BPTT")
L.show(png)
w = [r for r in brows if r.t < 0]
print("\nweight-gradient cosine per layer: " + ", ".join(f"{r.layer} {r.cos:.2f}" for r in w))
print(f"smallest weight-gradient cosine, TSSL-BP vs BPTT: {min(r.cos for r in w):.2f}")
assert min(r.cos for r in w) > 0.3, "TSSL-BP and BPTT should agree in direction on every layer's weights"
print(f"wrote {L.shown(png)}")

# %% [markdown]
# The two rules agree in direction on the weights (every layer's cosine above 0.3, asserted above) but
# not in detail, and they weigh the time steps differently: compare the norms of the two deltas per step
# in the table above.
# Which one trains better on the same budget is figure 4 of `figures/` (the ablation).

# %%
import matplotlib.pyplot as plt

layers = list(dict.fromkeys(r.layer for r in brows))
fig, ax = plt.subplots(figsize=(7, 3.2))
for i, name in enumerate(layers):
    rs = [r for r in brows if r.layer == name and r.t >= 0]
    ax.plot([r.t for r in rs], [r.norm_ratio for r in rs], "o-", color=f"C{i}", label=name)
ax.axhline(1, color="k", lw=0.8, ls="--")
ax.set_yscale("log")
ax.set_xticks(sorted({r.t for r in brows if r.t >= 0}))
ax.set_xlabel("time step t")
ax.set_ylabel(r"$\|\delta_{TSSL-BP}[t]\| / \|\delta_{BPTT}[t]\|$")
ax.set_title("Where in time each rule puts its error (per layer)")
ax.legend(fontsize=8)
fig.tight_layout()
L.save(fig, "norm_ratio_per_step")

# %% [markdown]
# ## 3. Through the reset, or with the reset detached?
#
# Our BPTT baseline differentiates *through* the reset: the membrane carried to the next step is
# `u[t] (1 - s[t])`, and with the surrogate `ds/du ~ f(u)` that product has the derivative
# `(1 - s[t]) - u[t] f(u[t])`. The second part is the reset's own surrogate derivative: the membrane a spike
# removes, times the error on the later membrane. Common practice drops it: SpyTorch's tutorial writes
# `rst = out.detach()` ("we do not want to backprop through the reset") and snnTorch's neurons build their
# reset signal with `.detach()`, so the reset is a constant of the backward pass. TSSL-BP's intra-neuron
# term is its own answer to the same question (lesson 5): it carries the reset's effect through the spike
# *time*, not through a surrogate of the spike.
#
# Both BPTT variants are one option away (`Network(backward="bptt")`, `backward="bptt-detached"`; the CLI's
# `--backward`). On the lesson's digits, how far apart are they, and which is nearer TSSL-BP?

# %%
import numpy as np

from reference.tsslbp import warmup_surrogate

grads = {}
for rule in ("tsslbp", "bptt", "bptt-detached"):
    n = Network(config, backward=rule)
    n.set_weights(weights)
    grads[rule] = n.gradients(x.astype(np.float32), y)[1]


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


cos_through = {k: cosine(grads["tsslbp"][k], grads["bptt"][k]) for k in weights}
cos_detached = {k: cosine(grads["tsslbp"][k], grads["bptt-detached"][k]) for k in weights}
print(f"{'layer':8s} {'BPTT: detached vs through':>27s} {'cos(TSSL-BP, BPTT)':>20s} {'cos(TSSL-BP, detached)':>24s}")
for name in weights:
    a, b = grads["bptt"][name], grads["bptt-detached"][name]
    rel = float(np.abs(a - b).max() / np.abs(a).max())
    print(f"{name:8s} {f'max rel. difference {rel:.2f}':>27s} {cos_through[name]:20.3f} {cos_detached[name]:24.3f}")
names = list(weights)
assert all(not np.array_equal(grads["bptt"][k], grads["bptt-detached"][k]) for k in names)  # detaching changes each
assert all(cos_detached[k] > cos_through[k] for k in names), "detaching should bring every layer nearer TSSL-BP"
assert all(cos_detached[a] < cos_detached[b] for a, b in zip(names, names[1:])), "cosines should rise to the output"

# %% [markdown]
# Detaching changes every layer's gradient and brings every layer *nearer* TSSL-BP (both asserted above;
# the printed differences show by how much, layer by layer). The nearer a layer is to the output, the more alike all three rules are:
# the output layer's delta depends on its own neurons only, while conv_1's has gone through every layer
# above it, and every difference between the rules compounds on the way down. Even detached, conv_1's
# cosine stays well below 1: the rules really differ there, and they are not two roundings of one
# gradient as in section 1.
#
# Why does detaching help? Look at the factor the reset puts on the error that reaches earlier steps
# through the membrane, `d u_r[t] / d u[t] = (1 - s[t]) - u[t] f(u[t])`. At a spike step `s = 1`, so it is
# `-u[t] f(u[t])`: negative, and since `u` has just crossed the threshold where the surrogate `f` peaks
# (at 1.25), about as large as the factor 1 a silent step passes on (the leak's `1 - theta_m` then acts on
# both alike, on the way to the step before). Through the reset, the error reaches
# the steps before a spike with its sign flipped. Detaching sets this factor to 0 at spike steps: the
# error of later steps then stops at a spike instead of coming back negated. TSSL-BP does not set it to 0;
# it gives it the other sign, through the spike *time* (section 4 below, and lesson 5, section 3b), never
# through a flipped surrogate. Measured on the lesson's digits:

# %%
fwd = Network(config)
fwd.set_weights(weights)
fwd.forward(x.astype(np.float32))
print(f"{'layer':8s} {'spike steps':>12s} {'mean factor':>12s} {'min factor':>11s} {'silent steps < 0':>17s}")
thresholds = {layer.name: layer.threshold for layer in fwd.layers if hasattr(layer, "threshold")}
factors = {}
for rec in fwd.records:
    if rec.state is None:
        continue   # pooling and dropout have no neurons
    u, s = rec.state.u.astype(np.float64), rec.state.s.astype(np.float64)
    factor = (1 - s) - u * warmup_surrogate(u, thresholds[rec.name])
    fired = s == 1
    factors[rec.name] = factor[fired]
    print(f"{rec.name:8s} {int(fired.sum()):12d} {factor[fired].mean():12.3f} {factor[fired].min():11.3f} "
          f"{(factor[~fired] < 0).mean():16.1%}")
assert all(f.size > 0 and f.max() < 0 for f in factors.values()), "the reset flips the sign at every spike step"
assert all(f.mean() < -0.5 for f in factors.values()), "and it is not small"

# %% [markdown]
# At every spike step of every layer the factor is negative, and its mean is below -0.5 in every layer
# (both asserted; the table gives the numbers).
# A few silent steps have a negative factor too: those whose membrane came within about a tenth of the
# threshold, where `u f(u)` exceeds 1 without a spike. Which variant of BPTT trains better is an
# experiment (`python -m reference train --backward bptt-detached ...`).
#
# ## 4. The reset's sign: TSSL-BP and BPTT answer the same question oppositely
#
# At a spike step both rules pass the error `c` of a later membrane back to `u[k]` through the reset, and
# they give it opposite signs:
#
# - **BPTT** differentiates `u_r = u (1 - s)` with the surrogate `ds/du = f(u)`: a higher membrane makes
#   the spike "more present" at this step, so the reset removes more charge and the later membrane is
#   *lower*. Its factor on the next step's membrane is `-(1 - theta_m) u[k] f(u[k]) < 0` (the reset, then
#   the leak that carries `u_r[k]` into step k + 1).
# - **TSSL-BP** keeps the spike all-or-none. A higher membrane cannot make the spike more present; it
#   makes it come *earlier*, by `min(1/du[k], 8)` per unit of `u` (lesson 4). The `u[k]` an earlier reset
#   removes has faded with the leak for longer by the time a later step reads the membrane, so the later
#   membrane is *higher*. Its reset factor is `+theta_m u[k] min(1/du[k], 8) > 0`, the reset half of the
#   intra term (derived in lesson 5, section 3b).
#
# In the discrete neuron the true derivative across a spike step is 0 (lesson 5, section 3), so both are
# models. Which sign is physical? Simulate the neuron with a clock 1000 times finer (as lesson 4 does),
# raise its membrane a little half a step before the coarse step in which it first fires begins (at time
# `k1 - 1.5`, coarse step `k` covering the time from `k - 1` to `k`), and see what the later membrane does.

# %%
from reference.neuron import lif_forward
from reference.params import NeuronParams

P1 = NeuronParams(tau_m=5, tau_s=3, threshold=1.0, n_steps=12)
X_IN = 0.32                                   # a constant input: the neuron fires every 5 steps
one = lif_forward(np.full((P1.n_steps, 1), X_IN), P1)
k1 = int(np.flatnonzero(one.s[:, 0])[0])      # its first spike step
u_k, du_k = float(one.u[k1, 0]), float(one.du[k1, 0])
factor_tsslbp = P1.theta_m * u_k * min(1 / du_k, 8)
factor_bptt = -(1 - P1.theta_m) * u_k * float(warmup_surrogate(np.array([u_k]), P1.threshold)[0])

DT, NUDGE = 1e-3, 1e-3                        # fine step (in coarse steps) and the raise of the membrane
n_fine = int(round(P1.n_steps / DT))
P_fine = NeuronParams(tau_m=P1.tau_m / DT, tau_s=P1.tau_s, threshold=P1.threshold, n_steps=n_fine)
t_fine = -1 + DT * (np.arange(n_fine) + 1)   # the time of each fine step (coarse step k ends at time k)


j_raise = int(round((k1 - 1.5 + 1) / DT)) - 1   # the fine step at time k1 - 1.5: half a step before step k1 begins


def fine(nudge):
    x_fine = np.full((n_fine, 1), X_IN * DT)
    x_fine[j_raise, 0] += nudge
    return lif_forward(x_fine, P_fine)


base, raised = fine(0.0), fine(NUDGE)
j_later = int(round((k1 + 2 + 1) / DT)) - 1   # the end of coarse step k1 + 2, between the two spikes
response = float(raised.u[j_later, 0] - base.u[j_later, 0]) / NUDGE
raise_alone = (1 - P_fine.theta_m) ** (j_later - j_raise)   # the raise itself, faded by the leak (lesson 5, 3b)
times = [t_fine[np.flatnonzero(r.s[:, 0])] for r in (base, raised)]
print(f"coarse neuron: first spike at step {k1}, u = {u_k:.3f}, du = {du_k:.3f}")
print(f"fine clock: spikes at {np.round(times[0], 3)}, after the raise at {np.round(times[1], 3)}")
print(f"fine clock: later membrane (time {k1 + 2}) per unit of raise: {response:+.2f}, of which the raise itself, "
      f"faded, is {raise_alone:+.2f}; the reset's timing adds {response - raise_alone:+.2f}")
print(f"TSSL-BP's reset factor theta_m u min(1/du, 8): {factor_tsslbp:+.2f};  "
      f"BPTT's -(1 - theta_m) u f(u): {factor_bptt:+.2f}")
assert np.all(times[1] < times[0]), "raising the membrane brings both spikes earlier"
assert response > raise_alone > 0 and factor_tsslbp > 0 > factor_bptt, "the reset adds: TSSL-BP's sign, not BPTT's"

fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(7, 4.6), sharex=True)
ax1.plot(t_fine, base.u[:, 0], color="k", lw=1, label="fine clock")
ax1.plot(np.arange(P1.n_steps), one.u[:, 0], "o", color="C0", label="coarse steps u[k]")
ax1.axhline(P1.threshold, color="gray", ls=":", lw=0.8)
ax1.set_ylabel("membrane u")
ax1.legend(fontsize=8, loc="upper left")
ax2.plot(t_fine, (raised.u[:, 0] - base.u[:, 0]) / NUDGE, color="C2", lw=1)
ax2.axhline(0, color="k", lw=0.5)
ax2.plot([k1 + 2], [response], "o", color="C2")
ax2.annotate(f"later membrane {response:+.2f}\nreset factor: TSSL-BP {factor_tsslbp:+.2f}, BPTT {factor_bptt:+.2f}",
             (k1 + 2, response), xytext=(k1 + 0.4, 0.2), fontsize=8, arrowprops=dict(arrowstyle="->", lw=0.6))
ax2.set_xlabel("time (coarse steps)")
ax2.set_ylabel("change of u per unit\nof the raise")
ax2.set_ylim(-0.5, 2.6)  # (between the two runs' resets, one fine step each, the change dips far below)
ax1.set_title(f"Raise the membrane at t = {k1 - 1.5}: the spike comes earlier, the later membrane rises", fontsize=9)
fig.tight_layout()
L.save(fig, "reset_sign")

# %% [markdown]
# The raise brings the first spike earlier and the second follows it. In continuous time the raise itself
# survives the reset (the reset removes the threshold, whatever the membrane held), so part of the later
# membrane's rise is just the raise, faded by the leak; the reset's timing is what comes on top of it
# (both printed). That part is positive, as asserted: an earlier reset leaves a higher membrane, the sign
# of TSSL-BP's reset factor and the opposite of BPTT's, which would put the later membrane *below* the
# faded raise. The sizes are not equal to either coarse factor (printed), and neither rule claims the fine
# clock's value: the discrete neuron's reset to 0 takes the raise with it, and lesson 5, section 3b,
# derives the timing part and checks it on a finer clock. This is also why section 3's detached BPTT is
# nearer TSSL-BP than BPTT through the reset: a factor of 0 lies between the two opposite signs.

# %%
L.done()
