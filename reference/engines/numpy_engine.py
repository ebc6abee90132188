"""The reference training engine: :class:`~reference.network.Network` and :class:`~reference.optim.AdamW`."""
from __future__ import annotations

from ..network import Network
from ..optim import AdamW, train_step
from .evaluation import evaluate


class NumpyEngine:
    """The reference engine (NumPy and Numba, one process); the interface is described in :mod:`reference.engines`."""

    name = "numpy"
    writer = True

    def network(self, config, seed, options: dict) -> Network:
        return Network(config, seed=seed, **options)

    def optimiser(self, net: Network, lr: float) -> AdamW:
        return AdamW(net.weights, lr=lr)

    train_step = staticmethod(train_step)
    evaluate = staticmethod(evaluate)

    @staticmethod
    def any(flag) -> bool:
        return bool(flag)

    @staticmethod
    def describe(config=None, batch_size=None, options=None) -> str:
        return "NumPy/Numba"

    @staticmethod
    def close(net=None) -> None:
        """Nothing to release (the torch engine leaves its process group here)."""

    abort = close

    @staticmethod
    def first(fn):
        """``fn()`` (the torch engine runs it on rank 0 first, then on the other processes)."""
        return fn()
