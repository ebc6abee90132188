"""TSSL-BP backward of one layer (reference.tsslbp): the named pieces against scalar transcriptions, the
Numba kernel against the NumPy composition and the naive per-neuron twin, edge cases.

Tolerances: float64 against float64 twins 1e-12 relative to the largest value (other summation orders
and ``exp`` implementations: a few ulps); float32 kernel against float32 composition 1e-6 (the same
operations except ``exp``: the kernel's polynomial ``exp`` and NumPy's may differ by 1 ulp, 6e-8,
amplified by at most a few products); float32 against float64 twins 1e-5 (float32 eps 6e-8 times the
~T products and sums of one delta, with margin).  Branch codes and spike decisions are compared exactly.
"""
import inspect
import itertools

import numpy as np
import pytest

import naive
from conftest import rel_err
from reference._jit import as_scalar
from reference.neuron import NeuronState, lif_compact, lif_forward, psp, psp_kernel
from reference.params import MAX_INV_DU, WARMUP_SIGMA, NeuronParams, warmup_psp_threshold
from reference.tsslbp import (
    BRANCH_INTER, BRANCH_INTRA, BRANCH_WARMUP, WARMUP_MODES, KernelConstants, KernelSwitches, _kernel_args, _tsslbp_compact_kernel_py, _tsslbp_kernel, _tsslbp_kernel_py,
    branch_fractions, compose_delta, inter_neuron_term, intra_neuron_term, spike_error, spike_advance,
    tsslbp_delta, warmup_mask, warmup_surrogate, warmup_term,
)

P = NeuronParams()
THETA_M = 1 / 5


def random_case(seed, shape, dtype, mean=0.5, spread=0.8):
    """Random currents through lif_forward (real states), and a random error g on the output PSP."""
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, spread, shape).astype(dtype)
    return lif_forward(x, P), rng.normal(0, 1, shape).astype(dtype)


def naive_delta(g, st, params=P, threshold=None, **options):
    thr = params.threshold if threshold is None else threshold
    mv = lambda v: np.moveaxis(np.asarray(v, dtype=np.float64), 0, -1)
    out = naive.tsslbp(mv(g), mv(st.u), mv(st.du), mv(st.s), mv(st.a), params.tau_m, params.tau_s, thr, **options)
    return np.moveaxis(out, -1, 0)


def state(u, du, s, a=None, dtype=np.float64):
    """A hand-made NeuronState of 1-D traces (one neuron); ``a`` defaults to the PSP of ``s``."""
    s = np.asarray(s, dtype)
    a = psp(s, P.tau_s) if a is None else np.asarray(a, dtype)
    return NeuronState(np.asarray(u, dtype), np.asarray(du, dtype), s, a)


# ------------------------------------------------------------------------------- pieces, scalar checks
@pytest.mark.parametrize("n_steps", [1, 2, 5, 9])
def test_spike_error_of_one_hot_is_reversed_kernel(n_steps):
    eps = psp_kernel(n_steps, 3.0)
    for m in range(n_steps):
        g = np.zeros(n_steps)
        g[m] = 1.0
        G = spike_error(g, eps)
        expected = np.zeros(n_steps)
        expected[: m + 1] = eps[m::-1]  # G[k] = eps[m - k] for k <= m, 0 after m
        np.testing.assert_array_equal(G, expected)  # one product with 1.0 plus zeros: exact


def test_spike_error_is_adjoint_of_psp():
    # G = dL/ds when a = eps * s: <psp(s), g> == <s, spike_error(g)> for all s, g (float64 round-off)
    rng = np.random.default_rng(0)
    s, g = rng.normal(size=(7, 13)), rng.normal(size=(7, 13))
    G = spike_error(g, psp_kernel(7, 3.0))
    assert np.sum(psp(s, 3.0) * g) == pytest.approx(np.sum(s * G), rel=1e-12)
    # and against the scalar double sum, per neuron
    eps = psp_kernel(7, 3.0)
    ref = np.array([[sum(eps[m - k] * g[m, j] for m in range(k, 7)) for j in range(13)] for k in range(7)])
    assert rel_err(G, ref) < 1e-12  # float64, other summation order


def authors_partial_u(du, s):
    """-partial_u of the authors' code, written as they write it: -clamp(-1/du, -8, 0) * s (IEEE division)."""
    with np.errstate(divide="ignore"):
        return -np.clip(-1.0 / du, -8.0, 0.0) * s


def test_spike_advance_values():
    du = np.array([0.05, 0.125, 0.5, 2.0, 0.0, -0.3, 0.5, 1e-30, 2.0 ** 100])
    s = np.array([1, 1, 1, 1, 1, 1, 0, 1, 1.0])
    # 1/0.05 = 20 -> clamp 8; 1/0.125 = 8; 2; 0.5; du = +0 -> 1/du = inf -> 8; du < 0 -> 0; not fired -> 0
    expected = [8.0, 8.0, 2.0, 0.5, 8.0, 0.0, 0.0, 8.0, 2.0 ** -100]
    got = spike_advance(du, s)
    np.testing.assert_array_equal(got, expected)  # exact: one division of exact binary fractions or a clamp
    np.testing.assert_array_equal(got, authors_partial_u(du, s))
    assert got.dtype == np.float64 and spike_advance(du.astype(np.float32), s).dtype == np.float32


def test_spike_advance_negative_zero_du_matches_authors_clamp():
    """du = -0.0 where the neuron fires: the authors' clamp(-1/du, -8, 0) gives clamp(+inf) = 0, and the
    compiled kernel gives 0; the documented range of spike_advance is [0, 8]."""
    du = np.array([-0.0, 0.0])
    s = np.array([1.0, 1.0])
    np.testing.assert_array_equal(authors_partial_u(du, s), [0.0, 8.0])
    got = spike_advance(du, s)
    assert np.all((got >= 0) & (got <= MAX_INV_DU)), f"values outside [0, 8]: {got}"
    np.testing.assert_array_equal(got, [0.0, 8.0])


def test_composition_equals_kernel_when_a_spike_has_negative_zero_du():
    """Reachable through lif_forward: a negative layer threshold and a current of -0.0 (e.g. W a with a = 0
    and negative weights) fire with du = (-theta_m) * 0 + (-0.0) = -0.0.  The kernel gives the authors' 0;
    compose_delta must give the same numbers (its docstring: same as tsslbp_delta)."""
    st = lif_forward(np.full((3, 2), -0.0), P, threshold=-0.5)
    assert st.s.all() and np.all(np.signbit(st.du))
    g = np.ones((3, 2))
    fast, _ = tsslbp_delta(g, st, P, -0.5, warmup="never")
    np.testing.assert_array_equal(fast, 0.0)
    with np.errstate(invalid="ignore"):
        slow, _ = compose_delta(g, st, P, -0.5, warmup="never")
    np.testing.assert_array_equal(slow, fast)  # exact: both should be 0


def test_inter_neuron_term_scalar():
    G = np.array([0.3, -1.2, 2.0, 0.7])
    du = np.array([0.5, 0.25, 0.1, 0.4])
    s = np.array([1.0, 1.0, 1.0, 0.0])
    # s * min(1/du, 8) * G = [2 * 0.3, 4 * -1.2, 8 * 2.0, 0]
    np.testing.assert_allclose(inter_neuron_term(G, du, s), [0.6, -4.8, 16.0, 0.0], rtol=1e-15, atol=0)


def scalar_intra(inter, u, du, s, theta_m):
    """intra for one neuron, a literal loop of paper-notes section 3.2."""
    n = len(inter)
    out = np.zeros(n)
    c = 0.0
    for k in range(n - 1, -1, -1):
        advance = min(1 / du[k], 8.0) if (s[k] and du[k] > 0) else (8.0 if s[k] and du[k] == 0 else 0.0)
        out[k] = c * theta_m * u[k] * advance * s[k] + c * (1 - theta_m) * (1 - s[k])
        pre = inter[k] + out[k]
        c = pre * s[k] + c * (1 - s[k]) * (1 - theta_m)
    return out


def test_intra_neuron_term_hand_example():
    # s = [1, 0, 1]; k=2: c=0 -> intra 0, c = inter[2] = 1; k=1 (silent): intra = 0.8 c = 0.8, c = 0.8;
    # k=0 (fired, u=1.5, du=0.5): intra = c * 0.2 * 1.5 * 2 = 0.6 * 0.8 = 0.48.  A few roundings: 1e-15.
    inter = np.array([0.3, 0.0, 1.0])
    u, du, s = np.array([1.5, 0.6, 1.2]), np.array([0.5, 0.2, 0.25]), np.array([1.0, 0.0, 1.0])
    np.testing.assert_allclose(intra_neuron_term(inter, u, du, s, THETA_M), [0.48, 0.8, 0.0], rtol=1e-15, atol=1e-16)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_intra_neuron_term_against_scalar_loop(seed):
    st, g = random_case(seed, (10, 25), np.float64)
    G = spike_error(g, psp_kernel(10, P.tau_s))
    inter = inter_neuron_term(G, st.du, st.s)
    got = intra_neuron_term(inter, st.u, st.du, st.s, THETA_M)
    ref = np.stack([scalar_intra(inter[:, j], st.u[:, j], st.du[:, j], st.s[:, j], THETA_M) for j in range(25)], 1)
    assert np.abs(ref).max() > 0  # the carried term is exercised
    assert rel_err(got, ref) < 1e-12  # float64, same operations


def test_warmup_surrogate_values_and_clip():
    thr = 1.0
    # z = 0 at threshold: e^0 / (4 * 0.2) = 1.25 (peak); a few roundings: 1e-15
    assert warmup_surrogate(np.array([thr]), thr)[0] == pytest.approx(1 / (4 * WARMUP_SIGMA), rel=1e-15)
    # symmetric in u - threshold (z -> -z gives the same e^z/(1+e^z)^2); 1e-12 for the two exp's
    d = np.linspace(0.01, 1.5, 40)
    np.testing.assert_allclose(warmup_surrogate(thr + d, thr), warmup_surrogate(thr - d, thr), rtol=1e-12)
    # clip at |z| = 8: constant beyond |u - thr| = 1.6
    e8 = np.exp(8.0)
    f8 = e8 / ((1 + e8) ** 2 * WARMUP_SIGMA)
    np.testing.assert_allclose(warmup_surrogate(np.array([-5.0, -100.0, 3.0, 50.0]), thr), f8, rtol=1e-12)
    assert warmup_surrogate(np.zeros(2, np.float32), 1.0).dtype == np.float32


@pytest.mark.parametrize("threshold", [1.0, 0.7])
def test_warmup_surrogate_is_derivative_of_sigmoid(threshold):
    """f(u) = d/du sigmoid((u - threshold)/0.2): central differences in float64, away from the clip."""
    sig = lambda u: 1.0 / (1.0 + np.exp(-(u - threshold) / WARMUP_SIGMA))
    u = threshold + np.linspace(-1.5, 1.5, 61)  # |z| <= 7.5 < 8
    h = 1e-5
    fd = (sig(u + h) - sig(u - h)) / (2 * h)
    # truncation h^2/6 |sigma'''| <= 1e-10/6 * 1.25/0.04 = 5e-10; round-off eps/h = 2e-11: atol 1e-8 of a peak 1.25
    np.testing.assert_allclose(warmup_surrogate(u, threshold), fd, rtol=0, atol=1e-8)


def test_warmup_mask_threshold_and_decay_after_one_spike():
    th = warmup_psp_threshold(3.0)
    assert th == 1 / 12
    np.testing.assert_array_equal(warmup_mask(np.array([0.0, 0.08, th, 0.09, 1 / 3]), 3.0),
                                  [True, True, False, False, False])  # strict <
    # one spike at t = 1: a = 0, 1/3, 2/9, 4/27, 8/81 (>= 1/12), then 16/243 < 1/12: warm again 4 steps later
    s = np.zeros(7)
    s[1] = 1
    np.testing.assert_array_equal(warmup_mask(psp(s, 3.0), 3.0), [True, False, False, False, False, True, True])
    # float32 compares against the float32 threshold
    a32 = np.array([np.float32(1 / 12), np.nextafter(np.float32(1 / 12), np.float32(0))], np.float32)
    np.testing.assert_array_equal(warmup_mask(a32, 3.0), [False, True])


def test_warmup_term_is_spike_error_times_surrogate():
    rng = np.random.default_rng(4)
    G, u = rng.normal(size=(5, 9)), rng.normal(0.8, 0.6, (5, 9))
    z = np.clip((1.0 - u) / 0.2, -8, 8)
    ref = G * np.exp(z) / ((1 + np.exp(z)) ** 2 * 0.2)
    assert rel_err(warmup_term(G, u, 1.0), ref) < 1e-12  # float64, same formula reordered


# ----------------------------------------------------------------- kernel vs composition vs naive twin
SHAPES = [(1, 9), (2, 4, 3), (5, 6, 5), (10, 40), (5,)]  # T = 1, 2, 5, 10 and a single neuron
OPTIONS = [dict(inter=i, intra=j, warmup=w)
           for i, j, w in itertools.product([True, False], [True, False], ["per-neuron", "always", "never"])]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"inter{int(o['inter'])}-intra{int(o['intra'])}-{o['warmup']}")
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_equals_composition_and_naive(dtype, seed, shape, options):
    st, g = random_case(seed, shape, dtype)
    fast, branch = tsslbp_delta(g, st, P, **options)
    slow, branch_slow = compose_delta(g, st, P, **options)
    ref = naive_delta(g, st, **options)  # float64 on the very same (float32 or float64) states
    assert fast.dtype == dtype and slow.dtype == dtype and branch.dtype == np.int8
    assert fast.shape == shape and branch.shape == shape
    if dtype == np.float64:
        assert rel_err(fast, ref) < 1e-12 and rel_err(slow, ref) < 1e-12
        assert rel_err(fast, slow) < 1e-12
    else:
        assert rel_err(fast, slow) < 1e-6  # same float32 operations, exp may differ by an ulp
        assert rel_err(fast, ref) < 1e-5 and rel_err(slow, ref) < 1e-5  # float32 against float64
    np.testing.assert_array_equal(branch, branch_slow)
    # branch codes: warm-up where the rule says so; elsewhere 1 exactly where the neuron fired, 2 where silent
    mode = options["warmup"]
    warm = {"always": np.ones(shape, bool), "never": np.zeros(shape, bool),
            "per-neuron": st.a < as_scalar(1 / 12, dtype)}[mode]
    np.testing.assert_array_equal(branch == BRANCH_WARMUP, warm)
    np.testing.assert_array_equal(branch[~warm] == BRANCH_INTER, st.s[~warm] == 1)
    np.testing.assert_array_equal(branch[~warm] == BRANCH_INTRA, st.s[~warm] == 0)


def test_random_states_exercise_every_branch():
    st, g = random_case(0, (10, 40), np.float64)
    _, branch = tsslbp_delta(g, st, P)
    frac = branch_fractions(branch)
    assert set(frac) == {"warm-up", "inter (fired)", "intra (silent)"}
    assert all(v > 0.05 for v in frac.values()), frac
    assert sum(frac.values()) == pytest.approx(1.0, abs=1e-12)


def test_branch_fractions_weighted_by_delta():
    """With weights, each share is the branch's part of the summed weight (here a hand-made case)."""
    branch = np.array([[BRANCH_WARMUP, BRANCH_INTER], [BRANCH_INTRA, BRANCH_INTER]], dtype=np.int8)
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    frac = branch_fractions(branch, w)
    assert frac == {"warm-up": 0.1, "inter (fired)": 0.6, "intra (silent)": 0.3}
    assert branch_fractions(branch, np.zeros_like(w)) == dict.fromkeys(frac, 0.0)
    assert branch_fractions(branch, np.ones_like(w)) == branch_fractions(branch)
    with pytest.raises(ValueError, match="shape"):
        branch_fractions(branch, w[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_threshold_is_used_by_warmup(dtype):
    st, g = random_case(3, (5, 30), dtype)
    for thr in (0.5, 1.7):
        fast, _ = tsslbp_delta(g, st, P, thr, warmup="always")
        ref = naive_delta(g, st, threshold=thr, warmup="always")
        assert rel_err(fast, ref) < (1e-12 if dtype == np.float64 else 1e-5)  # see module docstring


# ----------------------------------------------------------------------------------------- edge cases
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_silent_layer_is_warmup_everywhere(dtype):
    rng = np.random.default_rng(6)
    x = rng.normal(-1.0, 0.5, (5, 200)).astype(dtype)  # never reaches the threshold
    st = lif_forward(x, P)
    assert not st.s.any()
    g = rng.normal(size=x.shape).astype(dtype)
    delta, branch = tsslbp_delta(g, st, P)
    assert np.all(branch == BRANCH_WARMUP)
    G = spike_error(g.astype(np.float64), psp_kernel(5, P.tau_s))
    z = np.clip((1.0 - st.u.astype(np.float64)) / 0.2, -8, 8)
    ref = G * np.exp(z) / ((1 + np.exp(z)) ** 2 * 0.2)
    assert rel_err(delta, ref) < (1e-12 if dtype == np.float64 else 1e-5)  # see module docstring
    # never: nothing fires, nothing is carried: pure TSSL-BP gives exactly 0
    np.testing.assert_array_equal(tsslbp_delta(g, st, P, warmup="never")[0], 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_neurons_firing_at_every_step(dtype):
    st = lif_forward(np.full((5, 8), 10.0, dtype) + np.arange(8, dtype=dtype), P)
    assert st.s.all()
    g = np.random.default_rng(7).normal(size=(5, 8)).astype(dtype)
    delta, branch = tsslbp_delta(g, st, P)
    assert np.all(branch == BRANCH_INTER)  # own PSP >= 1/3 > 1/12: never warm-up
    ref = naive_delta(g, st)
    assert rel_err(delta, ref) < (1e-12 if dtype == np.float64 else 1e-5)
    # scalar check of the last step: delta[T-1] = min(1/du, 8) G[T-1] = (1/x) eps[0] g[T-1]  (nothing carried)
    x = 10.0 + np.arange(8)
    np.testing.assert_allclose(delta[-1], (1 / x) * (1 / 3) * g[-1].astype(np.float64),
                               rtol=1e-12 if dtype == np.float64 else 1e-6)


@pytest.mark.parametrize("fn", [tsslbp_delta, compose_delta])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zero_and_negative_du_where_fired(fn, dtype):
    # one step, fired, own PSP 1/3 (not warm): delta = advance * G, G = eps[0] g = g/3
    g = np.array([1.5], dtype)
    d0, b0 = fn(g, state([1.2], [0.0], [1.0], dtype=dtype), P)
    assert b0[0] == BRANCH_INTER
    assert d0[0] == pytest.approx(8 * 0.5, rel=1e-7)  # du = +0: min(1/0 = inf, 8) = 8 (authors' clamp at +0)
    dn, _ = fn(g, state([1.2], [-0.3], [1.0], dtype=dtype), P)
    assert dn[0] == 0.0  # du < 0: the clamp gives 0
    dp, _ = fn(g, state([1.2], [0.25], [1.0], dtype=dtype), P)
    assert dp[0] == pytest.approx(4 * 0.5, rel=1e-7)  # float32 round-off


def test_kernel_negative_zero_du_gives_authors_zero():
    g = np.array([1.5])
    d, _ = tsslbp_delta(g, state([1.2], [-0.0], [1.0]), P, warmup="never")
    assert d[0] == 0.0  # authors: clamp(-1/(-0.0), -8, 0) = clamp(+inf) = 0


def test_zero_input_everywhere_gives_finite_zero_delta():
    # du == 0 exactly with no spike: 1/du = inf must not leak (s = 0 selects 0), as in the authors' code
    st = lif_forward(np.zeros((5, 4), np.float32), P)
    d, _ = tsslbp_delta(np.ones((5, 4), np.float32), st, P, warmup="never")
    assert np.all(np.isfinite(d)) and np.all(d == 0)


@pytest.mark.parametrize("options", [{}, dict(warmup="always"), dict(warmup="never"), dict(inter=False, intra=False)],
                         ids=["default", "always", "never", "no-inter-no-intra"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_plain_python_kernel_gives_same_numbers(dtype, options):
    """_tsslbp_kernel_py (what NUMBA_DISABLE_JIT=1 runs) against the compiled kernel on one case."""
    st, g = random_case(11, (5, 40), dtype)
    fast, branch = tsslbp_delta(g, st, P, **options)
    args = _kernel_args(g, st, P, **options)  # the very arguments tsslbp_delta passes to the compiled kernel
    delta_py, branch_py = args[-2:]
    with np.errstate(divide="ignore"):  # 1/du at du = 0 is inf by design (then clamped)
        _tsslbp_kernel_py(*args)
    np.testing.assert_array_equal(branch, branch_py)
    # float32: pure arithmetic in both (polynomial exp, no fastmath): bit for bit.
    # float64: libm's exp (compiled) against NumPy's scalar exp may differ by an ulp: 1e-14.
    if dtype == np.float32:
        np.testing.assert_array_equal(fast, delta_py)
    else:
        assert rel_err(fast, delta_py) < 1e-14


KERNEL_PARAMS = list(inspect.signature(_tsslbp_kernel_py).parameters)


def test_kernel_args_match_kernel_signature():
    st, g = random_case(0, (5, 3), np.float32)
    args = dict(zip(KERNEL_PARAMS, _kernel_args(g, st, P, 0.7, warmup="always"), strict=True))
    assert args["g"].shape == (5, 3) and args["delta"].shape == (5, 3) and args["branch"].dtype == np.int8
    consts, switches = args["consts"], args["switches"]
    assert isinstance(consts, KernelConstants) and isinstance(switches, KernelSwitches)
    assert consts.threshold == np.float32(0.7) and type(consts.threshold) is np.float32
    assert {type(v) for v in consts} == {np.float32}  # every float constant in the arrays' dtype
    assert consts.decay_m == np.float32(1 - P.theta_m) and consts.max_inv_du == np.float32(MAX_INV_DU)
    assert switches.warmup_mode == switches.mode_always == WARMUP_MODES["always"]
    assert switches.mode_never == WARMUP_MODES["never"]
    assert (switches.code_warmup, switches.code_inter, switches.code_intra) == (BRANCH_WARMUP, BRANCH_INTER, BRANCH_INTRA)
    assert switches.fast_exp and switches.use_inter and switches.use_intra


@pytest.mark.parametrize("kern", [_tsslbp_kernel, _tsslbp_kernel_py], ids=["compiled", "python"])
@pytest.mark.parametrize("warmup", ["per-neuron", "always", "never"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kernel_reads_branch_and_mode_codes_from_its_arguments(dtype, warmup, kern):
    """Other codes in, the same codes out: the kernel writes no branch or mode number of its own."""
    st, g = random_case(2, (5, 40), dtype)
    delta, branch = tsslbp_delta(g, st, P, warmup=warmup)
    args = dict(zip(KERNEL_PARAMS, _kernel_args(g, st, P, warmup=warmup), strict=True))
    relabel = {BRANCH_WARMUP: 7, BRANCH_INTER: -3, BRANCH_INTRA: 5}
    modes = {"per-neuron": 11, "always": 12, "never": 13}
    args["switches"] = args["switches"]._replace(
        code_warmup=np.int8(7), code_inter=np.int8(-3), code_intra=np.int8(5),
        warmup_mode=modes[warmup], mode_always=modes["always"], mode_never=modes["never"])
    with np.errstate(divide="ignore"):
        kern(*args.values())
    np.testing.assert_array_equal(args["branch"], np.vectorize(relabel.get)(branch))
    if kern is _tsslbp_kernel or dtype == np.float32:
        np.testing.assert_array_equal(args["delta"], delta)  # the same operations: bit for bit
    else:
        assert rel_err(args["delta"], delta) < 1e-14  # float64 NumPy exp against libm's: an ulp (see above)


def test_input_validation():
    st, g = random_case(0, (5, 3), np.float64)
    with pytest.raises(ValueError, match="warmup must be one of"):
        tsslbp_delta(g, st, P, warmup="sometimes")
    with pytest.raises(ValueError, match="warmup must be one of"):
        compose_delta(g, st, P, warmup="sometimes")
    with pytest.raises(ValueError, match="state.u has shape"):
        tsslbp_delta(g[:, :2], st, P)
    with pytest.raises(TypeError, match="float32 or float64"):
        tsslbp_delta(g.astype(np.int64), st, P)
    # an empty layer gives empty results
    empty = NeuronState(*(np.zeros((5, 0)) for _ in range(4)))
    d, b = tsslbp_delta(np.zeros((5, 0)), empty, P)
    assert d.shape == (5, 0) and b.shape == (5, 0)


# ------------------------------------------------------------------- compact state (what training records)
COMPACT_OPTIONS = [{}, dict(warmup="always"), dict(warmup="never"), dict(inter=False), dict(intra=False)]


@pytest.mark.parametrize("options", COMPACT_OPTIONS, ids=["default", "always", "never", "no-inter", "no-intra"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(5, 1300), (2, 60), (9, 3, 4, 5)], ids=["blocks", "T=2", "4-D"])
def test_compact_kernel_equals_full_kernel_bit_for_bit(shape, dtype, options):
    """The backward on a CompactState (u and a recomputed from du and the spikes inside the kernel) gives the
    full-state kernel's delta and branch bit for bit: the same float operations on the same floats.  1300
    neurons span several blocks of BLOCK = 512 and a partial one; the threshold of 0.7 and a wide current
    give both firing and silent neurons, so all branches occur."""
    rng = np.random.default_rng(21)
    x = rng.normal(0.4, 0.9, shape).astype(dtype)
    full = lif_forward(x, P, threshold=0.7)
    a, compact = lif_compact(x, P, threshold=0.7)
    g = rng.normal(0, 1, shape).astype(dtype)
    d_full, b_full = tsslbp_delta(g, full, P, 0.7, **options)
    d_compact, b_compact = tsslbp_delta(g, compact, P, 0.7, **options)
    np.testing.assert_array_equal(b_compact, b_full)
    np.testing.assert_array_equal(d_compact, d_full)
    assert len(set(b_full.ravel().tolist())) == (2 if options.get("warmup") == "never" else
                                                 1 if options.get("warmup") == "always" else 3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compact_kernel_plain_python_twin(dtype):
    """_tsslbp_compact_kernel_py (what NUMBA_DISABLE_JIT=1 runs) against the compiled kernel; tolerances as
    for the full kernel (float32 bit for bit, float64 libm's exp against NumPy's: 1e-14)."""
    rng = np.random.default_rng(4)
    x = rng.normal(0.5, 0.8, (5, 600)).astype(dtype)
    _, compact = lif_compact(x, P)
    g = rng.normal(0, 1, x.shape).astype(dtype)
    fast, branch = tsslbp_delta(g, compact, P)
    args = _kernel_args(g, compact, P)
    with np.errstate(divide="ignore"):
        _tsslbp_compact_kernel_py(*args)
    np.testing.assert_array_equal(args[-1], branch)
    if dtype == np.float32:
        np.testing.assert_array_equal(args[-2], fast)
    else:
        assert rel_err(args[-2], fast) < 1e-14


def test_compact_kernel_args_match_its_signature_and_validate():
    _, compact = lif_compact(np.random.default_rng(0).normal(0.5, 1, (5, 3)).astype(np.float32), P)
    g = np.zeros((5, 3), np.float32)
    params = list(inspect.signature(_tsslbp_compact_kernel_py).parameters)
    args = dict(zip(params, _kernel_args(g, compact, P, 0.7), strict=True))
    assert args["s"].dtype == np.uint8 and args["du"].dtype == np.float32
    assert args["consts"].theta_s == np.float32(1 / 3) and args["consts"].threshold == np.float32(0.7)
    assert args["pool"] == (0, 0.0, 0, 0, 0) and type(args["pool"].theta) is np.float32  # no pooling
    with pytest.raises(ValueError, match="state.du has shape"):
        tsslbp_delta(g[:, :2], compact, P)


@pytest.mark.parametrize("options", [{}, dict(warmup="never"), dict(warmup="always")], ids=["default", "never", "always"])
@pytest.mark.parametrize("hw,k", [((12, 12), 2), ((9, 7), 2), ((11, 10), 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pooled_error_in_the_kernel_equals_pooling_backward_first(hw, k, dtype, options):
    """tsslbp_delta(g_pooled, pool=(k, theta)) does the sum-pooling's backward inside the kernel: the same
    delta and branch, bit for bit, as SumPool2d.backward followed by tsslbp_delta; also for rows and
    columns no window covers (their dL/da is 0); and the plain-Python twin agrees."""
    from reference.layers import SumPool2d
    h, w = hw
    rng = np.random.default_rng(22)
    x = rng.normal(0.4, 0.9, (5, 3, h, w, 4)).astype(dtype)
    _, compact = lif_compact(x, P, threshold=0.8)
    pool = SumPool2d("p", k, (4, h, w))
    gp = rng.normal(0, 1, (5, 3, h // k, w // k, 4)).astype(dtype)
    g_full = pool.backward(gp).g_in
    d_ref, b_ref = tsslbp_delta(g_full, compact, P, 0.8, **options)
    d, b = tsslbp_delta(gp, compact, P, 0.8, pool=(k, pool.theta), **options)
    np.testing.assert_array_equal(b, b_ref)
    np.testing.assert_array_equal(d, d_ref)
    args = _kernel_args(gp, compact, P, 0.8, pool=(k, pool.theta), **options)
    with np.errstate(divide="ignore"):
        _tsslbp_compact_kernel_py(*args)
    np.testing.assert_array_equal(args[-1].reshape(b.shape), b)
    if dtype == np.float32:
        np.testing.assert_array_equal(args[-2].reshape(d.shape), d)
    else:
        assert rel_err(args[-2].reshape(d.shape), d) < 1e-14  # libm's exp against NumPy's


def test_pooled_error_shape_is_checked():
    _, compact = lif_compact(np.zeros((5, 2, 6, 6, 3), np.float32), P)
    with pytest.raises(ValueError, match="pooled output"):
        tsslbp_delta(np.zeros((5, 2, 2, 2, 3), np.float32), compact, P, pool=(2, 1.1))
    with pytest.raises(ValueError, match="CompactState of a conv layer"):
        tsslbp_delta(np.zeros((5, 4), np.float32), lif_forward(np.zeros((5, 4)), P), P, pool=(2, 1.1))


def test_spike_time_derivative_is_the_deprecated_name_of_spike_advance():
    from reference.tsslbp import spike_time_derivative
    du, s = np.array([0.05, 0.5, -0.3]), np.array([1.0, 1.0, 1.0])
    with pytest.warns(DeprecationWarning, match="spike_advance"):
        got = spike_time_derivative(du, s)
    np.testing.assert_array_equal(got, spike_advance(du, s))
