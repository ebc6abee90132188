"""Configs in the authors' YAML schema (reference.config): the shipped files load, errors name layer and key."""
import copy
import glob
import os
import shutil

import pytest
import yaml

from conftest import ROOT
from reference.config import ConfigError, load_config

CONFIGS = os.path.join(ROOT, "configs")
AUTHORS = ["MNIST_CNN", "FashionMNIST_400_400", "FashionMNIST_CNN", "CIFAR10", "NMNIST_CNN"]


def raw(name="MNIST_CNN"):
    with open(os.path.join(CONFIGS, f"{name}.yaml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize("name", AUTHORS)
def test_authors_configs_load(name):
    cfg = load_config(os.path.join(CONFIGS, f"{name}.yaml"))
    assert cfg.network["tau_m"] in (5, 8) and cfg.network["rule"] == "TSSLBP"
    assert cfg.layers[-1][0] == "output" and cfg.layers[-1][1]["out_shape"] == (10, 1, 1)


def test_every_shipped_config_loads():
    files = sorted(glob.glob(os.path.join(CONFIGS, "*.yaml")))
    assert {os.path.basename(f)[:-5] for f in files} >= set(AUTHORS)
    for f in files:
        load_config(f)


@pytest.mark.parametrize("name,layer,in_shape,out_shape", [
    ("MNIST_CNN", "FC_1", (40, 4, 4), (300, 1, 1)),
    ("MNIST_CNN", "pooling_1", (15, 24, 24), (15, 12, 12)),
    ("FashionMNIST_CNN", "FC_1", (64, 7, 7), (1024, 1, 1)),
    ("CIFAR10", "FC_1", (256, 8, 8), (1024, 1, 1)),
    ("NMNIST_CNN", "output", (64, 6, 6), (10, 1, 1)),
    ("FashionMNIST_400_400", "hidden_1", (1, 28, 28), (400, 1, 1)),
])
def test_shapes_follow_the_layers(name, layer, in_shape, out_shape):
    cfg = load_config(os.path.join(CONFIGS, f"{name}.yaml"))
    c = dict(cfg.layers)[layer]
    assert c["in_shape"] == in_shape and c["out_shape"] == out_shape


def test_defaults_filled_in():
    cfg = load_config(os.path.join(CONFIGS, "CIFAR10.yaml"))
    layers = dict(cfg.layers)
    assert layers["pooling_1"]["theta"] == 1.1  # default pooling weight; its 'threshold' key is unused
    assert layers["dropout_1"]["p"] == 0.2
    assert layers["conv_1"]["stride"] == (1, 1) and layers["conv_1"]["dilation"] == (1, 1)
    assert layers["conv_1"]["padding"] == (1, 1) and layers["conv_1"]["kernel_size"] == (3, 3)
    assert cfg.weighted_layers == ["conv_1", "conv_2", "conv_3", "conv_4", "conv_5", "FC_1", "FC_2", "output"]
    p = cfg.params
    assert (p.tau_m, p.tau_s, p.n_steps) == (5.0, 3.0, 5)


def test_authors_file_text_loads_unchanged(tmp_path):
    src = os.path.join(CONFIGS, "MNIST_CNN.yaml")
    dst = tmp_path / "their_MNIST_CNN.yaml"
    shutil.copyfile(src, dst)
    text_before = dst.read_text(encoding="utf-8")
    cfg = load_config(str(dst))
    assert dst.read_text(encoding="utf-8") == text_before  # loading never rewrites the file
    ref = load_config(src)
    assert cfg.network == ref.network and cfg.layers == ref.layers
    assert cfg.raw == yaml.safe_load(text_before)  # the parsed mapping is kept as it was
    assert cfg.source == str(dst)
    # a dict loads the same as the file
    assert load_config(yaml.safe_load(text_before)).layers == cfg.layers


def _kernel_half(c):
    c["Layers"]["conv_1"]["kernel_size"] = 2.5


def _pool_half(c):
    c["Layers"]["pooling_1"]["kernel_size"] = 1.5


@pytest.mark.parametrize("edit,words", [
    (lambda c: c["Layers"]["pooling_1"].update(type="maxpool"), ["pooling_1", "type", "maxpool"]),
    (lambda c: c["Layers"]["conv_1"].update(bias=True), ["conv_1", "bias"]),
    (lambda c: c["Layers"]["output"].pop("n_outputs"), ["output", "n_outputs", "missing"]),
    (lambda c: c["Layers"]["conv_2"].pop("in_channels"), ["conv_2", "in_channels", "missing"]),
    (lambda c: c["Layers"]["FC_1"].update(n_inputs=641), ["FC_1", "n_inputs", "641", "640"]),
    (lambda c: c["Layers"]["output"].update(n_inputs=299), ["output", "n_inputs", "300"]),
    (lambda c: c["Layers"]["conv_2"].update(in_channels=14), ["conv_2", "in_channels", "14", "15"]),
    (lambda c: c["Network"].update(loss="mse"), ["Network", "loss", "mse"]),
    (_kernel_half, ["conv_1", "kernel_size", "2.5"]),
    (_pool_half, ["pooling_1", "kernel_size", "1.5"]),
    (lambda c: c["Network"].pop("n_steps"), ["Network", "n_steps", "missing"]),
    (lambda c: c["Network"].pop("tau_s"), ["Network", "tau_s"]),
    (lambda c: c["Network"].update(momentum=0.9), ["Network", "momentum"]),
    (lambda c: c["Network"].update(n_steps=0), ["Network", "n_steps"]),
    (lambda c: c["Network"].update(tau_m=0.5), ["Network", "tau_m"]),
    (lambda c: c["Network"].update(lr=-1), ["Network", "lr"]),
    (lambda c: c["Network"].update(rule="STBP"), ["Network", "rule", "STBP"]),
    (lambda c: c["Network"].update(loss="count", desired_count=None), ["Network", "desired_count"]),
    (lambda c: c["Network"].update(dataset="SVHN"), ["dataset", "SVHN", "input_shape"]),
    (lambda c: c["Layers"]["conv_1"].update(threshold="high"), ["conv_1", "threshold"]),
    (lambda c: c["Layers"]["conv_1"].update(stride=0), ["conv_1", "stride"]),
    (lambda c: c["Layers"]["conv_1"].update(kernel_size=29), ["conv_1", "kernel_size"]),
    (lambda c: c["Layers"]["pooling_1"].update(stride=1), ["pooling_1", "stride"]),
    (lambda c: c["Layers"].update(output={"type": "pooling", "kernel_size": 1}), ["output", "last layer"]),
    (lambda c: c["Layers"].update(extra="conv"), ["extra", "mapping"]),
    (lambda c: c.update(Solver={}), ["Solver"]),
    (lambda c: c.pop("Network"), ["Network"]),
    (lambda c: c.update(Layers={}), ["Layers"]),
])
def test_errors_name_the_layer_and_key(edit, words):
    cfg = raw()
    edit(cfg)
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    msg = str(err.value)
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


def test_error_on_linear_mismatch_states_expected_number():
    cfg = raw("FashionMNIST_CNN")
    cfg["Layers"]["FC_1"]["n_inputs"] = 3000
    with pytest.raises(ConfigError, match=r"layer 'FC_1': key 'n_inputs' is 3000 .* gives 3136 values"):
        load_config(cfg)


def test_other_input_shape_given_explicitly():
    cfg = raw("FashionMNIST_400_400")
    cfg["Network"]["dataset"] = "custom"
    cfg["Layers"]["hidden_1"]["n_inputs"] = 2 * 5 * 5
    c = load_config(cfg, input_shape=(2, 5, 5))
    assert c.input_shape == (2, 5, 5) and c.layers[0][1]["in_shape"] == (2, 5, 5)


def test_file_not_found_and_invalid_yaml(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not found") as err:
        load_config(missing)
    assert missing in str(err.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("Network:\n  n_steps: [5\nLayers: {\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_config(str(bad))
    assert str(bad) in str(err.value)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just a string\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(str(scalar))


def test_config_error_is_a_value_error_and_input_not_mutated():
    assert issubclass(ConfigError, ValueError)
    cfg = raw()
    before = copy.deepcopy(cfg)
    load_config(cfg)
    assert cfg == before  # defaults are filled into copies, not into the caller's dict


def test_exponent_floats_without_a_dot_load_as_numbers(tmp_path):
    # YAML 1.1 (PyYAML's safe_load) reads `5e-4` as a string; a config with `lr: 5e-4` must still work.
    with open(os.path.join(CONFIGS, "FashionMNIST_400_400.yaml"), encoding="utf-8") as fh:
        text = fh.read()
    assert "lr: 0.0005" in text
    path = tmp_path / "exp.yaml"
    path.write_text(text.replace("lr: 0.0005", "lr: 5e-4"), encoding="utf-8")
    assert load_config(path).network["lr"] == 0.0005
    assert load_config(os.path.join(CONFIGS, "FashionMNIST_400_400.yaml")).network["lr"] == 0.0005
