"""Scorers as plug-ins: one float per document from KenLM perplexity (:mod:`.kenlm`, the default),
a fastText classifier (:mod:`.fasttext`), a ``transformers`` model (:mod:`.transformers`), a
column of the data (:mod:`.column`) or any callable (:mod:`.callable`). See :mod:`.base` to add one."""

from .base import SCORERS, Scorer, clear_scorer_cache, make_scorer, register_scorer, scorer_kinds
from .callable import CallableScorer
from .column import ColumnScorer
from .source import ScorerSource

__all__ = ["CallableScorer", "ColumnScorer", "SCORERS", "Scorer", "ScorerSource",
           "clear_scorer_cache", "make_scorer", "register_scorer", "scorer_kinds"]
