"""tsslbp-reference: TSSL-BP (Zhang & Li, NeurIPS 2020) in NumPy and Numba, written to be read.

Names.  The code uses the names of the paper's equations (``u``, ``du``, ``s``, ``a``, ``G``, ``delta``,
``c``); the table of the authors' variables they stand for, with the sign convention of each, is in
``docs/paper-notes.md`` section 6.

Where to start: ``reference.neuron`` (forward), ``reference.tsslbp`` (the backward, one function per
dependency type), ``reference.network.Network``, and the lessons in ``tutorials/``.

Threading.  NumPy's OpenBLAS and Numba's OpenMP pools share the cores; by default both spin-wait after
their work, and on a 2-core machine each then steals the other's cores (we measured Numba kernels 2-3x
slower right after a GEMM).  Unless you set them yourself, importing this package before NumPy sets
``OMP_WAIT_POLICY=PASSIVE`` and ``OPENBLAS_THREAD_TIMEOUT=4`` (shortest spin), which brought the MNIST
CNN training step from 5.3x to 3.6x its GEMM floor here (``benchmarks/train_step.py``).  They only change
speed, never results.
"""
import os as _os
import sys as _sys

_HELD = None  # the signals held since the program started (:func:`_hold_signals`), or None


def _hold_signals() -> list:
    """Hold Ctrl-C and SIGTERM from now on with a handler that records them, and return the record (a
    list of signal numbers).  The program, :func:`reference.__main__.run`, acts on it once its modules
    have loaded; a signal raised in the middle of an import gave a traceback."""
    global _HELD
    if _HELD is None:
        import _signal  # the C module (importing ``signal`` builds its enums: a window of its own)

        _HELD = []
        for sig in (_signal.SIGINT, _signal.SIGTERM):
            _signal.signal(sig, lambda signum, frame: _HELD.append(signum))
    return _HELD


def _is_the_program() -> bool:
    """Whether this process is the program, ``python -m reference ...`` or the ``tsslbp`` script (and
    not a Python session or a script that imports the package)."""
    argv = getattr(_sys, "orig_argv", [])
    if "-m" in argv:
        return argv[argv.index("-m") + 1:argv.index("-m") + 2] == ["reference"] and _sys.argv[:1] == ["-m"]
    return len(argv) > 1 and _os.path.basename(argv[1]) == "tsslbp"


if _is_the_program():  # first: a signal while this package loads is held too
    _hold_signals()

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"

from . import _moved

_moved.install()  # ``import reference.train`` and the other old names still work, with a warning
