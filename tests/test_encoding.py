"""Input encoding (reference.neuron.encode_input) against the authors' PyTorch loop, psp and scipy's lfilter.

encode_input computes the synaptic filter in the authors' operation order for the input,
``S[t] = S[t-1] - S[t-1]/tau_s + x[t]; a[t] = S[t]/tau_s``; psp computes the same filter as
``a[t] = a[t-1] + (x[t] - a[t-1]) theta_s``.

Tolerances: against the authors' loop in PyTorch float32 (CPU), and the compiled kernel against its
plain-Python twin: bit for bit (the same float32 operations in the same order).  encode_input against
psp in float32: the two orders round differently; the difference stays below 2 float32 eps times the
largest input magnitude so far, ``max_{t' <= t} |x[t']|`` (measured at most 1.42 over millions of entries,
T up to 200, tau_s 2..20; for one-sign inputs such as an image repeated over time it is at most 3 ulp of
the result, measured on the fixture digits).  A relative bound per entry cannot hold for inputs of mixed
sign: where ``a`` nearly cancels, any rounding is a large relative error.  Float64 against float64 twins
(psp, lfilter): 1e-15 of the input scale (measured at most 4.3e-16 for T <= 50, tau_s <= 7.5).
"""
import numpy as np
import pytest
from scipy.signal import lfilter

from conftest import load_mnist, to_authors
from reference._jit import as_scalar, n_chunks
from reference.neuron import ENCODE_DIVISIONS, _encode_kernel, _encode_kernel_py, encode_input, psp

EPS32 = float(np.finfo(np.float32).eps)


def authors_psp_torch(inputs, tau_s):
    """The authors' ``psp`` (functions/tsslbp.py), verbatim but for the device: inputs (N, C, H, W, T)."""
    import torch

    shape = inputs.shape
    n_steps = shape[4]
    syn = torch.zeros((shape[0], shape[1], shape[2], shape[3]), dtype=inputs.dtype)
    syns = torch.zeros((shape[0], shape[1], shape[2], shape[3], n_steps), dtype=inputs.dtype)
    for t in range(n_steps):
        syn = syn - syn / tau_s + inputs[..., t]
        syns[..., t] = syn / tau_s
    return syns


def numpy_loop(x, tau_s, reciprocal=False):
    """The same loop in NumPy scalars of x's dtype (time first); ``reciprocal``: ``* dtype(1/tau_s)``."""
    tau, inv = as_scalar(tau_s, x.dtype), as_scalar(1.0 / tau_s, x.dtype)
    syn = np.zeros(x.shape[1:], x.dtype)
    out = np.empty_like(x)
    for t in range(x.shape[0]):
        syn = syn - (syn * inv if reciprocal else syn / tau) + x[t]
        out[t] = syn * inv if reciprocal else syn / tau
    return out


def digits_over_time(n, n_steps=5):
    """n normalised fixture test digits repeated over time, internal layout (T, N, H, W, C), float32."""
    x, _ = load_mnist(n, dtype=np.float32)
    return np.ascontiguousarray(np.broadcast_to(x.transpose(0, 2, 3, 1)[None], (n_steps, n, 28, 28, 1)))


# ------------------------------------------------------------------------------ against the authors
@pytest.mark.parametrize("tau_s", [2, 3, 4, 3.0])  # an int as their YAML gives, and a float
@pytest.mark.parametrize("kind", ["normal", "digits"])
def test_encode_input_equals_authors_torch_loop_bit_for_bit(kind, tau_s):
    torch = pytest.importorskip("torch")
    if kind == "digits":
        x = digits_over_time(20)
    else:
        x = np.random.default_rng(tau_s == 3.0).normal(0, 1.5, (5, 7, 6, 6, 3)).astype(np.float32)
    ref = authors_psp_torch(torch.from_numpy(to_authors(x)), tau_s).numpy()
    got = encode_input(x, tau_s)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(to_authors(got), ref)  # bit for bit


@pytest.mark.parametrize("tau_s", [2, 3, 4, 7.5])
def test_encode_input_float64_equals_authors_torch_loop(tau_s):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).normal(0, 1, (9, 4, 2, 3, 2))
    ref = authors_psp_torch(torch.from_numpy(to_authors(x)), tau_s).numpy()
    np.testing.assert_array_equal(to_authors(encode_input(x, tau_s)), ref)  # float64 ops, same order


@pytest.mark.parametrize("tau_s", [2, 3, 4, 5, 7.5])
def test_reciprocal_division_is_multiplication_by_float32_reciprocal(tau_s):
    """division="reciprocal" (PyTorch on CUDA) against the NumPy float32 loop; equal to the true
    division when tau_s is a power of two, different in many entries otherwise."""
    x = np.random.default_rng(2).normal(0, 1, (6, 500)).astype(np.float32)
    rec = encode_input(x, tau_s, division="reciprocal")
    np.testing.assert_array_equal(rec, numpy_loop(x, tau_s, reciprocal=True))
    np.testing.assert_array_equal(encode_input(x, tau_s), numpy_loop(x, tau_s))
    differ = np.mean(rec != encode_input(x, tau_s))
    if tau_s in (2, 4):
        assert differ == 0.0
    else:
        assert differ > 0.1  # measured 0.2 to 0.6


# ------------------------------------------------------------------------------ against psp and lfilter
@pytest.mark.parametrize("n_steps", [1, 5, 30])
@pytest.mark.parametrize("tau_s", [2.0, 3.0, 4.0])
@pytest.mark.parametrize("division", ENCODE_DIVISIONS)
def test_encode_input_agrees_with_psp_float32(division, tau_s, n_steps):
    x = np.random.default_rng(n_steps).normal(0, 1, (n_steps, 5000)).astype(np.float32)
    scale = np.maximum.accumulate(np.abs(x.astype(np.float64)), axis=0)
    diff = np.abs(encode_input(x, tau_s, division=division).astype(np.float64) - psp(x, tau_s))
    assert np.all(diff <= 2 * EPS32 * scale), (diff / (EPS32 * scale)).max()  # see module docstring


def test_encode_input_agrees_with_psp_on_digits_to_3_ulp():
    x = digits_over_time(50)
    enc, ref = encode_input(x, 3.0), psp(x, 3.0)
    np.testing.assert_array_max_ulp(enc, ref, maxulp=3)
    assert np.any(enc != ref)  # not the same function: 1-3 ulp apart in about a quarter of the entries


@pytest.mark.parametrize("n_steps", [1, 5, 12, 50])
@pytest.mark.parametrize("tau_s", [2.0, 3.0, 7.5])
def test_encode_input_equals_scipy_lfilter_float64(tau_s, n_steps):
    """scipy.signal.lfilter as an independent twin of the filter (tests/test_neuron.py does the same for psp)."""
    s = np.random.default_rng(3).normal(size=(n_steps, 40, 3))
    theta_s = 1.0 / tau_s
    ref = lfilter([theta_s], [1.0, -(1.0 - theta_s)], s, axis=0)
    got = encode_input(s, tau_s)
    assert got.dtype == np.float64
    assert np.abs(got - ref).max() <= 1e-15 * np.abs(s).max()  # float64 round-off, see module docstring


# ------------------------------------------------------------------------------ kernel, shapes, errors
@pytest.mark.parametrize("division", ENCODE_DIVISIONS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_python_kernel_gives_same_numbers(dtype, division):
    """_encode_kernel_py (what NUMBA_DISABLE_JIT=1 runs) against the compiled kernel: bit for bit."""
    x = np.random.default_rng(4).normal(0, 1, (5, 300)).astype(dtype)
    args = (as_scalar(3.0, dtype), as_scalar(1 / 3, dtype), division == "reciprocal", n_chunks(300))
    fast, slow = np.empty_like(x), np.empty_like(x)
    _encode_kernel(x, *args, fast)
    _encode_kernel_py(x, *args, slow)
    np.testing.assert_array_equal(fast, slow)
    np.testing.assert_array_equal(encode_input(x, 3.0, division=division), fast)


def test_shapes_dtypes_and_golden_values():
    # a constant 1 from t = 0: a[t] = 1 - (2/3)^(t+1) = 1/3, 5/9, 19/27, 65/81, 211/243 (a few roundings)
    np.testing.assert_allclose(encode_input(np.ones(5), 3.0), [1 / 3, 5 / 9, 19 / 27, 65 / 81, 211 / 243],
                               rtol=2e-15, atol=0)
    assert encode_input(np.zeros((2, 3, 4), np.float32), 3.0).shape == (2, 3, 4)
    assert encode_input(np.zeros((2, 3), np.float32), 3.0).dtype == np.float32
    assert encode_input(np.array([[1], [0]]), 3.0).dtype == np.float64  # integers computed in float64
    with pytest.raises(ValueError, match="division must be one of"):
        encode_input(np.ones(3), 3.0, division="approx")
    with pytest.raises(ValueError, match="time axis"):
        encode_input(np.zeros((0, 3)), 3.0)
