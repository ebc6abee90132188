"""The training step's optimiser pieces (reference.optim) against PyTorch and their plain-Python twins.

Tolerances: against torch.optim.AdamW after 5 steps, float64 1e-12 relative to the largest weight
(PyTorch updates the first moment with ``lerp`` and we with ``b1 m + (1-b1) g``: an ulp per step),
float32 1e-6 (the same ulp differences in float32, 6e-8, over 5 steps, times lr/|w| << 1, with margin);
gradient norms 1e-6 in float32 (PyTorch sums in float32, we in float64) and 1e-12 in float64.  The
plain-Python twins run the same operations in the same order: bit for bit.
"""
import numpy as np
import pytest

from conftest import rel_err
from reference.optim import (
    AdamW, _adamw_kernel, _adamw_kernel_py, _sum_squares, _sum_squares_py, clip_grad_norm, clip_weights,
)

SHAPES = {"conv": (4, 3, 3, 3), "fc": (10, 7), "vec": (5,)}


def make(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=s).astype(dtype) for k, s in SHAPES.items()}


def grads_seq(dtype, n, seed=1, scale=1.0):
    rng = np.random.default_rng(seed)
    return [{k: (scale * rng.normal(size=s)).astype(dtype) for k, s in SHAPES.items()} for _ in range(n)]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("lr,weight_decay", [(5e-3, None), (1e-2, 0.1), (5e-4, 0.0)])
def test_adamw_equals_pytorch(dtype, tol, lr, weight_decay):
    torch = pytest.importorskip("torch", reason="pip install torch to run this check")
    w = make(dtype)
    tw = [torch.tensor(v.copy(), requires_grad=True) for v in w.values()]
    kw = {} if weight_decay is None else {"weight_decay": weight_decay}  # None: both defaults (0.01)
    opt = AdamW(w, lr=lr, **kw)
    topt = torch.optim.AdamW(tw, lr=lr, betas=(0.9, 0.999), **kw)
    assert opt.weight_decay == topt.defaults["weight_decay"]
    for g in grads_seq(dtype, 5):
        for t, gv in zip(tw, g.values()):
            t.grad = torch.tensor(gv.copy())
        opt.step(g)
        topt.step()
    for (name, v), t in zip(w.items(), tw):
        assert v.dtype == dtype
        assert rel_err(v, t.detach().numpy()) < tol, name


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("scale,max_norm", [(1.0, 1.0), (0.01, 1.0), (3.0, 0.5)])
def test_clip_grad_norm_equals_pytorch(dtype, tol, scale, max_norm):
    torch = pytest.importorskip("torch", reason="pip install torch to run this check")
    g = grads_seq(dtype, 1, seed=2, scale=scale)[0]
    tw = [torch.zeros(v.shape, dtype=getattr(torch, np.dtype(dtype).name), requires_grad=True) for v in g.values()]
    for t, gv in zip(tw, g.values()):
        t.grad = torch.tensor(gv.copy())
    norm = clip_grad_norm(g, max_norm)
    tnorm = torch.nn.utils.clip_grad_norm_(tw, max_norm)
    assert norm == pytest.approx(float(tnorm), rel=tol)
    for (name, v), t in zip(g.items(), tw):
        assert v.dtype == dtype
        assert rel_err(v, t.grad.numpy()) < tol, name
    total = np.sqrt(sum(np.sum(v.astype(np.float64) ** 2) for v in g.values()))
    assert total <= max_norm * (1 + 1e-6)  # after clipping, within float32 round-off


def test_clip_grad_norm_hand_values_and_nan():
    g = {"a": np.full(4, 3.0), "b": np.full(9, 4.0)}  # norm sqrt(4 * 9 + 9 * 16) = sqrt(180)
    assert clip_grad_norm(g, 1.0) == pytest.approx(np.sqrt(180), rel=1e-15)
    coef = 1.0 / (np.sqrt(180) + 1e-6)  # PyTorch's coefficient, eps 1e-6 in the denominator
    np.testing.assert_allclose(g["a"], 3.0 * coef, rtol=1e-15)
    small = {"a": np.array([0.3, 0.4])}  # norm 0.5 < 1: untouched
    assert clip_grad_norm(small, 1.0) == pytest.approx(0.5, rel=1e-15)
    np.testing.assert_array_equal(small["a"], [0.3, 0.4])
    bad = {"ok": np.ones(3), "fc_2": np.array([1.0, np.nan])}
    with pytest.raises(FloatingPointError, match="fc_2"):
        clip_grad_norm(bad)
    np.testing.assert_array_equal(bad["ok"], 1.0)  # nothing scaled on error


def test_clip_weights_bounds():
    w = {"a": np.array([-10.0, -4.0, -3.9, 0.0, 3.99, 4.0, 4.5]), "b": np.array([[100.0, -100.0]], np.float32)}
    clip_weights(w)
    np.testing.assert_array_equal(w["a"], [-4.0, -4.0, -3.9, 0.0, 3.99, 4.0, 4.0])  # copies or bounds: exact
    np.testing.assert_array_equal(w["b"], [[4.0, -4.0]])
    assert w["b"].dtype == np.float32
    clip_weights(w, 0.5)
    np.testing.assert_array_equal(w["a"], [-0.5, -0.5, -0.5, 0.0, 0.5, 0.5, 0.5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adamw_state_dict_round_trip_continues_identically(dtype):
    grads = grads_seq(dtype, 6, seed=3)
    w_a = make(dtype)
    opt_a = AdamW(w_a, lr=5e-3)
    for g in grads[:3]:
        opt_a.step({k: v.copy() for k, v in g.items()})
    state = opt_a.state_dict()
    assert state["step"] == 3
    w_b = {k: v.copy() for k, v in w_a.items()}
    opt_b = AdamW(w_b, lr=5e-3)
    opt_b.load_state_dict(state)
    for g in grads[3:]:
        opt_a.step({k: v.copy() for k, v in g.items()})
        opt_b.step({k: v.copy() for k, v in g.items()})
    for k in w_a:
        np.testing.assert_array_equal(w_b[k], w_a[k], err_msg=k)  # same state, same operations: bit for bit
    # the saved state is a copy: later steps did not change it
    assert state["step"] == 3 and not np.array_equal(state["m"]["fc"], opt_a.m["fc"])


def test_adamw_rejects_bad_settings():
    for kw in ({"lr": 0}, {"lr": 1e-3, "betas": (1.0, 0.999)}, {"lr": 1e-3, "eps": 0},
               {"lr": 1e-3, "weight_decay": -0.1}):
        with pytest.raises(ValueError, match="invalid AdamW"):
            AdamW(make(np.float64), **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_python_twins_equal_compiled(dtype):
    rng = np.random.default_rng(4)
    n = 200
    t = np.dtype(dtype).type
    args = (t(1 - 5e-3 * 0.01), t(0.9), t(0.1), t(0.999), t(1 - 0.999), t(np.sqrt(1 - 0.999 ** 2)), t(1e-8),
            t(5e-3 / (1 - 0.9 ** 2)))
    w, g, m = (rng.normal(size=n).astype(dtype) for _ in range(3))
    v = rng.random(n).astype(dtype)
    arrays = [w, g, m, v]
    fast = [a.copy() for a in arrays]
    slow = [a.copy() for a in arrays]
    _adamw_kernel(*fast, *args)
    _adamw_kernel_py(*slow, *args)
    for name, a, b in zip("wgmv", fast, slow):
        np.testing.assert_array_equal(a, b, err_msg=name)  # same scalar operations in the same order: exact
    assert not np.array_equal(fast[0], w)  # the update did something
    x = rng.normal(size=1001).astype(dtype)
    assert _sum_squares(x) == _sum_squares_py(x)  # the same sequential float64 sum: exact
    assert _sum_squares(x) == pytest.approx(np.sum(x.astype(np.float64) ** 2), rel=1e-13)  # pairwise vs sequential
