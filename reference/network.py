"""A spiking network built from a config in the authors' schema: forward, loss, TSSL-BP backward.

Data flow::

    image (N,C,H,W) --repeat over T, psp--> a_0
    a_{l-1} --layer l (W)--> x_l --LIF--> u_l, du_l, s_l --psp--> a_l           (forward)
    dL/da_L from the loss; per layer: dL/da_l --TSSL-BP--> delta_l = dL/dx_l
    delta_l --layer backward--> dL/dW_l, dL/da_{l-1}                              (backward)

Inside, activations are time-first and channels-last, ``(T, N, H, W, C)``; at the boundary everything is
in the authors' layouts: weights ``(out, in)`` / ``(out, in, kh, kw)`` by layer name, per-layer tensors
``(N, C, H, W, T)`` (:meth:`Network.layer_outputs`, :meth:`Network.layer_deltas`).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from .config import Config, load_config
from .layers import Conv2d, Dense, Dropout, Spiking, SumPool2d, init_linear_weight
from .losses import count_loss, kernel_loss, kernel_target, predict, softmax_loss
from .neuron import CompactState, NeuronState, encode_input, psp
from .options import BACKWARDS, INPUT_ENCODINGS, VARIANTS, NetOptions


class SizeError(MemoryError):
    """A network or batch whose arrays would not fit in this machine's memory (checked before allocating)."""


@dataclass
class LayerRecord:
    """What one layer did in the last forward/backward pass (internal layout, time first).

    Attributes
    ----------
    name, kind : the config's layer name and type
    out : (T, N, ...) the layer's output PSP (pooling: pooled PSP; dropout: dropped PSP).  For a conv
        layer whose pooling ran in the same kernel it is computed from the recorded spikes when first read.
    cache : what the layer's forward handed back for its backward (:mod:`reference.layers`)
    state : NeuronState, CompactState or None (u, du, s, a of the layer's neurons; None for pooling/dropout)
    delta : (T, N, ...) after backward: ``dL/dx`` of a spiking layer; ``dL/d out`` for pooling/dropout
    branch : int8 (T, N, ...) after backward: which TSSL-BP branch produced each delta (spiking layers)
    """

    name: str
    kind: str
    out_: np.ndarray | None
    cache: object = None
    state: NeuronState | CompactState | None = None
    delta: np.ndarray | None = None
    branch: np.ndarray | None = None

    @property
    def out(self) -> np.ndarray:
        return self.state.a if self.out_ is None else self.out_


class Network:
    """A TSSL-BP network.

    Parameters
    ----------
    config : Config, dict or path to a YAML file in the authors' schema
    dtype : numpy dtype, default float32 (the authors' precision; float64 for checks)
    seed : int, optional
        Seeds weight initialisation and dropout masks (``numpy.random.default_rng(seed)``).
    options : NetOptions, optional
        The run's network options (rule, terms, target, encoding, prediction, dropout unit), checked once
        by :class:`reference.options.NetOptions`, which documents each.
    **kwargs
        The same options as keywords (``variant="paper2020"``, ``warmup="never"``, ...), when ``options``
        is not given.  Kept as :attr:`net_options`.
    """

    BACKWARDS = BACKWARDS
    INPUT_ENCODINGS = INPUT_ENCODINGS
    VARIANTS = VARIANTS

    def __init__(self, config, *, dtype=np.float32, seed: int | None = 0, options: NetOptions | None = None,
                 **kwargs):
        if options is not None and kwargs:
            raise TypeError(f"give the network options either as options= or as keywords, not both: {sorted(kwargs)}")
        if options is None:
            unknown = sorted(set(kwargs) - set(NetOptions.names()))
            if unknown:
                raise TypeError(f"Network() got unknown option(s) {unknown}; known: {list(NetOptions.names())}")
            options = NetOptions(**kwargs)
        elif not isinstance(options, NetOptions):
            raise TypeError(f"options must be a NetOptions, got {type(options).__name__}")
        self.net_options = opts = options
        self.config = config if isinstance(config, Config) else load_config(config)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        self.params = self.config.params
        self.n_steps = self.params.n_steps
        self.rng = np.random.default_rng(seed)
        self.variant, self.input_encoding = opts.variant, opts.input_encoding
        self.count_of, self.dropout_unit = opts.count_of, opts.dropout_unit
        self.learning_rule = opts.rule  # what the variant decides (reference.rules)
        self.rule = self.learning_rule.delta(opts)  # the spiking layers' backward
        net = self.config.network
        self.loss_name = net["loss"]
        self.target = kernel_target(self.n_steps, self.params.tau_s, opts.target_filter_used,
                                    opts.desired_pattern_used(self.n_steps), self.dtype)
        n_weights = sum(math.prod(shape) for shape in self.config.weight_shapes.values())
        _check_fits(n_weights * self.dtype.itemsize * 4, "the weights and their AdamW state")
        self._checked_batch = 0  # the largest batch already known to fit (check_batch_fits)
        self.layers = [self._build(name, c) for name, c in self.config.layers]
        # a conv layer followed by sum-pooling runs its neurons and the pooling in one kernel, forward and
        # backward: pool_inside[i] is the pooling layer that layer i runs (else None)
        self.pool_inside = [after if layer.kind == "conv" and isinstance(after, SumPool2d) else None
                            for layer, after in zip(self.layers, self.layers[1:] + [None])]
        self.records: list[LayerRecord] = []

    # ------------------------------------------------------------------------------------ construction
    def _build(self, name: str, c: dict):
        """One layer of the config: conv/linear become :class:`~reference.layers.Spiking` layers."""
        kind = c["type"]
        if kind == "linear":
            w = init_linear_weight(c["n_outputs"], c["n_inputs"], c["weight_scale"], self.rng)
            synapse = Dense(name, w.astype(self.dtype), c["in_shape"])
            return Spiking(synapse, self.params, c["threshold"], self.rule)
        if kind == "conv":
            (kh, kw) = c["kernel_size"]
            init = self.learning_rule.init_conv
            w = init(c["out_channels"], c["in_channels"], kh, kw, c["weight_scale"], self.rng)
            synapse = Conv2d(name, w.astype(self.dtype), c["in_shape"], c["stride"], c["padding"], c["dilation"])
            return Spiking(synapse, self.params, c["threshold"], self.rule)
        if kind == "pooling":
            return SumPool2d(name, c["kernel_size"], c["in_shape"], c["theta"])
        return Dropout(name, c["p"], c["in_shape"], self.dropout_unit)

    @property
    def weights(self) -> dict[str, np.ndarray]:
        """Trainable weights by layer name, in the authors' layouts (the live arrays, not copies)."""
        return {layer.name: layer.weight for layer in self.layers if layer.weight is not None}

    def set_weights(self, weights: dict, strict: bool = True) -> None:
        """Copy weights in (authors' layouts) after checking names, shapes and values.

        Raises ValueError naming the layer when a name is unknown or missing (``strict``), a shape
        differs, or a value is not finite; then no weight has been changed.
        """
        own = self.weights
        unknown = sorted(set(weights) - set(own))
        missing = sorted(set(own) - set(weights))
        if unknown:
            raise ValueError(f"weights for unknown layer(s) {unknown}; this network's weighted layers are {list(own)}")
        if strict and missing:
            raise ValueError(f"no weights given for layer(s) {missing}")
        checked = {}
        for name, w in weights.items():  # check every layer before copying any: all or nothing
            w = np.asarray(w)
            if w.shape != own[name].shape:
                raise ValueError(f"layer {name!r}: weight shape {w.shape}, expected {own[name].shape} (authors' layout)")
            if not np.issubdtype(w.dtype, np.floating):
                raise ValueError(f"layer {name!r}: weights must be floating point, got {w.dtype}")
            if not np.all(np.isfinite(w)):
                raise ValueError(f"layer {name!r}: weights contain NaN or inf")
            checked[name] = w
        for name, w in checked.items():
            own[name][...] = w

    # ----------------------------------------------------------------------------------------- forward
    def encode(self, inputs: np.ndarray) -> np.ndarray:
        """The first layer's input PSP ``a_0``, internal layout (T, N, H, W, C).

        inputs : (N, C, H, W) static images (already normalised; repeated at every step, as the authors
        do) or (N, C, H, W, T) spike trains.  Either is passed through the PSP filter.
        """
        x = np.asarray(inputs)
        c, h, w = self.config.input_shape
        if x.ndim == 4:
            if x.shape[1:] != (c, h, w):
                raise ValueError(f"inputs have shape {x.shape}; this network expects (N, {c}, {h}, {w})")
            x = x.transpose(0, 2, 3, 1)[None]  # (1, N, H, W, C); repeated over time below, without a copy
        elif x.ndim == 5:
            if x.shape[1:] != (c, h, w, self.n_steps):
                raise ValueError(f"inputs have shape {x.shape}; expected (N, {c}, {h}, {w}, {self.n_steps})")
            x = x.transpose(4, 0, 2, 3, 1)
        else:
            raise ValueError(f"inputs must be (N, C, H, W) or (N, C, H, W, T), got shape {x.shape}")
        if not (np.issubdtype(x.dtype, np.number) or x.dtype == bool) or np.issubdtype(x.dtype, np.complexfloating):
            raise TypeError(f"inputs must be real numbers, got {x.dtype}")
        self.check_batch_fits(x.shape[1])
        with np.errstate(over="ignore"):  # values beyond float32's range become inf: tested just below
            x = np.ascontiguousarray(x, dtype=self.dtype)
        if x.shape[0] == 1 < self.n_steps:  # a static image: the same input at every step (a view)
            x = np.broadcast_to(x, (self.n_steps, *x.shape[1:]))
        if not np.all(np.isfinite(x)):  # after the cast: float64 values beyond float32's range become inf
            raise ValueError(f"inputs contain NaN or inf (in {self.dtype.name}; |values| must stay below "
                             f"{np.finfo(self.dtype).max:.3g})")
        if self.input_encoding == "psp":
            return psp(x, self.params.tau_s)
        return encode_input(x, self.params.tau_s, division=self.INPUT_ENCODINGS[self.input_encoding])

    def forward(self, inputs: np.ndarray, train: bool = False) -> np.ndarray:
        """Run the network; returns the output layer's PSP, (T, N, n_class), and keeps :attr:`records`.

        ``train=True`` draws dropout masks from the network's generator.
        """
        a = self.encode(inputs)
        records = []
        for i, layer in enumerate(self.layers):
            if i > 0 and self.pool_inside[i - 1] is layer:  # already run by the conv layer before it
                records.append(LayerRecord(layer.name, layer.kind, a))
                continue
            pool = self.pool_inside[i]
            kw = {"pool": pool} if pool is not None else {}
            a, cache = layer.forward(a, train=train, rng=self.rng, **kw)  # with pool: the pooled PSP
            records.append(LayerRecord(layer.name, layer.kind, None if pool is not None else a, cache,
                                       getattr(cache, "state", None)))
        self.records = records
        return a.reshape(a.shape[0], a.shape[1], -1)

    def infer(self, inputs: np.ndarray, *, spikes: bool = False):
        """Forward-only pass for evaluation and prediction: the output PSP (T, N, n_class).

        The same numbers as :meth:`forward` with ``train=False`` (tested bit for bit), but no layer records
        anything a backward needs (no ``du``, spikes, im2col columns; :attr:`records` is left as it was),
        and a convolution runs a few images at a time (:meth:`reference.layers.Conv2d.infer`), so memory
        stays small and large batches pay.  With ``spikes``, returns ``(out, s)``: s the output layer's
        spikes (T, N, n_class) as uint8, which :meth:`predict` needs with ``count_of="spikes"``.
        """
        a = self.encode(inputs)
        last = len(self.layers) - 1
        s = None
        for i, layer in enumerate(self.layers):
            if i > 0 and self.pool_inside[i - 1] is layer:  # already run by the conv layer before it
                continue
            if i == last and spikes and getattr(layer, "has_neurons", False):
                a, s = layer.infer(a, spikes=True)
            elif self.pool_inside[i] is not None:
                a = layer.infer(a, pool=self.pool_inside[i])  # neurons and pooling in one pass
            else:
                a = layer.infer(a)
        out = a.reshape(a.shape[0], a.shape[1], -1)
        return (out, None if s is None else s.reshape(out.shape)) if spikes else out

    # -------------------------------------------------------------------------------------------- loss
    def loss(self, out: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """The config's loss on the output PSP ``out`` (T, N, n_class): returns ``(L, dL/d out)``."""
        if self.loss_name == "kernel":
            return kernel_loss(out, labels, self.target)
        if self.loss_name == "count":
            net = self.config.network
            return count_loss(out, labels, net["desired_count"], net["undesired_count"])
        return softmax_loss(out, labels)

    def loss_sum(self, loss: float, n: int) -> float:
        """The loss of a batch of ``n`` samples as a sum over its samples, whatever the loss's reduction.

        The kernel and count losses are sums over the batch (as the authors'); the softmax loss is their
        ``F.cross_entropy``, a batch mean, so it is multiplied by ``n``.  Training and test losses are
        reported per sample from these sums, so they are comparable.
        """
        return loss * n if self.loss_name == "softmax" else loss

    def check_batch_fits(self, batch_size: int) -> None:
        """Raise :class:`SizeError` when a training batch of ``batch_size`` would not fit in memory.

        Checked once per new largest batch (every forward calls it), so a training step reads no
        ``/proc/meminfo``."""
        if batch_size <= self._checked_batch:
            return
        _check_fits(self.config.activation_bytes(batch_size, self.dtype.itemsize), f"a batch of {batch_size} samples")
        self._checked_batch = batch_size

    def predict(self, out: np.ndarray, spikes: np.ndarray | None = None) -> np.ndarray:
        """Predicted class per sample from the output PSP ``out`` (T, N, n_class).

        With ``count_of="spikes"`` the output layer's spikes are counted: ``spikes`` (T, N, n_class) as
        returned by :meth:`infer`, or by default those of the last :meth:`forward`.
        """
        if self.count_of == "spikes" and spikes is None:
            spikes = self.records[-1].state.s.reshape(out.shape)
        return predict(out, spikes, self.count_of)

    # ---------------------------------------------------------------------------------------- backward
    def backward(self, g_out: np.ndarray) -> dict[str, np.ndarray]:
        """TSSL-BP backward from ``g_out = dL/d out`` (T, N, n_class); returns weight gradients by layer name.

        Fills ``delta`` and ``branch`` of every :class:`LayerRecord`.
        """
        if not self.records:
            raise RuntimeError("backward() needs a forward() first")
        grads = {}
        g = np.asarray(g_out, dtype=self.dtype).reshape(self.records[-1].out.shape)
        for i in range(len(self.layers) - 1, -1, -1):
            layer, rec = self.layers[i], self.records[i]
            if i > 0 and self.pool_inside[i - 1] is layer:  # its backward is done by the conv layer below
                rec.delta = g  # the pooling record's delta is dL/d(its output), as unfused
                continue
            pool = self.pool_inside[i]
            kw = {"pool": pool} if pool is not None else {}
            grad = layer.backward(g, rec.cache, need_input_grad=i > 0, **kw)
            rec.delta, rec.branch = grad.delta, grad.branch
            if grad.dW is not None:
                grads[layer.name] = grad.dW
            g = grad.g_in
        return {name: grads[name] for name in self.weights}

    def gradients(self, inputs: np.ndarray, labels: np.ndarray, train: bool = False):
        """Forward, loss and backward on one batch: returns ``(loss, grads, out)``."""
        out = self.forward(inputs, train=train)
        loss, g = self.loss(out, labels)
        return loss, self.backward(g), out

    # --------------------------------------------------------------------------- authors' layouts out
    def layer_outputs(self) -> dict[str, np.ndarray]:
        """Every layer's output PSP of the last forward, in the authors' layout (N, C, H, W, T)."""
        return {rec.name: to_authors_layout(rec.out) for rec in self.records}

    def layer_deltas(self) -> dict[str, np.ndarray]:
        """Every layer's delta of the last backward, (N, C, H, W, T): ``dL/dx`` of spiking layers,
        ``dL/d output`` of pooling and dropout layers."""
        return {rec.name: to_authors_layout(rec.delta) for rec in self.records}


def available_memory() -> int | None:
    """Bytes of memory available to this process now (Linux ``MemAvailable``), or None where unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_fits(n_bytes: int, what: str) -> None:
    """Raise :class:`SizeError` when ``n_bytes`` (an estimate) exceed the memory available now."""
    avail = available_memory()
    if avail is not None and n_bytes > avail:
        raise SizeError(f"{what} would need about {n_bytes / 2**30:.1f} GiB, but only {avail / 2**30:.1f} GiB "
                        f"of memory is available: use a smaller batch or network")


def to_authors_layout(arr: np.ndarray) -> np.ndarray:
    """Internal (T, N, H, W, C) or (T, N, F) to the authors' (N, C, H, W, T) or (N, F, 1, 1, T)."""
    if arr.ndim == 3:
        return np.ascontiguousarray(arr.transpose(1, 2, 0)[:, :, None, None, :])
    return np.ascontiguousarray(arr.transpose(1, 4, 2, 3, 0))
