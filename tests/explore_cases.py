"""Random neurons and the library's numbers for them: what ``tests/test_explore.py`` compares the page's
JavaScript twin (``docs/_static/explore/neuron.js``) with.

Each case draws ``T`` in 2..20, ``tau_m``, ``tau_s`` in [1, 10], a threshold in [0.3, 2], an input current
and an error ``g`` per step, the rule (final or paper-era, at random) and its switches.  A quarter of the
cases creep up to the threshold under a constant current, so that ``du`` at the crossing is small and
the clamp of ``1/du`` often binds; another quarter spike once and fall silent, so that the warm-up takes
over; a tenth have ``du = +0`` or ``-0`` at a spike (threshold <= 0).  ``tests/test_explore.py`` asserts
that each of these, and every branch of both rules, occurs at least 5 times.
"""
from __future__ import annotations

import numpy as np

from reference.neuron import lif_forward, psp_kernel
from reference.paper2020 import paper2020_delta, reset_error, reset_record, spike_error_with_reset, tsslbp_term_2020
from reference.params import NeuronParams
from reference.tsslbp import BRANCH_NAMES, compose_delta, inter_neuron_term, intra_neuron_carry, spike_error, \
    warmup_surrogate


def random_cases(n: int, seed: int = 0) -> list[dict]:
    """``n`` option dicts of ``window.tsslbp.neuron`` (plain floats and lists, JSON-ready)."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        T = int(rng.integers(2, 21))
        tau_m, tau_s = float(rng.uniform(1, 10)), float(rng.uniform(1, 10))
        threshold = float(rng.uniform(0.3, 2.0))
        x = rng.normal(threshold / 3, threshold / 2, size=T)
        kind = i % 4
        if kind == 1:  # a grazing spike: the membrane creeps up to the threshold, du small at the crossing
            x = np.full(T, threshold / tau_m * 1.5)
        elif kind == 2:  # a spike, then silence: the warm-up takes over on the decayed PSP
            x = np.concatenate([[threshold * 1.5], rng.normal(0, 0.05, T - 1)])
        if i % 10 == 3:  # du = +0 or -0 at a spike: a threshold <= 0 and a zero input
            threshold = float(rng.choice([0.0, -0.5]))
            x = rng.normal(0.2, 0.5, size=T)
            x[int(rng.integers(0, T))] = 0.0 if rng.random() < 0.5 else -0.0
        g = rng.normal(0, 0.2, size=T)
        rule = "paper2020" if rng.random() < 0.5 else "final"
        case = {"x": x.tolist(), "g": g.tolist(), "tau_m": tau_m, "tau_s": tau_s, "threshold": threshold,
                "rule": rule, "inter": True, "intra": bool(rng.random() < 0.85), "warmup": "per-neuron"}
        if rule == "final":
            case["inter"] = bool(rng.random() < 0.85)
            case["warmup"] = str(rng.choice(["per-neuron", "per-neuron", "always", "never"]))
        else:
            case["rate_threshold"] = float(rng.choice([0.0, 0.1, 0.3, 1.0]))
        cases.append(case)
    return cases


def library_neuron(case: dict) -> dict:
    """The library's float64 numbers for one case, under the names the twin returns."""
    T = len(case["x"])
    P = NeuronParams(tau_m=case["tau_m"], tau_s=case["tau_s"], threshold=case["threshold"], n_steps=T)
    x = np.asarray(case["x"], np.float64)[:, None]  # one neuron: shape (T, 1)
    g = np.asarray(case["g"], np.float64)[:, None]
    st = lif_forward(x, P)
    out = {"u": st.u, "du": st.du, "s": st.s, "a": st.a, "f": warmup_surrogate(st.u, P.threshold)}
    eps = psp_kernel(T, P.tau_s)
    if case["rule"] == "final":
        G = spike_error(g, eps)
        inter = inter_neuron_term(G, st.du, st.s) if case["inter"] else np.zeros_like(G)
        if case["intra"]:
            intra, c = intra_neuron_carry(inter, st.u, st.du, st.s, P.theta_m)
        else:
            intra, c = np.zeros_like(G), np.zeros_like(G)
        delta, branch = compose_delta(g, st, P, inter=case["inter"], intra=case["intra"], warmup=case["warmup"])
        out.update(G=G, inter=inter, intra=intra, c=c)
    else:
        h = reset_error(g, st.u, st.s, P.theta_m) if case["intra"] else np.zeros_like(g)
        delta, branch = paper2020_delta(g, st, P, rate_threshold=case["rate_threshold"], intra=case["intra"])
        out.update(G=spike_error_with_reset(g, h, eps), h=h,
                   inter=tsslbp_term_2020(spike_error(g, eps), st.du, st.s),
                   intra=tsslbp_term_2020(spike_error(h, eps), st.du, st.s),
                   D=reset_record(st.u, st.s, P.theta_m)[:, :, 0], rate=float(st.s.mean()))
    out["delta"] = delta
    out = {k: (v[:, 0] if isinstance(v, np.ndarray) and v.ndim == 2 and k != "D" else v) for k, v in out.items()}
    out["branch"] = [BRANCH_NAMES[int(b)] for b in branch[:, 0]]
    return out
