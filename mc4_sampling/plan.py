"""The sampling plan of a language: what the options mean once every default is filled in.

:meth:`SamplingPlan.resolve` turns sampling options (a validated
:class:`~mc4_sampling.Mc4SamplingConfig`, or any object with the same attributes, see
:class:`SamplingOptions`) and a language into the :class:`~mc4_sampling.weightings.SamplingRule` of
each split. Each parameter of the weighting is taken from the first of:

1. the option itself (``boundaries``, ``sampling_factor``, ``width``);
2. the calibration file (``calibration``), which must belong to the model and mode in use;
3. the defaults declared for the scorer (a KenLM model and mode: :mod:`mc4_sampling.kenlm_models`); a
   model's default factors go with its default boundaries only (stepwise's scale depends on them);
4. the weighting's own default factor (BERTIN's for random, stepwise and gaussian:
   :attr:`~mc4_sampling.weightings.Weighting.default_factor`) and BERTIN's width
   (:data:`~mc4_sampling.weightings.DEFAULT_WIDTH`).

Stepwise and gaussian need boundaries: with none from 1-3 the plan cannot be resolved. The plan
also says which scorer scores the language (:class:`~mc4_sampling.scoring.ScorerSource`: KenLM
perplexity by default; loaded when first needed, once per process) and makes the
:class:`~mc4_sampling.sampler.DocumentSampler` of a split. :func:`iter_kept` applies the plans of
every language to the shards of a split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

from .calibration import Calibration, load_calibration
from .errors import ConfigError
from .options import SamplingOptions, option, wants_score
from .sampler import DocumentSampler, SamplingStats
from .scoring import Scorer, ScorerSource
from .shards import ShardRef, shard_refs_for
from .upsampling import Upsampling
from .weightings import DEFAULT_WIDTH, KEEP_ALL, SamplingRule, are_quartiles, get_weighting

__all__ = ["SPLITS", "SamplingPlan", "check_max_docs", "iter_kept"]

SPLITS = ("train", "validation")


@dataclass(frozen=True)
class SamplingPlan:
    """The resolved sampling of one language: a rule per split, the model, the sampler settings."""

    language: str
    train: SamplingRule
    validation: SamplingRule
    model_source: ScorerSource
    seed: int = 2021
    return_perplexity: bool = False
    on_bad_record: str = "raise"
    http_retries: int = 5
    #: the calibration file the rules were read from, if any
    calibration: Calibration | None = None
    max_record_bytes: int | None = None
    http_timeout: float | None = None
    #: the train split's upsampling (copies of a document), None without (``max_copies=1``, ``upsample="none"``)
    upsampling: Upsampling | None = None

    @classmethod
    def resolve(cls, options: SamplingOptions, language: str) -> "SamplingPlan":
        """The plan of ``language`` under ``options``; raises :class:`ConfigError` when a needed
        parameter has no value, or the calibration file belongs to another model or mode.

        The model is loaded now when a split needs it, so a missing model is reported before any
        data is read.
        """
        source = ScorerSource.of(options, language)
        method = options.sampling_method
        calibration = None
        if get_weighting(method).keeps_all:
            train = validation = SamplingRule(method)
        else:
            if options.calibration is not None:
                calibration = load_calibration(options.calibration)
                calibration.check_upsampling(Upsampling.of(options))
            train = _train_rule(options, calibration, source)
            if options.validation_sampling_factor is None:
                validation = KEEP_ALL  # as BERTIN: the validation split is not sampled
            else:
                validation = SamplingRule(method, float(options.validation_sampling_factor), train.boundaries,
                                          train.width, train.params)
        plan = cls(language, train, validation, source, options.seed, wants_score(options),
                   options.on_bad_record, getattr(options, "http_retries", 0), calibration,
                   getattr(options, "max_record_bytes", None), getattr(options, "http_timeout", None),
                   Upsampling.of(options))
        if any(plan.needs_model(split) for split in SPLITS):
            source.load()
        return plan

    def upsampling_of(self, split: str) -> Upsampling | None:
        """The upsampling of ``split``: the train split's; the validation split is never upsampled."""
        return self.upsampling if split == "train" else None

    def rule(self, split: str) -> SamplingRule:
        """The rule of ``split`` (``train`` or ``validation``)."""
        return {"train": self.train, "validation": self.validation}[split]

    @property
    def model(self) -> Scorer:
        """The scorer of the language (loaded on first use, once per process): a
        :class:`~mc4_sampling.perplexity.PerplexityModel` for KenLM."""
        return self.model_source.load()

    @property
    def score_name(self) -> str:
        """The column kept documents carry their score in (``perplexity`` for KenLM, else ``score``)."""
        return self.model_source.score_name

    def needs_model(self, split: str) -> bool:
        """Whether sampling ``split`` scores documents (its rule weighs scores, or
        ``return_perplexity``/``return_score`` is set)."""
        return self.return_perplexity or self.rule(split).needs_scores

    def document_sampler(self, split: str, *, return_perplexity: bool | None = None,
                         score_all: bool = False) -> DocumentSampler:
        """The keep filter of ``split``, as the builder applies it.

        ``return_perplexity`` overrides the option; ``score_all`` scores rejected documents too.
        """
        return_perplexity = self.return_perplexity if return_perplexity is None else return_perplexity
        needs_model = self.needs_model(split) or return_perplexity or score_all
        return DocumentSampler(
            self.rule(split),
            seed=self.seed,
            model=self.model if needs_model else None,
            return_perplexity=return_perplexity,
            score_all=score_all,
            on_bad_record=self.on_bad_record,
            score_name=self.score_name,
            retries=self.http_retries,
            max_record_bytes=self.max_record_bytes,
            timeout=self.http_timeout,
            upsampling=self.upsampling_of(split),
        )


def _train_rule(options: SamplingOptions, calibration: Calibration | None, source: ScorerSource) -> SamplingRule:
    """The rule of the train split for a weighting method, each parameter by the module's precedence."""
    method = options.sampling_method
    weighting = get_weighting(method)
    given = option(options, "weighting_options") or {}
    # fractions of the documents (threshold's top, bottom, band) need the file's percentiles only
    picks_quantiles = bool(given) and set(given) <= set(weighting.quantile_keys)
    if calibration is None or (picks_quantiles and method not in calibration.methods):
        params = {}
    else:
        params = calibration.parameters(method)
    model = source.load() if weighting.needs_scores else None
    boundaries = None
    if model is not None:
        weighting.check_direction(model.name, model.higher_is_better, params)
        if calibration is not None:
            calibration.check_model(model.model_id, model.mode)
    if model is not None and weighting.uses_boundaries:
        boundaries = options.boundaries or (calibration.boundaries if calibration else None) or model.default_boundaries
        if boundaries is None:
            where = f"{model.name} in {model.mode!r} mode" if model.mode is not None else model.name
            raise ConfigError(
                f"sampling_method={method!r} needs boundaries (three quartile perplexities) for "
                f"{where}, which has no default ones: pass boundaries=(b1, b2, b3) "
                "or a calibration file made with `mc4-sampling calibrate`"
            )
        if not are_quartiles(boundaries):
            raise ConfigError(
                f"sampling_method={method!r} needs three increasing positive boundaries (it divides by them), got "
                f"{tuple(boundaries)!r} for {model.name}; use sampling_method='threshold' or 'pareto' for such scores")
    factor = options.sampling_factor or params.get("factor")
    if factor is None:
        own_boundaries = model is not None and options.boundaries is None and calibration is None
        factor = (model.default_factors or {}).get(method) if own_boundaries else None
        if factor is None and weighting.factor_depends_on_boundaries:
            raise ConfigError(
                f"sampling_method={method!r} needs sampling_factor for these boundaries (its scale "
                "depends on them): pass sampling_factor or a calibration file"
            )
        factor = factor or weighting.default_factor
    width = options.width or params.get("width") or (model and model.default_width) or DEFAULT_WIDTH
    values = weighting.resolve_parameters(
        given, params, higher_is_better=bool(model is not None and model.higher_is_better),
        percentiles=calibration.percentiles if calibration is not None else None)
    return SamplingRule(method, float(factor), boundaries, float(width), tuple(sorted(values.items())))


# --- a whole run ------------------------------------------------------------------------------


def check_max_docs(max_docs: int | None, option: str = "max_docs") -> int | None:
    """``max_docs`` unless it is set and not a positive integer (:class:`ConfigError` naming ``option``)."""
    if max_docs is not None and max_docs <= 0:
        raise ConfigError(f"{option}={max_docs} is not valid; it must be a positive integer")
    return max_docs


def iter_kept(
    options,
    split: str,
    *,
    stats: SamplingStats | None = None,
    shards: Sequence[ShardRef] | None = None,
    max_docs: int | None = None,
    return_perplexity: bool | None = None,
    score_all: bool = False,
    on_shard_end: Callable[[ShardRef, SamplingStats], None] | None = None,
) -> Iterator[dict]:
    """The kept documents of ``split``, shard after shard over every language of ``options``.

    ``options`` are :class:`SamplingOptions` plus the data source (``languages``, ``data_dir``,
    ``base_url``, ``shards``); ``shards`` replaces the shards they locate. Each language's plan is
    resolved when its first shard is reached. Stops after ``max_docs`` kept documents; ``stats``
    counts as documents are read, ``on_shard_end(shard, stats)`` is called after each shard.
    ``return_perplexity`` and ``score_all`` are those of :meth:`SamplingPlan.document_sampler`.
    """
    check_max_docs(max_docs)
    stats = stats if stats is not None else SamplingStats()
    samplers: dict[str, DocumentSampler] = {}
    for shard in shard_refs_for(options, split) if shards is None else shards:
        sampler = samplers.get(shard.language)
        if sampler is None:
            plan = SamplingPlan.resolve(options, shard.language)
            sampler = samplers[shard.language] = plan.document_sampler(
                split, return_perplexity=return_perplexity, score_all=score_all
            )
        for _, example in sampler.sample(shard, stats):
            yield example
            if max_docs and stats.kept >= max_docs:
                break
        if on_shard_end is not None:
            on_shard_end(shard, stats)
        if max_docs and stats.kept >= max_docs:
            return
