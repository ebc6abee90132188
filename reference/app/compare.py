"""Compare two gradient archives (the ``gradients`` command's format) quantity by quantity, in the order the
computation makes them, and name the first one that disagrees.

An archive holds ``output/<layer>`` (every layer's output PSP), ``loss``, ``delta/<layer>`` and
``grad/<layer>`` (:func:`reference.app.cli.compute_gradients`).  When two implementations disagree, the first
disagreeing quantity in *forward-then-backward* order is where to look: every later quantity depends on
it, so its error spreads there too.  The order is: outputs from the first layer to the last, the loss,
then deltas and weight gradients from the last layer back to the first (a layer's delta before its
gradient, which is made from it).

Per quantity: the largest absolute error, the relative error ``max|ours - theirs| / max|theirs|`` (the
measure this project's tests state tolerances in: 1e-4 for a float32 implementation of the same
equations), and the cosine similarity of the two arrays flattened (1 = same direction).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

@dataclass
class Row:
    """The comparison of one quantity (``key``); ``problem`` is set when it cannot be compared."""

    key: str
    shape: tuple
    max_abs: float = math.nan
    rel: float = math.nan
    cosine: float = math.nan
    problem: str = ""

    def ok(self, rtol: float) -> bool:
        return not self.problem and self.rel <= rtol


def computation_order(keys_ours, keys_theirs=()) -> list[str]:
    """The keys both archives share, in forward-then-backward order (see the module docstring).

    The layer order is that of the ``output/`` keys in ``keys_ours`` (as this project writes them), then any
    layer only ``keys_theirs`` names, in its order.  Keys of unknown kinds come last, sorted.
    """
    keys = list(keys_ours) + list(keys_theirs)
    layers: list[str] = []
    for wanted in (("output",), ("delta", "grad")):  # outputs fix the order; a layer without one goes after
        for key in keys:
            kind, _, name = key.partition("/")
            if kind in wanted and name and name not in layers:
                layers.append(name)
    order = [f"output/{n}" for n in layers] + ["loss"]
    for name in reversed(layers):
        order += [f"delta/{name}", f"grad/{name}"]
    shared = set(keys_ours) & set(keys_theirs)
    return [k for k in order if k in shared] + sorted(shared - set(order))


def compare_arrays(key: str, ours: np.ndarray, theirs: np.ndarray) -> Row:
    """One :class:`Row`: errors in float64; a shape mismatch, a NaN/inf or an array of no real numbers
    (strings, objects, complex) is a ``problem``."""
    a, b = np.asarray(ours), np.asarray(theirs)
    kinds = [f"{who} holds {x.dtype}" for who, x in (("ours", a), ("theirs", b)) if x.dtype.kind not in "biuf"]
    if kinds:
        return Row(key, a.shape, problem=f"not real numbers: {' and '.join(kinds)}")
    a, b = a.astype(np.float64), b.astype(np.float64)
    if a.shape != b.shape:
        return Row(key, a.shape, problem=f"shape {a.shape} (ours) vs {b.shape} (theirs)")
    bad = [who for who, x in (("ours", a), ("theirs", b)) if not np.all(np.isfinite(x))]
    if bad:
        return Row(key, a.shape, problem=f"NaN or inf in {' and '.join(bad)}")
    diff = np.abs(a - b)
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(b).max()) if b.size else 0.0
    rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    cosine = float(np.dot(a.ravel(), b.ravel()) / (na * nb)) if na > 0 and nb > 0 else (1.0 if na == nb else 0.0)
    return Row(key, a.shape, max_abs, rel, cosine)


def worst_entries(ours: np.ndarray, theirs: np.ndarray, k: int = 5) -> list[tuple[tuple, float, float]]:
    """The ``k`` entries with the largest absolute difference: ``(index, ours, theirs)``, largest first."""
    a, b = np.asarray(ours, dtype=np.float64), np.asarray(theirs, dtype=np.float64)
    diff = np.abs(a - b).ravel()
    top = np.argsort(-diff, kind="stable")[:k]
    return [(tuple(int(i) for i in np.unravel_index(j, a.shape)), float(a.ravel()[j]), float(b.ravel()[j]))
            for j in top]


def compare(ours: dict, theirs: dict) -> tuple[list[Row], list[str], list[str]]:
    """Compare two archives (dicts of arrays): ``(rows in computation order, keys only in ours, only in theirs)``."""
    order = computation_order(list(ours), list(theirs))
    rows = [compare_arrays(k, ours[k], theirs[k]) for k in order]
    return rows, sorted(set(ours) - set(theirs)), sorted(set(theirs) - set(ours))


def report(rows: list[Row], only_ours, only_theirs, rtol: float, ours: dict, theirs: dict, n_entries: int = 5) -> tuple[str, bool]:
    """The text the ``compare`` command prints, and whether every shared quantity is within ``rtol``."""
    width = max([len(r.key) for r in rows] + [8])
    lines = [f"{'quantity':<{width}}  {'shape':<22} {'max abs err':>12} {'rel err':>10} {'cosine':>10}  "]
    first_bad = None
    for r in rows:
        if r.problem:
            status = r.problem
        else:
            status = "ok" if r.ok(rtol) else f"ABOVE rtol {rtol:g}"
        lines.append(f"{r.key:<{width}}  {str(r.shape):<22} {r.max_abs:>12.4g} {r.rel:>10.3g} {r.cosine:>10.6f}  {status}")
        if first_bad is None and not r.ok(rtol):
            first_bad = r
    for name, keys in (("only in ours", only_ours), ("only in theirs", only_theirs)):
        if keys:
            lines.append(f"{name} (not compared): {', '.join(keys)}")
    if first_bad is None:
        lines.append(f"all {len(rows)} shared quantities agree within rtol {rtol:g}")
        return "\n".join(lines) + "\n", True
    lines.append("")
    why = first_bad.problem or f"rel err {first_bad.rel:.3g} > rtol {rtol:g}"
    after = ("a weight gradient: no later quantity depends on it, so a later disagreement has a cause of its own"
             if first_bad.key.startswith("grad/") else "later quantities depend on it, so start there")
    lines.append(f"first disagreement in computation order: {first_bad.key} ({why}); {after}")
    if not first_bad.problem:
        lines.append(f"its {n_entries} largest differences (index in the archive's layout):")
        lines.append(f"  {'index':<24} {'ours':>14} {'theirs':>14} {'difference':>12}")
        for idx, a, b in worst_entries(ours[first_bad.key], theirs[first_bad.key], n_entries):
            lines.append(f"  {str(idx):<24} {a:>14.7g} {b:>14.7g} {a - b:>12.4g}")
    return "\n".join(lines) + "\n", False
