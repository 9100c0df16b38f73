"""Weightings as plug-ins: ``none``, ``random``, ``stepwise``, ``gaussian`` (BERTIN's), ``threshold``
(CCNet's buckets, DCLM's top fraction) and ``pareto`` (GPT-3's noisy keep), one module each,
registered by name in :data:`WEIGHTINGS` (see :mod:`.base` to add one). Each owns its facts: formula,
default factor, parameters, colour, fit, card text. :mod:`.keep` looks them up by name
(:func:`keep_probability`, :func:`max_keep_probability`)."""

from importlib import import_module

from .base import (
    DEFAULT_WIDTH,
    WEIGHTINGS,
    SamplingRule,
    Weighting,
    fitted_by_default,
    get_weighting,
    is_uniform,
    keeps_all,
    register_weighting,
)
from .keep import are_quartiles, keep_probability, max_keep_probability

#: the built-in weightings, registered in this order (the order error messages list them in)
BUILTIN = ("none", "random", "stepwise", "gaussian", "threshold", "pareto")
for _name in BUILTIN:
    import_module(f"{__name__}.{_name}")

from .gaussian import gaussian_keep_probability  # noqa: E402
from .none import KEEP_ALL  # noqa: E402
from .pareto import pareto_keep_probability  # noqa: E402
from .random import random_keep_probability  # noqa: E402
from .stepwise import stepwise_keep_probability  # noqa: E402
from .threshold import threshold_keep_probability  # noqa: E402

__all__ = [
    "BUILTIN", "DEFAULT_WIDTH", "KEEP_ALL", "WEIGHTINGS", "SamplingRule", "Weighting", "are_quartiles",
    "fitted_by_default", "gaussian_keep_probability", "get_weighting", "is_uniform", "keep_probability", "keeps_all",
    "max_keep_probability", "pareto_keep_probability", "random_keep_probability", "register_weighting",
    "stepwise_keep_probability", "threshold_keep_probability",
]
