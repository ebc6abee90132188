# %% [markdown]
# # Lesson 2: a spiking network's forward pass on a real MNIST digit
#
# Lesson 1 ran one neuron. A TSSL-BP network is layers of the same neurons: every layer turns the PSPs
# of the layer below into currents (`x[t] = W a[t]`, a dense product or a convolution at every step), runs
# its LIF neurons, and passes on the PSPs of their spikes. Here we build the authors' MNIST network from
# their config file, push real digits through it, and look inside every layer.
#
# You will:
# - build `reference.network.Network` from the authors' `configs/MNIST_CNN.yaml` (15C5-P2-40C5-P2-300-10);
# - see how a static image becomes the first layer's input (repeated over `T` steps, through the PSP
#   filter: `Network.encode`);
# - read each layer's record (`net.records[i]`: `out`, `state.u`, `state.du`, `state.s`, `state.a`, time
#   first) and draw spike maps, rasters, spike-count histograms and firing rates per layer;
# - read the output layer's PSPs and the "spike count" the prediction uses (`Network.predict`), before and
#   after a few training steps on real digits (`reference.optim.AdamW`, `train_step`).

# %%
import numpy as np
import matplotlib.pyplot as plt

from _lesson import Lesson, mnist_images

from reference.app import plots
from reference.network import Network, to_authors_layout
from reference.optim import AdamW, train_step

L = Lesson("02_forward_network")
rng = np.random.default_rng(0)

x_test, y_test = mnist_images(100 if L.fast else 300, "test")   # (n, 1, 28, 28) normalised, (n,)
x_train, y_train = mnist_images(300, "train")
digits = x_test[:3]            # three digits we follow through the lesson
print(f"test images {x_test.shape}, labels of the three digits: {y_test[:3].tolist()}")

# %% [markdown]
# ## 1. The network, from the authors' config
#
# `Network(path)` reads a YAML file in the authors' schema (`Network:` settings, `Layers:` in order),
# checks it, and initialises the weights as the authors do (seeded). Shapes below are the authors'
# `(C, H, W)`; weights are in their layouts: conv `(out, in, kh, kw)`, dense `(out, in)`, no biases.
# Pooling layers have no neurons and no weights: each output is `theta` (1.1) times the sum of a 2x2
# window of PSPs.

# %%
net = Network(L.path("configs", "MNIST_CNN.yaml"), seed=0)
P = net.params
print(f"T = {net.n_steps}, tau_m = {P.tau_m:g}, tau_s = {P.tau_s:g}, loss = {net.loss_name}")
for name, c in net.config.layers:
    w = net.weights.get(name)
    print(f"  {name:10s} {c['type']:8s} in {str(c['in_shape']):14s} out {str(c['out_shape']):14s} "
          f"weight {'-' if w is None else w.shape}")

# %% [markdown]
# ## 2. From image to spikes: the input encoding
#
# The network sees no spikes at its input. The authors feed the normalised image itself (pixel values
# from `-0.1307/0.3081` for the black background to `(1 - 0.1307)/0.3081` for white ink, after MNIST's
# mean/std normalisation) as the same value at every one of the `T` steps, and pass that through the
# PSP filter of lesson 1, exactly like a spike train: `a_0 = eps * x`. So the input to the first layer
# *grows* over the first steps, as `x (1 - (1 - theta_s)^(t+1))`, towards the pixel value.
# `Network.encode(images)` does this and returns the internal layout `(T, N, H, W, C)`: time first,
# channels last.

# %%
a0 = net.encode(digits)                      # (T, N, H, W, C) = (5, 3, 28, 28, 1)
print(f"a_0 shape {a0.shape} (T, N, H, W, C)")
img = digits[0, 0]                           # (28, 28)
ink = np.unravel_index(np.argmax(img), img.shape)
background = (0, 0)
growth = 1 - (1 - P.theta_s) ** (np.arange(net.n_steps) + 1)            # (T,)
for px in (ink, background):
    assert np.allclose(a0[:, 0, px[0], px[1], 0], img[px] * growth, atol=1e-6)
print(f"ink pixel value {img[ink]:.3f}, background {img[background]:.3f}; "
      f"a_0 reaches {growth[-1]:.3f} of the pixel value at t = {net.n_steps - 1}")

panels = ["img"] + [f"t{t}" for t in range(net.n_steps)] + ["line"]
fig, ax_d = plt.subplot_mosaic([panels], figsize=(15, 3.6), layout="constrained",
                               width_ratios=[1] * (net.n_steps + 1) + [1.8])
vmin, vmax = img.min(), img.max()
ax_d["img"].imshow(img, cmap="gray", vmin=vmin, vmax=vmax)
ax_d["img"].set_title(f"image (label {y_test[0]})")
for t in range(net.n_steps):
    im = ax_d[f"t{t}"].imshow(a0[t, 0, :, :, 0], cmap="gray", vmin=vmin, vmax=vmax)
    ax_d[f"t{t}"].set_title(f"$a_0[t={t}]$")
for name in panels[:-1]:
    ax_d[name].axis("off")
fig.colorbar(im, ax=[ax_d[name] for name in panels[:-1]], orientation="horizontal", shrink=0.5,
             label="value (normalised pixel units, same scale for all)")
ax = ax_d["line"]
for px, lab, col in ((ink, "ink pixel", "C3"), (background, "background pixel", "C0")):
    ax.plot(np.arange(net.n_steps), a0[:, 0, px[0], px[1], 0], marker="s", ms=4, color=col,
            label=f"{lab}: $a_0[t]$")
    ax.axhline(img[px], color=col, ls=":", lw=1.2, label=f"{lab} value {img[px]:.2f}")
ax.set_xticks(range(net.n_steps))
ax.set_xlabel("time step t")
ax.set_ylabel("input PSP $a_0[t]$")
ax.set_title("two pixels over time")
ax.legend(fontsize=7)
L.save(fig, "encoding")

# %% [markdown]
# ## 3. The forward pass and what it records
#
# `out = net.forward(images)` runs every layer and returns the output layer's PSP, `(T, N, n_class)`.
# Along the way it keeps one `LayerRecord` per layer in `net.records`:
#
# - `rec.out`: the layer's output PSP (for pooling, the pooled PSP), internal layout `(T, N, H, W, C)` or
#   `(T, N, F)`;
# - `rec.state` (spiking layers only, `None` for pooling): the `NeuronState` of lesson 1, `u` (membrane
#   before reset), `du` (its increment), `s` (spikes), `a` (PSP, the same array as `out`), all `(T, N, ...)`.
#
# `net.layer_outputs()` gives the same PSPs in the authors' layout `(N, C, H, W, T)`, for comparison with
# their code. The firing rate of a layer is `rec.state.firing_rate` (spikes per neuron and step) and the
# spike count of each neuron `rec.state.s.sum(axis=0)`, as in lesson 1.

# %%
out = net.forward(digits)                    # (T, N, 10)
print(f"output PSP shape {out.shape} (T, N, n_class)\n")
print(f"{'layer':10s} {'kind':8s} {'out (internal)':22s} {'authors (N,C,H,W,T)':22s} {'rate':>6s} {'silent':>7s}")
authors = net.layer_outputs()
for rec in net.records:
    assert np.array_equal(authors[rec.name], to_authors_layout(rec.out))
    if rec.state is not None:
        assert rec.state.a is rec.out or np.array_equal(rec.state.a, rec.out)
        count = rec.state.s.sum(axis=0)      # (N, ...) spikes per neuron
        rate, silent = f"{rec.state.firing_rate:6.3f}", f"{(count == 0).mean():7.1%}"
    else:
        rate = silent = "     -"
    print(f"{rec.name:10s} {rec.kind:8s} {str(rec.out.shape):22s} {str(authors[rec.name].shape):22s} {rate} {silent}")

# pooling, checked by hand: theta times the sum of each 2x2 window of conv_1's PSP
c1, p1 = net.records[0].out, net.records[1].out                # (T, N, 24, 24, 15), (T, N, 12, 12, 15)
T_, N_, H_, W_, C_ = c1.shape
by_hand = 1.1 * c1.reshape(T_, N_, H_ // 2, 2, W_ // 2, 2, C_).sum(axis=(3, 5))
assert np.allclose(p1, by_hand, rtol=1e-5, atol=1e-6)

# %% [markdown]
# ### Spike maps of the convolutional layers
#
# A conv layer's neurons form feature maps. For the first digit, the spikes of the most active channels
# of `conv_1` and `conv_2` at each step, and the spike count over the `T` steps. The first step is nearly
# empty in `conv_1` and empty deeper: the input PSP starts at a third of the pixel value (`theta_s = 1/3`)
# and the membranes need a step or two to reach the threshold; `conv_2` then waits for `conv_1`'s PSP to
# build up (the spike counts per step of both layers are printed below the figure).

# %%
def top_channels(state, n, sample=0):
    """Indices of the n channels with the most spikes for one sample; state.s is (T, N, H, W, C)."""
    per_channel = state.s[:, sample].sum(axis=(0, 1, 2))      # (C,)
    return np.argsort(per_channel)[::-1][:n]


conv_layers = [rec for rec in net.records if rec.kind == "conv"]
n_ch = 3
fig, axes = plt.subplots(n_ch * len(conv_layers), net.n_steps + 1, figsize=(11, 1.9 * n_ch * len(conv_layers)),
                         layout="constrained")
for li, rec in enumerate(conv_layers):
    for ri, ch in enumerate(top_channels(rec.state, n_ch)):
        row = axes[li * n_ch + ri]
        s_map = rec.state.s[:, 0, :, :, ch]                  # (T, H, W)
        for t in range(net.n_steps):
            row[t].imshow(s_map[t], cmap="gray_r", vmin=0, vmax=1)
            row[t].set_xticks([])
            row[t].set_yticks([])
            if li == 0 and ri == 0:
                row[t].set_title(f"spikes $s[t={t}]$")
        im = row[-1].imshow(s_map.sum(axis=0), cmap="viridis", vmin=0, vmax=net.n_steps)
        row[-1].set_xticks([])
        row[-1].set_yticks([])
        row[0].set_ylabel(f"{rec.name}\nchannel {ch}", fontsize=9)
        if li == 0 and ri == 0:
            row[-1].set_title("count over T")
fig.colorbar(im, ax=axes[:, -1], shrink=0.4, label="spikes per neuron")
fig.suptitle(f"Spike maps of the 3 most active channels, digit '{y_test[0]}', at initialisation")
L.save(fig, "conv_spikes")
per_step = {rec.name: rec.state.s.sum(axis=(1, 2, 3, 4)) for rec in conv_layers}   # spikes per step, 3 digits
for name, counts_t in per_step.items():
    print(f"{name} spikes per step t = 0..{net.n_steps - 1} (3 digits): {counts_t.astype(int).tolist()}")
s1, s2 = per_step["conv_1"], per_step["conv_2"]
assert s1[0] < s1[1] and s1[0] < 0.1 * s1.max()     # conv_1: nearly empty at t = 0
assert s2[0] == 0                                    # conv_2: empty at t = 0

# %% [markdown]
# ### Rasters and spike counts, every spiking layer
#
# Top row: spike rasters (`plots.spike_raster`) of the first digit, 200 neurons drawn at random from each
# layer (all of them for the 10 outputs). Bottom row: how many spikes each neuron fired over the `T` steps,
# over all three digits (`plots.spike_count_histogram`); a neuron can fire at most `T` times.

# %%
def layer_picture(records, sample, title):
    spiking = [rec for rec in records if rec.state is not None]
    fig, axes = plt.subplots(2, len(spiking), figsize=(3.4 * len(spiking), 6.2))
    for j, rec in enumerate(spiking):
        s = rec.state.s[:, sample].reshape(net.n_steps, -1)           # (T, neurons of this layer)
        pick = np.sort(rng.choice(s.shape[1], min(200, s.shape[1]), replace=False))
        plots.spike_raster(s[:, pick], ax=axes[0, j], title=f"{rec.name}: {len(pick)} of {s.shape[1]} neurons")
        counts = rec.state.s.sum(axis=0)                               # (N, ...) all samples and neurons
        plots.spike_count_histogram(rec.state.s, ax=axes[1, j],
                                    title=f"rate {rec.state.firing_rate:.3f}, silent {(counts == 0).mean():.0%}")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


L.save(layer_picture(net.records, 0, f"MNIST CNN at initialisation (raster: digit '{y_test[0]}')"), "layers_init")

# %% [markdown]
# ### One neuron inside the network
#
# The membrane of the busiest `FC_1` neuron for the first digit, read straight from the record
# (`state.u[:, sample, neuron]`): the same picture as lesson 1, now driven by the PSPs of 640 pooled
# conv neurons. The current it received is recoverable from the record too:
# `x[t] = du[t] + theta_m u_r[t-1]`.

# %%
fc = next(rec for rec in net.records if rec.name == "FC_1").state
i = int(np.argmax(fc.s[:, 0].sum(axis=0) + 1e-3 * fc.u[:, 0].max(axis=0)))   # most spikes, then highest u
u_r_prev = np.concatenate([[0.0], (fc.u[:, 0, i] * (1 - fc.s[:, 0, i]))[:-1]])
x_i = fc.du[:, 0, i] + P.theta_m * u_r_prev
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].step(np.arange(net.n_steps), x_i, where="mid", color="C2")
axes[0].set_xlabel("time step t")
axes[0].set_ylabel("input current $x[t]$")
axes[0].set_xticks(range(net.n_steps))
axes[0].set_title(f"FC_1 neuron {i}: its current")
plots.membrane_trace(fc.u[:, 0, i], fc.s[:, 0, i], ax=axes[1], label="u")
plots.psp_trace(fc.a[:, 0, i], ax=axes[1], label="output PSP a")
axes[1].set_ylabel("u (before reset) and PSP a")
axes[1].set_title(f"FC_1 neuron {i}: {int(fc.s[:, 0, i].sum())} spike(s)")
axes[1].legend(fontsize=8)
fig.tight_layout()
L.save(fig, "fc_neuron")

# %% [markdown]
# ## 4. The output and the prediction
#
# The output layer has one neuron per class. The prediction is the class whose neuron "fired most". In the
# authors' code that count is the output **PSP summed over time**, `sum_t a_i[t]`, not the number of
# spikes, because their network returns PSPs (README, table of differences; `Network(count_of="spikes")`
# counts spikes instead). The two usually agree; the PSP sum also weighs spike timing (an earlier spike
# counts more, lesson 1), which decides ties and can occasionally outrank one more, later spike.
# `net.predict(out)` is `argmax_i sum_t a_i[t]` (`reference.losses.predict`).
#
# At initialisation the output neurons may well be silent: then every count is 0 and the argmax returns
# class 0 for every digit. A few training steps change that (next section).

# %%
def output_picture(out, spikes, images, labels, title):
    """Per digit: the image, the output PSP of every class over time, and the two counts."""
    n = len(labels)
    fig, axes = plt.subplots(n, 3, figsize=(13, 2.8 * n), gridspec_kw={"width_ratios": [0.6, 2, 2]}, squeeze=False)
    pred = np.argmax(out.sum(axis=0), axis=1)
    for r in range(n):
        axes[r, 0].imshow(images[r, 0], cmap="gray")
        axes[r, 0].set_title(f"label {labels[r]}, predicted {pred[r]}")
        axes[r, 0].axis("off")
        for k in range(out.shape[2]):
            axes[r, 1].plot(np.arange(out.shape[0]), out[:, r, k], marker="o", ms=3, color=f"C{k}",
                            lw=2.5 if k == labels[r] else 1, label=str(k))
        axes[r, 1].set_xticks(range(out.shape[0]))
        axes[r, 1].set_xlabel("time step t")
        axes[r, 1].set_ylabel("output PSP $a^L_i[t]$")
        axes[r, 1].set_ylim(-0.03, 1.5 * max(out[:, r].max(), 0.2))       # room for the legend on top
        axes[r, 1].legend(title="class", fontsize=7, ncol=5, loc="upper left")
        k = np.arange(out.shape[2])
        axes[r, 2].bar(k - 0.2, out[:, r].sum(axis=0), width=0.4, label=r"PSP sum $\sum_t a_i[t]$ (used)")
        axes[r, 2].bar(k + 0.2, spikes[:, r].sum(axis=0), width=0.4, label=r"spike count $\sum_t s_i[t]$")
        axes[r, 2].set_xticks(k)
        axes[r, 2].set_xlabel("output neuron (class)")
        axes[r, 2].set_ylabel("count over T")
        axes[r, 2].set_ylim(0, 1.3 * max(spikes[:, r].sum(axis=0).max(), 1))
        axes[r, 2].legend(fontsize=7)
        if spikes[:, r].sum() == 0:
            axes[r, 2].text(0.5, 0.5, "every output neuron silent: all counts 0,\nargmax picks class 0",
                            transform=axes[r, 2].transAxes, ha="center", va="center", color="C3")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


out = net.forward(digits)
s_out = net.records[-1].state.s                         # (T, N, 10)
print(f"predictions at initialisation: {net.predict(out).tolist()} (labels {y_test[:3].tolist()}); "
      f"output spikes per digit: {s_out.sum(axis=(0, 2)).astype(int).tolist()}")
L.save(output_picture(out, s_out, digits, y_test[:3], "Output layer at initialisation"), "output_init")

out_all = net.forward(x_test)
acc_init = float(np.mean(net.predict(out_all) == y_test))
rates_init = {rec.name: rec.state.firing_rate for rec in net.records if rec.state is not None}
print(f"accuracy on {len(y_test)} test digits at initialisation: {acc_init:.1%}")

# %% [markdown]
# ## 5. After a few training steps
#
# Training is lesson 3 onwards (the loss) and the backward lessons; here we only use the library's step,
# `train_step(net, images, labels, optimiser)`, the authors' loop body (forward, kernel loss, TSSL-BP
# backward, gradient-norm clipping, AdamW, weight clipping), for a few epochs on the 300 training digits
# of the fixture, and look at the same pictures again.

# %%
epochs = 1 if L.fast else 10
batch = net.config.network["batch_size"]
opt = AdamW(net.weights, lr=net.config.network["lr"])
for epoch in range(epochs):
    order = rng.permutation(len(y_train))
    losses = [train_step(net, x_train[idx], y_train[idx], opt)[0]
              for idx in (order[i:i + batch] for i in range(0, len(order), batch))]
    print(f"epoch {epoch + 1}: mean kernel loss per batch {np.mean(losses):.3f}")

out_all = net.forward(x_test)
acc_trained = float(np.mean(net.predict(out_all) == y_test))
rates_trained = {rec.name: rec.state.firing_rate for rec in net.records if rec.state is not None}
print(f"after {opt.step_count} steps: accuracy on {len(y_test)} test digits {acc_trained:.1%} "
      f"(at initialisation {acc_init:.1%})")
assert acc_trained > acc_init

out = net.forward(digits)
s_out = net.records[-1].state.s
print(f"predictions: {net.predict(out).tolist()} (labels {y_test[:3].tolist()})")
L.save(output_picture(out, s_out, digits, y_test[:3], f"Output layer after {opt.step_count} training steps"),
       "output_trained")
L.save(layer_picture(net.records, 0, f"MNIST CNN after {opt.step_count} steps (raster: digit '{y_test[0]}')"),
       "layers_trained")

# %% [markdown]
# Firing rates per layer, before and after (`plots.layer_firing_rates`, which also takes `net.records`
# directly): training makes the output neurons fire (the loss asks the
# label's neuron for spikes, lesson 3) and changes how much the hidden layers fire.

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
plots.layer_firing_rates({"initialisation": rates_init, f"after {opt.step_count} steps": rates_trained}, ax=ax,
                         title=f"Firing rate per layer, {len(y_test)} test digits")
fig.tight_layout()
L.save(fig, "firing_rates")
for n in rates_init:
    print(f"  {n:8s} rate {rates_init[n]:.3f} -> {rates_trained[n]:.3f}")
assert rates_trained["output"] > rates_init["output"]

# %% [markdown]
# ## 6. The same code for the 400-400 MLP
#
# Nothing above is specific to convolutions. The demo network (`configs/demo_MNIST_MLP.yaml`, the authors'
# Fashion-MNIST 400-400 architecture, here on MNIST) is built and read the same way; its layers are `(T, N, F)`.

# %%
mlp = Network(L.path("configs", "demo_MNIST_MLP.yaml"), seed=0)
out_mlp = mlp.forward(x_test)
for rec in mlp.records:
    print(f"  {rec.name:9s} out {str(rec.out.shape):16s} rate {rec.state.firing_rate:.3f}, "
          f"silent neurons {(rec.state.s.sum(axis=0) == 0).mean():.0%}")
print(f"MLP at initialisation predicts {np.bincount(mlp.predict(out_mlp), minlength=10).tolist()} (digits per class)")

# %% [markdown]
# ## What's next
#
# Lesson 3: what the output *should* be. The loss compares the output PSPs with the PSP of a desired spike
# train, and its gradient `g = dL/da` is where the backward pass starts.

# %%
L.done()
