"""``compare``: two gradient archives, quantity by quantity in computation order; the first disagreement named."""
import numpy as np
import pytest

from reference.app.cli import compute_gradients, main
from reference.app.compare import compare, compare_arrays, computation_order, report
from reference.network import Network
from test_core import TINY_CNN, mnist


@pytest.fixture(scope="module")
def archives():
    net = Network(TINY_CNN, seed=1)
    x, y = mnist(3)
    g32 = compute_gradients(TINY_CNN, net.weights, x.astype(np.float32), y)
    g64 = compute_gradients(TINY_CNN, net.weights, x, y, dtype=np.float64)
    return g32, g64


def test_order_is_forward_then_backward(archives):
    g32, _ = archives
    order = computation_order(list(g32), list(g32))
    assert order == ["output/conv_a", "output/pool", "output/conv_b", "output/fc", "loss",
                     "delta/fc", "grad/fc", "delta/conv_b", "grad/conv_b", "delta/pool", "delta/conv_a", "grad/conv_a"]
    # a layer only the other archive names, without outputs, goes after the known layers; other keys last
    assert computation_order(["output/a", "grad/a"], ["output/a", "grad/a", "grad/b", "x"]) == ["output/a", "grad/a"]
    assert computation_order(["output/a", "grad/b", "z"], ["output/a", "grad/b", "z"]) == ["output/a", "grad/b", "z"]


def test_float32_and_float64_agree_and_errors_are_right(archives, tmp_path, capsys):
    g32, g64 = archives
    rows, only_ours, only_theirs = compare(g64, g32)
    assert not only_ours and not only_theirs and len(rows) == len(g32)
    for r in rows:
        b = np.asarray(g32[r.key], np.float64)
        err = np.abs(np.asarray(g64[r.key], np.float64) - b).max()
        assert r.max_abs == pytest.approx(err, rel=1e-12, abs=1e-300)
        assert r.rel == pytest.approx(err / np.abs(b).max(), rel=1e-12, abs=1e-300) and r.rel < 1e-4
        assert r.cosine == pytest.approx(1.0, abs=1e-9)
    np.savez(tmp_path / "a.npz", **g64)
    np.savez(tmp_path / "b.npz", **g32)
    assert main(["compare", "--ours", str(tmp_path / "a.npz"), "--theirs", str(tmp_path / "b.npz")]) == 0
    assert "all 12 shared quantities agree within rtol 0.0001" in capsys.readouterr().out


def test_first_disagreement_in_computation_order_is_named(archives, tmp_path, capsys):
    g32, _ = archives
    theirs = {k: np.array(v, copy=True) for k, v in g32.items()}
    theirs["delta/conv_b"][0, 0, 0, 0, 1] += 1.0   # an error in a middle layer's delta ...
    theirs["grad/conv_a"] *= 1.5                    # ... and a later one, which must not be named first
    np.savez(tmp_path / "ours.npz", **g32)
    np.savez(tmp_path / "theirs.npz", **theirs)
    assert main(["compare", "--ours", str(tmp_path / "ours.npz"), "--theirs", str(tmp_path / "theirs.npz")]) == 1
    out = capsys.readouterr().out
    assert "first disagreement in computation order: delta/conv_b" in out
    assert "; later quantities depend on it, so start there" in out
    assert "(0, 0, 0, 0, 1)" in out.split("largest differences")[1].splitlines()[2]  # the worst entry first
    # loosened beyond both errors: passes
    assert main(["compare", "--ours", str(tmp_path / "ours.npz"), "--theirs", str(tmp_path / "theirs.npz"),
                 "--rtol", "1e9"]) == 0
    del theirs["delta/conv_b"]  # eleventh pass F5: a weight gradient first, of which nothing later depends
    np.savez(tmp_path / "theirs.npz", **theirs)
    assert main(["compare", "--ours", str(tmp_path / "ours.npz"), "--theirs", str(tmp_path / "theirs.npz"),
                 "--allow-missing"]) == 1
    out = capsys.readouterr().out
    assert ("first disagreement in computation order: grad/conv_a (rel err 0.333 > rtol 0.0001); a weight gradient: "
            "no later quantity depends on it, so a later disagreement has a cause of its own") in out, out


def test_problems_are_reported_not_raised(archives, tmp_path, capsys):
    g32, _ = archives
    r = compare_arrays("x", np.zeros(3), np.zeros(4))
    assert "shape (3,) (ours) vs (4,) (theirs)" in r.problem and not r.ok(1.0)
    assert "NaN or inf in theirs" in compare_arrays("x", np.zeros(2), np.array([0, np.nan])).problem
    assert compare_arrays("x", np.zeros(2), np.zeros(2)).rel == 0.0
    assert compare_arrays("x", np.ones(2), np.zeros(2)).rel == np.inf
    # issue 30, item 11: a string array was a ValueError from inside NumPy's float conversion
    assert compare_arrays("x", np.array(["a", "b"]), np.zeros(2)).problem == "not real numbers: ours holds <U1"
    assert "theirs holds complex128" in compare_arrays("x", np.zeros(2), np.zeros(2, complex)).problem
    np.savez(tmp_path / "s.npz", loss=np.array(["x"]))
    np.savez(tmp_path / "f.npz", loss=np.array([1.0]))
    assert main(["compare", "--ours", str(tmp_path / "s.npz"), "--theirs", str(tmp_path / "f.npz")]) == 1
    assert "loss (not real numbers: ours holds <U1)" in capsys.readouterr().out
    partial = {k: v for k, v in g32.items() if not k.startswith("delta/")}
    rows, only_ours, only_theirs = compare(g32, partial)
    text, ok = report(rows, only_ours, only_theirs, 1e-4, g32, partial)
    assert ok and "only in ours (not compared): delta/conv_a, delta/conv_b, delta/fc, delta/pool" in text
    np.savez(tmp_path / "a.npz", a=np.zeros(2))
    np.savez(tmp_path / "b.npz", b=np.zeros(2))
    assert main(["compare", "--ours", str(tmp_path / "a.npz"), "--theirs", str(tmp_path / "b.npz")]) == 2
    assert "share no quantity" in capsys.readouterr().err
    assert main(["compare", "--ours", str(tmp_path / "a.npz"), "--theirs", str(tmp_path / "nope.npz")]) == 2
    assert main(["compare", "--ours", str(tmp_path / "a.npz"), "--theirs", str(tmp_path / "a.npz"), "--rtol", "0"]) == 2
    for bad in (["--rtol", "inf"], ["--rtol", "nan"], ["--entries", "-2"]):  # issue 30 (adversarial pass)
        assert main(["compare", "--ours", str(tmp_path / "a.npz"), "--theirs", str(tmp_path / "a.npz"), *bad]) == 2
        assert bad[0] in capsys.readouterr().err


def test_a_partial_archive_is_exit_1_unless_allowed(archives, tmp_path, capsys):
    """compare exited 0 when theirs lacked quantities (issue 30): now it names them and exits 1, and
    --allow-missing compares a partial archive (weight gradients only, say) with exit 0."""
    g32, _ = archives
    np.savez(tmp_path / "ours.npz", **g32)
    np.savez(tmp_path / "grads.npz", **{k: v for k, v in g32.items() if k.startswith("grad/")})
    args = ["compare", "--ours", str(tmp_path / "ours.npz"), "--theirs", str(tmp_path / "grads.npz")]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "lacks 9 quantities" in out and "output/conv_a" in out and "--allow-missing" in out
    assert main(args + ["--allow-missing"]) == 0
    assert "all 3 shared quantities agree" in capsys.readouterr().out
