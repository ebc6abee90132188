"""Forward of the neuron and synapse (reference.neuron) against golden values, naive twins and closed forms.

Tolerances: float64 against float64 twins 1e-12 relative (the twins write the same recursions in another
algebraic form, e.g. ``-mem/tau_m`` against ``(-theta_m) * mem``: a few ulps per step, 1e-15, with a wide
margin); golden rationals 2e-15 (five recursion steps, at most an ulp each); scipy's lfilter 1e-15 of the
input scale (another order of the same float64 operations); spike decisions exact.
"""
import re

import numpy as np
import pytest
from scipy.signal import lfilter

import naive
from conftest import rel_err
from reference.losses import kernel_target
from reference.neuron import (
    _lif_compact_kernel_py, _lif_kernel_py, _recompute_u_kernel_py, lif_compact, lif_forward, psp, psp_kernel,
)
from reference.params import NeuronParams
from reference._jit import as_scalar, n_chunks

P = NeuronParams()  # tau_m 5, tau_s 3, threshold 1 (all configs of the paper)


# ----------------------------------------------------------------------------------------------- PSP
def test_psp_golden_values():
    # a = eps * 1: a[t] = 1 - (2/3)^(t+1) = 1/3, 5/9, 19/27, 65/81, 211/243; 5 steps, <= 1 ulp each
    a = psp(np.ones(5), 3.0)
    np.testing.assert_allclose(a, [1 / 3, 5 / 9, 19 / 27, 65 / 81, 211 / 243], rtol=2e-15, atol=0)


def test_psp_kernel_is_response_to_one_spike_and_sums_to_about_one():
    eps = psp_kernel(6, 3.0)
    # eps[k] = (1/3)(2/3)^k exactly as rationals; one power and one product: 1e-15 relative
    np.testing.assert_allclose(eps, [(1 / 3) * (2 / 3) ** k for k in range(6)], rtol=1e-15)
    s = np.zeros(6)
    s[0] = 1.0
    np.testing.assert_allclose(psp(s, 3.0), eps, rtol=1e-14)  # recursion vs power: a few ulps
    assert eps.sum() == pytest.approx(1 - (2 / 3) ** 6, rel=1e-14)
    assert psp_kernel(4, 3.0, np.float32).dtype == np.float32


@pytest.mark.parametrize("seed,shape", [(0, (5, 7)), (1, (1, 4)), (2, (2, 3, 2)), (3, (12, 20)), (4, (5,))])
@pytest.mark.parametrize("tau_s", [3.0, 2.0, 7.5])
def test_psp_equals_naive_and_closed_form_convolution(seed, shape, tau_s):
    rng = np.random.default_rng(seed)
    s = rng.normal(size=shape)  # any input over time, not only 0/1 spikes
    a = psp(s, tau_s)
    ref = np.moveaxis(naive.psp(np.moveaxis(s, 0, -1), tau_s), -1, 0)
    assert rel_err(a, ref) < 1e-12  # float64 twins: 1e-12
    # closed form a[t] = sum_{k<=t} eps[k] s[t-k], per neuron with np.convolve
    eps = psp_kernel(shape[0], tau_s)
    flat = s.reshape(shape[0], -1)
    conv = np.stack([np.convolve(flat[:, m], eps)[: shape[0]] for m in range(flat.shape[1])], axis=1)
    assert rel_err(a.reshape(shape[0], -1), conv) < 1e-12  # recursion vs convolution sum: round-off only


@pytest.mark.parametrize("n_steps", [1, 5, 12, 50])
@pytest.mark.parametrize("tau_s", [2.0, 3.0, 7.5])
def test_psp_equals_scipy_lfilter_float64(tau_s, n_steps):
    """scipy.signal.lfilter as an independent twin of the PSP filter ``a[t] = theta_s s[t] + (1 - theta_s) a[t-1]``."""
    s = np.random.default_rng(n_steps).normal(size=(n_steps, 40, 3))  # any input, mixed signs
    theta_s = 1.0 / tau_s
    ref = lfilter([theta_s], [1.0, -(1.0 - theta_s)], s, axis=0)
    a = psp(s, tau_s)
    assert a.dtype == np.float64
    # another order of the same operations: round-off relative to the input scale (not to each entry: with
    # mixed signs a[t] may nearly cancel); measured at most 4e-16 here
    assert np.abs(a - ref).max() <= 1e-15 * np.abs(s).max()


def test_psp_float32_stays_float32_and_matches_float64():
    s = (np.random.default_rng(5).random((5, 100)) < 0.4).astype(np.float32)
    a32 = psp(s, 3.0)
    assert a32.dtype == np.float32
    assert rel_err(a32, psp(s.astype(np.float64), 3.0)) < 1e-6  # float32 eps 6e-8 times 5 steps


def test_kernel_targets_golden_values():
    # paper-notes section 2; the quoted values are rounded to 4 decimals: atol 1e-4 covers the rounding (5e-5)
    np.testing.assert_allclose(kernel_target(5, 3, "double"), [0, 0.1111, 0.2593, 0.4074, 0.5391], atol=1e-4)
    np.testing.assert_allclose(kernel_target(5, 3, "single"), [0, 0.3333, 0.5556, 0.7037, 0.8025], atol=1e-4)
    # exact rationals, float64: single = [0, 1/3, 5/9, 19/27, 65/81]; double = naive twice-filtered twin
    np.testing.assert_allclose(kernel_target(5, 3, "single", dtype=np.float64)[1:], [1 / 3, 5 / 9, 19 / 27, 65 / 81],
                               rtol=2e-15)
    np.testing.assert_allclose(kernel_target(5, 3, "double", dtype=np.float64), naive.desired_double_target(5, 3.0),
                               rtol=1e-12, atol=0)
    # default dtype float32 (the authors' precision): float32 round-off 1e-6
    assert kernel_target(5, 3).dtype == np.float32
    np.testing.assert_allclose(kernel_target(5, 3), naive.desired_double_target(5, 3.0), rtol=1e-6)


# ----------------------------------------------------------------------------------------------- LIF
def _naive_lif(x, params, threshold=None):
    thr = params.threshold if threshold is None else threshold
    out = naive.lif(np.moveaxis(x, 0, -1), params.tau_m, params.tau_s, thr)
    return [np.moveaxis(v, -1, 0) for v in out]


@pytest.mark.parametrize("seed,shape", [(0, (5, 50)), (1, (1, 30)), (2, (2, 4, 6)), (3, (10, 8, 3)), (4, (5,)),
                                        (5, (30, 17))])
@pytest.mark.parametrize("mean", [0.3, 0.8])
def test_lif_equals_naive_float64(seed, shape, mean):
    x = np.random.default_rng(seed).normal(mean, 0.7, shape)
    st = lif_forward(x, P)
    u, du, s, a = _naive_lif(x, P)
    np.testing.assert_array_equal(st.s, s)  # spike decisions exact
    assert st.s.any() or shape[0] == 1 or mean < 0.5  # the random currents exercise firing
    for name, mine, ref in (("u", st.u, u), ("du", st.du, du), ("a", st.a, a)):
        assert mine.shape == shape and mine.dtype == np.float64
        assert rel_err(mine, ref) < 1e-12, name  # float64 twins


def test_lif_other_params_and_layer_threshold():
    params = NeuronParams(tau_m=8.0, tau_s=4.0, threshold=1.0)
    x = np.random.default_rng(9).normal(0.5, 0.8, (30, 40))
    for thr in (None, 0.6, 2.0):
        st = lif_forward(x, params, thr)
        u, du, s, a = _naive_lif(x, params, thr)
        np.testing.assert_array_equal(st.s, s)
        assert rel_err(st.u, u) < 1e-12 and rel_err(st.a, a) < 1e-12  # float64 twins


def test_lif_hand_trajectory():
    # x = 0.5 constant, theta_m = 0.2: du = 0.5, 0.4, 0.32 -> u = 0.5, 0.9, 1.22 > 1: spike, reset to 0,
    # then the same cycle again.  A handful of roundings on O(1) numbers: atol 1e-14.
    st = lif_forward(np.full(7, 0.5), P)
    np.testing.assert_allclose(st.u, [0.5, 0.9, 1.22, 0.5, 0.9, 1.22, 0.5], rtol=0, atol=1e-14)
    np.testing.assert_allclose(st.du, [0.5, 0.4, 0.32, 0.5, 0.4, 0.32, 0.5], rtol=0, atol=1e-14)
    np.testing.assert_array_equal(st.s, [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_allclose(st.a, naive.psp(np.array([0, 0, 1, 0, 0, 1, 0.0]), 3.0), rtol=1e-14)
    assert st.firing_rate == pytest.approx(2 / 7, rel=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_membrane_exactly_at_threshold_does_not_fire(dtype):
    # u[0] = x[0] = 1.0 exactly: 1.0 > 1.0 is false (strict), the next float above fires
    above = np.nextafter(dtype(1.0), dtype(2.0))
    x = np.array([[1.0, above], [0.0, 0.0]], dtype=dtype)
    st = lif_forward(x, P)
    assert st.u[0, 0] == 1.0 and st.s[0, 0] == 0.0
    assert st.s[0, 1] == 1.0
    # no reset without a spike: u carries 1.0 (then leaks: 0.8); the fired neuron restarts from 0
    assert st.u[1, 0] == pytest.approx(0.8, abs=1e-6) and st.u[1, 1] == 0.0  # float32 round-off 1e-7
    # a layer threshold equal to the current does not fire either
    assert lif_forward(np.full(3, 0.5, dtype), P, threshold=0.5).s[0] == 0.0


def test_neurons_firing_at_every_step():
    # x = 10: reset to 0 every step, so u = du = x and s = 1 at every step; a = eps * 1
    st = lif_forward(np.full((5, 6), 10.0), P)
    assert st.s.all()
    np.testing.assert_array_equal(st.u, 10.0)  # 0 * (-0.2) + 10 and 0 + 10 are exact
    np.testing.assert_array_equal(st.du, 10.0)
    np.testing.assert_allclose(st.a[:, 0], [1 / 3, 5 / 9, 19 / 27, 65 / 81, 211 / 243], rtol=2e-15)


def test_all_silent_layer():
    st = lif_forward(np.zeros((5, 3, 4)), P)
    for arr in (st.u, st.du, st.s, st.a):
        np.testing.assert_array_equal(arr, 0.0)  # zero input: everything exactly zero
    assert st.firing_rate == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_lif_float32_equals_plain_python_kernel_bit_for_bit(seed):
    """The compiled float32 kernel and its plain-Python version compute the same float32 operations."""
    x = np.random.default_rng(seed).normal(0.5, 0.8, (5, 120)).astype(np.float32)
    st = lif_forward(x, P)
    assert st.u.dtype == np.float32 and st.s.any()
    u, du, s, a = (np.empty_like(x) for _ in range(4))
    dt = x.dtype
    _lif_kernel_py(x, as_scalar(P.theta_m, dt), as_scalar(P.theta_s, dt), as_scalar(P.threshold, dt),
                   n_chunks(x.shape[1]), u, du, s, a)
    for name, mine, ref in (("u", st.u, u), ("du", st.du, du), ("s", st.s, s), ("a", st.a, a)):
        np.testing.assert_array_equal(mine, ref, err_msg=name)  # bit for bit: tolerance 0


def test_lif_float32_spikes_match_float64_away_from_threshold():
    x = np.random.default_rng(3).normal(0.5, 0.8, (5, 500))
    st32, st64 = lif_forward(x.astype(np.float32), P), lif_forward(x, P)
    np.testing.assert_array_equal(st32.s, st64.s)
    assert rel_err(st32.u, st64.u) < 1e-6  # float32 round-off, 5 steps


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_current_raises_clear_error(bad):
    x = np.full((5, 3), 0.5)
    x[2, 1] = bad
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        lif_forward(x, P)


def test_lif_input_validation():
    with pytest.raises(TypeError, match="numeric"):
        lif_forward(np.array(["a", "b"]), P)
    with pytest.raises(ValueError, match="time axis"):
        lif_forward(np.zeros((0, 3)), P)
    # integers and booleans are accepted and computed in float64
    st = lif_forward(np.array([[2], [0]]), P)
    assert st.u.dtype == np.float64 and st.s[0, 0] == 1.0


# --------------------------------------------------------------------------- compact forward (training)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 1500), (1, 40), (7, 2, 3, 4)])
def test_lif_compact_equals_lif_forward_bit_for_bit(shape, dtype):
    """lif_compact stores du and uint8 spikes, recomputes u; every quantity equals lif_forward's exactly
    (same float operations in the same order), and record=False gives the same a."""
    x = np.random.default_rng(8).normal(0.5, 0.9, shape).astype(dtype)
    full = lif_forward(x, P, threshold=0.8)
    a, compact = lif_compact(x, P, threshold=0.8)
    assert compact.spikes.dtype == np.uint8 and full.s.any() and not full.s.all()
    for name in ("u", "du", "s", "a"):
        np.testing.assert_array_equal(getattr(compact, name), getattr(full, name), err_msg=name)  # tolerance 0
    np.testing.assert_array_equal(a, full.a)
    a_only, none = lif_compact(x, P, threshold=0.8, record=False)
    assert none is None
    np.testing.assert_array_equal(a_only, full.a)
    assert compact.firing_rate == pytest.approx(full.firing_rate, rel=1e-6)  # exact count vs float32 mean
    expanded = compact.expand()
    np.testing.assert_array_equal(expanded.u, full.u)


def test_lif_compact_plain_python_twins():
    """The plain-Python versions of the compact LIF kernel and of the u recomputation give the same bits."""
    x = np.random.default_rng(9).normal(0.5, 0.8, (5, 700)).astype(np.float32)
    _, compact = lif_compact(x, P)
    dt = x.dtype
    du, s, a = np.empty_like(x), np.empty(x.shape, np.uint8), np.empty_like(x)
    _lif_compact_kernel_py(x, as_scalar(1.0, dt), as_scalar(P.theta_m, dt), as_scalar(P.theta_s, dt),
                           as_scalar(P.threshold, dt), True, n_chunks(x.shape[1]), du, s, a)
    np.testing.assert_array_equal(du, compact.du)
    np.testing.assert_array_equal(s, compact.spikes)
    np.testing.assert_array_equal(a, compact.a)
    u = np.empty_like(x)
    _recompute_u_kernel_py(du, s, as_scalar(0.0, dt), u)
    np.testing.assert_array_equal(u, lif_forward(x, P).u)


def test_lif_compact_rejects_nan():
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        lif_compact(np.full((5, 3), np.nan), P)


def test_int_and_bool_inputs_compute_in_float64_and_others_are_refused():
    """The module's dtypes: a spike train typed as integers or booleans is computed in float64, exactly as
    the same train given as float64; a string or complex array is a TypeError."""
    from reference.neuron import encode_input, lif_forward, psp
    from reference.params import NeuronParams

    train = [0, 1, 0, 1, 1]
    ref = psp(np.array(train, dtype=np.float64), 3.0)
    for given in (np.array(train), np.array(train, dtype=np.int8), np.array(train, dtype=bool)):
        got = psp(given, 3.0)
        assert got.dtype == np.float64
        np.testing.assert_array_equal(got, ref)
    assert encode_input(np.array(train), 3.0).dtype == np.float64
    p = NeuronParams(tau_m=5.0, tau_s=3.0, threshold=1.0, n_steps=5)
    np.testing.assert_array_equal(lif_forward(np.array([2, 0, 2, 0, 2]), p).s,
                                  lif_forward(np.array([2.0, 0, 2, 0, 2]), p).s)
    for bad in (np.array(["0", "1"]), np.array([1j, 0j])):
        with pytest.raises(TypeError, match="must be a numeric array"):
            psp(bad, 3.0)


def _authors_syn_a(n_steps, tau_s):
    """The authors' ``glv.syn_a`` in float32: ``x[t+1] = x[t] - x[t]/tau_s`` from 1, then ``/tau_s``."""
    a = np.zeros(n_steps, np.float32)
    a[0] = 1
    for t in range(n_steps - 1):
        a[t + 1] = a[t] - a[t] / np.float32(tau_s)
    return a / np.float32(tau_s)


@pytest.mark.parametrize("n_steps, tau_s, vs_authors, vs_forward", [
    (5, 2.0, 0, 0), (5, 3.0, 1, 0), (5, 5.0, 1, 1), (30, 2.0, 0, 0), (30, 3.0, 2, 12), (30, 5.0, 2, 2)])
def test_float32_kernel_against_the_recurrences_it_stands_for(n_steps, tau_s, vs_authors, vs_forward):
    """psp_kernel's precision note, measured: the largest difference in float32 ulps from the authors'
    syn_a and from the forward filter's impulse response, at the shipped configs' T and tau_s."""
    from reference.neuron import psp, psp_kernel

    ours = psp_kernel(n_steps, tau_s).astype(np.float32)
    impulse = np.zeros(n_steps, np.float32)
    impulse[0] = 1
    for other, expected in ((_authors_syn_a(n_steps, tau_s), vs_authors), (psp(impulse, tau_s), vs_forward)):
        ulps = np.abs(ours.astype(np.float64) - other) / np.spacing(other)
        assert ulps.max() == expected


@pytest.mark.parametrize("tau", [0.5, 1e308, float("inf"), float("nan")])
def test_neuron_params_refuse_time_constants_outside_1_to_max_tau(tau):
    """Issue 30: tau = 1e308 was accepted (1/tau underflows: a silent network); the bound is MAX_TAU."""
    from reference.params import MAX_TAU
    for key in ("tau_m", "tau_s"):
        with pytest.raises(ValueError, match=re.escape(f"{key} must be a number of time steps from 1 to {MAX_TAU:g}")):
            NeuronParams(**{key: tau})
    assert NeuronParams(tau_m=MAX_TAU, tau_s=MAX_TAU).theta_m == 1 / MAX_TAU
