"""Training and evaluation on real data: the authors' loop, in a run folder that resumes bit for bit.

One epoch: shuffle the training set (the order is drawn from ``default_rng([seed, epoch])``, so it needs
no saved state), then for each mini-batch the authors' step (:func:`reference.optim.train_step`), then
the test set.  After every epoch the run folder commits the epoch (:meth:`reference.app.runs.RunFolder.commit_epoch`:
weights, best weights, the checkpoint with every metrics row, then ``metrics.csv``) and the callbacks
redraw the figures.  Ctrl-C only asks the loop to stop: it finishes the step it is in, saves a checkpoint
and returns; ``--resume DIR`` then continues exactly as if the run had never stopped.

Application layer: it drives an engine of :mod:`reference.engines` (the default: :class:`reference.network.Network` and :mod:`reference.optim`).
"""
from __future__ import annotations

import os
import sys
import time
import uuid

import numpy as np

from .atomic import signals_held
from .blas import blas_info, describe as describe_blas, openblas_threads
from ..config import Config, load_config
from .data import DataError, iterate_minibatches, load_cifar10, load_dataset, normalise, random_crop_flip
from ..engines import make_engine, world_size
from ..engines.evaluation import Split, eval_batch_size, evaluate  # noqa: F401  (part of this module's interface)
from ..options import NetOptions
from .runs import (BEST_WEIGHTS, CHECKPOINT, CONFIG, LOCK, METRICS, RUN_LOG, CheckpointError, Progress, ReadOnlyFolder, RunError, RunFolder,
                   HeldSignal, Settings, StopSignal, read_metrics)
# Re-exported for code that imported them from here before the run folder had a module of its own.
from .runs import METRIC_COLUMNS, load_checkpoint, save_weights  # noqa: F401,E402


#: The datasets no registry ships — read from a folder the user has (``--data-dir``, $TSSLBP_DATA_DIR, or
#: the config's ``data_path``), with what to put there.
USER_FOLDER_DATASETS = {
    "CIFAR10": "the CIFAR-10 'python' version (https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, "
               "unpacked): the folder holding cifar-10-batches-py/ or its files data_batch_1..5 and test_batch",
    "NMNIST_Spiking": "N-MNIST (https://www.garrickorchard.com/datasets/n-mnist: Train.zip and Test.zip, "
                      "unpacked): the folder holding Train/0..9/*.bin and Test/0..9/*.bin",
    "arrays": "your own data: a folder holding train.npz and test.npz, each with x and labels (docs/own_data.md)",
}


def user_folder(name: str, data_dir=None, config: Config | None = None) -> str:
    """The folder to read a :data:`USER_FOLDER_DATASETS` dataset from: ``data_dir``, else
    $TSSLBP_DATA_DIR, else the config's ``data_path`` if that folder exists; else :class:`DataError`
    saying what to download and where to point."""
    folder = data_dir or os.environ.get("TSSLBP_DATA_DIR") or None
    if folder is None and config is not None and config.network.get("data_path"):
        path = os.path.expanduser(str(config.network["data_path"]))
        if os.path.isdir(path):
            folder = path
    if folder is None and name == "arrays":
        raise DataError("dataset 'arrays' reads your own files: pass --data-dir DIR (or set TSSLBP_DATA_DIR, or the "
                        "config's data_path), the folder holding train.npz and test.npz, each with x and labels "
                        "(docs/own_data.md)")
    if folder is None:
        where = f" (the config's data_path {config.network['data_path']} does not exist)" \
            if config is not None and config.network.get("data_path") else ""
        raise DataError(f"{name} cannot be downloaded by this project{where}. Get {USER_FOLDER_DATASETS[name]}; "
                        f"then pass --data-dir DIR (or set TSSLBP_DATA_DIR, or the config's data_path)")
    return folder


def load_split(name: str, split: str, limit: int | None = None, data_dir=None, cache_dir=None, verbose=True,
               *, config: Config | None = None) -> Split:
    """Load a real dataset split and prepare it as the authors' loaders do.

    MNIST, FashionMNIST: through :func:`reference.app.data.load_dataset` (verified, cached), normalised.
    CIFAR10: the python batches from the user's folder (:func:`user_folder`), normalised; the training
    split gets the authors' random crop (padding 4) and horizontal flip (:func:`reference.app.data.random_crop_flip`).
    NMNIST_Spiking: the event files from the user's folder, binned into the config's ``n_steps``
    (:mod:`reference.app.nmnist`; the config's ``time_window_us`` and ``event_binning`` choose how); needs ``config``.
    arrays: your own ``train.npz`` / ``test.npz`` (:mod:`reference.app.arrays`); needs ``config``.
    ``limit`` keeps the first samples only.  With ``config``, labels beyond its ``n_class`` (the output
    layer's neurons) are a :class:`~reference.app.data.DataError` here, not a failure inside the first step.
    """
    out = _load_split(name, split, limit, data_dir, cache_dir, verbose, config)
    n_class = config.network.get("n_class") if config is not None else None
    if n_class is not None and len(out.labels) and int(out.labels.max()) >= n_class:
        raise DataError(f"{name} {split}: its labels reach {int(out.labels.max())}, but the config's n_class is "
                        f"{n_class} (one output neuron per class): set n_class to at least {int(out.labels.max()) + 1}")
    return out


def _load_split(name, split, limit, data_dir, cache_dir, verbose, config) -> Split:
    if name == "arrays":
        from .arrays import load_arrays

        if config is None:
            raise DataError("your own arrays are checked against the config: give it (load_split(..., config=))")
        return load_arrays(user_folder(name, data_dir, config), split, config, limit, verbose)
    if name == "CIFAR10":
        ds = load_cifar10(user_folder(name, data_dir, config), split)
        images, labels = ds.images[:limit], ds.labels[:limit]
        augment = random_crop_flip if split == "train" else None
        if verbose:
            print(f"[data] CIFAR10 {split}: {len(labels)} samples from {ds.source}"
                  + ("; random crop (padding 4) + flip" if augment else ""), file=sys.stderr)
        return Split(normalise(images, name), labels.astype(np.int64), ds.source, augment)
    if name == "NMNIST_Spiking":
        from .nmnist import load_nmnist

        if config is None:
            raise DataError("N-MNIST is binned into the config's n_steps: give the config (load_split(..., config=))")
        net = config.network
        frames, labels, source = load_nmnist(user_folder(name, data_dir, config), split, net["n_steps"],
                                             net.get("time_window_us"), limit=limit,
                                             binning=net.get("event_binning") or "authors",
                                             progress=verbose and sys.stderr.isatty())
        if verbose:
            print(f"[data] N-MNIST {split}: {len(labels)} samples from {source}", file=sys.stderr)
        return Split(frames, labels, source)
    ds = load_dataset(name, split, data_dir=data_dir, cache_dir=cache_dir, verbose=verbose)
    images, labels = ds.images, ds.labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return Split(normalise(images, name), labels.astype(np.int64), ds.source)


# ---------------------------------------------------------------------------------------- callbacks
class Callback:
    """Hooks of the training loop (all optional): progress, logging, figures."""

    def on_epoch_start(self, epoch: int, n_epochs: int, n_batches: int, progress: Progress) -> None: ...

    def on_step(self, progress: Progress) -> None: ...

    def before_commit(self, row: dict, folder: RunFolder) -> None:
        """After the epoch's test, before its checkpoint: where a per-epoch file of the run is written, so
        that the checkpoint (the commit point) never exists without it.  A kill after this and before the
        checkpoint redoes the epoch on ``--resume``: the writer must replace its row of a redone epoch."""

    def on_epoch_end(self, row: dict, folder: RunFolder, labels: np.ndarray, preds: np.ndarray, config: Config) -> None: ...

    def on_stop(self) -> None: ...

    def missing(self, folder: RunFolder) -> bool:
        """Whether what :meth:`on_epoch_end` writes of the last finished epoch is missing from ``folder``
        (the session that finished the run ended before it was written): a resume with no epoch left to
        train then calls :meth:`on_epoch_end` once more, with the last epoch's row and test predictions."""
        return False


class ProgressBar(Callback):
    """A tqdm bar per epoch with the running loss, accuracy and samples/s."""

    def __init__(self, enabled: bool = True):
        self.enabled, self.bar = enabled, None

    def on_epoch_start(self, epoch, n_epochs, n_batches, progress):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=n_batches, initial=progress.batch, desc=f"epoch {epoch + 1}/{n_epochs}",
                        unit="batch", disable=not self.enabled, leave=True, mininterval=0.5)

    def on_step(self, p):
        self.bar.set_postfix(loss=f"{p.loss_sum / p.seen:.3f}", acc=f"{p.correct / p.seen:.3f}",
                             samples_s=f"{p.seen / max(p.train_seconds, 1e-9):.0f}", refresh=False)
        self.bar.update(1)

    def on_epoch_end(self, row, folder, labels, preds, config):
        self.on_stop()

    def on_stop(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Figures(Callback):
    """Draws ``learning_curve.png`` and ``confusion_matrix.png`` of the last finished epoch.

    After an epoch they are redrawn when :attr:`every_seconds` have passed since the last drawing (an
    epoch of a real run takes longer, so they follow every epoch), and always when the session ends
    (finished, stopped by Ctrl-C, or failed after an epoch).  Drawing both takes about 0.4 s, which was most
    of the time of a short run (a 2-epoch test run, the demo's epochs of a few seconds).
    """

    #: Seconds between two drawings during a session; the end of the session always draws.
    every_seconds = 30.0
    #: The figures, in the run folder.
    names = ("learning_curve.png", "confusion_matrix.png")

    def __init__(self):
        self._pending = None
        self._drawn_at = time.perf_counter()
        self._left = set()  # figures' paths held by files no run drew (said once)

    def on_epoch_end(self, row, folder, labels, preds, config):
        self._pending = (folder, labels, preds, config)
        if time.perf_counter() - self._drawn_at >= self.every_seconds:
            self._draw()

    def missing(self, folder):
        from . import plots

        for name in self.names:  # a finished run's resume draws nothing else: say what stays as it is
            if os.path.lexists(folder.file(name)) and plots.not_a_png(folder.file(name)):
                self._note_left(folder.file(name))
        return not all(os.path.lexists(folder.file(name)) for name in self.names)

    def _note_left(self, path):
        if path not in self._left:  # said once per session
            self._left.add(path)
            print(f"note: {path} is not a figure a run drew (a user's file of that name, or one drawn before "
                  f"this version); it is left as it is: move it away to have it redrawn", file=sys.stderr)

    def on_stop(self):
        if self._pending is not None:
            try:
                self._draw()
            except Exception as err:  # noqa: BLE001  (the epochs are committed; a figure must not hide why
                # the session stopped, nor turn a finished run into a traceback)
                print(f"note: the run's figures were not redrawn: {type(err).__name__}: {err}", file=sys.stderr)

    def _draw(self):
        from . import plots

        folder, labels, preds, config = self._pending
        self._pending = None
        metrics = read_metrics(folder.file(METRICS))
        for name, draw in zip(self.names, (
                lambda: plots.learning_curve(metrics, title=f"{config.network['dataset']}: accuracy per epoch"),
                lambda: plots.confusion_matrix(labels, preds, config.network["n_class"], title="test set, last epoch"))):
            path = folder.file(name)
            if plots.not_a_png(path):  # a user's own picture of that name (or a figure drawn before 8 Dec
                self._note_left(path)  # 2026, which has no mark): never replaced
                continue
            plots.save(draw(), path)
        self._drawn_at = time.perf_counter()


# ------------------------------------------------------------------------------------------- train
def train(config, *, out_dir: str, epochs: int | None = None, batch_size: int | None = None,
          seed: int | None = None, resume: bool = False, overwrite: bool = False, data_dir=None, cache_dir=None,
          train_limit: int | None = None, test_limit: int | None = None, progress: bool = True,
          max_seconds: float | None = None, net_options: dict | None = None, log=print,
          splits: tuple | None = None, callbacks: list | None = None, fault_hook=None, tag: str | None = None,
          diagnostics: int | None = None, engine: str = "numpy", device: str | None = None,
          command: str | None = None) -> dict:
    """Train a network from a config on its real dataset in the run folder ``out_dir``.

    Parameters
    ----------
    config : path, dict or Config in the authors' schema; with ``resume`` optional (then it must equal the
        run's config)
    out_dir : the run folder (:mod:`reference.app.runs`); a new run refuses a folder holding a run unless
        ``overwrite``
    epochs, batch_size : override the config's ``epochs`` / ``batch_size`` (a resume may raise ``epochs``)
    seed : seeds weight initialisation, dropout and the data order (default 0)
    resume : continue the run in ``out_dir`` from its checkpoint.  Every other setting given must equal
        the run's (else :class:`reference.app.runs.RunError`); ``None`` means "as the run".
    train_limit, test_limit : use only the first samples of each split (quick runs, demos)
    max_seconds : stop after the epoch during which this much training time has passed
    net_options : extra :class:`~reference.network.Network` keyword arguments (e.g. ``warmup="never"``)
    splits : (train Split, test Split), optional; given, no dataset is loaded (tests, custom data)
    callbacks : list of :class:`Callback` (default: a progress bar and the figures)
    fault_hook : ``hook(point, step)`` called at points inside every step and commit (tests inject faults
        with it: a real SIGINT, or an exception standing for a killed process)
    tag : a label stored with a new run (the demo marks its runs "demo", and replaces only those)
    diagnostics : if > 0, after every epoch measure the network on this many training samples and append a
        row to ``diagnostics.csv`` (:mod:`reference.app.diagnostics`: loss parts, spike counts, branch shares,
        norms); it reads the network only, so the run's results are the same with or without it.  Part of the
        run's settings: a resume continues with the run's own (None, the default, means "as the run has it";
        a new run then measures nothing), and one that asks for another number is refused
    engine : "numpy" (the reference, default) or "torch" (:mod:`reference.engines.torch_engine`: the PyTorch
        twin, on ``device``, and over several processes when started by torchrun).  The checkpoint is the
        same file on both, so a run may resume on the other engine.
    device : torch engine only: "cpu" (default), "cuda" or "cuda:N"
    command : the command line that started this session, for ``run.log`` (the CLI passes its own;
        default: this process's ``sys.argv``)

    Returns
    -------
    dict with the last finished epoch's metrics, ``out_dir``, ``checkpoint``, ``net``, ``test_set``,
    ``interrupted`` (True when stopped by Ctrl-C/SIGTERM; a checkpoint was saved) and ``writer`` (False on
    the processes of a distributed run that do not write the folder).
    """
    given = Settings(seed=seed, epochs=epochs, batch_size=batch_size, train_limit=train_limit,
                     test_limit=test_limit, net_options=net_options, max_seconds=max_seconds, engine=engine,
                     diagnostics=diagnostics)
    # with several processes (torchrun), only rank 0 writes (and locks) the folder; the others read it
    writer = world_size() == 1 or os.environ.get("RANK", "0") == "0"
    folder = (RunFolder.open(out_dir) if writer else ReadOnlyFolder.open(out_dir)) if resume else None
    eng = net = state = committed = None
    undone = False
    first_epoch, wall0 = 0, time.perf_counter()
    try:
        # until the folder is set up (and an --overwrite's old run set aside), a signal is held and acted on
        # after it (HeldSignal): undo_start below then puts everything back
        with HeldSignal() as held:
            if resume:
                net, opt, cfg, settings, state, eng = _resume(folder, config, given, log, device)
            else:  # everything that can fail is checked before the folder is touched
                if writer:
                    RunFolder.check_new(out_dir, overwrite)
                cfg = config if isinstance(config, Config) else load_config(config)
                settings = Settings(seed=0 if seed is None else seed, epochs=epochs or cfg.network["epochs"],
                                    batch_size=batch_size or cfg.network["batch_size"], train_limit=train_limit,
                                    test_limit=test_limit, net_options=dict(net_options or {}), max_seconds=max_seconds,
                                    tag=tag, engine=engine, diagnostics=diagnostics or 0, run_id=uuid.uuid4().hex)
                eng = make_engine(engine, device, settings.batch_size)
                net = eng.network(cfg, settings.seed, settings.net_options)
                net.check_batch_fits(settings.batch_size)
                opt = eng.optimiser(net, cfg.network["lr"])
                state = Progress()
            diagnostics = settings.diagnostics if eng.writer else 0
            if not eng.writer:
                log, callbacks = (lambda *a, **k: None), []
            # several processes: rank 0 loads (and may download into the shared cache) before the others
            train_set, test_set = splits if splits is not None else eng.first(lambda: (
                load_split(cfg.network["dataset"], "train", settings.train_limit, data_dir, cache_dir,
                           verbose=progress and eng.writer, config=cfg),
                load_split(cfg.network["dataset"], "test", settings.test_limit, data_dir, cache_dir,
                           verbose=progress and eng.writer, config=cfg)))
            data = {"train": train_set.fingerprint(), "test": test_set.fingerprint()}
            if resume and settings.data and settings.data != data:
                which = " and ".join(k for k in ("train", "test") if settings.data.get(k) != data[k])
                raise RunError(f"--resume {out_dir}: the {which} data differ from the run's (fingerprint "
                               f"{settings.data[which.split()[0]][:12]}..., this one {data[which.split()[0]][:12]}... "
                               f"from {(train_set if which.startswith('train') else test_set).source}); give the "
                               f"--data-dir (or data_path) the run was trained with")
            settings.data = data  # recorded with the next checkpoint (runs from before 7 Dec 2026 gain it here)
            if not resume:
                held.touching()
                folder = _start_run(out_dir, overwrite, net, opt, cfg, settings, state) if eng.writer \
                    else ReadOnlyFolder(out_dir)
        with folder:
            log(f"data: {cfg.network['dataset']} train {len(train_set.labels)} from {train_set.source}; "
                f"test {len(test_set.labels)}")
            if eng.name != "numpy":
                log(f"engine: {eng.describe(cfg, settings.batch_size, settings.net_options)}")
            else:
                log(f"BLAS: {describe_blas(blas_info())}")
            cbs = list(callbacks) if callbacks is not None else [ProgressBar(progress), Figures()]
            if diagnostics:
                from .diagnostics import DiagnosticsLog
                if diagnostics > len(train_set.labels):
                    log(f"note: --diagnostics {diagnostics} is more than the {len(train_set.labels)} training "
                        f"samples; each epoch's diagnostics measure all of them")
                cbs.append(DiagnosticsLog(net, train_set, diagnostics))
            first_epoch, wall0 = state.epoch, time.perf_counter()
            committed = _Committed(state.epoch)
            cbs.insert(0, committed)
            interrupted = _loop(eng, net, opt, cfg, settings, state, folder, train_set, test_set, cbs, log, fault_hook,
                                resumed=bool(resume))
            # the loop returns only with its state on disk (committed, or saved where it stopped, or no step
            # taken), so the state tells what the checkpoint holds (the except below must read it)
            kept = resume or not eng.writer or state.epoch > 0 or state.batch > 0
            if not kept:  # stopped before the new run's first step reached its checkpoint: nothing is kept
                with signals_held():  # whole, and once: undone again, the put-back run would be removed
                    folder.undo_start(getattr(folder, "created", False))
                    undone = True
                log(f"\ninterrupted before the first step: nothing of the new run was kept, and {out_dir} is as it "
                    f"was" + (" (the run it was to replace is back)" if overwrite else ""))
            else:
                folder.drop_replaced()  # the new run's checkpoint holds a step: the replaced one goes
            if eng.writer and kept:
                folder.log_session(session_record(
                    command, settings, first_epoch, state.epoch, time.perf_counter() - wall0, interrupted, resume))
    except BaseException as err:
        # kept or undone by what reached the disk: a step counted in memory only is not the new run's yet
        started = state is not None and (state.epoch > 0 or state.batch > 0) and (
            resume or folder is None or not eng or not eng.writer or folder.has_committed_step())
        if undone:
            pass  # a signal after the undo: the folder is as it was
        elif not resume and folder is not None and eng is not None and eng.writer and not started:
            with signals_held():  # failed at its first step: leave nothing, whole (a Ctrl-C waits for it)
                folder.undo_start(getattr(folder, "created", False))
        elif folder is not None:
            if started:
                folder.drop_replaced()  # the new run is resumable: the one it replaced goes
                if eng is not None and eng.writer and committed is not None:
                    _log_stopped_session(folder, command, settings, first_epoch, committed.epoch, wall0, resume)
                if isinstance(err, KeyboardInterrupt) and eng is not None and eng.writer:
                    log(f"\ninterrupted again: {_what_is_saved(folder)}; continue with --resume {folder.path}")
            folder.unlock()
        if eng is not None:  # leave a process group at once (the other processes stop with torchrun)
            eng.abort(net)
        raise
    eng.close(net)
    last = state.metrics[-1] if state.metrics else {}
    return {**last, "out_dir": out_dir, "checkpoint": folder.file(CHECKPOINT), "net": net,
            "test_set": test_set, "interrupted": interrupted, "writer": eng.writer, "kept": kept}


def _what_is_saved(folder) -> str:
    """Where the run's checkpoint on disk stands, for a session stopped by a second Ctrl-C (the state in
    memory may be a step ahead of it)."""
    try:
        p = folder.read_checkpoint()["progress"]
    except (RunError, OSError, KeyError):
        return "its checkpoint could not be read back"
    return f"the checkpoint holds epoch {p.epoch + 1}, batch {p.batch}" if p.batch else \
        f"the checkpoint holds {p.epoch} finished epoch{'s' if p.epoch != 1 else ''}"


#: Environment variables that decide a run's threads and BLAS kernel (so its bits), kept in ``run.log``.
RUN_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "MKL_NUM_THREADS")


class _Committed(Callback):
    """Counts the epochs committed in this session (the first callback, so a second Ctrl-C in a later
    callback cannot leave an epoch uncounted)."""

    def __init__(self, epoch: int):
        self.epoch = epoch

    def on_epoch_end(self, row, folder, labels, preds, config):
        self.epoch = row["epoch"]


def _log_stopped_session(folder, command, settings, first_epoch, last_epoch, wall0, resumed) -> None:
    """``run.log``'s line for a session stopped by a second Ctrl-C or an error after its first step: the
    epochs it committed are part of the run, so the settings they were trained with are kept as for any
    other session.  Never raises (the stop's own exception is what the caller reports)."""
    try:
        folder.log_session(session_record(command, settings, first_epoch, last_epoch,
                                          time.perf_counter() - wall0, True, resumed))
    except Exception:  # noqa: BLE001  (a full disk here must not hide why the run stopped)
        pass


def session_record(command: str | None, settings: Settings, first_epoch: int, last_epoch: int, seconds: float,
                   interrupted: bool, resumed: bool) -> dict:
    """One training session as ``run.log`` keeps it (one JSON line, :meth:`RunFolder.log_session`).

    ``epochs`` is ``[first, last]`` of the epochs this session finished (1-based; ``first > last`` when it
    finished none), ``seconds`` its wall time; ``processes`` (torchrun's), ``blas`` (library, version,
    kernel), ``threads`` (OpenBLAS's and Numba's) and ``env`` (:data:`RUN_ENV`, where set) are what a
    bit-for-bit rerun must match.
    """
    import platform

    import numba

    from .. import __version__

    if command is None:
        command = " ".join([os.path.basename(sys.executable)] + sys.argv)
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - seconds)),
            "command": command, "resumed": bool(resumed), "run_id": settings.run_id, "seed": settings.seed,
            "epochs": [first_epoch + 1, last_epoch], "interrupted": bool(interrupted),
            "seconds": round(seconds, 1), "engine": settings.engine, "processes": world_size(), "blas": blas_info(),
            "threads": {"openblas": openblas_threads(), "numba": numba.get_num_threads()},
            "env": {k: os.environ[k] for k in RUN_ENV if k in os.environ},
            "versions": {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__,
                         "tsslbp_reference": __version__}}


def _start_run(out_dir, overwrite, net, opt, cfg, settings, state) -> RunFolder:
    """Create and lock the folder, then write the first checkpoint (resumable from the first step on) and
    config.yaml.  Any failure or Ctrl-C before both are written undoes what this call made, so the folder
    is never left half started (a config.yaml without a checkpoint would refuse both a new run and --resume)."""
    created = not os.path.exists(out_dir)
    folder = RunFolder.create(out_dir, overwrite=overwrite)
    folder.created = created
    try:
        folder.checkpoint(net, opt, settings, state)
        folder.write_config(cfg)
    except BaseException:
        folder.undo_start(created)
        raise
    return folder


def _resume(folder: RunFolder, config, given: Settings, log, device=None):
    """Network, optimiser, config, settings, progress and engine of the run in ``folder``; refuses conflicts."""
    if folder.recovered == "restored":
        log(f"{folder.path}: an --overwrite was stopped before its new run finished a step; put back the run "
            f"it was to replace, and continuing that one")
    elif folder.recovered == "dropped":
        log(f"{folder.path}: deleted the run an interrupted --overwrite had replaced (its new run had committed "
            f"an epoch)")
    ck = folder.read_checkpoint()
    cfg, settings, state = ck["config"], ck["settings"], ck["progress"]
    folder.check_files_are_the_runs(settings, state)
    settings.run_id = settings.run_id or uuid.uuid4().hex  # a run from before run ids gains one
    on_disk = folder.read_config_file()
    if on_disk is not None and on_disk.raw != cfg.raw:
        raise RunError(f"{folder.file(CONFIG)} differs from the config inside the checkpoint: it was "
                       f"edited after the run started; restore it (the checkpoint's config is the run's) or start "
                       f"a new run")
    if config is not None:
        asked = config if isinstance(config, Config) else load_config(config)
        if asked.raw != cfg.raw:
            raise RunError(f"--config {asked.source} differs from the config of the run in {folder.path}; "
                           f"leave --config out to resume, or start a new run with another --out")
    conflicts = []
    for key, value in vars(given).items():
        if value is None or key in Settings.RESUMABLE:
            continue
        saved = getattr(settings, key)
        if key == "diagnostics" and saved is None:
            continue  # a run from before diagnostics were recorded takes the number given now
        if key == "net_options":
            diff = {k: v for k, v in value.items() if _saved_option(saved, k) != v}
            conflicts += [f"{k}={v!r} (the run has {_describe_option(saved, k)})" for k, v in diff.items()]
        elif saved != value:
            conflicts.append(f"{key}={value!r} (the run has {_UNSET.get(key, 'the default') if saved is None else repr(saved)})")
    if conflicts:
        raise RunError(f"--resume {folder.path}: these settings differ from the run's and cannot change: "
                       f"{'; '.join(conflicts)}. Leave them out to resume, or start a new run with another --out")
    trained_on = settings.engine or "numpy"
    for key in Settings.RESUMABLE:  # a resumed run may be given more epochs or time
        if getattr(given, key) is not None:
            setattr(settings, key, getattr(given, key))
    if settings.diagnostics is None:
        settings.diagnostics = given.diagnostics or 0
    eng = make_engine(settings.engine, device, settings.batch_size)
    net = eng.network(cfg, settings.seed, settings.net_options)
    try:
        net.set_weights(ck["weights"])
        opt = eng.optimiser(net, cfg.network["lr"])
        opt.load_state_dict(ck["adam"])
        net.rng.bit_generator.state = ck["rng"]
    except (ValueError, KeyError, TypeError) as err:
        raise RunError(f"{folder.file(CHECKPOINT)} does not fit its own config: {err}") from None
    folder.write_metrics(state.metrics)  # metrics.csv is derived from the checkpoint: repair a torn write
    if on_disk is None:  # config.yaml too (deleted by hand): the checkpoint holds the run's config
        folder.write_config(cfg)
        if eng.writer:
            log(f"{folder.file(CONFIG)} was missing; wrote it again from the checkpoint's config")
    if eng.writer and state.epoch < settings.epochs:  # a finished run says "nothing to do" in the loop
        log(f"resuming {folder.path} at epoch {state.epoch + 1}, batch {state.batch}")
        if state.best_epoch and not os.path.lexists(folder.file(BEST_WEIGHTS)):
            log(f"note: {folder.file(BEST_WEIGHTS)} is missing: the weights of the run's best epoch, "
                f"{state.best_epoch} (test accuracy {state.best_test_acc:.4f}), are gone; a later epoch that "
                f"beats it writes the file again")
        if trained_on != settings.engine:
            log(f"note: the run trained on the {trained_on} engine, this session on the {settings.engine} "
                f"engine; their float32 kernels round differently, so the resumed run is not bit for bit what one "
                f"engine would have made (--engine {trained_on} keeps it so)")
        else:
            changed = _bits_setting_changed(folder, eng.name)
            if changed:
                log(f"note: {changed}; float32 round-off then differs, so the resumed run is not bit for bit "
                    f"what one uninterrupted session would have made (set them as before to keep it so)")
    return net, opt, cfg, settings, state, eng


def _bits_setting_changed(folder, engine: str = "numpy") -> str | None:
    """What differs between this process and the run's last recorded session in what decides float32 bits
    (the number of training processes, which sum the gradient in another order; on the NumPy engine also
    OpenBLAS's kernel, its and Numba's thread counts; ``run.log``), or None (same, or not recorded)."""
    import json

    import numba

    try:
        with open(folder.file(RUN_LOG), encoding="utf-8") as fh:
            lines = [line for line in fh if line.strip()]
        last = json.loads(lines[-1]) if lines else {}
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    now = {"processes": world_size()}
    was = {"processes": last.get("processes")}  # (recorded since 8 Dec 2026)
    if engine == "numpy":
        now.update({"kernel": blas_info().get("core"), "OpenBLAS threads": openblas_threads(),
                    "Numba threads": numba.get_num_threads()})
        was.update({"kernel": (last.get("blas") or {}).get("core"),
                    "OpenBLAS threads": (last.get("threads") or {}).get("openblas"),
                    "Numba threads": (last.get("threads") or {}).get("numba")})
    diff = [f"{k} {now[k]} (the run's last session: {was[k]})" for k in now
            if was[k] is not None and now[k] is not None and was[k] != now[k]]
    return "this session runs with " + ", ".join(diff) if diff else None


#: What an unset (None) setting of a run means, for the messages of a refused resume.
_UNSET = {"train_limit": "all training samples", "test_limit": "all test samples", "max_seconds": "no time limit"}

#: Defaults of the Network options a run may set (a saved run lists only those it changed).
_OPTION_DEFAULTS = NetOptions.defaults()


def _saved_option(saved: dict, key: str):
    """A network option as the run has it: saved, else Network's default; a paper-era run saved without
    ``rate_threshold`` has the default switch, :data:`reference.paper2020.RATE_THRESHOLD_2020`, so resuming
    it with ``--rate-threshold 0.1`` is no conflict."""
    value = saved.get(key, _OPTION_DEFAULTS.get(key))
    if key == "rate_threshold" and saved.get("variant") == "paper2020":
        from ..paper2020 import check_rate_threshold
        value = check_rate_threshold(value)
    return value


def _describe_option(saved: dict, key: str) -> str:
    """A run's network option for a message: its value, or for an unset one (None, "the variant's") the
    value the run's variant gives it (a refusal said "the run has None")."""
    value = _saved_option(saved, key)
    if value is not None:
        return repr(value)
    variant = saved.get("variant", _OPTION_DEFAULTS.get("variant"))
    if key == "target_filter":
        return f"the {variant} rule's target filter, {'single' if variant == 'paper2020' else 'double'!r}"
    return f"the {variant} rule's default"


#: Tags the random stream of the data augmentation (seeded per run, epoch and batch).
AUGMENT_STREAM = 1


def _loop(engine, net, opt, cfg, settings: Settings, state: Progress, folder: RunFolder, train_set: Split,
          test_set: Split, callbacks: list, log, fault_hook, resumed: bool = False) -> bool:
    """The epochs; returns True when stopped by a signal (a checkpoint was saved, unless no step was taken:
    the checkpoint on disk then already holds this state; a new run stopped so is undone by the caller).

    Every decision to stop goes through ``engine.any``, so that several processes stop at the same step."""
    n_train = len(train_set.labels)
    # how each epoch's test accuracy is measured, kept with the weights for evaluate to check against
    record = {"test_samples": len(test_set.labels), "engine": engine.name}
    if engine.name == "numpy":
        record["blas"] = blas_info()
    if state.epoch >= settings.epochs:
        log(f"nothing to do: the run has finished {state.epoch} epochs (ask for more with --epochs N)")
        redo = [cb for cb in callbacks if state.metrics and getattr(cb, "missing", lambda f: False)(folder)]
        if engine.any(bool(redo)):  # (every process evaluates its share; only rank 0 has callbacks)
            log("the run's last session ended before its last epoch's outputs were written ("
                + ", ".join(type(cb).__name__ for cb in redo) + "); writing them from the checkpoint's weights")
            _, _, preds = engine.evaluate(net, test_set)  # the checkpoint's weights are the last epoch's
            for cb in redo:  # (written by on_stop, below, as at the end of every session)
                cb.on_epoch_end(state.metrics[-1], folder, test_set.labels, preds, cfg)
    start = (state.epoch, state.batch)
    with StopSignal() as stop:
        try:
            while state.epoch < settings.epochs:
                epoch = state.epoch
                rng = np.random.default_rng([settings.seed, epoch])
                order = list(iterate_minibatches(n_train, settings.batch_size, rng))
                if state.batch > len(order):  # only a hand-edited or corrupt checkpoint gets here
                    raise CheckpointError(f"{folder.file(CHECKPOINT)}: progress.batch is {state.batch}, but an "
                                          f"epoch of this run has {len(order)} batches")
                for cb in callbacks:
                    cb.on_epoch_start(epoch, settings.epochs, len(order), state)
                while state.batch < len(order) and not engine.any(stop.requested):
                    step = epoch * len(order) + state.batch
                    hook = (lambda point, step=step: fault_hook(point, step)) if fault_hook else None
                    t0 = time.perf_counter()
                    idx = order[state.batch]
                    x, y = train_set.images[idx], train_set.labels[idx]
                    if train_set.augment is not None:  # drawn per batch: a resumed run draws the same
                        x = train_set.augment(x, np.random.default_rng([settings.seed, epoch, state.batch, AUGMENT_STREAM]))
                    loss, out, _ = engine.train_step(net, x, y, opt, hook=hook)
                    state.loss_sum += net.loss_sum(loss, len(idx))
                    state.correct += int(np.sum(net.predict(out) == y))
                    state.seen += len(idx)
                    state.batch += 1
                    state.train_seconds += time.perf_counter() - t0
                    if hook:
                        hook("step_done")
                    for cb in callbacks:
                        cb.on_step(state)
                if state.batch < len(order):  # stopped inside the epoch: save where we are
                    if (epoch, state.batch) == start:  # no step this session: the checkpoint on disk is this state
                        if resumed:
                            log(f"\ninterrupted before the first step; the run is as it was: continue with "
                                f"--resume {folder.path}")
                        return True
                    folder.checkpoint(net, opt, settings, state)
                    log(f"\ninterrupted: checkpoint saved at epoch {epoch + 1}, batch {state.batch}; "
                        f"continue with --resume {folder.path}")
                    return True
                test_loss, test_acc, preds = engine.evaluate(net, test_set)
                seconds = state.train_seconds
                row = {"epoch": epoch + 1, "train_loss": state.loss_sum / state.seen,
                       "train_acc": state.correct / state.seen, "test_loss": test_loss, "test_acc": test_acc,
                       "seconds": seconds, "samples_per_s": state.seen / max(seconds, 1e-9)}
                is_best = state.finish_epoch(row)
                for cb in callbacks:
                    getattr(cb, "before_commit", lambda *a: None)(row, folder)
                folder.commit_epoch(net, opt, settings, state, is_best, record=record,
                                    hook=(lambda point, step=epoch: fault_hook(point, step)) if fault_hook else None)
                for cb in callbacks:
                    cb.on_epoch_end(row, folder, test_set.labels, preds, cfg)
                log(f"epoch {epoch + 1}: train loss {row['train_loss']:.4f} acc {row['train_acc']:.4f} | "
                    f"test acc {test_acc:.4f} | {seconds:.1f} s, {row['samples_per_s']:.0f} samples/s")
                if engine.any(stop.requested):
                    log(f"interrupted after epoch {epoch + 1} (saved); " + (
                        f"continue with --resume {folder.path}" if state.epoch < settings.epochs else
                        f"that was the run's last epoch: it has finished"))
                    return True
                if engine.any(settings.max_seconds and state.elapsed_total >= settings.max_seconds):
                    log(f"stopping after {state.elapsed_total:.0f} s of training (max_seconds)")
                    break
        finally:
            for cb in callbacks:
                cb.on_stop()
        if stop.requested:  # came after the last check: in the last epoch's outputs, or as the figures were drawn
            log(f"interrupted as the run ended: its {state.epoch} epochs are saved, and its figures drawn")
            return True
    return False
