"""Shared test helpers: `import naive` (the slow twins), the real MNIST fixture, a relative-error measure."""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TESTS_DIR)
FIXTURE = os.path.join(TESTS_DIR, "data", "mnist_fixture.npz")

sys.path.insert(0, TESTS_DIR)  # `import naive` (the slow twins)
if ROOT not in sys.path:
    sys.path.append(ROOT)  # `import reference` also when pytest is started from another folder

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def load_mnist(n, split="test", dtype=np.float64):
    """The first ``n`` fixture images of ``split`` ("train" or "test"), normalised as the authors do.

    Returns ``(images, labels)``: images (n, 1, 28, 28) of ``dtype``, ``(x/255 - 0.1307)/0.3081``;
    labels (n,) int64.
    """
    with np.load(FIXTURE) as data:
        images = data[f"{split}_images"][:n]
        labels = data[f"{split}_labels"][:n]
    if len(images) < n:
        raise ValueError(f"the fixture has only {len(images)} {split} images, asked for {n}")
    x = ((images / 255.0 - MNIST_MEAN) / MNIST_STD)[:, None].astype(dtype)
    return x, labels.astype(np.int64)


def dataset_missing(name: str) -> str:
    """Why the full dataset ``name`` ("MNIST", "FashionMNIST") cannot be loaded here, or "" when it can."""
    from reference.app.data import DataError
    from reference.app.train import load_split

    try:
        load_split(name, "test", limit=10, verbose=False)
    except (DataError, OSError) as err:
        return str(err)
    return ""


@pytest.fixture
def mnist_batch():
    """``mnist_batch(n, split="test", dtype=np.float64)`` -> normalised images (n, 1, 28, 28), int64 labels."""
    return load_mnist


def rel_err(a, b):
    """max |a - b| / max |b|: the error relative to the reference's scale (0 when both are all zero)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    diff = np.max(np.abs(a - b)) if a.size else 0.0
    if diff == 0.0:
        return 0.0
    return float(diff / max(np.max(np.abs(b)), 1e-300))


def to_authors(arr):
    """Internal (T, N, H, W, C) -> authors' (N, C, H, W, T)."""
    return np.ascontiguousarray(np.asarray(arr).transpose(1, 4, 2, 3, 0))


def from_authors(arr):
    """Authors' (N, C, H, W, T) -> internal (T, N, H, W, C)."""
    return np.ascontiguousarray(np.asarray(arr).transpose(4, 0, 2, 3, 1))


def pytest_collection_modifyitems(config, items):
    """A ``site`` test (the built site in Chromium) is never in the unit tier: it is also ``integration``.

    CI runs the site tier by itself (``-m site``) once the site is built, so the integration stage deselects
    ``site`` as well.
    """
    for item in items:
        if item.get_closest_marker("site") is not None:
            item.add_marker(pytest.mark.integration)


def pytest_configure(config):
    """With two or more xdist workers, compile the kernels into Numba's cache before the workers start.

    On a fresh clone nothing is cached, and every worker compiled the kernels it met first, mostly the
    same ones at the same time (about 15 s of the 2 cores of the unit tier went to compiling kernels
    twice).  ``warm_kernels.py`` compiles them once, the float32 and the float64 signatures in one
    process each, at once; the workers then load them from the cache.  With the cache warm this costs
    about 3 s.  A failure is a note: the tests that use the kernel report it.
    """
    workers = getattr(config.option, "numprocesses", None) or 0
    if (hasattr(config, "workerinput") or not isinstance(workers, int) or workers < 2
            or os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0") or config.option.collectonly):
        return
    start = time.perf_counter()
    script = os.path.join(TESTS_DIR, "warm_kernels.py")
    procs = [subprocess.Popen([sys.executable, script, dtype], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True, cwd=ROOT) for dtype in ("float32", "float64")]
    outputs = [p.communicate()[0] for p in procs]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    say = reporter.write_line if reporter is not None else print
    for proc, out in zip(procs, outputs):
        if proc.returncode != 0:
            say(f"note: compiling the kernels before the workers failed ({proc.args[-1]}):\n" + out[-2000:])
    say(f"kernels compiled into Numba's cache before the {workers} workers started: "
        f"{time.perf_counter() - start:.1f} s")
