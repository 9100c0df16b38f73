"""Corpus sources: where documents come from (see :mod:`mc4_sampling.sources.base`)."""

from .base import (
    BUILTIN_MODULES,
    SOURCES,
    CorpusSource,
    Record,
    SourceOptions,
    SourceUnit,
    make_source,
    register_source,
    source_names,
)

__all__ = ["BUILTIN_MODULES", "SOURCES", "CorpusSource", "Record", "SourceOptions", "SourceUnit", "make_source",
           "register_source", "source_names"]
