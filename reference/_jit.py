"""How the project compiles its kernels with Numba, in one place.

Kernels are plain Python functions compiled at import with ``numba.njit(fn, cache=True)``; the plain
function stays importable as ``<name>_py`` for reading and for the tests.  With ``NUMBA_DISABLE_JIT=1``
Numba hands back the plain function itself, so the very same code runs as Python and a debugger can step
through it.

Division follows IEEE rules as in NumPy and PyTorch (``error_model="numpy"``): ``1/0`` is ``inf``, which
the TSSL-BP clamp maps to 8 exactly like the authors' ``clamp(-1/du, -8, 0)``.  Numba's default
("python") model checks every float division to raise ``ZeroDivisionError``; that check also stopped LLVM
from vectorising the loops (measured: the warm-up loop of the backward ran 7x slower).

``fastmath`` stays off everywhere: it would let LLVM reorder sums and fuse multiply-adds, and the forward
pass must take the same float32 spike decisions as the authors' PyTorch code (``u > threshold`` is
sensitive to the last bit).
"""
from __future__ import annotations

import os

import numba
import numpy as np

#: True when ``NUMBA_DISABLE_JIT=1``: kernels then run as plain Python.
JIT_DISABLED = bool(int(os.environ.get("NUMBA_DISABLE_JIT", "0") or "0"))


def kernel(fn=None, *, parallel: bool = False):
    """Compile ``fn`` with ``numba.njit(cache=True)`` (``parallel`` only where measured to pay)."""

    def wrap(f):
        return numba.njit(f, cache=True, parallel=parallel, fastmath=False, nogil=True, error_model="numpy")

    return wrap(fn) if fn is not None else wrap


prange = numba.prange


def as_scalar(value, dtype) -> np.generic:
    """``value`` as a NumPy scalar of ``dtype``, so that kernels compute in that precision.

    Numba promotes ``float32 * float64`` to float64; passing every constant in the arrays' dtype keeps
    float32 arithmetic in float32, as PyTorch does with a Python scalar and a float32 tensor.
    """
    return np.dtype(dtype).type(value)


def n_chunks(n_items: int) -> int:
    """Number of independent chunks a parallel loop over ``n_items`` neurons is cut into.

    Kernels take it as an argument (a kernel that asked Numba for the thread count could not be cached).
    Each chunk owns its neurons (and so its own carried state), so results never depend on thread
    scheduling; chunks of at least 4096 neurons keep the threading overhead small.
    """
    threads = 1 if JIT_DISABLED else numba.get_num_threads()
    return int(max(1, min(threads * 4, n_items // 4096)))
