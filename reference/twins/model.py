"""The network once more, written against a small array backend so PyTorch and JAX both run it.

Only the spiking non-linearity has a hand-written backward here (:func:`tsslbp_backward`, from
paper-notes section 3, wrapped by each framework as a ``torch.autograd.Function`` or a ``jax.custom_vjp``).
Everything else, the PSP filter, dense, conv and pooling layers, the losses, is differentiated by the
framework.  In particular the spike error ``G = dL/ds`` that :func:`tsslbp_backward` receives is the
framework's own derivative of the PSP filter, not ours.

The code is independent of ``reference``'s NumPy/Numba engine on purpose: it shares only the config
reader and the constants, and lays tensors out the frameworks' way, time first then ``(N, C, H, W)``.

``spike="bptt"`` swaps the non-linearity for the usual surrogate-gradient alternative: the LIF recursion
unrolled in the framework (reset included) with a sigmoid surrogate for ``ds/du``, the same function as
TSSL-BP's warm-up (:func:`surrogate`).  That is the baseline of :mod:`reference.twins.bptt`.
"""
from __future__ import annotations

import math

import numpy as np

from ..config import Config, load_config
from ..losses import desired_spike_train
from ..options import NetOptions
from ..params import MAX_INV_DU, WARMUP_SIGMA, WARMUP_Z_CLIP

SPIKES = ("tsslbp", "bptt")


# ------------------------------------------------------------------------------------ the neuron, in xp
def psp(xp, s, theta_s):
    """``a[t] = a[t-1] + theta_s (s[t] - a[t-1])``, ``a[-1] = 0``; ``s`` is (T, ...). Differentiable."""
    a, out = None, []
    for t in range(s.shape[0]):
        a = s[t] * theta_s if a is None else a + (s[t] - a) * theta_s
        out.append(a)
    return xp.stack(out)


def lif(xp, x, theta_m, threshold):
    """LIF with reset to zero on a current ``x`` (T, ...): returns ``u`` (before reset), ``du``, ``s``.

    ``du[t] = -theta_m u_r[t-1] + x[t]``, ``u[t] = u_r[t-1] + du[t]``, ``s[t] = [u[t] > threshold]``,
    ``u_r[t] = u[t] (1 - s[t])``.  Not differentiable (spikes are steps); used inside the custom backward.
    """
    mem = xp.zeros_like(x[0])
    u, du, s = [], [], []
    for t in range(x.shape[0]):
        step = mem * (-theta_m) + x[t]
        v = mem + step
        fired = v > threshold
        u.append(v)
        du.append(step)
        s.append(xp.where(fired, xp.ones_like(v), xp.zeros_like(v)))
        mem = xp.where(fired, xp.zeros_like(v), v)
    return xp.stack(u), xp.stack(du), xp.stack(s)


def sum_pool(a, k):
    """Sum over non-overlapping k x k windows of ``a`` (T, N, C, H, W) (stride = kernel, no padding; rows
    and columns that do not fill a window are dropped).  Plain reshape and sum: any backend."""
    t, n, c, h, w = a.shape
    a = a[..., : h // k * k, : w // k * k]
    return a.reshape(t, n, c, h // k, k, w // k, k).sum(axis=(4, 6))


def surrogate(xp, u, threshold):
    """``f(u) = e^z / ((1 + e^z)^2 sigma)``, ``z = clip((threshold - u)/sigma, -8, 8)``, ``sigma = 0.2``.

    The derivative of the sigmoid ``1/(1 + exp((threshold - u)/sigma))`` where ``|z| < 8``: TSSL-BP's
    warm-up ``ds/du`` (paper-notes section 3, item 3) and the surrogate of the BPTT baseline.
    """
    e = xp.exp(xp.clip((threshold - u) / WARMUP_SIGMA, -WARMUP_Z_CLIP, WARMUP_Z_CLIP))
    return e / ((1 + e) * (1 + e) * WARMUP_SIGMA)


def tsslbp_backward(xp, G, u, du, s, a, *, theta_m, tau_s, threshold, inter=True, intra=True, warmup="per-neuron"):
    """TSSL-BP: ``delta[k] = dL/dx[k]`` from the spike error ``G[k] = dL/ds[k]`` (paper-notes section 3).

    Written a second time, from the notes, with the backend's array operations (not from
    :mod:`reference.tsslbp`), so that the two can be checked against each other.

    - inter-neuron: ``inter[k] = s[k] min(1/du[k], 8) G[k]`` (the clamp as ``clip(1/du, 0, 8)``, so
      ``du < 0`` and ``du = -0`` give 0, ``du = +0`` gives 8, like the authors' ``clamp(-1/du, -8, 0)``);
    - intra-neuron, with ``c`` carried backwards from ``c = 0``:
      ``pre[k] = inter[k] + c theta_m u[k] min(1/du[k], 8) s[k] + c (1 - theta_m)(1 - s[k])``, then
      ``c <- pre[k] s[k] + c (1 - s[k])(1 - theta_m)``;
    - warm-up: where ``a[k] < 1/(4 tau_s)`` (``warmup="per-neuron"``), everywhere (``"always"``) or
      nowhere (``"never"``), ``delta[k] = G[k] f(u[k])`` (:func:`surrogate`) replaces ``pre[k]``.

    All arguments (T, ...); returns delta (T, ...).
    """
    advance = xp.where(s > 0, xp.clip(1 / du, 0, MAX_INV_DU), xp.zeros_like(du))
    c = xp.zeros_like(G[0])
    out = [None] * G.shape[0]
    for k in range(G.shape[0] - 1, -1, -1):
        pre = advance[k] * G[k] if inter else xp.zeros_like(G[k])
        if intra:
            pre = pre + c * theta_m * u[k] * advance[k] + c * (1 - theta_m) * (1 - s[k])
            c = pre * s[k] + c * (1 - s[k]) * (1 - theta_m)
        if warmup == "never":
            out[k] = pre
        else:
            warm = G[k] * surrogate(xp, u[k], threshold)
            out[k] = warm if warmup == "always" else xp.where(a[k] < 1 / (4 * tau_s), warm, pre)
    return xp.stack(out)


def paper2020_backward(xp, G, u, du, s, *, theta_m, tau_s, threshold, intra=True, batch_mean=None,
                       rate_threshold=0.1):
    """The paper-era rule (paper-notes section 7) from ``G = dL/ds``, written from the notes with the
    backend's array operations (not from :mod:`reference.paper2020`, so the two check each other).

    - ``g = dL/da`` back from ``G``: since ``eps[j] = theta_s (1 - theta_s)^j``,
      ``G[k] = theta_s g[k] + (1 - theta_s) G[k+1]``, so ``g[k] = (G[k] - (1 - theta_s) G[k+1]) / theta_s``;
    - the reset error ``h[j] = sum_m D[j, m] g[m]`` with the reset record ``D[j, m] = theta_m u[j]
      (1 - theta_m)^(m-j-1)`` for consecutive spikes ``j < m``, summed over ``m`` explicitly;
    - ``grad_a[k] = G[k] + sum_{j >= k} eps[j-k] h[j]``;
    - the layer's firing rate over the batch above ``rate_threshold`` (0.1):
      ``delta = grad_a clip(1/du, -10, 10) s``; else
      ``delta = grad_a f(u)`` (:func:`surrogate`).

    All arguments (T, ...); returns delta (T, ...).  ``batch_mean(s)``, if given, replaces ``mean(s)`` for
    the switch: the training engine's mean over every process's part of the batch
    (:mod:`reference.engines.torch_engine`), so that a batch split over processes takes the branch the whole
    batch takes.
    """
    n_steps = G.shape[0]
    theta_s = 1.0 / tau_s
    g = [None] * n_steps
    for k in range(n_steps):
        nxt = G[k + 1] if k + 1 < n_steps else xp.zeros_like(G[k])
        g[k] = (G[k] - (1 - theta_s) * nxt) / theta_s
    h = [xp.zeros_like(G[0]) for _ in range(n_steps)]
    if intra:
        for j in range(n_steps):
            none_between = xp.ones_like(s[j])  # 1 while no spike has occurred strictly after j
            for m in range(j + 1, n_steps):
                d_jm = s[j] * s[m] * none_between * theta_m * u[j] * (1 - theta_m) ** (m - j - 1)
                h[j] = h[j] + d_jm * g[m]
                none_between = none_between * (1 - s[m])
    grad_a = []
    for k in range(n_steps):
        acc = G[k]
        for j in range(k, n_steps):
            acc = acc + theta_s * (1 - theta_s) ** (j - k) * h[j]
        grad_a.append(acc)
    grad_a = xp.stack(grad_a)
    fire = grad_a * xp.clip(1 / du, -10.0, 10.0) * s
    warm = grad_a * surrogate(xp, u, threshold)
    rate = xp.mean(s) if batch_mean is None else batch_mean(s)
    return xp.where(rate > rate_threshold, fire, warm)  # the rate over the whole layer and batch


def _final_backward(xp, G, u, du, s, a, batch_mean=None, **consts):
    return tsslbp_backward(xp, G, u, du, s, a, **consts)  # per neuron: nothing is shared over the batch


def _paper2020_backward(xp, G, u, du, s, a, **consts):
    return paper2020_backward(xp, G, u, du, s, **consts)  # decides on the layer's rate, not on a


#: The twin's spiking backward per variant, and the options it takes from NetOptions.  Written apart from
#: :mod:`reference.rules` on purpose: the twins check our rules, so they share no code with them.
TWIN_RULES = {"final": (_final_backward, ("inter", "intra", "warmup")),
              "paper2020": (_paper2020_backward, ("intra", "rate_threshold"))}


def spike_backward(xp, G, u, du, s, a, *, variant="final", **consts):
    """The spiking non-linearity's backward for a variant (:data:`TWIN_RULES`): :func:`tsslbp_backward`
    (the final rule) or :func:`paper2020_backward`."""
    return TWIN_RULES[variant][0](xp, G, u, du, s, a, **consts)


# ------------------------------------------------------------------------------------------ the losses
def kernel_loss(b, out, onehot, target):
    """``L = 1/2 sum_{t,n,i} (a - onehot target[t])^2``; out (T, N, n_class), onehot (N, n_class), target (T,)."""
    return 0.5 * b.xp.sum((out - target[:, None, None] * onehot[None]) ** 2)


def count_loss(b, out, onehot, desired_count, undesired_count):
    """``L = T/2 sum_{n,i} d^2``, ``d = (sum_t a - target)/T`` set to 0 in the harmless direction.

    Its derivative is ``d`` at every step: the authors' straight-through gradient of their count loss.
    """
    xp = b.xp
    n_steps = out.shape[0]
    target = onehot * desired_count + (1 - onehot) * undesired_count
    d = (xp.sum(out, axis=0) - target) / n_steps
    harmless = ((onehot > 0) & (d > 0)) | ((onehot < 1) & (d < 0))
    d = xp.where(harmless, xp.zeros_like(d), d)
    return 0.5 * n_steps * xp.sum(d ** 2)


def softmax_loss(b, out, onehot, n_total=None):
    """Mean cross-entropy of ``softmax(sum_t a)`` over the batch (of ``n_total`` samples when this is a
    part of it, as on one process of several)."""
    return -b.xp.sum(b.log_softmax(b.xp.sum(out, axis=0)) * onehot) / (n_total or out.shape[1])


# ----------------------------------------------------------------------------------------- the network
class TwinModel:
    """The network of a config, forward and loss in a backend's arrays; gradients by the framework.

    Parameters
    ----------
    config : Config, dict or path (the authors' YAML schema)
    backend : a :class:`~reference.twins.torch_backend.TorchBackend` or
        :class:`~reference.twins.jax_backend.JaxBackend`
    spike : {"tsslbp", "bptt"}
        The non-linearity's backward: TSSL-BP (custom) or the surrogate-gradient BPTT baseline.
    options, **kwargs : the network options, a :class:`~reference.options.NetOptions` or its keywords, as
        :class:`reference.network.Network` (``variant="paper2020"``: the spiking backward
        :func:`paper2020_backward` and its target)
    detach_reset : bool
        BPTT only: treat the reset as a constant (``mem = v (1 - stop_gradient(s))``), as SpyTorch and
        snnTorch do; :func:`reference.surrogate.bptt_delta` with ``detach_reset=True``.
    unroll : bool
        BPTT only: differentiate through the membrane carried from step to step (leak and reset), the
        usual BPTT.  ``unroll=False`` cuts that path, leaving ``delta[t] = dL/ds[t] f(u[t])``, which is
        exactly TSSL-BP with ``warmup="always"`` (a check of the BPTT machinery).

    Dropout layers are the identity unless :meth:`forward` is given masks (the checks run the network
    as in evaluation, as ``gradients`` does; the training engine passes the masks it draws).
    ``batch_mean`` : optional ``f(tensor) -> mean`` over the whole batch for the paper-era layer switch
    (the training engine's mean over all processes; default the local ``mean``).
    """

    def __init__(self, config, backend, *, spike="tsslbp", unroll=True, detach_reset=False, batch_mean=None,
                 options: NetOptions | None = None, **kwargs):
        self.config = config if isinstance(config, Config) else load_config(config)
        if spike not in SPIKES:
            raise ValueError(f"spike must be one of {SPIKES}, got {spike!r}")
        if options is not None and kwargs:
            raise TypeError(f"give the network options either as options= or as keywords, not both: {sorted(kwargs)}")
        opts = options if options is not None else NetOptions(**kwargs)  # checked once, there
        self.backend = backend
        self.spike = spike
        self.unroll = unroll
        self.detach_reset = bool(detach_reset)
        taken = TWIN_RULES[opts.variant][1]
        self.options = {k: getattr(opts, k) for k in taken if getattr(opts, k) is not None}
        self.options["variant"] = opts.variant
        if batch_mean is not None:
            self.options["batch_mean"] = batch_mean
        target_filter = opts.target_filter_used
        desired_pattern = opts.desired_pattern_used(self.config.params.n_steps)
        self.target_filter = target_filter
        self.pattern = desired_spike_train(self.config.params.n_steps, desired_pattern)
        p = self.config.params
        self.theta_m, self.theta_s, self.tau_s = 1.0 / p.tau_m, 1.0 / p.tau_s, p.tau_s
        self.layers = self.config.layers
        self.weight_names = list(self.config.weighted_layers)

    def _threshold(self, c):
        return self.config.params.threshold if c.get("threshold") is None else c["threshold"]

    def spiking(self, x, threshold):
        """Spikes ``s`` (T, ...) of LIF neurons driven by ``x``; the framework sees the chosen backward."""
        b = self.backend
        if self.spike == "tsslbp":
            consts = dict(theta_m=self.theta_m, tau_s=self.tau_s, threshold=threshold, **self.options)
            return b.tsslbp_spike(x, consts)
        xp = b.xp  # BPTT: the recursion unrolled in the framework, the surrogate for ds/du only
        mem, s = xp.zeros_like(x[0]), []
        for t in range(x.shape[0]):
            v = mem + (mem * (-self.theta_m) + x[t])
            st = b.surrogate_step(v, threshold)
            s.append(st)
            mem = v * (1 - (b.stop_gradient(st) if self.detach_reset else st))
            if not self.unroll:
                mem = b.stop_gradient(mem)
        return xp.stack(s)

    def forward(self, weights: dict, probes: dict | None, inputs, masks=None):
        """Output PSP (T, N, n_class) and per-layer records.

        weights : name -> array in the authors' layout; probes : name -> zeros added to each layer's
        ``x`` (spiking layers) or output (pooling/dropout), so that ``dL/dprobe`` is the layer's delta
        (None: no probes, as in training);
        inputs : (N, C, H, W) images (repeated over T) or (N, C, H, W, T), in the backend's dtype;
        masks : optional ``masks(name, a) -> mask or None`` for dropout layers: ``a`` the layer's input
        (T, N, ...), the mask (N, ...) already scaled by ``1/(1-p)`` and shared by every step.
        Records: ``{name: {"a": output, "s": spikes, "x": current}}``, time first.
        """
        probes = probes if probes is not None else {}
        b, xp = self.backend, self.backend.xp
        n_steps = self.config.params.n_steps
        if inputs.ndim == 4:
            x = xp.stack([inputs] * n_steps)
        else:
            x = b.permute(inputs, (4, 0, 1, 2, 3))
        a = psp(xp, x, self.theta_s)
        records = {}
        for name, c in self.layers:
            kind = c["type"]
            if kind == "linear":
                flat = a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))  # explicit: a batch may be empty
                cur = _plus(flat @ b.permute(weights[name], (1, 0)), probes.get(name))
            elif kind == "conv":
                cur = _plus(b.conv(a, weights[name], c["stride"], c["padding"], c["dilation"]), probes.get(name))
            elif kind == "pooling":
                a = _plus(sum_pool(a, c["kernel_size"]) * c["theta"], probes.get(name))
                records[name] = {"a": a}
                continue
            else:  # dropout: identity outside training, the engine's mask in training
                mask = masks(name, a) if masks is not None else None
                a = _plus(a if mask is None else a * mask[None], probes.get(name))
                records[name] = {"a": a}
                continue
            thr = self._threshold(c)
            s = self.spiking(cur, thr)
            a = psp(xp, s, self.theta_s)
            records[name] = {"a": a, "s": s, "x": cur}
        out = a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))
        return out, records

    def target(self, like):
        """The label neuron's target PSP (T,): the desired train filtered once or twice, in the backend."""
        xp = self.backend.xp
        d = self.backend.asarray(self.pattern.astype(np.float64), like=like)
        once = psp(xp, d, self.theta_s)
        return psp(xp, once, self.theta_s) if self.target_filter == "double" else once

    def loss(self, out, labels_np, n_total=None):
        """The config's loss on the output PSP (T, N, n_class) (:func:`kernel_loss`, :func:`count_loss`,
        :func:`softmax_loss`), as the framework differentiates it.  ``n_total``: the size of the whole
        batch when ``out`` is one process's part of it (only the softmax loss, a batch mean, uses it)."""
        b = self.backend
        net = self.config.network
        onehot_np = np.zeros(out.shape[1:])
        onehot_np[np.arange(out.shape[1]), np.asarray(labels_np, dtype=np.int64)] = 1.0
        onehot = b.asarray(onehot_np, like=out)
        if net["loss"] == "kernel":
            return kernel_loss(b, out, onehot, self.target(out))
        if net["loss"] == "count":
            return count_loss(b, out, onehot, net["desired_count"], net["undesired_count"])
        return softmax_loss(b, out, onehot, n_total)

    def loss_fn(self, weights, probes, inputs, labels_np):
        """``(loss, records)``: the function the backends differentiate w.r.t. ``weights`` and ``probes``."""
        out, records = self.forward(weights, probes, inputs)
        return self.loss(out, labels_np), records

    def probe_shapes(self, n: int) -> dict:
        """Shape of each layer's probe for a batch of ``n``: the layout of the layer's output in
        :meth:`forward`, (T, N, F) for a linear layer and a dropout after one, (T, N, C, H, W) else."""
        t = self.config.params.n_steps
        shapes, flat = {}, False
        for name, c in self.layers:
            cc, h, w = c["out_shape"]
            if c["type"] != "dropout":  # a dropout keeps the layout of what it drops
                flat = c["type"] == "linear"
            shapes[name] = (t, n, cc) if flat else (t, n, cc, h, w)
        return shapes

    def gradients(self, weights_np: dict, inputs_np, labels_np) -> dict:
        """Loss, weight gradients and per-layer deltas of one batch, with the framework's autodiff.

        Returns a dict of NumPy arrays in our boundary layouts: ``loss`` (float), ``grads`` (name ->
        authors' weight layout), ``deltas`` and ``outputs`` (name -> (N, C, H, W, T)), ``spikes`` of
        spiking layers (name -> (N, C, H, W, T)).
        """
        labels_np = np.asarray(labels_np, dtype=np.int64)
        shapes = self.probe_shapes(len(labels_np))
        return self.backend.run(self, weights_np, shapes, np.asarray(inputs_np), labels_np)


def _plus(x, probe):
    """``x + probe``, or ``x`` when there is no probe."""
    return x if probe is None else x + probe


def to_authors(arr: np.ndarray) -> np.ndarray:
    """Time-first (T, N, C, H, W) or (T, N, F) to the authors' (N, C, H, W, T) or (N, F, 1, 1, T)."""
    arr = np.asarray(arr)
    if arr.ndim == 3:
        return np.ascontiguousarray(arr.transpose(1, 2, 0)[:, :, None, None, :])
    return np.ascontiguousarray(arr.transpose(1, 2, 3, 4, 0))


def collect_results(loss: float, grads: dict, deltas: dict, records: dict, to_numpy) -> dict:
    """A backend's results as NumPy arrays in our boundary layouts (see :meth:`TwinModel.gradients`)."""
    return {
        "loss": loss,
        "grads": {k: to_numpy(g) for k, g in grads.items()},
        "deltas": {k: to_authors(to_numpy(d)) for k, d in deltas.items()},
        "outputs": {k: to_authors(to_numpy(r["a"])) for k, r in records.items()},
        "spikes": {k: to_authors(to_numpy(r["s"])) for k, r in records.items() if "s" in r},
    }
