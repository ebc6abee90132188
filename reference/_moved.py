"""Old module names that still import: the application, engines and twins left the package's top level
(December 2026) for ``reference.app``, ``reference.engines`` and ``reference.twins``.

``import reference.train`` (or ``from reference.autograd import backend``) keeps working and gives the very
module of the new name, with a :class:`DeprecationWarning` that names it.  :data:`MOVED` is the one list of
what moved where; ``docs/architecture.md`` draws the folders.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings

#: Old name below ``reference`` -> new name below ``reference``.
MOVED = {
    "cli": "app.cli", "demo": "app.demo", "train": "app.train", "diagnostics": "app.diagnostics",
    "summary": "app.summary", "compare": "app.compare", "runs": "app.runs", "atomic": "app.atomic",
    "data": "app.data", "nmnist": "app.nmnist", "arrays": "app.arrays", "plots": "app.plots", "blas": "app.blas",
    "evaluation": "engines.evaluation",
    "autograd": "twins", "autograd.model": "twins.model", "autograd.torch_backend": "twins.torch_backend",
    "autograd.jax_backend": "twins.jax_backend", "autograd.bptt": "twins.bptt", "autograd.check": "twins.check",
    "autograd.engine": "engines.torch_engine", "autograd.checkpoint": "app.authors_checkpoint",
}


class _Alias:  # an importlib Loader (the ABCs are not imported: they took 8 ms of every start)
    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        return importlib.import_module(self.new)

    def exec_module(self, module):
        pass  # the module of the new name has run already


class MovedFinder:  # an importlib MetaPathFinder
    """Finds ``reference.<old>`` for every old name of :data:`MOVED` and warns once per import."""

    def find_spec(self, fullname, path=None, target=None):
        old = fullname.removeprefix("reference.")
        if old == fullname or old not in MOVED:
            return None
        new = "reference." + MOVED[old]
        warnings.warn(f"{fullname} moved to {new}; import it from there (the old name will go)",
                      DeprecationWarning, stacklevel=2)
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    """Put :class:`MovedFinder` on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedFinder())  # before the path finder: a stale folder of an old name loses
