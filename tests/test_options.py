"""NetOptions: the one object that holds, checks and records a run's network options (issue 29, part 3),
and every command that rebuilds a network from a file takes all of them from it (issue 30, item 6)."""
import json
import os
import re

import numpy as np
import pytest

from reference.network import Network
from reference.options import NetOptions
from reference.app.runs import CheckpointError, load_checkpoint
from test_core import TINY_CNN


def test_defaults_record_nothing_and_records_round_trip():
    assert NetOptions().record() == {}
    for given in ({"variant": "paper2020", "rate_threshold": 0.05}, {"target_filter": "single", "inter": False},
                  {"input_encoding": "authors", "count_of": "spikes", "dropout_unit": "row"},
                  {"backward": "bptt-detached"}, {"desired_pattern": [0, 1, 0, 1, 1]}):
        opts = NetOptions.from_record(given)
        assert opts.record() == given
        assert NetOptions.from_record(json.loads(json.dumps(opts.record()))) == opts
    assert NetOptions(warmup="per-neuron").record() == {}  # a default given explicitly is not recorded


def test_what_the_variant_decides():
    assert NetOptions().target_filter_used == "double"
    assert NetOptions(variant="paper2020").target_filter_used == "single"
    assert NetOptions(variant="paper2020", target_filter="double").target_filter_used == "double"
    assert NetOptions().desired_pattern_used(5) is None
    np.testing.assert_array_equal(NetOptions(variant="paper2020").desired_pattern_used(5), [0, 1, 0, 1, 1])
    assert NetOptions(variant="paper2020", desired_pattern=(1, 1, 1, 1, 1)).desired_pattern_used(5) == (1.0,) * 5


@pytest.mark.parametrize("kwargs, message", [
    (dict(variant="2019"), r"variant must be one of \['final', 'paper2020'\] \(--variant\)"),
    (dict(backward="adjoint"), "backward must be one of"),
    (dict(warmup="sometimes"), "warmup must be one of"),
    (dict(target_filter="triple"), r"target_filter must be one of \['double', 'single'\] \(--target-filter\)"),
    (dict(count_of="volts"), "count_of must be one of"),
    (dict(dropout_unit="pixel"), "dropout_unit must be one of"),
    (dict(input_encoding="rate"), "input_encoding must be one of"),
    (dict(inter="no"), "inter must be True or False"),
    (dict(desired_pattern=[0, 2]), "desired_pattern must be a sequence of 0 and 1"),
    (dict(desired_pattern=[]), "desired_pattern must be a sequence of 0 and 1"),
    (dict(rate_threshold=0.05), "it needs variant='paper2020'"),
    (dict(variant="paper2020", rate_threshold=1.5), r"rate_threshold must be in \[0, 1\]"),
    (dict(variant="paper2020", backward="bptt", rate_threshold=0.05), "it needs variant='paper2020'"),
    (dict(variant="paper2020", warmup="never"), "layer-wise warm-up switch"),
    (dict(variant="paper2020", inter=False), "layer-wise warm-up switch"),
])
def test_every_bad_option_is_one_line(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        NetOptions(**kwargs)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=message):
        Network(TINY_CNN, **kwargs)  # the network checks through the same object


def test_options_are_frozen_and_replace_checks_again():
    opts = NetOptions(variant="paper2020", rate_threshold=0.05)
    with pytest.raises(AttributeError):
        opts.variant = "final"
    with pytest.raises(ValueError, match="it needs variant='paper2020'"):
        opts.replace(variant="final")
    assert opts.replace(rate_threshold=0.0).rate_threshold == 0.0


def test_unknown_names_are_refused_naming_the_file():
    with pytest.raises(ValueError, match=r"w.npz: unknown network option\(s\) \['varient'\]"):
        NetOptions.from_record({"varient": "paper2020"}, where="w.npz")
    with pytest.raises(TypeError, match=r"unknown option\(s\) \['varient'\]"):
        Network(TINY_CNN, varient="paper2020")
    with pytest.raises(TypeError, match="either as options= or as keywords"):
        Network(TINY_CNN, options=NetOptions(), variant="paper2020")


def test_network_from_options_equals_network_from_keywords():
    kw = dict(variant="paper2020", rate_threshold=0.05, input_encoding="authors")
    a, b = Network(TINY_CNN, **kw), Network(TINY_CNN, options=NetOptions(**kw))
    assert a.net_options == b.net_options == NetOptions(**kw)
    np.testing.assert_array_equal(a.target, b.target)
    assert (a.variant, a.input_encoding, a.count_of) == ("paper2020", "authors", "psp")


def test_a_settings_json_with_an_unknown_variant_is_one_line(tmp_path):
    from reference.app.runs import save_weights

    net = Network(TINY_CNN, seed=0)
    path = tmp_path / "weights.npz"
    save_weights(str(path), net, {"epoch": 1})  # records no options: settings.json beside it is read
    assert load_checkpoint(str(path))["options"] == NetOptions()
    (tmp_path / "settings.json").write_text(json.dumps({"seed": 0, "net_options": {"variant": "2019"}}))
    with pytest.raises(CheckpointError, match="variant must be one of") as err:
        load_checkpoint(str(path))
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("backward", ["bptt", "bptt-detached"])
@pytest.mark.parametrize("option,flag", [(dict(inter=False), "--no-inter"), (dict(intra=False), "--no-intra"),
                                         (dict(warmup="never"), "--warmup"), (dict(warmup="always"), "--warmup")])
def test_bptt_refuses_the_tsslbp_terms_options(backward, option, flag):
    """Issue 30 (adversarial pass, 7 Dec): --backward bptt with --no-inter (or --no-intra, --warmup) trained
    bit for bit as plain BPTT while the files recorded inter=False.  An option no term reads is refused."""
    with pytest.raises(ValueError, match=re.escape(f"({flag}) does not apply to the rule '{backward}'")):
        NetOptions(backward=backward, **option)
    assert NetOptions(backward=backward).rule.name == backward
