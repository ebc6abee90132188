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
# Needs `pip install -r requirements-autograd.txt` (torch, jax). The same from the shell:
# `python -m reference gradcheck --config configs/MNIST_CNN.yaml` and
# `python -m reference bptt-compare --config configs/MNIST_CNN.yaml --out bptt/`.

# %%
import os
import sys

from _lesson import Lesson, mnist_images

L = Lesson("09_autograd_check")
FAST, OUT, ROOT = L.fast, L.out, L.root

from reference.autograd import available, backend  # noqa: E402

if not available("torch"):
    NEED = "this lesson needs PyTorch (and, for section 1b, JAX): pip install -r requirements-autograd.txt"
    if "ipykernel" in sys.modules:
        raise RuntimeError(NEED)   # in a notebook: stop here, with the install command
    raise SystemExit(NEED)         # as a script: print the message and stop

# %% [markdown]
# A batch of real MNIST test images, and the authors' MNIST CNN after a few training steps on a batch of
# MNIST *training* images (so that every layer fires and every branch of TSSL-BP is used; the gradients
# are then checked on images the network has not been trained on).

# %%
from reference.network import Network  # noqa: E402
from reference.optim import AdamW, train_step  # noqa: E402

n = 8 if FAST else 32
x_train, y_train = mnist_images(n, "train")   # to train on
x, y = mnist_images(n)                         # to check the gradients on (test images)
config = os.path.join(ROOT, "configs", "MNIST_CNN.yaml")
net = Network(config, seed=0)
opt = AdamW(net.weights, lr=5e-4)
for _ in range(2 if FAST else 10):
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
from reference.autograd.check import check_network, check_parts, format_rows  # noqa: E402

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
from reference.autograd.bptt import compare_bptt, format_bptt, plot_bptt  # noqa: E402

brows, ts, bp = compare_bptt(config, backend("torch", "float64"), weights, x, y)
print(format_bptt(brows))
png = plot_bptt(brows, os.path.join(OUT, "tsslbp_vs_bptt.png"), "MNIST CNN, TSSL-BP vs surrogate BPTT")
L.show(png)
w = [r for r in brows if r.t < 0]
print("\nweight-gradient cosine per layer: " + ", ".join(f"{r.layer} {r.cos:.2f}" for r in w))
print(f"smallest weight-gradient cosine, TSSL-BP vs BPTT: {min(r.cos for r in w):.2f}")
assert min(r.cos for r in w) > 0.3, "TSSL-BP and BPTT should agree in direction on every layer's weights"
print(f"wrote {png}")

# %% [markdown]
# The two rules agree in direction on the weights (every layer's cosine above 0.3, asserted above) but
# not in detail, and they weigh the time steps differently: compare the norms of the two deltas per step
# in the table above.
# Which one trains better on the same budget is figure 4 of `figures/` (the ablation).

# %%
import matplotlib.pyplot as plt  # noqa: E402

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
import numpy as np  # noqa: E402

grads = {}
for rule in ("tsslbp", "bptt", "bptt-detached"):
    n = Network(config, backward=rule)
    n.set_weights(weights)
    grads[rule] = n.gradients(x.astype(np.float32), y)[1]


def cosine(a, b):
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


print(f"{'layer':8s} {'BPTT: detached vs through':>27s} {'cos(TSSL-BP, BPTT)':>20s} {'cos(TSSL-BP, detached)':>24s}")
for name in weights:
    a, b = grads["bptt"][name], grads["bptt-detached"][name]
    rel = float(np.abs(a - b).max() / np.abs(a).max())
    print(f"{name:8s} {f'max rel. difference {rel:.2f}':>27s} {cosine(grads['tsslbp'][name], a):20.3f} "
          f"{cosine(grads['tsslbp'][name], b):24.3f}")
assert all(cosine(grads["tsslbp"][k], grads["bptt-detached"][k]) > 0.8 for k in weights)   # "nearly the same direction"
assert any(not np.array_equal(grads["bptt"][k], grads["bptt-detached"][k]) for k in weights)  # detaching changes them

# %% [markdown]
# Detaching changes every layer's gradient, here the first layers' most: the reset acts wherever a neuron
# fires, and what it changes in one layer's delta reaches every layer below it. Both variants point in
# nearly the same direction as TSSL-BP on these digits; which trains better is an experiment
# (`python -m reference train --backward bptt-detached ...`).
L.done()
