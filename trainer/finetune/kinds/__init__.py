"""Downstream task types, registered by name: ``token`` (:mod:`.token`), ``sequence`` (:mod:`.sequence`),
``span`` (:mod:`.span`, extractive question answering), ``regression`` (:mod:`.regression`) and
``multiple-choice`` (:mod:`.multiple_choice`).

A new type is one module with a :class:`~.base.TaskKind` subclass (its columns, encoding, metrics,
head and transformers architecture suffix), registered here (:func:`register_kind`), and its test;
no model family changes.
"""

from __future__ import annotations

from ...errors import DataError
from .base import TaskKind
from .multiple_choice import MultipleChoiceKind
from .regression import RegressionKind
from .sequence import SequenceKind
from .span import SpanKind
from .token import TokenKind

TOKEN, SEQUENCE = TokenKind.name, SequenceKind.name
SPAN, REGRESSION, MULTIPLE_CHOICE = SpanKind.name, RegressionKind.name, MultipleChoiceKind.name

#: name -> kind.
KINDS: dict[str, TaskKind] = {}


def register_kind(kind: TaskKind) -> TaskKind:
    """Register ``kind`` under its name (presets, ``--kind`` and reports find it there)."""
    KINDS[kind.name] = kind
    return kind


for _kind in (TokenKind(), SequenceKind(), SpanKind(), RegressionKind(), MultipleChoiceKind()):
    register_kind(_kind)


def get_kind(name: str) -> TaskKind:
    """The kind registered as ``name``; DataError naming the known ones."""
    if name not in KINDS:
        raise DataError(f"unknown task kind {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]


__all__ = ["KINDS", "MULTIPLE_CHOICE", "REGRESSION", "SEQUENCE", "SPAN", "TOKEN", "TaskKind", "get_kind",
           "register_kind"]
