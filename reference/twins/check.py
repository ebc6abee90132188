"""Gradient checks: our hand-written backward against PyTorch/JAX autodiff and finite differences.

Three kinds of check, each returning :class:`Row` s (one per compared quantity):

- :func:`check_parts`: every differentiable part on its own (PSP filter, dense, conv, pooling, dropout,
  each loss, the warm-up surrogate) and one spiking layer (LIF + PSP with the TSSL-BP backward), ours
  against the framework's autodiff of the same forward, in float64.  Agreement to round-off.
- :func:`check_finite_differences`: the smooth parts (PSP filter, layers, losses, warm-up surrogate)
  against central differences, NumPy only (runs without any framework).
- :func:`check_network`: the full TSSL-BP gradient of a config's network, ours against the twin
  (:class:`~reference.twins.model.TwinModel`), per layer: weight gradient and delta.

Measures (:func:`compare`): ``max_abs = max |ours - theirs|``, ``rel = max_abs / max |theirs|`` (the
error relative to the quantity's scale, so that tiny entries do not dominate) and the cosine similarity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..layers import Conv2d, Dense, Dropout, SumPool2d
from ..losses import count_loss, kernel_loss, kernel_target, softmax_loss
from ..neuron import NeuronParams, lif_forward, psp, psp_kernel
from ..tsslbp import spike_error, tsslbp_delta, warmup_surrogate
from . import model as twin

#: Tolerances on ``rel``.  float64 parts — both sides compute the same sums in another order, so they
#: differ by a few ulps times the number of terms (measured <= 1e-14); 1e-12 leaves room and still
#: catches any wrong index or factor (those give errors of order 1).
TOL_PARTS = 1e-12
#: Central differences with h = 1e-6 on quantities of order 1 — truncation ~h^2 and cancellation
#: ~1e-16/h, both below 1e-9; 1e-7 bounds them with margin.
TOL_FD = 1e-7
#: Full network, float64 — same spike decisions (checked), sums in another order; measured <= 4e-15.
TOL_NET64 = 1e-10
#: Full network, float32 — a weight gradient sums up to ~1e5 float32 products and the backward runs
#: through several layers, so errors of ~1e-6 relative are expected (measured <= 5e-6); the 1e-4 bound is
#: the accuracy to which the authors' float32 gradients are matched (paper-notes section 3).
TOL_NET32 = 1e-4


@dataclass
class Row:
    """One compared quantity: ``ours`` against a reference, and whether ``rel <= tol``."""

    group: str
    name: str
    quantity: str
    max_abs: float
    rel: float
    cos: float
    tol: float
    note: str = ""

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.rel) and self.rel <= self.tol and not self.note.startswith("FAIL"))


def compare(ours, theirs) -> tuple[float, float, float]:
    """``(max_abs, rel, cos)`` of two arrays of equal shape (float64 arithmetic).

    ``rel = max|ours - theirs| / max|theirs|`` (0 when both are all zero, inf when only ``theirs`` is);
    ``cos`` is 1 when both are all zero.
    """
    a = np.asarray(ours, dtype=np.float64).ravel()
    b = np.asarray(theirs, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"cannot compare shapes {np.shape(ours)} and {np.shape(theirs)}")
    max_abs = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    rel = 0.0 if max_abs == 0.0 else (max_abs / scale if scale > 0 else np.inf)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    cos = 1.0 if na == 0 and nb == 0 else float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0
    return max_abs, rel, cos


def _row(group, name, quantity, ours, theirs, tol, note="") -> Row:
    return Row(group, name, quantity, *compare(ours, theirs), tol, note)


def _nchw(a):
    """Internal (T, N, H, W, C) to the twins' (T, N, C, H, W)."""
    return np.ascontiguousarray(np.moveaxis(a, -1, 2))


def _nhwc(a):
    return np.ascontiguousarray(np.moveaxis(a, 2, -1))


# ---------------------------------------------------------------------------------------------- parts
def _part_cases(seed: int = 0):
    """Small random float64 problems for each part: (our layer or function, inputs, cotangents)."""
    rng = np.random.default_rng(seed)
    t, n = 5, 3
    conv = Conv2d("conv", rng.normal(size=(4, 2, 3, 2)), (2, 7, 8), stride=(2, 1), padding=(1, 2), dilation=(1, 2))
    dense = Dense("dense", rng.normal(size=(6, 3 * 4 * 4)), (3, 4, 4))
    pool = SumPool2d("pool", 2, (3, 7, 6), theta=1.1)
    drop = Dropout("dropout", 0.3, (3, 4, 4))
    return rng, t, n, conv, dense, pool, drop


def check_parts(backend, seed: int = 0) -> list[Row]:
    """Our backward of each differentiable part against ``backend``'s autodiff, float64.

    backend : a float64 backend (:func:`reference.twins.backend`).
    """
    if backend.np_dtype != np.float64:
        raise ValueError("check_parts needs a float64 backend")
    b, xp = backend, backend.xp
    rng, t, n, conv, dense, pool, drop = _part_cases(seed)
    rows = []
    params = NeuronParams()

    # PSP filter: G = spike_error(g) is the adjoint of a = eps * s
    s, g = rng.normal(size=(t, n, 7)), rng.normal(size=(t, n, 7))
    (gs,) = b.vjp(lambda x: twin.psp(xp, x, params.theta_s), [s], g)
    rows.append(_row("parts", "psp filter", "dL/ds (G)", spike_error(g, psp_kernel(t, params.tau_s)), gs, TOL_PARTS))

    # dense after a conv-shaped input: our channels-last weight permutation included
    a = rng.normal(size=(t, n, 4, 4, 3))
    _, cache = dense.forward(a)
    delta = rng.normal(size=(t, n, 6))
    dw, g_in, *_ = dense.backward(delta, cache)
    ga, gw = b.vjp(lambda x, w: x.reshape(t, n, -1) @ b.permute(w, (1, 0)), [_nchw(a), dense.weight], delta)
    rows += [_row("parts", "dense", "dL/dW", dw, gw, TOL_PARTS),
             _row("parts", "dense", "dL/da_in", g_in.reshape(a.shape), _nhwc(ga), TOL_PARTS)]

    # conv with stride, padding, dilation and a non-square kernel
    a = rng.normal(size=(t, n, 7, 8, 2))
    x, cache = conv.forward(a)
    delta = rng.normal(size=x.shape)
    dw, g_in, *_ = conv.backward(delta, cache)
    ga, gw = b.vjp(lambda v, w: b.conv(v, w, conv.stride, conv.padding, conv.dilation), [_nchw(a), conv.weight], _nchw(delta))
    rows += [_row("parts", "conv", "dL/dW", dw, gw, TOL_PARTS),
             _row("parts", "conv", "dL/da_in", g_in.reshape(a.shape), _nhwc(ga), TOL_PARTS)]

    # sum pooling (7 rows: the last one is dropped)
    a = rng.normal(size=(t, n, 7, 6, 3))
    out, cache = pool.forward(a)
    g = rng.normal(size=out.shape)
    (ga,) = b.vjp(lambda v: twin.sum_pool(v, pool.k) * pool.theta, [_nchw(a)], _nchw(g))
    rows.append(_row("parts", "pooling", "dL/da_in", pool.backward(g, cache).g_in, _nhwc(ga), TOL_PARTS))

    # dropout with a drawn mask (one per sample and feature, shared over time)
    a = rng.normal(size=(t, n, 4, 4, 3))
    _, mask = drop.forward(a, rng=rng, train=True)
    g = rng.normal(size=a.shape)
    (ga,) = b.vjp(lambda v: v * b.asarray(mask[None], like=v), [a], g)
    rows.append(_row("parts", "dropout", "dL/da_in", drop.backward(g, mask).g_in, ga, TOL_PARTS))

    # losses
    out = np.abs(rng.normal(size=(t, 4, 10))) * 0.3
    labels = rng.integers(0, 10, size=4)
    onehot = np.eye(10)[labels]
    for name, ours, fn in [
        ("kernel loss (double filter)", kernel_loss(out, labels, kernel_target(t, params.tau_s, "double", dtype=np.float64)),
         lambda o: twin.kernel_loss(b, o, b.asarray(onehot, like=o), _target(b, xp, t, params, o, True))),
        ("kernel loss (single filter)", kernel_loss(out, labels, kernel_target(t, params.tau_s, "single", dtype=np.float64)),
         lambda o: twin.kernel_loss(b, o, b.asarray(onehot, like=o), _target(b, xp, t, params, o, False))),
        ("count loss", count_loss(out, labels, 0.8, 0.3), lambda o: twin.count_loss(b, o, b.asarray(onehot, like=o), 0.8, 0.3)),
        ("softmax loss", softmax_loss(out, labels), lambda o: twin.softmax_loss(b, o, b.asarray(onehot, like=o))),
    ]:
        (go,) = b.vjp(fn, [out], np.array(1.0))
        rows.append(_row("parts", name, "dL/da_out", ours[1], go, TOL_PARTS))

    # warm-up surrogate: the derivative of sigmoid((u - threshold)/0.2) where the clip is inactive
    u = np.linspace(-0.5, 2.5, 61)
    (gu,) = b.vjp(lambda v: b.sigmoid((v - params.threshold) / 0.2), [u], np.ones_like(u))
    rows.append(_row("parts", "warm-up surrogate", "f(u)", warmup_surrogate(u, params.threshold), gu, TOL_PARTS))

    # one spiking layer: LIF + PSP, TSSL-BP backward (ours: fused kernel; twin: the custom Function/VJP
    # with the framework's derivative of the PSP filter)
    x = rng.normal(0.45, 0.6, size=(t, 200))  # half the deltas warm-up, a quarter inter, a quarter intra
    g = rng.normal(size=(t, 200))
    state = lif_forward(x, params)
    for opts in (dict(), dict(intra=False), dict(warmup="never"), dict(warmup="always")):
        ours, _ = tsslbp_delta(g, state, params, **opts)
        consts = dict(theta_m=params.theta_m, tau_s=params.tau_s, threshold=params.threshold,
                      **{**dict(inter=True, intra=True, warmup="per-neuron"), **opts})
        (gx,) = b.vjp(lambda v: twin.psp(xp, b.tsslbp_spike(v, consts), params.theta_s), [x], g)
        label = ", ".join(f"{k}={v}" for k, v in opts.items()) or "default"
        rows.append(_row("parts", f"spiking layer ({label})", "dL/dx (delta)", ours, gx, TOL_PARTS))
    return rows


def _target(b, xp, t, params, like, double):
    d = b.asarray(np.array([0.0] + [1.0] * (t - 1)), like=like)
    once = twin.psp(xp, d, params.theta_s)
    return twin.psp(xp, once, params.theta_s) if double else once


# ----------------------------------------------------------------------------------- finite differences
def _fd(f, x, v, h=1e-6):
    """Central difference of the scalar function ``f`` at ``x`` along ``v``."""
    return (f(x + h * v) - f(x - h * v)) / (2 * h)


def check_finite_differences(seed: int = 0, n_directions: int = 4) -> list[Row]:
    """Directional derivatives of our smooth parts against central differences (NumPy, float64).

    For each part and each of ``n_directions`` random unit directions ``v``: ``<grad, v>`` from our
    backward against ``(f(x + h v) - f(x - h v)) / 2h``; a row per part holds all directions.
    """
    rng, t, n, conv, dense, pool, _ = _part_cases(seed)
    params = NeuronParams()
    eps = psp_kernel(t, params.tau_s)
    rows = []

    def directions(shape):
        v = rng.normal(size=(n_directions, *shape))
        return v / np.linalg.norm(v.reshape(n_directions, -1), axis=1).reshape(-1, *[1] * len(shape))

    def add(name, quantity, f, x, grad):
        vs = directions(x.shape)
        ours = [float(np.sum(grad * v)) for v in vs]
        fd = [_fd(f, x, v) for v in vs]
        rows.append(_row("finite differences", name, quantity, ours, fd, TOL_FD))

    g = rng.normal(size=(t, n, 7))
    s = rng.normal(size=(t, n, 7))
    add("psp filter", "dL/ds", lambda z: np.sum(g * psp(z, params.tau_s)), s, spike_error(g, eps))

    for layer, shape in ((dense, (t, n, 4, 4, 3)), (conv, (t, n, 7, 8, 2))):
        a = rng.normal(size=shape)
        x, cache = layer.forward(a)
        delta = rng.normal(size=x.shape)
        dw, g_in, *_ = layer.backward(delta, cache)
        w0 = layer.weight.copy()

        def f_w(w, a=a, layer=layer, delta=delta, w0=w0):
            layer.weight = w
            val = np.sum(delta * layer.forward(a)[0])
            layer.weight = w0
            return val

        add(layer.kind if layer.kind != "linear" else "dense", "dL/dW", f_w, w0, dw)
        add(layer.kind if layer.kind != "linear" else "dense", "dL/da_in",
            lambda z, layer=layer, delta=delta: np.sum(delta * layer.forward(z)[0]), a, g_in.reshape(a.shape))

    a = rng.normal(size=(t, n, 7, 6, 3))
    out, cache = pool.forward(a)
    g = rng.normal(size=out.shape)
    add("pooling", "dL/da_in", lambda z: np.sum(g * pool.forward(z)[0]), a, pool.backward(g, cache).g_in)

    out = np.abs(rng.normal(size=(t, 4, 10))) * 0.3
    labels = rng.integers(0, 10, size=4)
    target = kernel_target(t, params.tau_s, "double", dtype=np.float64)
    add("kernel loss", "dL/da_out", lambda z: kernel_loss(z, labels, target)[0], out, kernel_loss(out, labels, target)[1])
    # count loss: smooth away from the kinks of the one-sided error (none lies within h of this point)
    add("count loss", "dL/da_out", lambda z: count_loss(z, labels, 0.8, 0.3)[0], out, count_loss(out, labels, 0.8, 0.3)[1])
    add("softmax loss", "dL/da_out", lambda z: softmax_loss(z, labels)[0], out, softmax_loss(out, labels)[1])

    u = np.linspace(-0.5, 2.5, 61)  # |z| < 8: the clip is inactive, f is the sigmoid's derivative
    sig = lambda z: 1.0 / (1.0 + np.exp((params.threshold - z) / 0.2))  # noqa: E731
    fd = (sig(u + 1e-6) - sig(u - 1e-6)) / 2e-6
    rows.append(_row("finite differences", "warm-up surrogate", "f(u)", warmup_surrogate(u, params.threshold), fd, TOL_FD))
    return rows


# ------------------------------------------------------------------------------------------- network
def check_network(config, backend, weights: dict, inputs, labels, *, dtype="float64", options=None) -> list[Row]:
    """The full TSSL-BP gradient of ``config``'s network, ours against the twin, per layer.

    Parameters
    ----------
    config : Config or path
    backend : from :func:`reference.twins.backend` (same ``dtype``)
    weights : name -> authors' layout
    inputs : (N, C, H, W) normalised images; labels : (N,) int
    dtype : "float64" or "float32": both sides run in it
    options : dict of :class:`~reference.network.Network` options (inter, intra, warmup, target_filter;
        ``backward="bptt"`` or ``"bptt-detached"`` checks our surrogate BPTT, :mod:`reference.surrogate`,
        against the twin's)

    Returns rows for the loss, then per layer the weight gradient (weighted layers) and the delta
    (``dL/dx`` of spiking layers, ``dL/d output`` of pooling/dropout).  A layer whose spikes differ
    between the two forward passes is marked FAIL in ``note``: its gradients are not comparable.
    """
    from ..network import Network, to_authors_layout

    options = dict(options or {})
    tol = TOL_NET64 if np.dtype(dtype) == np.float64 else TOL_NET32
    net = Network(config, dtype=dtype, **options)
    net.set_weights(weights)
    loss, grads, _ = net.gradients(np.asarray(inputs, dtype=dtype), labels)
    ours_delta = net.layer_deltas()
    ours_spikes = {r.name: to_authors_layout(r.state.s) for r in net.records if r.state is not None}
    backward = net.net_options.backward
    model = twin.TwinModel(net.config, backend, spike="bptt" if backward.startswith("bptt") else backward,
                           detach_reset=backward == "bptt-detached", options=net.net_options)
    res = model.gradients({k: np.asarray(v, dtype=dtype) for k, v in weights.items()}, np.asarray(inputs, dtype=dtype), labels)
    group = f"network ({backend.name}, {np.dtype(dtype).name})"
    rows = [_row(group, "loss", "L", loss, res["loss"], tol)]
    for rec in net.records:
        note = ""
        if rec.name in ours_spikes:
            differ = int(np.sum(ours_spikes[rec.name] != res["spikes"][rec.name]))
            if differ:
                note = (f"FAIL: {differ} spike decisions differ (membrane within rounding of the threshold); "
                        "gradients are not comparable, check in float64")
            else:
                note = f"spikes identical ({ours_spikes[rec.name].mean():.3f} per neuron and step)"
        if rec.name in grads:
            rows.append(_row(group, rec.name, "dL/dW", grads[rec.name], res["grads"][rec.name], tol, note))
        rows.append(_row(group, rec.name, "delta", ours_delta[rec.name], res["deltas"][rec.name], tol, note))
    return rows


def format_rows(rows: list[Row]) -> str:
    """A fixed-width table of rows, grouped, with a status column."""
    lines, group = [], None
    for r in rows:
        if r.group != group:
            group = r.group
            lines.append(f"\n{group}")
            lines.append(f"  {'part / layer':34s} {'quantity':14s} {'max_abs':>10s} {'rel':>10s} {'cos':>12s} {'tol':>8s}  status")
        lines.append(f"  {r.name:34s} {r.quantity:14s} {r.max_abs:10.3e} {r.rel:10.3e} {r.cos:12.9f} {r.tol:8.0e}  "
                     f"{'ok' if r.ok else 'FAIL'}{'  ' + r.note if r.note else ''}")
    return "\n".join(lines).lstrip("\n")
