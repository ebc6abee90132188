"""The twins that check us: the TSSL-BP network written a second time, in PyTorch and in JAX, to check our
hand-written backward.

Optional: the algorithm (the modules directly below :mod:`reference`) never imports this.  Install the
frameworks with ``pip install -r requirements-autograd.txt`` (a CPU build of torch, and jax).

- :mod:`.model`: the network, forward and losses, written once against a small array backend; the
  spiking non-linearity's backward (:func:`.model.tsslbp_backward`) is the only hand-written derivative.
- :mod:`.torch_backend`, :mod:`.jax_backend`: that backward as a ``torch.autograd.Function`` and as a
  ``jax.custom_vjp``; everything else is the framework's autodiff.
- :mod:`.check`: the checks behind ``python -m reference gradcheck``.
- :mod:`.bptt`: TSSL-BP's gradient against a surrogate-gradient BPTT gradient of the same network.

A green check tests the plumbing, not the rule: the twins follow the same notes as the library.  Which
checks are independent is said once, in README's "Checking against PyTorch and JAX".  The engine that *trains* with PyTorch is
:mod:`reference.engines.torch_engine`; the authors' ``.pth`` files are read and written by
:mod:`reference.app.authors_checkpoint`.
"""
from __future__ import annotations

import importlib

INSTALL_HINT = {
    "torch": "pip install torch==2.13.0   (CPU build; or: pip install -r requirements-autograd.txt)",
    "jax": "pip install jax   (CPU build; or: pip install -r requirements-autograd.txt)",
}
FRAMEWORKS = ("torch", "jax")


def available(framework: str) -> bool:
    """Whether ``framework`` ("torch" or "jax") can be imported."""
    try:
        importlib.import_module(framework)
    except ImportError:
        return False
    return True


def require(framework: str):
    """Import and return ``framework``, or raise ImportError saying how to install it."""
    if framework not in INSTALL_HINT:
        raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
    try:
        return importlib.import_module(framework)
    except ImportError as err:
        raise ImportError(f"{framework} is not installed ({err}); install it with: {INSTALL_HINT[framework]}") from None


def backend(framework: str, dtype="float64"):
    """The array backend of ``framework`` ("torch" or "jax") for :class:`.model.TwinModel`."""
    if framework == "torch":
        require("torch")
        from .torch_backend import TorchBackend
        return TorchBackend(dtype)
    if framework == "jax":
        require("jax")
        from .jax_backend import JaxBackend
        return JaxBackend(dtype)
    raise ValueError(f"framework must be one of {FRAMEWORKS}, got {framework!r}")
