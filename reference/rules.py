"""The learning rules a network can train with, one object each: what a variant decides, in one place.

A :class:`Rule` holds everything that differs between the authors' final code (``final``), their code
at the NeurIPS camera-ready (``paper2020``) and the surrogate-gradient BPTT baselines (``bptt``,
``bptt-detached``): the spiking layers' backward, the loss target's filter and desired train, the conv
layers' initialisation (and, inside the backward, the clamp of ``1/du``).  :class:`~reference.options.NetOptions` picks the rule
(:attr:`~reference.options.NetOptions.rule`) and :class:`~reference.network.Network` asks it, so no
module branches on a variant's name.  Adding a variant is one new :class:`Rule` in :data:`RULES` and its
tests; paper-notes sections 3 and 7 give the equations, :mod:`reference.tsslbp`,
:mod:`reference.paper2020` and :mod:`reference.surrogate` implement them.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from .layers import init_conv_weight, init_conv_weight_kaiming
from .paper2020 import check_rate_threshold, desired_train_2020, paper2020_delta
from .surrogate import bptt_delta
from .tsslbp import tsslbp_delta


@dataclass(frozen=True)
class Rule:
    """What one learning rule decides.

    Attributes
    ----------
    name : str
        The rule's name: the ``variant`` (``final``, ``paper2020``) or the ``backward`` (``bptt``,
        ``bptt-detached``) that selects it.
    target_filter : {"double", "single"}
        The kernel loss's target filter when the options leave it unset.
    desired_train : callable ``n_steps -> pattern or None``
        The label neuron's desired train when the options leave it unset (None: the final code's,
        :func:`reference.losses.desired_spike_train`).
    init_conv : callable
        The conv layers' weight initialisation (:mod:`reference.layers`).
    options : tuple of str
        The rule's own options it reads from :class:`~reference.options.NetOptions` (of ``inter``,
        ``intra``, ``warmup``, ``rate_threshold``); giving another one a non-default value is refused.  The
        BPTT baselines read none of them (their backward has no such terms), so they refuse all four.
    make_delta : callable ``NetOptions -> delta``
        Builds the spiking layers' backward, ``delta(g, state, params, threshold) -> (delta, branch)``, for
        a run's options (which terms, which warm-up, the layer switch).  The clamp of ``1/du`` is the
        backward's own (8 in the final code, :data:`reference.params.MAX_INV_DU`; 10 at the camera-ready,
        :data:`reference.paper2020.MAX_INV_DU_2020`).
    """

    name: str
    target_filter: str
    desired_train: Callable
    init_conv: Callable
    options: tuple
    make_delta: Callable

    def delta(self, options):
        """The spiking layers' backward for ``options`` (:class:`~reference.options.NetOptions`)."""
        return self.make_delta(options)


def _final_code(n_steps):
    return None


FINAL = Rule("final", "double", _final_code, init_conv_weight, ("inter", "intra", "warmup"),
             lambda o: functools.partial(tsslbp_delta, inter=o.inter, intra=o.intra, warmup=o.warmup))
PAPER2020 = Rule("paper2020", "single", desired_train_2020, init_conv_weight_kaiming, ("intra", "rate_threshold"),
                 lambda o: functools.partial(paper2020_delta, intra=o.intra,
                                             rate_threshold=check_rate_threshold(o.rate_threshold)))


def _bptt(detach: bool):
    return lambda o: functools.partial(bptt_delta, detach_reset=detach)


#: The variants' rules by name (the BPTT baselines are built from a variant's by :func:`rule_for`).
RULES = {rule.name: rule for rule in (FINAL, PAPER2020)}


def rule_for(variant: str, backward: str) -> Rule:
    """The rule a run trains with: its variant's, or a BPTT baseline that keeps the variant's loss target
    and initialisation (only the spiking layers' backward changes)."""
    base = RULES[variant]
    if backward == "tsslbp":
        return base
    # the TSSL-BP terms' options do not apply to BPTT: NetOptions refuses them (they were accepted and
    # ignored until 7 Dec 2026, while files recorded them)
    return Rule(backward, base.target_filter, base.desired_train, base.init_conv, (),
                _bptt(backward == "bptt-detached"))
