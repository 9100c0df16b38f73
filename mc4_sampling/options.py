"""The sampling options: one declaration (:class:`SamplingOptions`) and one validation
(:func:`check_sampling_options`), shared by the builder's :class:`~mc4_sampling.Mc4SamplingConfig`,
:func:`~mc4_sampling.sample_dataset`, ``publish``, the command line and the trainer's ``data.sampling``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import Any, Sequence

from .errors import ConfigError, invalid_choice
from .perplexity import MODES
from .reader import BAD_RECORD_POLICIES
from .scoring import check_scorer_options
from .weightings import WEIGHTINGS, get_weighting


@dataclass
class SamplingOptions:
    """What decides which documents are kept (the same names in every entry point).

    Attributes:
        sampling_method: a registered weighting: ``none``, ``random``, ``stepwise``, ``gaussian``,
            ``threshold``, ``pareto`` (:mod:`mc4_sampling.weightings`).
        sampling_factor: the weighting's factor; default: the calibration file's, the scorer's, then
            BERTIN's (random 0.5, gaussian 0.78, stepwise 1.5e5 for BERTIN's boundaries), else 1.
        validation_sampling_factor: factor for the validation split; unset, it is not sampled.
        width: gaussian width (default 9/2).
        boundaries: three increasing scores (quartiles) for stepwise/gaussian; default: the scorer's.
        weighting_options: the weighting's further parameters: threshold ``{"low": .., "high": ..}`` (scores)
            or, with a calibration file, ``{"top": 0.1}``, ``{"bottom": 0.5}``, ``{"band": "head"}``
            (fractions; CCNet's head/middle/tail), pareto ``{"alpha": ..}``.
        scorer: ``None`` (KenLM perplexity, or the score column when ``score_column`` is set), a
            registered name (``kenlm``, ``fasttext``, ``transformers``, ``column``), a
            :class:`~mc4_sampling.scoring.Scorer`, or a callable ``texts -> scores``.
        scorer_model: the fastText ``.bin`` or transformers folder (a local path or a Hub location).
        scorer_options: the scorer's options (fastText ``label``; transformers ``task``, ``label``,
            ``batch_size``, ``device``...; every scorer ``higher_is_better``).
        score_column: a column of the data that already holds the scores (nothing is scored).
        perplexity_model, perplexity_mode: the KenLM scorer's model and mode (see README).
        calibration: a calibration file (``mc4-sampling calibrate``), in place of ``boundaries``,
            ``sampling_factor``, ``width`` and ``weighting_options``.
        seed: seed of the keep decisions.
        return_perplexity, return_score: add the score to every kept document (``perplexity`` for
            KenLM, ``score`` otherwise); the two names mean the same.
        on_bad_record: ``raise`` or ``skip`` (skip and count bad records, unusable scores included).
    """

    sampling_method: str = "none"
    sampling_factor: float | None = None
    validation_sampling_factor: float | None = None
    width: float | None = None
    boundaries: Sequence[float] | None = None
    weighting_options: dict | None = None
    scorer: Any = None
    scorer_model: Any = None
    scorer_options: dict | None = None
    score_column: str | None = None
    perplexity_model: Any = None
    perplexity_mode: str | None = None
    calibration: str | None = None
    seed: int = 2021
    return_perplexity: bool = False
    return_score: bool = False
    on_bad_record: str = "raise"


#: every option name, in declaration order
OPTION_NAMES = tuple(f.name for f in fields(SamplingOptions))
#: the options a calibration file replaces
CALIBRATED = ("boundaries", "sampling_factor", "width", "weighting_options")


def option(options, name: str):
    """``options.name``, or its :class:`SamplingOptions` default when the object lacks it."""
    return getattr(options, name, SamplingOptions.__dataclass_fields__[name].default)


def wants_score(options) -> bool:
    """Whether kept documents carry their score (``return_perplexity`` or ``return_score``)."""
    return bool(option(options, "return_perplexity") or option(options, "return_score"))


def is_number(x) -> bool:
    """A finite int or float (not a bool, not NaN or infinite)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def is_int(x) -> bool:
    """An int that is not a bool."""
    return isinstance(x, int) and not isinstance(x, bool)


def check_sampling_options(options, positive=("sampling_factor", "width")) -> None:
    """Check the options every sampler shares, each :class:`ConfigError` naming the option and its
    valid range: the method, the ``positive`` finite numbers, ``boundaries`` (made a tuple of
    floats), ``weighting_options``, the scorer options, ``seed``, ``return_perplexity``/``return_score``,
    ``perplexity_mode``, ``on_bad_record`` and ``calibration`` (which replaces ``boundaries``,
    ``sampling_factor``, ``width`` and ``weighting_options``)."""
    method = options.sampling_method
    if not isinstance(method, str) or method not in WEIGHTINGS:
        raise invalid_choice("sampling_method", method, tuple(WEIGHTINGS))
    for name in positive:
        value = getattr(options, name)
        if value is not None and not (is_number(value) and value > 0):
            raise ConfigError(f"{name}={value!r} is not valid; it must be a finite number > 0", option=name,
                              value=value, expected="> 0")
    b = options.boundaries
    if b is not None:
        if not (isinstance(b, (list, tuple)) and len(b) == 3 and all(is_number(x) for x in b)
                and 0 < b[0] < b[1] < b[2]):
            expected = "three increasing positive finite perplexities (b1 < b2 < b3)"
            raise ConfigError(f"boundaries={b!r} is not valid; it must be {expected}", option="boundaries", value=b,
                              expected=expected)
        options.boundaries = tuple(float(x) for x in b)
    weighting_options = option(options, "weighting_options")
    if weighting_options is not None:
        if not isinstance(weighting_options, dict):
            raise ConfigError(f"weighting_options={weighting_options!r} is not valid; it must be a dict")
        get_weighting(method).check_parameters(weighting_options)
    check_scorer_options(options)
    if not (is_int(options.seed) and options.seed >= 0):
        raise ConfigError(f"seed={options.seed!r} is not valid; it must be an integer >= 0")
    for name in ("return_perplexity", "return_score"):
        if not isinstance(option(options, name), bool):
            raise ConfigError(f"{name}={option(options, name)!r} is not valid; it must be True or False")
    if options.perplexity_mode is not None and options.perplexity_mode not in MODES:
        raise invalid_choice("perplexity_mode", options.perplexity_mode, MODES)
    if not isinstance(options.on_bad_record, str) or options.on_bad_record not in BAD_RECORD_POLICIES:
        raise invalid_choice("on_bad_record", options.on_bad_record, BAD_RECORD_POLICIES)
    if options.calibration is not None:
        if not isinstance(options.calibration, (str, os.PathLike)):
            raise ConfigError(f"calibration={options.calibration!r} is not valid; it must be a string")
        clashes = [n for n in CALIBRATED if option(options, n) is not None]
        # fractions (threshold's top, bottom, band) pick among the file's percentiles: they go with it
        if weighting_options and set(weighting_options) <= set(get_weighting(method).quantile_keys):
            clashes.remove("weighting_options")
        if clashes:
            raise ConfigError(
                f"calibration={options.calibration!r} replaces {', '.join(clashes)}; pass one or the other",
                option="calibration", value=options.calibration, replaces=clashes)
