"""Configs in the authors' YAML schema (reference.config): the shipped files load, errors name layer and key."""
import copy
import glob
import math
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from reference import config as config_module
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
    # issue 30: tau_s = 1e308 made every PSP zero (a silent network, no error); at most MAX_TAU
    (lambda c: c["Network"].update(tau_s=1e308), ["Network", "tau_s", "1e+308", "1e+06"]),
    (lambda c: c["Network"].update(tau_m=float("inf")), ["Network", "tau_m", "inf"]),
    # issue 30: thresholds float32 makes inf (never fires) or 0 (fires without input) were accepted
    (lambda c: c["Layers"]["output"].update(threshold=1e39), ["output", "threshold", "1e+39", "float32"]),
    (lambda c: c["Layers"]["output"].update(threshold=1e-300), ["output", "threshold", "1e-300", "float32"]),
    (lambda c: c["Network"].update(lr=-1), ["Network", "lr"]),
    (lambda c: c["Network"].update(lr=1e300), ["Network.lr", "1e+300"]),
    (lambda c: c["Network"].update(n_class=12), ["Network.n_class", "12", "output", "10"]),
    (lambda c: c["Network"].update(n_steps=1), ["Network", "n_steps", "kernel", "nothing to learn"]),
    (lambda c: c["Network"].update(rule="STBP"), ["Network", "rule", "STBP"]),
    (lambda c: c["Network"].update(loss="count", desired_count=None), ["Network", "desired_count"]),
    (lambda c: c["Network"].update(dataset="SVHN"), ["dataset", "SVHN", "input_shape"]),
    # issue 30, item 11: a list or a mapping where a name belongs was a TypeError deep in a lookup
    (lambda c: c["Network"].update(dataset=[1, 2]), ["Network", "'dataset' must be a name", "a list: [1, 2]"]),
    (lambda c: c["Network"].update(loss={"kernel": 1}), ["Network", "'loss' must be a name", "a dict"]),
    (lambda c: c["Network"].update(data_path=5), ["Network", "'data_path' must be a name", "an int"]),
    (lambda c: c["Layers"]["conv_1"].update(type=["conv"]), ["conv_1", "type"]),
    # the adversarial pass of 7 Dec: values that trained with exit 0 and meant nothing
    (lambda c: c["Layers"]["conv_1"].update(threshold=0), ["conv_1", "'threshold' must be > 0"]),
    (lambda c: c["Layers"]["FC_1"].update(threshold=-1), ["FC_1", "'threshold' must be > 0"]),
    (lambda c: c["Layers"]["FC_1"].update(weight_scale=1e300), ["FC_1", "weight_scale", "at most 1000"]),
    (lambda c: c["Network"].update(loss="count", desired_count=50, undesired_count=1), ["desired_count", "[0, 5]"]),
    (lambda c: c["Network"].update(loss="count", desired_count=-3, undesired_count=-1), ["desired_count", "[0, 5]"]),
    (lambda c: c["Network"].update(loss="count", desired_count=1, undesired_count=4),
     ["'undesired_count' (4) must be below 'desired_count' (1)"]),
    (lambda c: c["Layers"].update({"../../etc": c["Layers"].pop("output")}), ["'../../etc'", "a layer's name"]),
    (lambda c: c["Layers"]["conv_1"].update(threshold="high"), ["conv_1", "threshold"]),
    (lambda c: c["Layers"]["conv_1"].update(stride=0), ["conv_1", "stride"]),
    (lambda c: c["Layers"]["conv_1"].update(kernel_size=29), ["conv_1", "kernel_size"]),
    (lambda c: c["Layers"]["pooling_1"].update(stride=1), ["pooling_1", "stride"]),
    (lambda c: c["Layers"].update(output={"type": "pooling", "kernel_size": 1}), ["output", "last layer"]),
    (lambda c: c["Layers"].update(extra="conv"), ["extra", "mapping"]),
    (lambda c: c.update(Solver={}), ["Solver"]),
    (lambda c: c.pop("Network"), ["Network"]),
    (lambda c: c.update(Layers={}), ["Layers"]),
    # sixth pass: a list of layers was called "missing or empty"
    (lambda c: c.update(Layers=[1, 2]), ["section 'Layers' is a list", "mapping of layer names"]),
    (lambda c: c.update(Network="MNIST"), ["section 'Network' is a str", "mapping of settings"]),
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


TINY_MLP = {  # 784 -> 64 -> dropout -> 10, T = 5
    "Network": {"n_steps": 5, "dataset": "MNIST", "loss": "kernel", "n_class": 10, "tau_m": 5, "tau_s": 3},
    "Layers": {"hidden": {"type": "linear", "n_inputs": 784, "n_outputs": 64, "threshold": 1},
               "drop": {"type": "dropout", "p": 0.2},
               "output": {"type": "linear", "n_inputs": 64, "n_outputs": 10, "threshold": 1}},
}


def test_validating_a_dict_does_not_import_yaml():
    # The engine/application split: reading YAML is the application's job.  Numba imports PyYAML when it is
    # installed, so reference.config must not import Numba (reference.layers) either.
    code = (f"import sys, reference.config as c; c.load_config({TINY_MLP!r}); "
            "assert 'yaml' not in sys.modules, 'yaml imported'")
    env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


SMALL_YAML = """\
Network:
  n_steps: 5
  dataset: MNIST
  loss: kernel
  lr: 0.0005
  n_class: 10
  tau_m: 5
  tau_s: 3
Layers:
  hidden: {type: linear, n_inputs: 784, n_outputs: 64, threshold: 1}
  output:
    type: linear
    n_inputs: 64
    n_outputs: 10
    threshold: 1
"""


@pytest.mark.parametrize("line,text,replace,key,inside,first,second", [
    (5, "  lr: 0.1", False, "lr", "in Network", 5, 6),
    (10, "  hidden: {type: dropout}", False, "hidden", "in Layers", 10, 11),
    (14, "    n_outputs: 20", False, "n_outputs", "in Layers.output", 14, 15),
    (10, "  hidden: {type: linear, n_inputs: 784, n_inputs: 78, n_outputs: 64, threshold: 1}", True,
     "n_inputs", "in Layers.hidden", 10, 10),
    (15, "Network: {}", False, "Network", "at the top level", 1, 16),
])
def test_duplicate_yaml_keys_are_errors(tmp_path, line, text, replace, key, inside, first, second):
    # PyYAML keeps the last of two equal keys without a word; a second `lr:` or a second layer of the same
    # name must be an error naming the key and its lines.
    path = tmp_path / "small.yaml"
    path.write_text(SMALL_YAML, encoding="utf-8")
    assert load_config(path).network["lr"] == 5e-4
    lines = SMALL_YAML.splitlines()
    lines[line - 1:line] = [text] if replace else [lines[line - 1], text]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    for w in (str(path), f"line {second}: duplicate key '{key}' {inside}", f"first given at line {first}"):
        assert w in msg, f"{w!r} not in {msg!r}"


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    text = ("Network: {n_steps: 5, dataset: MNIST, loss: kernel, n_class: 10, tau_m: 5, tau_s: 3}\n"
            "Layers:\n"
            "  hidden: &lif {type: linear, n_inputs: 784, n_outputs: 10, threshold: 1}\n"
            "  output:\n"
            "    <<: *lif\n"
            "    n_inputs: 10\n")
    path = tmp_path / "merge.yaml"
    path.write_text(text, encoding="utf-8")
    assert dict(load_config(str(path)).layers)["output"]["n_inputs"] == 10


def _conv_last(kernel_size):
    """MNIST_CNN with its two linear layers replaced by a conv layer 40 -> 10 on the (40, 4, 4) pooled map."""
    c = raw()
    del c["Layers"]["FC_1"], c["Layers"]["output"]
    c["Layers"]["conv_out"] = {"type": "conv", "in_channels": 40, "out_channels": 10, "kernel_size": kernel_size,
                               "threshold": 1}
    return c


def test_n_class_must_be_the_last_layers_outputs():
    assert load_config(_conv_last(4)).layers[-1][1]["out_shape"] == (10, 1, 1)
    cfg = _conv_last(3)  # -> (10, 2, 2): 40 outputs for 10 classes
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    for w in ("Network.n_class", "10", "'conv_out'", "40", "C*H*W"):
        assert w in str(err.value), f"{w!r} not in {str(err.value)!r}"


@pytest.mark.parametrize("loss,ok", [("kernel", False), ("count", True), ("softmax", True)])
def test_one_time_step_only_without_the_kernel_loss(loss, ok):
    cfg = raw("NMNIST_CNN")
    cfg["Network"].update(n_steps=1, loss=loss)
    if loss == "count":  # counts that one step can hold (the config's are for its n_steps)
        cfg["Network"].update(desired_count=1, undesired_count=0)
    if ok:
        assert load_config(cfg).params.n_steps == 1
        return
    with pytest.raises(ConfigError, match=r"Network: 'n_steps' must be >= 2 with loss 'kernel'.*silent"):
        load_config(cfg)
    cfg["Network"]["n_steps"] = 2
    load_config(cfg)


@pytest.mark.parametrize("content,words", [
    (None, ["is a folder"]),
    (b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x9c\xa7\xff\xfe", ["not a YAML text file", "UTF-8"]),
    (b"Network:\x00\x00\n", ["not a YAML text file", "NUL"]),
    (b"", ["empty"]),
    (b"# nothing but a comment\n\n", ["empty"]),
    (b"- Network\n- Layers\n", ["top level is a list", "mapping"]),
    (b"42\n", ["top level is an int", "mapping"]),
    (b"Network:\n  n_steps: [5\nLayers: {\n", ["not valid YAML", "line 3"]),
])
def test_unreadable_files_give_one_line(tmp_path, content, words):
    path = tmp_path / "config.yaml"
    if content is None:
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"


@pytest.mark.parametrize("lr,ok", [
    (5e-4, True), (2e-4, True), (1, True), (1.0, True),
    (1.5, False), (1e300, False), (0, False), (-5e-4, False), (float("inf"), False), (float("nan"), False),
    ("5e-4", False), (True, False), (None, False),
])
def test_lr_is_positive_and_at_most_one(lr, ok):
    cfg = raw()
    cfg["Network"]["lr"] = lr
    if ok:
        assert load_config(cfg).network["lr"] == lr
        return
    with pytest.raises(ConfigError, match=r"Network\.lr must be a positive number no larger than 1"):
        load_config(cfg)


@pytest.mark.parametrize("text", ["lr: 1e300", "lr: .inf", "lr: .nan", "lr: 2"])
def test_absurd_lr_in_yaml_text(tmp_path, text):
    with open(os.path.join(CONFIGS, "MNIST_CNN.yaml"), encoding="utf-8") as fh:
        source = fh.read()
    path = tmp_path / "lr.yaml"
    path.write_text(source.replace("lr: 0.0005", text), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"Network\.lr"):
        load_config(path)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize("where,key", [
    ("Network", "tau_m"), ("Network", "tau_s"), ("Network", "desired_count"), ("Network", "undesired_count"),
    ("conv_1", "threshold"), ("conv_1", "weight_scale"), ("FC_1", "threshold"), ("FC_1", "weight_scale"),
    ("pooling_1", "theta"), ("pooling_1", "threshold"), ("dropout_1", "p"),
])
def test_non_finite_numbers_are_errors(tmp_path, where, key, value):
    # `.inf` and `.nan` load as floats from YAML text; every number a config gives must be finite.
    cfg = raw("CIFAR10")
    (cfg["Network"] if where == "Network" else cfg["Layers"][where])[key] = value
    path = tmp_path / "nonfinite.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    assert (".nan" if value != value else ".inf") in path.read_text(encoding="utf-8")
    for source in (cfg, path):
        with pytest.raises(ConfigError) as err:
            load_config(source)
        msg = str(err.value)
        assert where in msg and key in msg, msg
    if where == "Network" and key.endswith("_count"):  # also with the loss that uses them
        cfg["Network"]["loss"] = "count"
        with pytest.raises(ConfigError, match=key):
            load_config(cfg)


def test_activation_bytes_by_hand():
    cfg = load_config(TINY_MLP)
    tn = 5 * 20  # T * N
    a0 = tn * 784
    hidden, drop, output = tn * 64, tn * 64, tn * 10
    forward = a0 + (hidden + hidden) + drop + (output + output)  # outputs + du of spiking layers
    spikes = hidden + output  # uint8, recorded with du
    backward = (hidden + a0) + drop + (output + drop)  # delta of spiking layers + one input gradient per layer
    branch = hidden + output  # int8
    assert forward == 99_600 and backward == 98_600 and branch == spikes == 7_400
    assert cfg.activation_bytes(20) == 4 * (forward + backward) + spikes + branch == 807_600
    assert cfg.activation_bytes(20, dtype_size=8, training=False) == 8 * forward + spikes
    assert cfg.activation_bytes(40) == 2 * cfg.activation_bytes(20)  # linear in the batch size


def test_activation_bytes_counts_the_im2col_buffer():
    cfg = load_config({  # conv 1->4 k3 stride 2 padding 1 (28 -> 14), pooling 2 (-> 7), linear 196 -> 10
        "Network": {"n_steps": 5, "dataset": "MNIST", "loss": "kernel", "n_class": 10, "tau_m": 5, "tau_s": 3},
        "Layers": {"conv": {"type": "conv", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "stride": 2,
                            "padding": 1, "threshold": 1},
                   "pool": {"type": "pooling", "kernel_size": 2},
                   "output": {"type": "linear", "n_inputs": 196, "n_outputs": 10, "threshold": 1}},
    })
    tn = 5 * 2
    a0, conv, cols, pool, out = tn * 784, tn * 4 * 14 * 14, tn * 14 * 14 * (3 * 3 * 1), tn * 4 * 7 * 7, tn * 10
    forward = a0 + 2 * conv + cols + pool + 2 * out  # outputs, du of the spiking layers, im2col columns
    backward = (conv + a0) + conv + (out + pool)
    assert cfg.activation_bytes(2, training=False) == 4 * forward + conv + out  # + uint8 spikes
    assert cfg.activation_bytes(2) == 4 * (forward + backward) + 2 * (conv + out)  # + spikes, branch


@pytest.mark.parametrize("name", AUTHORS)
def test_activation_bytes_of_the_authors_configs(name):
    cfg = load_config(os.path.join(CONFIGS, f"{name}.yaml"))
    n = cfg.network["batch_size"]
    train, infer = cfg.activation_bytes(n), cfg.activation_bytes(n, training=False)
    assert 0 < infer < train < cfg.activation_bytes(n, dtype_size=8)
    # at least every layer's output and state, at most a few times that
    outs = sum(math.prod(c["out_shape"]) for _, c in cfg.layers) * cfg.params.n_steps * n * 4
    assert outs < train < 20 * outs


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "50"])
def test_activation_bytes_rejects_bad_sizes(bad):
    cfg = load_config(TINY_MLP)
    with pytest.raises(ValueError, match="batch_size"):
        cfg.activation_bytes(bad)
    with pytest.raises(ValueError, match="dtype_size"):
        cfg.activation_bytes(10, dtype_size=bad)


def test_a_device_or_huge_file_as_config_is_one_line(tmp_path):
    """--config /dev/zero said 'out of memory (): use a smaller batch' (issue 30, messages)."""
    from reference.config import ConfigError, MAX_CONFIG_BYTES, load_config

    with pytest.raises(ConfigError, match="/dev/zero: over 1024 KiB, not a config file"):
        load_config("/dev/zero")
    big = tmp_path / "big.yaml"
    big.write_text("# x\n" * (MAX_CONFIG_BYTES // 4 + 1))
    with pytest.raises(ConfigError, match="not a config file"):
        load_config(str(big))


def test_a_billion_laughs_is_refused_at_once(tmp_path):
    """Issue 30 (adversarial pass, 7 Dec): nine nested aliases (646 bytes) in a value the checks walk made
    `train` run out of memory (4.4 GB after 90 s).  The parsed config is sized, aliases expanded, with a
    bounded count first; a config file of this size and the same text inside a weights file fail at once."""
    import time

    from reference.config import MAX_CONFIG_VALUES, load_config_text

    rows = ["&a [" + ", ".join(["lol"] * 10) + "]"] + [
        f"&{b} [" + ", ".join([f"*{a}"] * 10) + "]" for a, b in zip("abcdefgh", "bcdefghi")]
    text = ("Network: {n_steps: 5, tau_m: 5, tau_s: 3, n_class: 10, loss: kernel, dataset: MNIST,\n"
            f"  batch_size: [{', '.join(rows)}]}}\nLayers: {{out: {{type: linear, n_inputs: 784, n_outputs: 10}}}}\n")
    path = tmp_path / "laughs.yaml"
    path.write_text(text)
    for load in (lambda: load_config(str(path)), lambda: load_config_text(text, "weights.npz:config_yaml")):
        t0 = time.perf_counter()
        with pytest.raises(ConfigError, match=f"expands to more than {MAX_CONFIG_VALUES:,} values"):
            load()
        assert time.perf_counter() - t0 < 5  # measured 0.01 s; the unbounded walk took minutes
    for name in os.listdir(os.path.join(ROOT, "configs")):  # the shipped configs stay far below the bound
        if name.endswith(".yaml"):
            assert load_config(os.path.join(ROOT, "configs", name))


def test_a_config_nested_too_deeply_is_one_line(tmp_path):
    """Issue 30: 500 nested '[' made PyYAML's recursive parser raise RecursionError (a traceback)."""
    path = tmp_path / "deep.yaml"
    path.write_text("Network: " + "[" * 500 + "]" * 500 + "\n")
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_config(str(path))
