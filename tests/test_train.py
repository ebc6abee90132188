"""Training loop: same seed same result, resume (after an epoch or mid-epoch Ctrl-C) equals an
uninterrupted run bit for bit, evaluate reproduces the recorded accuracy.  Real MNIST fixture images."""
import os
import signal

import numpy as np
import pytest

from conftest import ROOT
from reference.network import Network
from reference.app.runs import RunError, RunExistsError
from reference.app.train import Split, evaluate, load_checkpoint, read_metrics, train

TINY = {
    "Network": {"epochs": 2, "batch_size": 20, "n_steps": 5, "dataset": "MNIST", "rule": "TSSLBP",
                "lr": 0.0005, "loss": "kernel", "n_class": 10, "tau_m": 5, "tau_s": 3, "model": "LIF"},
    "Layers": {"hidden": {"type": "linear", "n_inputs": 784, "n_outputs": 64, "weight_scale": 1, "threshold": 1},
               "drop": {"type": "dropout", "p": 0.2},
               "output": {"type": "linear", "n_inputs": 64, "n_outputs": 10, "weight_scale": 1, "threshold": 1}},
}

#: No callbacks: no progress bar and no figures.  Drawing the two figures at the end of a session took
#: about 0.6 s, more than the tiny run itself; the tests that check the figures pass ``callbacks=None``
#: (the default ones), the others have no use for them.
NO_FIGURES = []


@pytest.fixture(scope="module")
def splits():
    data = np.load(os.path.join(os.path.dirname(__file__), "data", "mnist_fixture.npz"))
    norm = lambda im: ((im / 255.0 - 0.1307) / 0.3081)[:, None].astype(np.float32)
    return (Split(norm(data["train_images"][:100]), data["train_labels"][:100].astype(np.int64), "fixture"),
            Split(norm(data["test_images"][:60]), data["test_labels"][:60].astype(np.int64), "fixture"))


def _run(tmp_path, name, splits, **kw):
    out = str(tmp_path / name)
    train(TINY, out_dir=out, **{"seed": 5, "progress": False, "log": lambda *a: None, "callbacks": NO_FIGURES,
                                "splits": splits, **kw})
    return out


def _weights(out):
    return load_checkpoint(os.path.join(out, "checkpoint.npz"))["weights"]


def test_same_seed_same_result(tmp_path, splits):
    a, b = _run(tmp_path, "a", splits), _run(tmp_path, "b", splits)
    for k, w in _weights(a).items():
        np.testing.assert_array_equal(w, _weights(b)[k])  # deterministic: bit-identical


def test_resume_after_epoch_equals_uninterrupted(tmp_path, splits):
    full = _run(tmp_path, "full", splits)
    part = _run(tmp_path, "part", splits, epochs=1)
    train(None, out_dir=part, resume=True, epochs=2, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    for k, w in _weights(full).items():
        np.testing.assert_array_equal(w, _weights(part)[k])
    m_full, m_part = read_metrics(os.path.join(full, "metrics.csv")), read_metrics(os.path.join(part, "metrics.csv"))
    assert m_full["test_acc"] == m_part["test_acc"] and m_full["train_loss"] == m_part["train_loss"]


# ------------------------------------------------------------------------------ faults, then resume
PHASES = ("gradients", "clip_grad", "adamw", "clip_weights", "step_done")
N_STEPS = 10  # 2 epochs x 5 mini-batches of 20


class Killed(Exception):
    """Stands for the process dying at a point (a kill -9 or a power cut): nothing after it runs."""


def _metrics_rows(out):
    m = read_metrics(os.path.join(out, "metrics.csv"))
    return [tuple(m[k][i] for k in ("epoch", "train_loss", "train_acc", "test_loss", "test_acc"))
            for i in range(len(m["epoch"]))]


def _assert_same_run(a, b):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k])  # bit for bit
    assert _metrics_rows(a) == _metrics_rows(b)  # no row lost or doubled; same numbers (time columns aside)
    for name in ("weights.npz", "best_weights.npz"):
        for k, w in load_checkpoint(os.path.join(a, name))["weights"].items():
            np.testing.assert_array_equal(w, load_checkpoint(os.path.join(b, name))["weights"][k])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, splits):
    return _run(tmp_path_factory.mktemp("ref"), "full", splits)


# Each point is a training stopped and resumed (1.4 s): the unit tier takes the first 3 of the 12 points,
# the integration tier (CI) the other 9.
@pytest.mark.parametrize("which", [slice(0, 3), pytest.param(slice(3, 12), marks=pytest.mark.integration)],
                         ids=["points_0-2", "points_3-11"])
def test_sigint_at_random_points_then_resume_is_bit_for_bit(tmp_path, splits, uninterrupted, which):
    """A real SIGINT at 12 random points inside steps (dropout on): stop, resume, same run bit for bit."""
    rng = np.random.default_rng(2026)
    points = [(int(rng.integers(N_STEPS)), PHASES[int(rng.integers(len(PHASES)))]) for _ in range(12)][which]
    for i, (at_step, at_phase) in enumerate(points):
        out = str(tmp_path / f"cut{i}")
        fired = []

        def hook(point, step):
            if (step, point) == (at_step, at_phase) and not fired:
                fired.append(point)
                os.kill(os.getpid(), signal.SIGINT)  # the handler only sets a flag: the step completes

        result = train(TINY, out_dir=out, seed=5, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, fault_hook=hook)
        assert fired and result["interrupted"], (at_step, at_phase)
        ck = load_checkpoint(os.path.join(out, "checkpoint.npz"))
        done = at_step + 1  # the step in which the signal came was finished, no more
        assert ck["meta"]["progress"]["epoch"] * 5 + ck["meta"]["progress"]["batch"] == done
        assert ck["adam"]["step"] == done  # AdamW's count agrees with the batch counter
        resumed = train(None, out_dir=out, resume=True, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
        assert not resumed["interrupted"]
        _assert_same_run(out, uninterrupted)


@pytest.mark.parametrize("point", ["before_checkpoint", "after_checkpoint"])
def test_killed_between_commit_writes_then_resume(tmp_path, splits, uninterrupted, point):
    """A process killed between the epoch's writes: resume gives the same run, metrics.csv without a doubled row.
    A real SIGKILL in a child process: an exception standing for it would be undone as a failed start is."""
    out = str(tmp_path / "killed")
    _killed_child(out, 0, point=point, seed=5, overwrite=False)
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]  # no partial file left behind
    train(None, out_dir=out, resume=True, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    _assert_same_run(out, uninterrupted)


def test_killed_mid_step_then_resume(tmp_path, splits, uninterrupted):
    """Killed inside AdamW of step 7 (mid epoch 2): resume from the epoch-1 checkpoint, same run."""
    out = str(tmp_path / "killed")

    def hook(point, step):
        if (step, point) == (7, "adamw"):
            raise Killed

    with pytest.raises(Killed):
        train(TINY, out_dir=out, seed=5, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, fault_hook=hook)
    train(None, out_dir=out, resume=True, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    _assert_same_run(out, uninterrupted)


# ------------------------------------------------------------------------------------ the run folder
def test_existing_run_is_refused_without_overwrite(tmp_path, splits):
    out = _run(tmp_path, "run", splits, epochs=1)
    before = {f: open(os.path.join(out, f), "rb").read() for f in ("metrics.csv", "weights.npz", "config.yaml")}
    with pytest.raises(RunExistsError, match="--resume"):
        _run(tmp_path, "run", splits, epochs=1)
    after = {f: open(os.path.join(out, f), "rb").read() for f in before}
    assert before == after  # nothing touched
    _run(tmp_path, "run", splits, epochs=1, overwrite=True)  # explicit: allowed


def test_second_process_is_locked_out(tmp_path, splits):
    from reference.app.runs import RunFolder, RunLockedError

    out = str(tmp_path / "locked")
    with RunFolder.create(out):
        with pytest.raises(RunLockedError, match=str(os.getpid())):
            RunFolder.create(out)  # flock is per open file description: a second open is refused too
    RunFolder.create(out).unlock()  # released


def test_resume_refuses_conflicting_settings_and_edited_config(tmp_path, splits):
    out = _run(tmp_path, "run", splits, epochs=1)
    for kw, word in [({"seed": 6}, "seed"), ({"batch_size": 10}, "batch_size"), ({"train_limit": 50}, "train_limit"),
                     ({"net_options": {"warmup": "never"}}, "warmup")]:
        with pytest.raises(RunError, match=word):
            train(None, out_dir=out, resume=True, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, **kw)
    other = {**TINY, "Network": {**TINY["Network"], "lr": 0.001}}
    with pytest.raises(RunError, match="--config"):
        train(other, out_dir=out, resume=True, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    # the same settings spelled out are fine, and more epochs are allowed
    train(TINY, out_dir=out, resume=True, seed=5, epochs=2, net_options={"warmup": "per-neuron"},
          progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    with open(os.path.join(out, "config.yaml"), "a") as fh:
        fh.write("# edited\n")  # a comment changes nothing
    train(None, out_dir=out, resume=True, epochs=2, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    text = open(os.path.join(out, "config.yaml")).read().replace("lr: 0.0005", "lr: 0.001")
    open(os.path.join(out, "config.yaml"), "w").write(text)
    with pytest.raises(RunError, match="config.yaml"):
        train(None, out_dir=out, resume=True, epochs=3, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)


def test_resume_without_checkpoint_creates_nothing(tmp_path, splits):
    with pytest.raises(RunError, match="no such run folder"):
        train(None, out_dir=str(tmp_path / "none"), resume=True, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    assert not (tmp_path / "none").exists()


def test_read_only_folder_is_one_clear_error(tmp_path, splits):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(RunError, match="ro"):
            _run(folder, "run", splits, epochs=1)
    finally:
        folder.chmod(0o700)


def test_weights_file_reproduces_recorded_accuracy(tmp_path, splits):
    out = _run(tmp_path, "w", splits, callbacks=None)
    ck = load_checkpoint(os.path.join(out, "weights.npz"))
    net = Network(ck["config"])
    net.set_weights(ck["weights"])
    _, acc, _ = evaluate(net, splits[1])
    assert acc == pytest.approx(read_metrics(os.path.join(out, "metrics.csv"))["test_acc"][-1], abs=1e-6)
    for png in ("learning_curve.png", "confusion_matrix.png"):
        assert os.path.getsize(os.path.join(out, png)) > 1000


def test_figures_are_redrawn_at_most_every_interval_and_at_the_end(tmp_path, splits, monkeypatch):
    """A short session draws its two figures once, at its end (also when stopped by Ctrl-C after an epoch),
    showing the last epoch; with an interval of 0 they follow every epoch."""
    from reference.app import plots
    from reference.app.train import Figures

    drawn = []
    real_save = plots.save
    monkeypatch.setattr(plots, "save", lambda ax, path, **k: drawn.append(os.path.basename(path)) or real_save(ax, path, **k))
    _run(tmp_path, "short", splits, callbacks=None)
    assert drawn == ["learning_curve.png", "confusion_matrix.png"]
    monkeypatch.setattr(Figures, "every_seconds", 0.0)
    drawn.clear()
    _run(tmp_path, "every", splits, callbacks=None)
    assert drawn == ["learning_curve.png", "confusion_matrix.png"] * 2
    monkeypatch.setattr(Figures, "every_seconds", 1e9)
    drawn.clear()

    def ctrl_c_after_the_first_epoch(point, step):
        if point == "after_checkpoint" and step == 0:
            signal.raise_signal(signal.SIGINT)

    out = _run(tmp_path, "stopped", splits, fault_hook=ctrl_c_after_the_first_epoch, callbacks=None)
    assert drawn == ["learning_curve.png", "confusion_matrix.png"]
    assert len(read_metrics(os.path.join(out, "metrics.csv"))["epoch"]) == 1


def test_stop_while_the_run_starts_leaves_no_half_started_folder(tmp_path, splits, monkeypatch):
    """Ctrl-C (or a full disk) during the first checkpoint: the new folder is removed, a rerun just works."""
    from reference.app.runs import RunFolder

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(RunFolder, "checkpoint", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "new", splits, epochs=1)
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "mine", splits, epochs=1)
    assert os.listdir(tmp_path / "mine") == []  # an existing folder is kept, as it was
    monkeypatch.undo()
    _run(tmp_path, "new", splits, epochs=1)


def test_demo_replaces_only_its_own_runs(tmp_path, splits, monkeypatch):
    from reference.app import demo

    monkeypatch.setattr(demo, "train", lambda config, **kw: train(config, **{**kw, "splits": splits, "log": lambda *a: None}))
    real = _run(tmp_path, "real", splits, epochs=1)
    weights = open(os.path.join(real, "weights.npz"), "rb").read()
    with pytest.raises(RunExistsError, match="did not make"):
        demo.run_demo(out_dir=real, epochs=1, progress=False)
    assert open(os.path.join(real, "weights.npz"), "rb").read() == weights
    mine = tmp_path / "mine"  # fifth pass F7: the refusal said "pass --overwrite", which demo does not take
    mine.mkdir()
    (mine / "learning_curve.png").write_text("my notes\n")
    with pytest.raises(RunExistsError, match="give the demo another --out") as err:
        demo.run_demo(out_dir=str(mine), epochs=1, progress=False)
    assert "--overwrite" not in str(err.value) and (mine / "learning_curve.png").read_text() == "my notes\n"
    out = str(tmp_path / "demo_again")  # fifth pass: a user's text under a figure's name in the demo's own run
    demo.run_demo(out_dir=out, epochs=1, progress=False)
    with open(os.path.join(out, "spike_raster.png"), "w") as fh:
        fh.write("my notes\n")
    with pytest.raises(RunExistsError, match="spike_raster.png is not a figure it drew"):
        demo.run_demo(out_dir=out, epochs=1, progress=False)
    assert open(os.path.join(out, "spike_raster.png")).read() == "my notes\n"
    out = str(tmp_path / "demo")
    demo.run_demo(out_dir=out, epochs=1, progress=False)
    demo.run_demo(out_dir=out, epochs=1, progress=False)  # again: its own earlier run is replaced
    assert len(read_metrics(os.path.join(out, "metrics.csv"))["epoch"]) == 1
    train(None, out_dir=out, resume=True, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    demo.run_demo(out_dir=out, epochs=1, progress=False)  # a resume with nothing to do adds no epoch
    # fourth pass F7: a demo run the user trained further with train --resume was replaced like a demo's own
    train(None, out_dir=out, resume=True, epochs=2, progress=False, log=lambda *a: None, callbacks=NO_FIGURES,
          splits=splits, command="python -m reference train --resume demo --epochs 2")
    weights = open(os.path.join(out, "weights.npz"), "rb").read()
    with pytest.raises(RunExistsError, match=r"continued with train --resume \(run.log shows 1 resumed session"):
        demo.run_demo(out_dir=out, epochs=1, progress=False)
    assert open(os.path.join(out, "weights.npz"), "rb").read() == weights
    assert len(read_metrics(os.path.join(out, "metrics.csv"))["epoch"]) == 2


def test_eval_batch_size_keeps_one_layer_near_the_budget():
    from reference.config import load_config
    from reference.app.train import eval_batch_size
    cnn = load_config(os.path.join(ROOT, "configs", "MNIST_CNN.yaml"))
    # conv_1: 15 x 24 x 24 neurons, T = 5, float32: 172,800 bytes per sample; 16 MiB / that = 97
    assert eval_batch_size(cnn) == (16 << 20) // (5 * 15 * 24 * 24 * 4) == 97
    assert eval_batch_size(cnn, budget_bytes=1) == 50  # clamped below
    mlp = load_config(os.path.join(ROOT, "configs", "FashionMNIST_400_400.yaml"))
    assert eval_batch_size(mlp) == 500  # 8,000 bytes per sample: clamped above


# ------------------------------------------------------------------------------ run.log
def test_run_log_has_one_line_per_session(tmp_path, splits, monkeypatch):
    """Each session appends command, seed, its epochs, BLAS kernel, thread counts and environment."""
    import json

    from reference.app.blas import blas_info

    monkeypatch.setenv("OPENBLAS_CORETYPE", blas_info()["core"] or "Haswell")
    out = _run(tmp_path, "logged", splits, epochs=1, command="python -m reference train --config tiny.yaml")
    train(None, out_dir=out, resume=True, epochs=2, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits,
          command="python -m reference train --resume logged")
    with open(os.path.join(out, "run.log")) as fh:
        first, second = [json.loads(line) for line in fh]
    assert first["command"] == "python -m reference train --config tiny.yaml" and not first["resumed"]
    assert (first["seed"], first["epochs"], second["epochs"], second["resumed"]) == (5, [1, 1], [2, 2], True)
    assert first["env"]["OPENBLAS_CORETYPE"] == os.environ["OPENBLAS_CORETYPE"]
    assert first["blas"] == blas_info() and first["threads"]["numba"] >= 1
    assert first["versions"]["numpy"] == np.__version__ and first["seconds"] >= 0


@pytest.mark.parametrize("stop", [KeyboardInterrupt, MemoryError])
def test_a_session_stopped_hard_after_its_first_step_is_still_logged(tmp_path, splits, uninterrupted, stop):
    """A second Ctrl-C (KeyboardInterrupt out of the loop) or an error in step 7 (epoch 2): the epoch this
    session committed is part of the run, so run.log keeps the session's line (epochs [1, 1],
    interrupted); the resumed session adds its own and the run is the uninterrupted one.  Failed before
    the fix: the session that trained epoch 1 left no line."""
    import json
    out = str(tmp_path / "hard")

    def hook(point, step):
        if (step, point) == (7, "adamw"):
            raise stop

    with pytest.raises(stop):
        train(TINY, out_dir=out, seed=5, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, fault_hook=hook,
              command="first")
    train(None, out_dir=out, resume=True, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, command="second")
    with open(os.path.join(out, "run.log")) as fh:
        lines = [json.loads(line) for line in fh]
    with open(os.path.join(uninterrupted, "metrics.csv")) as fh:
        n_epochs = len(fh.readlines()) - 1
    assert [(r["command"], r["epochs"], r["interrupted"]) for r in lines] == [
        ("first", [1, 1], True), ("second", [2, n_epochs], False)]
    _assert_same_run(out, uninterrupted)


def test_run_log_refuses_a_planted_link(tmp_path, splits):
    """A run.log that is a symlink is not followed: the run is refused before it starts, with one line,
    and the link's target is untouched; so is a planted .lock, for a new run and for --resume."""
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me\n")
    out = tmp_path / "linked"
    out.mkdir()
    os.symlink(target, out / "run.log")
    with pytest.raises(RunError, match="run.log is a link"):
        _run(tmp_path, "linked", splits, epochs=1)
    assert target.read_text() == "keep me\n" and sorted(os.listdir(out)) == ["run.log"]
    done = _run(tmp_path, "done", splits, epochs=1)
    os.unlink(os.path.join(done, ".lock"))
    os.symlink(target, os.path.join(done, ".lock"))
    with pytest.raises(RunError, match=".lock is a link"):
        train(None, out_dir=done, resume=True, epochs=2, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    assert target.read_text() == "keep me\n"


def test_is_training_asks_the_kernel_not_the_pid(tmp_path):
    """A live flock counts; a .lock holding a live pid but no flock (a stale lock, a reused pid) does not."""
    import subprocess
    import sys

    from reference.app.runs import RunFolder, is_training

    folder = RunFolder(str(tmp_path))
    assert not is_training(tmp_path)
    (tmp_path / ".lock").write_text(str(os.getppid()))  # a live pid, but nobody holds the lock
    assert not is_training(tmp_path)
    folder.lock()
    try:  # asked from another process (flock is per open file, so ask as a stranger would)
        code = "import sys; from reference.app.runs import is_training; sys.exit(0 if is_training(sys.argv[1]) else 1)"
        assert subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, timeout=60).returncode == 0
    finally:
        folder.unlock()
    assert not is_training(tmp_path)
    os.unlink(tmp_path / ".lock")
    os.symlink(tmp_path / "nowhere", tmp_path / ".lock")
    assert not is_training(tmp_path)


class FirstStepFails(Exception):
    """Stands for an error in the first step (labels beyond n_class, a NaN from weight_scale, a full disk)."""


def _fail_first_step(point, step):
    if (step, point) == (0, "gradients"):
        raise FirstStepFails


def _files(folder):
    return {name: open(os.path.join(folder, name), "rb").read()
            for name in sorted(os.listdir(folder)) if os.path.isfile(os.path.join(folder, name)) and name != ".lock"}


def test_a_new_run_that_fails_at_its_first_step_leaves_nothing(tmp_path, splits):
    """Issue 30, item 4: the failed start left checkpoint.npz and config.yaml, so the corrected rerun was
    refused. Now the folder it created is gone and the same command runs."""
    out = str(tmp_path / "new")
    quiet = dict(seed=5, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, epochs=1)
    with pytest.raises(FirstStepFails):
        train(TINY, out_dir=out, fault_hook=_fail_first_step, **quiet)
    assert not os.path.exists(out)
    os.makedirs(out)  # a folder the user made: kept, and left empty
    with pytest.raises(FirstStepFails):
        train(TINY, out_dir=out, fault_hook=_fail_first_step, **quiet)
    assert os.listdir(out) == []
    assert not train(TINY, out_dir=out, **quiet)["interrupted"]


class _SignalBeforeTheFirstStep:
    """A callback that sends this process a real SIGINT as the first epoch starts, before its first step."""

    def on_epoch_start(self, epoch, n_epochs, n_batches, progress):
        os.kill(os.getpid(), signal.SIGINT)

    def __getattr__(self, name):  # the other hooks do nothing
        return lambda *a, **k: None


def test_a_signal_before_the_new_runs_first_step_keeps_the_old_run(tmp_path, splits):
    """Sixth pass F1 (data loss): a Ctrl-C just before an --overwrite's first step saved the new run's
    start as 'epoch 1, batch 0' and deleted the old run, though the new run had taken no step.  Now a new
    run stopped before a step reaches its checkpoint is undone as a failed start is: the old run is back,
    byte for byte, and a run into a new folder leaves nothing."""
    out = str(tmp_path / "run")
    said = []
    quiet = dict(progress=False, log=said.append, splits=splits, epochs=1)
    train(TINY, out_dir=out, seed=5, callbacks=NO_FIGURES, **quiet)
    old = _files(out)
    result = train(TINY, out_dir=out, seed=6, overwrite=True, callbacks=[_SignalBeforeTheFirstStep()], **quiet)
    assert result["interrupted"] and not result["kept"]
    assert _files(out) == old and sorted(os.listdir(out)) == sorted(old)  # no .replaced/, no .lock
    assert any("interrupted before the first step: nothing of the new run was kept" in s
               and "the run it was to replace is back" in s for s in said), said

    def second_ctrl_c(message):  # a second Ctrl-C just after the undo (a signal as the line is printed)
        if "before the first step" in message:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # the undo is not done twice (the second removed the run put back)
        train(TINY, out_dir=out, seed=6, overwrite=True, callbacks=[_SignalBeforeTheFirstStep()],
              **{**quiet, "log": second_ctrl_c})
    assert _files(out) == old and sorted(os.listdir(out)) == sorted(old)
    fresh = str(tmp_path / "fresh")
    assert not train(TINY, out_dir=fresh, seed=6, callbacks=[_SignalBeforeTheFirstStep()], **quiet)["kept"]
    assert not os.path.exists(fresh)
    said.clear()  # a resumed run stopped so is as it was, and resumable
    result = train(None, out_dir=out, resume=True, epochs=2, progress=False, log=said.append, splits=splits,
                   callbacks=[_SignalBeforeTheFirstStep()])
    assert result["interrupted"] and result["kept"]
    assert {k: v for k, v in _files(out).items() if k != "run.log"} == {k: v for k, v in old.items() if k != "run.log"}
    assert any("interrupted before the first step; the run is as it was" in s for s in said), said


def _fail_at_the_third_step(point, step):
    if (step, point) == (2, "gradients"):
        raise FirstStepFails


# sixth pass F1, its second cause: a new run that failed at its third step had counted two steps in memory,
# none on disk, and the --overwrite's old run was deleted for a new run that held only its start
@pytest.mark.parametrize("fail", [_fail_first_step, _fail_at_the_third_step], ids=["first step", "third step"])
def test_overwrite_keeps_the_old_run_until_the_new_one_has_stepped(tmp_path, splits, fail):
    """--overwrite set the old run aside, not deleted: a new run failing before a step of it is in its
    checkpoint puts it back byte for byte; one that trains replaces it and leaves no .replaced folder."""
    out = str(tmp_path / "run")
    quiet = dict(progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, epochs=1)
    train(TINY, out_dir=out, seed=5, **quiet)
    old = _files(out)
    with pytest.raises(FirstStepFails):
        train(TINY, out_dir=out, seed=6, overwrite=True, fault_hook=fail, **quiet)
    assert sorted(os.listdir(out)) == sorted(old)
    assert _files(out) == old and not os.path.exists(os.path.join(out, ".replaced"))
    train(TINY, out_dir=out, seed=6, overwrite=True, **quiet)
    assert not os.path.exists(os.path.join(out, ".replaced"))
    assert _files(out)["weights.npz"] != old["weights.npz"]
    assert load_checkpoint(os.path.join(out, "checkpoint.npz"))["meta"]["settings"]["seed"] == 6


def test_resume_on_other_data_is_refused(tmp_path, splits):
    """Issue 30, item 5: --resume with another --data-dir trained on other images silently. The run
    records its splits' fingerprints and a resume on other data is one line naming the split and source."""
    from reference.engines.evaluation import Split
    from reference.app.runs import RunError

    out = str(tmp_path / "run")
    quiet = dict(progress=False, log=lambda *a: None, callbacks=NO_FIGURES)
    train(TINY, out_dir=out, seed=5, epochs=1, splits=splits, **quiet)
    ck = load_checkpoint(os.path.join(out, "checkpoint.npz"))
    assert ck["meta"]["settings"]["data"] == {"train": splits[0].fingerprint(), "test": splits[1].fingerprint()}
    tr, te = splits
    other = (Split(tr.images[::-1].copy(), tr.labels[::-1].copy(), "another folder"), te)
    with pytest.raises(RunError, match=r"the train data differ from the run's .* from another folder"):
        train(None, out_dir=out, resume=True, epochs=2, splits=other, **quiet)
    assert load_checkpoint(os.path.join(out, "checkpoint.npz"))["meta"]["progress"]["epoch"] == 1  # untouched
    train(None, out_dir=out, resume=True, epochs=2, splits=splits, **quiet)  # its own data: resumes
    assert Split(tr.images.copy(), tr.labels.copy(), "a copy").fingerprint() == tr.fingerprint()


def test_a_refused_resume_names_what_an_unset_setting_means(tmp_path, splits):
    """'the run has None' said nothing: an unset limit is named for what it is (issue 30, messages)."""
    out = _run(tmp_path, "run", splits, epochs=1)
    with pytest.raises(RunError, match=r"train_limit=50 \(the run has all training samples\)"):
        train(None, out_dir=out, resume=True, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, train_limit=50)
    # second pass: an unset network option said "(the run has None)"
    with pytest.raises(RunError, match=r"target_filter='single' \(the run has the final rule's target filter, 'double'\)"):
        train(None, out_dir=out, resume=True, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits,
              net_options={"target_filter": "single"})


@pytest.mark.parametrize("edit,words", [
    ({"epoch": 10 ** 15}, "progress.epoch is 1000000000000000 but it holds 1 epochs' metrics"),
    ({"batch": -5}, "progress.batch is -5, not a whole number >= 0"),
    ({"batch": 10 ** 9}, "progress.batch is 1000000000, but an epoch of this run has 5 batches"),
    ({"epoch": "x"}, "progress.epoch is 'x', not a whole number >= 0"),
    ({"loss_sum": float("nan")}, "progress.loss_sum is nan, not a finite number"),
    ({"correct": 7, "seen": 3}, "progress.correct (7) exceeds progress.seen (3)"),
    ({"best_epoch": 7}, "progress.best_epoch (7) is after its last epoch (1)"),
    ({"metrics": [{"epoch": 3}]}, "progress.metrics[0] is not epoch 1's row"),
    ({"settings": {"batch_size": 0}}, "settings.batch_size is 0, not a whole number >= 1"),
    ({"settings": {"epochs": -1}}, "settings.epochs is -1, not a whole number >= 0"),
    ({"adam_step": -10}, "its meta_json field 'adam_step' is -10"),
    ({"meta": []}, "its meta_json is list, not a mapping"),
    ({"best_test_acc": 5.0}, "progress.best_test_acc is 5.0, not an accuracy in [0, 1]"),  # froze best_weights
    ({"settings": {"engine": "cuda-magic"}}, "settings.engine is 'cuda-magic', not one of ['numpy', 'torch']"),
], ids=["epoch-huge", "batch-negative", "batch-huge", "epoch-text", "loss-nan", "correct-gt-seen", "best-later",
        "metrics-row", "batch-size-0", "epochs-negative", "adam-step", "meta-list", "best-acc-5", "engine-unknown"])
def test_an_absurd_checkpoint_progress_is_one_line(tmp_path, splits, edit, words):
    """Issue 30, item 11: a checkpoint whose recorded epoch or batch is absurd (hand-edited, corrupt) gave an
    IndexError, a ZeroDivisionError or a TypeError from inside the loop.  Each is refused before training,
    naming the file and the field; the CLI prints that line and exits 2."""
    import json

    from reference.app.cli import main
    from reference.app.runs import CheckpointError

    out = _run(tmp_path, "run", splits, epochs=1)
    path = os.path.join(out, "checkpoint.npz")
    with np.load(path, allow_pickle=False) as f:
        arrays = dict(f)
    meta = json.loads(str(arrays["meta_json"]))
    if "meta" in edit:
        meta = edit["meta"]
    elif "settings" in edit:
        meta["settings"].update(edit["settings"])
    elif "adam_step" in edit:
        meta.update(edit)
    else:
        meta["progress"].update(edit)
    arrays["meta_json"] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    with pytest.raises(CheckpointError, match=__import__("re").escape(words)):
        train(None, out_dir=out, resume=True, epochs=2, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    assert main(["train", "--resume", out, "--epochs", "2", "--no-progress"]) == 2


_KILLED_CHILD = """
import json, os, signal, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_train import TINY, Split, train
data = np.load(os.path.join(sys.argv[1], "data", "mnist_fixture.npz"))
norm = lambda im: ((im / 255.0 - 0.1307) / 0.3081)[:, None].astype(np.float32)
splits = (Split(norm(data["train_images"][:100]), data["train_labels"][:100].astype(np.int64), "fixture"),
          Split(norm(data["test_images"][:60]), data["test_labels"][:60].astype(np.int64), "fixture"))
kill_step, kill_point, kw = int(sys.argv[3]), sys.argv[4], json.loads(sys.argv[5])
def hook(point, step):
    if step == kill_step and kill_point in ("", point):
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup runs: a power cut
train(TINY, out_dir=sys.argv[2], fault_hook=hook, progress=False, log=lambda *a: None, callbacks=[],
      splits=splits, **kw)
"""


def _killed_child(out, step, point="", **kw):
    """``train --overwrite`` into ``out`` (seed 6, 2 epochs, unless ``kw`` says other ``train`` arguments)
    in a subprocess that SIGKILLs itself at training step ``step``: at its first fault point, or at
    ``point`` (for the commit's points ``step`` is the epoch).  A real kill: no cleanup runs, as at a power
    cut, where an exception standing for one would be undone as a failed start is."""
    import json
    import subprocess
    import sys

    tests = os.path.dirname(os.path.abspath(__file__))
    kw = {"seed": 6, "epochs": 2, "overwrite": True, **kw}
    proc = subprocess.run([sys.executable, "-c", _KILLED_CHILD, tests, out, str(step), point, json.dumps(kw)],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": ROOT})
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


@pytest.mark.parametrize("kill_at", ["first step", "epoch 2"])
def test_a_killed_overwrite_keeps_the_old_run(tmp_path, splits, kill_at):
    """Issue 30 (adversarial pass, 7 Dec): --overwrite killed (SIGKILL) before its first step left .replaced/
    (the old run) beside the new run's start checkpoint; --resume then trained the new run and deleted the
    old one.  Now the folder is settled under its lock: a new run that never finished a step is removed and
    the old one put back (resumed as it was); one that committed an epoch keeps going and the old one goes.
    A new run into the folder is refused with a message naming .replaced/ and what --resume does."""
    out = str(tmp_path / "run")
    quiet = dict(progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits)
    train(TINY, out_dir=out, seed=5, epochs=1, **quiet)
    old = _files(out)

    _killed_child(out, 0 if kill_at == "first step" else 7)  # step 7: in epoch 2, after epoch 1's commit
    assert os.path.isdir(os.path.join(out, ".replaced"))
    with pytest.raises(RunExistsError, match=r"interrupted --overwrite set aside in \.replaced/"):
        train(TINY, out_dir=out, seed=7, **quiet)
    result = train(None, out_dir=out, resume=True, **quiet)
    assert not os.path.exists(os.path.join(out, ".replaced"))
    seed = load_checkpoint(os.path.join(out, "checkpoint.npz"))["meta"]["settings"]["seed"]
    if kill_at == "first step":  # the old run is back, byte for byte, and had nothing left to do
        assert seed == 5 and _files(out) == {k: v for k, v in old.items()} | {"run.log": _files(out)["run.log"]}
        assert result["epoch"] == 1
    else:  # the new run had committed epoch 1: it finished, the old one is gone
        assert seed == 6 and result["epoch"] == 2


@pytest.mark.parametrize("name,words", [("checkpoint.npz", "is not a regular file (a pipe or a device)"),
                                        ("config.yaml", "is not a regular file (a pipe, a socket or a device)")])
def test_a_fifo_in_place_of_a_run_file_is_refused_not_waited_on(tmp_path, splits, name, words):
    """Issue 30 (adversarial pass, 7 Dec): a FIFO planted as checkpoint.npz or config.yaml made --resume
    block forever in open(); it is refused in one line (run with a timeout, so a regression fails, not hangs)."""
    import subprocess
    import sys

    out = _run(tmp_path, "run", splits, epochs=1)
    os.remove(os.path.join(out, name))
    os.mkfifo(os.path.join(out, name))
    proc = subprocess.run([sys.executable, "-m", "reference", "train", "--resume", out, "--epochs", "2",
                           "--no-progress"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr[-1500:]


# ------------------------------------------------------------------------------ issue 30, second pass
def test_a_folder_with_a_users_figures_or_log_but_no_run_is_refused(tmp_path, splits):
    """A new run wrote over a user's learning_curve.png and appended to their run.log in a folder without
    run files: now refused before anything is written; --overwrite replaces them as it replaces a run."""
    for name in ("learning_curve.png", "run.log"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        (folder / name).write_text("mine\n")
        with pytest.raises(RunExistsError, match=f"holds no run but files a run writes \\({name}\\)"):
            _run(folder, "", splits, epochs=1)
        assert sorted(os.listdir(folder)) == [name] and (folder / name).read_text() == "mine\n"
    _run(tmp_path / "run_log", "", splits, epochs=1, overwrite=True)
    assert "mine" not in (tmp_path / "run_log" / "run.log").read_text()


def test_the_demo_leaves_a_users_files_of_its_figure_names(tmp_path, splits, monkeypatch):
    from reference.app import demo

    monkeypatch.setattr(demo, "train", lambda config, **kw: train(config, **{**kw, "splits": splits, "log": lambda *a: None}))
    out = tmp_path / "d"
    out.mkdir()
    (out / "spike_raster.png").write_text("my raster")
    with pytest.raises(RunExistsError, match="spike_raster.png"):
        demo.run_demo(out_dir=str(out), epochs=1, progress=False)
    assert os.listdir(out) == ["spike_raster.png"] and (out / "spike_raster.png").read_text() == "my raster"


def test_a_replaced_folder_with_foreign_files_is_never_deleted(tmp_path, splits):
    """A plain --resume deleted any .replaced/ (taking it for a run an --overwrite set aside), even one
    holding a user's notes; now it refuses, naming the files, and deletes nothing."""
    out = _run(tmp_path, "r", splits, epochs=1)
    aside = os.path.join(out, ".replaced")
    os.mkdir(aside)
    with open(os.path.join(aside, "notes.txt"), "w") as fh:
        fh.write("my notes")
    for attempt in (lambda: train(None, out_dir=out, resume=True, epochs=2, progress=False, log=lambda *a: None, callbacks=NO_FIGURES,
                                  splits=splits),
                    lambda: _run(tmp_path, "r", splits, epochs=1, overwrite=True)):
        with pytest.raises(RunError, match="holds files no --overwrite put there \\(notes.txt\\)"):
            attempt()
        assert os.listdir(aside) == ["notes.txt"]
    assert len(read_metrics(os.path.join(out, "metrics.csv"))["epoch"]) == 1


def test_a_resume_on_other_thread_counts_says_it_is_no_longer_bit_for_bit(tmp_path, splits, monkeypatch):
    """Issue 30, second pass: resuming with other OpenBLAS or Numba thread counts changed the weights'
    last bits (3e-8) without a word; the resume now says so, naming both settings."""
    import json

    out = _run(tmp_path, "run", splits, epochs=1)
    lines = open(os.path.join(out, "run.log")).read().splitlines()
    last = json.loads(lines[-1])
    last["threads"]["openblas"] = last["threads"]["openblas"] + 7  # as if the first session had more threads
    with open(os.path.join(out, "run.log"), "w") as fh:
        fh.write("\n".join(lines[:-1] + [json.dumps(last)]) + "\n")
    said = []
    train(None, out_dir=out, resume=True, epochs=2, progress=False, log=said.append, callbacks=NO_FIGURES, splits=splits)
    note = [s for s in said if s.startswith("note: this session runs with")]
    assert len(note) == 1 and "OpenBLAS threads" in note[0] and "not bit for bit" in note[0], said
    said.clear()
    train(None, out_dir=out, resume=True, epochs=3, progress=False, log=said.append, callbacks=NO_FIGURES, splits=splits)
    assert not [s for s in said if s.startswith("note: this session")]  # the same as its last session: quiet
    lines = open(os.path.join(out, "run.log")).read().splitlines()  # tenth pass F6: the number of processes
    last = json.loads(lines[-1])
    assert last["processes"] == 1
    last["processes"] = 2  # as if the last session had run under torchrun with 2 processes
    with open(os.path.join(out, "run.log"), "w") as fh:
        fh.write("\n".join(lines[:-1] + [json.dumps(last)]) + "\n")
    said.clear()
    train(None, out_dir=out, resume=True, epochs=4, progress=False, log=said.append, callbacks=NO_FIGURES, splits=splits)
    note = [s for s in said if s.startswith("note: this session runs with")]
    assert len(note) == 1 and "processes 1 (the run's last session: 2)" in note[0], said


def test_a_resume_on_the_other_engine_says_it_is_no_longer_bit_for_bit(tmp_path, splits):
    """Ninth pass F8: a NumPy run resumed with --engine torch ended at another accuracy than the
    uninterrupted run, without a word; the thread-count note was given on the NumPy engine only."""
    pytest.importorskip("torch")
    out = _run(tmp_path, "run", splits, epochs=1)
    said = []
    train(None, out_dir=out, resume=True, epochs=2, engine="torch", progress=False, log=said.append,
          callbacks=NO_FIGURES, splits=splits)
    assert ("note: the run trained on the numpy engine, this session on the torch engine; their float32 kernels "
            "round differently, so the resumed run is not bit for bit what one engine would have made (--engine "
            "numpy keeps it so)") in said, said  # (eleventh pass F1: "leave --engine out" resumed on numpy)
    said.clear()
    train(None, out_dir=out, resume=True, epochs=3, engine="torch", progress=False, log=said.append,
          callbacks=NO_FIGURES, splits=splits)
    assert not [s for s in said if "engine would have made" in s]  # its last session was on torch: quiet


def test_an_out_folder_that_cannot_be_made_leaves_no_parents_behind(tmp_path, splits):
    """Issue 30, second pass: an --out nested past PATH_MAX failed but left 272 empty folders."""
    deep = os.path.join(str(tmp_path / "deep"), *(["abcdefghijklmn"] * 300))
    with pytest.raises(RunError, match="cannot create the run folder"):
        train(TINY, out_dir=deep, seed=5, progress=False, log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, epochs=1)
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------ issue 30, third pass
def _killed_after_renames(monkeypatch, n: int) -> list:
    """Make ``os.rename`` raise :class:`Killed` (a kill) after ``n`` renames; returns the renamed paths."""
    real, done = os.rename, []

    def rename(a, b):
        if len(done) == n:
            raise Killed
        done.append(a)
        real(a, b)

    monkeypatch.setattr(os, "rename", rename)
    return done


def _killed_after_set_aside(out, monkeypatch=None, after_renames=None):
    """The state a SIGKILL leaves right after --overwrite moved the old run into .replaced/ (or, with
    ``after_renames=k``, in the middle of moving it, after k renames): the process dies holding the lock,
    nothing of the new run written yet.  The kernel drops the lock; here ``unlock`` stands for that."""
    from reference.app.runs import RunFolder

    if after_renames is None:
        RunFolder.create(out, overwrite=True).unlock()
        return
    real = os.rename
    _killed_after_renames(monkeypatch, after_renames)
    folder = RunFolder(out)
    folder.lock()
    with pytest.raises(Killed):
        folder.set_aside()  # no cleanup: a kill runs none
    folder.unlock()
    monkeypatch.setattr(os, "rename", real)


def test_a_kill_right_after_the_old_run_was_set_aside_loses_nothing(tmp_path, splits):
    """Third pass F1/F8: SIGKILL right after --overwrite made .replaced/ left only .lock and .replaced/; a
    plain new run then exited 0 over the old run, and --resume said "no checkpoint" without naming
    .replaced/.  Now the new run is refused naming .replaced/, and --resume puts the old run back."""
    out = _run(tmp_path, "run", splits, epochs=1)
    old = _files(out)
    _killed_after_set_aside(out)
    assert sorted(os.listdir(out)) == [".lock", ".replaced"]
    with pytest.raises(RunExistsError, match=r"interrupted --overwrite set aside in \.replaced/;"):
        _run(tmp_path, "run", splits, epochs=1)
    assert sorted(os.listdir(out)) == [".lock", ".replaced"]
    result = train(None, out_dir=out, resume=True, epochs=1, progress=False, log=lambda *a: None,
                   callbacks=NO_FIGURES, splits=splits)
    assert result["epoch"] == 1 and not os.path.exists(os.path.join(out, ".replaced"))
    assert {k: v for k, v in _files(out).items() if k != "run.log"} == {k: v for k, v in old.items() if k != "run.log"}


@pytest.mark.parametrize("after_renames", [0, 2])
def test_a_kill_while_setting_the_old_run_aside_loses_nothing(tmp_path, splits, monkeypatch, after_renames):
    """A kill between the renames of set_aside: the old run is split between the folder and .replaced/
    (its mark says "moving"); the next --overwrite or --resume moves the part back first, deleting nothing."""
    out = _run(tmp_path, "run", splits, epochs=1)
    old = _files(out)
    _killed_after_set_aside(out, monkeypatch, after_renames)
    assert os.path.isdir(os.path.join(out, ".replaced"))
    train(None, out_dir=out, resume=True, epochs=1, progress=False, log=lambda *a: None, callbacks=NO_FIGURES,
          splits=splits)
    assert not os.path.exists(os.path.join(out, ".replaced"))
    assert {k: v for k, v in _files(out).items() if k != "run.log"} == {k: v for k, v in old.items() if k != "run.log"}
    _killed_after_set_aside(out, monkeypatch, after_renames)
    _run(tmp_path, "run", splits, epochs=1, overwrite=True, seed=8)  # replaces the old run, now that it is whole
    assert load_checkpoint(os.path.join(out, "checkpoint.npz"))["meta"]["settings"]["seed"] == 8


def test_a_kill_while_putting_the_old_run_back_loses_nothing(tmp_path, splits, monkeypatch):
    """A kill amid the moves that put an interrupted --overwrite's old run back (the new run's files
    already removed, some old files back, the rest in .replaced/): the next --resume removed the files
    already back as if they were the new run's.  The mark now says "moving" before the first move back,
    so the rest are moved and nothing is removed."""
    from reference.app.runs import RunFolder

    out = _run(tmp_path, "run", splits, epochs=1)
    old = _files(out)
    _killed_child(out, 0)  # an --overwrite killed at its first step: .replaced/ and the new run's start
    done = _killed_after_renames(monkeypatch, 2)
    folder = RunFolder(out)
    folder.lock()
    with pytest.raises(Killed):
        folder.recover_replaced()  # killed after two of the old run's files are back
    folder.unlock()
    monkeypatch.undo()
    assert len(done) == 2 and os.path.isdir(os.path.join(out, ".replaced"))
    train(None, out_dir=out, resume=True, epochs=1, progress=False, log=lambda *a: None, callbacks=NO_FIGURES,
          splits=splits)
    assert not os.path.exists(os.path.join(out, ".replaced"))
    assert {k: v for k, v in _files(out).items() if k != "run.log"} == {k: v for k, v in old.items() if k != "run.log"}


@pytest.mark.parametrize("planted,said", [
    ("run files, no mark", "and no .set-aside of one"),
    ("a folder inside", "(config.yaml)"),
    ("a mark naming a folder", "(config.yaml)"),
    # sixth pass: a mark that is there but not set_aside's was called missing
    ("a tampered mark", "and a .set-aside an --overwrite did not write (it says 'moved notes.txt')"),
])
def test_a_replaced_folder_an_overwrite_did_not_make_is_never_touched(tmp_path, splits, planted, said):
    """Third pass F2/F3: a .replaced/ holding a user's files named like run files was taken for one an
    --overwrite made (put back over the run, or deleted), and folders inside it were rmtree'd.  Now only a
    .replaced/ with set_aside's mark, holding the regular files it names, is moved or deleted."""
    out = _run(tmp_path, "run", splits, epochs=1)
    aside = tmp_path / "run" / ".replaced"
    aside.mkdir()
    (aside / "metrics.csv").write_text("my own metrics\n")
    if planted == "a tampered mark":
        (aside / ".set-aside").write_text("moved\nnotes.txt\n")
    elif planted != "run files, no mark":
        (aside / "config.yaml").mkdir()
        (aside / "config.yaml" / "notes.txt").write_text("my notes")
        (aside / ".set-aside").write_text("moved\nmetrics.csv\n" + ("config.yaml\n" if "naming" in planted else ""))
    before = sorted(str(p.relative_to(aside)) for p in aside.rglob("*"))
    run_before = _files(out)
    for attempt in (lambda: train(None, out_dir=out, resume=True, epochs=2, progress=False, log=lambda *a: None,
                                  callbacks=NO_FIGURES, splits=splits),
                    lambda: _run(tmp_path, "run", splits, epochs=1, overwrite=True),
                    lambda: _run(tmp_path, "run", splits, epochs=1)):
        with pytest.raises(RunError, match="no --overwrite put there") as err:
            attempt()
        assert said in str(err.value)
        assert sorted(str(p.relative_to(aside)) for p in aside.rglob("*")) == before
        assert (aside / "metrics.csv").read_text() == "my own metrics\n" and _files(out) == run_before


def test_a_users_lock_file_is_never_written_over(tmp_path, splits):
    """Third pass F6: a user's own .lock (text that is no pid) was truncated and given a pid.  Now refused;
    a stale .lock of a killed run (a pid) is taken as before."""
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / ".lock").write_text("my notes about locks\n")
    with pytest.raises(RunError, match=r"is not a run's lock file"):
        _run(tmp_path, "mine", splits, epochs=1)
    assert os.listdir(folder) == [".lock"] and (folder / ".lock").read_text() == "my notes about locks\n"
    (folder / ".lock").write_text("12345")  # what a killed run leaves
    _run(tmp_path, "mine", splits, epochs=1)
    assert (folder / ".lock").read_text() == str(os.getpid())


def test_a_refused_start_leaves_no_lock_file(tmp_path, splits):
    """Third pass F17: an --overwrite refused after taking the lock left a .lock in the folder (and in a
    folder it made).  Now a start that fails before writing removes the .lock it created."""
    out = _run(tmp_path, "run", splits, epochs=1)
    os.remove(os.path.join(out, ".lock"))
    os.mkdir(os.path.join(out, "metrics.csv.d"))
    os.rename(os.path.join(out, "metrics.csv"), os.path.join(out, "metrics.csv.d", "m"))
    os.rename(os.path.join(out, "metrics.csv.d"), os.path.join(out, "metrics.csv"))  # a folder named metrics.csv
    with pytest.raises(RunError, match="is a folder, not a run's file"):
        _run(tmp_path, "run", splits, epochs=1, overwrite=True)
    assert ".lock" not in os.listdir(out) and not os.path.exists(os.path.join(out, ".replaced"))


def test_a_folder_named_like_a_run_file_is_refused_without_suggesting_overwrite(tmp_path, splits):
    """Fourth pass F11: a folder named weights.npz in --out got "pass --overwrite to replace them", and
    --overwrite then refused it.  A new run, with or without --overwrite, says it never moves folders."""
    out = tmp_path / "mine"
    (out / "weights.npz").mkdir(parents=True)
    (out / "weights.npz" / "notes.txt").write_text("mine\n")
    for overwrite in (False, True):
        with pytest.raises(RunError, match="weights.npz is a folder, not a run's file") as err:
            _run(tmp_path, "mine", splits, epochs=1, overwrite=overwrite)
        assert "--overwrite" not in str(err.value)
    assert sorted(os.listdir(out)) == ["weights.npz"] and os.listdir(out / "weights.npz") == ["notes.txt"]


def test_temporaries_a_killed_write_left_are_removed_under_the_lock(tmp_path, splits):
    """Third pass F18: a SIGKILL during an atomic write left .weights.npz.<random>.tmp for good.  The next
    session, holding the lock, removes such files of the run's own names, and nothing else."""
    out = _run(tmp_path, "run", splits, epochs=1)
    stale = [".weights.npz.k3j_x9ab.tmp", ".checkpoint.npz.0a1b2c3d.tmp"]
    kept = [".notes.txt.k3j_x9ab.tmp", ".weights.npz.k3j.tmp", "weights.npz.k3j_x9ab.tmp"]
    for name in stale + kept:
        with open(os.path.join(out, name), "w") as fh:
            fh.write("x")
    train(None, out_dir=out, resume=True, epochs=2, progress=False, log=lambda *a: None, callbacks=NO_FIGURES,
          splits=splits)
    names = os.listdir(out)
    assert not set(stale) & set(names) and set(kept) <= set(names)


def test_a_run_folder_below_a_file_names_the_file(tmp_path, splits):
    """Third pass F20: --out afile/x/y failed with "Not a directory" without naming which part is a file."""
    (tmp_path / "afile").write_text("mine\n")
    with pytest.raises(RunError, match="afile is a file, not a folder"):
        _run(tmp_path, "afile/x/y", splits, epochs=1)
    assert (tmp_path / "afile").read_text() == "mine\n"


def test_a_full_disk_at_the_checkpoint_leaves_the_weights_of_the_last_commit(tmp_path, splits, monkeypatch):
    """Second pass F1: ENOSPC while writing an epoch's checkpoint left weights.npz and best_weights.npz
    of that epoch beside the checkpoint of the one before (evaluate then reported another epoch's
    accuracy than metrics.csv).  They are put back; a resume then equals an uninterrupted run."""
    from reference.app.atomic import WriteError
    from reference.app.runs import RunFolder

    full = _run(tmp_path, "full", splits)
    out = _run(tmp_path, "cut", splits, epochs=1)
    before = _files(out)
    real = RunFolder.checkpoint

    def disk_full(self, *a, **k):
        raise WriteError(f"cannot write {self.file('checkpoint.npz')}: No space left on device")

    monkeypatch.setattr(RunFolder, "checkpoint", disk_full)
    with pytest.raises(WriteError, match="No space left"):
        train(None, out_dir=out, resume=True, epochs=2, progress=False, log=lambda *a: None,
              callbacks=NO_FIGURES, splits=splits)
    after = _files(out)
    assert {k: after[k] for k in before if k != "run.log"} == {k: before[k] for k in before if k != "run.log"}
    assert not [n for n in os.listdir(out) if n.endswith(".prev")]
    monkeypatch.setattr(RunFolder, "checkpoint", real)
    train(None, out_dir=out, resume=True, epochs=2, progress=False, log=lambda *a: None, callbacks=NO_FIGURES,
          splits=splits)
    _assert_same_run(full, out)


_SIGNALLED_CHILD = """
import os, sys
import numpy as np
import yaml
sys.path.insert(0, sys.argv[1])
from test_train import TINY, Split
from reference.app import train as train_mod
from reference.app.cli import main
data = np.load(os.path.join(sys.argv[1], "data", "mnist_fixture.npz"))
norm = lambda im: ((im / 255.0 - 0.1307) / 0.3081)[:, None].astype(np.float32)
split = Split(norm(data["train_images"][:100]), data["train_labels"][:100].astype(np.int64), "fixture")
train_mod.load_split = lambda *a, **k: split
cfg = os.path.join(sys.argv[2], "tiny.yaml")
with open(cfg, "w") as fh:
    yaml.safe_dump({**TINY, "Network": {**TINY["Network"], "epochs": 500}}, fh)
sys.exit(main(["train", "--config", cfg, "--out", os.path.join(sys.argv[2], "run"), "--no-progress"]))
"""


@pytest.mark.integration
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_real_signal_stops_train_at_a_whole_step_with_exit_130(tmp_path, sig):
    """README's promise: Ctrl-C or SIGTERM to ``python -m reference train`` finishes the step in progress,
    saves a checkpoint and exits with 130; ``--resume`` then continues from it.  (The in-process tests
    raise the signal inside steps; this one sends it from outside, as a user or a scheduler does.)"""
    import subprocess
    import sys
    import time

    tests = os.path.dirname(os.path.abspath(__file__))
    proc = subprocess.Popen([sys.executable, "-c", _SIGNALLED_CHILD, tests, str(tmp_path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ROOT})
    metrics = tmp_path / "run" / "metrics.csv"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:  # two epochs done: it is inside the loop
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1][-2000:]
    proc.send_signal(getattr(signal, sig))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    ck = load_checkpoint(tmp_path / "run" / "checkpoint.npz")
    done = ck["meta"]["progress"]["epoch"]
    assert 2 <= done < 500 and len(metrics.read_text().splitlines()) == done + 1
    data = np.load(os.path.join(tests, "data", "mnist_fixture.npz"))  # the child's split, for the resume
    images = ((data["train_images"][:100] / 255.0 - 0.1307) / 0.3081)[:, None].astype(np.float32)
    split = Split(images, data["train_labels"][:100].astype(np.int64), "fixture")
    train(None, out_dir=str(tmp_path / "run"), resume=True, epochs=done + 1, progress=False, log=lambda *a: None,
          callbacks=NO_FIGURES, splits=(split, split))
    assert len(metrics.read_text().splitlines()) == done + 2


def test_a_signal_lost_in_a_c_callback_during_set_up_still_stops_the_overwrite(tmp_path, splits, monkeypatch):
    """Fifth pass F1: a Ctrl-C in the first half second of ``train --overwrite`` landed in a C callback
    (Numba loading its cached kernels), which printed "Exception ignored" and dropped it; the session went
    on and replaced the old run.  Signals are now held while the session is set up and acted on after it,
    so the old run comes back.  The callback is simulated: a function that swallows KeyboardInterrupt."""
    import time

    from reference.network import Network

    out = _run(tmp_path, "run", splits, epochs=1)
    before = open(os.path.join(out, "weights.npz"), "rb").read()
    real = Network.check_batch_fits

    def swallowing(self, *a, **k):
        try:  # what a C callback does with a KeyboardInterrupt raised inside it
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        except KeyboardInterrupt:
            pass
        return real(self, *a, **k)

    monkeypatch.setattr(Network, "check_batch_fits", swallowing)
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, "run", splits, epochs=1, seed=6, overwrite=True)
    assert open(os.path.join(out, "weights.npz"), "rb").read() == before
    assert not os.path.exists(os.path.join(out, ".replaced")) and not os.path.exists(os.path.join(out, ".lock"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_a_set_aside_run_is_never_trained_in_or_replaced(tmp_path, splits, monkeypatch):
    """Fifth pass F4: ``--out X/.replaced --overwrite`` replaced the run an interrupted --overwrite had set
    aside there, and ``--resume X/.replaced`` trained it further; either way ``--resume X`` was then
    refused and the old run lost.  A .replaced/ folder, or one inside it, is refused as a run folder."""
    from reference.app.runs import RunFolder

    out = _run(tmp_path, "run", splits, epochs=1)
    old = open(os.path.join(out, "weights.npz"), "rb").read()
    monkeypatch.setattr(RunFolder, "drop_replaced", lambda self: None)  # as if killed right after the first step
    _run(tmp_path, "run", splits, epochs=1, seed=6, overwrite=True)
    monkeypatch.undo()
    aside = os.path.join(out, ".replaced")
    assert open(os.path.join(aside, "weights.npz"), "rb").read() == old
    link = str(tmp_path / "link")  # sixth pass F2: a link to .replaced/ passed the check
    os.symlink(aside, link)
    for kw in ({"overwrite": True}, {}, {"resume": True}):
        for where in (aside, link):
            with pytest.raises(RunError, match=r"holds the run an interrupted --overwrite set aside"):
                train(None if kw.get("resume") else TINY, out_dir=where, epochs=2, progress=False,
                      log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, **kw)
        with pytest.raises(RunError, match=r"holds the run an interrupted --overwrite set aside"):
            train(TINY, out_dir=os.path.join(aside, "inner"), epochs=1, progress=False, log=lambda *a: None,
                  callbacks=NO_FIGURES, splits=splits)
    assert open(os.path.join(aside, "weights.npz"), "rb").read() == old and ".lock" not in os.listdir(aside)


def test_summarize_refuses_a_metrics_csv_that_differs_from_the_runs_own_record(tmp_path, splits, capsys):
    """A hand-edited metrics.csv is not counted as the run's (issue 30, fifth pass F8): the checkpoint holds
    every epoch's row, a weights file its last epoch's accuracy; a summary reported the edited numbers."""
    from reference.app.summary import not_a_run, read_runs

    (tmp_path / "runs").mkdir()
    out = _run(tmp_path / "runs", "r", splits)
    assert not_a_run(out) is None  # as train wrote it
    metrics = os.path.join(out, "metrics.csv")
    text = open(metrics).read()
    lines = text.splitlines()
    first = lines[1].split(",")
    first[4] = "0.999"  # epoch 1's test accuracy raised by hand
    with open(metrics, "w") as fh:
        fh.write("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    why = not_a_run(out)
    assert why.startswith("metrics.csv differs from what its checkpoint.npz records: epoch 1's test_acc is 0.999")
    skipped = []
    assert read_runs(str(tmp_path / "runs"), skipped) == [] and skipped == [(out, why)]
    with open(metrics, "w") as fh:  # a row left out
        fh.write("\n".join(lines[:-1]) + "\n")
    assert not_a_run(out).startswith("metrics.csv has 1 epochs, its checkpoint.npz records 2")
    os.remove(os.path.join(out, "checkpoint.npz"))  # only the weights file's record is left: the last epoch
    assert "differs from what its weights.npz records: its last row is epoch 1, 2 recorded" in not_a_run(out)
    with open(metrics, "w") as fh:
        fh.write(text)
    assert not_a_run(out) is None
    last = lines[-1].split(",")
    last[4] = "0.5"
    with open(metrics, "w") as fh:
        fh.write("\n".join([*lines[:-1], ",".join(last)]) + "\n")
    assert "differs from what its weights.npz records: epoch 2's test_acc is 0.5 there" in not_a_run(out)


def test_summarize_skips_an_edited_config_and_another_runs_weights(tmp_path, splits):
    """Left open last session: a summary trusted config.yaml edited after the run (the run was grouped
    under values it did not train with) and a weights.npz copied in from another run (its hash counted as
    this run's).  The config inside the checkpoint (else the weights file) and the checkpoint's run id
    decide; such a folder is skipped, naming why, as a resume refuses it."""
    import shutil

    from reference.app.summary import not_a_run, read_runs

    (tmp_path / "runs").mkdir()
    a, b = (_run(tmp_path / "runs", name, splits, epochs=1, seed=s) for name, s in (("a", 5), ("b", 6)))
    assert not_a_run(a) is None and not_a_run(b) is None
    config = os.path.join(a, "config.yaml")
    text = open(config).read()
    assert "tau_m: 5" in text
    with open(config, "w") as fh:
        fh.write(text.replace("tau_m: 5", "tau_m: 8"))
    why = "config.yaml differs from the config inside its checkpoint.npz (edited after the run started, or of another run)"
    assert not_a_run(a) == why
    skipped = []
    assert [r.folder for r in read_runs(str(tmp_path / "runs"), skipped)] == ["b"] and skipped == [(a, why)]
    os.rename(os.path.join(a, "checkpoint.npz"), tmp_path / "ck.npz")  # the weights file's config decides then
    assert not_a_run(a) == why.replace("checkpoint.npz", "weights.npz")
    os.rename(tmp_path / "ck.npz", os.path.join(a, "checkpoint.npz"))
    with open(config, "w") as fh:
        fh.write(text)
    assert not_a_run(a) is None
    for name in ("weights.npz", "best_weights.npz"):
        kept = tmp_path / name
        shutil.copy(os.path.join(a, name), kept)
        shutil.copy(os.path.join(b, name), os.path.join(a, name))  # the other run's, same config and epoch
        assert not_a_run(a).startswith(f"{name} is of another run than its checkpoint.npz (run ")
        shutil.copy(kept, os.path.join(a, name))
    assert not_a_run(a) is None
    shutil.copy(os.path.join(a, "run.log"), tmp_path / "run.log")  # tenth pass F3: another run's run.log
    shutil.copy(os.path.join(b, "run.log"), os.path.join(a, "run.log"))  # (runs.csv's command was b's)
    assert not_a_run(a).startswith("run.log logs sessions of another run than its checkpoint.npz (run ")
    shutil.copy(tmp_path / "run.log", os.path.join(a, "run.log"))
    assert not_a_run(a) is None


def test_summarize_holds_the_best_epoch_to_best_weights_once_the_checkpoint_is_gone(tmp_path, splits):
    """Ninth pass F4: with checkpoint.npz deleted (a natural clean-up), an edit of any row but the last
    was counted: the run's best accuracy became the edited number, though best_weights.npz records the
    best epoch and its accuracy.  The best epoch's row must be that record, and no row above it."""
    from reference.app.runs import read_meta
    from reference.app.summary import not_a_run

    (tmp_path / "runs").mkdir()
    out = _run(tmp_path / "runs", "r", splits, epochs=3)
    os.remove(os.path.join(out, "checkpoint.npz"))
    assert not_a_run(out) is None
    best = read_meta(os.path.join(out, "best_weights.npz"))
    metrics = os.path.join(out, "metrics.csv")
    text = open(metrics).read()
    lines = text.splitlines()
    other = next(e for e in (1, 2) if e != best["epoch"])  # not the last epoch, whose row weights.npz holds
    row = lines[other].split(",")
    row[4] = "0.999"
    with open(metrics, "w") as fh:
        fh.write("\n".join([*lines[:other], ",".join(row), *lines[other + 1:]]) + "\n")
    assert not_a_run(out) == (f"metrics.csv: epoch {other}'s test_acc 0.999 is above the best its best_weights.npz "
                              f"records (epoch {best['epoch']}, {best['test_acc']:.6g}) (edited, or of another run)")
    if best["epoch"] < 3:  # the best epoch's own row, edited
        row = lines[best["epoch"]].split(",")
        row[4] = "0.0001"
        with open(metrics, "w") as fh:
            fh.write("\n".join([*lines[:best["epoch"]], ",".join(row), *lines[best["epoch"] + 1:]]) + "\n")
        assert not_a_run(out).startswith(f"metrics.csv differs from what its best_weights.npz records: epoch "
                                         f"{best['epoch']}'s test_acc is 0.0001 there")
    with open(metrics, "w") as fh:
        fh.write(text)
    assert not_a_run(out) is None


def test_summarize_names_every_folder_it_does_not_count(tmp_path, splits):
    """Ninth pass F5, F6: a run folder without metrics.csv (deleted, or an --overwrite stopped before
    its first epoch) was left out without a word, a seed gone from the mean; and a link to a run folder
    was counted in the table (the real folder called its copy) while runs.csv, which does not follow
    links, listed the real folder.  Each is now named as skipped, and both tables count the same runs."""
    import csv
    import shutil

    from reference.app.summary import summarize

    runs = tmp_path / "runs"
    runs.mkdir()
    a, b, c = (_run(runs, name, splits, epochs=1, seed=s) for name, s in (("a", 5), ("b", 6), ("c", 7)))
    os.remove(os.path.join(b, "metrics.csv"))
    os.mkdir(os.path.join(c, ".replaced"))  # the old run waits there; the new run has no epoch yet
    shutil.move(os.path.join(c, "metrics.csv"), os.path.join(c, ".replaced", "metrics.csv"))
    os.symlink(a, runs / "0_link")  # sorts before the folder it points to
    skipped = []
    summarize(str(runs), skipped)
    assert dict(skipped) == {
        str(runs / "0_link"): f"a link to {a}: a run counts in the folder where it lies, not through a link",
        b: "no metrics.csv (train --resume writes it again from the checkpoint)",
        c: f"an --overwrite stopped before its new run finished an epoch (the run it replaces waits in .replaced/): "
           f"train --resume {c} settles it"}, skipped
    with open(runs / "runs.csv") as fh:
        assert [r["run"] for r in csv.DictReader(fh)] == ["a"]
    with open(runs / "summary.csv") as fh:
        assert [r["folders"] for r in csv.DictReader(fh)] == ["a"]


def test_summary_and_runs_csv_count_the_same_runs(tmp_path, splits):
    """Tenth pass F1, F2: runs.csv kept a row for a folder the summary skipped as a copy, and a run one
    level down was in runs.csv but left out of the summary without a word.  Both tables now read one
    list: a copy counts in neither (a deeper copy of a run directly under the folder is the copy), and
    a deeper run, which only runs.csv lists (as results/reruns/), is named as skipped by the groups."""
    import csv
    import shutil

    from reference.app.summary import summarize

    runs = tmp_path / "runs"
    runs.mkdir()
    a = _run(runs, "a", splits, epochs=1, seed=5)
    _run(runs, "c", splits, epochs=1, seed=6)
    shutil.copytree(a, runs / "b")
    (runs / "0_deeper").mkdir()
    shutil.copytree(a, runs / "0_deeper" / "a_again")  # sorts first, lies deeper
    _run(runs / "0_deeper", "d", splits, epochs=1, seed=7)
    skipped = []
    summarize(str(runs), skipped)
    same = "a copy of a (the same weights, SHA-256 "
    assert [(os.path.relpath(f, runs), why[:len(same)] if why.startswith("a copy") else why) for f, why in skipped] == [
        ("0_deeper/a_again", same),
        ("0_deeper/d", f"in a subfolder: the groups count only the runs directly under {runs} (summarize "
                         f"{runs / '0_deeper'} to group it)"),
        ("b", same)]
    with open(runs / "runs.csv") as fh:
        assert [r["run"] for r in csv.DictReader(fh)] == ["0_deeper/d", "a", "c"]
    with open(runs / "summary.csv") as fh:
        assert [r["folders"] for r in csv.DictReader(fh)] == ["a c"]


def test_a_new_run_refuses_a_folder_of_other_files_and_one_inside_a_run(tmp_path, splits):
    """Sixth pass F3/F4: ``train --out ..`` (or ``~``, or a link to a user's folder) wrote the nine run files
    among the user's own, and ``--out RUN/sub`` made a run inside a run's folder.  A new run takes a new or
    empty folder, or one holding only a run's files; the refusal names the foreign files and touches nothing."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    os.symlink(mine, tmp_path / "link")
    for where in (mine, tmp_path / "link"):
        for overwrite in (False, True):
            with pytest.raises(RunError, match=r"holds files that are not a run's \(notes.txt\); a run gets a "
                                               r"folder of its own"):
                _run(tmp_path, os.path.relpath(where, tmp_path), splits, epochs=1, overwrite=overwrite)
    assert os.listdir(mine) == ["notes.txt"]
    run = _run(tmp_path, "run", splits, epochs=1)
    with pytest.raises(RunError, match=r"lies inside the run folder .*run; give each run a folder of its own"):
        _run(tmp_path, "run/sub", splits, epochs=1)
    assert not os.path.exists(os.path.join(run, "sub"))
    _run(tmp_path, "run", splits, epochs=1, overwrite=True)  # a run's own files are what --overwrite replaces


def test_the_file_systems_root_is_no_run_folder(tmp_path):
    """Sixth pass: ``train --out /`` wrote a run's nine files among the system's folders.  Checked with
    check_new, which touches nothing, so the test cannot write there when it fails."""
    from reference.app.runs import RunFolder

    os.symlink("/", tmp_path / "root")
    for path in ("/", str(tmp_path / "root"), "/tmp/../"):
        with pytest.raises(RunError, match="is the file system's root; give a folder for the run"):
            RunFolder.check_new(path, overwrite=True)


def test_a_resume_writes_a_deleted_config_yaml_again_from_the_checkpoint(tmp_path, splits):
    """Sixth pass: a run whose config.yaml was deleted resumed without it, and then counted as no run in a
    summary (its config is unreadable).  The checkpoint holds the config: the resume writes it again."""
    out = _run(tmp_path, "r", splits, epochs=1)
    text = open(os.path.join(out, "config.yaml")).read()
    os.remove(os.path.join(out, "config.yaml"))
    said = []
    train(None, out_dir=out, resume=True, epochs=1, progress=False, log=said.append, callbacks=NO_FIGURES,
          splits=splits)
    assert open(os.path.join(out, "config.yaml")).read() == text
    assert any("config.yaml was missing; wrote it again from the checkpoint's config" in s for s in said), said


def test_a_resume_refuses_a_checkpoint_among_another_runs_files(tmp_path, splits):
    """Sixth pass F9: a checkpoint.npz copied from another run of the same config was resumed among the
    other run's weights, figures and run.log without a word.  Each run draws a run id, kept in its
    checkpoint, weights files and run.log; a resume refuses files of two runs, and an old checkpoint of
    the same run beside newer weights."""
    import shutil

    a = _run(tmp_path, "a", splits, epochs=1)
    b = _run(tmp_path, "b", splits, epochs=1)  # the same seed and config: only the run id tells them apart
    ids = {load_checkpoint(os.path.join(r, "checkpoint.npz"))["meta"]["settings"]["run_id"] for r in (a, b)}
    assert len(ids) == 2 and all(len(i) == 32 for i in ids)
    assert load_checkpoint(os.path.join(a, "weights.npz"))["meta"]["run_id"] in ids
    shutil.copy(os.path.join(a, "checkpoint.npz"), os.path.join(b, "checkpoint.npz"))
    before = _files(b)
    with pytest.raises(RunError, match=r"weights.npz is of another run than checkpoint.npz \(run "):
        train(None, out_dir=b, resume=True, epochs=2, progress=False, log=lambda *a: None, callbacks=NO_FIGURES,
              splits=splits)
    assert _files(b) == before
    for name in ("weights.npz", "best_weights.npz"):  # only run.log is left to tell
        shutil.copy(os.path.join(a, name), os.path.join(b, name))
    with pytest.raises(RunError, match=r"run.log is of another run than checkpoint.npz \(it logs sessions of run "):
        train(None, out_dir=b, resume=True, epochs=2, progress=False, log=lambda *a: None, callbacks=NO_FIGURES,
              splits=splits)
    old = open(os.path.join(a, "checkpoint.npz"), "rb").read()  # the same run's checkpoint of an earlier epoch
    train(None, out_dir=a, resume=True, epochs=3, progress=False, log=lambda *a: None, callbacks=NO_FIGURES,
          splits=splits)
    with open(os.path.join(a, "checkpoint.npz"), "wb") as fh:  # (weights one epoch ahead are a kill's state)
        fh.write(old)
    with pytest.raises(RunError, match=r"weights.npz is of another run .*its weights are of epoch 3, the "
                                       r"checkpoint has finished 1"):
        train(None, out_dir=a, resume=True, epochs=4, progress=False, log=lambda *a: None, callbacks=NO_FIGURES,
              splits=splits)


_HELD_CHILD = """
import os, signal, sys
from reference.app.runs import HeldSignal

try:
    with HeldSignal() as held:
        if sys.argv[1] == "touching":
            held.touching()
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C
        print("set-up went on")
except KeyboardInterrupt:
    print("raised at the block's end")
"""


@pytest.mark.parametrize("when", ["loading", "touching"])
def test_a_second_signal_in_the_set_up_ends_at_once_until_the_folder_changes(when):
    """Seventh pass F3: a double Ctrl-C in a new run's set-up raised KeyboardInterrupt wherever it landed,
    inside llvmlite's or importlib's callbacks too, which printed 'Exception ignored' and a traceback.
    Before the folder is touched a second signal now ends the process at once (one line, exit 130); once
    it is touched, it is held as the first, and the block's end raises (so the start is undone)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _HELD_CHILD, when], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": ROOT})
    if when == "loading":
        assert (proc.returncode, proc.stdout, proc.stderr.strip()) == (130, "", "interrupted")
    else:
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "set-up went on\nraised at the block's end\n", "")


def test_a_resume_never_draws_over_a_users_picture_of_a_figures_name(tmp_path, splits, capsys):
    """Eighth pass F1 (data loss): a user's own PNG saved as RUN/learning_curve.png was replaced by the
    resumed run's figure; F7: any figure of the project counted as every command's own.  A figure carries
    the name it was drawn as; a run leaves any other file of a figure's name as it is, and says so."""
    import shutil

    import matplotlib.pyplot as plt

    from reference.app.plots import not_a_png

    out = _run(tmp_path, "run", splits, epochs=1, callbacks=None)  # with its figures
    curve, matrix = os.path.join(out, "learning_curve.png"), os.path.join(out, "confusion_matrix.png")
    assert not not_a_png(curve) and not not_a_png(matrix)
    shutil.copy(curve, tmp_path / "confusion_matrix.png")  # another figure of the project, under this name
    assert not_a_png(tmp_path / "confusion_matrix.png")
    fig = plt.figure(figsize=(1, 1))
    fig.savefig(curve)  # the user's own picture
    plt.close(fig)
    mine = open(curve, "rb").read()
    before = open(matrix, "rb").read()
    capsys.readouterr()
    train(None, out_dir=out, resume=True, epochs=2, progress=False, log=lambda *a: None, splits=splits)
    assert open(curve, "rb").read() == mine and open(matrix, "rb").read() != before  # its own is redrawn
    assert capsys.readouterr().err.count("learning_curve.png is not a figure a run drew") == 1


def test_an_overwrite_never_leaves_the_old_demos_figures_beside_the_new_run(tmp_path, splits):
    """Eighth pass F2: a demo over an earlier demo, stopped after its first step and before it drew its
    figures, left the old run's spike raster and membrane traces beside the new run.  The demo's figures
    are a run's derived files: set aside with the old run, put back with it, dropped with it."""
    import matplotlib.pyplot as plt

    from reference.app import plots
    from reference.app.demo import DEMO_TAG
    from reference.app.runs import DEMO_FIGURES

    out = _run(tmp_path, "demo", splits, epochs=1, tag=DEMO_TAG)
    for name in DEMO_FIGURES:
        plots.save(plt.figure(figsize=(1, 1)), os.path.join(out, name))

    def ctrl_c_at_the_third_step(point, step):
        if (step, point) == (2, "step_done"):
            os.kill(os.getpid(), signal.SIGINT)

    result = train(TINY, out_dir=out, epochs=1, tag=DEMO_TAG, seed=6, overwrite=True, progress=False,
                   log=lambda *a: None, callbacks=NO_FIGURES, splits=splits, fault_hook=ctrl_c_at_the_third_step)
    assert result["interrupted"] and result["kept"]  # the new run holds three steps: the old one went
    assert not any(os.path.exists(os.path.join(out, name)) for name in DEMO_FIGURES)  # its figures too
    assert not os.path.exists(os.path.join(out, ".replaced"))
    assert load_checkpoint(os.path.join(out, "checkpoint.npz"))["meta"]["settings"]["seed"] == 6


def test_a_finished_run_resumed_draws_the_figures_its_last_session_did_not(tmp_path, splits):
    """Left open last session: a run whose last session ended after its last checkpoint and before its
    figures (a second Ctrl-C, a kill) never got them, since a resume with nothing to train drew nothing.
    Such a resume evaluates the checkpoint's weights (the last epoch's) and draws them: the same pictures,
    byte for byte, as the session that finished the run drew."""
    out = _run(tmp_path, "run", splits, epochs=1, callbacks=None)
    names = ("learning_curve.png", "confusion_matrix.png")
    drawn = {n: open(os.path.join(out, n), "rb").read() for n in names}
    for n in names:
        os.remove(os.path.join(out, n))
    said = []
    train(None, out_dir=out, resume=True, progress=False, log=said.append, splits=splits)
    assert {n: open(os.path.join(out, n), "rb").read() for n in names} == drawn
    assert any("writing them from the checkpoint's weights" in line for line in said), said
    said.clear()  # with its figures there, a resume with nothing to do does nothing but say so
    train(None, out_dir=out, resume=True, progress=False, log=said.append, splits=splits)
    assert not any("writing them" in line for line in said), said


@pytest.mark.parametrize("when", ["on_epoch_end", "on_stop"])
def test_a_signal_as_the_run_ends_is_reported_and_not_dropped(tmp_path, splits, when):
    """Ninth pass F7: a Ctrl-C that came as the last epoch's outputs or the session's figures were written
    was dropped (exit 0, nothing said), and one just after the last epoch said "continue with --resume"
    for a run with nothing left to resume.  Either is now an interruption of a finished run, said so."""
    from reference.app.train import Callback

    class SignalAt(Callback):
        def on_epoch_end(self, row, folder, labels, preds, config):
            if when == "on_epoch_end" and row["epoch"] == 2:
                signal.raise_signal(signal.SIGINT)

        def on_stop(self):
            if when == "on_stop":
                signal.raise_signal(signal.SIGINT)

    said = []
    result = train(TINY, out_dir=str(tmp_path / "run"), seed=5, progress=False, log=said.append, splits=splits,
                   callbacks=[SignalAt()])
    assert result["interrupted"] and load_checkpoint(tmp_path / "run" / "checkpoint.npz")["meta"]["progress"]["epoch"] == 2
    expected = ("interrupted after epoch 2 (saved); that was the run's last epoch: it has finished" if when == "on_epoch_end"
                else "interrupted as the run ended: its 2 epochs are saved, and its figures drawn")
    assert said[-1] == expected, said


def test_a_ctrl_c_while_the_demo_draws_says_the_run_is_complete(tmp_path, splits, monkeypatch, capsys):
    """Ninth pass F7: a Ctrl-C while the demo drew its pictures of one digit said only "interrupted",
    with the run finished and two figures missing.  It now says what is saved and what may be missing."""
    from reference.app import demo

    monkeypatch.setattr(demo, "train", lambda config, **kw: train(config, **{**kw, "splits": splits, "log": lambda *a: None}))

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "draw_network_activity", ctrl_c)
    out = str(tmp_path / "demo")
    result = demo.run_demo(out_dir=out, epochs=1, progress=False)
    assert result["interrupted"] and os.path.exists(os.path.join(out, "weights.npz"))
    assert capsys.readouterr().out.strip().endswith(
        f"interrupted while the demo drew its figures: the run in {out} has finished and is saved, but "
        f"membrane_traces.png and spike_raster.png may be missing (the demo draws them when run again)")


def test_a_resume_of_a_folder_without_a_checkpoint_gives_a_hint_that_works(tmp_path, splits):
    """Ninth pass F10: --resume of a user's folder, or of a run whose checkpoint was deleted, suggested
    ``start a run with --config ... --out`` that very folder, which is refused (or, with --overwrite, would
    delete the weights that are left).  Only an empty folder gets that hint now."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    run = _run(tmp_path, "run", splits, epochs=1)
    os.remove(os.path.join(run, "checkpoint.npz"))
    (tmp_path / "empty").mkdir()
    for folder in (str(mine), run):
        with pytest.raises(RunError) as err:
            train(None, out_dir=folder, resume=True, progress=False, log=lambda *a: None, splits=splits)
        assert str(err.value) == (f"--resume {folder}: the folder holds no checkpoint.npz, so there is nothing to "
                                  f"resume; a new run needs a folder of its own (--out another folder)")
    with pytest.raises(RunError, match=r"nothing to resume; start a run with --config \.\.\. --out"):
        train(None, out_dir=str(tmp_path / "empty"), resume=True, progress=False, log=lambda *a: None, splits=splits)


def test_a_resume_says_when_the_best_epochs_weights_are_gone(tmp_path, splits):
    """Ninth pass F11: a deleted best_weights.npz was never mentioned (and is written again only by an
    epoch that beats the best)."""
    from reference.app.runs import read_meta

    out = _run(tmp_path, "run", splits, epochs=1)
    best = read_meta(os.path.join(out, "best_weights.npz"))
    os.remove(os.path.join(out, "best_weights.npz"))
    said = []
    train(None, out_dir=out, resume=True, epochs=2, progress=False, log=said.append, callbacks=NO_FIGURES, splits=splits)
    assert (f"note: {os.path.join(out, 'best_weights.npz')} is missing: the weights of the run's best epoch, 1 (test "
            f"accuracy {best['test_acc']:.4f}), are gone; a later epoch that beats it writes the file again") in said, said


def test_a_finished_runs_resume_names_a_figure_it_leaves(tmp_path, splits, capsys):
    """Ninth pass F9: a finished run's resume (nothing to train) left a user's picture under a figure's
    name without the note a resume that trains gives."""
    out = _run(tmp_path, "run", splits, epochs=1, callbacks=None)
    curve = os.path.join(out, "learning_curve.png")
    with open(curve, "wb") as fh:
        fh.write(b"my own picture")
    capsys.readouterr()
    train(None, out_dir=out, resume=True, progress=False, log=lambda *a: None, splits=splits)
    assert open(curve, "rb").read() == b"my own picture"
    assert capsys.readouterr().err.count(f"note: {curve} is not a figure a run drew") == 1


def test_a_second_ctrl_c_says_what_the_checkpoint_holds(tmp_path, splits):
    """Tenth pass F5: a double Ctrl-C in a run ended with a bare "interrupted", though its first epoch was
    saved and resumable.  The line now says what the checkpoint on disk holds."""
    out = str(tmp_path / "run")

    def hook(point, step):
        if (step, point) == (7, "adamw"):  # epoch 2 (5 batches an epoch), after epoch 1 was committed
            raise KeyboardInterrupt

    said = []
    with pytest.raises(KeyboardInterrupt):
        train(TINY, out_dir=out, seed=5, progress=False, log=said.append, callbacks=NO_FIGURES, splits=splits,
              fault_hook=hook)
    assert said[-1] == f"\ninterrupted again: the checkpoint holds 1 finished epoch; continue with --resume {out}"


def test_a_ctrl_c_as_the_demos_run_ends_says_its_figures_are_missing(tmp_path, splits, monkeypatch, capsys):
    """Eleventh pass F7: a Ctrl-C as the demo's run ended (its last epoch saved) said the run had
    finished, but not that the demo's own figures, drawn after it, were missing."""
    from reference.app import demo

    def stopped_at_the_end(config, **kw):
        result = train(config, **{**kw, "splits": splits, "log": lambda *a: None})
        return {**result, "interrupted": True}  # as a Ctrl-C in the run's last outputs leaves it

    monkeypatch.setattr(demo, "train", stopped_at_the_end)
    result = demo.run_demo(out_dir=str(tmp_path / "demo"), epochs=1, progress=False)
    assert result["interrupted"]
    assert capsys.readouterr().out.strip().endswith(
        "the demo's membrane_traces.png and spike_raster.png may be missing (the demo draws them when run again)")
