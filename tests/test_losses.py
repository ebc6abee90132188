"""Losses on the output PSP (reference.losses): values, gradients, desired trains, prediction, validation.

Tolerances: direct float64 formulas 1e-12 relative; finite differences as stated at each check (the
kernel loss is quadratic, so central differences are exact up to round-off; softmax has an h^2 term).
"""
import numpy as np
import pytest

import naive
from reference.losses import (
    count_loss, desired_spike_train, kernel_loss, kernel_target, output_counts, predict, softmax_loss,
)
from reference.network import Network
from reference.neuron import psp, psp_kernel

T, N, C = 5, 4, 6


def random_output(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return rng.random((T, N, C)).astype(dtype), rng.integers(0, C, N)


# ----------------------------------------------------------------------------------- desired trains
@pytest.mark.parametrize("n_steps,expected", [
    (5, [0, 1, 1, 1, 1]),
    (10, [0, 1] * 5),
    (20, [0, 1] * 10),
    (8, [0, 1, 1, 1, 1, 1, 1, 1]),
    (1, [0]),
    (15, [0] + [1] * 14),  # the authors' code fails for T = 15; our documented generalisation
])
def test_desired_spike_train(n_steps, expected):
    d = desired_spike_train(n_steps)
    np.testing.assert_array_equal(d, expected)
    assert d.dtype == np.float64


def test_custom_pattern_and_its_validation():
    np.testing.assert_array_equal(desired_spike_train(5, [0, 1, 0, 1, 1]), [0, 1, 0, 1, 1])  # the paper's
    t = kernel_target(5, 3.0, "double", pattern=[0, 1, 0, 1, 1], dtype=np.float64)
    np.testing.assert_allclose(t, psp(psp(np.array([0, 1, 0, 1, 1.0]), 3.0), 3.0), rtol=1e-15)  # same recursion
    for bad in ([0, 1, 1, 1], [0, 2, 1, 1, 1], [0, 0.5, 1, 1, 1]):
        with pytest.raises(ValueError, match="pattern"):
            desired_spike_train(5, bad)
    with pytest.raises(ValueError, match="filter"):
        kernel_target(5, 3.0, "triple")


@pytest.mark.parametrize("n_steps", [5, 8, 10])
def test_kernel_target_double_equals_naive(n_steps):
    if n_steps == 10:
        d = np.array([0, 1] * 5, float)
        ref = psp(psp(d, 3.0), 3.0)
    else:
        ref = naive.desired_double_target(n_steps, 3.0)
    np.testing.assert_allclose(kernel_target(n_steps, 3.0, dtype=np.float64), ref, rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------------ kernel
def test_kernel_loss_value_and_gradient_equal_direct_formula():
    a, labels = random_output(1)
    target = kernel_target(T, 3.0, dtype=np.float64)
    loss, g = kernel_loss(a, labels, target)
    full = np.zeros_like(a)
    for n in range(N):
        full[:, n, labels[n]] = target
    assert loss == pytest.approx(0.5 * np.sum((a - full) ** 2), rel=1e-12)  # float64 sums, other order
    np.testing.assert_array_equal(g, a - full)  # one subtraction: exact
    assert g.dtype == a.dtype


def test_kernel_loss_gradient_by_finite_differences():
    a, labels = random_output(2)
    target = kernel_target(T, 3.0, dtype=np.float64)
    _, g = kernel_loss(a, labels, target)
    h = 1e-3
    rng = np.random.default_rng(3)
    for _ in range(20):
        idx = tuple(rng.integers(0, s) for s in a.shape)
        ap, am = a.copy(), a.copy()
        ap[idx] += h
        am[idx] -= h
        fd = (kernel_loss(ap, labels, target)[0] - kernel_loss(am, labels, target)[0]) / (2 * h)
        # quadratic in a: central differences exact but for round-off, eps * L / h ~ 2e-16 * 10 / 1e-3 = 2e-12
        assert fd == pytest.approx(g[idx], abs=1e-9)


def test_kernel_loss_float32():
    a, labels = random_output(4, np.float32)
    loss, g = kernel_loss(a, labels, kernel_target(T, 3.0))
    loss64, g64 = kernel_loss(a.astype(np.float64), labels, kernel_target(T, 3.0, dtype=np.float64))
    assert g.dtype == np.float32
    assert loss == pytest.approx(loss64, rel=1e-6)  # float32 target and subtraction, float64 sum
    np.testing.assert_allclose(g, g64, atol=1e-7)  # float32 round-off of O(1) values


# ------------------------------------------------------------------------------------------- count
def test_count_loss_hand_example_masks_harmless_direction():
    # a[0] carries the whole count (sums exact); labels: sample 0 -> class 0, sample 1 -> class 2
    counts = np.array([[5.0, 0.5, 3.0],   # label 0 above desired 4: harmless -> 0; class 1 below 1: harmless -> 0;
                       [1.0, 6.0, 2.0]])  # class 2 above 1: (3-1)/5 = 0.4.  Sample 1: class 0 at 1: 0;
    a = np.zeros((T, 2, 3))               # class 1: (6-1)/5 = 1.0; label 2 below 4: (2-4)/5 = -0.4
    a[0] = counts
    loss, g = count_loss(a, np.array([0, 2]), desired_count=4, undesired_count=1)
    expected = np.array([[0.0, 0.0, 0.4], [0.0, 1.0, -0.4]])
    for t in range(T):
        np.testing.assert_allclose(g[t], expected, rtol=1e-15, atol=0)  # the same delta at every step
    # L = 1/2 sum_{n,i,t} delta^2 = 0.5 * 5 * (0.16 + 1.0 + 0.16) = 3.3
    assert loss == pytest.approx(3.3, rel=1e-14)


def test_count_loss_of_spikes_vs_psp_and_float32():
    a, labels = random_output(5, np.float32)
    loss, g = count_loss(a, labels, 4, 1)
    assert g.dtype == np.float32 and g.shape == a.shape
    loss64, g64 = count_loss(a.astype(np.float64), labels, 4, 1)
    assert loss == pytest.approx(loss64, rel=1e-5)  # float32 sums of 5 values
    np.testing.assert_allclose(g, g64, atol=1e-6)


# ----------------------------------------------------------------------------------------- softmax
def test_softmax_loss_value_and_gradient_by_finite_differences():
    a, labels = random_output(6)
    loss, g = softmax_loss(a, labels)
    z = a.sum(axis=0)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(N), labels])), rel=1e-12)  # direct formula
    h = 1e-6
    rng = np.random.default_rng(7)
    for _ in range(20):
        idx = tuple(rng.integers(0, s) for s in a.shape)
        ap, am = a.copy(), a.copy()
        ap[idx] += h
        am[idx] -= h
        fd = (softmax_loss(ap, labels)[0] - softmax_loss(am, labels)[0]) / (2 * h)
        # truncation h^2/6 |L'''| <~ 1e-12/6, round-off eps * L / h ~ 2e-16 * 2 / 1e-6 = 4e-10: atol 1e-8
        assert fd == pytest.approx(g[idx], abs=1e-8)


# ----------------------------------------------------------------------------------------- predict
def test_predict_is_argmax_of_summed_psp():
    eps = psp_kernel(T, 3.0)
    a = np.zeros((T, 2, 3))
    # sample 0: class 0 spikes at t = 0 (PSP sum 1 - (2/3)^5 = 0.868), class 1 spikes at t = 4 (sum 1/3),
    # class 2 twice late (t = 3, 4: sum 1/3 + 1/3 * 2/3 + 1/3 = 0.889): class 2 wins
    a[:, 0, 0] = eps
    a[4, 0, 1] = eps[0]
    a[3:, 0, 2] = eps[:2]
    a[4, 0, 2] += eps[0]
    # sample 1: one spike each; the earliest wins on the PSP sum, the spike counts tie
    a[:, 1, 1] = eps
    a[1:, 1, 0] = eps[:4]
    a[2:, 1, 2] = eps[:3]
    np.testing.assert_array_equal(predict(a), [2, 1])
    np.testing.assert_array_equal(output_counts(a), a.sum(axis=0))
    spikes = np.zeros_like(a)
    spikes[0, 0, 0] = spikes[4, 0, 1] = spikes[3, 0, 2] = spikes[4, 0, 2] = 1
    spikes[0, 1, 1] = spikes[1, 1, 0] = spikes[2, 1, 2] = 1
    np.testing.assert_array_equal(predict(a, spikes, "spikes"), [2, 0])  # count tie: argmax takes the first
    assert predict(a).dtype == np.int64
    with pytest.raises(ValueError, match="count_of"):
        predict(a, count_of="rate")
    with pytest.raises(ValueError, match="spikes"):
        predict(a, count_of="spikes")


# -------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize("loss_fn", [
    lambda a, y: kernel_loss(a, y, np.zeros(T)),
    lambda a, y: count_loss(a, y, 4, 1),
    softmax_loss,
])
@pytest.mark.parametrize("labels,match", [
    (np.array([0, 1, 2]), "labels must be integers of shape"),  # wrong length
    (np.array([0.0, 1.0, 2.0, 3.0]), "labels must be integers"),  # floats
    (np.array([[0, 1, 2, 3]]), "labels must be integers of shape"),  # 2-D
    (np.array([0, 1, 2, C]), "labels must lie in"),  # too large
    (np.array([0, -1, 2, 3]), "labels must lie in"),  # negative
])
def test_label_validation(loss_fn, labels, match):
    a, _ = random_output(8)
    with pytest.raises(ValueError, match=match):
        loss_fn(a, labels)


def test_output_must_be_three_dimensional():
    with pytest.raises(ValueError, match=r"\(T, N, n_class\)"):
        kernel_loss(np.zeros((T, N)), np.zeros(N, int), np.zeros(T))


# --------------------------------------------------------------------------- through the network
@pytest.mark.parametrize("loss_name", ["kernel", "count", "softmax"])
def test_network_dispatches_to_the_config_loss(loss_name):
    cfg = {
        "Network": {"n_steps": 5, "dataset": "MNIST", "loss": loss_name, "n_class": 10, "tau_m": 5, "tau_s": 3,
                    "desired_count": 4, "undesired_count": 1},
        "Layers": {"output": {"type": "linear", "n_inputs": 784, "n_outputs": 10, "weight_scale": 3, "threshold": 1}},
    }
    net = Network(cfg, dtype=np.float64, seed=0)
    a, labels = np.random.default_rng(9).random((5, 3, 10)), np.array([1, 7, 3])
    loss, g = net.loss(a, labels)
    ref = {"kernel": lambda: kernel_loss(a, labels, kernel_target(5, 3.0, dtype=np.float64)),
           "count": lambda: count_loss(a, labels, 4, 1),
           "softmax": lambda: softmax_loss(a, labels)}[loss_name]()
    assert loss == ref[0]  # the same function on the same arrays: exact
    np.testing.assert_array_equal(g, ref[1])


@pytest.mark.parametrize("loss", ["kernel", "count", "softmax"])
def test_loss_sum_is_the_sum_of_per_sample_losses(loss):
    """Train and test losses are reported per sample from Network.loss_sum: for every loss it must be the
    sum of the one-sample losses (softmax is a batch mean, as the authors' F.cross_entropy)."""
    from reference.network import Network

    cfg = {"Network": {"n_steps": 5, "tau_m": 5, "tau_s": 3, "n_class": 4, "loss": loss, "dataset": "MNIST",
                       "desired_count": 4, "undesired_count": 1},
           "Layers": {"out": {"type": "linear", "n_inputs": 784, "n_outputs": 4, "threshold": 1}}}
    net = Network(cfg, dtype=np.float64, seed=1)
    rng = np.random.default_rng(0)
    out = np.abs(rng.normal(size=(5, 6, 4))) * 0.4
    y = rng.integers(0, 4, size=6)
    batch = net.loss_sum(net.loss(out, y)[0], 6)
    singles = sum(net.loss_sum(net.loss(out[:, i:i + 1], y[i:i + 1])[0], 1) for i in range(6))
    assert batch == pytest.approx(singles, rel=1e-12)  # float64, six terms
