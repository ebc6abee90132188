"""Our hand-written backward against PyTorch and JAX autodiff, finite differences, and surrogate BPTT.

Tolerances are those of :mod:`reference.twins.check` (justified there): float64 round-off for parts
(1e-12) and the full network (1e-10), 1e-7 for central differences, 1e-4 for the full network in float32.
"""
import os
import warnings

import numpy as np
import pytest

from conftest import ROOT, load_mnist
from reference.twins import available
from reference.twins.check import (TOL_NET32, TOL_NET64, check_finite_differences, check_network,
                                      check_parts, compare, format_rows)
from reference.app.cli import main
from reference.network import Network
from reference.optim import AdamW, train_step

MLP = os.path.join(ROOT, "configs", "FashionMNIST_400_400.yaml")
CNN = os.path.join(ROOT, "configs", "MNIST_CNN.yaml")
HOW = {"torch": "pip install torch==2.13.0", "jax": "pip install jax"}


def framework(name):
    """The float64 backend of ``name``, or skip saying how to install the framework."""
    if not available(name):
        pytest.skip(f"{name} is not installed: {HOW[name]} (or pip install -r requirements-autograd.txt)")
    from reference.twins import backend

    return backend(name, "float64")


FRAMEWORKS = ["torch", "jax"]
MLP_2020 = os.path.join(ROOT, "configs", "paper2020", "FashionMNIST_400_400.yaml")
CNN_2020 = os.path.join(ROOT, "configs", "paper2020", "MNIST_CNN.yaml")
# The JAX twin is the torch twin's TwinModel (model.py) through a second autodiff, and XLA compiles each
# network afresh: 3-5 s per CNN case, 36 s of the unit tier's 230 s of test time.  So the unit tier checks
# JAX on the parts and the MLPs, torch on every case; JAX on the CNNs runs in the integration tier (CI).
JAX_ON_CNN = pytest.mark.integration


def twin_cases(cases):
    """``(framework, *case)`` for both twins; a JAX case on a CNN config is marked ``JAX_ON_CNN``."""
    return [pytest.param(name, *case, marks=[JAX_ON_CNN] if name == "jax" and {CNN, CNN_2020} & set(case) else [])
            for name in FRAMEWORKS for case in cases]


def trained_weights(config, x, y, steps, seed=0):
    net = Network(config, dtype=np.float32, seed=seed)
    opt = AdamW(net.weights, lr=5e-4)
    for _ in range(steps):
        train_step(net, x.astype(np.float32), y, opt)
    return {k: v.copy() for k, v in net.weights.items()}


# ------------------------------------------------------------------------------------------- measures
def test_compare_measures():
    assert compare([1.0, 2.0], [1.0, 2.0]) == (0.0, 0.0, pytest.approx(1.0, abs=1e-15))
    max_abs, rel, cos = compare([1.0, 2.5], [1.0, 2.0])
    assert max_abs == 0.5 and rel == 0.25 and cos == pytest.approx(np.dot([1, 2.5], [1, 2]) / np.hypot(1, 2.5) / np.hypot(1, 2))
    assert compare([0.0, 0.0], [0.0, 0.0]) == (0.0, 0.0, 1.0)
    assert compare([1e-3], [0.0])[1] == np.inf  # a gradient where the reference has none is an error
    with pytest.raises(ValueError, match="shapes"):
        compare(np.zeros(3), np.zeros(4))


# --------------------------------------------------------------------------------- finite differences
def test_finite_differences_of_every_smooth_part():
    rows = check_finite_differences()
    assert {r.name for r in rows} == {"psp filter", "dense", "conv", "pooling", "kernel loss", "count loss",
                                      "softmax loss", "warm-up surrogate"}
    assert all(r.ok for r in rows), format_rows(rows)


def test_finite_differences_catch_a_wrong_backward(monkeypatch):
    import reference.twins.check as check

    monkeypatch.setattr(check, "warmup_surrogate", lambda u, thr: 1.001 * __import__("reference").tsslbp.warmup_surrogate(u, thr))
    rows = {r.name: r for r in check.check_finite_differences()}
    assert not rows["warm-up surrogate"].ok and rows["psp filter"].ok


# ------------------------------------------------------------------------------ parts against autodiff
@pytest.mark.parametrize("name", FRAMEWORKS)
def test_every_part_matches_autodiff(name):
    rows = check_parts(framework(name))
    names = {r.name for r in rows}
    assert {"psp filter", "dense", "conv", "pooling", "dropout", "count loss", "softmax loss", "warm-up surrogate",
            "kernel loss (double filter)", "kernel loss (single filter)", "spiking layer (default)"} <= names
    assert all(r.ok for r in rows), format_rows(rows)
    assert max(r.rel for r in rows) < 1e-13  # measured <= 2.2e-15: float64 round-off


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_parts_check_catches_a_wrong_backward(name, monkeypatch):
    import reference.twins.check as check
    from reference.tsslbp import spike_error

    b = framework(name)
    monkeypatch.setattr(check, "spike_error", lambda g, eps: spike_error(g, eps * (1 + 1e-9)))
    rows = {r.name: r for r in check.check_parts(b)}
    assert not rows["psp filter"].ok and rows["dense"].ok


def test_parts_need_float64():
    if not available("torch"):
        pytest.skip(f"torch is not installed: {HOW['torch']}")
    from reference.twins import backend

    with pytest.raises(ValueError, match="float64"):
        check_parts(backend("torch", "float32"))


# ------------------------------------------------------------------------ the full network, both twins
@pytest.mark.parametrize("name,config,n,steps", twin_cases([(MLP, 20, 0), (MLP, 20, 5), (CNN, 8, 0), (CNN, 8, 5)]))
def test_network_gradient_matches_twin_float64(name, config, n, steps):
    b = framework(name)
    x, y = load_mnist(n)
    weights = trained_weights(config, x, y, steps)
    rows = check_network(config, b, weights, x, y, dtype="float64")
    assert all(r.ok for r in rows), format_rows(rows)
    assert all("spikes identical" in r.note for r in rows if r.quantity == "dL/dW")
    assert max(r.rel for r in rows) < TOL_NET64


def _smallest_margin(config, weights, x):
    """min |u - threshold| over every spiking neuron and step (float64 forward)."""
    net = Network(config, dtype=np.float64)
    net.set_weights(weights)
    net.forward(x)
    return min(float(np.min(np.abs(r.state.u - 1.0))) for r in net.records if r.state is not None)


@pytest.mark.parametrize("name,config,n,steps", twin_cases([(MLP, 20, 3), (CNN, 8, 3)]))
def test_network_gradient_matches_twin_float32(name, config, n, steps):
    from reference.twins import backend

    framework(name)
    x, y = load_mnist(n)
    weights = trained_weights(config, x, y, steps)
    # On this batch no membrane lies within 1e-5 of the threshold, far above float32 rounding of u
    # (~1e-7): the two float32 forward passes take the same spike decisions on any machine.
    assert _smallest_margin(config, weights, x) > 1e-5
    rows = check_network(config, backend(name, "float32"), weights, x, y, dtype="float32")
    assert all(r.ok for r in rows), format_rows(rows)
    assert max(r.rel for r in rows) < TOL_NET32


@pytest.mark.parametrize("options", [dict(intra=False), dict(warmup="never"), dict(warmup="always"),
                                     dict(target_filter="single"), dict(inter=False), dict(backward="bptt"),
                                     dict(backward="bptt-detached")])
@pytest.mark.parametrize("config", [MLP, CNN])
def test_network_options_match_twin(options, config):
    b = framework("torch")
    x, y = load_mnist(12)
    weights = trained_weights(config, x, y, 3)
    rows = check_network(config, b, weights, x, y, dtype="float64", options=options)
    assert all(r.ok for r in rows), format_rows(rows)


def test_network_check_reports_a_wrong_gradient(monkeypatch):
    b = framework("torch")
    import reference.rules as rules  # where the final rule takes its backward from

    real = rules.tsslbp_delta
    monkeypatch.setattr(rules, "tsslbp_delta", lambda g, *a, **k: (lambda d, br: (d * 1.0001, br))(*real(g, *a, **k)))
    x, y = load_mnist(8)
    rows = check_network(MLP, b, Network(MLP).weights, x, y)
    assert not any(r.ok for r in rows if r.quantity == "dL/dW")


# --------------------------------------------------------------------------------------------- BPTT
def test_bptt_without_unrolling_equals_tsslbp_warmup_always():
    from reference.twins.model import TwinModel

    b = framework("torch")
    x, y = load_mnist(12)
    weights = trained_weights(CNN, x, y, 2)
    bp = TwinModel(CNN, b, spike="bptt", unroll=False).gradients(weights, x, y)
    ts = TwinModel(CNN, b, warmup="always").gradients(weights, x, y)
    for k in weights:
        assert compare(bp["grads"][k], ts["grads"][k])[1] < 1e-12, k


@pytest.mark.parametrize("name", ["torch", pytest.param("jax", marks=JAX_ON_CNN)])  # JAX: 3 s of XLA compile
def test_bptt_comparison(name):
    from reference.twins.bptt import compare_bptt

    b = framework(name)
    x, y = load_mnist(12)
    weights = trained_weights(MLP, x, y, 2)
    rows, ts, bp = compare_bptt(MLP, b, weights, x, y)
    assert ts["loss"] == bp["loss"]  # one forward pass, two backward rules
    assert [r.layer for r in rows if r.t < 0] == ["hidden_1", "hidden_2", "output"]
    assert len(rows) == 3 * (5 + 1)
    cos = np.array([r.cos for r in rows])
    assert np.all((cos > -1) & (cos <= 1 + 1e-12))
    # they are different gradients: unrolled leak/reset and 1/du vs a surrogate everywhere
    assert np.all(cos < 0.999) and np.all(cos > 0)
    # the weight-gradient cosine is the normalised inner product of the returned gradients
    r = rows[5]
    g1, g2 = ts["grads"]["hidden_1"].ravel(), bp["grads"]["hidden_1"].ravel()
    assert r.cos == pytest.approx(g1 @ g2 / np.linalg.norm(g1) / np.linalg.norm(g2), rel=1e-12)


@JAX_ON_CNN
def test_bptt_torch_equals_jax():
    from reference.twins.model import TwinModel

    tb, jb = framework("torch"), framework("jax")
    x, y = load_mnist(8)
    weights = trained_weights(CNN, x, y, 2)
    a = TwinModel(CNN, tb, spike="bptt").gradients(weights, x, y)
    c = TwinModel(CNN, jb, spike="bptt").gradients(weights, x, y)
    for k in weights:
        assert compare(a["grads"][k], c["grads"][k])[1] < 1e-12, k


# ---------------------------------------------------------------------------------------------- CLI
@pytest.fixture
def inputs_npz(tmp_path):
    x, y = load_mnist(10)
    path = tmp_path / "inputs.npz"
    np.savez(path, input=x.astype(np.float32), labels=y)
    return str(path)


def test_gradcheck_command(inputs_npz, capsys, tmp_path):
    framework("torch")
    code = main(["gradcheck", "--config", MLP, "--inputs", inputs_npz, "--steps", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "network (torch, float64)" in out and "network (torch, float32)" in out and "hidden_2" in out
    assert "within tolerance" in out.splitlines()[-1]


def test_gradcheck_command_fails_on_a_wrong_gradient(inputs_npz, capsys, monkeypatch):
    framework("torch")
    import reference.rules as rules  # where the final rule takes its backward from

    real = rules.tsslbp_delta
    monkeypatch.setattr(rules, "tsslbp_delta", lambda g, *a, **k: (lambda d, br: (d * 1.001, br))(*real(g, *a, **k)))
    code = main(["gradcheck", "--config", MLP, "--inputs", inputs_npz, "--skip-parts", "--dtype", "float64"])
    out = capsys.readouterr().out
    assert code == 1 and "FAILED" in out


def test_gradcheck_without_framework_says_how_to_install(inputs_npz, capsys, monkeypatch):
    import reference.twins as ag

    def missing(name):
        raise ImportError(f"{name} is not installed; install it with: {ag.INSTALL_HINT[name]}")

    monkeypatch.setattr(ag, "require", missing)
    code = main(["gradcheck", "--config", MLP, "--inputs", inputs_npz, "--framework", "jax"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install jax" in err


def test_bptt_compare_command_writes_figure(inputs_npz, capsys, tmp_path):
    framework("torch")
    code = main(["bptt-compare", "--config", CNN, "--inputs", inputs_npz, "--out", str(tmp_path / "b")])
    out = capsys.readouterr().out
    assert code == 0 and "conv_1" in out
    assert os.path.getsize(tmp_path / "b" / "bptt_compare.png") > 10_000
    lines = (tmp_path / "b" / "bptt_compare.csv").read_text().splitlines()
    assert lines[0].startswith("layer,t,quantity,cos") and len(lines) == 1 + 4 * 6
    assert main(["bptt-compare", "--config", CNN, "--inputs", inputs_npz, "--out", str(tmp_path / "b")]) == 0
    # issue 30 (adversarial pass): a user's files of those names were replaced; only its own outputs are
    (tmp_path / "u").mkdir()
    (tmp_path / "u" / "bptt_compare.csv").write_text("my,table\n1,2\n")
    assert main(["bptt-compare", "--config", CNN, "--inputs", inputs_npz, "--out", str(tmp_path / "u")]) == 2
    assert "not a CSV this command wrote" in capsys.readouterr().err
    assert (tmp_path / "u" / "bptt_compare.csv").read_text() == "my,table\n1,2\n"
    (tmp_path / "u" / "bptt_compare.csv").write_text("layer,my notes\n1,2\n")  # third pass F5: first column only
    assert main(["bptt-compare", "--config", CNN, "--inputs", inputs_npz, "--out", str(tmp_path / "u")]) == 2
    captured = capsys.readouterr()
    assert "which this command never writes" in captured.err and "TSSL-BP vs" not in captured.out  # before the work
    assert (tmp_path / "u" / "bptt_compare.csv").read_text() == "layer,my notes\n1,2\n"
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "bptt_compare.png").write_bytes(b"\x89PNG my picture")
    assert main(["bptt-compare", "--config", CNN, "--inputs", inputs_npz, "--out", str(tmp_path / "v")]) == 2
    assert (tmp_path / "v" / "bptt_compare.png").read_bytes() == b"\x89PNG my picture"
    (tmp_path / "b" / "bptt_compare.png").write_text("my annotated figure notes\n")  # fifth pass F6: beside its CSV
    assert main(["bptt-compare", "--config", CNN, "--inputs", inputs_npz, "--out", str(tmp_path / "b")]) == 2
    assert "is not a PNG image this command drew" in capsys.readouterr().err
    assert (tmp_path / "b" / "bptt_compare.png").read_text() == "my annotated figure notes\n"
    import matplotlib.pyplot as plt  # seventh pass F2: a user's own PNG beside the command's CSV was replaced

    fig = plt.figure(figsize=(1, 1))
    fig.savefig(tmp_path / "b" / "bptt_compare.png")
    plt.close(fig)
    theirs = (tmp_path / "b" / "bptt_compare.png").read_bytes()
    assert main(["bptt-compare", "--config", CNN, "--inputs", inputs_npz, "--out", str(tmp_path / "b")]) == 2
    assert "is not a PNG image this command drew" in capsys.readouterr().err
    assert (tmp_path / "b" / "bptt_compare.png").read_bytes() == theirs


# ------------------------------------------------------------------------------------- checkpoints
def authors_checkpoint(path, weights, config, **extra):
    """Write a checkpoint as the authors' script does: ``torch.save({'net': net.state_dict(), ...})``."""
    import torch

    from reference.app.authors_checkpoint import authors_module

    torch.save({"net": authors_module(weights, config).state_dict(), **extra}, path)


def test_checkpoint_round_trip(tmp_path, capsys):
    framework("torch")
    import torch

    weights = Network(CNN, seed=4).weights
    pth = tmp_path / "ckpt.pth"
    authors_checkpoint(pth, weights, load_config_(CNN), epoch=3, acc=98.5)
    state = torch.load(pth, weights_only=True)["net"]
    assert list(state) == ["my_parameters.0", "my_parameters.1", "my_parameters.2", "my_parameters.3"]
    assert tuple(state["my_parameters.0"].shape) == (15, 1, 5, 5, 1)
    assert main(["import-checkpoint", str(pth), "--config", CNN, "--out", str(tmp_path / "w.npz")]) == 0
    with np.load(tmp_path / "w.npz") as got:
        assert sorted(got) == sorted(weights)
        for k in weights:
            np.testing.assert_array_equal(got[k], weights[k])
    back = tmp_path / "back.pth"
    assert main(["export-checkpoint", str(tmp_path / "w.npz"), "--config", CNN, "--out", str(back)]) == 0
    again = torch.load(back, weights_only=True)["net"]
    for k in state:
        assert torch.equal(again[k], state[k])
    # gradients of the imported weights equal those of the original network
    x, y = load_mnist(4)
    net = Network(CNN)
    with np.load(tmp_path / "w.npz") as got:
        net.set_weights(dict(got))
    ref = Network(CNN, seed=4)
    assert net.gradients(x, y)[0] == ref.gradients(x, y)[0]


def test_export_our_trained_weights(tmp_path):
    framework("torch")
    import torch

    src = os.path.join(ROOT, "results", "fmnist_mlp_400_400", "weights.npz")
    out = tmp_path / "fmnist.pth"
    assert main(["export-checkpoint", src, "--config", MLP, "--out", str(out)]) == 0
    state = torch.load(out, weights_only=True)["net"]
    with np.load(src) as w:
        np.testing.assert_array_equal(state["my_parameters.0"].numpy(), w["hidden_1"])


class _Code:
    """Pickles as a call of os.getcwd: a checkpoint holding code, which must be refused unrun."""

    def __reduce__(self):
        return (os.getcwd, ())


def load_config_(path):
    from reference.config import load_config

    return load_config(path)


@pytest.mark.parametrize("case,words", [
    ("missing", "not found"),
    ("garbage", "is not a PyTorch checkpoint (neither torch.save's zip nor a pickle"),
    ("text", "is not a PyTorch checkpoint"),
    ("code", "holds Python objects or pickle instructions beyond tensors and numbers"),
    ("plain pickle", "holds Python objects or pickle instructions beyond tensors and numbers (torch.load"),
    ("truncated zip", "not a readable PyTorch checkpoint"),
    ("wrong config", "is it the right config"),
    ("wrong shape", "expected (10, 300)"),
    ("no parameters", "no 'my_parameters"),
    ("not a dict", "expected a dict"),
    ("huge sparse", "has a torch.sparse_coo tensor of shape (1000000, 1000000), expected (15, 1, 5, 5)"),
    ("stride 0", "has shape (100000, 100000), expected (15, 1, 5, 5)"),
    ("meta device", "is a tensor on the 'meta' device"),
])
def test_import_checkpoint_errors(case, words, tmp_path, capsys):
    framework("torch")
    import torch

    pth = tmp_path / "c.pth"
    weights = Network(CNN).weights
    if case == "garbage":
        pth.write_bytes(b"not a checkpoint")
    elif case == "text":
        pth.write_text("epoch: 3\n")  # torch.load read it as a pickle and failed with KeyError: 101
    elif case == "code":
        torch.save({"net": _Code()}, pth)
    elif case == "plain pickle":  # pickle.dump, not torch.save: torch printed a UserWarning before refusing it
        import pickle

        pth.write_bytes(pickle.dumps({"net": {}}, protocol=4))
    elif case == "truncated zip":
        torch.save({"net": {}}, pth)
        pth.write_bytes(pth.read_bytes()[:200])
    elif case == "wrong config":
        authors_checkpoint(pth, Network(MLP).weights, load_config_(MLP))
    elif case == "wrong shape":
        state = {f"my_parameters.{i}": torch.zeros(s) for i, s in
                 enumerate([(15, 1, 5, 5, 1), (40, 15, 5, 5, 1), (300, 640), (10, 301)])}
        torch.save({"net": state}, pth)
    elif case == "no parameters":
        torch.save({"net": {"layers.0.weight": torch.zeros(3)}}, pth)
    elif case == "not a dict":
        torch.save([torch.zeros(3)], pth)
    elif case == "huge sparse":  # issue 30, item 11: was numpy's TypeError; its shape is refused before densifying
        big = torch.sparse_coo_tensor(torch.zeros(2, 1, dtype=torch.long), torch.ones(1), (10 ** 6, 10 ** 6),
                                      check_invariants=True)
        state = {f"my_parameters.{i}": torch.zeros(s) for i, s in enumerate([(15, 1, 5, 5, 1), (40, 15, 5, 5, 1),
                                                                            (300, 640), (10, 300)])}
        torch.save({"net": {**state, "my_parameters.0": big}}, pth)
    elif case in ("stride 0", "meta device"):  # a 37 GiB view of one float, checked before it is materialised
        state = {f"my_parameters.{i}": torch.zeros(s) for i, s in enumerate([(15, 1, 5, 5, 1), (40, 15, 5, 5, 1),
                                                                            (300, 640), (10, 300)])}
        state["my_parameters.0"] = (torch.zeros(1).expand(10 ** 5, 10 ** 5) if case == "stride 0" else
                                    torch.empty(15, 1, 5, 5, 1, device="meta"))
        torch.save({"net": state}, pth)
    del weights
    out = tmp_path / "w.npz"
    with warnings.catch_warnings(record=True) as seen:  # a warning would print a second line to a user
        warnings.simplefilter("always")
        assert main(["import-checkpoint", str(pth), "--config", CNN, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1 and not out.exists()
    assert [str(w.message)[:80] for w in seen] == []


def test_a_sparse_checkpoint_tensor_of_the_right_shape_is_read_densely(tmp_path):
    """Issue 30, item 11: a sparse weight tensor (the right shape) imports as its dense values."""
    framework("torch")
    import torch

    from reference.app.authors_checkpoint import import_checkpoint

    weights = Network(CNN, seed=1).weights
    state = {f"my_parameters.{i}": torch.from_numpy(w if w.ndim == 2 else w[..., None]) for i, w in
             enumerate(weights.values())}
    state["my_parameters.2"] = state["my_parameters.2"].to_sparse()
    torch.save({"net": state}, tmp_path / "s.pth")
    got = import_checkpoint(tmp_path / "s.pth", load_config_(CNN))
    for name in weights:
        np.testing.assert_array_equal(got[name], weights[name])


def test_authors_dropout_call_drops_whole_samples_in_this_pytorch():
    """The authors' dropout layer calls dropout3d on (N, C*H, W, 1, 1, T); in PyTorch 2.x a 6-D input is
    taken as unbatched, so one mask value covers a whole sample (our ``dropout_unit="sample"``)."""
    framework("torch")
    import warnings

    import torch

    torch.manual_seed(0)
    n, c, h, w, t = 64, 4, 3, 5, 5
    x = torch.ones(n, c, h, w, t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = torch.nn.functional.dropout3d(x.reshape(n, c * h, w, 1, 1, t), 0.5, True).reshape(n, c, h, w, t)
    kept = (out != 0).numpy()
    assert np.all(kept == kept[:, :1, :1, :1, :1])  # constant within each sample
    assert 0 < kept[:, 0, 0, 0, 0].mean() < 1  # but not across samples



# ----------------------------------------------------------------------- the paper-era rule's twins


@pytest.mark.parametrize("name,config,steps", twin_cases([(MLP_2020, 0), (MLP_2020, 5), (CNN_2020, 0), (CNN_2020, 3)]))
@pytest.mark.parametrize("intra", [True, False])
def test_paper2020_variant_matches_its_twins(name, config, steps, intra):
    """variant="paper2020" (reference.paper2020: h by a recurrence) against the twins' paper2020_backward
    (g recovered from G, D summed explicitly), float64, on real digits; the layers of these cases fall on
    both sides of the layer-wise switch (asserted for the MLP at initialisation; the CNN's layers all fire
    above 0.1 here, its warm-up side is in test_paper2020's naive comparison), batch 7 (not a multiple of 5)."""
    b = framework(name)
    x, y = load_mnist(7)
    options = dict(variant="paper2020", intra=intra)
    net = Network(config, dtype=np.float64, seed=0, variant="paper2020", intra=intra)
    opt = AdamW(net.weights, lr=net.config.network["lr"])
    for _ in range(steps):
        train_step(net, x, y, opt)
    rows = check_network(config, b, net.weights, x, y, dtype="float64", options=options)
    assert all(r.ok for r in rows), format_rows(rows)
    assert max(r.rel for r in rows) < TOL_NET64
    net.gradients(x, y)
    rates = [r.state.firing_rate for r in net.records if r.state is not None]
    if steps == 0 and config == MLP_2020:
        assert min(rates) <= 0.1 < max(rates), rates  # warm-up and TSSL-BP layers in the same network


@pytest.mark.parametrize("name", FRAMEWORKS)
def test_paper2020_rate_threshold_reaches_the_twins(name):
    """rate_threshold=0 (every firing layer on the TSSL-BP side) in the NumPy rule and in the twins'
    paper2020_backward: equal on the MLP whose output layer fires at most 0.1 (asserted), where the default
    threshold would have warmed it up; tolerance as above."""
    b = framework(name)
    x, y = load_mnist(7)
    options = dict(variant="paper2020", rate_threshold=0.0)
    net = Network(MLP_2020, dtype=np.float64, seed=0, **options)
    net.gradients(x, y)
    rates = [r.state.firing_rate for r in net.records if r.state is not None]
    assert 0 < min(rates) <= 0.1, rates
    rows = check_network(MLP_2020, b, net.weights, x, y, dtype="float64", options=options)
    assert all(r.ok for r in rows), format_rows(rows)
    assert max(r.rel for r in rows) < TOL_NET64


DROPOUT_AFTER_LINEAR = {
    "Network": {"n_steps": 5, "dataset": "MNIST", "loss": "kernel", "n_class": 10, "tau_m": 5, "tau_s": 3},
    "Layers": {"conv": {"type": "conv", "in_channels": 1, "out_channels": 3, "kernel_size": 5, "weight_scale": 3,
                        "threshold": 1},
               "drop_conv": {"type": "dropout", "p": 0.2},
               "fc": {"type": "linear", "n_inputs": 3 * 24 * 24, "n_outputs": 32, "weight_scale": 2, "threshold": 1},
               "drop_fc": {"type": "dropout", "p": 0.2},
               "out": {"type": "linear", "n_inputs": 32, "n_outputs": 10, "weight_scale": 2, "threshold": 1}}}


@pytest.mark.parametrize("name", ["torch", pytest.param("jax", marks=JAX_ON_CNN)])
def test_network_check_passes_with_dropout_after_conv_and_linear_layers(name):
    """Issue 30, item 10: a dropout after a linear layer (configs/CIFAR10.yaml has them) crashed the twins
    (their probe took the dropout's config shape, (F, 1, 1), instead of the linear layout (F,))."""
    b = framework(name)
    net = Network(DROPOUT_AFTER_LINEAR, seed=0)
    x, y = load_mnist(6)
    rows = check_network(DROPOUT_AFTER_LINEAR, b, net.weights, x, y)
    assert rows and all(r.ok for r in rows), [r for r in rows if not r.ok]
    assert any("drop_conv" in r.name for r in rows) and any("drop_fc" in r.name for r in rows)


@pytest.mark.integration
@pytest.mark.parametrize("config", ["CIFAR10.yaml", os.path.join("paper2020", "CIFAR10.yaml")])
def test_network_check_runs_on_the_cifar_configs(config):
    """gradcheck's network check on every shipped structure with dropout: the CIFAR-10 CNNs (one image)."""
    b = framework("torch")
    path = os.path.join(ROOT, "configs", config)
    net = Network(path, seed=0)
    x = np.random.default_rng(0).random((1, *net.config.input_shape)).astype(np.float32)
    rows = check_network(path, b, net.weights, x, np.array([3]), dtype="float32")
    assert rows and all(r.ok for r in rows), [r for r in rows if not r.ok]


_BPTT_SIGNAL_CHILD = """
import os, runpy, signal, sys
from reference.app import plots

real = plots.plot_bptt


def with_a_ctrl_c(*args, **kwargs):  # a Ctrl-C while the figure is drawn, after the CSV is written
    os.kill(os.getpid(), signal.SIGINT)
    return real(*args, **kwargs)


plots.plot_bptt = with_a_ctrl_c
sys.argv = ["reference", "bptt-compare", *sys.argv[1:]]
runpy.run_module("reference", run_name="__main__")
"""


def test_bptt_compare_says_it_wrote_its_pair_before_a_held_ctrl_c_ends_it(inputs_npz, tmp_path):
    """Tenth pass F9: a Ctrl-C while bptt-compare wrote its CSV and figure was held until both were
    written, as it should be, but the command then said only "interrupted", as if it had written nothing."""
    import subprocess
    import sys

    framework("torch")
    out = tmp_path / "b"
    proc = subprocess.run([sys.executable, "-c", _BPTT_SIGNAL_CHILD, "--config", MLP, "--inputs", inputs_npz,
                           "--out", str(out)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 130 and proc.stderr.strip() == "interrupted", proc.stderr[-1500:]
    assert proc.stdout.splitlines()[-1] == f"wrote {out / 'bptt_compare.png'} and bptt_compare.csv"
    assert sorted(os.listdir(out)) == ["bptt_compare.csv", "bptt_compare.png"]
