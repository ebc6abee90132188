"""Command line: the gradients export (contents, layouts) and its errors (message, exit code 2, nothing written)."""
import importlib.util
import os

import numpy as np
import pytest

from reference.app.cli import main
from reference.network import Network
from test_core import TINY_CNN, mnist

ROOT = os.path.join(os.path.dirname(__file__), "..")
CFG = os.path.join(ROOT, "configs", "MNIST_CNN.yaml")


@pytest.fixture()
def files(tmp_path):
    net = Network(CFG, seed=1)
    np.savez(tmp_path / "W.npz", **net.weights)
    x, y = mnist(4)
    np.savez(tmp_path / "X.npz", input=x.astype(np.float32), labels=y)
    return tmp_path, net, x, y


def run(tmp_path, **kw):
    args = {"config": CFG, "weights": tmp_path / "W.npz", "inputs": tmp_path / "X.npz", "out": tmp_path / "G.npz", **kw}
    return main(["gradients"] + [f"--{k}={v}" for k, v in args.items()])


def test_gradients_export_layouts_and_values(files):
    tmp_path, net, x, y = files
    assert run(tmp_path) == 0
    g = np.load(tmp_path / "G.npz")
    loss, grads, _ = net.gradients(x.astype(np.float32), y)
    assert float(g["loss"]) == pytest.approx(loss, rel=1e-6)  # same float32 computation
    for name, w in net.weights.items():
        assert g[f"grad/{name}"].shape == w.shape
        np.testing.assert_allclose(g[f"grad/{name}"], grads[name], rtol=1e-5, atol=1e-8)
    assert g["output/conv_1"].shape == (4, 15, 24, 24, 5)      # (N, C, H, W, T)
    assert g["output/FC_1"].shape == (4, 300, 1, 1, 5)         # linear: (N, F, 1, 1, T)
    assert g["delta/pooling_2"].shape == (4, 40, 4, 4, 5)


@pytest.mark.parametrize("change,message", [
    (lambda d, p: np.savez(p / "X.npz", images=d["input"], labels=d["labels"]), "missing array 'input'"),
    (lambda d, p: np.savez(p / "X.npz", input=d["input"][:, :, :20], labels=d["labels"]), "has shape"),
    (lambda d, p: np.savez(p / "X.npz", input=d["input"] * np.nan, labels=d["labels"]), "NaN"),
    (lambda d, p: np.savez(p / "X.npz", input=d["input"], labels=d["labels"] + 20), "labels"),
    (lambda d, p: np.savez(p / "X.npz", input=d["input"].astype(np.int64), labels=d["labels"]), "floating point"),
    # sixth pass: no images at all was told the shape it has is wrong
    (lambda d, p: np.savez(p / "X.npz", input=d["input"][:0], labels=d["labels"][:0]),
     "'input' holds no images (shape (0, 1, 28, 28))"),
])
def test_gradients_bad_inputs(files, capsys, change, message):
    tmp_path = files[0]
    with np.load(tmp_path / "X.npz") as d:
        change({k: d[k] for k in d.files}, tmp_path)
    assert run(tmp_path) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "G.npz").exists()


def test_gradients_bad_weights_and_files(files, capsys):
    tmp_path, net = files[:2]
    w = dict(net.weights)
    w["conv_9"] = w.pop("conv_1")
    np.savez(tmp_path / "Wbad.npz", **w)
    assert run(tmp_path, weights=tmp_path / "Wbad.npz") == 2
    assert "conv_9" in capsys.readouterr().err
    w = dict(net.weights)
    w["FC_1"] = w["FC_1"].T
    np.savez(tmp_path / "Wbad.npz", **w)
    assert run(tmp_path, weights=tmp_path / "Wbad.npz") == 2
    assert "FC_1" in capsys.readouterr().err
    assert run(tmp_path, inputs=tmp_path / "missing.npz") == 2
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    assert run(tmp_path, inputs=tmp_path / "junk.npz") == 2
    assert not (tmp_path / "G.npz").exists()


def test_bad_config_is_one_clear_error(tmp_path, capsys, files):
    bad = tmp_path / "bad.yaml"
    bad.write_text(open(CFG).read().replace("n_inputs: 640", "n_inputs: 600"))
    assert run(files[0], config=bad) == 2
    err = capsys.readouterr().err
    assert "FC_1" in err and "n_inputs" in err and "640" in err


def test_evaluate_reports_machine_readable_accuracy(tmp_path, capsys):
    from reference.app.train import Split, train
    x, y = mnist(60)
    split = Split(x.astype(np.float32), y, "fixture")
    cfg = {**TINY_CNN, "Network": {**TINY_CNN["Network"], "epochs": 1, "batch_size": 20, "lr": 5e-4}}
    train(cfg, out_dir=str(tmp_path / "run"), progress=False, log=lambda *a: None, splits=(split, split))
    assert main(["evaluate", "--checkpoint", str(tmp_path / "run" / "missing.npz")]) == 2
    assert "not found" in capsys.readouterr().err


# ------------------------------------------------------------------- train / evaluate: errors and files
@pytest.fixture()
def cli_data(monkeypatch, tmp_path):
    """``train`` and ``evaluate`` through the CLI on fixture digits (load_split patched), in tmp_path."""
    import yaml

    from reference.app import train as train_mod
    from reference.app.train import Split
    from test_train import TINY

    x, y = mnist(60)
    split = Split(x.astype(np.float32), y, "fixture")
    monkeypatch.setattr(train_mod, "load_split", lambda *a, **k: split)
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump({**TINY, "Network": {**TINY["Network"], "epochs": 1}}, sort_keys=False))
    return cfg


def test_train_cli_refuses_to_lose_a_run(cli_data, capsys):
    args = ["train", "--config", str(cli_data), "--out", "run", "--no-progress"]
    assert main(args) == 0
    weights = open("run/weights.npz", "rb").read()
    assert main(args) == 2  # the same command twice: refused, nothing touched
    assert "--resume run" in capsys.readouterr().err
    assert open("run/weights.npz", "rb").read() == weights
    assert main(args + ["--overwrite"]) == 0
    assert main(["train", "--resume", "run", "--seed", "4"]) == 2
    assert "seed=4" in capsys.readouterr().err
    assert main(["train", "--resume", "run", "--epochs", "2", "--no-progress"]) == 0
    assert len(open("run/metrics.csv").read().splitlines()) == 3  # header + 2 epochs
    capsys.readouterr()
    assert main(["train", "--resume", "run", "--no-progress"]) == 0  # finished: it said "resuming" first
    said = capsys.readouterr()
    assert "nothing to do: the run has finished 2 epochs" in said.err + said.out
    assert "resuming" not in said.err + said.out


@pytest.mark.parametrize("argv,message", [
    (["train", "--resume", "nothere"], "no such run folder"),
    (["train", "--config", "tiny.yaml", "--seed", "-1"], "--seed must be >= 0"),
    (["train", "--config", "tiny.yaml", "--batch-size", "100000000000"], "smaller batch"),
    (["train", "--config", ".", "--out", "x"], "folder"),
    (["train", "--config", "tiny.yaml", "--out", "tiny.yaml"], "is a file"),
    (["evaluate", "--checkpoint", "."], "is a folder"),
    (["evaluate", "--checkpoint", "junk.npz"], "not a readable .npz"),
    (["evaluate", "--checkpoint", "notes.npz"], "not an .npz archive (it does not start as a zip file does)"),
    (["evaluate", "--checkpoint", "empty.npz"], "is an .npz archive that holds no arrays"),  # was "not an .npz"
    (["evaluate", "--checkpoint", "plain.npz"], "give --config"),
    (["evaluate", "--checkpoint", "badconfig.npz"], "config_yaml"),
])
def test_cli_errors_are_one_line_exit_2_and_leave_nothing(cli_data, capsys, argv, message):
    import os as _os

    from reference.network import Network

    open("junk.npz", "wb").write(b"PK\x03\x04 truncated")
    open("notes.npz", "w").write("my notes\n")  # NumPy's own message suggested allow_pickle=True for it
    net = Network(str(cli_data), seed=0)
    np.savez("plain.npz", **net.weights)
    np.savez("empty.npz")
    np.savez("badconfig.npz", config_yaml=np.array("Network: [unclosed"), **net.weights)
    before = sorted(_os.listdir("."))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(_os.listdir(".")) == before


def test_evaluate_plain_weights_with_config_and_gradients_take_run_weights(cli_data, capsys, tmp_path):
    assert main(["train", "--config", str(cli_data), "--out", "run", "--no-progress"]) == 0
    capsys.readouterr()
    from reference.app.runs import read_weights

    np.savez("plain.npz", **read_weights("run/weights.npz"))  # what import-checkpoint writes: no config inside
    assert main(["evaluate", "--checkpoint", "plain.npz", "--config", str(cli_data), "--no-progress"]) == 0
    plain = capsys.readouterr().out.splitlines()[-1]
    assert main(["evaluate", "--checkpoint", "run/weights.npz", "--no-progress"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == plain
    x, y = mnist(4)
    np.savez("X.npz", input=x.astype(np.float32), labels=y)
    assert main(["gradients", "--config", str(cli_data), "--weights", "run/weights.npz", "--inputs", "X.npz",
                 "--out", "G.npz"]) == 0  # the project's own weights file is accepted
    np.savez("X.npz", input=(x * 1e300), labels=y)  # float64 beyond float32's range
    assert main(["gradients", "--config", str(cli_data), "--weights", "run/weights.npz", "--inputs", "X.npz",
                 "--out", "G2.npz"]) == 2
    assert "float32" in capsys.readouterr().err and not (tmp_path / "G2.npz").exists()


def test_out_never_replaces_inputs_run_files_or_special_files(files, capsys):
    tmp_path = files[0]
    (tmp_path / "run").mkdir()
    np.savez(tmp_path / "run" / "checkpoint.npz", x=np.zeros(1))
    (tmp_path / "run" / "weights.npz").write_bytes(b"results")
    os.symlink(tmp_path / "victim.txt", tmp_path / "link.npz")
    for out in (tmp_path / "X.npz", tmp_path / "W.npz", tmp_path / "run" / "weights.npz", tmp_path / "link.npz"):
        assert run(tmp_path, out=out) == 2
        assert "--out" in capsys.readouterr().err
    assert (tmp_path / "run" / "weights.npz").read_bytes() == b"results"
    assert not (tmp_path / "victim.txt").exists()


def test_variant_paper2020_through_the_cli(cli_data, capsys):
    """--variant paper2020 trains (one epoch of the tiny config), is part of the run's settings (a resume
    with the other variant is refused), is what evaluate uses by default for the run, and changes the
    gradients command's output against the final rule."""
    from reference.app.runs import load_checkpoint

    assert main(["train", "--config", str(cli_data), "--out", "run", "--variant", "paper2020", "--no-progress"]) == 0
    ck = load_checkpoint("run/checkpoint.npz")
    assert ck["meta"]["settings"]["net_options"]["variant"] == "paper2020"
    capsys.readouterr()
    assert main(["train", "--resume", "run", "--variant", "final", "--epochs", "2"]) == 2
    assert "variant" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", "run/weights.npz", "--no-progress"]) == 0
    own = capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", "run/weights.npz", "--variant", "final", "--no-progress"]) == 0
    final = capsys.readouterr().out
    assert own.splitlines()[-1] == final.splitlines()[-1]  # the same forward: the same accuracy
    loss_of = lambda text: text.split("loss ")[1].split(";")[0]
    assert loss_of(own) != loss_of(final)  # but another loss target
    x, y = mnist(5)
    np.savez("X.npz", input=x.astype(np.float32), labels=y)
    base = ["gradients", "--config", str(cli_data), "--weights", "run/weights.npz", "--inputs", "X.npz"]
    assert main(base + ["--out", "G2020.npz", "--variant", "paper2020"]) == 0
    assert main(base + ["--out", "Gfinal.npz", "--variant", "final"]) == 0
    assert main(base + ["--out", "Grun.npz"]) == 0  # no flag: the options the weights file records
    g20, gf, grun = np.load("G2020.npz"), np.load("Gfinal.npz"), np.load("Grun.npz")
    grad_keys = [k for k in g20.files if k.startswith("grad")]
    assert grad_keys and any(not np.allclose(g20[k], gf[k]) for k in grad_keys)
    assert all(np.array_equal(g20[k], grun[k]) for k in g20.files)
    assert main(["train", "--config", str(cli_data), "--out", "run2", "--variant", "paper2020",
                 "--warmup", "always"]) == 2
    assert "layer-wise warm-up switch" in capsys.readouterr().err
    for other in ([], ["--variant", "paper2020", "--backward", "bptt"]):
        assert main(["train", "--config", str(cli_data), "--out", "run3", "--rate-threshold", "0.05"] + other) == 2
        assert "it needs variant='paper2020' (--variant paper2020) and backward='tsslbp'" in capsys.readouterr().err
    for bad in ("1.5", "often"):
        with pytest.raises(SystemExit) as exit_:
            main(["train", "--config", str(cli_data), "--out", "run3", "--variant", "paper2020",
                  "--rate-threshold", bad])
        assert exit_.value.code == 2 and "a number in [0, 1]" in capsys.readouterr().err
    assert not os.path.exists("run3")
    assert main(["gradients"] + base[1:] + ["--out", "G0.npz", "--variant", "paper2020",
                                            "--rate-threshold", "0"]) == 0
    g0 = np.load("G0.npz")
    assert any(not np.allclose(g0[k], g20[k]) for k in grad_keys)  # the threshold reaches the rule
    assert main(["train", "--config", str(cli_data), "--out", "run4", "--variant", "paper2020",
                 "--rate-threshold", "0.05", "--no-progress"]) == 0
    assert load_checkpoint("run4/checkpoint.npz")["meta"]["settings"]["net_options"]["rate_threshold"] == 0.05
    # resuming keeps the run's threshold; giving the run's own value again is no conflict, another one is
    capsys.readouterr()
    assert main(["train", "--resume", "run4", "--rate-threshold", "0.1", "--epochs", "2", "--no-progress"]) == 2
    assert "rate_threshold=0.1 (the run has 0.05)" in capsys.readouterr().err
    assert main(["train", "--resume", "run4", "--rate-threshold", "0.05", "--epochs", "2", "--no-progress"]) == 0
    ck4 = load_checkpoint("run4/checkpoint.npz")["meta"]
    assert len(ck4["progress"]["metrics"]) == 2 and ck4["settings"]["net_options"]["rate_threshold"] == 0.05
    # a paper-era run started without --rate-threshold has the default switch, 0.1: naming it is no conflict
    assert main(["train", "--resume", "run", "--rate-threshold", "0.1", "--epochs", "2", "--no-progress"]) == 0
    assert main(["train", "--resume", "run", "--rate-threshold", "0.05", "--epochs", "3", "--no-progress"]) == 2
    assert "rate_threshold=0.05 (the run has 0.1)" in capsys.readouterr().err


def test_old_weights_files_take_their_options_from_settings_json(cli_data, capsys):
    """Weights files from before the settings went inside them (the November runs in results/) have a
    ``settings.json`` beside them; evaluate and diagnose rebuild the run's network from it (the paper-era
    loss target here), and a broken one is a one-line error, not a trace."""
    import json

    from reference.app.runs import load_checkpoint, read_npz

    assert main(["train", "--config", str(cli_data), "--out", "run", "--variant", "paper2020", "--no-progress"]) == 0
    arrays = read_npz("run/weights.npz")
    meta = json.loads(str(arrays["meta_json"]))
    old = {**arrays, "meta_json": json.dumps({"epoch": meta["epoch"], "test_acc": meta["test_acc"]})}
    os.makedirs("old")
    np.savez("old/weights.npz", **old)  # as written in November: no net_options, no seed
    assert load_checkpoint("old/weights.npz")["meta"].get("net_options") is None
    evaluate = ["evaluate", "--checkpoint", "old/weights.npz", "--no-progress"]
    assert main(evaluate) == 0
    final_loss = capsys.readouterr().out
    (open("old/settings.json", "w")).write(json.dumps({"seed": 0, "net_options": {"variant": "paper2020"}}))
    ck = load_checkpoint("old/weights.npz")
    assert ck["meta"]["net_options"] == {"variant": "paper2020"} and ck["meta"]["epoch"] == meta["epoch"]
    assert main(evaluate) == 0
    from_settings = capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", "run/weights.npz", "--no-progress"]) == 0
    loss_of = lambda text: text.split("loss ")[1].split(";")[0]
    assert loss_of(from_settings) == loss_of(capsys.readouterr().out)  # the run's own loss target
    assert loss_of(from_settings) != loss_of(final_loss)
    assert load_checkpoint("run/weights.npz")["meta"]["net_options"] == {"variant": "paper2020"}  # file wins
    open("old/settings.json", "w").write("[1, 2]")
    assert main(evaluate) == 2
    assert "settings.json: expected" in capsys.readouterr().err
    open("old/settings.json", "w").write("{oops")
    assert main(evaluate) == 2
    assert "not a readable settings file" in capsys.readouterr().err


def test_evaluate_and_diagnose_rebuild_the_run_with_every_recorded_option(cli_data, capsys):
    """A run trained with the paper's single-filtered target and the authors' input encoding: evaluate
    rebuilds it with both (not from its variant only), so the loss it prints on the run's own test split is
    the test loss the run recorded; diagnose and gradients take the same options from the file."""
    import csv

    assert main(["train", "--config", str(cli_data), "--out", "run", "--target-filter", "single",
                 "--input-encoding", "authors", "--no-progress"]) == 0
    with open("run/metrics.csv") as fh:
        recorded = float(list(csv.DictReader(fh))[-1]["test_loss"])
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", "run/weights.npz", "--no-progress"]) == 0
    printed = float(capsys.readouterr().out.split("loss ")[1].split(";")[0])
    assert printed == pytest.approx(recorded, rel=1e-3, abs=1e-4)  # both printed to 4 significant places
    from reference.app.cli import _load_run_weights

    net, _, _ = _load_run_weights("run/weights.npz", None)
    assert net.net_options.record() == {"target_filter": "single", "input_encoding": "authors"}
    other = Network(str(cli_data), seed=0)  # the default target: another loss on the same weights
    assert not np.array_equal(other.target, net.target)


def test_hostile_npz_files_are_refused_from_their_headers(tmp_path, capsys):
    """An .npz is checked member by member from its headers before anything is decompressed (issue 30,
    item 9): a small file declaring a large array, a member that is not an array, a pickled object array;
    each is one line, exit 2, from any command that reads weights."""
    import zipfile

    from reference.app.runs import CheckpointError, read_npz

    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, w=np.zeros(100 << 18, np.float32))  # 100 MiB of zeros in ~100 KB
    assert bomb.stat().st_size < 1 << 20
    text = tmp_path / "text.npz"
    with zipfile.ZipFile(text, "w") as zf:
        zf.writestr("notes.txt", "hello")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, w=np.array([{"a": 1}], dtype=object))
    for path, message in ((bomb, "refused before decompressing"), (text, "'notes.txt' is not an array"),
                          (pickled, "holds Python objects")):
        with pytest.raises(CheckpointError, match=message):
            read_npz(path, "weights")
        assert main(["evaluate", "--checkpoint", str(path), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    small = tmp_path / "small.npz"
    np.savez_compressed(small, w=np.zeros(1 << 20, np.float32))  # 4 MiB of zeros: under the free 64 MiB
    assert read_npz(small)["w"].shape == (1 << 20,)


@pytest.mark.parametrize("argv", [["train", "--config", "c.yaml", "--out", ""], ["evaluate", "--checkpoint", ""],
                                  ["demo", "--out", ""], ["train", "--config", ""],
                                  # sixth pass: positional paths and compare's were not checked
                                  ["summarize", ""], ["diagnose", "w.npz", ""], ["compare", "--ours", "", "--theirs", "t"],
                                  ["export-checkpoint", "", "--config", "c.yaml", "--out", "o.pth"]])
def test_an_empty_path_is_refused_not_replaced_by_a_default(argv, capsys, tmp_path, monkeypatch):
    """--out "" silently trained into the default folder (issue 30, messages): an empty path is one line."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "is empty; give a path" in err and os.listdir(tmp_path) == []


def test_evaluate_with_another_config_names_the_config_not_the_blas(cli_data, capsys, tmp_path):
    """evaluate --config CFG that differs from the run's blamed 'the NumPy versions' (issue 30, messages)."""
    import yaml

    assert main(["train", "--config", str(cli_data), "--out", "run", "--no-progress"]) == 0
    raw = yaml.safe_load(cli_data.read_text())
    raw["Network"]["tau_m"] = 4
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(raw, sort_keys=False))
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", "run/weights.npz", "--config", str(other), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "differs from the config inside run/weights.npz (Network: tau_m)" in out and "NumPy" not in out
    # diagnose and gradients used such a --config without a word (issue 30, second pass): now a note
    assert main(["diagnose", "run/weights.npz", "--config", str(other), "--samples", "8"]) == 0
    assert "note: --config " + str(other) + " differs from the config inside run/weights.npz (Network: tau_m)" in \
        capsys.readouterr().err
    x, y = np.zeros((2, 1, 28, 28), np.float32), np.array([0, 1])
    np.savez(tmp_path / "inputs.npz", input=x, labels=y)
    assert main(["gradients", "--config", str(other), "--weights", "run/weights.npz", "--inputs",
                 str(tmp_path / "inputs.npz"), "--out", str(tmp_path / "g.npz")]) == 0
    assert "differs from the config inside run/weights.npz (Network: tau_m): these gradients are for --config" in \
        capsys.readouterr().err
    first = next(iter(raw["Layers"].values()))  # eleventh pass F4: a layer's change beside a Network key's was not named
    first["threshold"] = 1.5
    other.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert main(["evaluate", "--checkpoint", "run/weights.npz", "--config", str(other), "--no-progress"]) == 0
    assert "differs from the config inside run/weights.npz (Network: tau_m; its layers)" in capsys.readouterr().out


def test_out_files_that_are_not_the_commands_own_are_never_replaced(files, capsys):
    """Issue 30 (adversarial pass, 7 Dec): gradients, import-checkpoint and export-checkpoint --out replaced
    any existing file (a user's notes, their dataset's train.npz, a run's weights with their config), and
    summarize and bptt-compare their outputs' namesakes.  Each now replaces only a file of its own kind."""
    tmp_path, net, x, y = files
    notes = tmp_path / "notes.txt"
    notes.write_text("keep me\n")
    dataset = tmp_path / "train.npz"
    np.savez(dataset, x=x.astype(np.float32), labels=y)
    for target in (notes, dataset):
        before = target.read_bytes()
        assert run(tmp_path, out=target) == 2
        assert "is not a gradients archive" in capsys.readouterr().err and target.read_bytes() == before
    assert run(tmp_path) == 0 and run(tmp_path) == 0  # its own archive is replaced, as before
    yours = tmp_path / "G_yours.npz"  # fourth pass F1: a user's own archive of the same keys, compare's --theirs
    np.savez(yours, loss=np.float32(1), **{"grad/conv_1": np.ones((15, 1, 5, 5), np.float32)})
    before = yours.read_bytes()
    assert run(tmp_path, out=yours) == 2 and yours.read_bytes() == before
    assert "is not a gradients archive this command wrote" in capsys.readouterr().err
    log = tmp_path / "log.npz"  # second pass: any .npz with a 'loss' member was taken for a gradients archive
    np.savez(log, loss=np.linspace(1, 0, 100))
    before = log.read_bytes()
    assert run(tmp_path, out=log) == 2 and log.read_bytes() == before
    capsys.readouterr()
    from test_summary import _run as one_run

    summary = tmp_path / "runs"
    summary.mkdir()
    one_run(summary, "one", "MNIST_CNN.yaml", [0.99], 3)
    (summary / "summary.md").write_text("# my notes on these runs\n")
    assert main(["summarize", str(summary)]) == 2
    assert "summary.md exists and is not a summary this command wrote" in capsys.readouterr().err
    assert (summary / "summary.md").read_text() == "# my notes on these runs\n"
    assert not (summary / "summary.csv").exists()  # refused before anything was written
    (summary / "summary.md").unlink()
    assert main(["summarize", str(summary)]) == 0 and main(["summarize", str(summary)]) == 0  # its own: replaced
    for name, header in (("summary.csv", "group,my notes\n"), ("runs.csv", "run,my own column\n")):
        own = (summary / name).read_bytes()  # third pass F5: a CSV was recognised by its first column only
        (summary / name).write_text(header + "a,b\n")
        assert main(["summarize", str(summary)]) == 2
        assert f"{name} exists and is not a CSV this command wrote" in capsys.readouterr().err
        assert (summary / name).read_text() == header + "a,b\n"
        (summary / name).write_bytes(own)


def test_import_and_export_checkpoint_replace_only_their_own_kind(files, capsys):
    pytest.importorskip("torch")
    tmp_path, net, x, y = files
    from reference.app.authors_checkpoint import export_checkpoint
    from reference.config import load_config

    export_checkpoint(net.weights, load_config(CFG), tmp_path / "a.pth")
    doc = tmp_path / "doc.txt"
    doc.write_text("keep\n")
    for command in (["export-checkpoint", str(tmp_path / "W.npz"), "--config", CFG, "--out", str(doc)],
                    ["import-checkpoint", str(tmp_path / "a.pth"), "--config", CFG, "--out", str(doc)]):
        assert main(command) == 2 and doc.read_text() == "keep\n"
        assert "exists and is not" in capsys.readouterr().err
    run_weights = tmp_path / "run_weights.npz"  # a run's weights: arrays and the config they belong to
    np.savez(run_weights, **net.weights, config_yaml=np.array("Network: {}"))
    before = run_weights.read_bytes()
    assert main(["import-checkpoint", str(tmp_path / "a.pth"), "--config", CFG, "--out", str(run_weights)]) == 2
    assert run_weights.read_bytes() == before
    # second pass: any .npz of arrays was taken for imported weights, any torch.save zip for an export
    inputs = tmp_path / "my_inputs.npz"
    np.savez(inputs, input=x.astype(np.float32), labels=y)
    model = tmp_path / "model.pth"
    import torch
    torch.save({"model": torch.arange(3)}, model)
    for command, target in ((["import-checkpoint", str(tmp_path / "a.pth"), "--config", CFG], inputs),
                            (["export-checkpoint", str(tmp_path / "W.npz"), "--config", CFG], model)):
        before = target.read_bytes()
        assert main(command + ["--out", str(target)]) == 2 and target.read_bytes() == before
        assert "exists and is not" in capsys.readouterr().err
    # third pass F4/F7: an authors' training checkpoint (net, optimizer, epoch) and a user's own weights of
    # the config's layer names were replaced; now only files carrying the command's mark are
    training = tmp_path / "authors_training.pth"
    state = {f"my_parameters.{i}": torch.zeros(2) for i in range(len(net.weights))}
    torch.save({"net": state, "optimizer": {"lr": 5e-4}, "epoch": 40}, training)
    own = tmp_path / "my_weights.npz"
    np.savez(own, **net.weights)  # the very arrays and names import-checkpoint writes, but not its file
    for command, target in ((["export-checkpoint", str(tmp_path / "W.npz"), "--config", CFG], training),
                            (["import-checkpoint", str(tmp_path / "a.pth"), "--config", CFG], own)):
        before = target.read_bytes()
        assert main(command + ["--out", str(target)]) == 2 and target.read_bytes() == before
        assert "exists and is not" in capsys.readouterr().err
    out = tmp_path / "imported.npz"
    for _ in range(2):  # a file import-checkpoint wrote is replaced
        assert main(["import-checkpoint", str(tmp_path / "a.pth"), "--config", CFG, "--out", str(out)]) == 0
    with np.load(out) as got:  # the mark is the zip's comment: the file holds the layers' arrays only
        assert sorted(got) == sorted(net.weights)
    for _ in range(2):  # and export-checkpoint replaces its own .pth
        assert main(["export-checkpoint", str(out), "--config", CFG, "--out", str(tmp_path / "b.pth")]) == 0
    assert sorted(torch.load(tmp_path / "b.pth", weights_only=True)) == ["net", "written_by"]


@pytest.mark.parametrize("meta,words", [
    ("[1, 2, 3]", "its meta_json is list, not a mapping"), ('"text"', "its meta_json is str"),
    ("null", "its meta_json is NoneType"), ('{"net_options": [1]}', "field 'net_options' is [1], not a mapping"),
    ('{"epoch": "two"}', "field 'epoch' is 'two', not a whole number"),
    ('{"test_acc": NaN}', "field 'test_acc' is nan, not an accuracy in [0, 1]"),
    ("[" * 100000 + "]" * 100000, "not valid JSON (RecursionError)"),
], ids=["list", "str", "null", "options-list", "epoch-text", "acc-nan", "deep"])
def test_a_weights_file_with_a_broken_record_is_one_line(files, capsys, meta, words):
    """Issue 30 (adversarial pass, 7 Dec): a weights file whose meta_json is not a mapping of the recorded
    fields (or a field of the wrong type) gave AttributeError, TypeError, ValueError or RecursionError."""
    tmp_path, net, x, y = files
    from reference.config import load_config

    bad = tmp_path / "bad.npz"
    np.savez(bad, **net.weights, config_yaml=np.array(open(CFG).read()), meta_json=np.array(meta))
    assert main(["evaluate", "--checkpoint", str(bad), "--limit", "4", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert load_config(CFG)  # (the config inside is the good one: only the record is broken)


def test_gradients_that_overflow_are_refused_not_written(files, capsys):
    """Issue 30 (adversarial pass, 7 Dec): inputs of 1e38 (finite in float32) gave all-NaN gradients, written
    with exit 0.  Non-finite results are named and nothing is written."""
    tmp_path, net, x, y = files
    mlp = os.path.join(ROOT, "configs", "FashionMNIST_400_400.yaml")
    np.savez(tmp_path / "W_mlp.npz", **Network(mlp, seed=1).weights)
    np.savez(tmp_path / "X.npz", input=np.full(x.shape, 1e38, np.float32), labels=y)
    assert run(tmp_path, config=mlp, weights=tmp_path / "W_mlp.npz") == 2
    err = capsys.readouterr().err
    assert "hold NaN or inf" in err and "overflow float32; nothing written" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "G.npz").exists()


def test_weights_too_large_to_be_trained_are_one_line(files, capsys):
    """Issue 30 (adversarial pass, 7 Dec): weights of 1e38 (finite) overflowed the first product, printing
    NumPy's warnings before 'the input current contains NaN or inf'.  Beyond 1e6 they are refused, named."""
    import warnings

    tmp_path, net, x, y = files
    big = {k: v.copy() for k, v in net.weights.items()}
    big["FC_1"][0, 0] = 1e38
    np.savez(tmp_path / "W.npz", **big)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert run(tmp_path) == 2
    assert "weights: layer 'FC_1' holds 1e+38 in size" in capsys.readouterr().err


def test_a_config_yaml_that_is_not_text_is_named(files, capsys):
    """Issue 30 (adversarial pass, 7 Dec): config_yaml stored as bytes (uint8) or an int was parsed from its
    repr and reported as '<dict>: the top level is a list', naming neither the file nor the member."""
    tmp_path, net, x, y = files
    for i, value in enumerate((np.frombuffer(b"Network: 1", np.uint8), np.array(5), np.array("- 1"))):
        bad = tmp_path / f"c{i}.npz"
        np.savez(bad, **net.weights, config_yaml=value)
        assert main(["evaluate", "--checkpoint", str(bad), "--limit", "4", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"c{i}.npz" in err and "<dict>" not in err, err
        assert ("not the config's YAML text" in err) if i < 2 else ("(config_yaml): the top level is a list" in err)


def test_an_out_below_a_file_names_the_file(files, capsys):
    """Third pass F20: --out afile/x said "output folder does not exist" of a path that does exist, as a file."""
    tmp_path = files[0]
    (tmp_path / "afile").write_text("mine\n")
    assert run(tmp_path, out=tmp_path / "afile" / "G.npz") == 2
    assert f"{tmp_path / 'afile'} is a file, not a folder" in capsys.readouterr().err


def test_a_missing_numba_is_one_line(tmp_path):
    """Second pass F13: without Numba every command ended in a chain of two tracebacks; now one line
    saying how to install it (a stand-in package that fails to import plays the missing one)."""
    import subprocess
    import sys

    (tmp_path / "numba").mkdir()
    (tmp_path / "numba" / "__init__.py").write_text("raise ImportError('No module named numba', name='numba')\n")
    proc = subprocess.run([sys.executable, "-m", "reference", "evaluate", "--checkpoint", "w.npz"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-1500:]
    assert proc.stderr.strip().splitlines() == [
        "error: tsslbp-reference needs Numba for its kernels, which is not installed here: "
        "pip install -r requirements.txt (or pip install numba)"]


def test_no_command_but_train_writes_into_a_run_folder(cli_data, capsys):
    """Issue 30, fourth pass F13: gradients refused only a run's own file names in a run folder, while
    diagnose --out RUN/diagnostics.csv (the run's own diagnostics) and bptt-compare --out RUN wrote there.
    Every other command's output is now refused anywhere in a run folder, before any work."""
    assert main(["train", "--config", str(cli_data), "--out", "run", "--no-progress"]) == 0
    x, y = mnist(4)
    np.savez("X.npz", input=x.astype(np.float32), labels=y)
    before = {name: open(os.path.join("run", name), "rb").read() for name in os.listdir("run")}
    capsys.readouterr()
    commands = [["gradients", "--config", str(cli_data), "--weights", "run/weights.npz", "--inputs", "X.npz",
                 "--out", "run/G.npz"],
                ["diagnose", "run/weights.npz", "--samples", "4", "--out", "run/diagnostics.csv"],
                ["diagnose", "run/weights.npz", "--samples", "4", "--out", "run/mine.csv"]]
    if importlib.util.find_spec("torch"):
        commands += [["bptt-compare", "--config", str(cli_data), "--inputs", "X.npz", "--out", "run"],
                     ["bptt-compare", "--config", str(cli_data), "--inputs", "X.npz", "--out", "run/bptt"]]
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "is in the run folder" in err and "where only train writes" in err and err.count("\n") == 1
    assert {name: open(os.path.join("run", name), "rb").read() for name in os.listdir("run")} == before
    assert main(commands[0][:-1] + ["G.npz"]) == 0  # outside the run folder, as before


def test_a_fifo_beside_a_weights_file_or_in_a_demo_run_is_refused_not_waited_on(cli_data, capsys, tmp_path):
    """Fifth pass F2, F3: evaluate of a plain weights file with a FIFO settings.json beside it, and demo
    over its own earlier run whose run.log is a FIFO, blocked for good on opening the pipe."""
    from reference.app import demo
    from reference.app.runs import RunExistsError, read_weights

    assert main(["train", "--config", str(cli_data), "--out", "run", "--no-progress"]) == 0
    os.mkdir("E")
    np.savez("E/weights.npz", **read_weights("run/weights.npz"))
    os.mkfifo("E/settings.json")
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", "E/weights.npz", "--config", str(cli_data), "--no-progress"]) == 2
    assert "settings.json is not a regular file" in capsys.readouterr().err
    from reference.app.demo import DEMO_TAG
    from reference.app.train import train as train_fn
    from test_core import mnist as digits
    from reference.app.train import Split

    x, y = digits(60)
    split = Split(x.astype(np.float32), y, "fixture")
    train_fn(str(cli_data), out_dir="D", tag=DEMO_TAG, progress=False, log=lambda *a: None, callbacks=[],
             splits=(split, split))
    os.remove("D/run.log")
    os.mkfifo("D/run.log")
    with pytest.raises(RunExistsError, match=r"a demo run whose sessions cannot be told \(its run.log is a link"):
        demo.run_demo(out_dir="D", epochs=1, progress=False)


def test_evaluate_with_another_variant_says_its_loss_is_that_rules(cli_data, capsys):
    """Fifth pass F10: evaluate --variant paper2020 of a final-rule run printed another loss without a word
    (a different --config gets a note)."""
    assert main(["train", "--config", str(cli_data), "--out", "run", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", "run/weights.npz", "--variant", "paper2020", "--no-progress"]) == 0
    assert "note: --variant paper2020 differs from the run's variant (final)" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", "run/weights.npz", "--variant", "final", "--no-progress"]) == 0
    assert "differs from the run's variant" not in capsys.readouterr().out


_SIGNAL_CHILD = """
import os, runpy, signal, sys, time
from reference.app import summary, train

command, how = sys.argv[1], sys.argv[2]
sig = {"INT": signal.SIGINT, "TERM": signal.SIGTERM}[how.split("/")[0]]


class Callback:
    def __del__(self):  # a callback whose exceptions Python drops, as Numba's and XLA's C callbacks do
        os.kill(os.getpid(), sig)
        time.sleep(0.5)


def the_work(*args, **kwargs):
    if how.endswith("after"):  # the signal comes while the interpreter shuts down, after the work
        import atexit

        atexit.register(lambda: (os.kill(os.getpid(), sig), time.sleep(0.5)))
        print("done")
        return []
    if how.endswith("callback"):
        holder = Callback()
        del holder
    else:
        os.kill(os.getpid(), sig)
        time.sleep(0.5)
    print("went on after the signal")
    sys.exit(0)


summary.summarize = the_work
train.train = the_work
sys.argv = ["reference", command] + (["--config", sys.argv[4], "--out", sys.argv[3] + "/x"] if command == "train"
                                     else [sys.argv[3]])
runpy.run_module("reference", run_name="__main__")
"""


@pytest.mark.parametrize("command,how", [("summarize", "INT/callback"), ("summarize", "TERM/callback"),
                                         ("summarize", "TERM/plain"), ("train", "TERM/plain")])
def test_a_signal_ends_a_command_with_one_line_and_exit_130(tmp_path, command, how):
    """Sixth pass F5, F6, F10: a Ctrl-C that came while a C callback ran (Numba, JAX's gc callback,
    PyTorch's pybind11) was dropped with 'Exception ignored' (the command went on and exited 0) or aborted
    the process (exit 134); SIGTERM before training's handlers ended it silently (exit 143).  Commands but
    train and demo end at once on either; train takes SIGTERM as a Ctrl-C.  Here the callback is a
    ``__del__``, whose exceptions Python drops the same way."""
    import subprocess
    import sys

    cfg = os.path.join(ROOT, "configs", "demo_MNIST_MLP.yaml")
    (tmp_path / "runs").mkdir()
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_CHILD, command, how, str(tmp_path / "runs"), cfg],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 130, (proc.returncode, proc.stderr[-1500:])
    assert proc.stderr.strip() == "interrupted" and "went on" not in proc.stdout, proc.stderr[-1500:]


_SIGNAL_IN_IMPORT_CHILD = """
import builtins, os, runpy, signal, sys, time

how, sig = sys.argv[1], getattr(signal, "SIG" + sys.argv[2])
real_import, sent = builtins.__import__, []


class Callback:
    def __del__(self):  # a callback whose exceptions Python drops
        os.kill(os.getpid(), sig)
        time.sleep(0.3)


def the_import(name, *args, **kwargs):
    if name == "numpy" and not sent:  # the program's first import of NumPy, as it loads the commands
        sent.append(1)
        if how == "wrapped":  # NumPy's C import of datetime, broken by the signal, raises an ImportError
            try:
                os.kill(os.getpid(), sig)
                time.sleep(0.3)
            except KeyboardInterrupt:
                raise ImportError('PyCapsule_Import could not import module "datetime"') from None
        else:
            holder = Callback()
            del holder
    return real_import(name, *args, **kwargs)


builtins.__import__ = the_import
sys.argv = ["reference", "summarize", sys.argv[3]]
runpy.run_module("reference", run_name="__main__")
"""


@pytest.mark.parametrize("how,sig", [("wrapped", "INT"), ("dropped", "INT"), ("wrapped", "TERM")])
def test_a_signal_while_the_program_loads_ends_it_with_one_line(tmp_path, how, sig):
    """Ninth session: a Ctrl-C while NumPy loaded was turned by NumPy into an ImportError (a traceback,
    exit 1), or dropped in a callback (the command went on and exited 0), and SIGTERM there ended the
    program silently.  The program holds the signal until its modules have loaded, then ends with one line
    and exit 130, having done nothing."""
    import subprocess
    import sys

    (tmp_path / "runs").mkdir()
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_IN_IMPORT_CHILD, how, sig, str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (130, "interrupted", ""), proc.stderr[-1500:]


_SIGNAL_IN_PACKAGE_CHILD = """
import builtins, os, runpy, signal, sys, time

sys.orig_argv = [sys.executable, "-m", "reference", "summarize", sys.argv[1]]  # as ``python -m reference`` has
sys.argv = ["-m", "summarize", sys.argv[1]]  # (runpy sets argv[0] to the module's path once it is found)
real_import, sent = builtins.__import__, []


def the_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 1 and "_moved" in (fromlist or ()) and not sent:  # inside reference/__init__.py
        sent.append(1)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.3)
    return real_import(name, globals, locals, fromlist, level)


builtins.__import__ = the_import
runpy._run_module_as_main("reference")
"""


def test_a_signal_while_the_package_itself_loads_ends_the_program_with_one_line(tmp_path):
    """Ninth pass F1: a Ctrl-C that came while ``python -m reference`` imported the package, before
    ``__main__`` ran, gave a traceback through ``reference/__init__.py``.  The package holds the signal
    from its first lines when the process is the program (and only then)."""
    import subprocess
    import sys

    (tmp_path / "runs").mkdir()
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_IN_PACKAGE_CHILD, str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert (proc.returncode, proc.stderr.strip(), proc.stdout) == (130, "interrupted", ""), proc.stderr[-1500:]
    imported = subprocess.run([sys.executable, "-c", "import signal, reference; "
                               "print(reference._HELD, signal.getsignal(signal.SIGINT) is signal.default_int_handler)"],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert imported.stdout.split() == ["None", "True"]  # a session that imports the package keeps its Ctrl-C


def test_the_tsslbp_command_is_the_program_entry():
    """The ``tsslbp`` script runs :func:`reference.__main__.run` (which holds a signal while the modules
    load), not ``cli.main`` directly."""
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        scripts = tomllib.load(fh)["project"]["scripts"]
    assert scripts == {"tsslbp": "reference.__main__:run"}


def test_a_signal_after_the_work_is_done_leaves_its_exit_code(tmp_path):
    """Seventh pass F4: a Ctrl-C that came as the interpreter shut down, after the command had written its
    output, ended the process with 130 and no word (a signal reaching one of NumPy's or Numba's threads
    once Python's handlers were gone).  The command's own exit code stands, and nothing is printed."""
    import subprocess
    import sys

    (tmp_path / "runs").mkdir()
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_CHILD, "summarize", "INT/after", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.stdout.startswith("done") and "interrupted" not in proc.stderr and "Traceback" not in proc.stderr
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-800:])  # summarize's own: no run to summarize


def test_a_signal_during_a_write_leaves_no_temporary_file(tmp_path):
    """What the at-once handler removes: the temporary file of a write in progress (its target is left
    as it was); the list of them is empty again after every write, finished or failed."""
    from reference.app import atomic

    seen = []

    def write(fh):
        fh.write(b"half")
        seen.extend(atomic._UNFINISHED)
        atomic.remove_unfinished()  # what atomic.end_at_once does before os._exit

    with pytest.raises(atomic.WriteError):  # the rename then fails: this write never finished
        atomic.atomic_write(tmp_path / "out.bin", write)
    assert len(seen) == 1 and os.path.dirname(seen[0]) == str(tmp_path)
    assert os.listdir(tmp_path) == [] and not atomic._UNFINISHED
    atomic.atomic_write_text(tmp_path / "ok.txt", "whole")
    assert os.listdir(tmp_path) == ["ok.txt"] and not atomic._UNFINISHED


def test_import_checkpoint_refuses_a_fifo_at_once(tmp_path):
    """Seventh pass F1: import-checkpoint of a named pipe blocked for good in open() (every other command
    refused one).  In a subprocess with a timeout, so a regression fails instead of hanging the tests."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    os.mkfifo(tmp_path / "f.pth")
    proc = subprocess.run([sys.executable, "-m", "reference", "import-checkpoint", str(tmp_path / "f.pth"),
                           "--config", CFG, "--out", str(tmp_path / "w.npz")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "is not a regular file (a folder, a pipe or a device)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "w.npz").exists()


def test_a_process_of_a_torchrun_whose_peer_ended_says_so_in_one_line(cli_data, capsys, monkeypatch):
    """Ninth pass F2: under torchrun, when rank 0 ended with one error line (a full disk), rank 1's next
    collective failed with gloo's "Connection closed by peer", a 30-line traceback through train.py and
    the torch engine beside the real error.  The surviving process says in one line that another ended."""
    from reference.app import train as train_mod

    def lost_peer(*args, **kwargs):
        raise RuntimeError("[../third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer "
                           "[127.0.0.1]:18326\nException raised from ...")

    monkeypatch.setattr(train_mod, "train", lost_peer)
    args = ["train", "--config", str(cli_data), "--out", "run", "--no-progress"]
    with pytest.raises(RuntimeError):  # one process: a RuntimeError is a bug, and shows its traceback
        main(args)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: process 1 of 2: another process of this run ended (its own error line, or "
                          "torchrun's report of how it ended, says why), so this one stopped too ([../third_party/gloo") \
        and len(err.splitlines()) == 1, err  # (tenth pass F8: a process killed says nothing itself)
