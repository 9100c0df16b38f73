"""Which scorer the sampling options name, loaded once per process: :class:`ScorerSource`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import Scorer, builtin_factory, make_scorer
from .callable import CallableScorer


@dataclass(frozen=True)
class ScorerSource:
    """The ``scorer``, ``scorer_model``, ``scorer_options``, ``score_column``, ``perplexity_model`` and
    ``perplexity_mode`` options of a language; :meth:`load` makes the scorer (cached per process)."""

    scorer: Any = None
    model: Any = None
    options: tuple = ()
    score_column: str | None = None
    perplexity_model: Any = None
    perplexity_mode: str | None = None
    language: str = "es"

    @classmethod
    def of(cls, options, language: str) -> "ScorerSource":
        """The source named by sampling options (any object with those attributes; missing ones unset)."""
        get = lambda name: getattr(options, name, None)  # noqa: E731
        scorer_options = get("scorer_options") or {}
        return cls(get("scorer"), get("scorer_model"), tuple(sorted(scorer_options.items())), get("score_column"),
                   get("perplexity_model"), get("perplexity_mode"), language)

    @property
    def kind(self) -> str:
        """``kenlm``, ``column``, ``callable``, or the registered name given as ``scorer``."""
        if isinstance(self.scorer, Scorer):
            return self.scorer.kind or type(self.scorer).__name__
        if self.scorer is None:
            return "column" if self.score_column is not None else "kenlm"
        if isinstance(self.scorer, str):
            return self.scorer
        return "callable"

    @property
    def score_name(self) -> str:
        """The column of the scores: ``perplexity`` (KenLM), the score column itself, or ``score``."""
        if isinstance(self.scorer, Scorer):
            return self.scorer.score_name
        kind = self.kind
        return "perplexity" if kind == "kenlm" else self.score_column if kind == "column" else "score"

    def load(self) -> Scorer:
        if isinstance(self.scorer, Scorer):
            return self.scorer
        options = dict(self.options)
        kind = self.kind
        if kind == "kenlm":  # not cached here: cached by mc4_sampling.kenlm_models (whose cache tests clear)
            return builtin_factory("kenlm")(self.perplexity_model, {"mode": self.perplexity_mode}, self.language)
        if kind == "column":
            return make_scorer("column", self.score_column, options, self.language)
        if kind == "callable":
            return CallableScorer(self.scorer, options.get("higher_is_better", True), options.get("name"))
        return make_scorer(kind, self.model, options, self.language)

