"""Train on fixture digits with the torch engine, as one process of ``torchrun`` or alone.

    torchrun --standalone --nproc_per_node 2 tests/torch_engine_worker.py OUT CONFIG.json N_TRAIN BATCH [EPOCHS [RESUME]]

Used by tests/test_torch_engine.py to compare a distributed run with a single process (the CLI's own
data loading would need the full dataset; this feeds the fixture through ``train(splits=...)``).
Each process also writes ``OUT/norms_rank<R>.json`` (``_resumed`` when RESUME is 1): its steps' gradient
norms before clipping.  ``TSSLBP_TEST_STOP_AT=R:K`` sends SIGTERM to process R alone after its step K.

    torchrun --standalone --nproc_per_node 2 tests/torch_engine_worker.py step OUT CONFIG.json BATCH

runs one step on a batch half digits, half black images and writes each process's gradients (:func:`one_step`).
The config is a JSON file: ``{"config": {...authors' schema...}, "net_options": {...}}``.
"""
import json
import os
import signal
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conftest import load_mnist  # noqa: E402

from reference.engines import torch_engine as engine_mod  # noqa: E402
from reference.app.train import Split, train  # noqa: E402

NORMS = []  # the gradient norm of every step before clipping: the whole batch's gradient, on every process


def _recording_step(*args, **kwargs):
    loss, out, norm = _original_step(*args, **kwargs)
    NORMS.append(norm)
    stop = os.environ.get("TSSLBP_TEST_STOP_AT")  # "rank:step": that process alone gets SIGTERM after that step
    if stop and stop == f"{os.environ.get('RANK', '0')}:{len(NORMS)}":
        os.kill(os.getpid(), signal.SIGTERM)
    return loss, out, norm


_original_step = engine_mod.TorchEngine.train_step
engine_mod.TorchEngine.train_step = staticmethod(_recording_step)


def main(out, spec_path, n_train, batch, epochs=1, resume=0):
    with open(spec_path) as fh:
        spec = json.load(fh)
    x, y = load_mnist(int(n_train), "train", np.float32)
    xt, yt = load_mnist(31, "test", np.float32)  # odd: the processes' evaluation shares differ
    splits = (Split(x, y, "fixture"), Split(xt, yt, "fixture"))
    common = dict(out_dir=out, epochs=int(epochs), splits=splits, progress=False, callbacks=[], engine="torch",
                  log=lambda *a: None)
    if int(resume):
        result = train(None, resume=True, **common)
    else:
        result = train(spec["config"], batch_size=int(batch), seed=spec.get("seed", 0),
                       net_options=spec.get("net_options"), **common)
    name = f"norms_rank{os.environ.get('RANK', '0')}{'_resumed' if int(resume) else ''}.json"
    with open(os.path.join(out, name), "w") as fh:
        json.dump(NORMS, fh)
    return 3 if result["interrupted"] else 0


def one_step(out, spec_path, batch):
    """One train_step on a fixed global batch: the first half fixture digits, the second half black images
    (no spikes), so that a process's share and the whole batch fire at very different rates.  Writes the
    gradients before clipping to ``OUT/grads_rank<R>.npz``."""
    from reference.engines.torch_engine import TorchEngine

    with open(spec_path) as fh:
        spec = json.load(fh)
    n = int(batch)
    x, y = load_mnist(n, "train", np.float32)
    x[n // 2:] = x.min()  # black: the normalised value of a zero pixel
    eng = TorchEngine.from_env("cpu")
    net = eng.network(spec["config"], 0, spec.get("net_options") or {})
    opt = eng.optimiser(net, 0.0005)
    grads = {}
    hook = lambda point: point == "gradients" and grads.update(  # noqa: E731
        {k: p.grad.numpy().copy() for k, p in zip(opt.names, opt.params)})
    _original_step(net, x, y, opt, hook=hook)
    os.makedirs(out, exist_ok=True)
    np.savez(os.path.join(out, f"grads_rank{os.environ.get('RANK', '0')}.npz"), **grads)
    eng.close(net)
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "step":
        sys.exit(one_step(*sys.argv[2:]))
    sys.exit(main(*sys.argv[1:]))
