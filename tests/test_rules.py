"""reference.rules: what each learning rule decides lives in its Rule object (issue 29, part 2)."""
import functools

import numpy as np
import pytest

from reference.layers import init_conv_weight, init_conv_weight_kaiming
from reference.network import Network
from reference.options import NetOptions
from reference.paper2020 import paper2020_delta
from reference.rules import FINAL, PAPER2020, RULES, Rule, rule_for
from reference.surrogate import bptt_delta
from reference.tsslbp import tsslbp_delta
from test_core import TINY_CNN


def test_each_variant_decides_target_train_init_and_backward():
    assert (FINAL.target_filter, FINAL.desired_train(5), FINAL.init_conv) == ("double", None, init_conv_weight)
    assert PAPER2020.target_filter == "single" and PAPER2020.init_conv is init_conv_weight_kaiming
    np.testing.assert_array_equal(PAPER2020.desired_train(5), [0, 1, 0, 1, 1])
    final = FINAL.delta(NetOptions(intra=False, warmup="never"))
    assert final.func is tsslbp_delta and final.keywords == dict(inter=True, intra=False, warmup="never")
    era = PAPER2020.delta(NetOptions(variant="paper2020", rate_threshold=0.05))
    assert era.func is paper2020_delta and era.keywords == dict(intra=True, rate_threshold=0.05)
    assert PAPER2020.delta(NetOptions(variant="paper2020")).keywords["rate_threshold"] == 0.1


@pytest.mark.parametrize("variant", ["final", "paper2020"])
@pytest.mark.parametrize("backward", ["bptt", "bptt-detached"])
def test_bptt_baselines_keep_the_variants_target_and_init(variant, backward):
    rule = rule_for(variant, backward)
    base = RULES[variant]
    assert (rule.name, rule.target_filter, rule.init_conv) == (backward, base.target_filter, base.init_conv)
    delta = rule.delta(NetOptions(variant=variant, backward=backward))
    assert delta.func is bptt_delta and delta.keywords == dict(detach_reset=backward == "bptt-detached")


def test_network_asks_its_rule():
    net = Network(TINY_CNN, variant="paper2020")
    assert net.learning_rule is PAPER2020 and net.rule.func is paper2020_delta
    np.testing.assert_array_equal(net.target, Network(TINY_CNN, target_filter="single",
                                                      desired_pattern=[0, 1, 0, 1, 1]).target)


def test_a_new_variant_is_one_rule_object(monkeypatch):
    """Registering one Rule makes it a variant everywhere: options accept it, the network trains with it."""
    calls = []

    def half_delta(g, state, params, threshold=None, **kw):
        calls.append(1)
        delta, branch = tsslbp_delta(g, state, params, threshold)
        return delta / 2, branch

    rule = Rule("half", "single", lambda n: None, init_conv_weight, ("intra",), lambda o: functools.partial(half_delta))
    monkeypatch.setitem(RULES, "half", rule)
    net = Network(TINY_CNN, variant="half", seed=0)
    ref = Network(TINY_CNN, target_filter="single", seed=0)
    x = np.random.default_rng(0).random((4, *net.config.input_shape)).astype(np.float32) * 4
    y = np.arange(4)  # labels 0..3 of the 10 classes
    _, grads, _ = net.gradients(x, y)
    _, ref_grads, _ = ref.gradients(x, y)
    assert calls
    # the same forward (the rule's init is the final one's); the output layer's delta is halved, so its
    # weight gradient is exactly half (halving is exact in binary floating point, through the GEMM too)
    np.testing.assert_array_equal(grads["fc"], ref_grads["fc"] / 2)
    with pytest.raises(ValueError, match="warm-up switch"):
        NetOptions(variant="half", warmup="never")  # the rule does not take warmup
