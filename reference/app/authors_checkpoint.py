"""The authors' PyTorch checkpoints to our weights files, and back.

Their training script saves ``torch.save({"net": net.state_dict(), ...})``; the network keeps its
trainable weights in an ``nn.ParameterList`` named ``my_parameters``, in config order, so the state dict
holds ``my_parameters.0``, ``my_parameters.1``, ...: linear weights ``(out, in)``, conv weights
``(out, in, kh, kw, 1)`` (a conv3d whose time kernel has size 1).  Our weights files (``.npz``) hold one
array per weighted layer name in the authors' layout without that trailing axis.
"""
from __future__ import annotations

import math
import os
import re

import numpy as np

from ..config import Config, load_config

_KEY = re.compile(r"^my_parameters\.(\d+)$")


def _config(config) -> Config:
    return config if isinstance(config, Config) else load_config(config)


def expected_shapes(config) -> dict[str, tuple]:
    """Weighted layer name -> our weight shape ((out, in) or (out, in, kh, kw)), in config order."""
    return _config(config).weight_shapes


def _torch():
    import torch  # only reached with a torch tensor in hand, so torch is installed

    return torch


def state_dict_to_weights(state: dict, config) -> dict[str, np.ndarray]:
    """Map the authors' state dict (``my_parameters.<i>`` -> tensor or array) to our weights by layer name.

    Raises ValueError naming the key when an entry is missing, extra, of the wrong shape or not finite.
    Keys outside ``my_parameters`` (none in their final code) are ignored.
    """
    shapes = expected_shapes(config)
    names = list(shapes)
    found = {int(m.group(1)): k for k in state if (m := _KEY.match(str(k)))}
    if not found:
        raise ValueError(f"no 'my_parameters.<i>' entries in the state dict (keys: {sorted(map(str, state))[:8]})")
    if sorted(found) != list(range(len(names))):
        raise ValueError(f"the checkpoint has weights my_parameters.{sorted(found)}, the config's weighted layers "
                         f"are {names} (indices 0..{len(names) - 1}): is it the right config?")
    weights = {}
    for i, name in enumerate(names):
        w = state[found[i]]
        if hasattr(w, "detach"):
            if w.is_complex() or not w.is_floating_point():
                raise ValueError(f"my_parameters.{i} (layer {name!r}) has dtype {w.dtype}; expected real floating point")
            # the shape first, from the tensor's header: a sparse tensor, or a stride-0 view such as
            # zeros(1).expand(10**5, 10**5), is never materialised at a size the config does not have
            if w.numel() != math.prod(shapes[name]) or tuple(w.shape)[:len(shapes[name])] != shapes[name]:
                kind = "" if w.layout == _torch().strided else f"a {w.layout} tensor of "
                raise ValueError(f"my_parameters.{i} (layer {name!r}) has {kind}shape {tuple(w.shape)}, "
                                 f"expected {shapes[name]} (or with a trailing 1 for conv)")
            if w.device.type == "meta":
                raise ValueError(f"my_parameters.{i} (layer {name!r}) is a tensor on the 'meta' device: it has a "
                                 f"shape but no values (saved from a model that was never filled)")
            if w.layout != _torch().strided:
                w = w.to_dense()
            w = w.detach().cpu().float().numpy()  # .float(): bfloat16/half have no NumPy dtype of their own
        else:
            w = np.asarray(w)
            if not np.issubdtype(w.dtype, np.floating):
                raise ValueError(f"my_parameters.{i} (layer {name!r}) has dtype {w.dtype}; expected real floating point")
        w = w.astype(np.float32)
        if w.ndim == 5 and w.shape[-1] == 1:
            w = w[..., 0]  # conv3d time kernel of size 1
        if w.shape != shapes[name]:
            raise ValueError(f"my_parameters.{i} (layer {name!r}) has shape {tuple(w.shape)}, "
                             f"expected {shapes[name]} (or with a trailing 1 for conv)")
        if not np.all(np.isfinite(w)):
            raise ValueError(f"my_parameters.{i} (layer {name!r}) contains NaN or inf")
        weights[name] = w
    return weights


def authors_module(weights: dict, config):
    """A ``torch.nn.Module`` holding the weights as the authors' network does: an ``nn.ParameterList``
    attribute ``my_parameters`` in config order, conv weights with a trailing time axis of size 1.

    Its ``state_dict()`` is what their training script saves under ``"net"``.
    """
    import torch

    shapes = expected_shapes(config)
    missing = [n for n in shapes if n not in weights]
    if missing or set(weights) - set(shapes):
        raise ValueError(f"weights do not match the config: missing {missing}, unknown {sorted(set(weights) - set(shapes))}")
    params = []
    for name, shape in shapes.items():
        w = np.asarray(weights[name], dtype=np.float32)
        if w.shape != shape:
            raise ValueError(f"layer {name!r}: shape {w.shape}, expected {shape}")
        params.append(torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(w[..., None] if w.ndim == 4 else w))))
    module = torch.nn.Module()
    module.my_parameters = torch.nn.ParameterList(params)
    return module


def weights_to_state_dict(weights: dict, config) -> dict:
    """Our weights by layer name -> the authors' state dict (``my_parameters.<i>``, conv with a trailing 1)."""
    return authors_module(weights, config).state_dict()


def import_checkpoint(path, config) -> dict[str, np.ndarray]:
    """Read an authors' checkpoint (``{"net": state_dict, ...}`` or a bare state dict) into our weights."""
    from ..twins import require

    torch = require("torch")
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not os.path.isfile(path):  # a FIFO would block the open forever, a device never end
        raise ValueError(f"{path} is not a regular file (a folder, a pipe or a device), not a PyTorch checkpoint")
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head != b"PK\x03\x04" and head[:1] != b"\x80":  # a zip (torch.save) or a legacy pickle stream
        raise ValueError(f"{path} is not a PyTorch checkpoint (neither torch.save's zip nor a pickle: starts "
                         f"with {head!r})")
    import warnings

    try:
        with warnings.catch_warnings():  # torch warns about a pickle protocol before it refuses the file
            warnings.simplefilter("ignore", UserWarning)
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle and zip errors come in many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if "weights_only" in str(err) or "Unsupported global" in str(err) or "GLOBAL" in str(err):
            why = re.search(r"WeightsUnpickler error: \s*(.+)", str(err))
            why = f": {why.group(1).strip()[:120]}" if why else ""
            raise ValueError(f"{path} holds Python objects or pickle instructions beyond tensors and numbers "
                             f"(torch.load with weights_only=True refused it{why}; nothing of it was run); a "
                             f"checkpoint of the authors' code, saved by torch.save, holds tensors and numbers "
                             f"only") from None
        raise ValueError(f"{path} is not a readable PyTorch checkpoint ({type(err).__name__}: {first[:200]})") from None
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path}: expected a dict (the authors save {{'net': state_dict, ...}}), got {type(ckpt).__name__}")
    state = ckpt["net"] if "net" in ckpt else ckpt
    if not isinstance(state, dict):
        raise ValueError(f"{path}: the 'net' entry is a {type(state).__name__}, expected a state dict")
    return state_dict_to_weights(state, config)


def export_checkpoint(weights: dict, config, path, **extra) -> None:
    """Write our weights as an authors' checkpoint ``{"net": state_dict, **extra}`` (e.g. ``epoch``, ``acc``)."""
    import torch

    from .atomic import atomic_write

    for name, w in weights.items():
        if not np.all(np.isfinite(np.asarray(w))):
            raise ValueError(f"layer {name!r}: weights contain NaN or inf (the authors' code and import-checkpoint "
                             f"would reject them); nothing written")
    state = {"net": weights_to_state_dict(weights, config), **extra}
    atomic_write(path, lambda fh: torch.save(state, fh))
