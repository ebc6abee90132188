"""Core engine against its slow twins (tests/naive.py, written from paper-notes in the authors' layout).

Tolerances: float64 twins agree to round-off (relative 1e-12: the fast code sums in other orders, a
handful of ulps); float32 kernels against float64 twins use 1e-5 (float32 eps 1.2e-7 times the few
operations per term).  Spike decisions are compared exactly.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import naive
from reference.config import ConfigError, load_config
from reference.losses import kernel_target
from reference.network import Network
from reference.neuron import lif_forward, psp
from reference.optim import AdamW
from reference.params import NeuronParams
from reference.tsslbp import compose_delta, tsslbp_delta

ROOT = os.path.join(os.path.dirname(__file__), "..")
P = NeuronParams()
OPTIONS = [{}, {"inter": False}, {"intra": False}, {"warmup": "always"}, {"warmup": "never"}]


def mnist(n, split="test"):
    data = np.load(os.path.join(ROOT, "tests", "data", "mnist_fixture.npz"))
    x = ((data[f"{split}_images"][:n] / 255.0 - 0.1307) / 0.3081)[:, None]
    return x, data[f"{split}_labels"][:n].astype(np.int64)


def rel(a, b):
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


# ------------------------------------------------------------------------------------ golden values
def test_psp_golden_values():
    # a = eps * ones: a[t] = 1 - (2/3)^(t+1) = 1/3, 5/9, 19/27, 65/81, 211/243
    np.testing.assert_allclose(psp(np.ones(5), 3.0), [1 / 3, 5 / 9, 19 / 27, 65 / 81, 211 / 243], rtol=1e-15)


def test_kernel_targets_golden_values():
    # paper-notes section 2: desired [0,1,1,1,1], tau_s = 3, filtered twice (authors) or once (paper)
    np.testing.assert_allclose(kernel_target(5, 3, "double"), [0, 0.1111, 0.2593, 0.4074, 0.5391], atol=1e-4)
    np.testing.assert_allclose(kernel_target(5, 3, "single"), [0, 0.3333, 0.5556, 0.7037, 0.8025], atol=1e-4)


def test_lif_hand_trajectory_and_strict_threshold():
    # x = 0.5 constant, theta_m = 0.2: u = 0.5, 0.9, 1.22 (spike, reset), 0.5, 0.9
    st = lif_forward(np.full(5, 0.5), P)
    np.testing.assert_allclose(st.u, [0.5, 0.9, 1.22, 0.5, 0.9], rtol=1e-15)
    np.testing.assert_array_equal(st.s, [0, 0, 1, 0, 0])
    # membrane exactly at threshold does not fire (strict >)
    assert lif_forward(np.array([1.0, 0.0]), P).s[0] == 0


# ------------------------------------------------------------------------- neuron and TSSL-BP twins
def random_state(seed, shape, dtype, mean=0.4):
    rng = np.random.default_rng(seed)
    x = rng.normal(mean, 0.8, shape).astype(dtype)
    return x, lif_forward(x, P), rng.normal(0, 1, shape).astype(dtype)


@pytest.mark.parametrize("seed,shape", [(0, (5, 7, 3)), (1, (1, 11)), (2, (2, 5)), (3, (10, 40)), (4, (5,))])
@pytest.mark.parametrize("options", OPTIONS)
def test_tsslbp_kernel_equals_composition_and_naive(seed, shape, options):
    x, st, g = random_state(seed, shape, np.float64)
    u, du, s, a = naive.lif(np.moveaxis(x, 0, -1), P.tau_m, P.tau_s, P.threshold)
    np.testing.assert_array_equal(np.moveaxis(st.s, 0, -1), s)
    assert rel(np.moveaxis(st.u, 0, -1), u) < 1e-12
    fast, branch = tsslbp_delta(g, st, P, **options)
    slow, branch_slow = compose_delta(g, st, P, **options)
    ref = np.moveaxis(naive.tsslbp(np.moveaxis(g, 0, -1), u, du, s, a, P.tau_m, P.tau_s, P.threshold, **options), -1, 0)
    assert rel(fast, ref) < 1e-12 and rel(slow, ref) < 1e-12
    np.testing.assert_array_equal(branch, branch_slow)
    warm = branch == 0
    np.testing.assert_array_equal(branch[~warm] == 1, st.s[~warm] == 1)


@pytest.mark.parametrize("mean", [-5.0, 0.0, 50.0])  # all silent, mixed, firing at every step
def test_tsslbp_edge_regimes_float32(mean):
    x, st, g = random_state(7, (5, 300), np.float32, mean)
    if mean == 50.0:
        assert st.s.all()
    if mean == -5.0:
        assert not st.s.any()
    st64 = lif_forward(x.astype(np.float64), P)
    np.testing.assert_array_equal(st.s, st64.s)
    d32, _ = tsslbp_delta(g, st, P)
    d64, _ = tsslbp_delta(g.astype(np.float64), st64, P)
    assert d32.dtype == np.float32 and rel(d32, d64) < 1e-5


def test_kernels_run_as_plain_python_with_same_numbers(tmp_path):
    """NUMBA_DISABLE_JIT=1 runs the same kernels as Python: a tiny network gives the same numbers."""
    code = (
        "import sys, numpy as np; sys.path.insert(0, %r); sys.path.insert(0, %r);"
        "from test_core import mnist, TINY_CNN; from reference.network import Network;"
        "x, y = mnist(4); net = Network(TINY_CNN, seed=1); loss, g, out = net.gradients(x, y);"
        "np.savez(%r, out=out, **g)" % (ROOT, os.path.join(ROOT, "tests"), str(tmp_path / "py.npz"))
    )
    subprocess.run([sys.executable, "-c", code], env={**os.environ, "NUMBA_DISABLE_JIT": "1"}, check=True)
    x, y = mnist(4)
    net = Network(TINY_CNN, seed=1)
    _, grads, out = net.gradients(x, y)
    py = np.load(tmp_path / "py.npz")
    np.testing.assert_array_equal(py["out"], out)  # same spikes, same float32 arithmetic order
    for k, g in grads.items():
        assert rel(py[k], g) < 1e-6  # float32; only BLAS/threading order may differ


# ---------------------------------------------------------------------------------- whole network
TINY_CNN = {
    "Network": {"n_steps": 5, "dataset": "MNIST", "loss": "kernel", "n_class": 10, "tau_m": 5, "tau_s": 3},
    "Layers": {
        "conv_a": {"type": "conv", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "stride": 2,
                   "padding": 1, "weight_scale": 3, "threshold": 1},
        "pool": {"type": "pooling", "kernel_size": 2},
        "conv_b": {"type": "conv", "in_channels": 4, "out_channels": 6, "kernel_size": [3, 2], "dilation": 2,
                   "weight_scale": 3, "threshold": 1},
        "fc": {"type": "linear", "n_inputs": 6 * 3 * 5, "n_outputs": 10, "weight_scale": 2, "threshold": 1},
    },
}


def compare_with_naive(cfg, net, x, y, options=None):
    loss, grads, _ = net.gradients(x, y)
    ref = naive.network_gradients(cfg, net.weights, x, y, options)
    assert loss == pytest.approx(ref["loss"], rel=1e-12)
    outs, dels = net.layer_outputs(), net.layer_deltas()
    for name in ref["output"]:
        assert rel(outs[name], ref["output"][name]) < 1e-12, name
        assert rel(dels[name], ref["delta"][name]) < 1e-10, name
    for name in ref["grad"]:
        assert rel(grads[name], ref["grad"][name]) < 1e-10, name
    return net


@pytest.mark.parametrize("options", OPTIONS)
def test_tiny_cnn_stride_padding_dilation_and_options(options):
    cfg = load_config(TINY_CNN)
    net = Network(cfg, dtype=np.float64, seed=0, **options)
    x, y = mnist(3)
    compare_with_naive(cfg, net, x, y, options)


# ------------------------------------------------------------------------------------------ config
@pytest.mark.parametrize("edit,words", [
    (lambda c: c["Layers"]["FC_1"].update(n_inputs=641), ["FC_1", "n_inputs", "640"]),
    (lambda c: c["Layers"]["conv_2"].update(in_channels=14), ["conv_2", "in_channels", "15"]),
    (lambda c: c["Layers"]["output"].pop("n_outputs"), ["output", "n_outputs"]),
    (lambda c: c["Layers"]["output"].update(bias=True), ["output", "bias"]),
    (lambda c: c["Layers"]["pooling_1"].update(type="maxpool"), ["pooling_1", "type", "maxpool"]),
    (lambda c: c["Network"].pop("n_steps"), ["Network", "n_steps"]),
    (lambda c: c["Network"].update(loss="mse"), ["loss", "mse"]),
])
def test_config_errors_name_layer_and_key(edit, words):
    import yaml
    raw = yaml.safe_load(open(os.path.join(ROOT, "configs", "MNIST_CNN.yaml")))
    edit(raw)
    with pytest.raises(ConfigError) as err:
        load_config(raw)
    for w in words:
        assert w in str(err.value)


def test_all_configs_load():
    """Every shipped config loads, the paper-era ones too, and they differ from the final ones only in
    the keys paper-notes section 7 lists."""
    names = []
    for folder in ("configs", os.path.join("configs", "paper2020")):
        for f in sorted(os.listdir(os.path.join(ROOT, folder))):
            if f.endswith(".yaml"):
                load_config(os.path.join(ROOT, folder, f))
                names.append(f)
    assert len(names) >= 11
    differs = {"MNIST_CNN": {"tau_s", "batch_size"}, "FashionMNIST_400_400": {"tau_s", "lr"},
               "FashionMNIST_CNN": {"tau_s", "tau_m", "loss"}, "CIFAR10": {"tau_s"}, "NMNIST_CNN": set()}
    for name, keys in differs.items():
        final = load_config(os.path.join(ROOT, "configs", f"{name}.yaml"))
        old = load_config(os.path.join(ROOT, "configs", "paper2020", f"{name}.yaml"))
        changed = {k for k in final.raw["Network"] if final.raw["Network"][k] != old.raw["Network"].get(k)}
        assert changed == keys, name
        assert final.raw["Layers"] == old.raw["Layers"], name


# -------------------------------------------------------------------------------------------- optim
@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_adamw_and_clipping_equal_pytorch(dtype, tol):
    torch = pytest.importorskip("torch", reason="pip install torch to compare AdamW with PyTorch's")
    from reference.optim import clip_grad_norm
    rng = np.random.default_rng(0)
    w = {"a": rng.normal(size=(7, 5)).astype(dtype), "b": rng.normal(size=(3, 2, 2)).astype(dtype)}
    tw = [torch.tensor(v.copy(), requires_grad=True) for v in w.values()]
    opt, topt = AdamW(w, lr=5e-3), torch.optim.AdamW(tw, lr=5e-3, betas=(0.9, 0.999))
    for _ in range(5):
        g = {k: rng.normal(size=v.shape).astype(dtype) for k, v in w.items()}
        for t, gv in zip(tw, g.values()):
            t.grad = torch.tensor(gv.copy())
        n = clip_grad_norm(g, 1.0)
        tn = torch.nn.utils.clip_grad_norm_(tw, 1.0)
        assert n == pytest.approx(float(tn), rel=1e-6)
        opt.step(g)
        topt.step()
    for v, t in zip(w.values(), tw):
        assert rel(v, t.detach().numpy()) < tol


def test_fast_exp_is_float32_exact_to_one_ulp():
    """The vectorisable exp of the warm-up (float32 path) against libm's exp on [-8, 8]."""
    from reference.tsslbp import _exp_clipped, _exp_clipped_py
    z = np.linspace(-8, 8, 200_001).astype(np.float32)
    fast = np.array([_exp_clipped(v) for v in z[::50]])
    exact = np.exp(z[::50].astype(np.float64))
    # truncation of the degree-10 Taylor series at |z/16| = 0.5, times 16 for the squarings: 3.2e-10
    assert np.max(np.abs(fast / exact - 1)) < 3.3e-10
    f32 = fast.astype(np.float32)
    ulps = np.abs(f32.view(np.int32) - exact.astype(np.float32).view(np.int32))
    assert ulps.max() <= 1  # float32: the correctly rounded value, or its neighbour in rare ties
    assert _exp_clipped_py(np.float32(2.0)) == pytest.approx(np.exp(2.0), rel=1e-12)


def test_zero_membrane_increment_is_clamped_not_raised():
    # du == 0 exactly (all-zero input): 1/du = inf must clamp like the authors' clamp(-1/du, -8, 0)
    x = np.zeros((5, 4), np.float32)
    st = lif_forward(x, P)
    d, _ = tsslbp_delta(np.ones_like(x), st, P, warmup="never")
    assert np.all(np.isfinite(d)) and np.all(d == 0)


def test_adamw_equals_numpy_twin():
    """AdamW (Numba) against the textbook formula in NumPy float64, 5 steps (no torch needed)."""
    from reference.optim import _sum_squares, _sum_squares_py, clip_grad_norm
    rng = np.random.default_rng(1)
    w = {"a": rng.normal(size=(6, 4))}
    ref, m, v = w["a"].copy(), np.zeros((6, 4)), np.zeros((6, 4))
    opt, lr, b1, b2, eps, wd = AdamW(w, lr=1e-2), 1e-2, 0.9, 0.999, 1e-8, 0.01
    for t in range(1, 6):
        g = rng.normal(size=(6, 4))
        opt.step({"a": g.copy()})
        ref *= 1 - lr * wd
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        ref -= lr / (1 - b1 ** t) * m / (np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps)
    assert rel(w["a"], ref) < 1e-13
    x = rng.normal(size=1000)
    assert _sum_squares(x) == pytest.approx(np.sum(x * x), rel=1e-13) == _sum_squares_py(x)
    g = {"a": np.full(4, 3.0), "b": np.full(9, 4.0)}  # norm sqrt(4*9 + 9*16) = sqrt(180)
    assert clip_grad_norm(g, 1.0) == pytest.approx(np.sqrt(180))
    assert np.sqrt(sum(np.sum(x * x) for x in g.values())) == pytest.approx(1.0, rel=1e-5)


def test_im2col_col2im_are_adjoint():
    from reference.layers import _col2im, _im2col
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 9, 8, 4))
    geo = (3, 2, 2, 1, 1, 2, 2, 1)  # kh, kw, stride, padding, dilation
    oh, ow = (9 + 2 - 2 * 2 - 1) // 2 + 1, (8 + 4 - 1 - 1) // 1 + 1
    cols = np.empty((3 * oh * ow, 3 * 2 * 4))
    _im2col(x, *geo, oh, ow, cols)
    y = rng.normal(size=cols.shape)
    back = np.zeros_like(x)
    _col2im(y, *geo, oh, ow, back)
    assert np.sum(cols * y) == pytest.approx(np.sum(x * back), rel=1e-12)  # <Ax, y> = <x, A^T y>
