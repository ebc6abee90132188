"""Network configs in the authors' YAML schema, loaded and validated.

The schema is theirs, unchanged (``Networks/*.yaml`` in their repository; paper-notes section 5), so their
files load as they are::

    Network:            # epochs, batch_size, n_steps, dataset, rule, data_path, lr, loss, n_class,
      ...               # desired_count, undesired_count, tau_m, tau_s, model
    Layers:             # an ordered mapping: layer name -> settings
      conv_1: {type: conv, in_channels: 1, out_channels: 15, kernel_size: 5, padding: 0, threshold: 1, ...}
      pooling_1: {type: pooling, kernel_size: 2}
      FC_1: {type: linear, n_inputs: 640, n_outputs: 300, weight_scale: 1, threshold: 1}

Validation gives ONE clear error that names the section, layer and key: unknown layer types or keys,
missing required keys, wrong types, and sizes that do not match the previous layer's output.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field

import yaml

from .layers import conv_output_size
from .params import NeuronParams


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, but reading ``5e-4`` as a float as YAML 1.2 does (YAML 1.1 wants ``5.0e-4``).

    Without this, ``lr: 5e-4`` would load as the string ``"5e-4"``.
    """


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[0-9][0-9_]*[eE][-+]?[0-9]+
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


class ConfigError(ValueError):
    """A network config that cannot be used as it is; the message names the layer and key."""


#: Input shape (C, H, W) of each dataset the authors' configs name.
DATASET_SHAPES = {"MNIST": (1, 28, 28), "FashionMNIST": (1, 28, 28), "CIFAR10": (3, 32, 32), "NMNIST_Spiking": (2, 34, 34)}

NETWORK_REQUIRED = ("n_steps", "tau_m", "tau_s", "n_class", "loss")
NETWORK_OPTIONAL = {
    "epochs": 100, "batch_size": 50, "dataset": None, "rule": "TSSLBP", "data_path": None, "lr": 5e-4,
    "desired_count": None, "undesired_count": None, "model": "LIF",
}
LOSSES = ("kernel", "count", "softmax")

#: Per layer type: required keys, optional keys with their defaults.
LAYER_SCHEMA = {
    "conv": (("in_channels", "out_channels", "kernel_size", "threshold"),
             {"padding": 0, "stride": 1, "dilation": 1, "weight_scale": 1.0}),
    "linear": (("n_inputs", "n_outputs", "threshold"), {"weight_scale": 1.0}),
    "pooling": (("kernel_size",), {"theta": 1.1, "threshold": None, "padding": 0, "stride": None, "dilation": 1}),
    "dropout": ((), {"p": 0.5}),
}


@dataclass
class Config:
    """A validated config.

    Attributes
    ----------
    network : dict
        The ``Network`` section with defaults filled in.
    layers : list of (name, dict)
        The ``Layers`` section in order, each with defaults filled in, ``kernel_size``/``stride``/
        ``padding``/``dilation`` as pairs, and ``in_shape``/``out_shape`` (C, H, W) added.
    input_shape : tuple (C, H, W)
    source : str, where it was loaded from
    """

    network: dict
    layers: list
    input_shape: tuple
    source: str = "<dict>"
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def params(self) -> NeuronParams:
        """The neuron constants (threshold 1: each layer carries its own)."""
        n = self.network
        return NeuronParams(tau_m=float(n["tau_m"]), tau_s=float(n["tau_s"]), n_steps=int(n["n_steps"]))

    @property
    def weighted_layers(self) -> list[str]:
        """Names of the layers with trainable weights, in order (the authors' ``my_parameters.<i>``)."""
        return [name for name, c in self.layers if c["type"] in ("conv", "linear")]


def load_config(source, input_shape=None) -> Config:
    """Load and validate a config from a YAML path or from an already parsed dict.

    Parameters
    ----------
    source : str, os.PathLike or dict
    input_shape : tuple (C, H, W), optional
        Needed only when ``Network.dataset`` is not one of :data:`DATASET_SHAPES`.

    Raises
    ------
    ConfigError
        With a message naming the offending layer and key.
    """
    where = "<dict>"
    if isinstance(source, (str, os.PathLike)):
        where = os.fspath(source)
        try:
            with open(where, encoding="utf-8") as fh:
                raw = yaml.load(fh, Loader=_Loader)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {where}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"{where}: not valid YAML: {err}") from None
    else:
        raw = source
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping with 'Network' and 'Layers' sections")
    unknown = set(raw) - {"Network", "Layers"}
    if unknown:
        raise ConfigError(f"{where}: unknown top-level section(s) {sorted(unknown)}; expected 'Network' and 'Layers'")
    for sec in ("Network", "Layers"):
        if not isinstance(raw.get(sec), dict) or not raw.get(sec):
            raise ConfigError(f"{where}: missing or empty section '{sec}'")
    network = _check_network(raw["Network"], where)
    if input_shape is None:
        if network["dataset"] not in DATASET_SHAPES:
            raise ConfigError(
                f"{where}: Network.dataset = {network['dataset']!r} has no known input shape; "
                f"use one of {sorted(DATASET_SHAPES)} or pass input_shape=(C, H, W)"
            )
        input_shape = DATASET_SHAPES[network["dataset"]]
    layers = _check_layers(raw["Layers"], tuple(int(v) for v in input_shape), where)
    return Config(network=network, layers=layers, input_shape=tuple(input_shape), source=where, raw=raw)


def _check_network(net: dict, where: str) -> dict:
    unknown = set(net) - set(NETWORK_REQUIRED) - set(NETWORK_OPTIONAL)
    if unknown:
        raise ConfigError(f"{where}: Network: unknown key(s) {sorted(unknown)}")
    for key in NETWORK_REQUIRED:
        if key not in net:
            raise ConfigError(f"{where}: Network: missing required key '{key}'")
    out = {**NETWORK_OPTIONAL, **net}
    _positive_int(out, "n_steps", f"{where}: Network")
    _positive_int(out, "n_class", f"{where}: Network")
    _positive_int(out, "batch_size", f"{where}: Network")
    _positive_int(out, "epochs", f"{where}: Network")
    for key in ("tau_m", "tau_s"):
        if not _is_number(out[key]) or out[key] < 1:
            raise ConfigError(f"{where}: Network: '{key}' must be a number >= 1 (time steps), got {out[key]!r}")
    if not _is_number(out["lr"]) or out["lr"] <= 0:
        raise ConfigError(f"{where}: Network: 'lr' must be a positive number, got {out['lr']!r}")
    if out["loss"] not in LOSSES:
        raise ConfigError(f"{where}: Network: 'loss' must be one of {LOSSES}, got {out['loss']!r}")
    if out["loss"] == "count":
        for key in ("desired_count", "undesired_count"):
            if not _is_number(out[key]):
                raise ConfigError(f"{where}: Network: loss 'count' needs a number for '{key}'")
    if out["rule"] != "TSSLBP":
        raise ConfigError(f"{where}: Network: 'rule' must be 'TSSLBP' (the only rule implemented), got {out['rule']!r}")
    if out["model"] != "LIF":
        raise ConfigError(f"{where}: Network: 'model' must be 'LIF', got {out['model']!r}")
    return out


def _check_layers(layers: dict, in_shape: tuple, where: str) -> list:
    out = []
    shape = in_shape
    for name, cfg in layers.items():
        ctx = f"{where}: layer '{name}'"
        if not isinstance(cfg, dict):
            raise ConfigError(f"{ctx}: expected a mapping of settings, got {cfg!r}")
        kind = cfg.get("type")
        if kind not in LAYER_SCHEMA:
            raise ConfigError(f"{ctx}: key 'type': unknown layer type {kind!r}; expected one of {sorted(LAYER_SCHEMA)}")
        required, optional = LAYER_SCHEMA[kind]
        unknown = set(cfg) - set(required) - set(optional) - {"type"}
        if unknown:
            raise ConfigError(f"{ctx}: unknown key(s) {sorted(unknown)} for a '{kind}' layer")
        for key in required:
            if key not in cfg:
                raise ConfigError(f"{ctx}: missing required key '{key}' for a '{kind}' layer")
        c = {**optional, **cfg}
        c["in_shape"] = shape
        if kind == "conv":
            for key in ("in_channels", "out_channels"):
                _positive_int(c, key, ctx)
            for key, lo in (("kernel_size", 1), ("stride", 1), ("padding", 0), ("dilation", 1)):
                c[key] = _pair(c[key], key, ctx, lo)
            _number(c, "threshold", ctx)
            _number(c, "weight_scale", ctx)
            if c["in_channels"] != shape[0]:
                raise ConfigError(
                    f"{ctx}: key 'in_channels' is {c['in_channels']} but the previous layer gives {shape[0]} "
                    f"channels (its output shape is (C, H, W) = {shape})"
                )
            oh, ow = (conv_output_size(shape[1 + i], c["kernel_size"][i], c["stride"][i], c["padding"][i],
                                       c["dilation"][i]) for i in range(2))
            if oh < 1 or ow < 1:
                raise ConfigError(f"{ctx}: key 'kernel_size': a {c['kernel_size']} kernel does not fit the input {shape}")
            shape = (c["out_channels"], oh, ow)
        elif kind == "linear":
            for key in ("n_inputs", "n_outputs"):
                _positive_int(c, key, ctx)
            _number(c, "threshold", ctx)
            _number(c, "weight_scale", ctx)
            if c["n_inputs"] != math.prod(shape):
                raise ConfigError(
                    f"{ctx}: key 'n_inputs' is {c['n_inputs']} but the previous layer gives "
                    f"{math.prod(shape)} values (its output shape is (C, H, W) = {shape})"
                )
            shape = (c["n_outputs"], 1, 1)
        elif kind == "pooling":
            k = c["kernel_size"]
            if not (isinstance(k, int) and not isinstance(k, bool) and k >= 1):
                raise ConfigError(f"{ctx}: key 'kernel_size' must be a positive integer (square windows), got {k!r}")
            _number(c, "theta", ctx)
            if c["stride"] not in (None, k) or _pair(c["padding"], "padding", ctx, 0) != (0, 0) or \
                    _pair(c["dilation"], "dilation", ctx, 1) != (1, 1):
                raise ConfigError(f"{ctx}: only stride = kernel_size, padding 0 and dilation 1 are supported for pooling")
            if shape[1] < k or shape[2] < k:
                raise ConfigError(f"{ctx}: key 'kernel_size': a {k}x{k} window does not fit the input {shape}")
            shape = (shape[0], shape[1] // k, shape[2] // k)
        elif kind == "dropout":
            if not _is_number(c["p"]) or not 0 <= c["p"] < 1:
                raise ConfigError(f"{ctx}: key 'p' must be a number in [0, 1), got {c['p']!r}")
        c["out_shape"] = shape
        out.append((name, c))
    if not any(c["type"] in ("conv", "linear") for _, c in out):
        raise ConfigError(f"{where}: Layers: the network has no conv or linear layer")
    if out[-1][1]["type"] != "linear" and out[-1][1]["type"] != "conv":
        raise ConfigError(f"{where}: layer '{out[-1][0]}': the last layer must be a spiking 'linear' or 'conv' layer")
    return out


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _number(c: dict, key: str, ctx: str) -> None:
    if not _is_number(c[key]):
        raise ConfigError(f"{ctx}: key '{key}' must be a finite number, got {c[key]!r}")


def _positive_int(c: dict, key: str, ctx: str) -> None:
    v = c[key]
    if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
        raise ConfigError(f"{ctx}: key '{key}' must be a positive integer, got {v!r}")


def _pair(v, key: str, ctx: str, lo: int) -> tuple[int, int]:
    if isinstance(v, int) and not isinstance(v, bool):
        v = (v, v)
    if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(e, int) and not isinstance(e, bool) for e in v)):
        raise ConfigError(f"{ctx}: key '{key}' must be an integer or a pair of integers, got {v!r}")
    if min(v) < lo:
        raise ConfigError(f"{ctx}: key '{key}' must be >= {lo}, got {v!r}")
    return tuple(v)
