"""Slow, obvious twins of the fast code, written straight from paper-notes (sections 1-3).

Everything here is in the AUTHORS' layout, ``(N, C, H, W, T)``, with explicit loops over time and
neurons, no Numba, no im2col and no channels-last tricks, so that a bug in the fast code's layouts,
permutations or fused loops shows up as a mismatch.  Use float64.
"""
from __future__ import annotations

import numpy as np


def psp(s, tau_s):
    """a[t] = (1 - 1/tau_s) a[t-1] + s[t]/tau_s over the LAST axis."""
    a = np.zeros_like(s, dtype=np.float64)
    prev = np.zeros(s.shape[:-1])
    for t in range(s.shape[-1]):
        prev = (1 - 1 / tau_s) * prev + s[..., t] / tau_s
        a[..., t] = prev
    return a


def lif(x, tau_m, tau_s, threshold):
    """LIF over the last axis; returns u (pre-reset), du, s, a."""
    u = np.zeros_like(x)
    du = np.zeros_like(x)
    s = np.zeros_like(x)
    mem = np.zeros(x.shape[:-1])
    for t in range(x.shape[-1]):
        du[..., t] = -mem / tau_m + x[..., t]
        u[..., t] = mem + du[..., t]
        s[..., t] = u[..., t] > threshold
        mem = u[..., t] * (1 - s[..., t])
    return u, du, s, psp(s, tau_s)


def tsslbp_neuron(g, u, du, s, a, tau_m, tau_s, threshold, inter=True, intra=True, warmup="per-neuron"):
    """delta for ONE neuron (1-D arrays over time), a literal transcription of paper-notes section 3."""
    n = len(g)
    theta_m = 1 / tau_m
    eps = [(1 / tau_s) * (1 - 1 / tau_s) ** k for k in range(n)]
    delta = np.zeros(n)
    c = 0.0
    for k in range(n - 1, -1, -1):
        G = sum(eps[m - k] * g[m] for m in range(k, n))
        if s[k] and du[k] > 0:
            advance = min(1 / du[k], 8.0)
        elif s[k] and du[k] == 0 and not np.signbit(du[k]):
            advance = 8.0  # -1/(+0) = -inf, clamped to -8 by the authors; -0.0 gives +inf, clamped to 0
        else:
            advance = 0.0
        inter_k = s[k] * advance * G if inter else 0.0
        intra_k = (c * theta_m * u[k] * advance * s[k] + c * (1 - theta_m) * (1 - s[k])) if intra else 0.0
        pre = inter_k + intra_k
        if intra:
            c = pre * s[k] + c * (1 - s[k]) * (1 - theta_m)
        z = min(max((threshold - u[k]) / 0.2, -8.0), 8.0)
        f = np.exp(z) / ((1 + np.exp(z)) ** 2 * 0.2)
        use_warm = warmup == "always" or (warmup == "per-neuron" and a[k] < 1 / (4 * tau_s))
        delta[k] = G * f if use_warm else pre
    return delta


def tsslbp(g, u, du, s, a, tau_m, tau_s, threshold, **options):
    """delta for an array of neurons, (..., T), one neuron at a time.

    Each neuron's series go in as lists of Python floats (the same float64 values; scalar arithmetic on
    them is several times faster than on NumPy scalars, which is what makes the MNIST CNN's check take
    seconds, not tens of seconds)."""
    out = np.zeros_like(g)
    for idx in np.ndindex(g.shape[:-1]):
        series = (np.asarray(v[idx], dtype=np.float64).tolist() for v in (g, u, du, s, a))
        out[idx] = tsslbp_neuron(*series, tau_m, tau_s, threshold, **options)
    return out


def paper2020_layer(g, u, du, s, tau_m, tau_s, threshold, intra=True, rate_threshold=0.1):
    """delta of a whole layer (..., T) by the paper-era rule (paper-notes section 7), with explicit T x T
    matrices per neuron: ``P[k, m] = eps[m-k]`` (m >= k), the reset record ``D``, ``grad_a = P (g + D g)``,
    and the switch on the layer's firing rate over all its neurons and samples (above ``rate_threshold``)."""
    n = g.shape[-1]
    theta_m = 1 / tau_m
    eps = [(1 / tau_s) * (1 - 1 / tau_s) ** k for k in range(n)]
    P = np.array([[eps[m - k] if m >= k else 0.0 for m in range(n)] for k in range(n)])
    rate = s.sum() / s.size
    out = np.zeros_like(g)
    for idx in np.ndindex(g.shape[:-1]):
        gi, ui, dui, si = g[idx], u[idx], du[idx], s[idx]
        D = np.zeros((n, n))
        for j in range(n):
            if not si[j]:
                continue
            for m in range(j + 1, n):
                if si[m]:  # the first spike after j
                    D[j, m] = theta_m * ui[j] * (1 - theta_m) ** (m - j - 1)
                    break
        grad_a = P @ (gi + (D @ gi if intra else 0.0))
        for k in range(n):
            if rate > rate_threshold:
                inv = np.inf if dui[k] == 0 and not np.signbit(dui[k]) else (-np.inf if dui[k] == 0 else 1 / dui[k])
                out[idx + (k,)] = grad_a[k] * min(max(inv, -10.0), 10.0) * si[k]
            else:
                z = min(max((threshold - ui[k]) / 0.2, -8.0), 8.0)
                out[idx + (k,)] = grad_a[k] * np.exp(z) / ((1 + np.exp(z)) ** 2 * 0.2)
    return out


def conv_forward(a, w, stride, padding, dilation):
    """x[n, o, i, j, t] = sum_{c, p, q} w[o, c, p, q] a_pad[n, c, i*sh + p*dh, j*sw + q*dw, t]."""
    n, c, h, wd, t = a.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ap = np.zeros((n, c, h + 2 * ph, wd + 2 * pw, t))
    ap[:, :, ph:ph + h, pw:pw + wd] = a
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    x = np.zeros((n, o, oh, ow, t))
    for i in range(oh):
        for j in range(ow):
            patch = ap[:, :, i * sh: i * sh + dh * (kh - 1) + 1: dh, j * sw: j * sw + dw * (kw - 1) + 1: dw, :]
            x[:, :, i, j, :] = np.einsum("ncpqt,ocpq->not", patch, w)
    return x


def conv_backward(delta, a, w, stride, padding, dilation):
    """dW and dL/da of :func:`conv_forward`, by the same loops transposed."""
    n, c, h, wd, t = a.shape
    o, _, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    ap = np.zeros((n, c, h + 2 * ph, wd + 2 * pw, t))
    ap[:, :, ph:ph + h, pw:pw + wd] = a
    gp = np.zeros_like(ap)
    dW = np.zeros_like(w)
    for i in range(delta.shape[2]):
        for j in range(delta.shape[3]):
            rs = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
            cs = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
            d = delta[:, :, i, j, :]  # (n, o, t)
            dW += np.einsum("not,ncpqt->ocpq", d, ap[:, :, rs, cs, :])
            gp[:, :, rs, cs, :] += np.einsum("not,ocpq->ncpqt", d, w)
    return dW, gp[:, :, ph:ph + h, pw:pw + wd]


def pool_forward(a, k, theta):
    n, c, h, w, t = a.shape
    out = np.zeros((n, c, h // k, w // k, t))
    for i in range(h // k):
        for j in range(w // k):
            out[:, :, i, j] = theta * a[:, :, i * k:(i + 1) * k, j * k:(j + 1) * k].sum(axis=(2, 3))
    return out


def pool_backward(g, in_shape, k, theta):
    out = np.zeros(in_shape)
    for i in range(g.shape[2]):
        for j in range(g.shape[3]):
            out[:, :, i * k:(i + 1) * k, j * k:(j + 1) * k] += theta * g[:, :, i:i + 1, j:j + 1]
    return out


def desired_double_target(n_steps, tau_s):
    d = np.ones(n_steps)
    d[0] = 0
    return psp(psp(d, tau_s), tau_s)


def network_gradients(config, weights, images, labels, options=None, variant="final"):
    """Loss, per-layer outputs, deltas and weight gradients of a config, kernel loss, authors' layout.

    config : reference.config.Config; weights : name -> array (authors' layout); images (N, C, H, W).
    variant : "final" (section 3, double-filtered target [0,1,1,1,1]) or "paper2020" (section 7, the
    target [0,1,0,1,1] filtered once, :func:`paper2020_layer`).
    Returns dict with 'loss', 'output', 'delta', 'grad' (the last three keyed by layer name).
    """
    options = options or {}
    net = config.network
    T, tau_m, tau_s = int(net["n_steps"]), float(net["tau_m"]), float(net["tau_s"])
    a = psp(np.repeat(images.astype(np.float64)[..., None], T, axis=-1), tau_s)
    inputs, states, outputs = {}, {}, {}
    for name, c in config.layers:
        inputs[name] = a
        if c["type"] == "conv":
            x = conv_forward(a, weights[name], c["stride"], c["padding"], c["dilation"])
            states[name] = lif(x, tau_m, tau_s, c["threshold"])
            a = states[name][3]
        elif c["type"] == "linear":
            flat = a.reshape(a.shape[0], -1, T)  # (N, C*H*W, T): the authors' (C, H, W) flattening
            x = np.einsum("oi,nit->not", weights[name], flat)[:, :, None, None, :]
            states[name] = lif(x, tau_m, tau_s, c["threshold"])
            a = states[name][3]
        elif c["type"] == "pooling":
            a = pool_forward(a, c["kernel_size"], c["theta"])
        outputs[name] = a
    target = np.zeros_like(a)
    if variant == "paper2020":
        target[np.arange(len(labels)), labels, 0, 0, :] = psp(np.array([0.0, 1, 0, 1, 1] * (T // 5)), tau_s)
    else:
        target[np.arange(len(labels)), labels, 0, 0, :] = desired_double_target(T, tau_s)
    g = a - target
    loss = 0.5 * np.sum(g ** 2)
    deltas, grads = {}, {}
    for name, c in reversed(config.layers):
        a_in = inputs[name]
        if c["type"] in ("conv", "linear"):
            u, du, s, a_out = states[name]
            if variant == "paper2020":
                delta = paper2020_layer(g, u, du, s, tau_m, tau_s, c["threshold"], **options)
            else:
                delta = tsslbp(g, u, du, s, a_out, tau_m, tau_s, c["threshold"], **options)
            deltas[name] = delta
            if c["type"] == "conv":
                grads[name], g = conv_backward(delta, a_in, weights[name], c["stride"], c["padding"], c["dilation"])
            else:
                flat = a_in.reshape(a_in.shape[0], -1, T)
                d = delta[:, :, 0, 0, :]
                grads[name] = np.einsum("not,nit->oi", d, flat)
                g = np.einsum("not,oi->nit", d, weights[name]).reshape(a_in.shape)
        elif c["type"] == "pooling":
            deltas[name] = g
            g = pool_backward(g, a_in.shape, c["kernel_size"], c["theta"])
    return {"loss": loss, "output": outputs, "delta": deltas, "grad": grads}
