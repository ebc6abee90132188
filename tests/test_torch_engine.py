"""The PyTorch training engine (reference/engines/torch_engine.py) against the NumPy engine, alone and under
torch.distributed (gloo, loopback, two processes started by torchrun), resumed across engines, and its
errors.

Tolerances.  Both engines compute the same float32 numbers in different orders, so gradients agree to
round-off: <= 1e-4 relative per layer (TOL_NET32, the twin checks' float32 bound).  Weights after AdamW
steps agree to 1e-5 absolute except where a gradient entry is itself round-off (a weight fed by
near-zero inputs): AdamW's first step there is ``lr * g / (|g| + 1e-8)``, whose size is decided by the
last bits of ``g``, so such entries may differ by up to ``2 lr`` per step.  :func:`assert_weights_close`
allows that to at most 0.1% of a layer's entries, and only up to ``2 lr * steps``.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, load_mnist, rel_err

torch = pytest.importorskip("torch", reason="torch is not installed: pip install -r requirements-autograd.txt")

from reference.twins.check import TOL_NET32  # noqa: E402
from reference.engines.torch_engine import Processes, TorchEngine  # noqa: E402
from reference.app.cli import main  # noqa: E402
from reference.config import load_config  # noqa: E402
from reference.app.runs import load_checkpoint  # noqa: E402
from reference.app.train import Split, train  # noqa: E402
from reference.engines import EngineError, make_engine  # noqa: E402
from reference.engines.numpy_engine import NumpyEngine  # noqa: E402
from test_train import TINY  # noqa: E402  (784-64-dropout 0.2-10, kernel loss)

CONFIGS = os.path.join(ROOT, "configs")
WEIGHT_ATOL = 1e-5
ROUNDOFF_SHARE = 1e-3


def assert_weights_close(a: dict, b: dict, lr: float, steps: int):
    """Weights equal to WEIGHT_ATOL, but for at most ROUNDOFF_SHARE of entries per layer that may differ
    by up to ``2 lr steps`` (the module docstring says why)."""
    assert a.keys() == b.keys()
    for k in a:
        d = np.abs(a[k].astype(np.float64) - b[k])
        assert d.max() <= 2 * lr * steps + WEIGHT_ATOL, (k, d.max())
        assert np.mean(d > WEIGHT_ATOL) <= ROUNDOFF_SHARE, (k, int(np.sum(d > WEIGHT_ATOL)), d.size)


def _config(name):
    return {"tiny": TINY, "small_cnn": SMALL_CNN}.get(name) or load_config(os.path.join(CONFIGS, name))


SMALL_CNN = {  # conv -> pooling -> dropout -> dense: the dropout mask in the conv layout (N, C, H, W)
    "Network": {**TINY["Network"], "batch_size": 10},
    "Layers": {"conv": {"type": "conv", "in_channels": 1, "out_channels": 6, "kernel_size": 5, "weight_scale": 1,
                        "threshold": 1},
               "pool": {"type": "pooling", "kernel_size": 2, "threshold": 0.75},
               "drop": {"type": "dropout", "p": 0.3},
               "output": {"type": "linear", "n_inputs": 864, "n_outputs": 10, "weight_scale": 1, "threshold": 1}},
}

CASES = [  # (config, options, batch): dropout, the MLP, the CNN with both rules, BPTT, the count loss
    ("tiny", {}, 20),
    ("small_cnn", {}, 10),
    ("small_cnn", {"dropout_unit": "row"}, 10),
    ("tiny", {"dropout_unit": "sample", "target_filter": "single"}, 20),
    ("FashionMNIST_400_400.yaml", {}, 30),
    ("MNIST_CNN.yaml", {}, 12),
    ("paper2020/MNIST_CNN.yaml", {"variant": "paper2020"}, 12),
    ("paper2020/FashionMNIST_CNN.yaml", {"variant": "paper2020"}, 6),
    ("tiny", {"backward": "bptt"}, 20),
]


@pytest.mark.parametrize("name,options,batch", CASES, ids=[f"{c[0]}-{','.join(c[1]) or 'default'}" for c in CASES])
def test_one_training_step_equals_the_numpy_engine(name, options, batch):
    cfg = _config(name)
    x, y = load_mnist(batch, "train", np.float32)
    lr = cfg.network["lr"] if not isinstance(cfg, dict) else cfg["Network"]["lr"]

    numpy_eng = NumpyEngine()
    ref = numpy_eng.network(cfg, 3, options)
    grads_np = ref.gradients(x, y, train=True)[1]  # the step's gradient (same masks: same generator state)
    ref = numpy_eng.network(cfg, 3, options)
    loss_np, out_np, norm_np = numpy_eng.train_step(ref, x, y, numpy_eng.optimiser(ref, lr))

    eng = TorchEngine(Processes())
    net = eng.network(cfg, 3, options)
    opt = eng.optimiser(net, lr)
    seen = {}

    def hook(point):
        if point == "gradients":
            seen.update({k: p.grad.numpy().copy() for k, p in zip(opt.names, opt.params)})

    loss, out, norm = eng.train_step(net, x, y, opt, hook=hook)
    for k in grads_np:
        assert rel_err(seen[k], grads_np[k]) < TOL_NET32, k
    assert abs(loss - loss_np) <= 1e-5 * abs(loss_np) and abs(norm - norm_np) <= 1e-4 * norm_np
    assert np.abs(out - out_np).max() < 1e-5
    assert_weights_close(net.weights, ref.weights, lr, 1)
    # the dropout generator advanced identically (the masks were the same draws)
    assert net.rng.bit_generator.state == ref.rng.bit_generator.state


def test_the_torch_adamw_state_is_the_numpy_format():
    x, y = load_mnist(20, "train", np.float32)
    results = {}
    for eng in (NumpyEngine(), TorchEngine(Processes())):
        net = eng.network(TINY, 0, {})
        opt = eng.optimiser(net, 0.0005)
        for _ in range(2):
            eng.train_step(net, x, y, opt)
        results[eng.name] = opt.state_dict()
    a, b = results["numpy"], results["torch"]
    assert a["step"] == b["step"] == 2
    for key in ("m", "v"):
        for k in a[key]:
            assert b[key][k].dtype == a[key][k].dtype == np.float32 and b[key][k].shape == a[key][k].shape
            assert rel_err(b[key][k], a[key][k]) < 1e-4, (key, k)


@pytest.mark.parametrize("name,unit", [("FashionMNIST_400_400.yaml", "feature"), ("MNIST_CNN.yaml", "feature"),
                                       ("tiny", "feature"), ("small_cnn", "feature"), ("small_cnn", "row"),
                                       ("small_cnn", "sample")])
def test_saved_state_is_what_the_docs_say(name, unit):
    """saved_state_bytes against what autograd really keeps for the backward (weights excluded: saved by
    reference), measured with saved_tensors_hooks on one training forward."""
    from reference.engines.torch_engine import saved_state_bytes

    cfg = load_config(_config(name)) if name in ("tiny", "small_cnn") else _config(name)
    net = TorchEngine(Processes()).network(cfg, 0, {"dropout_unit": unit})
    params = {p.data_ptr() for p in net.module.parameters()}
    saved = {}

    def pack(t):
        if t.data_ptr() not in params:
            saved[(t.data_ptr(), tuple(t.shape), t.dtype)] = t.numel() * t.element_size()
        return t

    x, _ = load_mnist(6, "train", np.float32)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net.module(net.tensor(x), net.masks(6, slice(0, 6)))  # a training forward: dropout masks drawn
    assert sum(saved.values()) == sum(saved_state_bytes(cfg, 6, unit).values())


# ------------------------------------------------------------------------------------ resume across
@pytest.fixture(scope="module")
def splits():
    x, y = load_mnist(80, "train", np.float32)
    xt, yt = load_mnist(40, "test", np.float32)
    return Split(x, y, "fixture"), Split(xt, yt, "fixture")


def _train(out, splits, engine, epochs, resume=False):
    kw = dict(out_dir=str(out), epochs=epochs, progress=False, log=lambda *a: None, splits=splits, callbacks=[],
              engine=engine)
    if resume:
        return train(None, resume=True, **kw)
    return train(TINY, seed=2, **kw)


@pytest.mark.parametrize("first,second", [("numpy", "torch"), ("torch", "numpy")])
def test_a_run_resumes_on_the_other_engine(tmp_path, splits, first, second):
    _train(tmp_path / "mixed", splits, first, 1)
    mixed = _train(tmp_path / "mixed", splits, second, 2, resume=True)
    straight = _train(tmp_path / "straight", splits, "numpy", 2)
    steps = 2 * 80 // 20
    assert_weights_close(load_checkpoint(tmp_path / "mixed" / "checkpoint.npz")["weights"],
                         load_checkpoint(tmp_path / "straight" / "checkpoint.npz")["weights"], 0.0005, steps)
    assert mixed["epoch"] == straight["epoch"] == 2
    assert abs(mixed["train_loss"] - straight["train_loss"]) < 1e-4 * straight["train_loss"]
    ck = load_checkpoint(tmp_path / "mixed" / "checkpoint.npz")
    assert ck["meta"]["settings"]["engine"] == second and ck["adam"]["step"] == steps


def test_evaluate_and_diagnostics_read_torch_weights(tmp_path, splits, monkeypatch, capsys):
    import csv

    from reference.app import train as train_mod
    from reference.app.diagnostics import diagnostics
    from reference.network import Network

    result = train(TINY, out_dir=str(tmp_path / "run"), epochs=1, seed=2, progress=False, log=lambda *a: None,
                   splits=splits, callbacks=[], engine="torch", diagnostics=20)
    monkeypatch.setattr(train_mod, "load_split", lambda *a, **k: splits[1])
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "weights.npz")]) == 0
    assert f"accuracy={result['test_acc']:.6f}" in capsys.readouterr().out
    # the diagnostics row measured the torch weights of epoch 1 (the NumPy network was given them)
    (row,) = list(csv.DictReader(open(tmp_path / "run" / "diagnostics.csv")))
    net = Network(TINY, seed=2)
    net.set_weights(load_checkpoint(tmp_path / "run" / "weights.npz")["weights"])
    expected = diagnostics(net, splits[0].images, splits[0].labels[:20])
    assert abs(float(row["loss"]) - expected["loss"]) <= 1e-5 * expected["loss"]


# --------------------------------------------------------------------------------------- distributed
def _torchrun(args, n, env_extra=None, timeout=300):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    cmd = [torchrun] if torchrun else [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1", **(env_extra or {})}
    return subprocess.run(cmd + ["--standalone", "--nproc_per_node", str(n), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


DIST_CASES = [("tiny", {"dropout_unit": "feature"}, 20), ("paper2020/MNIST_CNN.yaml", {"variant": "paper2020"}, 10)]


@pytest.mark.integration
@pytest.mark.parametrize("name,options,batch", DIST_CASES, ids=["mlp-dropout", "cnn-paper2020"])
def test_two_processes_train_as_one(tmp_path, name, options, batch):
    """torchrun --nproc_per_node 2 (gloo on loopback) against one process, one epoch of 3 full batches and
    a last batch of 1 sample (process 1 gets none of it), 31 test digits (unequal shares).  Process 1
    alone gets SIGTERM after step 2: both stop at the same step and rank 0 writes the checkpoint; a
    resume under torchrun (process 1 reads the checkpoint it did not write) finishes the epoch.  Then
    the weights, AdamW's moments and every step's gradient norm equal the single process's; only rank 0
    wrote, and its files are the single process's."""
    cfg = _config(name)
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"config": cfg if isinstance(cfg, dict) else cfg.raw, "net_options": options}))
    worker = os.path.join(ROOT, "tests", "torch_engine_worker.py")
    args = [str(3 * batch + 1), str(batch)]
    one = subprocess.run([sys.executable, worker, str(tmp_path / "one"), str(spec), *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    stopped = _torchrun([worker, str(tmp_path / "two"), str(spec), *args], 2, {"TSSLBP_TEST_STOP_AT": "1:2"})
    assert stopped.returncode != 0  # interrupted (exit code 3 on both processes)
    mid = load_checkpoint(tmp_path / "two" / "checkpoint.npz")
    assert mid["meta"]["progress"]["batch"] == 2 and mid["adam"]["step"] == 2  # both stopped after step 2
    two = _torchrun([worker, str(tmp_path / "two"), str(spec), *args, "1", "1"], 2)
    assert two.returncode == 0, two.stderr[-3000:]

    a, b = (load_checkpoint(tmp_path / d / "checkpoint.npz") for d in ("one", "two"))
    lr = cfg["Network"]["lr"] if isinstance(cfg, dict) else cfg.network["lr"]
    assert_weights_close(b["weights"], a["weights"], lr, 4)
    assert b["adam"]["step"] == a["adam"]["step"] == 4
    for key in ("m", "v"):  # AdamW's moments carry the gradient's scale (the weights alone hardly do)
        for k in a["adam"][key]:
            assert rel_err(b["adam"][key][k], a["adam"][key][k]) < 1e-4, (key, k)
    assert b["meta"]["rng"] == a["meta"]["rng"]  # the same dropout draws, on every process
    read = lambda d, f: json.loads((tmp_path / d / f).read_text())  # noqa: E731
    single = read("one", "norms_rank0.json")
    for rank in (0, 1):  # every process saw the whole batch's gradient, the single process's (clipping
        both = read("two", f"norms_rank{rank}.json") + read("two", f"norms_rank{rank}_resumed.json")  # hides a scale)
        assert len(single) == 4 and np.allclose(both, single, rtol=1e-5, atol=0), (rank, both, single)
    run_files = lambda d: sorted(f for f in os.listdir(tmp_path / d) if not f.startswith("norms_"))  # noqa: E731
    assert run_files("two") == run_files("one")
    assert set(np.load(tmp_path / "two" / "checkpoint.npz").files) == set(np.load(tmp_path / "one" / "checkpoint.npz").files)
    pa, pb = a["meta"]["progress"], b["meta"]["progress"]
    # The weights agree to a tolerance only (the two processes sum the gradient in another order), and a
    # membrane within round-off of the threshold can flip one spike decision, so one test digit of the 31 may differ;
    # the test loss below, which every digit's PSP enters continuously, is held at 1e-5.
    assert abs(pb["metrics"][0]["test_acc"] - pa["metrics"][0]["test_acc"]) * 31 <= 1 + 1e-9
    assert abs(pb["metrics"][0]["test_loss"] - pa["metrics"][0]["test_loss"]) < 1e-5 * pa["metrics"][0]["test_loss"]
    assert abs(pb["metrics"][0]["train_loss"] - pa["metrics"][0]["train_loss"]) < 1e-5 * pa["metrics"][0]["train_loss"]


@pytest.mark.integration
def test_the_paper2020_switch_reads_the_whole_batch_across_processes(tmp_path):
    """The paper-era rule switches a layer on the firing rate of the whole batch.  Half digits, half black
    images: process 1's share fires not at all, so a local rate would put it on the warm-up branch while
    the batch's rate does not; the gradient must still be the single process's."""
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"config": load_config(os.path.join(CONFIGS, "paper2020", "MNIST_CNN.yaml")).raw,
                                "net_options": {"variant": "paper2020"}}))
    worker = os.path.join(ROOT, "tests", "torch_engine_worker.py")
    one = subprocess.run([sys.executable, worker, "step", str(tmp_path / "one"), str(spec), "8"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    two = _torchrun([worker, "step", str(tmp_path / "two"), str(spec), "8"], 2)
    assert two.returncode == 0, two.stderr[-3000:]
    a = np.load(tmp_path / "one" / "grads_rank0.npz")
    for rank in (0, 1):
        b = np.load(tmp_path / "two" / f"grads_rank{rank}.npz")
        for k in a.files:
            assert rel_err(b[k], a[k]) < TOL_NET32, (rank, k)


# -------------------------------------------------------------------------------------------- errors
def test_engine_errors_name_the_fix(monkeypatch):
    if not torch.cuda.is_available():
        with pytest.raises(EngineError, match="CUDA is not available"):
            make_engine("torch", "cuda")
    with pytest.raises(EngineError, match="cpu, cuda or cuda:N"):
        make_engine("torch", "tpu")
    with pytest.raises(EngineError, match="--engine torch"):
        make_engine("numpy", "cuda")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(EngineError, match="does not divide by the 2 processes"):
        make_engine("torch", None, batch_size=15)  # checked before joining any process group
    with pytest.raises(EngineError, match="needs --engine torch"):
        make_engine("numpy", None, batch_size=16)
    with pytest.raises(EngineError, match="exists on the NumPy engine only"):
        TorchEngine(Processes()).network(TINY, 0, {"input_encoding": "authors"})


def test_cli_reports_engine_errors_in_one_line(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "tiny.yaml"
    import yaml

    cfg.write_text(yaml.safe_dump(TINY, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    if not torch.cuda.is_available():
        assert main(["train", "--config", str(cfg), "--engine", "torch", "--device", "cuda", "--out", "r"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "CUDA is not available" in err and "--device cpu" in err
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["train", "--config", str(cfg), "--engine", "torch", "--batch-size", "15", "--out", "r"]) == 2
    assert "does not divide by the 2 processes" in capsys.readouterr().err
    assert not os.path.exists("r")
