"""The weighting plug-in point: a :class:`Weighting` turns a document's score ``x`` into a keep
probability ``p(x)`` (a uniform draw ``u`` keeps the document when ``u < p``).

A weighting is one module with one subclass of :class:`Weighting` and one :func:`register_weighting`
call (see :mod:`.random`, :mod:`.stepwise`, :mod:`.gaussian`, :mod:`.threshold`, :mod:`.pareto`).
It states its formula (the docstring of :meth:`Weighting.probability` and :attr:`Weighting.formula`,
the card's text), its largest keep probability (for the draw-first skip), its parameters and
default factor, which score direction it favours (checked against the scorer's), how to fit it to
a target keep rate and whether a calibration fits it by default, whether it has a width, its colour
in the pictures and its cells in the card. Code outside this package asks the registered member
(:data:`WEIGHTINGS`, :func:`keeps_all`) and never tests a weighting's name (``tests/test_layering.py``
checks). The plumbing (precedence of options, calibration files, the draw) is not its job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, invalid_choice

if TYPE_CHECKING:  # pragma: no cover
    from .fitting import MethodFit


#: BERTIN's default gaussian width (the ``width`` in ``exp(-(1/width) * r**2)``).
DEFAULT_WIDTH = 9 / 2


class Weighting:
    """One weighting (see the module). Subclasses set the class attributes and override
    :meth:`probability` (pure, vectorised) and, when it can be calibrated, :meth:`fit`."""

    #: the ``sampling_method`` name
    name: str = ""
    #: the formula, as the dataset card and the README show it
    formula: str = ""
    #: False for weightings that ignore the score (``none``, ``random``): documents are not scored
    needs_scores: bool = True
    #: True when ``boundaries`` (three quartile scores) are a parameter
    uses_boundaries: bool = False
    #: True when ``width`` is a parameter
    uses_width: bool = False
    #: ``factor`` when no option, calibration file or scorer gives one
    default_factor: float = 1.0
    #: True when a default factor is meaningless for boundaries of another origin (stepwise)
    factor_depends_on_boundaries: bool = False
    #: further parameters (``weighting_options`` keys) and their defaults
    parameters: Mapping[str, float | None] = {}
    #: further ``weighting_options`` keys that are not numbers of the rule (threshold's ``band``),
    #: turned into parameters by :meth:`resolve_parameters`
    selectors: tuple[str, ...] = ()
    #: the ``weighting_options`` keys that go with a calibration file: they pick among its
    #: percentiles (threshold's ``top``, ``bottom``, ``band``) instead of replacing its fitted values
    quantile_keys: tuple[str, ...] = ()
    #: ``"low"`` or ``"high"`` when the weighting keeps more of the low or high scores; None: neither
    favours: str | None = None
    #: whether ``mc4-sampling calibrate`` can fit it
    calibratable: bool = True
    #: the colour of its curves in the pictures
    color: str = "#555555"
    #: True when it keeps every document (``none``): nothing is sampled and it has no factor
    keeps_all: bool = False
    #: the scorer directions (``"low"``, ``"high"``: which scores are better) for which
    #: ``mc4-sampling calibrate`` fits it when no methods are named, with its place in that list
    default_fit: Mapping[str, int] = {}

    def probability(self, x, rule: "SamplingRule") -> np.ndarray:  # pragma: no cover - abstract
        """``p(x)`` for the scores ``x`` (an array), ``p >= 1`` meaning "always kept"."""
        raise NotImplementedError

    def max_probability(self, rule: "SamplingRule") -> float:
        """The largest ``p(x)`` over every ``x``, capped at 1 (``min(1, factor)`` unless overridden)."""
        return min(1.0, float(rule.factor))

    @property
    def uniform(self) -> bool:
        """True when every document has the same keep probability, ``factor`` (``random``): the
        weighting samples without looking at the score."""
        return not self.needs_scores and not self.keeps_all

    @property
    def option_keys(self) -> tuple[str, ...]:
        """Every valid ``weighting_options`` key: the parameters and the selectors."""
        return (*self.parameters, *self.selectors)

    def check_parameters(self, params: Mapping[str, float]) -> None:
        """Raise :class:`ConfigError` naming ``weighting_options.<key>`` when a parameter is out of range."""
        for key, value in params.items():
            if key not in self.option_keys:
                raise ConfigError(
                    f"weighting_options.{key} is not a parameter of sampling_method={self.name!r}; "
                    f"valid keys: {', '.join(self.option_keys) or 'none'}")
            if key in self.parameters and value is not None and not _number(value):
                raise ConfigError(f"weighting_options.{key}={value!r} is not valid; it must be a finite number")

    def resolve_parameters(self, given: Mapping, calibrated: Mapping, *, higher_is_better: bool = False,
                           percentiles: Sequence[float] | None = None) -> dict:
        """The rule's parameters: each one given (``weighting_options``), else calibrated (the
        calibration file's fit), else the default. ``percentiles`` (1..99 of the scores, from the
        calibration file) and the scorer's direction serve weightings that keep a fraction."""
        return {name: _first(given.get(name), calibrated.get(name), default)
                for name, default in self.parameters.items()}

    def check_direction(self, scorer_name: str, higher_is_better: bool, params: Mapping) -> None:
        """Refuse a scorer whose better direction contradicts what the weighting favours."""
        better = "high" if higher_is_better else "low"
        if self.favours is not None and self.favours != better:
            raise ConfigError(
                f"sampling_method={self.name!r} keeps more of the {self.favours} scores, but {better}er scores "
                f"of {scorer_name} are better; use a weighting that favours {better} scores "
                f"({', '.join(w.name for w in WEIGHTINGS.values() if w.favours in (better, None) and w.needs_scores)})")

    def fit(self, scores: np.ndarray, target: float, *, boundaries=None, higher_is_better: bool = False,
            **options) -> "MethodFit":  # pragma: no cover - abstract
        """Parameters for which the expected keep rate ``mean(min(1, p(x_i)))`` equals ``target``."""
        raise ConfigError(f"sampling_method={self.name!r} cannot be calibrated")

    def describe(self, rule: "SamplingRule") -> str:
        """The parameters, as one line of a card or report."""
        parts = [f"factor={rule.factor:g}"] if not self.keeps_all else []
        parts += [f"{k}={v:g}" for k, v in rule.params if v is not None]
        if self.uses_width:
            parts.append(f"width={rule.width:g}")
        return ", ".join(parts) or "-"

    def card_cells(self, rule: "SamplingRule") -> tuple[str, str]:
        """The ``factor`` and ``width`` cells of the dataset card's parameter table (``-`` where the
        weighting has no such parameter)."""
        return (f"{rule.factor:g}" if not self.keeps_all else "-",
                f"{rule.width:g}" if self.uses_width else "-")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _first(*values):
    """The first value that is not None, as a float (None when all are)."""
    for v in values:
        if v is not None:
            return float(v)
    return None


#: every weighting, by ``sampling_method`` name, in registration order
WEIGHTINGS: dict[str, Weighting] = {}


def register_weighting(weighting: Weighting) -> Weighting:
    """Make ``weighting`` a valid ``sampling_method`` everywhere (builder, ``sample_dataset``, CLI,
    calibration, report, card)."""
    if not weighting.name:
        raise ValueError("a weighting needs a name")
    WEIGHTINGS[weighting.name] = weighting
    return weighting


def _registered(method) -> Weighting | None:
    try:
        return WEIGHTINGS.get(method)
    except TypeError:  # not a name
        return None


def keeps_all(method) -> bool:
    """True when ``method`` names a weighting that keeps every document (``none``); False for any
    other value, one that names no weighting included (checked where the option is validated)."""
    weighting = _registered(method)
    return weighting is not None and weighting.keeps_all


def is_uniform(method) -> bool:
    """True when ``method`` names a weighting that keeps every document with the same probability
    (``random``, :attr:`Weighting.uniform`); False for any other value."""
    weighting = _registered(method)
    return weighting is not None and weighting.uniform


def fitted_by_default(higher_is_better: bool = False) -> tuple[str, ...]:
    """The weightings ``mc4-sampling calibrate`` fits when none are named, for a scorer whose
    higher (or lower) scores are better (:attr:`Weighting.default_fit`, in its order)."""
    direction = "high" if higher_is_better else "low"
    chosen = [(w.default_fit[direction], i, name) for i, (name, w) in enumerate(WEIGHTINGS.items())
              if direction in w.default_fit]
    return tuple(name for _, _, name in sorted(chosen))


def get_weighting(method: str) -> Weighting:
    """The weighting registered as ``method``; :class:`ConfigError` listing the valid names."""
    try:
        return WEIGHTINGS[method]
    except (KeyError, TypeError):
        raise invalid_choice("sampling_method", method, tuple(WEIGHTINGS)) from None


@dataclass(frozen=True)
class SamplingRule:
    """The weighting applied to one split (``method="none"`` keeps every document).

    ``params`` are the weighting's further parameters (:attr:`Weighting.parameters`, e.g.
    threshold's ``low``/``high``, pareto's ``alpha``) as sorted ``(name, value)`` pairs.
    """

    method: str
    factor: float = 1.0
    boundaries: tuple[float, float, float] | None = None
    width: float = DEFAULT_WIDTH
    params: tuple = ()

    def probability(self, scores):
        return WEIGHTINGS[self.method].probability(scores, self)

    def param(self, name: str, default=None):
        """The value of the further parameter ``name`` (``default`` when unset)."""
        for key, value in self.params:
            if key == name:
                return default if value is None else value
        return default

    @property
    def weighting(self):
        return WEIGHTINGS[self.method]

    @property
    def needs_scores(self) -> bool:
        return WEIGHTINGS[self.method].needs_scores

    @property
    def max_probability(self) -> float:
        return WEIGHTINGS[self.method].max_probability(self)
