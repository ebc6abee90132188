"""The training engines, behind one interface: what :func:`reference.app.train.train` asks of an engine.

- :class:`.numpy_engine.NumpyEngine`: the reference, :class:`reference.network.Network` and
  :class:`reference.optim.AdamW` (NumPy and Numba), the default.
- :class:`.torch_engine.TorchEngine`: the same configs with the PyTorch twin's model, on a CPU or a GPU, in one
  or several processes (torchrun); imported only when asked for, so this package needs no PyTorch.

Both have the methods ``network(config, seed, options)``, ``optimiser(net, lr)``, ``train_step``,
``evaluate`` (:func:`.evaluation.evaluate`), ``any(flag)`` (whether any process says yes: all processes
stop together), ``first(fn)``, ``describe``, ``close``, ``abort`` and the attribute ``writer`` (whether this
process writes the run folder).  :func:`make_engine` checks a command's engine options before building one.
"""
from __future__ import annotations

import os

#: The engines :func:`make_engine` builds (``--engine``).
ENGINES = ("numpy", "torch")


class EngineError(Exception):
    """A run's engine cannot run as asked (torch missing, no CUDA, a batch that does not split over the
    processes, an option the engine does not have).  The message is one line for the user."""


def world_size() -> int:
    """The number of training processes torchrun started (``WORLD_SIZE``; 1 without torchrun)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        raise EngineError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a number") from None


def make_engine(name: str = "numpy", device: str | None = None, batch_size: int | None = None):
    """The engine called ``name`` ("numpy" or "torch"), on ``device`` (torch only: cpu, cuda, cuda:N).

    Several processes (torchrun's ``WORLD_SIZE`` > 1) need the torch engine and a ``batch_size`` that
    divides by their number; both are checked before any process group is joined, so a wrong command
    fails at once instead of waiting for the other processes.  Raises :class:`EngineError`.
    """
    world = world_size()
    if name == "numpy":
        if device not in (None, "cpu"):
            raise EngineError(f"--device {device}: the NumPy engine runs on the CPU; add --engine torch to train on {device}")
        if world > 1:
            raise EngineError(f"launched as {world} processes (WORLD_SIZE={world}): training over several "
                              f"processes needs --engine torch")
        from .numpy_engine import NumpyEngine

        return NumpyEngine()
    if name != "torch":
        raise EngineError(f"engine must be one of {ENGINES}, got {name!r}")
    if batch_size is not None and batch_size % world:
        raise EngineError(f"the batch size {batch_size} does not divide by the {world} processes: the config's "
                          f"batch_size is the global batch, split equally over the processes; give a multiple "
                          f"of {world} (--batch-size) or start another number of processes")
    from ..twins import require

    try:
        require("torch")
    except ImportError as err:
        raise EngineError(f"--engine torch: {err}") from None
    from .torch_engine import TorchEngine

    return TorchEngine.from_env(device)
