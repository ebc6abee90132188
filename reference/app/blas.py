"""Which BLAS this process's NumPy calls, and which of its compute kernels: the one thing outside the
code and the weights that can move a test digit.

A forward pass multiplies float32 matrices (``W @ psp``); NumPy hands that to its BLAS, usually OpenBLAS.
OpenBLAS chooses a compute kernel for the CPU it finds (``Haswell`` for AVX2, ``SkylakeX`` for AVX-512,
``Zen`` ...), and kernels sum a dot product's terms in different orders, so their float32 results differ
in the last bits.  A membrane potential that lands within those bits of the threshold then spikes under
one kernel and not under another, and once in a few thousand images that changes a prediction: the same
weights read 0.8913 on one machine and 0.8914 on another.  The environment variable
``OPENBLAS_CORETYPE=<kernel>`` (read once, when NumPy loads OpenBLAS) picks the kernel, which makes a
recorded accuracy reproducible to the digit on any x86-64 CPU that can run that kernel.

``train`` records :func:`blas_info` in every weights file it writes; ``evaluate`` compares it with its
own when the accuracy it measures differs from the recorded one (:func:`describe`).
"""
from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

#: Symbol names of OpenBLAS's ``get_corename`` in the builds NumPy ships with or links to — the
#: ``scipy-openblas`` wheels (64-bit and 32-bit integer interface), then plain and 64-bit OpenBLAS.
_CORENAME_SYMBOLS = ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename",
                     "openblas_get_corename", "openblas_get_corename64_")


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries this process has loaded (Linux), else those NumPy's wheel ships."""
    paths = []
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:  # address perms offset dev inode [path]
                fields = line.split(maxsplit=5)
                path = fields[5].strip() if len(fields) == 6 else ""
                if "openblas" in os.path.basename(path).lower() and path not in paths:
                    paths.append(path)
    except OSError:  # not Linux
        pass
    if not paths:
        root = os.path.dirname(np.__path__[0])
        paths = sorted(glob.glob(os.path.join(root, "numpy.libs", "*openblas*"))
                       + glob.glob(os.path.join(np.__path__[0], ".dylibs", "*openblas*")))
    return paths


def _corename() -> str | None:
    """The compute kernel OpenBLAS chose in this process (``'Haswell'``, ``'SkylakeX'``, ...), or None."""
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)  # already loaded by NumPy: the same library, the same choice
        except OSError:
            continue
        for name in _CORENAME_SYMBOLS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                core = fn()
                return core.decode() if core else None
    return None


#: OpenBLAS's thread-count query, under the same names as :data:`_CORENAME_SYMBOLS`.
_THREADS_SYMBOLS = tuple(name.replace("corename", "num_threads") for name in _CORENAME_SYMBOLS)


def openblas_threads() -> int | None:
    """How many threads OpenBLAS uses in this process (``OPENBLAS_NUM_THREADS``, else the cores), or None
    for another BLAS.  It changes the round-off of a training run's backward (results/README.md)."""
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _THREADS_SYMBOLS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_int
                return int(fn())
    return None


def blas_info() -> dict:
    """NumPy's BLAS in this process: ``{'numpy', 'blas', 'version', 'core', 'threads'}``.

    ``blas`` and ``version`` come from NumPy's build record (``numpy.show_config``); ``core`` is the
    compute kernel OpenBLAS picked at run time and ``threads`` its thread count (:func:`openblas_threads`;
    both None for another BLAS, or where they cannot be asked).  The kernel and the thread count change
    the round-off of float32 products, so weights files record both.  (Numba's thread count does not:
    kernels split their neurons into chunks that each own their state, see ``reference._jit.n_chunks``.)
    """
    info = {"numpy": np.__version__, "blas": None, "version": None, "core": None, "threads": None}
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["blas"], info["version"] = blas.get("name"), blas.get("version")
    except Exception:  # older NumPy: no dict mode
        pass
    if info["blas"] is None or "openblas" in str(info["blas"]).lower():
        info["core"] = _corename()
        info["threads"] = openblas_threads()
    return info


def describe(info: dict | None) -> str:
    """One phrase for a :func:`blas_info` record, e.g. ``'scipy-openblas 0.3.31 (kernel Haswell)'``."""
    if not info:
        return "an unrecorded BLAS"
    name = " ".join(str(v) for v in (info.get("blas"), info.get("version")) if v) or "an unknown BLAS"
    details = [f"kernel {info['core']}"] if info.get("core") else []
    details += [f"{info['threads']} thread{'s' if info['threads'] != 1 else ''}"] if info.get("threads") else []
    return name + (f" ({', '.join(details)})" if details else "")


def recorded_accuracy_note(meta: dict, accuracy: float, samples: int) -> str:
    """What ``evaluate`` says about a weights file's recorded accuracy.

    Parameters
    ----------
    meta : the weights file's metadata; ``train`` records ``epoch``, ``test_acc``, ``test_samples``,
        ``engine`` and ``blas`` (:func:`blas_info`) there
    accuracy : the accuracy just measured, in [0, 1], on ``samples`` test images
    samples : the number of test images it was measured on

    Returns
    -------
    str
        One line: why it was not compared (the file records no accuracy, or not on how many images, or
        those were other images, ``--limit``), or that the number is reproduced, or how many images differ
        and, when the two BLAS kernels differ, the ``OPENBLAS_CORETYPE`` that picks the recorded one.
    """
    recorded, n = meta.get("test_acc"), meta.get("test_samples")
    if recorded is None:
        return "not compared with a recorded accuracy: the file records none (plain weights, e.g. import-checkpoint's)"
    where = f"the accuracy train recorded for epoch {meta.get('epoch', '?')}"
    if n is None:
        return f"not compared with {where} ({recorded:.6f}): the file does not record on how many test images (an older file)"
    if n != samples:  # train measures the first test_limit images (all without it): --limit picks the same
        how = f"--limit {n} measures those" if isinstance(n, int) else "leave --limit out to measure them all"
        return (f"not compared with {where} ({recorded:.6f}): that was measured on {n} test images, this on "
                f"{samples} ({how})")
    diff = round(accuracy * samples) - round(recorded * samples)
    if diff == 0:
        return f"reproduces {where} ({recorded:.6f})"
    then, now = meta.get("blas"), blas_info()
    line = (f"differs from {where}, {recorded:.6f}, by {diff:+d} of {samples} images; train measured it "
            f"with the {meta.get('engine', '?')} engine and {describe(then)}, this process uses {describe(now)}")
    if meta.get("engine") == "numpy" and then and then.get("core") and then.get("core") != now.get("core"):
        line += (f". OpenBLAS kernels round float32 sums differently, which can flip a spike near threshold: "
                 f"OPENBLAS_CORETYPE={then['core']} before the command picks the recorded kernel")
    elif (meta.get("engine") == "numpy" and then and then.get("threads") and now.get("threads")
          and then["threads"] != now["threads"]):
        line += (f". OpenBLAS splits float32 sums by thread, which can flip a spike near threshold: "
                 f"OPENBLAS_NUM_THREADS={then['threads']} before the command uses the recorded count")
    elif meta.get("engine") == "numpy" and then and then.get("core") == now.get("core"):
        line += (". The same kernel, so not its rounding: check that the test data are the run's (the "
                 "--data-dir it was trained with), that the weights file is the run's, and the NumPy versions")
    elif meta.get("engine") not in (None, "numpy"):
        line += ". Another engine's float32 kernels round differently, which can flip a spike near threshold"
    return line
