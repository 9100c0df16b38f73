"""Weightings as plug-ins: ``none``, ``random``, ``stepwise``, ``gaussian`` (BERTIN's), ``threshold``
(CCNet's buckets, DCLM's top fraction) and ``pareto`` (GPT-3's noisy keep), one module each,
registered by name in :data:`WEIGHTINGS` (see :mod:`.base` to add one)."""

from importlib import import_module

from .base import WEIGHTINGS, Weighting, get_weighting, register_weighting

#: the built-in weightings, registered in this order (the order error messages list them in)
BUILTIN = ("none", "random", "stepwise", "gaussian", "threshold", "pareto")
for _name in BUILTIN:
    import_module(f"{__name__}.{_name}")

__all__ = ["BUILTIN", "WEIGHTINGS", "Weighting", "get_weighting", "register_weighting"]
