"""Network configs in the authors' YAML schema, loaded and validated.

The schema is theirs, unchanged (paper-notes section 5; ``configs/*.yaml`` here are their files with the
same keys and values), so their files load as they are::

    Network:            # epochs, batch_size, n_steps, dataset, rule, data_path, lr, loss, n_class,
      ...               # desired_count, undesired_count, tau_m, tau_s, model
                        # (+ ours, for event data: time_window_us, event_binning; reference/app/nmnist.py)
    Layers:             # an ordered mapping: layer name -> settings
      conv_1: {type: conv, in_channels: 1, out_channels: 15, kernel_size: 5, padding: 0, threshold: 1, ...}
      pooling_1: {type: pooling, kernel_size: 2}
      FC_1: {type: linear, n_inputs: 640, n_outputs: 300, weight_scale: 1, threshold: 1}

Validation gives ONE clear error that names the section, layer and key: unknown layer types or keys,
missing required keys, duplicated keys in the YAML text, wrong types, non-finite numbers, sizes that do not
match the previous layer's output, and an ``n_class`` that is not the last layer's number of outputs.

PyYAML is imported only when YAML text is read (:func:`load_config` given a path); importing this module
and validating an already parsed dict import neither PyYAML nor Numba (which imports PyYAML when it is
installed), only NumPy.
"""
from __future__ import annotations

import functools
import math
import numbers
import os
import re
from dataclasses import dataclass, field

import numpy as np

from .params import MAX_TAU, NeuronParams, conv_output_size  # NumPy only.  Not `.layers`: it imports Numba, and Numba imports PyYAML

#: YAML 1.2 floats — PyYAML (YAML 1.1) reads ``5e-4`` as a string, it wants ``5.0e-4``.
_FLOAT_RE = r"""^[-+]?(?:[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[0-9][0-9_]*[eE][-+]?[0-9]+
                    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$"""


class _DuplicateKey(ValueError):
    """A mapping in the YAML text gives the same key twice (raised while constructing; no file name yet)."""


@functools.lru_cache(maxsize=None)
def _yaml_loader():
    """The YAML loader class, built on first use so that importing this module does not import PyYAML.

    It is PyYAML's safe loader with two changes:

    - ``5e-4`` loads as a float, as in YAML 1.2 (without this, ``lr: 5e-4`` would be the string ``"5e-4"``);
    - a key given twice in one mapping (two ``lr:`` lines, two layers with the same name) is an error
      naming the key and both lines, where PyYAML would silently keep the last value.
    """
    import re

    import yaml

    class _Loader(yaml.SafeLoader):
        def __init__(self, stream):
            super().__init__(stream)
            self._paths = {}  # id(mapping node) -> its keys from the top, to name where a duplicate is

        def construct_mapping(self, node, deep=False):
            if isinstance(node, yaml.MappingNode):
                path = self._paths.get(id(node), ())
                seen = {}
                for key_node, value_node in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue  # `<<: *anchor` merges; keys given next to it may override the merged ones
                    key = self.construct_object(key_node, deep=True)
                    try:
                        hash(key)
                    except TypeError:
                        continue  # PyYAML reports the unhashable key itself
                    line = key_node.start_mark.line + 1
                    if key in seen:
                        inside = "at the top level" if not path else "in " + ".".join(map(str, path))
                        raise _DuplicateKey(
                            f"line {line}: duplicate key {key!r} {inside} (first given at line {seen[key]}); "
                            f"YAML would silently keep only the last value, so remove one of them"
                        )
                    seen[key] = line
                    if isinstance(value_node, yaml.MappingNode):
                        self._paths[id(value_node)] = (*path, key)
            return super().construct_mapping(node, deep=deep)

    _Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(_FLOAT_RE, re.X),
                                  list("-+0123456789."))
    return _Loader


class ConfigError(ValueError):
    """A network config that cannot be used as it is; the message names the layer and key."""


#: Input shape (C, H, W) of each dataset the authors' configs name.
DATASET_SHAPES = {"MNIST": (1, 28, 28), "FashionMNIST": (1, 28, 28), "CIFAR10": (3, 32, 32), "NMNIST_Spiking": (2, 34, 34)}

NETWORK_REQUIRED = ("n_steps", "tau_m", "tau_s", "n_class", "loss")
#: Most time steps a config may ask for (every per-step array is allocated T times; the paper uses 5-100).
MAX_STEPS = 10_000
NETWORK_OPTIONAL = {
    "epochs": 100, "batch_size": 50, "dataset": None, "rule": "TSSLBP", "data_path": None, "lr": 5e-4,
    "desired_count": None, "undesired_count": None, "model": "LIF",
    # ours, not the authors' (their N-MNIST converter takes these as arguments): reference/app/nmnist.py
    "time_window_us": None, "event_binning": "authors",
    # ours: a user's own arrays (dataset "arrays", reference/app/arrays.py, docs/own_data.md)
    "input_shape": None, "frames_layout": None, "normalise": None,
}
#: The Network keys whose value is a name (a string, or left out), checked first, so that a list or a mapping
#: given by mistake gets one line instead of failing deep inside a lookup.
NETWORK_NAMES = ("dataset", "data_path", "rule", "model", "loss", "event_binning", "frames_layout")
#: The dataset name of a user's own ``train.npz`` / ``test.npz`` (:mod:`reference.app.arrays`).
ARRAYS = "arrays"
#: How a user's spike frames are laid out (:mod:`reference.app.arrays`), or None for static images (N, C, H, W).
FRAMES_LAYOUTS = ("NCHWT", "NTCHW")
EVENT_BINNINGS = ("authors", "uniform")
LOSSES = ("kernel", "count", "softmax")
#: Largest accepted ``Network.lr`` — AdamW (weight decay 0.01) steps of order lr; far above 1 it diverges.
MAX_LR = 1.0

#: Per layer type — required keys, optional keys with their defaults.
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

    @property
    def weight_shapes(self) -> dict[str, tuple]:
        """Weighted layer name -> weight shape in the authors' layout ((out, in) or (out, in, kh, kw)), in order."""
        shapes = {}
        for name, c in self.layers:
            if c["type"] == "linear":
                shapes[name] = (c["n_outputs"], c["n_inputs"])
            elif c["type"] == "conv":
                shapes[name] = (c["out_channels"], c["in_channels"], *c["kernel_size"])
        return shapes

    def activation_bytes(self, batch_size: int, dtype_size: int = 4, training: bool = True) -> int:
        """An estimate of the bytes one forward (and, if ``training``, backward) of a batch needs.

        Meant to refuse batch sizes that cannot fit in memory before anything is allocated; it is an
        estimate within a factor of about 1.5 of the peak, not an exact count (measured with tracemalloc on
        :meth:`reference.network.Network.gradients`: 0.77 to 1.04 times the peak for the shipped configs,
        lowest for the Fashion-MNIST CNN, whose im2col products make large temporaries).  Weights,
        optimizer state and the data set are not included.  With ``T = n_steps``, ``N = batch_size`` and,
        per layer, ``O = T*N*C*H*W`` values out and ``I`` values in, it counts ``dtype_size`` bytes per value
        of:

        - the encoded input ``a_0``, ``T*N*C*H*W`` of the input shape;
        - every layer's output tensor, ``O``;
        - for spiking layers (conv, linear), the recorded neuron state: ``du`` (``O``) and the spikes
          (``O`` bytes, uint8; :class:`reference.neuron.CompactState`);
        - for conv layers, the im2col buffer ``T*N*OH*OW*(kh*kw*C_in)``;
        - when ``training``: for spiking layers the backward's ``delta`` (``O``) and its TSSL-BP branch
          (``O`` bytes, int8), and for every layer one input-gradient array, ``I``.

        Parameters
        ----------
        batch_size : int, N
        dtype_size : int, bytes per value (4 for float32, 8 for float64)
        training : bool, also count what the backward keeps

        Returns
        -------
        int, bytes
        """
        for name, v in (("batch_size", batch_size), ("dtype_size", dtype_size)):
            if not (isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        batch_size, dtype_size = int(batch_size), int(dtype_size)  # Python ints: no overflow
        tn = int(self.network["n_steps"]) * batch_size
        values = tn * math.prod(self.input_shape)  # a_0
        small = 0  # 1-byte values
        for _, c in self.layers:
            out = tn * math.prod(c["out_shape"])
            values += out
            spiking = c["type"] in ("conv", "linear")
            if spiking:
                values += out  # du; the spikes are 1-byte values (reference.neuron.CompactState)
                small += out
            if c["type"] == "conv":
                (kh, kw), (_, oh, ow) = c["kernel_size"], c["out_shape"]
                values += tn * oh * ow * kh * kw * c["in_channels"]
            if training:
                if spiking:
                    values += out
                    small += out
                values += tn * math.prod(c["in_shape"])
        return values * dtype_size + small


def _check_arrays_keys(out: dict, where: str) -> None:
    """The keys of a user's own arrays (``dataset: arrays``): ``input_shape`` [C, H, W] (required there),
    ``frames_layout`` (None for images, or one of :data:`FRAMES_LAYOUTS`), ``normalise`` [mean, std]
    (numbers, or one per channel; None: taken from the training split)."""
    own = out["dataset"] == ARRAYS
    for key in ("input_shape", "frames_layout", "normalise"):
        if out[key] is not None and not own:
            raise ConfigError(f"{where}: Network: '{key}' is for dataset '{ARRAYS}' (your own arrays) only")
    if not own:
        return
    shape = out["input_shape"]
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(v, int) and not isinstance(v, bool)
                                                              and v >= 1 for v in shape)):
        raise ConfigError(f"{where}: Network: dataset '{ARRAYS}' needs 'input_shape: [C, H, W]' (three positive "
                          f"integers, the shape of one sample), got {shape!r}")
    if out["frames_layout"] is not None and out["frames_layout"] not in FRAMES_LAYOUTS:
        raise ConfigError(f"{where}: Network: 'frames_layout' must be one of {FRAMES_LAYOUTS} (spike frames) or "
                          f"left out (static images), got {out['frames_layout']!r}")
    norm = out["normalise"]
    if norm is not None:
        flat = [v for part in norm for v in (part if isinstance(part, list) else [part])] \
            if isinstance(norm, list) and len(norm) == 2 else None
        if flat is None or not all(_is_number(v) for v in flat) or not all(
                isinstance(p, list) and len(p) == shape[0] or not isinstance(p, list) for p in norm):
            raise ConfigError(f"{where}: Network: 'normalise' must be [mean, std], each a number or a list of "
                              f"one per channel ({shape[0]}), got {norm!r}")
        if out["frames_layout"] is not None:
            raise ConfigError(f"{where}: Network: 'normalise' is for static images; spike frames are fed as they are")
        stds = norm[1] if isinstance(norm[1], list) else [norm[1]]
        if not all(v > 0 for v in stds):
            raise ConfigError(f"{where}: Network: the std of 'normalise' must be > 0, got {norm[1]!r}")


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
        raw = _read_yaml(where)
    else:
        raw = source
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{where}: the top level is {_kind(raw)}; expected a mapping with 'Network' and 'Layers' sections"
        )
    unknown = set(raw) - {"Network", "Layers"}
    if unknown:
        raise ConfigError(f"{where}: unknown top-level section(s) {sorted(unknown)}; expected 'Network' and 'Layers'")
    for sec in ("Network", "Layers"):
        if sec in raw and raw[sec] is not None and not isinstance(raw[sec], dict):
            raise ConfigError(f"{where}: section '{sec}' is {_kind(raw[sec])}; expected a mapping of "
                              + ("settings" if sec == "Network" else "layer names to layers"))
        if not raw.get(sec):
            raise ConfigError(f"{where}: missing or empty section '{sec}'")
    network = _check_network(raw["Network"], where)
    if input_shape is None and network["dataset"] == ARRAYS:
        input_shape = tuple(network["input_shape"])
    if input_shape is None:
        if network["dataset"] not in DATASET_SHAPES:
            raise ConfigError(
                f"{where}: Network.dataset = {network['dataset']!r} has no known input shape; "
                f"use one of {sorted(DATASET_SHAPES)} or pass input_shape=(C, H, W)"
            )
        input_shape = DATASET_SHAPES[network["dataset"]]
    layers = _check_layers(raw["Layers"], tuple(int(v) for v in input_shape), where)
    last, c = layers[-1]
    n_out = math.prod(c["out_shape"])
    if network["n_class"] != n_out:
        how = "n_outputs" if c["type"] == "linear" else "C*H*W = {}*{}*{}".format(*c["out_shape"])
        raise ConfigError(
            f"{where}: Network.n_class is {network['n_class']} but the last layer '{last}' has {n_out} outputs "
            f"({how}); the output layer needs one output per class"
        )
    return Config(network=network, layers=layers, input_shape=tuple(input_shape), source=where, raw=raw)


#: A config is a few dozen lines; a larger "config" (a device, a dataset given by mistake) is refused.
MAX_CONFIG_BYTES = 1 << 20


def _read_yaml(path: str):
    """The parsed YAML file ``path``; every way it cannot be read is a one-line :class:`ConfigError`."""
    if os.path.isdir(path):
        raise ConfigError(f"{path}: is a folder, not a YAML config file")
    if os.path.exists(path) and not os.path.isfile(path) and not path.startswith("/dev/"):
        # a FIFO would block the open forever (devices such as /dev/stdin are read, bounded, below)
        raise ConfigError(f"{path}: is not a regular file (a pipe, a socket or a device), not a YAML config file")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)  # a device such as /dev/zero never ends: read a bounded prefix
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config file: {err.strerror or err}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: over {MAX_CONFIG_BYTES // 1024} KiB, not a config file (the authors' are "
                          f"under 2 KiB)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a YAML text file (byte {err.start} is not UTF-8; a binary file?)") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a YAML text file (it contains NUL bytes; a binary file?)")
    return parse_yaml(text, path)


def parse_yaml(text: str, where: str):
    """YAML text parsed with the config loader (YAML 1.2 floats, duplicate keys refused).

    ``where`` names the source in messages; every problem is a one-line :class:`ConfigError`.
    """
    import yaml  # here, not at the top: validating a parsed dict must not need PyYAML

    try:
        raw = yaml.load(text, Loader=_yaml_loader())
    except _DuplicateKey as err:
        raise ConfigError(f"{where}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{where}: not valid YAML: {_yaml_problem(err)}") from None
    except RecursionError:  # PyYAML parses nesting recursively: 500 nested '[' exhausted Python's stack
        raise ConfigError(f"{where}: nested too deeply to be a config (a config is two levels of mappings)") from None
    if raw is None:
        raise ConfigError(f"{where}: the config is empty (no 'Network' and 'Layers' sections)")
    if _expanded_size(raw, MAX_CONFIG_VALUES) > MAX_CONFIG_VALUES:
        raise ConfigError(f"{where}: expands to more than {MAX_CONFIG_VALUES:,} values (YAML anchors and aliases "
                          f"repeated into each other, a 'billion laughs'); a config has a few dozen")
    return raw


#: Most values (counted with every alias expanded) a parsed config may hold; the authors' have about 60.
MAX_CONFIG_VALUES = 10_000


def _expanded_size(value, limit: int) -> int:
    """How many values ``value`` holds with every shared (aliased) part counted each time it occurs, as
    anything that walks it (a check, a repr, ``json.dumps``) would; stops counting past ``limit``, so a
    structure that expands to 10^9 values costs ``limit`` steps."""
    count, stack = 0, [value]
    while stack and count <= limit:
        v = stack.pop()
        count += 1
        if isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return count


def load_config_text(text: str, where: str = "<text>") -> Config:
    """A validated config from YAML text (e.g. the ``config_yaml`` entry of a weights file)."""
    try:
        config = load_config(parse_yaml(text, where))
    except ConfigError as err:  # name the text's source, not "<dict>"
        raise ConfigError(str(err).replace("<dict>", where, 1)) from None
    config.source = where
    return config


def _yaml_problem(err) -> str:
    """PyYAML's error on one line: ``line L, column C: what is wrong``."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    words = [w for w in (getattr(err, "context", None), getattr(err, "problem", None)) if w]
    if mark is None or not words:
        return " ".join(str(err).split())
    return f"line {mark.line + 1}, column {mark.column + 1}: " + " ".join(" ".join(words).split())


def _kind(v) -> str:
    """'a list', 'a str', ... for messages about a value of the wrong type."""
    if v is None:
        return "empty (null)"
    name = type(v).__name__
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


def _check_network(net: dict, where: str) -> dict:
    unknown = set(net) - set(NETWORK_REQUIRED) - set(NETWORK_OPTIONAL)
    if unknown:
        raise ConfigError(f"{where}: Network: unknown key(s) {sorted(unknown)}")
    for key in NETWORK_REQUIRED:
        if key not in net:
            raise ConfigError(f"{where}: Network: missing required key '{key}'")
    out = {**NETWORK_OPTIONAL, **net}
    for key in NETWORK_NAMES:
        if out[key] is not None and not isinstance(out[key], str):
            raise ConfigError(f"{where}: Network: '{key}' must be a name (a string), got {_kind(out[key])}: "
                              f"{out[key]!r}")
    _positive_int(out, "n_steps", f"{where}: Network")
    if out["n_steps"] > MAX_STEPS:
        raise ConfigError(f"{where}: Network: 'n_steps' is {out['n_steps']}; at most {MAX_STEPS} time steps are "
                          f"supported (the paper uses 5 to 100)")
    _positive_int(out, "n_class", f"{where}: Network")
    _positive_int(out, "batch_size", f"{where}: Network")
    _positive_int(out, "epochs", f"{where}: Network")
    for key in ("tau_m", "tau_s"):
        if not _is_number(out[key]) or not 1 <= out[key] <= MAX_TAU:
            raise ConfigError(f"{where}: Network: '{key}' must be a number of time steps from 1 to {MAX_TAU:g} "
                              f"(the authors use 2 to 5), got {out[key]!r}")
    if not _is_number(out["lr"]) or not 0 < out["lr"] <= MAX_LR:
        raise ConfigError(
            f"{where}: Network.lr must be a positive number no larger than {MAX_LR} (AdamW's step size; "
            f"the authors use 5e-4), got {out['lr']!r}"
        )
    if out["time_window_us"] is not None and (not isinstance(out["time_window_us"], int)
                                              or isinstance(out["time_window_us"], bool) or out["time_window_us"] < 1):
        raise ConfigError(f"{where}: Network: 'time_window_us' must be a positive integer (microseconds per "
                          f"time step of event data), got {out['time_window_us']!r}")
    if out["event_binning"] not in EVENT_BINNINGS:
        raise ConfigError(f"{where}: Network: 'event_binning' must be one of {EVENT_BINNINGS}, got "
                          f"{out['event_binning']!r}")
    if out["loss"] not in LOSSES:
        raise ConfigError(f"{where}: Network: 'loss' must be one of {LOSSES}, got {out['loss']!r}")
    _check_arrays_keys(out, where)
    if out["loss"] == "kernel" and out["n_steps"] < 2:
        raise ConfigError(
            f"{where}: Network: 'n_steps' must be >= 2 with loss 'kernel', got {out['n_steps']}: the desired "
            f"spike train is silent at the first step, so with one step every target is 0 and there is nothing "
            f"to learn (losses 'count' and 'softmax' accept n_steps = 1)"
        )
    for key in ("desired_count", "undesired_count"):
        if out[key] is None and out["loss"] != "count":
            continue  # only the count loss uses them
        if not _is_number(out[key]):
            raise ConfigError(f"{where}: Network: key '{key}' must be a finite number"
                              f"{' (loss count needs it)' if out['loss'] == 'count' else ''}, got {out[key]!r}")
        if out["loss"] == "count" and not 0 <= out[key] <= out["n_steps"]:
            raise ConfigError(f"{where}: Network: '{key}' is {out[key]!r}; a neuron fires 0 to n_steps "
                              f"({out['n_steps']}) times, so a count lies in [0, {out['n_steps']}]")
    if out["loss"] == "count" and not out["undesired_count"] < out["desired_count"]:
        raise ConfigError(f"{where}: Network: 'undesired_count' ({out['undesired_count']!r}) must be below "
                          f"'desired_count' ({out['desired_count']!r}): the label neuron is to fire more than the others")
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
        if not isinstance(name, str) or not LAYER_NAME.match(name):
            raise ConfigError(f"{ctx}: a layer's name must be letters, digits, '_', '.' or '-', starting with a "
                              f"letter or '_' (it names the layer's arrays in weights files), got {name!r}")
        if not isinstance(cfg, dict):
            raise ConfigError(f"{ctx}: expected a mapping of settings, got {cfg!r}")
        kind = cfg.get("type")
        if not isinstance(kind, str) or kind not in LAYER_SCHEMA:
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
            _neuron_numbers(c, ctx)
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
            _neuron_numbers(c, ctx)
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
            if c["threshold"] is not None:
                _number(c, "threshold", ctx)  # the authors' files give one; pooling has no neurons and ignores it
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


#: Largest accepted size of ``weight_scale`` (the initial weights' multiplier; the authors use 1 to 5, and training
#: clips the weights to +-4 after every step, so a larger scale only overflows the first currents).
MAX_WEIGHT_SCALE = 1000.0
#: What a layer may be called (it becomes an array name in weights and checkpoint files).
LAYER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def _neuron_numbers(c: dict, ctx: str) -> None:
    """A spiking layer's ``threshold`` (> 0: at 0 or below a neuron fires with no input at all) and
    ``weight_scale`` (a finite number up to :data:`MAX_WEIGHT_SCALE` in size)."""
    _number(c, "threshold", ctx)
    if not c["threshold"] > 0:
        raise ConfigError(f"{ctx}: key 'threshold' must be > 0 (a neuron fires when u > threshold; at "
                          f"{c['threshold']!r} it fires without input), got {c['threshold']!r}")
    tiny, big = float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max)
    if not tiny <= c["threshold"] <= big:  # float32 would make it 0 (fires without input) or inf (never fires)
        raise ConfigError(f"{ctx}: key 'threshold' is {c['threshold']!r}, outside float32's range "
                          f"({tiny:.3g} to {big:.3g}), where the network computes; the authors use 1")
    _number(c, "weight_scale", ctx)
    if abs(c["weight_scale"]) > MAX_WEIGHT_SCALE:
        raise ConfigError(f"{ctx}: key 'weight_scale' is {c['weight_scale']!r}; at most {MAX_WEIGHT_SCALE:g} in size "
                          f"(the authors use 1 to 5; weights are clipped to +-4 after each step)")


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
