"""Training and evaluation on real data: the authors' loop, with checkpoints that resume bit for bit.

One epoch: shuffle the training set (the order is drawn from ``default_rng([seed, epoch])``, so it
needs no saved state), then for each mini-batch the authors' step (:func:`reference.optim.train_step`),
then the test set.  After every epoch a row is appended to ``DIR/metrics.csv``, the learning curve and
confusion matrix are redrawn, and ``DIR/checkpoint.npz`` is written atomically (temporary file, then
``os.replace``) with the weights, AdamW state, the network's generator state (dropout), the position in
the epoch and its running sums, and the config.  ``--resume DIR`` continues from it exactly as if the run
had never stopped; Ctrl-C saves a checkpoint at the current mini-batch and exits cleanly.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass

import numpy as np
import yaml

from . import plots
from .config import load_config
from .data import iterate_minibatches, load_dataset, normalise
from .network import Network
from .optim import AdamW, train_step

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "samples_per_s"]


@dataclass
class Split:
    """A normalised dataset split: images float32 (N, C, H, W), labels int64 (N,), and its source."""

    images: np.ndarray
    labels: np.ndarray
    source: str


def load_split(name: str, split: str, limit: int | None = None, data_dir=None, cache_dir=None, verbose=True) -> Split:
    """Load a real dataset split through :mod:`reference.data` and normalise it as the authors do."""
    ds = load_dataset(name, split, data_dir=data_dir, cache_dir=cache_dir, verbose=verbose)
    images, labels = ds.images, ds.labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return Split(normalise(images, name), labels.astype(np.int64), ds.source)


def evaluate(net: Network, split: Split, batch_size: int = 200, progress: bool = False):
    """Loss (summed over samples, the config's loss) and accuracy of ``net`` on a split.

    Returns ``(mean loss per sample, accuracy in [0, 1], predictions (N,))``.
    """
    preds = np.empty(len(split.labels), dtype=np.int64)
    total = 0.0
    idx = range(0, len(split.labels), batch_size)
    if progress:
        from tqdm.auto import tqdm
        idx = tqdm(idx, desc="evaluate", unit="batch", leave=False)
    for i in idx:
        x, y = split.images[i:i + batch_size], split.labels[i:i + batch_size]
        out = net.forward(x, train=False)
        loss, _ = net.loss(out, y)
        total += loss * (len(y) if net.loss_name == "softmax" else 1)
        preds[i:i + len(y)] = net.predict(out)
    return total / max(len(split.labels), 1), float(np.mean(preds == split.labels)), preds


# ----------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(path, net: Network, opt: AdamW, state: dict) -> None:
    """Write weights, optimiser state, RNG state, progress and config to ``path`` atomically (.npz)."""
    arrays = {f"weight/{k}": v for k, v in net.weights.items()}
    opt_state = opt.state_dict()
    arrays.update({f"adam_m/{k}": v for k, v in opt_state["m"].items()})
    arrays.update({f"adam_v/{k}": v for k, v in opt_state["v"].items()})
    meta = {**state, "adam_step": opt_state["step"], "rng": net.rng.bit_generator.state}
    arrays["meta_json"] = np.array(json.dumps(meta, default=_json_default))
    arrays["config_yaml"] = np.array(yaml.safe_dump(net.config.raw, sort_keys=False))
    tmp = f"{path}.tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def save_weights(path, net: Network, extra: dict | None = None) -> None:
    """Write only the weights (authors' layouts, one array per layer name) and the config, atomically."""
    arrays = {k: v for k, v in net.weights.items()}
    arrays["config_yaml"] = np.array(yaml.safe_dump(net.config.raw, sort_keys=False))
    arrays["meta_json"] = np.array(json.dumps(extra or {}, default=_json_default))
    tmp = f"{path}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_checkpoint(path) -> dict:
    """Read a checkpoint or weights file: dict with 'config' (Config), 'weights', 'meta' and, for
    checkpoints, 'adam' ({'step', 'm', 'v'})."""
    try:
        data = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"checkpoint not found: {path}") from None
    except (ValueError, OSError) as err:
        raise ValueError(f"{path}: not a readable .npz checkpoint ({err})") from None
    with data:
        keys = list(data.keys())
        if "config_yaml" not in keys:
            raise ValueError(f"{path}: no 'config_yaml' entry; was it written by this project's train command?")
        config = load_config(yaml.safe_load(io.StringIO(str(data["config_yaml"]))))
        meta = json.loads(str(data["meta_json"])) if "meta_json" in keys else {}
        if any(k.startswith("weight/") for k in keys):
            weights = {k[7:]: data[k] for k in keys if k.startswith("weight/")}
            adam = {"step": meta.get("adam_step", 0),
                    "m": {k[7:]: data[k] for k in keys if k.startswith("adam_m/")},
                    "v": {k[7:]: data[k] for k in keys if k.startswith("adam_v/")}}
        else:
            weights = {k: data[k] for k in keys if k not in ("config_yaml", "meta_json")}
            adam = None
    return {"config": config, "weights": weights, "meta": meta, "adam": adam}


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


def read_metrics(path) -> dict:
    """metrics.csv as a dict of columns (floats)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {k: [float(r[k]) for r in rows] for k in (rows[0].keys() if rows else METRIC_COLUMNS)}


# ------------------------------------------------------------------------------------------------ train
def train(config, *, out_dir: str, epochs: int | None = None, batch_size: int | None = None, seed: int = 0,
          resume: bool = False, data_dir=None, cache_dir=None, train_limit: int | None = None,
          test_limit: int | None = None, progress: bool = True, max_seconds: float | None = None,
          net_options: dict | None = None, log=print, splits: tuple | None = None,
          stop_after_batches: int | None = None) -> dict:
    """Train a network from a config on its real dataset; see the module docstring for what is written.

    Parameters
    ----------
    config : path or dict in the authors' schema (ignored with ``resume``: the checkpoint's config is used)
    out_dir : folder for metrics.csv, checkpoint.npz, weights.npz and the PNGs
    epochs, batch_size : override the config's ``epochs`` / ``batch_size``
    seed : seeds weight initialisation, dropout and the data order
    resume : continue from ``out_dir/checkpoint.npz``
    train_limit, test_limit : use only the first samples of each split (quick runs, demos)
    max_seconds : stop after the epoch during which this much training time has passed
    net_options : extra :class:`~reference.network.Network` keyword arguments (e.g. ``warmup="never"``)
    splits : (train Split, test Split), optional; given, no dataset is loaded (tests, custom data)
    stop_after_batches : raise KeyboardInterrupt after this many mini-batches of this call (tests the
        Ctrl-C path: a checkpoint is saved mid-epoch and the call re-raises)

    Returns
    -------
    dict with the last epoch's metrics and the paths written.
    """
    os.makedirs(out_dir, exist_ok=True)
    ckpt_path = os.path.join(out_dir, "checkpoint.npz")
    metrics_path = os.path.join(out_dir, "metrics.csv")
    state = {"epoch": 0, "batch": 0, "loss_sum": 0.0, "correct": 0, "seen": 0, "train_seconds": 0.0,
             "best_test_acc": -1.0, "best_epoch": 0, "elapsed_total": 0.0,
             "seed": seed, "epochs": epochs, "batch_size": batch_size, "train_limit": train_limit,
             "test_limit": test_limit, "net_options": net_options or {}, "max_seconds": max_seconds}
    if resume:
        if not os.path.exists(ckpt_path):
            raise FileNotFoundError(f"--resume: no checkpoint at {ckpt_path}")
        ck = load_checkpoint(ckpt_path)
        saved = ck["meta"]
        state.update({k: saved[k] for k in state if k in saved})
        for key, value in (("epochs", epochs), ("max_seconds", max_seconds)):
            if value is not None:
                state[key] = value  # a resumed run may be given more epochs or time
        cfg = ck["config"]
        net = Network(cfg, seed=state["seed"], **state["net_options"])
        net.set_weights(ck["weights"])
        net.rng.bit_generator.state = saved["rng"]
        opt = AdamW(net.weights, lr=cfg.network["lr"])
        opt.load_state_dict(ck["adam"])
        log(f"resuming {out_dir} at epoch {state['epoch'] + 1}, batch {state['batch']}")
    else:
        cfg = load_config(config) if not hasattr(config, "layers") else config
        net = Network(cfg, seed=seed, **state["net_options"])
        opt = AdamW(net.weights, lr=cfg.network["lr"])
        with open(metrics_path, "w", newline="") as fh:
            csv.writer(fh).writerow(METRIC_COLUMNS)
        with open(os.path.join(out_dir, "config.yaml"), "w") as fh:
            yaml.safe_dump(cfg.raw, fh, sort_keys=False)
    n_epochs = state["epochs"] or cfg.network["epochs"]
    bs = state["batch_size"] or cfg.network["batch_size"]
    name = cfg.network["dataset"]
    if splits is not None:
        train_set, test_set = splits
    else:
        train_set = load_split(name, "train", state["train_limit"], data_dir, cache_dir, verbose=progress)
        test_set = load_split(name, "test", state["test_limit"], data_dir, cache_dir, verbose=progress)
    log(f"data: {name} train {len(train_set.labels)} from {train_set.source}; test {len(test_set.labels)}")

    from tqdm.auto import tqdm

    last = {}
    t_epoch = time.perf_counter()
    try:
        while state["epoch"] < n_epochs:
            epoch = state["epoch"]
            order = list(iterate_minibatches(len(train_set.labels), bs, np.random.default_rng([state["seed"], epoch])))
            bar = tqdm(total=len(order), initial=state["batch"], desc=f"epoch {epoch + 1}/{n_epochs}",
                       unit="batch", disable=not progress, leave=True, mininterval=0.5)
            t_epoch = time.perf_counter()
            while state["batch"] < len(order):
                if stop_after_batches is not None:
                    if stop_after_batches == 0:
                        raise KeyboardInterrupt
                    stop_after_batches -= 1
                idx = order[state["batch"]]
                loss, out, _ = train_step(net, train_set.images[idx], train_set.labels[idx], opt)
                state["loss_sum"] += loss
                state["correct"] += int(np.sum(net.predict(out) == train_set.labels[idx]))
                state["seen"] += len(idx)
                state["batch"] += 1
                elapsed = state["train_seconds"] + time.perf_counter() - t_epoch
                bar.set_postfix(loss=f"{state['loss_sum'] / state['seen']:.3f}",
                                acc=f"{state['correct'] / state['seen']:.3f}",
                                samples_s=f"{state['seen'] / max(elapsed, 1e-9):.0f}", refresh=False)
                bar.update(1)
            bar.close()
            seconds = state["train_seconds"] + time.perf_counter() - t_epoch
            test_loss, test_acc, preds = evaluate(net, test_set)
            last = {"epoch": epoch + 1, "train_loss": state["loss_sum"] / state["seen"],
                    "train_acc": state["correct"] / state["seen"], "test_loss": test_loss, "test_acc": test_acc,
                    "seconds": seconds, "samples_per_s": state["seen"] / seconds}
            with open(metrics_path, "a", newline="") as fh:
                csv.writer(fh).writerow([f"{last[k]:.6g}" if k != "epoch" else last[k] for k in METRIC_COLUMNS])
            log(f"epoch {epoch + 1}: train loss {last['train_loss']:.4f} acc {last['train_acc']:.4f} | "
                f"test acc {test_acc:.4f} | {seconds:.1f} s, {last['samples_per_s']:.0f} samples/s")
            state.update(epoch=epoch + 1, batch=0, loss_sum=0.0, correct=0, seen=0, train_seconds=0.0)
            state["elapsed_total"] += seconds
            save_weights(os.path.join(out_dir, "weights.npz"), net, {"epoch": epoch + 1, "test_acc": test_acc})
            if test_acc > state.get("best_test_acc", -1.0):  # the paper reports the best epoch: keep its weights
                state["best_test_acc"], state["best_epoch"] = test_acc, epoch + 1
                save_weights(os.path.join(out_dir, "best_weights.npz"), net, {"epoch": epoch + 1, "test_acc": test_acc})
            save_checkpoint(ckpt_path, net, opt, state)
            _draw(out_dir, metrics_path, test_set.labels, preds, cfg)
            if state["max_seconds"] and state["elapsed_total"] >= state["max_seconds"]:
                log(f"stopping after {state['elapsed_total']:.0f} s of training (max_seconds)")
                break
    except KeyboardInterrupt:
        state["train_seconds"] += time.perf_counter() - t_epoch
        save_checkpoint(ckpt_path, net, opt, state)
        log(f"\ninterrupted: checkpoint saved at epoch {state['epoch'] + 1}, batch {state['batch']}; "
            f"continue with --resume {out_dir}")
        raise
    return {**last, "out_dir": out_dir, "checkpoint": ckpt_path, "net": net, "test_set": test_set}


def _draw(out_dir, metrics_path, labels, preds, cfg) -> None:
    metrics = read_metrics(metrics_path)
    ax = plots.learning_curve(metrics, title=f"{cfg.network['dataset']}: accuracy per epoch")
    plots.save(ax, os.path.join(out_dir, "learning_curve.png"))
    ax = plots.confusion_matrix(labels, preds, cfg.network["n_class"], title="test set, last epoch")
    plots.save(ax, os.path.join(out_dir, "confusion_matrix.png"))
