"""The options that make a run's network, in one frozen object checked once.

Everything beyond the config that decides what a network computes: which rule (``variant``,
``backward``), which of its terms (``inter``, ``intra``, ``warmup``, the paper-era ``rate_threshold``),
the loss's target (``target_filter``, ``desired_pattern``), how the input is encoded
(``input_encoding``), what "spike count" means for prediction (``count_of``) and what one dropout mask
value covers (``dropout_unit``).  :class:`~reference.network.Network` takes them as keywords and keeps a
:class:`NetOptions`; every weights and checkpoint file records :meth:`NetOptions.record` (only the
options that differ from the defaults, the ``net_options`` of ``settings.json``), and every command and
engine that rebuilds a network from a file reads them back with :meth:`NetOptions.from_record`, so a run
is evaluated, diagnosed and resumed as it was trained.

An invalid combination is refused here, once, with a message that names both the Python keyword and the
command-line flag.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .layers import Dropout
from .losses import TARGET_FILTERS
from .paper2020 import check_rate_threshold
from .rules import RULES, Rule, rule_for
from .tsslbp import WARMUP_MODES

VARIANTS = tuple(RULES)
BACKWARDS = ("tsslbp", "bptt", "bptt-detached")
#: ``input_encoding`` -> the division :func:`reference.neuron.encode_input` uses (None — the PSP filter).
INPUT_ENCODINGS = {"psp": None, "authors": "true", "authors-cuda": "reciprocal"}
COUNT_OF = ("psp", "spikes")


@dataclass(frozen=True)
class NetOptions:
    """A run's network options (defaults: the authors' final code).

    Attributes
    ----------
    variant : {"final", "paper2020"}
        The rule of the authors' final code, or the paper's time (``reference.paper2020``: its backward,
        its layer-wise warm-up switch, its target ``[0, 1, 0, 1, 1]`` filtered once, Kaiming conv init).
    backward : {"tsslbp", "bptt", "bptt-detached"}
        TSSL-BP, or the surrogate-gradient BPTT baseline (:func:`reference.surrogate.bptt_delta`; the
        TSSL-BP options do not apply to it), through the reset or, as SpyTorch and snnTorch do, with the
        reset detached.
    inter, intra : bool
        Keep the inter-neuron and the intra-neuron term (ablations: ``--no-inter``, ``--no-intra``).
    warmup : {"per-neuron", "always", "never"}
        The final rule's warm-up (``reference.tsslbp``).
    target_filter : {"double", "single"} or None
        The kernel loss's target filtered twice (the final code) or once (the paper); None: the variant's.
    desired_pattern : tuple of 0/1 floats or None
        The label neuron's desired train; None: the variant's (:func:`reference.losses.desired_spike_train`,
        :func:`reference.paper2020.desired_train_2020`).
    count_of : {"psp", "spikes"}
        What the prediction counts: the output PSP summed over time (the authors') or the spikes.
    dropout_unit : {"feature", "row", "sample"}
        What one dropout mask value covers (:class:`reference.layers.Dropout`); "row" is the authors' code
        under PyTorch 1.x, "sample" under PyTorch 2.
    input_encoding : {"psp", "authors", "authors-cuda"}
        How the input is filtered into ``a_0`` (:meth:`reference.network.Network.encode`): "psp" the same
        filter as every layer's output, :func:`reference.neuron.psp`; "authors" the authors' operation
        order (:func:`reference.neuron.encode_input`, as PyTorch computes it on a CPU); "authors-cuda" the
        same with CUDA's division by reciprocal.  Equal in exact arithmetic; in float32 they move a few
        spike decisions in millions (measured in :func:`reference.neuron.encode_input`).  The default
        keeps the committed results reproducible.
    rate_threshold : float in [0, 1] or None
        paper2020 only: the firing rate a layer must exceed (over the whole batch) to take the TSSL-BP
        delta rather than the warm-up surrogate; None: :data:`reference.paper2020.RATE_THRESHOLD_2020`
        (0.1, the camera-ready's; their code of December 2020 used 0.05).  0 keeps the TSSL-BP delta in
        every layer that fires at all.

    Raises
    ------
    ValueError
        An unknown value, or a combination the rules do not have (one line, naming the flag).
    """

    variant: str = "final"
    backward: str = "tsslbp"
    inter: bool = True
    intra: bool = True
    warmup: str = "per-neuron"
    target_filter: str | None = None
    desired_pattern: tuple | None = None
    count_of: str = "psp"
    dropout_unit: str = "feature"
    input_encoding: str = "psp"
    rate_threshold: float | None = None

    def __post_init__(self):
        def choice(name, allowed):
            value = getattr(self, name)
            if not isinstance(value, str) or value not in allowed:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"{name} must be one of {sorted(allowed)} ({flag}), got {value!r}")

        choice("variant", RULES)  # every registered rule (reference.rules.RULES)
        choice("backward", BACKWARDS)
        choice("warmup", WARMUP_MODES)
        choice("count_of", COUNT_OF)
        choice("dropout_unit", Dropout.UNITS)
        choice("input_encoding", INPUT_ENCODINGS)
        if self.target_filter is not None:
            choice("target_filter", TARGET_FILTERS)
        for name in ("inter", "intra"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                if value in (0, 1):  # numpy bools, 0/1 from a file
                    object.__setattr__(self, name, bool(value))
                else:
                    raise ValueError(f"{name} must be True or False, got {value!r}")
        if self.desired_pattern is not None:
            try:
                pattern = tuple(float(v) for v in self.desired_pattern)
            except (TypeError, ValueError):
                raise ValueError(f"desired_pattern must be a sequence of 0 and 1, got {self.desired_pattern!r}") from None
            if not pattern or any(v not in (0.0, 1.0) for v in pattern):
                raise ValueError(f"desired_pattern must be a sequence of 0 and 1, got {self.desired_pattern!r}")
            object.__setattr__(self, "desired_pattern", pattern)
        takes = self.rule.options  # the options the selected rule reads (reference.rules)
        if self.rate_threshold is not None:
            if "rate_threshold" not in takes:
                raise ValueError("rate_threshold is the paper-era rule's layer-wise warm-up switch (--rate-threshold): "
                                 "it needs variant='paper2020' (--variant paper2020) and "
                                 "backward='tsslbp'")
            object.__setattr__(self, "rate_threshold", check_rate_threshold(self.rate_threshold))
        unread = [flag for name, flag, changed in (("inter", "inter=False (--no-inter)", not self.inter),
                                                   ("intra", "intra=False (--no-intra)", not self.intra),
                                                   ("warmup", f"warmup={self.warmup!r} (--warmup)",
                                                    self.warmup != "per-neuron"))
                  if changed and name not in takes]
        if unread:
            why = ("surrogate-gradient BPTT has no inter-neuron, intra-neuron or warm-up term to switch"
                   if self.backward != "tsslbp" else
                   "variant 'paper2020' (--variant paper2020) has its own layer-wise warm-up switch and keeps "
                   "the inter-neuron term")
            raise ValueError(f"{' and '.join(unread)} {'does' if len(unread) == 1 else 'do'} not apply to the rule "
                             f"'{self.rule.name}': {why}; these options are the final TSSL-BP rule's")

    @classmethod
    def names(cls) -> tuple:
        """The option names, in order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def defaults(cls) -> dict:
        """``{name: default}`` of every option."""
        return {f.name: f.default for f in dataclasses.fields(cls)}

    @classmethod
    def from_record(cls, record: dict | None, where: str = "net_options") -> "NetOptions":
        """The options a file recorded (:meth:`record`'s dict; ``None`` or ``{}``: the defaults).

        Raises ``ValueError`` naming ``where`` for an unknown option name or value.
        """
        record = dict(record or {})
        unknown = sorted(set(record) - set(cls.names()))
        if unknown:
            raise ValueError(f"{where}: unknown network option(s) {unknown}; known: {list(cls.names())}")
        try:
            return cls(**record)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None

    def record(self) -> dict:
        """The options that differ from the defaults, JSON-friendly: what files record as ``net_options``."""
        out = {}
        for name, default in self.defaults().items():
            value = getattr(self, name)
            if value != default:
                out[name] = list(value) if isinstance(value, tuple) else value
        return out

    def replace(self, **changes) -> "NetOptions":
        """A copy with ``changes`` (checked again)."""
        return dataclasses.replace(self, **changes)

    @property
    def rule(self) -> Rule:
        """The learning rule these options select (:mod:`reference.rules`): the variant's, or a BPTT
        baseline with the variant's target and initialisation."""
        return rule_for(self.variant, self.backward)

    # What the rule decides where an option is left at None.
    @property
    def target_filter_used(self) -> str:
        """The kernel loss's target filter: ``target_filter``, else the rule's ("single" for paper2020)."""
        return self.target_filter or self.rule.target_filter

    def desired_pattern_used(self, n_steps: int):
        """The desired train's pattern: ``desired_pattern``, else the rule's (None: the final code's)."""
        if self.desired_pattern is not None:
            return self.desired_pattern
        return self.rule.desired_train(n_steps)
