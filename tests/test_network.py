"""Whole networks (reference.network) against naive.network_gradients on real MNIST fixture images.

Tolerances: float64 network against the float64 naive twin, 1e-10 relative to each layer's largest value
for outputs, deltas and weight gradients (the GEMMs, im2col and fused kernels sum in other orders: ulps
per operation, accumulated over ~6 layers and a few hundred terms per sum; spike decisions must agree,
else the error would be O(1)).  The plain-Python run (NUMBA_DISABLE_JIT=1) against the compiled run, both
float32: spikes and PSPs bit for bit, gradients 1e-6 (float32 round-off; see that test).
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import naive
from conftest import ROOT, TESTS_DIR, load_mnist, rel_err
from reference.config import load_config
from reference.network import Network, to_authors_layout
from reference.neuron import psp
from reference.optim import AdamW, train_step

TOL = 1e-10

TINY = {  # conv 1->4 k3 stride 2 padding 1 (28 -> 14), pooling 2 (-> 7), linear 196 -> 10, T = 5
    "Network": {"n_steps": 5, "dataset": "MNIST", "loss": "kernel", "n_class": 10, "tau_m": 5, "tau_s": 3},
    "Layers": {
        "conv": {"type": "conv", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "stride": 2, "padding": 1,
                 "weight_scale": 3, "threshold": 1},
        "pool": {"type": "pooling", "kernel_size": 2},
        "output": {"type": "linear", "n_inputs": 4 * 7 * 7, "n_outputs": 10, "weight_scale": 3, "threshold": 1},
    },
}
TINY_SEED = 2  # with these weight scales all three TSSL-BP branches occur in every spiking layer


def compare_with_naive(cfg, net, x, y, options=None):
    """Network (float64) against naive.network_gradients on the same weights; returns the naive result."""
    loss, grads, out = net.gradients(x, y)
    ref = naive.network_gradients(cfg, net.weights, x, y, options)
    assert loss == pytest.approx(ref["loss"], rel=TOL)
    outs, dels = net.layer_outputs(), net.layer_deltas()
    assert set(outs) == set(ref["output"]) and set(grads) == set(ref["grad"])
    for name in ref["output"]:
        assert outs[name].shape == ref["output"][name].shape, name
        assert rel_err(outs[name], ref["output"][name]) < TOL, f"output of {name}"
    for name in ref["delta"]:
        assert rel_err(dels[name], ref["delta"][name]) < TOL, f"delta of {name}"
    for name in ref["grad"]:
        assert grads[name].shape == net.weights[name].shape
        assert np.abs(ref["grad"][name]).max() > 0, f"{name}: zero gradient, the check would be empty"
        assert rel_err(grads[name], ref["grad"][name]) < TOL, f"gradient of {name}"
    return ref


# The naive network is slow (Python loops over neurons and steps): 3 s per MNIST CNN comparison on 2 cores
# here.  The unit tier compares the MLP at both points and the MNIST CNN at initialisation; the MNIST CNN
# after training and the Fashion-MNIST CNN (MNIST_CNN's code path at 6x the size: 14 s) run in the
# integration tier.
@pytest.mark.parametrize("config,trained", [
    ("FashionMNIST_400_400", False), ("FashionMNIST_400_400", True), ("MNIST_CNN", False),
    pytest.param("MNIST_CNN", True, marks=pytest.mark.integration),
    pytest.param("FashionMNIST_CNN", False, marks=pytest.mark.integration),
    pytest.param("FashionMNIST_CNN", True, marks=pytest.mark.integration)])
def test_gradients_equal_naive_at_init_and_after_training(config, trained):
    cfg = load_config(os.path.join(ROOT, "configs", f"{config}.yaml"))
    net = Network(cfg, dtype=np.float64, seed=0)
    x, y = load_mnist(8)
    if not trained:
        compare_with_naive(cfg, net, x, y)
        return
    xt, yt = load_mnist(60, "train")
    # lr 10x the config's so that 3 steps are enough to make the output layer fire on the test images
    opt = AdamW(net.weights, lr=5e-3)
    for i in range(3):
        loss, out, norm = train_step(net, xt[20 * i:20 * (i + 1)], yt[20 * i:20 * (i + 1)], opt)
        assert np.isfinite(loss) and norm > 0
    assert opt.step_count == 3
    for w in net.weights.values():
        assert np.abs(w).max() <= 4.0  # weights clipped after every step
    compare_with_naive(cfg, net, x, y)
    assert net.records[-1].state.s.any(), "after 3 training steps the output layer should fire"


OPTIONS = [{}, {"inter": False}, {"intra": False}, {"inter": False, "intra": False},
           {"warmup": "always"}, {"warmup": "never"}]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()) or "default")
def test_tiny_network_options_equal_naive(options, mnist_batch):
    cfg = load_config(TINY)
    net = Network(cfg, dtype=np.float64, seed=TINY_SEED, **options)
    x, y = mnist_batch(8)
    compare_with_naive(cfg, net, x, y, options)
    for rec in net.records:
        if rec.state is not None:
            assert rec.state.s.any(), f"layer {rec.name} is silent: the check would not see spikes"
    if not options:
        for rec in net.records:
            if rec.branch is not None:
                assert set(np.unique(rec.branch)) == {0, 1, 2}, rec.name


def test_layer_records_and_authors_layout(mnist_batch):
    cfg = load_config(TINY)
    net = Network(cfg, dtype=np.float64, seed=TINY_SEED)
    x, y = mnist_batch(3)
    _, grads, out = net.gradients(x, y)
    assert out.shape == (5, 3, 10)
    outs = net.layer_outputs()
    assert outs["conv"].shape == (3, 4, 14, 14, 5) and outs["pool"].shape == (3, 4, 7, 7, 5)
    assert outs["output"].shape == (3, 10, 1, 1, 5)
    np.testing.assert_array_equal(outs["output"][:, :, 0, 0, :], out.transpose(1, 2, 0))
    np.testing.assert_array_equal(to_authors_layout(net.records[0].state.s)[:, :, 0, 0, 0],
                                  net.records[0].state.s[0, :, 0, 0, :])  # (T,N,H,W,C) -> (N,C,H,W,T)
    assert list(grads) == ["conv", "output"]
    with pytest.raises(RuntimeError, match="forward"):
        Network(cfg, seed=0).backward(np.zeros((5, 3, 10)))


# -------------------------------------------------------------------------------------- set_weights
def test_set_weights_copies_and_validates():
    net = Network(TINY, seed=0)
    w = {k: np.full(v.shape, 0.01) for k, v in net.weights.items()}
    net.set_weights(w)
    assert net.weights["conv"].dtype == np.float32  # cast into the network's own arrays
    np.testing.assert_array_equal(net.weights["output"], np.float32(0.01))
    w["conv"][...] = 5.0
    assert net.weights["conv"].max() == np.float32(0.01)  # copied, not aliased
    with pytest.raises(ValueError, match=r"unknown layer.*'fc'"):
        net.set_weights({"fc": np.zeros((10, 196))})
    with pytest.raises(ValueError, match=r"'output'.*\(10, 195\).*\(10, 196\)"):
        net.set_weights({"output": np.zeros((10, 195))}, strict=False)
    bad = np.zeros((4, 1, 3, 3))
    bad[1, 0, 2, 2] = np.nan
    with pytest.raises(ValueError, match="'conv'.*NaN"):
        net.set_weights({"conv": bad}, strict=False)
    with pytest.raises(ValueError, match="no weights given.*output"):
        net.set_weights({"conv": np.zeros((4, 1, 3, 3))})
    with pytest.raises(ValueError, match="floating point"):
        net.set_weights({"conv": np.zeros((4, 1, 3, 3), int)}, strict=False)
    np.testing.assert_array_equal(net.weights["conv"], np.float32(0.01))  # failed calls changed nothing here


def test_set_weights_failure_leaves_all_weights_unchanged():
    """'Copy weights in after checking names, shapes and values': a bad layer must not leave the network
    half loaded (earlier layers from the new weights, later ones old)."""
    net = Network(TINY, seed=0)
    before = {k: v.copy() for k, v in net.weights.items()}
    bad = np.zeros((10, 196))
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="'output'.*NaN"):
        net.set_weights({"conv": np.full((4, 1, 3, 3), 0.5), "output": bad})
    for name, w in before.items():
        np.testing.assert_array_equal(net.weights[name], w, err_msg=name)  # untouched: exact


# ------------------------------------------------------------------------------------------- encode
def test_encode_accepts_images_and_spike_trains():
    net = Network(TINY, dtype=np.float64, seed=0)
    x, _ = load_mnist(2)
    a0 = net.encode(x)
    assert a0.shape == (5, 2, 28, 28, 1) and a0.dtype == np.float64
    ref = psp(np.repeat(x.transpose(0, 2, 3, 1)[None], 5, axis=0), 3.0)  # image repeated over T, filtered
    np.testing.assert_array_equal(a0, ref)  # same filter on the same values: exact
    x5 = np.repeat(x[..., None], 5, axis=-1)  # (N, C, H, W, T)
    np.testing.assert_array_equal(net.encode(x5), a0)
    spikes = (np.random.default_rng(0).random((2, 1, 28, 28, 5)) < 0.3).astype(np.float64)
    np.testing.assert_array_equal(net.encode(spikes), psp(spikes.transpose(4, 0, 2, 3, 1), 3.0))
    assert Network(TINY, seed=0).encode(x).dtype == np.float32


@pytest.mark.parametrize("shape,match", [
    ((2, 28, 28), "must be"),
    ((2, 2, 28, 28), "expects"),
    ((2, 1, 27, 28), "expects"),
    ((2, 1, 28, 28, 4), "expected"),
    ((2, 1, 28, 28, 5, 1), "must be"),
])
def test_encode_rejects_wrong_shapes(shape, match):
    net = Network(TINY, seed=0)
    with pytest.raises(ValueError, match=match):
        net.encode(np.zeros(shape))


def test_encode_rejects_nan():
    x = np.zeros((1, 1, 28, 28))
    x[0, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Network(TINY, seed=0).encode(x)


# ------------------------------------------------------------------------------ NUMBA_DISABLE_JIT=1
def tiny_float32_run():
    """Gradients and every layer's records of the tiny network, float32, 4 fixture images, fixed seed."""
    x, y = load_mnist(4)
    net = Network(TINY, dtype=np.float32, seed=TINY_SEED)
    loss, grads, out = net.gradients(x, y)
    res = {"loss": np.float64(loss), "out": out}
    for rec in net.records:
        res["out_" + rec.name] = rec.out
        res["delta_" + rec.name] = rec.delta
        if rec.state is not None:
            res["s_" + rec.name] = rec.state.s
            res["u_" + rec.name] = rec.state.u
            res["branch_" + rec.name] = rec.branch
    for k, g in grads.items():
        res["grad_" + k] = g
    return res


SUBPROCESS_CODE = (
    "import sys; import numpy as np; sys.path.insert(0, {tests!r}); "
    "from reference import _jit; assert _jit.JIT_DISABLED, 'NUMBA_DISABLE_JIT was not seen'; "
    "from test_network import tiny_float32_run; np.savez({out!r}, **tiny_float32_run())"
)


def test_plain_python_kernels_give_same_numbers(tmp_path):
    """The same gradients with every kernel run as plain Python (NUMBA_DISABLE_JIT=1) in a subprocess."""
    out_file = str(tmp_path / "py.npz")
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1", "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SUBPROCESS_CODE.format(tests=TESTS_DIR, out=out_file)], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    py = dict(np.load(out_file))
    compiled = tiny_float32_run()
    assert set(py) == set(compiled)
    assert compiled["grad_output"].dtype == np.float32
    for key in compiled:
        if key.startswith(("s_", "branch_", "out", "u_")):
            # the forward and the branch choice: the same float32 operations in the same order -> bit for bit
            np.testing.assert_array_equal(py[key], compiled[key], err_msg=key)
        else:
            # loss, deltas and gradients: float32 throughout; allowed differences are BLAS/thread summation
            # orders, ~sqrt(terms) * 6e-8 relative: 1e-6
            assert rel_err(py[key], compiled[key]) < 1e-6, key
    assert compiled["s_output"].any() and compiled["s_conv"].any()


@pytest.mark.parametrize("encoding,division", [("authors", "true"), ("authors-cuda", "reciprocal")])
def test_input_encoding_option_uses_the_authors_order(encoding, division):
    """``input_encoding`` swaps the input filter for the authors' order; same filter to a few float32 ulp."""
    from reference.neuron import encode_input

    cfg = os.path.join(os.path.dirname(__file__), "..", "configs", "MNIST_CNN.yaml")
    x, _ = load_mnist(4, dtype=np.float32)
    ours, theirs = Network(cfg), Network(cfg, input_encoding=encoding)
    rep = np.ascontiguousarray(np.broadcast_to(x.transpose(0, 2, 3, 1)[None], (5, 4, 28, 28, 1)))
    np.testing.assert_array_equal(theirs.encode(x), encode_input(rep, 3.0, division=division))
    # 1-3 ulp of values up to ~2.8 (float32 eps 1.2e-7): within 1e-6 absolute
    np.testing.assert_allclose(theirs.encode(x), ours.encode(x), rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="input_encoding"):
        Network(cfg, input_encoding="gpu")


# ------------------------------------------------------------------------------- inference path
@pytest.mark.parametrize("config", ["MNIST_CNN", "FashionMNIST_400_400", TINY])
def test_infer_equals_forward_bit_for_bit_and_records_nothing(config, mnist_batch):
    """Network.infer (forward-only: chunked im2col + GEMM, no recording) gives the output PSP of
    forward(train=False) bit for bit on real digits, also with a chunk of a few images (chunk_bytes small,
    so the GEMM runs on row blocks of the column matrix), and leaves the records of the last forward alone.
    Tolerance 0 is a measured property of OpenBLAS on these products, not a guarantee of BLAS (Conv2d.infer
    and Conv2d.input_grad say why): this test is where a BLAS that rounds by product height shows."""
    cfg = load_config(os.path.join(ROOT, "configs", f"{config}.yaml")) if isinstance(config, str) else load_config(config)
    net = Network(cfg, seed=3)
    x, _ = mnist_batch(40, dtype=np.float32)
    expected = net.forward(x, train=False)
    records = net.records
    np.testing.assert_array_equal(net.infer(x), expected)  # tolerance 0
    assert net.records is records
    out, spikes = net.infer(x, spikes=True)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(spikes, net.records[-1].state.spikes.reshape(out.shape))
    from reference import layers
    original = layers.Conv2d.infer.__defaults__
    layers.Conv2d.infer.__defaults__ = (3 * 4096,)  # chunks of one or a few images
    try:
        np.testing.assert_array_equal(net.infer(x), expected)
    finally:
        layers.Conv2d.infer.__defaults__ = original


def test_infer_predictions_with_spike_counts(mnist_batch):
    net = Network(os.path.join(ROOT, "configs", "MNIST_CNN.yaml"), seed=1, count_of="spikes")
    x, _ = mnist_batch(20, dtype=np.float32)
    out_fwd = net.forward(x)
    expected = net.predict(out_fwd)
    out, spikes = net.infer(x, spikes=True)
    np.testing.assert_array_equal(net.predict(out, spikes), expected)


@pytest.mark.parametrize("variant", ["final", "paper2020"])
def test_numba_thread_count_changes_no_float(variant):
    """Forward, deltas and gradients are the same bits on 1 and 2 Numba threads: every parallel kernel
    cuts its neurons into chunks that each own their neurons, and no kernel reduces across chunks.

    (OpenBLAS's thread count is another matter: with OPENBLAS_NUM_THREADS=2 some backward products round
    differently, ~5e-7 relative; results/README.md.  This test keeps BLAS as it is and moves only Numba.)
    """
    import numba

    from reference import _jit
    if _jit.JIT_DISABLED or numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs compiled kernels and at least 2 Numba threads")
    folder = "configs/paper2020" if variant == "paper2020" else "configs"
    cfg = load_config(os.path.join(ROOT, folder, "FashionMNIST_CNN.yaml"))
    net = Network(cfg, dtype=np.float32, seed=1, variant=variant)
    x, y = load_mnist(4)
    conv_1 = 4 * 32 * 28 * 28  # neurons of the first layer in one time step: 24 chunks of 4096 fit
    before = numba.get_num_threads()
    runs = []
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            loss, grads, _ = net.gradients(x, y)
            runs.append((_jit.n_chunks(conv_1), loss, grads, net.layer_outputs(), net.layer_deltas()))
    finally:
        numba.set_num_threads(before)
    (c1, loss1, g1, o1, d1), (c2, loss2, g2, o2, d2) = runs
    assert (c1, c2) == (4, 8)  # the chunking really differs, so the check is not empty
    assert loss1 == loss2
    for name in g1:
        assert np.abs(g1[name]).max() > 0, name
        np.testing.assert_array_equal(g1[name], g2[name], err_msg=f"gradient of {name}")  # tolerance 0
    for name in o1:
        np.testing.assert_array_equal(o1[name], o2[name], err_msg=f"output of {name}")
    for name in d1:
        np.testing.assert_array_equal(d1[name], d2[name], err_msg=f"delta of {name}")
