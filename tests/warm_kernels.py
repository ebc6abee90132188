"""Compile the project's Numba kernels into their cache before pytest-xdist's workers start.

``tests/conftest.py`` runs this in two processes at once (``float32`` and ``float64``) when the tests run
on several workers: without it every worker compiles the same kernels on a fresh clone, and the unit tier
spent about 15 s of its 2 cores compiling each kernel twice.  It runs the bit-for-bit cases of
``test_steps.py`` (every compiled kernel, through the public functions and through three whole
networks) of one dtype and discards their digests; the tests check them.

    python tests/warm_kernels.py float32
"""
import os
import sys
import time


def main(dtype_name: str) -> int:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import conftest  # noqa: F401  (puts the repository on sys.path as pytest would)
    import test_steps

    start = time.perf_counter()
    names = [name for name in test_steps.CASES if name.endswith("/" + dtype_name)]
    if dtype_name == "float64":
        names.reverse()  # the other process starts at the other end: they seldom compile one kernel at once
    for name in names:
        test_steps.CASES[name]()
    print(f"{dtype_name}: {len(names)} cases in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
