"""The paper-era rule (reference.paper2020, variant "paper2020") against hand values and slow twins.

Tolerances: float64 against the naive twin (explicit T x T matrices per neuron, tests/naive.py) 1e-12
relative (the same products summed in other orders, a few ulps); float32 against float64 1e-5 (float32
round-off over a few steps, with the spike decisions checked equal first); the network against the naive
network 1e-10, as for the final rule (tests/test_network.py).
"""
import os

import numpy as np
import pytest

import naive
from conftest import ROOT, rel_err
from reference.config import load_config
from reference.losses import kernel_target
from reference.network import Network
from reference.neuron import NeuronState, lif_compact, lif_forward
from reference.paper2020 import (
    DESIRED_2020, RATE_THRESHOLD_2020, check_rate_threshold, desired_train_2020, layer_firing_rate, paper2020_delta, reset_error, reset_record,
    spike_error_with_reset, tsslbp_term_2020,
)
from reference.params import NeuronParams
from reference.tsslbp import BRANCH_INTER, BRANCH_INTRA, BRANCH_WARMUP

P = NeuronParams(tau_m=5.0, tau_s=2.0)  # the paper-era configs: tau_s = 2


def test_reset_record_by_hand():
    """One neuron firing at steps 0, 1 and 4 (T = 5): D[0, 1] = theta_m u[0] (the next spike is adjacent),
    D[1, 4] = theta_m u[1] (1 - theta_m)^2, nothing else (the last spike has no next one)."""
    u = np.array([1.5, 1.2, 0.3, 0.6, 1.1])
    s = np.array([1.0, 1.0, 0.0, 0.0, 1.0])
    D = reset_record(u, s, 0.2)
    expected = np.zeros((5, 5))
    expected[0, 1] = 0.2 * 1.5
    expected[1, 4] = 0.2 * 1.2 * 0.8 ** 2
    np.testing.assert_allclose(D, expected, rtol=1e-15, atol=0)


def test_reset_error_equals_record_times_g_and_has_one_entry_per_row():
    rng = np.random.default_rng(0)
    st = lif_forward(rng.normal(0.6, 0.9, (7, 300)), P)
    g = rng.normal(size=st.u.shape)
    D = reset_record(st.u, st.s, P.theta_m)
    assert (np.count_nonzero(D, axis=1) <= 1).all()  # at most one next spike per spike
    assert all(not D[j, m].any() for j in range(7) for m in range(j + 1))  # strictly upper triangular
    h = reset_error(g, st.u, st.s, P.theta_m)
    assert np.abs(h).max() > 0
    assert rel_err(h, np.einsum("jm...,m...->j...", D, g)) < 1e-14  # recurrence vs matrix: a few ulps


def test_desired_train_and_target():
    assert desired_train_2020(5).tolist() == list(DESIRED_2020) == [0, 1, 0, 1, 1]
    assert desired_train_2020(10).tolist() == [0, 1] * 5
    # filtered once with tau_s = 2: [0, 1/2, 1/4, 5/8, 13/16] exactly (dyadic fractions)
    target = kernel_target(5, 2.0, "single", desired_train_2020(5), np.float64)
    assert target.tolist() == [0.0, 0.5, 0.25, 0.625, 0.8125]


def _layer_case(mean, seed=1, shape=(5, 6, 40), dtype=np.float64):
    rng = np.random.default_rng(seed)
    st = lif_forward(rng.normal(mean, 0.9, shape).astype(dtype), P)
    return st, rng.normal(size=shape).astype(dtype)


@pytest.mark.parametrize("mean,branch", [(0.9, "tsslbp"), (-0.2, "warm-up")])
@pytest.mark.parametrize("intra", [True, False])
def test_layer_delta_equals_naive_on_both_sides_of_the_switch(mean, branch, intra):
    st, g = _layer_case(mean)
    rate = layer_firing_rate(st.s)
    assert (rate > 0.1) == (branch == "tsslbp"), rate  # the case is on the intended side
    delta, codes = paper2020_delta(g, st, P, intra=intra)
    mv = lambda v: np.moveaxis(v, 0, -1)
    ref = np.moveaxis(naive.paper2020_layer(mv(g), mv(st.u), mv(st.du), mv(st.s), P.tau_m, P.tau_s, 1.0,
                                            intra=intra), -1, 0)
    assert np.abs(ref).max() > 0
    assert rel_err(delta, ref) < 1e-12
    if branch == "tsslbp":
        assert set(np.unique(codes)) == {BRANCH_INTER, BRANCH_INTRA}
        assert not delta[st.s == 0].any()  # zero at every step without a spike
    else:
        assert (codes == BRANCH_WARMUP).all()


@pytest.mark.parametrize("rate_threshold,branch", [(0.1, "warm-up"), (0.05, "tsslbp"), (0.0, "tsslbp"),
                                                   (1.0, "warm-up")])
def test_rate_threshold_moves_the_switch(rate_threshold, branch):
    """A layer firing between 5% and 10% warms up at the camera-ready's 0.1 and takes the TSSL-BP value at
    their December 2020 code's 0.05 or at 0; 1 warms up every layer.  Each against the naive twin with the
    same threshold (1e-12, as above), on the plain and the compact state."""
    x = np.random.default_rng(7).normal(-0.1, 0.9, (5, 6, 40))
    st = lif_forward(x, P)
    rate = layer_firing_rate(st.s)
    assert 0.05 < rate <= 0.1, rate  # the case lies between the two historical thresholds
    g = np.random.default_rng(8).normal(size=x.shape)
    delta, codes = paper2020_delta(g, st, P, rate_threshold=rate_threshold)
    mv = lambda v: np.moveaxis(v, 0, -1)
    ref = np.moveaxis(naive.paper2020_layer(mv(g), mv(st.u), mv(st.du), mv(st.s), P.tau_m, P.tau_s, 1.0,
                                            rate_threshold=rate_threshold), -1, 0)
    assert rel_err(delta, ref) < 1e-12
    assert (codes == BRANCH_WARMUP).all() == (branch == "warm-up")
    _, compact = lif_compact(x, P)
    dc, bc = paper2020_delta(g, compact, P, rate_threshold=rate_threshold)
    assert rel_err(dc, ref) < 1e-12
    np.testing.assert_array_equal(bc, codes)


def test_check_rate_threshold():
    assert check_rate_threshold(None) == RATE_THRESHOLD_2020 == 0.1
    assert check_rate_threshold("0.05") == 0.05 and check_rate_threshold(0) == 0.0
    for bad in (-0.01, 1.5, float("nan"), "often", [0.1]):
        with pytest.raises(ValueError, match="rate_threshold must be"):
            check_rate_threshold(bad)


def test_intra_term_matters_where_a_neuron_fires_twice():
    st, g = _layer_case(0.9)
    with_h, _ = paper2020_delta(g, st, P)
    without, _ = paper2020_delta(g, st, P, intra=False)
    twice = st.s.sum(axis=0) >= 2
    assert twice.any() and not np.allclose(with_h[:, twice], without[:, twice])
    np.testing.assert_array_equal(with_h[:, ~twice], without[:, ~twice])  # h = 0 without a second spike


def test_clamp_is_ten():
    grad_a = np.ones(3)
    du = np.array([0.05, 0.5, 0.0])
    s = np.array([1.0, 1.0, 1.0])
    np.testing.assert_array_equal(tsslbp_term_2020(grad_a, du, s), [10.0, 2.0, 10.0])


def test_float32_and_compact_state_agree_with_float64():
    st64, g64 = _layer_case(0.9, seed=3)
    x32 = np.random.default_rng(3).normal(0.9, 0.9, (5, 6, 40)).astype(np.float32)
    st32 = lif_forward(x32, P)
    _, compact = lif_compact(x32, P)
    np.testing.assert_array_equal(st32.s, lif_forward(x32.astype(np.float64), P).s)  # same spikes
    g32 = g64.astype(np.float32)
    d32, b32 = paper2020_delta(g32, st32, P)
    d64, b64 = paper2020_delta(g64, lif_forward(x32.astype(np.float64), P), P)
    assert d32.dtype == np.float32 and rel_err(d32, d64) < 1e-5
    np.testing.assert_array_equal(b32, b64)
    dc, bc = paper2020_delta(g32, compact, P)
    np.testing.assert_array_equal(dc, d32)
    np.testing.assert_array_equal(bc, b32)


# The CNN at full scale (every layer above the switch, 2 s of naive loops) runs in the integration tier; at
# half scale it has layers on both sides, in the unit tier.
@pytest.mark.parametrize("config,scale", [("FashionMNIST_400_400", 1.0),
                                          pytest.param("MNIST_CNN", 1.0, marks=pytest.mark.integration),
                                          ("MNIST_CNN", 0.5)])
def test_network_variant_equals_naive_network(config, scale, mnist_batch):
    """Network(variant="paper2020") in float64 against the naive network on real digits: loss, every
    layer's output and delta, every weight gradient.  Batch of 7: not a multiple of 5 (their code left
    such samples uninitialised; every sample is computed here).  Layers on both sides of the switch: the
    MLP's output layer and, with the CNN's weights halved, its first conv layer and output layer fire at
    most 0.1 (asserted); at full scale all the CNN's layers fire above it."""
    cfg = load_config(os.path.join(ROOT, "configs", "paper2020", f"{config}.yaml"))
    net = Network(cfg, dtype=np.float64, seed=5, variant="paper2020")
    net.set_weights({k: v * scale for k, v in net.weights.items()})
    x, y = mnist_batch(7)
    loss, grads, _ = net.gradients(x, y)
    ref = naive.network_gradients(cfg, net.weights, x, y, variant="paper2020")
    assert loss == pytest.approx(ref["loss"], rel=1e-10)
    outs, dels = net.layer_outputs(), net.layer_deltas()
    for name in ref["output"]:
        assert rel_err(outs[name], ref["output"][name]) < 1e-10, name
    for name in ref["delta"]:
        assert rel_err(dels[name], ref["delta"][name]) < 1e-10, name
    for name in ref["grad"]:
        assert np.abs(ref["grad"][name]).max() > 0
        assert rel_err(grads[name], ref["grad"][name]) < 1e-10, name
    rates = [r.state.firing_rate for r in net.records if r.state is not None]
    if scale != 1.0 or config != "MNIST_CNN":  # at scale 1 every CNN layer fires above 0.1
        assert min(rates) <= 0.1 < max(rates), rates


def test_network_variant_options():
    cfg = os.path.join(ROOT, "configs", "paper2020", "FashionMNIST_400_400.yaml")
    net = Network(cfg, variant="paper2020")
    np.testing.assert_allclose(net.target, [0, 0.5, 0.25, 0.625, 0.8125], rtol=0, atol=0)
    assert Network(cfg, variant="paper2020", target_filter="double").target[1] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="variant must be one of"):
        Network(cfg, variant="2019")
    with pytest.raises(ValueError, match="layer-wise warm-up switch"):
        Network(cfg, variant="paper2020", warmup="always")
    for other in (dict(), dict(variant="paper2020", backward="bptt")):
        with pytest.raises(ValueError, match="rate_threshold is the paper-era"):
            Network(cfg, rate_threshold=0.05, **other)
    with pytest.raises(ValueError, match="rate_threshold must be in"):
        Network(cfg, variant="paper2020", rate_threshold=2)


def test_network_rate_threshold_equals_naive_network(mnist_batch):
    """rate_threshold reaches every layer's rule: the MLP at initialisation has a layer at most 0.1 (its
    output) and one above; with the threshold at 0 every layer takes the TSSL-BP value, and the network
    equals the naive one given the same threshold (1e-10, as above) but not the default's gradients."""
    cfg = load_config(os.path.join(ROOT, "configs", "paper2020", "FashionMNIST_400_400.yaml"))
    x, y = mnist_batch(7)
    nets = {r: Network(cfg, dtype=np.float64, seed=5, variant="paper2020", rate_threshold=r) for r in (None, 0.0)}
    grads = {r: net.gradients(x, y)[1] for r, net in nets.items()}
    rates = [r.state.firing_rate for r in nets[0.0].records if r.state is not None]
    assert 0 < min(rates) <= 0.1 < max(rates), rates
    ref = naive.network_gradients(cfg, nets[0.0].weights, x, y, variant="paper2020",
                                  options=dict(rate_threshold=0.0))
    for name in ref["grad"]:
        assert rel_err(grads[0.0][name], ref["grad"][name]) < 1e-10, name
    assert any(rel_err(grads[0.0][k], grads[None][k]) > 1e-3 for k in ref["grad"])


def test_conv_init_is_kaiming_normal():
    cfg = load_config(os.path.join(ROOT, "configs", "paper2020", "MNIST_CNN.yaml"))
    w = Network(cfg, dtype=np.float64, seed=0, variant="paper2020").weights["conv_2"]  # fan-in 15*5*5 = 375
    assert w.std() == pytest.approx(np.sqrt(2 / 375), rel=0.03)  # 15,000 draws: 1% standard error of std
    assert np.abs(w).max() > np.sqrt(1 / 375)  # beyond the final init's uniform bound


def test_spike_error_with_reset_is_the_filter_of_g_plus_h():
    eps = np.array([0.5, 0.25, 0.125])
    g = np.array([1.0, 0.0, 2.0])
    h = np.array([0.0, 4.0, 0.0])
    # grad_a[k] = sum_{j>=k} eps[j-k] (g + h)[j]: [0.5*1 + 0.25*4 + 0.125*2, 0.5*4 + 0.25*2, 0.5*2]
    np.testing.assert_allclose(spike_error_with_reset(g, h, eps), [1.75, 2.5, 1.0], rtol=1e-15)


def test_validation():
    st, g = _layer_case(0.9)
    with pytest.raises(ValueError, match="state.u has shape"):
        paper2020_delta(g[:, :2], st, P)
    with pytest.raises(TypeError, match="float32 or float64"):
        paper2020_delta(g.astype(int), st, P)
    assert isinstance(st, NeuronState)


@pytest.mark.parametrize("mean", [0.9, -0.2], ids=["tsslbp-branch", "warm-up-branch"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("intra", [True, False])
def test_block_kernel_on_the_compact_state_equals_numpy(mean, dtype, intra):
    """The training path (CompactState -> _paper2020_kernel, blocks of 512 neurons, 1300 here) against the
    NumPy functions: the TSSL-BP branch bit for bit (the same operations); the warm-up branch to the exp:
    the kernel's float32 exp is correctly rounded, NumPy's float32 exp is not always (an ulp in ~14% of the
    values), so 1e-6 relative for float32 and 1e-14 for float64 (libm against NumPy)."""
    rng = np.random.default_rng(9)
    x = rng.normal(mean, 0.9, (5, 3, 1300)).astype(dtype)
    g = rng.normal(size=x.shape).astype(dtype)
    full = lif_forward(x, P)
    _, compact = lif_compact(x, P)
    d_np, b_np = paper2020_delta(g, full, P, intra=intra)
    d_k, b_k = paper2020_delta(g, compact, P, intra=intra)
    np.testing.assert_array_equal(b_k, b_np)
    if mean > 0.5:
        np.testing.assert_array_equal(d_k, d_np)
    else:
        assert rel_err(d_k, d_np) < (1e-6 if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_kernel_plain_python_twin(dtype):
    """_paper2020_kernel_py (what NUMBA_DISABLE_JIT=1 runs) against the compiled kernel: float32 bit for bit
    (pure arithmetic, polynomial exp), float64 to 1e-14 (libm's exp against NumPy's scalar exp)."""
    from reference import paper2020 as p20

    rng = np.random.default_rng(10)
    x = rng.normal(0.0, 0.9, (5, 700)).astype(dtype)
    g = rng.normal(size=x.shape).astype(dtype)
    _, compact = lif_compact(x, P)
    fast, branch = paper2020_delta(g, compact, P)
    calls = []
    original = p20._paper2020_kernel
    p20._paper2020_kernel = lambda *args: (calls.append(1), p20._paper2020_kernel_py(*args))
    try:
        slow, branch_py = paper2020_delta(g, compact, P)
    finally:
        p20._paper2020_kernel = original
    assert calls
    np.testing.assert_array_equal(branch_py, branch)
    if dtype == np.float32:
        np.testing.assert_array_equal(slow, fast)
    else:
        assert rel_err(slow, fast) < 1e-14
