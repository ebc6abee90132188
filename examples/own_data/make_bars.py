"""A small dataset of your own, as two .npz files: 8x8 images of a bar, horizontal, vertical or diagonal.

    python examples/own_data/make_bars.py DIR      # writes DIR/train.npz (3,000 images) and DIR/test.npz (600)

Each file holds ``x`` (N, 1, 8, 8) float32 and ``labels`` (N,) int64 in 0..2: label 0 a horizontal bar,
1 a vertical one, 2 a diagonal, at a random place, plus Gaussian noise (std 0.5, half the bar's height).  docs/own_data.md
trains ``bars.yaml`` on them; tests/test_own_data.py does too.
"""
import os

import numpy as np


def bars(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images (n, 1, 8, 8) float32 and their labels (n,) int64, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    x = rng.normal(0.0, 0.5, size=(n, 1, 8, 8)).astype(np.float32)
    pos = rng.integers(0, 8, size=n)
    for i, (label, p) in enumerate(zip(labels, pos)):
        if label == 0:
            x[i, 0, p, :] += 1
        elif label == 1:
            x[i, 0, :, p] += 1
        else:  # one of the two diagonals
            x[i, 0][np.eye(8, dtype=bool)[:, ::(1 if p % 2 else -1)]] += 1
    return x, labels


def write(folder: str, n_train: int = 3000, n_test: int = 600) -> None:
    """``folder/train.npz`` and ``folder/test.npz`` (seeds 0 and 1)."""
    os.makedirs(folder, exist_ok=True)
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        x, labels = bars(n, seed)
        np.savez(os.path.join(folder, f"{split}.npz"), x=x, labels=labels)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write DIR/train.npz (3,000 bar images) and DIR/test.npz (600).")
    parser.add_argument("folder", nargs="?", default="bars_data", help="where to write them (default bars_data)")
    write(parser.parse_args().folder)
