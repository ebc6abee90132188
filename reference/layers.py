"""Layers with explicit forward and backward: dense, 2-D convolution, sum-pooling, dropout.

Layouts.  Weights are kept in the authors' layouts, which is what users read and write: dense
``(out, in)`` and conv ``(out, in, kh, kw)``.  Activations inside the network are time-first and
channels-last, ``(T, N, H, W, C)`` (dense: ``(T, N, F)``): all ``T*N`` images go through one GEMM, the
neuron kernels run over contiguous rows, and no transposes are needed between layers.  A dense layer after
a conv/pool layer sees its input flattened in the authors' ``(C, H, W)`` order; it permutes its weight
columns to the channels-last order instead of permuting the (larger) activations.

Equations (paper-notes section 3): the layer current is ``x[t] = W a[t]`` (no bias); given
``delta[t] = dL/dx[t]``, the weight gradient is ``dL/dW = sum_t delta[t] a[t]^T`` and the error sent to
the previous layer is ``dL/da[t] = W^T delta[t]`` (for a convolution, the transposed convolution).

One interface.  Every layer is pure: it keeps its constants (weight, shapes) and nothing about the last
batch.  What the backward needs is handed back by the forward and passed in again::

    y, cache = layer.forward(a, train=False, rng=None)     # a: (T, N, ...) internal layout
    grad = layer.backward(g, cache, need_input_grad=True)  # g = dL/dy, same shape as y
    grad.dW, grad.g_in                                     # dL/dW (authors' layout) or None; dL/da, a's shape

For evaluation there is a forward-only path, ``y = layer.infer(a)``: the same numbers as ``forward`` (for
a spiking layer, its output PSP), without recording anything a backward would need.

The weighted layers of a config (``conv``, ``linear``) are :class:`Spiking` layers: a synaptic operation
(:class:`Dense` or :class:`Conv2d`, whose ``y`` is the current ``x``) followed by LIF neurons and their PSP
(:func:`reference.neuron.lif_forward`); their backward turns ``g = dL/da`` into ``delta = dL/dx`` with a
backward rule (TSSL-BP, :func:`reference.tsslbp.tsslbp_delta`) and then runs the synapse's backward.
``grad.delta`` and ``grad.branch`` report that step (``delta`` is ``g`` itself for layers without neurons).
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from ._jit import as_scalar, kernel, n_chunks, prange
from .neuron import CompactState, NeuronState, _checked_current, lif_compact
from .params import POOL_THETA, NeuronParams, conv_output_size  # noqa: F401 (re-exported)
from .steps import lif_step, psp_step


class LayerGrad(NamedTuple):
    """What a layer's backward returns.

    dW : ndarray or None, ``dL/dW`` in the authors' weight layout (None for layers without weights)
    g_in : ndarray or None, ``dL/da_in``, the shape of the layer's input (None when not asked for)
    delta : ndarray, ``dL/dx`` of a spiking or synaptic layer; ``dL/d out`` (the ``g`` given) otherwise
    branch : int8 ndarray or None, which TSSL-BP branch made each delta (spiking layers only)
    """

    dW: np.ndarray | None
    g_in: np.ndarray | None
    delta: np.ndarray
    branch: np.ndarray | None = None


# --------------------------------------------------------------------------------------------------- dense
class Dense:
    """Fully connected layer ``x[t] = W a[t]`` (config type ``linear``).

    Parameters
    ----------
    name : str
    weight : ndarray, shape (n_outputs, n_inputs), the authors' layout
    in_shape : tuple (C, H, W)
        Shape of the input in the authors' terms; ``C*H*W == n_inputs``.  For ``H = W = 1`` the input is
        a plain feature vector.
    """

    kind = "linear"

    def __init__(self, name: str, weight: np.ndarray, in_shape: tuple[int, int, int]):
        self.name = name
        self.weight = weight
        self.in_shape = tuple(in_shape)
        self.out_shape = (weight.shape[0], 1, 1)

    def _permuted_weight(self) -> np.ndarray:
        """Weight with columns in the internal channels-last order ``(H, W, C)``, shape (out, H*W*C)."""
        c, h, w = self.in_shape
        if h == 1 and w == 1 or c == 1:
            return self.weight
        return self.weight.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(self.weight.shape[0], -1)

    def forward(self, a_in: np.ndarray, *, train: bool = False, rng=None):
        """``x = a_in W^T`` over all steps and samples at once.

        a_in : (T, N, ...) with ``prod(...) == n_inputs``, channels-last.  Returns ``(x, cache)``:
        x (T, N, n_outputs); cache holds the input (the weight gradient needs it).
        """
        t, n = a_in.shape[:2]
        a2 = a_in.reshape(t * n, -1)  # (T*N, n_inputs)
        x = (a2 @ self._permuted_weight().T).reshape(t, n, -1)
        return x, (a2, a_in.shape)

    def infer(self, a_in: np.ndarray) -> np.ndarray:
        """:meth:`forward` without the cache: x (T, N, n_outputs)."""
        return self.forward(a_in)[0]

    def backward(self, delta: np.ndarray, cache, *, need_input_grad: bool = True) -> LayerGrad:
        """Weight gradient and the error on the input PSP.

        delta : (T, N, n_outputs), ``dL/dx``; cache : from :meth:`forward`.  Returns :class:`LayerGrad`
        with dW (n_outputs, n_inputs) in the authors' layout and g_in of the input's shape (or None).
        """
        a2, in_shape = cache
        d2 = delta.reshape(-1, delta.shape[-1])
        g_in = self.input_grad(d2, in_shape) if need_input_grad else None
        return LayerGrad(self.weight_grad(d2, a2), g_in, delta)

    def weight_grad(self, d2: np.ndarray, a2: np.ndarray) -> np.ndarray:
        """``dL/dW = sum_t delta[t] a[t]^T`` as one product: d2 (T*N, out), a2 (T*N, in) -> (out, in), authors' layout."""
        dw = d2.T @ a2  # (out, in) in internal column order
        c, h, w = self.in_shape
        if not (h == 1 and w == 1 or c == 1):
            dw = dw.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(dw.shape[0], -1)
        return dw

    def input_grad(self, d2: np.ndarray, in_shape: tuple) -> np.ndarray:
        """``dL/da_in[t] = W^T delta[t]``: d2 (T*N, out) -> the input's shape ``in_shape``."""
        return (d2 @ self._permuted_weight()).reshape(in_shape)


# ---------------------------------------------------------------------------------------------------- conv
def _im2col(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cols):
    """Gather every receptive field of a channels-last batch ``x`` (B, H, W, C) into rows of ``cols``.

    cols : (B*oh*ow, kh*kw*C); row ``(b*oh + i)*ow + j`` holds the patch of output pixel (i, j) of image
    b, ordered (kh, kw, C); zero where the patch reaches into the padding.
    """
    n_img, height, width, n_ch = x.shape
    for b in prange(n_img):
        for i in range(oh):
            for j in range(ow):
                row = (b * oh + i) * ow + j
                for p in range(kh):
                    hi = i * sh - ph + p * dh
                    for q in range(kw):
                        wj = j * sw - pw + q * dw
                        base = (p * kw + q) * n_ch
                        if 0 <= hi < height and 0 <= wj < width:
                            for c in range(n_ch):
                                cols[row, base + c] = x[b, hi, wj, c]
                        else:
                            for c in range(n_ch):
                                cols[row, base + c] = 0


def _im2col_one_channel(x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, cols):
    """:func:`_im2col` for one input channel (``C = 1``, e.g. a first layer on grey images), same result.

    The general kernel's innermost loop runs over channels; with one channel it does a bounds test per
    value.  Here a patch row that lies inside the image is copied as one run of ``kw`` pixels (measured
    2.8-3.8x faster for the MNIST CNN's 5x5 first layer, with and without padding).
    """
    n_img, height, width, _ = x.shape
    for b in prange(n_img):
        for i in range(oh):
            for j in range(ow):
                row = (b * oh + i) * ow + j
                w0 = j * sw - pw
                run_inside = w0 >= 0 and w0 + (kw - 1) * dw < width
                for p in range(kh):
                    hi = i * sh - ph + p * dh
                    if 0 <= hi < height and run_inside:
                        for q in range(kw):
                            cols[row, p * kw + q] = x[b, hi, w0 + q * dw, 0]
                    else:
                        for q in range(kw):
                            wj = w0 + q * dw
                            cols[row, p * kw + q] = x[b, hi, wj, 0] if 0 <= hi < height and 0 <= wj < width else 0


def _col2im(cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, out):
    """Adjoint of :func:`_im2col`: add every row of ``cols`` back onto its receptive field of ``out``.

    out : (B, H, W, C), zero on entry.  Each image is owned by one thread (no races, fixed order).
    """
    n_img, height, width, n_ch = out.shape
    for b in prange(n_img):
        for i in range(oh):
            for j in range(ow):
                row = (b * oh + i) * ow + j
                for p in range(kh):
                    hi = i * sh - ph + p * dh
                    if hi < 0 or hi >= height:
                        continue
                    for q in range(kw):
                        wj = j * sw - pw + q * dw
                        if wj < 0 or wj >= width:
                            continue
                        base = (p * kw + q) * n_ch
                        for c in range(n_ch):
                            out[b, hi, wj, c] += cols[row, base + c]


_im2col_py, _im2col_one_channel_py, _col2im_py = _im2col, _im2col_one_channel, _col2im
_im2col = kernel(_im2col_py, parallel=True)
_im2col_one_channel = kernel(_im2col_one_channel_py, parallel=True)
_col2im = kernel(_col2im_py, parallel=True)


class Conv2d:
    """2-D convolution applied to every time step, ``x[t] = W (*) a[t]`` (config type ``conv``).

    Implemented as im2col over all ``T*N`` images and one GEMM (measured faster here than a direct Numba
    convolution for these sizes; see ``benchmarks/``).

    Parameters
    ----------
    name : str
    weight : ndarray, shape (out_channels, in_channels, kh, kw), the authors' layout
    in_shape : tuple (C, H, W)
    stride, padding, dilation : pairs of int
    """

    kind = "conv"

    def __init__(self, name, weight, in_shape, stride=(1, 1), padding=(0, 0), dilation=(1, 1)):
        self.name = name
        self.weight = weight
        self.in_shape = tuple(in_shape)
        self.stride, self.padding, self.dilation = tuple(stride), tuple(padding), tuple(dilation)
        _, kh, kw = weight.shape[1:]
        oh = conv_output_size(in_shape[1], kh, self.stride[0], self.padding[0], self.dilation[0])
        ow = conv_output_size(in_shape[2], kw, self.stride[1], self.padding[1], self.dilation[1])
        if oh < 1 or ow < 1:
            raise ValueError(f"layer {name!r}: kernel {kh}x{kw} does not fit the input {in_shape}")
        self.out_shape = (weight.shape[0], oh, ow)

    def _geometry(self):
        kh, kw = self.weight.shape[2:]
        return (kh, kw, *self.stride, *self.padding, *self.dilation, *self.out_shape[1:])

    def _im2col(self, imgs: np.ndarray, cols: np.ndarray) -> None:
        """Fill ``cols`` with the receptive fields of ``imgs`` (B, H, W, C): :func:`_im2col`, or its faster
        one-channel form :func:`_im2col_one_channel` (same result)."""
        (_im2col_one_channel if imgs.shape[-1] == 1 else _im2col)(imgs, *self._geometry(), cols)

    def _flat_weight(self) -> np.ndarray:
        """Weight as (out, kh*kw*C), matching the column order of :func:`_im2col`."""
        return self.weight.transpose(0, 2, 3, 1).reshape(self.weight.shape[0], -1)

    def forward(self, a_in: np.ndarray, *, train: bool = False, rng=None):
        """a_in : (T, N, H, W, C).  Returns ``(x, cache)``: x (T, N, OH, OW, out_channels); cache holds the
        im2col columns (T*N*OH*OW, kh*kw*C), which the weight gradient needs."""
        t, n = a_in.shape[:2]
        imgs = np.ascontiguousarray(a_in.reshape(t * n, *a_in.shape[2:]))  # (T*N, H, W, C)
        kh, kw = self.weight.shape[2:]
        oh, ow = self.out_shape[1:]
        cols = np.empty((t * n * oh * ow, kh * kw * imgs.shape[-1]), dtype=a_in.dtype)
        self._im2col(imgs, cols)
        return (cols @ self._flat_weight().T).reshape(t, n, oh, ow, -1), (cols, a_in.shape)

    def infer(self, a_in: np.ndarray, chunk_bytes: int = 1 << 21) -> np.ndarray:
        """:meth:`forward` without keeping the im2col columns: x (T, N, OH, OW, out_channels).

        The images go through im2col and the GEMM a few at a time, into one column buffer of about
        ``chunk_bytes`` (2 MiB: it stays in the cache between the two), instead of materialising the
        columns of all ``T*N`` images (for the MNIST CNN's first layer at batch 1000, 288 MB).  Each row of
        the result is the same dot product of the same row of columns as in :meth:`forward`, but in a
        product of another height, and BLAS need not round it the same (:meth:`input_grad` measures that
        it does not for the transposed product).  For this product it does, on the shipped configs with
        OpenBLAS's x86-64 kernels: ``tests/test_network.py`` checks ``infer == forward`` at tolerance 0,
        also with chunks of a few images, so a BLAS that breaks it fails there (a measured property, not
        a guarantee).
        """
        t, n = a_in.shape[:2]
        imgs = np.ascontiguousarray(a_in.reshape(t * n, *a_in.shape[2:]))  # (T*N, H, W, C)
        kh, kw = self.weight.shape[2:]
        oh, ow = self.out_shape[1:]
        rows, k = oh * ow, kh * kw * imgs.shape[-1]
        per_chunk = max(1, chunk_bytes // (rows * k * imgs.itemsize))
        cols = np.empty((min(per_chunk, t * n) * rows, k), dtype=imgs.dtype)
        w_t = np.ascontiguousarray(self._flat_weight().T)  # (kh*kw*C, out)
        x = np.empty((t * n * rows, w_t.shape[1]), dtype=imgs.dtype)
        for i0 in range(0, t * n, per_chunk):
            i1 = min(t * n, i0 + per_chunk)
            c = cols[: (i1 - i0) * rows]
            self._im2col(imgs[i0:i1], c)
            np.matmul(c, w_t, out=x[i0 * rows: i1 * rows])
        return x.reshape(t, n, oh, ow, -1)

    def backward(self, delta: np.ndarray, cache, *, need_input_grad: bool = True) -> LayerGrad:
        """delta : (T, N, OH, OW, out), ``dL/dx``; cache : from :meth:`forward`.  Returns :class:`LayerGrad`
        with dW (out, in, kh, kw) and g_in (T, N, H, W, C) or None."""
        cols, in_shape = cache
        d2 = delta.reshape(-1, self.weight.shape[0])  # (T*N*OH*OW, out)
        g_in = self.input_grad(d2, in_shape) if need_input_grad else None
        return LayerGrad(self.weight_grad(d2, cols), g_in, delta)

    def weight_grad(self, d2: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """``dL/dW`` as one product over all pixels, steps and samples: d2 (T*N*OH*OW, out), cols from
        :meth:`forward` -> (out, in, kh, kw), authors' layout."""
        out_c, in_c, kh, kw = self.weight.shape
        dw = (d2.T @ cols).reshape(out_c, kh, kw, in_c).transpose(0, 3, 1, 2)
        return np.ascontiguousarray(dw)

    def input_grad(self, d2: np.ndarray, in_shape: tuple, chunk_bytes: int = 1 << 21) -> np.ndarray:
        """The transposed convolution of delta: ``gcols = d2 W`` (T*N*OH*OW, kh*kw*C), then :func:`_col2im`
        adds each row back onto its receptive field.  Returns (T, N, H, W, C) = ``in_shape``.

        Done a few images at a time, through one ``gcols`` buffer of about ``chunk_bytes`` that stays in
        the cache between the product and col2im (the whole ``gcols`` of the MNIST CNN's second layer at
        batch 50 is 24 MB).  col2im sums each image on its own, but the product's rows are not the same
        bits for every chunk size: OpenBLAS blocks a product by its number of rows, so a row's float32 sum
        can round differently in a product of a different height (measured on the MNIST CNN's conv_2:
        52,186 of 540,000 entries differ, by at most 5e-10).  A given chunk size gives the same bits on
        every run; different chunk sizes agree to float32 rounding.  This is why training runs of the same
        seed made before and after this chunking (2026-12-01) follow different trajectories.
        """
        w = self._flat_weight()  # (out, kh*kw*C)
        n_img = in_shape[0] * in_shape[1]
        rows = self.out_shape[1] * self.out_shape[2]
        per_chunk = max(1, chunk_bytes // (rows * w.shape[1] * d2.itemsize))
        gcols = np.empty((min(per_chunk, n_img) * rows, w.shape[1]), dtype=d2.dtype)
        g_in = np.zeros((n_img, *in_shape[2:]), dtype=d2.dtype)  # (T*N, H, W, C)
        for i0 in range(0, n_img, per_chunk):
            i1 = min(n_img, i0 + per_chunk)
            g = gcols[: (i1 - i0) * rows]
            np.matmul(d2[i0 * rows: i1 * rows], w, out=g)
            _col2im(g, *self._geometry(), g_in[i0:i1])
        return g_in.reshape(in_shape)


# ------------------------------------------------------------------------------------------------- pooling
def _sum_pool(a, k, theta, out):
    """out[b, i, j, c] = theta * sum_{p, q < k} a[b, i*k + p, j*k + q, c]; a (B, H, W, C), out (B, OH, OW, C)."""
    n_img, oh, ow, n_ch = out.shape
    for b in prange(n_img):
        for i in range(oh):
            for j in range(ow):
                for c in range(n_ch):
                    out[b, i, j, c] = 0
                for p in range(k):
                    for q in range(k):
                        for c in range(n_ch):
                            out[b, i, j, c] += a[b, i * k + p, j * k + q, c]
                for c in range(n_ch):
                    out[b, i, j, c] *= theta


def _sum_pool_backward(g, k, theta, out):
    """out[b, i*k + p, j*k + q, c] = theta * g[b, i, j, c]; out (B, H, W, C) zero on entry (uncovered edges stay 0)."""
    n_img, oh, ow, n_ch = g.shape
    for b in prange(n_img):
        for i in range(oh):
            for j in range(ow):
                for p in range(k):
                    for q in range(k):
                        for c in range(n_ch):
                            out[b, i * k + p, j * k + q, c] = theta * g[b, i, j, c]


_sum_pool_py, _sum_pool_backward_py = _sum_pool, _sum_pool_backward
_sum_pool = kernel(_sum_pool_py, parallel=True)
_sum_pool_backward = kernel(_sum_pool_backward_py, parallel=True)


def _lif_sum_pool_kernel(x, one, theta_m, theta_s, threshold, k, theta_pool, n_img, height, width, n_ch, record,
                         chunks, du, s, out):
    """A conv layer's LIF neurons and the sum-pooling after them in one pass (:meth:`Spiking.forward`,
    :meth:`Spiking.infer` with ``pool``).

    x : (T, n_img*height*width*n_ch), the neurons' input current, channels-last; out : (T, n_img,
    height//k, width//k, n_ch), the pooled output PSP; with ``record``, du (like x) and the spikes s
    (uint8, like x) as :func:`reference.neuron.lif_compact` records them, else both ``(T, 0)``.  One job is
    the ``k`` neuron rows under one pooled row of one image, a contiguous run of ``x``: they are simulated
    over all steps with the float operations of :func:`reference.neuron._lif_kernel` in its order, and
    each step is pooled as :func:`_sum_pool` pools (``((0 + a_00) + a_01) + ...``, then times
    ``theta_pool``).  So ``out``, ``du`` and ``s`` equal the LIF kernel followed by pooling bit for bit,
    and the full-size PSP never reaches memory.  Rows below the last full window feed no output: one
    more job per image simulates them when recording, for the record's sake; otherwise they are skipped.
    """
    n_steps = x.shape[0]
    oh, ow = height // k, width // k
    row_len = width * n_ch
    zero = one - one
    neg_theta_m = -theta_m
    extra = 1 if record and height % k else 0
    per_img = oh + extra
    jobs = n_img * per_img
    for ch in prange(chunks):
        mem = np.empty(k * row_len, dtype=x.dtype)
        syn = np.empty(k * row_len, dtype=x.dtype)
        for job in range(ch * jobs // chunks, (ch + 1) * jobs // chunks):
            b = job // per_img
            i = job % per_img
            n_rows = k if i < oh else height - oh * k
            run = n_rows * row_len
            base = (b * height + i * k) * row_len
            for e in range(run):
                mem[e] = zero
                syn[e] = zero
            for t in range(n_steps):
                xt = x[t, base:base + run]  # views indexed from 0, so that LLVM vectorises the loop
                dut, st = du[t, base:base + run], s[t, base:base + run]  # empty when not recording
                for e in range(run):
                    step, _, fired, mem[e] = lif_step(mem[e], xt[e], neg_theta_m, threshold, zero)
                    syn[e] = psp_step(syn[e], one if fired else zero, theta_s)
                    if record:
                        dut[e] = step
                        st[e] = 1 if fired else 0
                if i < oh:
                    for j in range(ow):
                        acc = out[t, b, i, j]  # (n_ch,) view
                        for c in range(n_ch):
                            acc[c] = zero
                        for p in range(k):
                            for q in range(k):
                                off = p * row_len + (j * k + q) * n_ch
                                src = syn[off:off + n_ch]
                                for c in range(n_ch):
                                    acc[c] += src[c]
                        for c in range(n_ch):
                            acc[c] *= theta_pool


_lif_sum_pool_kernel_py = _lif_sum_pool_kernel
_lif_sum_pool_kernel = kernel(_lif_sum_pool_kernel_py, parallel=True)


class SumPool2d:
    """Sum-pooling with a fixed weight: ``out = theta * sum over each k x k window`` (config type ``pooling``).

    No neurons: it acts on the PSP tensor at every step (paper-notes section 1), stride = kernel size.
    Rows/columns that do not fill a window are dropped, as PyTorch's convolution does.

    Parameters
    ----------
    name : str
    kernel_size : int
    in_shape : tuple (C, H, W)
    theta : float, default 1.1
    """

    kind = "pooling"
    has_neurons = False
    weight = None

    def __init__(self, name: str, kernel_size: int, in_shape, theta: float = POOL_THETA):
        self.name = name
        self.k = int(kernel_size)
        self.theta = float(theta)
        self.in_shape = tuple(in_shape)
        c, h, w = in_shape
        if h < self.k or w < self.k:
            raise ValueError(f"layer {name!r}: pooling window {self.k} is larger than the input {in_shape}")
        self.out_shape = (c, h // self.k, w // self.k)

    def forward(self, a_in: np.ndarray, *, train: bool = False, rng=None):
        """a_in : (T, N, H, W, C).  Returns ``(out, None)``: out (T, N, H//k, W//k, C); nothing to cache."""
        t, n, h, w, c = a_in.shape
        _, oh, ow = self.out_shape
        out = np.empty((t * n, oh, ow, c), dtype=a_in.dtype)
        _sum_pool(np.ascontiguousarray(a_in).reshape(t * n, h, w, c), self.k, a_in.dtype.type(self.theta), out)
        return out.reshape(t, n, oh, ow, c), None

    def infer(self, a_in: np.ndarray) -> np.ndarray:
        """:meth:`forward`'s output: (T, N, H//k, W//k, C)."""
        return self.forward(a_in)[0]

    def backward(self, g_out: np.ndarray, cache=None, *, need_input_grad: bool = True) -> LayerGrad:
        """g_out : (T, N, OH, OW, C).  Returns :class:`LayerGrad` with ``g_in = dL/da_in`` (T, N, H, W, C):
        theta times g spread over each window (None when not asked for)."""
        if not need_input_grad:
            return LayerGrad(None, None, g_out)
        t, n, oh, ow, c = g_out.shape
        g_in = np.zeros((t * n, self.in_shape[1], self.in_shape[2], c), dtype=g_out.dtype)
        _sum_pool_backward(np.ascontiguousarray(g_out).reshape(t * n, oh, ow, c), self.k, g_out.dtype.type(self.theta), g_in)
        return LayerGrad(None, g_in.reshape(t, n, *g_in.shape[1:]), g_out)


# ------------------------------------------------------------------------------------------------- dropout
class Dropout:
    """Dropout on the PSP tensor, one mask per dropped unit, shared by all time steps.

    Inverted scaling: kept values are multiplied by ``1/(1-p)`` in training; identity in evaluation.
    What a unit is (``unit``):

    - ``"feature"`` (default, paper-notes section 1): one sample's one feature ``(n, c, h, w)``;
    - ``"row"``: ``(n, c, h)``, shared along W, which is what the authors' code does in PyTorch 1.x: it
      calls ``dropout3d`` on the tensor reshaped to ``(N, C*H, W, 1, 1, T)``, and feature dropout draws
      one value per ``(dim 0, dim 1)``.  After a dense layer (H = W = 1) this is the same as ``"feature"``;
    - ``"sample"``: the whole sample, which the same call does in PyTorch 2.13 (a 6-D input is taken as
      unbatched, so ``dim 0``, the batch, becomes the channel axis; verified with torch 2.13.0).

    Parameters
    ----------
    name : str
    p : float in [0, 1), drop probability (config key ``p``, default 0.5)
    in_shape : tuple (C, H, W)
    unit : {"feature", "row", "sample"}
    """

    kind = "dropout"
    has_neurons = False
    weight = None

    UNITS = ("feature", "row", "sample")

    def __init__(self, name: str, p: float, in_shape, unit: str = "feature"):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"layer {name!r}: dropout p must be in [0, 1), got {p}")
        if unit not in self.UNITS:
            raise ValueError(f"dropout unit must be one of {self.UNITS}, got {unit!r}")
        self.name, self.p, self.unit = name, float(p), unit
        self.in_shape = self.out_shape = tuple(in_shape)

    def forward(self, a_in: np.ndarray, *, train: bool = False, rng: np.random.Generator | None = None):
        """a_in : (T, N, ...).  Returns ``(out, mask)``: out of the same shape; in training a new mask
        (N, ...) drawn from ``rng``, already scaled by ``1/(1-p)``; ``mask`` None when nothing is dropped."""
        if not train or self.p == 0.0:
            return a_in, None
        mask = self.draw_mask(a_in.shape[1:], rng, a_in.dtype)
        return a_in * mask[None], mask

    def draw_mask(self, shape, rng: np.random.Generator, dtype=np.float32) -> np.ndarray:
        """A training mask for one step's input of ``shape`` (N, H, W, C) or (N, F), drawn from ``rng``
        and scaled by ``1/(1-p)``; size-1 axes where one value covers several entries (``unit``).

        The PyTorch training engine (:mod:`reference.engines.torch_engine`) draws its masks here too, from
        the same generator, so both engines drop the same units."""
        if rng is None:
            raise ValueError(f"layer {self.name!r}: dropout in training needs a random generator (rng)")
        keep = rng.random(self.mask_shape(shape)) >= self.p
        return (keep / (1.0 - self.p)).astype(dtype)

    def mask_shape(self, shape) -> tuple:
        """The mask's shape for an input of ``shape`` (N, H, W, C) or (N, F): size 1 along the axes one
        value covers (``unit``)."""
        shape = list(shape)
        if self.unit == "sample":
            shape[1:] = [1] * (len(shape) - 1)
        elif self.unit == "row" and len(shape) == 4:
            shape[2] = 1  # shared along W
        return tuple(shape)

    def infer(self, a_in: np.ndarray) -> np.ndarray:
        """Evaluation: the identity."""
        return a_in

    def backward(self, g_out: np.ndarray, mask=None, *, need_input_grad: bool = True) -> LayerGrad:
        """``dL/da_in = mask * dL/da_out`` (the forward's mask, the same at every step)."""
        if not need_input_grad:
            return LayerGrad(None, None, g_out)
        return LayerGrad(None, g_out if mask is None else g_out * mask[None], g_out)


# ----------------------------------------------------------------------------------------- spiking layer
#: A backward rule — ``rule(g, state, params, threshold) -> (delta, branch)`` turns ``g = dL/da`` of a
#: spiking layer into ``delta = dL/dx`` (e.g. :func:`reference.tsslbp.tsslbp_delta`).
BackwardRule = Callable[[np.ndarray, NeuronState, NeuronParams, float], tuple]


@dataclass(frozen=True)
class SpikingCache:
    """What a :class:`Spiking` layer's forward hands to its backward.

    Attributes
    ----------
    synapse : the cache of its :class:`Dense` / :class:`Conv2d` forward
    state : :class:`reference.neuron.CompactState`, the neurons' ``du`` and spikes, (T, N, ...); its ``u``,
        ``s`` and ``a`` read like a :class:`reference.neuron.NeuronState`'s
    """

    synapse: object
    state: CompactState | NeuronState


class Spiking:
    """A weighted layer of the config (``conv`` or ``linear``): synapses, then LIF neurons and their PSP.

    Forward: ``x = synapse(a_in)``, then :func:`reference.neuron.lif_compact` (the equations of
    :func:`reference.neuron.lif_forward`, storing ``du`` and the spikes only) gives ``u, du, s, a``; the
    layer's output is its neurons' PSP ``a``.  Backward: ``delta = rule(g, state)`` (TSSL-BP by default,
    paper-notes section 3), then the synapse's backward gives ``dL/dW`` and ``dL/da_in``.

    Parameters
    ----------
    synapse : Dense or Conv2d
    params : NeuronParams (tau_m, tau_s)
    threshold : float, the layer's firing threshold (config key ``threshold``)
    rule : BackwardRule
    """

    has_neurons = True

    def __init__(self, synapse, params: NeuronParams, threshold: float, rule: BackwardRule):
        self.synapse, self.params, self.threshold, self.rule = synapse, params, float(threshold), rule
        try:  # a rule that can take the pooled error itself (tsslbp_delta's ``pool``)
            self._rule_pools = "pool" in inspect.signature(rule).parameters
        except (TypeError, ValueError):
            self._rule_pools = False
        self.name, self.kind = synapse.name, synapse.kind
        self.in_shape, self.out_shape = synapse.in_shape, synapse.out_shape

    @property
    def weight(self) -> np.ndarray:
        """The synapse's weight (authors' layout), the live array."""
        return self.synapse.weight

    def forward(self, a_in: np.ndarray, *, train: bool = False, rng=None, pool: "SumPool2d | None" = None):
        """a_in : (T, N, ...) input PSP.  Returns ``(a, SpikingCache)``: a (T, N, OH, OW, C) or (T, N, F).

        ``pool``: the sum-pooling layer after this (conv) layer; the pooled PSP is returned instead of
        ``a``, computed with the neurons in one pass (:func:`_lif_sum_pool_kernel`, the same bits as the
        two layers in turn), and the cached state recomputes ``a`` only if someone reads it.  The
        backward is unchanged: the pooling layer's backward, then this layer's.
        """
        x, syn_cache = self.synapse.forward(a_in)
        if pool is not None:
            out, state = self._lif_pool(x, pool, record=True)
            return out, SpikingCache(syn_cache, state)
        a, state = lif_compact(x, self.params, self.threshold)
        return a, SpikingCache(syn_cache, state)

    def infer(self, a_in: np.ndarray, *, spikes: bool = False, pool: "SumPool2d | None" = None):
        """Forward-only: the output PSP a (T, N, ...), the same numbers as :meth:`forward`'s, with nothing
        recorded for a backward.  With ``spikes``, returns ``(a, s)``, s the spikes as uint8.

        ``pool``: the sum-pooling layer after this (conv) layer: its output is returned instead, computed
        in one pass with the neurons (:func:`_lif_sum_pool_kernel`; the same bits as the two layers in
        turn), so the full-size PSP is never written to memory.
        """
        x = self.synapse.infer(a_in)
        if pool is not None and not spikes:
            return self._lif_pool(x, pool, record=False)[0]
        a, state = lif_compact(x, self.params, self.threshold, record=spikes)
        if pool is not None:
            return pool.infer(a), state.spikes
        return (a, state.spikes) if spikes else a

    def _lif_pool(self, x: np.ndarray, pool: "SumPool2d", record: bool):
        """Neurons and pooling in one kernel: returns (pooled PSP, CompactState without ``a`` or None)."""
        if pool.in_shape != self.out_shape or self.kind != "conv":
            raise ValueError(f"layer {pool.name!r} does not pool the output of {self.name!r}")
        t, n, h, w, c = x.shape
        dt = x.dtype
        x, flat, _ = _checked_current(x, self.params, self.threshold)
        out = np.empty((t, n, *pool.out_shape[1:], c), dtype=dt)
        if record:
            du, s = np.empty(flat.shape, dt), np.empty(flat.shape, np.uint8)
        else:
            du, s = np.empty((t, 0), dt), np.empty((t, 0), np.uint8)
        jobs = n * (pool.out_shape[1] + (1 if record and h % pool.k else 0))
        _lif_sum_pool_kernel(flat, as_scalar(1.0, dt), as_scalar(self.params.theta_m, dt),
                             as_scalar(self.params.theta_s, dt), as_scalar(self.threshold, dt), pool.k,
                             as_scalar(pool.theta, dt), n, h, w, c, bool(record),
                             n_chunks(jobs * pool.k * w * c), du, s, out)
        state = CompactState(du.reshape(x.shape), s.reshape(x.shape), None, self.params.tau_s) if record else None
        return out, state

    def backward(self, g: np.ndarray, cache: SpikingCache, *, need_input_grad: bool = True,
                 pool: "SumPool2d | None" = None) -> LayerGrad:
        """g : ``dL/da`` of the layer's output PSP.  Returns :class:`LayerGrad` (dW, g_in, delta, branch).

        ``pool``: the sum-pooling layer after this one, and ``g`` the error on ITS output: the rule does
        the pooling's backward inside its kernel when it can (:func:`reference.tsslbp.tsslbp_delta`'s
        ``pool``; the same numbers), else ``pool.backward`` runs first.
        """
        if pool is not None and self._rule_pools and isinstance(cache.state, CompactState):
            delta, branch = self.rule(g, cache.state, self.params, self.threshold, pool=(pool.k, pool.theta))
        else:
            if pool is not None:
                g = pool.backward(g).g_in
            delta, branch = self.rule(g, cache.state, self.params, self.threshold)
        grad = self.synapse.backward(delta, cache.synapse, need_input_grad=need_input_grad)
        return LayerGrad(grad.dW, grad.g_in, delta, branch)


# ---------------------------------------------------------------------------------------- initialisation
def init_linear_weight(n_out: int, n_in: int, weight_scale: float, rng: np.random.Generator) -> np.ndarray:
    """Kaiming-normal (fan-in, gain sqrt(2)) times ``weight_scale``, as the authors' ``nn.init.kaiming_normal_``.

    Returns (n_out, n_in) float64 (the network casts to its dtype).
    """
    return rng.normal(0.0, math.sqrt(2.0 / n_in), size=(n_out, n_in)) * weight_scale


def init_conv_weight(out_c: int, in_c: int, kh: int, kw: int, weight_scale: float, rng: np.random.Generator):
    """PyTorch's default conv init (Kaiming-uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in))) times ``weight_scale``.

    Returns (out_c, in_c, kh, kw) float64.
    """
    bound = 1.0 / math.sqrt(in_c * kh * kw)
    return rng.uniform(-bound, bound, size=(out_c, in_c, kh, kw)) * weight_scale


def init_conv_weight_kaiming(out_c: int, in_c: int, kh: int, kw: int, weight_scale: float, rng: np.random.Generator):
    """Kaiming-normal (fan-in ``in_c*kh*kw``, gain sqrt(2)) times ``weight_scale``: the conv init of the
    paper-era code (``variant="paper2020"``; their ``nn.init.kaiming_normal_``).  Returns (out_c, in_c, kh, kw) float64."""
    return rng.normal(0.0, math.sqrt(2.0 / (in_c * kh * kw)), size=(out_c, in_c, kh, kw)) * weight_scale
