"""Figure 1: the inter- and intra-neuron dependencies, drawn from a simulated neuron pair.

The paper illustrates TSSL-BP's two dependency types with a presynaptic and a postsynaptic neuron. Here
the pair is simulated with the library's own forward pass, and the backward terms are the library's own:

- top: the presynaptic neuron's spikes and its PSP ``a_pre`` (the current it sends);
- middle: the postsynaptic membrane ``u`` (before reset) with the threshold, its spikes, and its reset;
- bottom: the postsynaptic delta split into its inter-neuron part (through the neuron's own spike times,
  only where it fires) and its intra-neuron part (reset and leak carried back by ``c``), for a kernel
  loss asking the postsynaptic neuron to follow a desired spike train.

Inter-neuron dependency: a neuron's spike *times* shape the PSP it sends to the neurons it feeds (the top
panel: ``a_pre`` drives the postsynaptic current).  In the backward of a layer the inter term is the
other end of that link: the layer's own spike times, through the PSP the next layer (here the loss)
reads; so the bottom panel's inter term is through the postsynaptic neuron's own spikes.  Intra-neuron:
a postsynaptic spike resets the neuron and so shapes its later membrane.
"""
from __future__ import annotations

import numpy as np

from _common import save, style, write_csv

NAME = "fig1_dependencies"


def simulate(n_steps: int = 20, seed: int = 1):
    """A pair over ``n_steps`` steps: returns a dict of 1-D arrays (time series) and the two states."""
    from reference.losses import desired_spike_train
    from reference.neuron import lif_forward, psp
    from reference.params import NeuronParams
    from reference.tsslbp import (inter_neuron_term, intra_neuron_term, psp_kernel, spike_error,
                                  tsslbp_delta)

    p = NeuronParams(tau_m=5.0, tau_s=3.0, threshold=1.0, n_steps=n_steps)
    rng = np.random.default_rng(seed)
    drive = 0.3 + 0.3 * rng.random(n_steps)  # presynaptic input current, arbitrary units
    pre = lif_forward(drive[:, None], p)
    w = 1.6  # one synapse
    post = lif_forward(w * pre.a, p)
    desired = desired_spike_train(n_steps, [0, 0, 0, 0, 1] * (n_steps // 5)).astype(float)
    target = psp(desired[:, None], p.tau_s)
    g = post.a - target  # dL/da of the kernel loss (single filter, for the picture)
    G = spike_error(g, psp_kernel(n_steps, p.tau_s))
    inter = inter_neuron_term(G, post.du, post.s)
    intra = intra_neuron_term(inter, post.u, post.du, post.s, p.theta_m)
    delta, branch = tsslbp_delta(g, post, p, warmup="never")
    series = {
        "t": np.arange(n_steps), "x_pre": drive, "s_pre": pre.s[:, 0], "a_pre": pre.a[:, 0],
        "u_post": post.u[:, 0], "s_post": post.s[:, 0], "a_post": post.a[:, 0], "target": target[:, 0],
        "G": G[:, 0], "inter": inter[:, 0], "intra": intra[:, 0], "delta": delta[:, 0],
    }
    return series, p


def main():
    plt = style()
    d, p = simulate()
    t = d["t"]
    write_csv(NAME, list(d), np.column_stack([d[k] for k in d]).tolist())
    from reference.app.plots import BRANCH_COLORS  # the lessons' and the explore page's colours of the two terms

    fig, ax = plt.subplots(3, 1, figsize=(8, 7), sharex=True, gridspec_kw={"height_ratios": [1, 1.3, 1.1]})
    a0 = ax[0]
    a0.step(t, d["a_pre"], where="post", color="C0", label=r"presynaptic PSP $a_{pre}[t]$")
    for k in t[d["s_pre"] > 0]:
        a0.axvline(k, color="C0", alpha=0.25, lw=1)
    a0.plot(t[d["s_pre"] > 0], np.full(int(d["s_pre"].sum()), 0.02), "|", color="C0", ms=12, mew=2,
            label="presynaptic spikes")
    a0.set_ylabel(r"$a_{pre}$")
    a0.set_title("Inter-neuron dependency: spike times shape the PSP a neuron sends ($x = w\\,a_{pre}$)")
    a0.set_ylim(-0.02, 1.4 * float(d["a_pre"].max()))  # room above the trace for the legend
    a0.legend(loc="upper center", fontsize=8, ncol=2)

    a1 = ax[1]
    # the membrane as the neuron lives it: u[t] (before reset), then u_r[t] = u[t](1 - s[t]) carried on
    ur = d["u_post"] * (1 - d["s_post"])
    path_t = np.repeat(t, 2)
    path_u = np.column_stack([d["u_post"], ur]).ravel()
    a1.plot(path_t, path_u, "-", color="C1", lw=1.2, label="membrane (reset drawn as a vertical drop)")
    a1.plot(t, d["u_post"], "o", color="C1", ms=4, label=r"$u[t]$ before reset")
    a1.axhline(p.threshold, color="k", ls="--", lw=1, label=r"threshold $V_{th}$")
    fired = t[d["s_post"] > 0]
    a1.plot(fired, d["u_post"][fired], "v", color="C3", ms=8, label="postsynaptic spike")
    want = t[np.diff(np.concatenate([[0.0], d["target"]])) > 0.2]
    a1.plot(want, np.full(len(want), -0.15), "^", color="k", ms=7, label="desired spike")
    a1.set_ylabel("$u$")
    a1.set_title("Intra-neuron dependency: each spike resets the membrane, which shapes its later values")
    a1.legend(loc="upper left", fontsize=7, ncol=3)
    a1.set_ylim(-0.3, max(1.6, float(d["u_post"].max()) + 0.5))

    a2 = ax[2]
    width = 0.4
    a2.bar(t - width / 2, d["inter"], width, color=BRANCH_COLORS["inter (fired)"], label=r"inter: own spike times, $s[k]\min(1/du[k],8)\,G[k]$")
    a2.bar(t + width / 2, d["intra"], width, color=BRANCH_COLORS["intra (silent)"], label=r"intra: carried reset/leak term")
    a2.plot(t, d["delta"], "k.-", lw=1, ms=4, label=r"$\delta[k]$ = inter + intra (warm-up off)")
    a2.axhline(0, color="k", lw=0.5)
    a2.set_ylabel(r"$\delta = \partial L/\partial u$")
    a2.set_xlabel("time step $t$")
    a2.set_xticks(range(0, len(t), 2))
    a2.set_xlim(-0.6, len(t) - 0.4)
    a2.set_title("The postsynaptic neuron's delta: its spike times shape the PSP the loss reads", fontsize=11)
    a2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), fontsize=8, ncol=3, frameon=False)
    fig.tight_layout()
    save(fig, NAME)
    n_post, n_pre = int(d["s_post"].sum()), int(d["s_pre"].sum())
    print(f"{NAME}: {n_pre} presynaptic and {n_post} postsynaptic spikes in {len(t)} steps")


if __name__ == "__main__":
    main()
