"""Downstream task types, registered by name: ``token`` (:mod:`.token`), ``sequence`` (:mod:`.sequence`).

A new type is one module with a :class:`~.base.TaskKind` subclass (its columns, encoding, metrics,
head and transformers architecture suffix), registered here (:func:`register_kind`), and its test;
no model family changes.
"""

from __future__ import annotations

from ...errors import DataError
from .base import TaskKind
from .sequence import SequenceKind
from .token import TokenKind

TOKEN, SEQUENCE = TokenKind.name, SequenceKind.name

#: name -> kind.
KINDS: dict[str, TaskKind] = {}


def register_kind(kind: TaskKind) -> TaskKind:
    """Register ``kind`` under its name (presets, ``--kind`` and reports find it there)."""
    KINDS[kind.name] = kind
    return kind


for _kind in (TokenKind(), SequenceKind()):
    register_kind(_kind)


def get_kind(name: str) -> TaskKind:
    """The kind registered as ``name``; DataError naming the known ones."""
    if name not in KINDS:
        raise DataError(f"unknown task kind {name!r}; known: {', '.join(KINDS)}")
    return KINDS[name]


__all__ = ["KINDS", "SEQUENCE", "TOKEN", "TaskKind", "get_kind", "register_kind"]
