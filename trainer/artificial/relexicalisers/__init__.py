"""Relexicalisers (**plug-in point**): ``--relexicalise`` names one; :mod:`.base` holds the interface, the
vocabulary split shared by all and the registry; one module per member (``zipf``, ``loglinear``).
To add one: a module with a :class:`~.base.Relexicaliser` subclass decorated by
:func:`~.base.register_relexicaliser`, its name in :data:`BUILTIN`, its test."""

from __future__ import annotations

import importlib

from .base import (
    RELEXICALISERS,
    LexiconOptions,
    Relexicaliser,
    Vocabulary,
    allocate_vocabulary,
    get_relexicaliser,
    register_relexicaliser,
    token_name,
)

#: the modules of the shipped members
BUILTIN = ("zipf", "loglinear")

for _name in BUILTIN:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["RELEXICALISERS", "LexiconOptions", "Relexicaliser", "Vocabulary", "allocate_vocabulary",
           "get_relexicaliser", "register_relexicaliser", "token_name", "BUILTIN"]
