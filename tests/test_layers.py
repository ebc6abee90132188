"""Layers (reference.layers) against the naive twins in the authors' (N, C, H, W, T) layout and einsum.

Tolerances: float64 against float64 twins 1e-12 relative to the largest value (GEMM and im2col sum the
same products in other orders: a few ulps times the ~100 terms of a sum); plain-Python twins of the
kernels are compared bit for bit (the same copies and additions in the same order).  Statistical checks
of the initialisation state their tolerance from the sample size.
"""
import math

import numpy as np
import pytest

import naive
from conftest import from_authors, rel_err, to_authors
from reference.layers import (
    Conv2d, Dense, Dropout, Spiking, SumPool2d, _col2im, _col2im_py, _im2col, _im2col_one_channel, _im2col_one_channel_py, _im2col_py, _sum_pool, _sum_pool_backward,
    _sum_pool_backward_py, _sum_pool_py, conv_output_size, init_conv_weight, init_linear_weight,
)

T, N = 3, 2


# --------------------------------------------------------------------------------------------- conv
GEOMETRIES = [  # (stride, padding, dilation, kernel, in (C, H, W), out_channels)
    ((1, 1), (0, 0), (1, 1), (3, 3), (3, 9, 7), 4),
    ((2, 2), (1, 1), (1, 1), (3, 3), (3, 9, 7), 4),
    ((1, 1), (2, 2), (2, 2), (3, 3), (2, 9, 7), 5),
    ((2, 2), (0, 0), (1, 1), (3, 3), (3, 11, 9), 4),
    ((2, 1), (1, 0), (1, 2), (3, 2), (2, 9, 8), 3),  # non-square everything
    ((1, 1), (0, 0), (1, 1), (5, 5), (1, 12, 12), 6),  # the authors' 5x5 kernels, one input channel
]


@pytest.mark.parametrize("stride,padding,dilation,kernel,in_shape,out_c", GEOMETRIES)
def test_conv_forward_backward_equal_naive(stride, padding, dilation, kernel, in_shape, out_c):
    rng = np.random.default_rng(sum(in_shape) + out_c)
    c, h, w = in_shape
    weight = rng.normal(size=(out_c, c, *kernel))
    a_auth = rng.normal(size=(N, c, h, w, T))
    layer = Conv2d("conv", weight, in_shape, stride, padding, dilation)
    x, cache = layer.forward(from_authors(a_auth))
    ref = naive.conv_forward(a_auth, weight, stride, padding, dilation)
    oh = conv_output_size(h, kernel[0], stride[0], padding[0], dilation[0])
    ow = conv_output_size(w, kernel[1], stride[1], padding[1], dilation[1])
    assert layer.out_shape == (out_c, oh, ow) and ref.shape == (N, out_c, oh, ow, T)
    assert x.shape == (T, N, oh, ow, out_c)
    assert rel_err(to_authors(x), ref) < 1e-12  # float64 twins
    delta_auth = rng.normal(size=ref.shape)
    dw, g_in, *_ = layer.backward(from_authors(delta_auth), cache)
    dw_ref, g_ref = naive.conv_backward(delta_auth, a_auth, weight, stride, padding, dilation)
    assert dw.shape == weight.shape
    assert g_in.shape == (T, N, h, w, c)  # the input's shape
    assert rel_err(dw, dw_ref) < 1e-12
    assert rel_err(to_authors(g_in), g_ref) < 1e-12
    dw2, none, *_ = layer.backward(from_authors(delta_auth), cache, need_input_grad=False)
    assert none is None
    np.testing.assert_array_equal(dw2, dw)  # same GEMM on the same arrays


def test_conv_float32_matches_float64():
    rng = np.random.default_rng(1)
    weight = rng.normal(size=(4, 3, 3, 3))
    a = rng.normal(size=(T, N, 9, 9, 3))
    x64, _ = Conv2d("c", weight, (3, 9, 9), (2, 2), (1, 1)).forward(a)
    x32, _ = Conv2d("c", weight.astype(np.float32), (3, 9, 9), (2, 2), (1, 1)).forward(a.astype(np.float32))
    assert x32.dtype == np.float32
    assert rel_err(x32, x64) < 1e-5  # float32 sums of 27 products: ~27 * 6e-8, margin


def test_conv_kernel_larger_than_input_raises():
    with pytest.raises(ValueError, match="'c'"):
        Conv2d("c", np.zeros((2, 1, 5, 5)), (1, 4, 4))


# -------------------------------------------------------------------------------------------- dense
def test_dense_feature_vector_equals_einsum():
    rng = np.random.default_rng(2)
    weight, a = rng.normal(size=(7, 11)), rng.normal(size=(T, N, 11))
    layer = Dense("fc", weight, (11, 1, 1))
    x, cache = layer.forward(a)
    assert rel_err(x, np.einsum("oi,tni->tno", weight, a)) < 1e-12  # float64, other summation order
    delta = rng.normal(size=(T, N, 7))
    dw, g_in, *_ = layer.backward(delta, cache)
    assert rel_err(dw, np.einsum("tno,tni->oi", delta, a)) < 1e-12
    assert rel_err(g_in.reshape(T, N, 11), np.einsum("tno,oi->tni", delta, weight)) < 1e-12


@pytest.mark.parametrize("in_shape", [(3, 4, 5), (1, 4, 5), (6, 1, 1), (2, 3, 1)])
def test_dense_after_conv_uses_authors_chw_flatten_order(in_shape):
    """The weight's columns are in the authors' (C, H, W) order; the input arrives channels-last."""
    rng = np.random.default_rng(3)
    c, h, w = in_shape
    n_in = c * h * w
    weight = rng.normal(size=(5, n_in))
    a_auth = rng.normal(size=(N, c, h, w, T))
    layer = Dense("fc", weight, in_shape)
    x, cache = layer.forward(from_authors(a_auth))  # internal (T, N, H, W, C)
    flat = a_auth.reshape(N, n_in, T)  # the authors' reshape: (C, H, W) row-major
    ref = np.einsum("oi,nit->not", weight, flat)
    assert rel_err(x.transpose(1, 2, 0), ref) < 1e-12  # float64
    delta = rng.normal(size=(N, 5, T))
    dw, g_in, *_ = layer.backward(np.ascontiguousarray(delta.transpose(2, 0, 1)), cache)
    assert rel_err(dw, np.einsum("not,nit->oi", delta, flat)) < 1e-12
    g_ref = np.einsum("not,oi->nit", delta, weight).reshape(N, c, h, w, T)
    assert rel_err(to_authors(g_in.reshape(T, N, h, w, c)), g_ref) < 1e-12
    # one hand-picked weight column: column j reads input (c, h, w) = unravel(j) in the authors' order
    j = n_in - 2
    e = np.zeros((1, n_in))
    e[0, j] = 1.0
    x1, _ = Dense("fc", e, in_shape).forward(from_authors(a_auth))
    ci, hi, wi = np.unravel_index(j, (c, h, w))
    np.testing.assert_array_equal(x1[:, :, 0], a_auth[:, ci, hi, wi, :].T)  # one product with 1.0: exact


# ------------------------------------------------------------------------------------------ pooling
@pytest.mark.parametrize("k,hw,theta", [(2, (8, 6), 1.1), (2, (7, 9), 1.1), (3, (11, 10), 0.7), (2, (2, 2), 1.1)])
def test_sum_pool_equals_naive_including_dropped_edges(k, hw, theta):
    rng = np.random.default_rng(4)
    c = 3
    a_auth = rng.normal(size=(N, c, *hw, T))
    layer = SumPool2d("pool", k, (c, *hw), theta)
    out, cache = layer.forward(from_authors(a_auth))
    ref = naive.pool_forward(a_auth, k, theta)
    assert layer.out_shape == (c, hw[0] // k, hw[1] // k)
    assert rel_err(to_authors(out), ref) < 1e-12  # float64, k*k-term sums in another order
    g_auth = rng.normal(size=ref.shape)
    g_in = layer.backward(from_authors(g_auth), cache).g_in
    g_ref = naive.pool_backward(g_auth, a_auth.shape, k, theta)
    np.testing.assert_array_equal(to_authors(g_in), g_ref)  # theta * g copied: exact
    # the dropped last row/column (odd sizes) gets no gradient
    oh, ow = hw[0] // k, hw[1] // k
    assert np.all(to_authors(g_in)[:, :, oh * k:] == 0) and np.all(to_authors(g_in)[:, :, :, ow * k:] == 0)


def test_sum_pool_window_too_large_raises():
    with pytest.raises(ValueError, match="'p'"):
        SumPool2d("p", 3, (1, 2, 5))


# ---------------------------------------------------------------------- im2col / col2im and py twins
IM2COL_GEOMS = [  # kh, kw, sh, sw, ph, pw, dh, dw with an input (B, H, W, C)
    ((3, 3, 1, 1, 0, 0, 1, 1), (2, 7, 6, 3)),
    ((3, 2, 2, 1, 1, 2, 2, 1), (3, 9, 8, 4)),
    ((5, 5, 1, 1, 2, 2, 1, 1), (2, 8, 8, 1)),
    ((3, 3, 2, 2, 1, 1, 1, 1), (1, 7, 5, 2)),
]


def _cols_for(geo, shape):
    kh, kw, sh, sw, ph, pw, dh, dw = geo
    oh = conv_output_size(shape[1], kh, sh, ph, dh)
    ow = conv_output_size(shape[2], kw, sw, pw, dw)
    return oh, ow, (shape[0] * oh * ow, kh * kw * shape[3])


@pytest.mark.parametrize("geo,shape", IM2COL_GEOMS)
def test_im2col_col2im_adjoint_and_plain_python_twins(geo, shape):
    rng = np.random.default_rng(5)
    x = rng.normal(size=shape)
    oh, ow, cshape = _cols_for(geo, shape)
    cols = np.empty(cshape)
    _im2col(x, *geo, oh, ow, cols)
    y = rng.normal(size=cshape)
    back = np.zeros_like(x)
    _col2im(y, *geo, oh, ow, back)
    # <im2col(x), y> == <x, col2im(y)>: two float64 sums of the same products in other orders, 1e-12
    assert np.sum(cols * y) == pytest.approx(np.sum(x * back), rel=1e-12)
    cols_py = np.empty(cshape)
    _im2col_py(x, *geo, oh, ow, cols_py)
    np.testing.assert_array_equal(cols_py, cols)  # copies: exact
    back_py = np.zeros_like(x)
    _col2im_py(y, *geo, oh, ow, back_py)
    np.testing.assert_array_equal(back_py, back)  # same additions, same order per image: exact


def _naive_im2col(x, geo, oh, ow):
    """Obvious NumPy im2col: zero-pad, then slice every (p, q) tap; rows (b, i, j), columns (p, q, c)."""
    kh, kw, sh, sw, ph, pw, dh, dw = geo
    xp = np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    taps = [xp[:, p * dh: p * dh + sh * (oh - 1) + 1: sh, q * dw: q * dw + sw * (ow - 1) + 1: sw, :]
            for p in range(kh) for q in range(kw)]  # each (B, oh, ow, C)
    return np.stack(taps, axis=3).reshape(x.shape[0] * oh * ow, -1)


ONE_CHANNEL_GEOMS = [  # C = 1: the first layer's fast path, with padding, strides, dilation, and 1x1
    ((5, 5, 1, 1, 0, 0, 1, 1), (3, 28, 28, 1)),
    ((5, 5, 1, 1, 2, 2, 1, 1), (2, 12, 10, 1)),
    ((3, 4, 2, 3, 1, 2, 2, 1), (2, 11, 13, 1)),
    ((3, 3, 1, 1, 1, 1, 2, 2), (1, 9, 9, 1)),
    ((1, 1, 1, 1, 0, 0, 1, 1), (2, 4, 5, 1)),
]


@pytest.mark.parametrize("geo,shape", IM2COL_GEOMS + ONE_CHANNEL_GEOMS)
def test_im2col_kernels_equal_naive_numpy(geo, shape):
    x = np.random.default_rng(7).normal(size=shape).astype(np.float32)
    oh, ow, cshape = _cols_for(geo, shape)
    expected = _naive_im2col(x, geo, oh, ow)
    kernels = [_im2col, _im2col_py]
    if shape[3] == 1:
        kernels += [_im2col_one_channel, _im2col_one_channel_py]
    for kern in kernels:
        cols = np.full(cshape, np.nan, np.float32)
        kern(x, *geo, oh, ow, cols)
        np.testing.assert_array_equal(cols, expected)  # copies and zeros: exact


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sum_pool_plain_python_twins(dtype):
    rng = np.random.default_rng(6)
    a = rng.normal(size=(3, 7, 9, 2)).astype(dtype)
    out, out_py = np.empty((3, 3, 4, 2), dtype), np.empty((3, 3, 4, 2), dtype)
    theta = dtype(1.1)
    _sum_pool(a, 2, theta, out)
    _sum_pool_py(a, 2, theta, out_py)
    np.testing.assert_array_equal(out_py, out)  # same sums in the same order: exact
    g = rng.normal(size=out.shape).astype(dtype)
    b, b_py = np.zeros_like(a), np.zeros_like(a)
    _sum_pool_backward(g, 2, theta, b)
    _sum_pool_backward_py(g, 2, theta, b_py)
    np.testing.assert_array_equal(b_py, b)


# ------------------------------------------------------------------------------------------ dropout
def test_dropout_mask_shared_over_time_and_inverted_scaling():
    p = 0.25
    layer = Dropout("drop", p, (3, 10, 10))
    a = np.ones((4, 50, 10, 10, 3))
    out, mask = layer.forward(a, rng=np.random.default_rng(7), train=True)
    for t in range(1, 4):
        np.testing.assert_array_equal(out[t], out[0])  # one mask for all time steps
    kept = out[0] != 0
    np.testing.assert_array_equal(out[0][kept], 1 / (1 - p))  # inverted scaling, exact in float64
    # drop fraction: 15000 Bernoulli(0.25) units, standard error sqrt(0.25*0.75/15000) = 0.0035: 5 SE = 0.018
    assert abs((~kept).mean() - p) < 0.018
    g = np.random.default_rng(8).normal(size=a.shape)
    np.testing.assert_array_equal(layer.backward(g, mask).g_in, g * out[0][None])  # same mask in the backward
    # random input: out = a * mask at every step
    a2 = np.random.default_rng(9).normal(size=a.shape)
    out2, _ = layer.forward(a2, rng=np.random.default_rng(7), train=True)  # same rng seed: same mask
    np.testing.assert_array_equal(out2, a2 * out[0][None])


def test_dropout_identity_in_evaluation_and_bad_p():
    layer = Dropout("drop", 0.5, (2, 3, 3))
    a = np.random.default_rng(0).normal(size=(5, 2, 3, 3, 2))
    out, mask = layer.forward(a, train=False)
    assert out is a and mask is None
    g = np.ones_like(a)
    assert layer.backward(g, mask).g_in is g
    assert Dropout("d0", 0.0, (2, 3, 3)).forward(a, rng=np.random.default_rng(0), train=True)[0] is a
    with pytest.raises(ValueError, match="rng"):
        layer.forward(a, train=True)
    for bad in (1.0, -0.1):
        with pytest.raises(ValueError, match="'d'"):
            Dropout("d", bad, (1, 1, 1))
    out, _ = Dropout("d32", 0.5, (4,)).forward(np.ones((2, 3, 4), np.float32), rng=np.random.default_rng(1), train=True)
    assert out.dtype == np.float32


# ----------------------------------------------------------------------------------- initialisation
@pytest.mark.parametrize("n_in,scale", [(784, 1.0), (400, 2.5)])
def test_linear_init_is_kaiming_normal_times_weight_scale(n_in, scale):
    w = init_linear_weight(500, n_in, scale, np.random.default_rng(10))
    assert w.shape == (500, n_in)
    std = math.sqrt(2.0 / n_in) * scale
    # n = 2e5 .. 4e5 samples: relative standard error of the sample std 1/sqrt(2n) <= 0.0016; 1% is > 6 SE
    assert np.std(w) == pytest.approx(std, rel=0.01)
    assert abs(np.mean(w)) < 5 * std / math.sqrt(w.size)  # mean 0 within 5 standard errors


@pytest.mark.parametrize("shape,scale", [((64, 32, 5, 5), 1.0), ((96, 3, 3, 3), 5.0)])
def test_conv_init_is_uniform_within_bound_times_weight_scale(shape, scale):
    w = init_conv_weight(*shape, scale, np.random.default_rng(11))
    assert w.shape == shape
    bound = scale / math.sqrt(shape[1] * shape[2] * shape[3])
    assert np.abs(w).max() <= bound
    # n >= 2592 uniform samples: P(max |w| < 0.99 bound) = 0.99^n < 1e-11
    assert np.abs(w).max() > 0.99 * bound
    # std of U(-b, b) = b/sqrt(3); relative SE of the sample std sqrt(0.8/(4n)) <= 0.009 for n = 2592: 5% > 5 SE
    assert np.std(w) == pytest.approx(bound / math.sqrt(3), rel=0.05)


@pytest.mark.parametrize("unit,shared_axes", [("feature", ()), ("row", (3,)), ("sample", (2, 3, 4))])
def test_dropout_units_share_the_mask_as_documented(unit, shared_axes):
    layer = Dropout("d", 0.5, (4, 6, 7), unit=unit)
    out, mask = layer.forward(np.ones((2, 400, 6, 7, 4)), rng=np.random.default_rng(0), train=True)  # (T, N, H, W, C)
    kept = out != 0
    assert np.all(kept == kept[:1])  # shared over time, always
    for axis in (2, 3, 4):  # H, W, C
        shared = np.all(kept == np.take(kept, [0], axis=axis))
        assert shared == (axis in shared_axes), (unit, axis)
    assert abs(kept.mean() - 0.5) < 0.1  # >= 400 units: 4 standard deviations
    np.testing.assert_array_equal(layer.backward(np.ones_like(out), mask).g_in, out)


def test_dropout_unit_after_dense_layer_row_equals_feature():
    a = np.ones((5, 8, 16))
    f, _ = Dropout("d", 0.5, (16, 1, 1), unit="feature").forward(a, rng=np.random.default_rng(3), train=True)
    r, _ = Dropout("d", 0.5, (16, 1, 1), unit="row").forward(a, rng=np.random.default_rng(3), train=True)
    np.testing.assert_array_equal(f, r)
    with pytest.raises(ValueError, match="unit"):
        Dropout("d", 0.5, (16, 1, 1), unit="channel")


@pytest.mark.parametrize("record", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("hw,k", [((24, 24), 2), ((9, 7), 2), ((12, 10), 3), ((11, 11), 3)])
def test_fused_lif_sum_pool_equals_lif_then_pool_and_python_twin(hw, k, record):
    """_lif_sum_pool_kernel against lif_compact followed by _sum_pool, bit for bit, including rows and
    columns that no window covers (with record, du and the spikes of every neuron, also those rows);
    and its plain-Python version on the same input."""
    from reference.layers import _lif_sum_pool_kernel, _lif_sum_pool_kernel_py
    from reference.neuron import lif_compact
    from reference.params import NeuronParams
    from reference._jit import as_scalar
    P = NeuronParams()
    h, w = hw
    n, c, t = 3, 5, 5
    x = np.random.default_rng(12).normal(0.5, 0.9, (t, n, h, w, c)).astype(np.float32)
    a, state = lif_compact(x, P)
    expected = np.empty((t * n, h // k, w // k, c), np.float32)
    _sum_pool(a.reshape(t * n, h, w, c), k, np.float32(1.1), expected)
    f = np.float32
    for kern in (_lif_sum_pool_kernel, _lif_sum_pool_kernel_py):
        out = np.full((t, n, h // k, w // k, c), np.nan, np.float32)
        shape = (t, n * h * w * c) if record else (t, 0)
        du, s = np.full(shape, np.nan, np.float32), np.full(shape, 7, np.uint8)
        kern(x.reshape(t, -1), f(1), as_scalar(P.theta_m, f), as_scalar(P.theta_s, f), f(1), k, f(1.1),
             n, h, w, c, record, 2, du, s, out)
        np.testing.assert_array_equal(out.reshape(expected.shape), expected)  # tolerance 0
        if record:
            np.testing.assert_array_equal(du, state.du.reshape(t, -1))
            np.testing.assert_array_equal(s, state.spikes.reshape(t, -1))


def test_spiking_forward_with_pooling_records_a_lazily():
    """Spiking.forward(pool=...) returns the pooled PSP; its CompactState recomputes a from the spikes
    (bit for bit the a of the unfused forward) and gives the same TSSL-BP delta."""
    from reference.neuron import CompactState
    from reference.params import NeuronParams
    from reference.tsslbp import tsslbp_delta
    P = NeuronParams()
    rng = np.random.default_rng(14)
    conv = Spiking(Conv2d("c", rng.normal(0, 0.5, (4, 2, 3, 3)).astype(np.float32), (2, 9, 9)), P, 1.0, tsslbp_delta)
    pool = SumPool2d("p", 2, conv.out_shape)
    a_in = rng.random((5, 3, 9, 9, 2)).astype(np.float32)
    a, cache = conv.forward(a_in)
    pooled, fused_cache = conv.forward(a_in, pool=pool)
    np.testing.assert_array_equal(pooled, pool.forward(a)[0])
    assert isinstance(fused_cache.state, CompactState) and fused_cache.state._a is None
    np.testing.assert_array_equal(fused_cache.state.a, a)  # recomputed on reading
    g = rng.normal(size=a.shape).astype(np.float32)
    np.testing.assert_array_equal(conv.backward(g, fused_cache).delta, conv.backward(g, cache).delta)
    with pytest.raises(ValueError, match="does not pool the output"):
        conv.forward(a_in, pool=SumPool2d("q", 2, (4, 8, 8)))


def test_conv_input_grad_chunks_agree_to_rounding_and_are_deterministic():
    """Conv2d.input_grad runs the product and col2im a few images at a time.  A chunk size gives the same
    bits on every call; chunks of one image, a few, and all at once agree to float32 rounding (a BLAS
    product's rows can round differently in products of different heights: see the docstring), checked
    at the MNIST CNN's conv_2 shapes, where they do differ, and on a small layer."""
    rng = np.random.default_rng(13)
    w = rng.normal(size=(6, 3, 3, 3)).astype(np.float32)
    conv = Conv2d("c", w, (3, 9, 8), stride=(1, 2), padding=(1, 0))
    in_shape = (2, 5, 9, 8, 3)
    d2 = rng.normal(size=(2 * 5 * conv.out_shape[1] * conv.out_shape[2], 6)).astype(np.float32)
    whole = conv.input_grad(d2, in_shape, chunk_bytes=1 << 30)
    for chunk in (1, 3 * conv.out_shape[1] * conv.out_shape[2] * 27 * 4):
        got = conv.input_grad(d2, in_shape, chunk_bytes=chunk)
        np.testing.assert_array_equal(conv.input_grad(d2, in_shape, chunk_bytes=chunk), got)  # deterministic
        np.testing.assert_allclose(got, whole, rtol=1e-5, atol=1e-6 * np.abs(whole).max())
    big = Conv2d("c2", rng.normal(size=(40, 15, 5, 5)).astype(np.float32), (15, 12, 12))
    big_shape = (5, 50, 12, 12, 15)
    d_big = (rng.normal(size=(5 * 50 * 8 * 8, 40)) * 1e-3).astype(np.float32)
    one = big.input_grad(d_big, big_shape, chunk_bytes=1 << 30)
    default = big.input_grad(d_big, big_shape)
    np.testing.assert_array_equal(big.input_grad(d_big, big_shape), default)
    # float32 sums of 40 products: a few ulp of the largest entry
    np.testing.assert_allclose(default, one, rtol=0, atol=8 * np.finfo(np.float32).eps * np.abs(one).max())
    # and the transposed convolution it is: <conv(x), d> == <x, input_grad(d)>, float32 sums: 1e-5
    x = rng.normal(size=in_shape).astype(np.float32)
    y, _ = conv.forward(x)
    assert np.sum(y.astype(np.float64) * d2.reshape(y.shape)) == pytest.approx(
        np.sum(x.astype(np.float64) * whole), rel=1e-5)
