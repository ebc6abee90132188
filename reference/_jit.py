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

import hashlib
import inspect
import os

try:
    import numba
except ImportError:  # a base requirement: say how to install it, once, instead of a chain of tracebacks
    raise ImportError("tsslbp-reference needs Numba for its kernels, which is not installed here: "
                      "pip install -r requirements.txt (or pip install numba)") from None
import numpy as np

#: True when ``NUMBA_DISABLE_JIT=1`` — kernels then run as plain Python.
JIT_DISABLED = bool(int(os.environ.get("NUMBA_DISABLE_JIT", "0") or "0"))


def kernel(fn=None, *, parallel: bool = False):
    """Compile ``fn`` with ``numba.njit(cache=True)`` (``parallel`` only where measured to pay)."""

    def wrap(f):
        return numba.njit(f, cache=True, parallel=parallel, fastmath=False, nogil=True, error_model="numpy")

    return wrap(fn) if fn is not None else wrap


prange = numba.prange


def step(fn):
    """Make ``fn`` one equation's step (:mod:`reference.steps`): inlined into every kernel that calls it.

    Called from Python (the ``_py`` twins, a learner's debugger, ``NUMBA_DISABLE_JIT=1``) it is the plain
    function itself, so NumPy float32 scalars stay float32.  Inside a compiled kernel a Numba overload
    with ``inline="always"`` puts its body into the kernel's own code before compilation, where LLVM
    vectorises the loop around it as if the arithmetic were written there (the kernels' instruction counts
    are unchanged, ``benchmarks/``), and the kernel's ``error_model`` and ``fastmath`` apply to it.
    """
    if JIT_DISABLED:
        return fn
    from numba.extending import overload

    args = ", ".join(inspect.signature(fn).parameters)
    scope = {"impl": fn}
    exec(f"def typer({args}):\n    return impl\n", scope)  # the typer must take the step's own arguments
    overload(fn, inline="always")(scope["typer"])
    return fn


def _stamp_of_steps() -> str:
    """SHA-256 of the files whose code every kernel inlines (this one and ``steps.py``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    h = hashlib.sha256()
    for name in ("_jit.py", "steps.py"):
        try:
            with open(os.path.join(here, name), "rb") as fh:
                h.update(fh.read())
        except OSError:
            h.update(name.encode())
    return h.hexdigest()


#: What the cached machine code of this package's kernels depends on besides their own source file.
STEPS_STAMP = _stamp_of_steps()


def _install_cache_locator() -> bool:
    """Make Numba's cache of this package's kernels stale when ``steps.py`` changes.

    Numba keys a cached kernel on its own source file's time stamp and size only; a kernel that inlines
    a step from ``steps.py`` would keep its old machine code after an edit of ``steps.py`` (a learner's
    experiment would silently not run).  The locator put first here wraps Numba's own choice of cache
    folder for files of this package and adds :data:`STEPS_STAMP` to the stamp.  It uses Numba's
    ``CacheImpl._locator_classes``; where a Numba version lacks it, returns False (the cache then
    behaves as Numba's default, and ``tests/test_steps.py`` says so).
    """
    try:
        from numba.core import caching
        base = caching._CacheLocator
        impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl  # named _CacheImpl before Numba 0.58
        standard = list(impl._locator_classes)
    except (ImportError, AttributeError):
        return False
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep

    class StepsAwareLocator(base):
        def __init__(self, inner):
            self._inner = inner

        def ensure_cache_path(self):
            return self._inner.ensure_cache_path()

        def get_cache_path(self):
            return self._inner.get_cache_path()

        def get_source_stamp(self):
            return (self._inner.get_source_stamp(), STEPS_STAMP)

        def get_disambiguator(self):
            return self._inner.get_disambiguator()

        @classmethod
        def from_function(cls, py_func, py_file):
            if not os.path.abspath(py_file).startswith(package):
                return None
            for other in standard:
                inner = other.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner)
            return None

    if not any(getattr(c, "__name__", "") == "StepsAwareLocator" for c in impl._locator_classes):
        impl._locator_classes.insert(0, StepsAwareLocator)
    return True


#: Whether kernels' cached code is keyed on ``steps.py`` too (see :func:`_install_cache_locator`).
CACHE_KNOWS_STEPS = _install_cache_locator()


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
