# %% [markdown]
# # Lesson 7: the full backward pass through a spiking network
#
# The earlier lessons took TSSL-BP apart one neuron at a time. A network chains those neurons: the loss
# hands the output layer its error, TSSL-BP turns each layer's error on its output PSP into an error on
# its input current, and the layer's weights turn that into a weight gradient and into the error of the
# layer below. This lesson follows that chain through a real network on real MNIST digits and looks at
# where the error goes.
#
# You will:
# - work one neuron's delta through by hand (three steps, every number in the text), then check it;
# - write the backward loop of `reference.network.Network.backward` out by hand, layer by layer, and
#   check that it gives the very same numbers;
# - check the two matrix formulas of every layer, `dL/dW = sum_t delta[t] a[t]^T` and
#   `dL/da = W^T delta`, against the library;
# - draw the **gradient flow**: how much error reaches each layer at each time step
#   (`reference.app.plots.gradient_flow_heatmap`);
# - count which TSSL-BP branch (warm-up, inter, intra) produced the deltas of each layer
#   (`reference.app.plots.branch_fractions_bar`);
# - look at first-layer weight gradients as images, and see why, for one digit, every row of the
#   gradient is a copy of that digit;
# - do the same on the authors' MNIST CNN (convolution and pooling in the chain).

# %%
import matplotlib.pyplot as plt
import numpy as np
from _lesson import Lesson, mnist_images

L = Lesson("07_full_backward")

from reference.app import plots
from reference.network import Network
from reference.neuron import psp
from reference.optim import AdamW, train_step
from reference.tsslbp import BRANCH_INTER, branch_fractions, tsslbp_delta

# %% [markdown]
# ## 0. One delta with pencil and paper
#
# Before a whole network, one neuron, `T = 3` steps, every number by hand (`tau_m = 5` so
# `theta_m = 0.2`; `tau_s = 3` so `theta_s = 1/3`; threshold 1). Its input current is
# `x = [0.6, 0.7, 1.2]`.
#
# **Forward.** Step 0: `du[0] = -0.2 * 0 + 0.6 = 0.6`, `u[0] = 0.6`, below the threshold: no spike,
# `a[0] = 0`. Step 1: `du[1] = -0.2 * 0.6 + 0.7 = 0.58`, `u[1] = 0.6 + 0.58 = 1.18 > 1`: a spike,
# `a[1] = (2/3) * 0 + 1/3 = 0.3333`, and the membrane resets to 0. Step 2: `du[2] = -0.2 * 0 + 1.2 = 1.2`,
# `u[2] = 1.2 > 1`: a spike, `a[2] = (2/3)(1/3) + 1/3 = 0.5556`.
#
# **The error on its PSP.** Say the loss is `1/2 sum (a - target)^2` with `target = [0, 0.5, 0.5]`: then
# `g = a - target = [0, -0.1667, 0.0556]` (the neuron fired too little at step 1, too much at step 2).
#
# **The error on each spike**, `G[k] = sum_{m >= k} eps[m-k] g[m]` with `eps = [1/3, 2/9, 4/27]`:
# `G[2] = (1/3)(0.0556) = 0.0185`; `G[1] = (1/3)(-0.1667) + (2/9)(0.0556) = -0.0432`;
# `G[0] = (2/9)(-0.1667) + (4/27)(0.0556) = -0.0288`.
#
# **Inter-neuron term**, `s[k] min(1/du[k], 8) G[k]`: `inter[0] = 0` (no spike), `inter[1] = -0.0432 / 0.58
# = -0.0745`, `inter[2] = 0.0185 / 1.2 = 0.0154`.
#
# **Intra-neuron term**, backwards with the carried `c` (lesson 5), starting at `c = 0`:
# - `k = 2`: `intra[2] = 0`; the neuron fired, so `c = inter[2] + intra[2] = 0.0154`;
# - `k = 1`: it fired, so the reset term: `intra[1] = c theta_m u[1] / du[1] = 0.0154 * 0.2 * 1.18 / 0.58
#   = 0.0063`; then `c = inter[1] + intra[1] = -0.0682`;
# - `k = 0`: silent, so the leak term: `intra[0] = c (1 - theta_m) = -0.0682 * 0.8 = -0.0546`.
#
# **Warm-up switch**, the own PSP against `1/(4 tau_s) = 0.0833`: `a[0] = 0` is below it, so step 0 takes
# the warm-up `G[0] f(u[0])`, with `z = (1 - 0.6)/0.2 = 2` and `f = e^2 / ((1 + e^2)^2 * 0.2) = 0.5250`:
# `-0.0288 * 0.5250 = -0.0151`. Steps 1 and 2 (`a = 0.33, 0.56`) keep TSSL-BP.
#
# **Result**: `delta = [-0.0151 (warm-up), -0.0745 + 0.0063 = -0.0682, 0.0154]`. Negative at steps 0 and
# 1: more input current there would lower the loss (the neuron should fire more at step 1); positive at
# step 2, where it fired too much. The library must agree:

# %%
from reference.neuron import lif_forward
from reference.params import NeuronParams

P3 = NeuronParams(n_steps=3)
st3 = lif_forward(np.array([[0.6], [0.7], [1.2]]), P3)
g3 = st3.a - np.array([[0.0], [0.5], [0.5]])
delta3, branch3 = tsslbp_delta(g3, st3, P3)
print("u  =", np.round(st3.u[:, 0], 4), " du =", np.round(st3.du[:, 0], 4), " s =", st3.s[:, 0])
print("a  =", np.round(st3.a[:, 0], 4), " g =", np.round(g3[:, 0], 4))
print("delta =", np.round(delta3[:, 0], 4), " branches:", [{0: "warm-up", 1: "inter", 2: "intra"}[int(b)] for b in branch3[:, 0]])
assert np.allclose(delta3[:, 0], [-0.0151, -0.0682, 0.0154], atol=5e-5)
assert branch3[:, 0].tolist() == [0, 1, 1]
L.explore([0.6, 0.7, 1.2], g3, P3)  # the same neuron, live: try x[1] = 0.5

# %% [markdown]
# ## 1. The data flow
#
# Notation of [`docs/paper-notes.md`](../docs/paper-notes.md); layer `l` has weights `W_l`, input PSP
# `a_{l-1}` (for `l = 1`, the image repeated over the `T = 5` steps and passed through the PSP filter,
# `Network.encode`), input current `x_l[t] = W_l a_{l-1}[t]`, membrane `u_l`, increment `du_l`, spikes
# `s_l` and output PSP `a_l = eps * s_l`. The backward pass is:
#
# ```
# loss (kernel_loss)            g_L = dL/da_L[t] = a_L[t] - target[t]
# for l = L .. 1:
#     TSSL-BP (tsslbp_delta)    delta_l[t] = dL/dx_l[t]      from g_l and the recorded u, du, s, a
#     layer (Dense.backward)    dL/dW_l = sum_t delta_l[t] a_{l-1}[t]^T
#                               g_{l-1}[t] = dL/da_{l-1}[t] = W_l^T delta_l[t]
# ```
#
# Inside `tsslbp_delta` is everything of the earlier lessons: the spike error
# `G[k] = sum_{m>=k} eps[m-k] g[m]` (`spike_error`), the inter-neuron term `s[k] min(1/du[k], 8) G[k]`
# (`inter_neuron_term`), the intra-neuron term carried back by `c` (`intra_neuron_term`), and the
# warm-up `G[k] f(u[k])` where the neuron's own PSP `a[k] < 1/(4 tau_s)` (`warmup_term`). Note what is
# *not* there: no error flows backwards in time through `a_{l-1}`; each step's `g_{l-1}[t]` comes from
# the same step's `delta_l[t]`.
# The time coupling lives entirely inside each neuron (the sum in `G` and the carried `c`).
#
# We take the authors' 400-400 MLP (`configs/demo_MNIST_MLP.yaml`: 784 -> 400 -> 400 -> 10, on MNIST)
# and train it for a few AdamW steps on training digits of the fixture (`mnist_images`), so that every
# layer fires and the TSSL-BP branches, not only the warm-up, are in use. The backward we study runs on
# test digits.

# %%
MLP = L.path("configs", "demo_MNIST_MLP.yaml")
x_train, y_train = mnist_images(200 if L.fast else 300, "train")
x, y = mnist_images(20 if L.fast else 50)  # the batch we differentiate

BATCH, PASSES = 50, (2 if L.fast else 3)
net = Network(MLP, seed=0)
opt = AdamW(net.weights, lr=net.config.network["lr"])
for _ in range(PASSES):
    for i in range(0, len(x_train), BATCH):
        train_step(net, x_train[i:i + BATCH], y_train[i:i + BATCH], opt)
print(f"MLP after {opt.step_count} AdamW steps on {len(x_train)} training digits; "
      f"differentiating a batch of {len(x)} test digits")

out = net.forward(x)  # output PSP a_L, (T, N, 10); net.records keeps u, du, s, a of every layer
for rec in net.records:
    print(f"  {rec.name:9s} output {str(rec.out.shape):15s} "
          f"firing rate {rec.state.firing_rate:.3f} spikes/step")

# %% [markdown]
# ## 2. The error the loss hands to the output layer
#
# The kernel loss (`reference.losses.kernel_loss`, called by `Network.loss`) compares the output PSP
# with a target PSP: the label neuron should follow the desired train `[0, 1, 1, 1, 1]` filtered twice
# (the authors' code), every other neuron should stay at 0. Its gradient is simply
# `g_L[t] = a_L[t] - target[t]`: negative where a neuron is below its target (more spikes wanted),
# positive where it is above (fewer spikes wanted).

# %%
loss, g_out = net.loss(out, y)
n0 = int(np.argmax(out.sum(axis=(0, 2))))  # the digit with the most output activity, to look at
target = np.zeros_like(out[:, n0])
target[:, y[n0]] = net.target
assert np.allclose(g_out[:, n0], out[:, n0] - target)  # g = a - target, nothing more
print(f"kernel loss on the batch: {loss:.3f} (1/2 sum of squares over samples, classes and steps)")
print(f"digit {n0}: label {y[n0]}, predicted {net.predict(out)[n0]}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 1.2]})
t = np.arange(net.n_steps)
other = int(np.argmax(np.where(np.arange(10) == y[n0], -np.inf, out[:, n0].sum(0))))
ax1.plot(t, net.target, "k--", marker="x", label="target of the label neuron")
ax1.plot(t, out[:, n0, y[n0]], marker="o", label=f"$a_L$ of neuron {y[n0]} (the label)")
ax1.plot(t, out[:, n0, other], marker="s", label=f"$a_L$ of neuron {other} (target 0)")
ax1.set_xlabel("time step t")
ax1.set_ylabel("output PSP $a_L[t]$")
ax1.set_xticks(t)
ax1.legend(fontsize=8)
ax1.set_title(f"output layer on one test digit (label {y[n0]})")
lim = np.abs(g_out[:, n0]).max()
im = ax2.imshow(g_out[:, n0].T, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto")
ax2.set_xlabel("time step t")
ax2.set_ylabel("output neuron (class)")
ax2.set_yticks(range(10))
ax2.set_xticks(t)
fig.colorbar(im, ax=ax2, label=r"$g_L[t] = a_L[t] - \mathrm{target}[t]$")
ax2.set_title(r"the loss's error $g_L = dL/da_L$ (blue: spike more)")
fig.tight_layout()
L.save(fig, "output_error")

# %% [markdown]
# ## 3. The backward loop, written out
#
# This is `Network.backward` for a network of dense spiking layers, in a few lines. Each layer is a
# `reference.layers.Spiking` layer: synapses (`layer.synapse`, a `Dense`) and LIF neurons. Layers keep
# nothing from the forward pass: what the backward needs came back from the forward as the layer's
# `cache` (kept in `rec.cache`): the neurons' state (`cache.state`: u, du, s, a) and the synapse's input
# `a_{l-1}` (`cache.synapse`). `layer.synapse.backward` does the two matrix products. (To save memory
# traffic the state stores only `du` and the spikes, as uint8; reading `u`, `s` or `a` recomputes them
# from those, bit for bit the forward's values: `reference.neuron.CompactState`. The TSSL-BP kernel
# does the same recomputation inside, a few hundred neurons at a time.)

# %%
thresholds = {name: c["threshold"] for name, c in net.config.layers}
g = g_out  # g_L, (T, N, 10)
by_hand, g_below, flow = {}, {}, []
for i in range(len(net.layers) - 1, -1, -1):
    layer, rec = net.layers[i], net.records[i]
    delta, branch = tsslbp_delta(g, rec.cache.state, net.params, thresholds[layer.name])  # dL/dx_l
    grad = layer.synapse.backward(delta, rec.cache.synapse, need_input_grad=i > 0)
    by_hand[layer.name], g_in = grad.dW, grad.g_in                                    # dL/dW_l, dL/da_{l-1}
    flow.append((layer.name, g.shape, delta.shape, by_hand[layer.name].shape,
                 None if g_in is None else g_in.reshape(net.n_steps, len(x), -1).shape))
    if i > 0:
        g = g_below[layer.name] = g_in.reshape(net.records[i - 1].out.shape)

print(f"{'layer':9s} {'g = dL/da (in)':16s} {'delta = dL/dx':16s} {'dL/dW':12s} {'dL/da_(l-1) (out)'}")
for name, gs, ds, ws, gis in flow:
    print(f"{name:9s} {str(gs):16s} {str(ds):16s} {str(ws):12s} {gis if gis else '(input: not needed)'}")

grads = net.backward(g_out)  # the library's loop
for name in grads:
    assert np.array_equal(grads[name], by_hand[name]), name
print("\nthe hand-written loop and Network.backward give bit-identical weight gradients")

# %% [markdown]
# Now the two formulas of every layer, written with `np.einsum` straight from the equations and compared
# with what the layer computed (float32, so agreement to a few float32 roundings: the library multiplies
# through BLAS in another order):
#
# - `dL/dW_l[i, j] = sum_t sum_n delta_l[t, n, i] a_{l-1}[t, n, j]`
# - `g_{l-1}[t, n, j] = sum_i W_l[i, j] delta_l[t, n, i]`

# %%
a_prev = [net.encode(x).reshape(net.n_steps, len(x), -1)] + [r.out for r in net.records[:-1]]
for i, (layer, rec) in enumerate(zip(net.layers, net.records)):
    dW = np.einsum("tni,tnj->ij", rec.delta.astype(np.float64), a_prev[i].astype(np.float64))
    rel_w = np.abs(dW - grads[layer.name]).max() / np.abs(dW).max()
    msg = f"{layer.name:9s} dL/dW: max rel. difference {rel_w:.1e}"
    assert rel_w < 1e-5
    if i > 0:
        g_prev = np.einsum("ij,tni->tnj", layer.weight.astype(np.float64), rec.delta.astype(np.float64))
        rel_g = np.abs(g_prev - g_below[layer.name]).max() / np.abs(g_prev).max()
        assert rel_g < 1e-5
        msg += f" | dL/da_(l-1) = W^T delta: {rel_g:.1e}"
    print(msg)

# %% [markdown]
# ## 4. Gradient flow: how much error reaches each layer, and when
#
# `reference.app.plots.gradient_flow_heatmap` draws the mean of `|delta_l[t]|` over neurons and samples, one
# row per layer and one column per time step: on a log scale (left), and divided by each layer's largest
# step (right), which shows *when* each layer receives its error.

# %%
deltas = {r.name: r.delta for r in net.records}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 3.4))
plots.gradient_flow_heatmap(deltas, ax=ax1, title=r"mean $|\delta_l[t]|$ (MLP)")
plots.gradient_flow_heatmap(deltas, ax=ax2, normalise="row", title="the same, each layer divided by its max")
fig.tight_layout()
L.save(fig, "gradient_flow_mlp")

mag = {name: np.abs(d).reshape(net.n_steps, -1).mean(axis=1) for name, d in deltas.items()}
for name, m in mag.items():
    print(f"{name:9s} mean |delta| per step: " + "  ".join(f"{v:.2e}" for v in m)
          + f"   (largest at t = {int(np.argmax(m))})")

# %% [markdown]
# What the picture shows, and why:
#
# - **Step 0 carries the least error in every layer** (asserted below). At `t = 0` the input PSP is
#   only `theta_s = 1/3` of the image (it approaches the image over the steps) and the membrane has
#   integrated one step, so few neurons are near threshold: nearly every delta at `t = 0` comes from the
#   warm-up surrogate `f(u)`, which is small far below threshold. The output layer's error is largest at
#   the last step, where the target PSP is largest (asserted below).
# - **The peak moves earlier as the error goes down the network** (never later; asserted below).
#   Between layers the error does not move in time (`g_{l-1}[t] = W^T delta_l[t]`), but inside every
#   neuron the spike error `G[k] = sum_{m>=k} eps[m-k] g[m]` gathers the error of the steps *after* `k`
#   onto a spike at `k`: a spike influences its PSP from then on. Each layer therefore hands the layer
#   below an error that sits a little earlier than its own.
# - **Per neuron, the output layer receives the largest error**; each hidden neuron gets a share of the
#   error of the layer above through `W^T`, filtered by its own `ds/du`.

# %%
def peak_steps(mags):
    """Step of the largest mean |delta| per layer, first layer first."""
    return [int(np.argmax(m)) for m in mags.values()]


for name, m in mag.items():
    assert int(np.argmin(m)) == 0, name
warm0 = {r.name: branch_fractions(r.branch[0])["warm-up"] for r in net.records}
print("share of warm-up deltas at t = 0: " + ", ".join(f"{k} {v:.1%}" for k, v in warm0.items()))
assert min(warm0.values()) > 0.9
assert all(np.diff(peak_steps(mag)) >= 0), peak_steps(mag)
assert int(np.argmax(mag["output"])) == net.n_steps - 1, mag["output"]
assert all(mag["output"].mean() > m.mean() for name, m in mag.items() if name != "output")
print(f"checked: t = 0 is the quietest step of every layer; the output layer's error peaks at the last step; "
      f"the peak steps {peak_steps(mag)} (first layer first) never move later towards the input; the output "
      "layer has the largest mean |delta|")

# %% [markdown]
# ## 5. Which branch of TSSL-BP made each delta
#
# `Network.backward` also records, per neuron and step, which branch produced `delta`
# (`net.records[i].branch`, codes in `reference.tsslbp.BRANCH_NAMES`):
#
# - **warm-up**: the neuron's own PSP `a[k] < 1/(4 tau_s)` (it has not fired lately), `delta = G f(u)`;
# - **inter (fired)**: it fired at `k`, `delta = s min(1/du, 8) G + c theta_m u min(1/du, 8)`;
# - **intra (silent)**: it did not fire at `k` and is not on warm-up (it fired recently),
#   `delta = c (1 - theta_m)`: the error carried back through the leak from its next spike, 0 where no
#   later spike sends any (`reference.tsslbp.BRANCH_INTRA`).
#
# `reference.tsslbp.branch_fractions` counts them; `reference.app.plots.branch_fractions_bar` draws the
# counts (left), the same per time step for the first hidden layer (middle), and each branch's share of
# the summed `|delta|` (right).

# %%
branches = {r.name: r.branch for r in net.records}
fig, axes = plt.subplots(1, 3, figsize=(14, 3.2))
plots.branch_fractions_bar(branches, ax=axes[0], title="share of neuron-steps, per layer")
first = net.records[0]
plots.branch_fractions_bar({f"t = {k}": first.branch[k] for k in range(net.n_steps)}, ax=axes[1],
                           title=f"{first.name}, per time step")
plots.branch_fractions_bar(branches, ax=axes[2], weights={r.name: np.abs(r.delta) for r in net.records},
                           title=r"share of $\sum|\delta|$, per layer")
fig.tight_layout()
L.save(fig, "branches_mlp")

for r in net.records:
    fr = branch_fractions(r.branch)
    share = branch_fractions(r.branch, np.abs(r.delta))
    print(f"{r.name:9s} neuron-steps: " + ", ".join(f"{k} {v:.1%}" for k, v in fr.items())
          + " | share of sum|delta|: " + ", ".join(f"{k} {v:.1%}" for k, v in share.items()))

# %% [markdown]
# Most neuron-steps are silent, so the warm-up branch is the most common in every layer; the fired
# steps are few but their deltas are large (`min(1/du, 8)` can reach 8, where the surrogate peaks at
# `1/(4 * 0.2) = 1.25`), so their share of the summed `|delta|` is larger than their share of the
# neuron-steps. The check below asserts this for every layer.

# %%
for r in net.records:
    fired = r.branch == BRANCH_INTER
    share = np.abs(r.delta[fired]).sum() / np.abs(r.delta).sum()
    assert share > fired.mean() or not fired.any(), r.name
    fr = branch_fractions(r.branch)
    assert max(fr, key=fr.get) == "warm-up", r.name
print("checked: warm-up is the most common branch in every layer, and in every layer that fires the fired "
      "steps carry more of sum|delta| than their share of neuron-steps")

# %% [markdown]
# ## 6. First-layer weight gradients as images
#
# Row `i` of `dL/dW_1` (400 x 784) holds the gradient of all 784 input weights of hidden neuron `i`;
# reshaped to 28 x 28 it is an image. For ONE digit the picture is simple: the input PSP is the image
# times a number per step, `a_0[t] = r[t] image` with `r[t] = 1 - (1 - theta_s)^(t+1)` (the PSP of a
# constant input, `reference.neuron.psp`; `r` for "ramp", not the carried term `c` of lesson 5), so
#
# `dL/dW_1[i, :] = sum_t delta_1[t, i] a_0[t] = (sum_t r[t] delta_1[t, i]) image`:
#
# every row is the same digit, scaled by one number per neuron. The gradient matrix has rank one.
# (The background is not white in the pictures: a normalised background pixel is
# `-0.1307/0.3081 = -0.42`, not 0, so it gets a small gradient of the opposite sign to the strokes.)
# With a batch, each row is a mix of the batch's digits, weighted by how much error each digit gave
# that neuron.

# %%
_, g1, _ = net.gradients(x[n0:n0 + 1], y[n0:n0 + 1])
sv = np.linalg.svd(g1["hidden_1"].astype(np.float64), compute_uv=False)
r_t = psp(np.ones(net.n_steps), net.params.tau_s)   # r[t], the input PSP's ramp
scale = (r_t[:, None] * net.records[0].delta[:, 0]).sum(0)  # sum_t r[t] delta_1[t, i], (400,)
predicted = scale[:, None] * x[n0].reshape(1, -1)
rel_pred = np.abs(predicted - g1["hidden_1"]).max() / np.abs(g1["hidden_1"]).max()
print(f"one digit: singular values of dL/dW_1: {sv[0]:.3e}, then {sv[1]:.1e} (ratio {sv[1] / sv[0]:.1e})")
print(f"dL/dW_1 = (sum_t r[t] delta_1[t, i]) * image, max rel. difference {rel_pred:.1e}")
assert sv[1] / sv[0] < 1e-5 and rel_pred < 1e-5

# %%
def show_rows(axes, dW, rows):
    """Rows of a (400, 784) gradient as 28x28 images, each with its own symmetric colour scale."""
    for ax, i in zip(axes, rows):
        img = dW[i].reshape(28, 28)
        lim = np.abs(img).max() or 1.0
        ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"neuron {i}", fontsize=7, pad=2)
        ax.set_xticks([])
        ax.set_yticks([])


top1 = np.argsort(-np.abs(g1["hidden_1"]).sum(1), kind="stable")[:11]
topb = np.argsort(-np.abs(grads["hidden_1"]).sum(1), kind="stable")[:16]
fig = plt.figure(figsize=(11, 6.4))
sub = fig.subfigures(1, 2, width_ratios=[3, 4])
axl = sub[0].subplots(4, 3)
axl[0, 0].imshow(x[n0, 0], cmap="gray")
axl[0, 0].set_title(f"input digit (label {y[n0]})", fontsize=8, pad=2)
axl[0, 0].set_xticks([])
axl[0, 0].set_yticks([])
show_rows(axl.flat[1:], g1["hidden_1"], top1)
sub[0].suptitle("ONE digit: every row of $dL/dW_1$ is that digit\n(red > 0, blue < 0; sign = sign of "
                r"$\sum_t r[t]\,\delta_1[t,i]$)", fontsize=9)
axr = sub[1].subplots(4, 4)
show_rows(axr.flat, grads["hidden_1"], topb)
sub[1].suptitle(f"a batch of {len(x)} digits: the 16 rows of $dL/dW_1$ with the largest gradient\n"
                "(each a delta-weighted mix of the batch's digits)", fontsize=9)
L.save(fig, "weight_gradients_hidden_1")

# %% [markdown]
# ## 7. The same chain through the authors' MNIST CNN
#
# `configs/MNIST_CNN.yaml`: `conv_1` (15 filters 5x5) -> `pooling_1` -> `conv_2` (40 filters 5x5) ->
# `pooling_2` -> `FC_1` (300) -> `output` (10). Two new links in the chain:
#
# - a convolution's `dL/dW` sums `delta_l[t] a_{l-1}[t]^T` over every output position as well (the
#   filter is shared), and its `dL/da_{l-1}` is the transposed convolution (`Conv2d.backward`);
# - a pooling layer has no neurons and no TSSL-BP: its output is `theta` (1.1) times the sum over each
#   2x2 window, so `dL/da_in` is `theta` times the error on the window, copied to its four inputs
#   (`SumPool2d.backward`).
#
# Again a few AdamW steps first, so that every layer fires.

# %%
CNN = L.path("configs", "MNIST_CNN.yaml")
cnn = Network(CNN, seed=0)
copt = AdamW(cnn.weights, lr=cnn.config.network["lr"])
for _ in range(PASSES):
    for i in range(0, len(x_train), BATCH):
        train_step(cnn, x_train[i:i + BATCH], y_train[i:i + BATCH], copt)
closs, cgrads, cout = cnn.gradients(x, y)
print(f"CNN after {copt.step_count} AdamW steps; kernel loss on the test batch {closs:.3f}")
for rec in cnn.records:
    rate = f"firing rate {rec.state.firing_rate:.3f}" if rec.state is not None else "(no neurons)"
    print(f"  {rec.kind:8s} {rec.name:10s} delta {str(rec.delta.shape):22s} {rate}")

spiking = {r.name: r.delta for r in cnn.records if r.state is not None}
fig, axes = plt.subplots(1, 2, figsize=(13, 3.4))
plots.gradient_flow_heatmap(spiking, ax=axes[0], title=r"mean $|\delta_l[t]|$ (MNIST CNN, spiking layers)")
plots.branch_fractions_bar({r.name: r.branch for r in cnn.records if r.state is not None}, ax=axes[1],
                           title="TSSL-BP branch, share of neuron-steps")
fig.tight_layout()
L.save(fig, "gradient_flow_cnn")
cmag = {name: np.abs(d).reshape(cnn.n_steps, -1).mean(axis=1) for name, d in spiking.items()}
for name, m in cmag.items():
    print(f"{name:7s} mean |delta| per step: " + "  ".join(f"{v:.2e}" for v in m))
    assert int(np.argmin(m)) == 0, name
print("checked: t = 0 is again the quietest step of every spiking layer")
assert all(np.diff(peak_steps(cmag)) >= 0), peak_steps(cmag)
print(f"checked: peak steps {peak_steps(cmag)} (first layer first) never move later towards the input")

# %% [markdown]
# The first convolution's 15 filters (top) and their gradients (bottom), each with its own symmetric
# colour scale. A filter's gradient sums, over all 24 x 24 positions, steps and digits, the 5x5 input
# patch at that position times the filter's delta there. Pen strokes are wider than a pixel, so
# neighbouring pixels of a patch are alike and the gradients look smooth, while the weights, a few
# steps from their random initialisation, do not; the correlation of horizontally neighbouring entries,
# printed below, measures it.

# %%
W1, dW1 = cnn.weights["conv_1"][:, 0], cgrads["conv_1"][:, 0]  # (15, 5, 5)
fig, axes = plt.subplots(2, 15, figsize=(13, 2.3))
for f in range(15):
    for row, arr in ((0, W1[f]), (1, dW1[f])):
        lim = np.abs(arr).max() or 1.0
        axes[row, f].imshow(arr, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[row, f].set_xticks([])
        axes[row, f].set_yticks([])
    axes[0, f].set_title(f"{f}", fontsize=8)
axes[0, 0].set_ylabel("$W$", fontsize=10)
axes[1, 0].set_ylabel("$dL/dW$", fontsize=10)
fig.suptitle(f"conv_1: the 15 filters (5x5) and their gradients on {len(x)} test digits "
             "(red > 0, blue < 0)", fontsize=10)
L.save(fig, "conv1_filter_gradients")
norms = np.sqrt((dW1 ** 2).sum(axis=(1, 2)))
print("conv_1 gradient norm per filter: " + " ".join(f"{v:.2g}" for v in norms))


def neighbour_correlation(f):
    """Correlation of horizontally adjacent entries over a stack of filters (F, kh, kw)."""
    return np.corrcoef(f[:, :, :-1].ravel(), f[:, :, 1:].ravel())[0, 1]


corr_w, corr_g = neighbour_correlation(W1), neighbour_correlation(dW1)
print(f"neighbour correlation: weights {corr_w:+.2f}, gradients {corr_g:+.2f}")
assert corr_g > corr_w + 0.3

# %% [markdown]
# ## Summary
#
# - The loss gives `g_L = a_L - target`; per layer, `tsslbp_delta` turns `g_l = dL/da_l` into
#   `delta_l = dL/dx_l`, and the layer turns `delta_l` into `dL/dW_l = sum_t delta_l[t] a_{l-1}[t]^T` and
#   `g_{l-1} = W_l^T delta_l` (transposed convolution; pooling: `theta` times the window's error).
# - All coupling across time is inside the neurons; between layers the error moves step by step.
# - The gradient-flow and branch pictures are one call each for your own network:
#   `plots.gradient_flow_heatmap({r.name: r.delta for r in net.records if r.state is not None})` and
#   `plots.branch_fractions_bar({r.name: r.branch ...})`.
#
# Next, lesson 8 trains this MLP on the full MNIST set.

# %%
L.done()
