"""Typed configuration: one dataclass per YAML section, with BERTIN's defaults, and :func:`validate`.

The defaults reproduce BERTIN's phase-1 recipe (RoBERTa-base, length 128, batch 2048, peak LR
6e-4, 24 000 warm-up steps, 250 000 steps, AdamW 0.9/0.98/1e-6, weight decay 0.01, bf16).
The ``model`` section is its family's class (:mod:`trainer.models`: RoBERTa by default), which
owns its fields and checks; this module keeps the sections every family shares. Reading YAML files
and ``--set`` overrides into these classes, with a check of every key and type, is
:mod:`trainer.config_loading`'s job.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

from mc4_sampling.options import SamplingOptions

from .errors import ConfigError
from .models.base import ModelOptions, default_model_config, positive

#: Value of any string in ``data.kwargs``/``data.data_dir``/``data.data_files`` that is replaced
#: by ``mc4_sampling.SAMPLE_DATA_DIR`` (the bundled sample of Spanish mC4).
SAMPLE_DATA_DIR_MARKER = "SAMPLE_DATA_DIR"


@dataclass
class SamplingConfig(SamplingOptions):
    """``data.sampling``: the sampler's options themselves (:class:`mc4_sampling.options.SamplingOptions`,
    same names, defaults and checks; README, "Sampling any corpus"), plus the two a corpus needs.

    ``sampling_method: none`` (the default) reads the source as it is. With ``data.path: mc4-sampling``
    the options go to the builder (``load_dataset`` keywords: each draw keyed by language, split,
    shard and position); with any other source ``mc4_sampling.sample_dataset`` samples the stream
    (each draw keyed by ``id_column``, a unique id, or the text), before the hold-out.
    """

    #: a corpus: the perplexity model's language and the draw's key (default es); mc4-sampling: data.name
    language: Optional[str] = None
    #: a corpus: the column of a unique document id keying the draws (None: the text); with ``source``,
    #: the source's id column (its default when unset)
    id_column: Optional[str] = None
    #: mc4-sampling: the corpus source the builder reads (None: mC4; ``fineweb2``, ``hplt3``, ``files``,
    #: ``datasets``), in the language data.name; its location is data.data_dir / data.kwargs.base_url
    source: Optional[str] = None
    #: mc4-sampling with ``source``: the source's own options (``{min_bin: 7}``, ``{rows_per_unit: N}``)
    source_options: Optional[dict] = None

    #: keys of earlier versions, refused with the name that replaced them
    FORMER_KEYS = {"method": "sampling_method", "factor": "sampling_factor"}


@dataclass
class DataConfig:
    """Any streaming ``datasets`` source: ``load_dataset(path, name, split=..., streaming=True, ...)``."""

    path: str = "mc4-sampling"
    name: Optional[str] = "es"
    split: str = "train"
    data_files: Optional[list[str]] = None
    data_dir: Optional[str] = None
    # Extra keyword arguments of load_dataset (builder options), e.g. {data_dir: SAMPLE_DATA_DIR}; the
    # sampling options go in data.sampling.
    kwargs: dict[str, Any] = field(default_factory=dict)
    text_column: str = "text"
    tokenizer: Optional[str] = None  # folder loadable by AutoTokenizer.from_pretrained
    max_seq_length: int = 128
    shuffle_buffer: int = 10_000
    tokenize_batch_size: int = 256
    num_eval_samples: int = 2_000
    # Hold-out by content (trainer.data.holdout): a document is an eval candidate when a keyed hash
    # of its normalised text (key holdout_seed) falls below eval_fraction; the eval set is the first
    # num_eval_samples distinct candidates, and no document with the same normalised text (nor, with
    # holdout_near_duplicates = J, an estimated word-5-gram Jaccard similarity >= J) is trained on.
    eval_fraction: float = 0.1
    holdout_seed: int = 0
    holdout_near_duplicates: Optional[float] = None
    # A folder of token shards (trainer.data.token_shards, written by `mc4-sampling publish --tokenizer`):
    # when set, training and eval documents are read from it (already held out) instead of the stream.
    token_shards: Optional[str] = None
    prefetch_batches: int = 4
    # Perplexity sampling of the source (sampling_method none: off); the eval documents are held out of the sample.
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    # A fixed external eval set: local files (JSON lines, Parquet, CSV or text; their `text_column`), read whole,
    # in place of the first num_eval_samples documents of the stream (then nothing is held out of the stream).
    eval_files: Optional[list[str]] = None
    # training.objective mlm+nsp: a document's segments for the [CLS] A [SEP] B [SEP] pairs (trainer.data.nsp)
    nsp_segments: Literal["sentences", "lines"] = "sentences"
    # Tokeniser processes (0: tokenise in the pipeline's thread). The main process still reads and
    # shuffles the documents and packs in order: the batches are identical for any value.
    num_workers: int = 0


@dataclass
class OptimizerConfig:
    """AdamW; weight decay is not applied to biases and LayerNorm scales."""

    learning_rate: float = 6e-4  # peak
    b1: float = 0.9
    b2: float = 0.98
    eps: float = 1e-6
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # 0 disables clipping


@dataclass
class ScheduleConfig:
    """Linear warm-up from 0 to the peak, then linear decay to ``end_learning_rate``."""

    warmup_steps: int = 24_000
    decay_steps: Optional[int] = None  # step where the decay ends; None: training.max_steps
    end_learning_rate: float = 0.0


@dataclass
class TrainingConfig:
    seed: int = 2021
    max_steps: int = 250_000
    global_batch_size: int = 2048  # sequences per optimizer step, over all devices and hosts
    grad_accum_steps: int = 1
    # Sequences per device per micro-batch; when set, grad_accum_steps follows as
    # global_batch_size / (per_device_batch_size x devices) (leave grad_accum_steps at 1).
    per_device_batch_size: Optional[int] = None
    # a rate in (0, 1), or a schedule over the steps (trainer.masking_rate): {schedule: linear, start: 0.30,
    # end: 0.15[, steps: N]}, {schedule: cosine, ...}, {schedule: piecewise, values: [...], boundaries: [...]}
    mlm_probability: Union[float, dict] = 0.15
    # token: each token selected alone; whole-word: all pieces of a word together, the rate counted in tokens
    masking: Literal["token", "whole-word"] = "token"
    # the eval set's masking rate; None: training.mlm_probability (a schedule's final rate)
    eval_mlm_probability: Optional[float] = None
    # "mlm": masked LM on packed rows; "mlm+nsp": BERT's masked LM + next-sentence prediction on sentence pairs
    objective: Literal["mlm", "mlm+nsp"] = "mlm"
    mask_replace_prob: float = 0.8  # of the selected tokens, replaced by <mask>
    random_replace_prob: float = 0.1  # of the selected tokens, replaced by a random token
    # Random replacements never draw special tokens (fairseq); false: any id of the tokenizer's vocabulary.
    random_replace_excludes_specials: bool = True
    # The LM head runs on at most this many masked positions per row (masking selects no more);
    # None: ceil(L p + 6 sd) rounded up to a multiple of 8 (48 at 128, 128 at 512); 0: full head, no cap.
    max_predictions_per_seq: Optional[int] = None
    eval_every_steps: int = 2_000
    eval_batch_size: int = 256
    # Seed of the eval set's masks; None: drawn from training.seed (runs of different seeds then see other masks).
    eval_seed: Optional[int] = None
    output_dir: str = "runs/default"
    fsdp: bool = False  # shard parameters and optimizer state over the devices
    # A step whose loss or gradient norm is not finite: stop (error naming the step; the last good
    # checkpoint is kept) or skip its update (params and optimizer state unchanged; counted in
    # the metrics as skipped_steps).
    on_nonfinite: Literal["stop", "skip"] = "stop"
    distributed: bool = False  # call jax.distributed.initialize() (multi-host)
    coordinator_address: Optional[str] = None
    num_processes: Optional[int] = None
    process_id: Optional[int] = None


@dataclass
class CheckpointConfig:
    directory: Optional[str] = None  # None: <training.output_dir>/checkpoints
    every_steps: int = 10_000
    keep: int = 5
    async_save: bool = True
    resume: bool = True  # continue from the latest checkpoint in `directory` when there is one
    # A damaged latest checkpoint (checksums written with it, trainer.checkpoint_integrity) stops the run
    # with one line; true: go on from the newest intact step instead (the damaged ones moved to damaged-<step>)
    from_last_good: bool = False
    # Phase switch: start from another run's checkpoint (a checkpoints folder or one step in it).
    init_from: Optional[str] = None
    init_step: Optional[int] = None  # None: the latest step in init_from
    init_optimizer: Literal["fresh", "keep"] = "fresh"
    init_data_position: bool = True  # continue the stream where the other run stopped
    # Extra saves, never deleted by `keep` (trainer.research.checkpoint_schedule): "earlyberts" or a list of steps;
    # each is also exported to <output_dir>/revisions/step{N} (and pushed as branch step{N}).
    schedule: Optional[Union[str, list[int]]] = None
    # LAWA: when training ends, average the last k saved checkpoints into <output_dir>/averaged (0: off;
    # trainer.research.averaging; `trainer average` does it for any steps of a checkpoint folder)
    average_last: int = 0


@dataclass
class LoggingConfig:
    every_steps: int = 100
    tensorboard: bool = True
    progress_bar: bool = True
    wandb: bool = False
    wandb_project: str = "mc4-sampling-trainer"
    metrics_file: bool = True  # <output_dir>/metrics.jsonl, one JSON object per logged step
    audit: bool = False  # write hashes of the eval and train documents under <output_dir>/audit
    weight_stats_every_steps: int = 0  # mean/std/max|w| of every module to the metrics sinks (0: off)


@dataclass
class HubConfig:
    # repository id used by `trainer export` when set; with checkpoint.schedule, training pushes each
    # scheduled step to its branch step{N} and the latest to main (trainer.research.revisions)
    push_to_hub: Optional[str] = None
    private: bool = False


@dataclass
class TrainerConfig:
    name: str = "default"
    # the class of its model.type (trainer.models: the family's config section, RoBERTa by default)
    model: ModelOptions = field(default_factory=default_model_config)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    hub: HubConfig = field(default_factory=HubConfig)

    # -- derived values -------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> str:
        return self.checkpoint.directory or os.path.join(self.training.output_dir, "checkpoints")

    @property
    def averaged_dir(self) -> str:
        """Where ``checkpoint.average_last`` writes its averaged checkpoint (trainer.research.averaging)."""
        return os.path.join(self.training.output_dir, "averaged")

    @property
    def decay_steps(self) -> int:
        return self.schedule.decay_steps if self.schedule.decay_steps is not None else self.training.max_steps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def max_sequence_length(model: ModelOptions, pad_token_id: int = 1) -> int:
    """Longest input the ``model`` section's positions allow (its family's rule,
    :meth:`~trainer.models.base.ModelOptions.max_sequence_length`)."""
    return model.max_sequence_length(pad_token_id)


def _check_finite(obj, prefix: str) -> None:
    """Every float field of the config (at any depth) must be a finite number."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            _check_finite(value, f"{prefix}{f.name}.")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"config key '{prefix}{f.name}' must be a finite number, got {value}")


def sampling_key(name: str) -> str:
    """How a ``data.sampling`` option is spelled in messages: ``data.sampling.<name>``."""
    return f"data.sampling.{name}"


def _validate_sampling(d: DataConfig) -> None:
    """``data.sampling``: the sampler's one validation (``mc4_sampling.options.check_sampling_options``)
    naming the config keys; no option that ``none`` makes meaningless; the options that apply to the
    source (mC4 or a corpus); no sampling option in ``data.kwargs``."""
    from mc4_sampling.errors import ConfigError as SamplerConfigError
    from mc4_sampling.options import MC4_ONLY, OPTION_NAMES, SamplingOptions, check_sampling_options
    from mc4_sampling.weightings import WEIGHTINGS, keeps_all

    sp, key = d.sampling, sampling_key
    builder = d.path == "mc4-sampling"
    if builder:
        untyped = [k for k in d.kwargs if k in OPTION_NAMES]
        if untyped:
            raise ConfigError(f"data.kwargs.{untyped[0]} is a sampling option: write it as {key(untyped[0])} "
                              "(typed and checked; the mc4-sampling builder receives it from there)")
    if sp.source is not None:
        _validate_source(d)
    if keeps_all(sp.sampling_method):
        set_keys = [k for k in ("sampling_factor", "validation_sampling_factor", "width", "boundaries",
                                "weighting_options", "calibration", "id_column", "scorer", "scorer_model",
                                "scorer_options", "score_column") if getattr(sp, k) is not None]
        if set_keys:
            raise ConfigError(f"{key(set_keys[0])} is set but {key('sampling_method')} is 'none' (no sampling); "
                              f"set {key('sampling_method')} to "
                              f"{', '.join(n for n, w in WEIGHTINGS.items() if not w.keeps_all)}")
        upsampled = [k for k in ("max_copies", "upsample")
                     if getattr(sp, k) != SamplingOptions.__dataclass_fields__[k].default]
        if upsampled:  # the stream is not sampled at all with 'none': refused, not ignored
            raise ConfigError(f"{key(upsampled[0])} is set but {key('sampling_method')} is 'none', which the trainer "
                              "reads unsampled; for upsampling alone use sampling_method: random with "
                              "sampling_factor: 1")
        return
    if sp.language is not None and not (isinstance(sp.language, str) and sp.language):
        raise ConfigError(f"config key '{key('language')}' must be a language code such as 'es'")
    if builder:
        if sp.id_column is not None and _draws_by_position(sp.source):
            raise ConfigError(f"{key('id_column')} is for a corpus: the mc4-sampling builder keys each draw by the "
                              "document's language, split, shard and position")
        if sp.language is not None and sp.language != d.name:
            raise ConfigError(f"{key('language')}={sp.language!r}: with data.path mc4-sampling the language is "
                              f"data.name ({d.name!r}); drop {key('language')}")
    else:
        given = [k for k in MC4_ONLY if getattr(sp, k) is not None]
        if given:
            raise ConfigError(f"{key(given[0])} applies to mC4's validation split (data.path: mc4-sampling), "
                              "not to a corpus, which has one split")
    try:
        check_sampling_options(sp, key)  # its messages already name the keys (data.sampling.<name>)
    except SamplerConfigError as e:
        raise ConfigError(str(e)) from None
    if sp.boundaries is not None:
        sp.boundaries = list(sp.boundaries)  # a list in the saved YAML


def _draws_by_position(source: Optional[str]) -> bool:
    """Whether the builder's source (None: mC4) keys its draws by shard and position, not by a document id."""
    from mc4_sampling.sources.base import SOURCES, source_names

    return source is None or (source in source_names() and SOURCES[source].draw_by_position)


def _validate_source(d: DataConfig) -> None:
    """``data.sampling.source``: a registered corpus source, read by the mc4-sampling builder."""
    from mc4_sampling.sources.base import source_names

    sp, key = d.sampling, sampling_key
    if d.path != "mc4-sampling":
        raise ConfigError(f"{key('source')}={sp.source!r} is read by the mc4-sampling builder: set data.path to "
                          f"mc4-sampling (data.path {d.path!r} is opened by datasets as it is)")
    if sp.source not in source_names():
        raise ConfigError(f"{key('source')}={sp.source!r} is not valid; choose one of {', '.join(source_names())}")
    if sp.source_options is not None and not isinstance(sp.source_options, dict):
        raise ConfigError(f"{key('source_options')} must be a mapping, e.g. {{min_bin: 7}}")


def _validate_objective(cfg: TrainerConfig) -> None:
    """``training.objective`` and ``data.nsp_segments``: values, a family with an NSP head, a source of documents."""
    from .models import family_of

    t, d = cfg.training, cfg.data
    if t.objective not in ("mlm", "mlm+nsp"):
        raise ConfigError(f"training.objective {t.objective!r} is not an objective (valid: mlm, mlm+nsp)")
    if d.nsp_segments not in ("sentences", "lines"):
        raise ConfigError(f"data.nsp_segments {d.nsp_segments!r} is not a segment unit (valid: sentences, lines)")
    if t.objective != "mlm+nsp":
        return
    family = family_of(cfg.model)
    if not family.next_sentence_head:
        raise ConfigError(f"training.objective 'mlm+nsp' needs a model with a next-sentence head; model.type "
                          f"{cfg.model.type!r} ({family.title}) has none (use model.type bert, or objective mlm)")
    if d.token_shards or d.eval_files:
        key = "data.token_shards" if d.token_shards else "data.eval_files"
        raise ConfigError(f"training.objective 'mlm+nsp' builds sentence pairs from documents; {key} holds packed "
                          f"tokens or other texts: remove {key}")


def validate(cfg: TrainerConfig) -> None:
    """Checks that need no device, no data and no tokenizer (those come later, still before training).

    The ``model`` section is checked by its family (:meth:`~trainer.models.base.ModelOptions.check`).
    """
    m, d, t, o, s, c = cfg.model, cfg.data, cfg.training, cfg.optimizer, cfg.schedule, cfg.checkpoint
    _check_finite(cfg, "")
    m.check()

    for key, value in [
        ("data.max_seq_length", d.max_seq_length), ("data.shuffle_buffer", d.shuffle_buffer),
        ("data.tokenize_batch_size", d.tokenize_batch_size), ("data.prefetch_batches", d.prefetch_batches),
        ("training.max_steps", t.max_steps), ("training.global_batch_size", t.global_batch_size),
        ("training.grad_accum_steps", t.grad_accum_steps), ("training.eval_batch_size", t.eval_batch_size),
        ("training.eval_every_steps", t.eval_every_steps), ("checkpoint.every_steps", c.every_steps),
        ("checkpoint.keep", c.keep), ("logging.every_steps", cfg.logging.every_steps),
        ("optimizer.learning_rate", o.learning_rate),
    ]:
        positive(key, value)
    if t.per_device_batch_size is not None:
        positive("training.per_device_batch_size", t.per_device_batch_size)
        if t.grad_accum_steps != 1:
            raise ConfigError(
                f"set either training.per_device_batch_size ({t.per_device_batch_size}) or "
                f"training.grad_accum_steps ({t.grad_accum_steps}), not both: with per_device_batch_size the "
                "accumulation follows from global_batch_size / (per_device_batch_size x devices)"
            )
    if t.max_predictions_per_seq is not None and t.max_predictions_per_seq < 0:
        raise ConfigError(
            f"training.max_predictions_per_seq must be >= 0 (0: full head), got {t.max_predictions_per_seq}")
    longest = max_sequence_length(m)
    if d.max_seq_length > longest:
        raise ConfigError(
            f"data.max_seq_length ({d.max_seq_length}) is longer than the model's positions allow: "
            f"model.max_position_embeddings={m.max_position_embeddings} holds at most {longest} tokens"
            f"{m.positions_note}; raise max_position_embeddings or shorten the sequences"
        )
    if d.max_seq_length < 2:
        raise ConfigError("data.max_seq_length must be at least 2 (<s> and one token)")
    if d.num_workers < 0:
        raise ConfigError(f"data.num_workers must be >= 0 (0: tokenise in-process), got {d.num_workers}")
    if d.eval_files is not None and not (d.eval_files and all(isinstance(f, str) and f for f in d.eval_files)):
        raise ConfigError(f"data.eval_files must be a non-empty list of file paths, got {d.eval_files!r}")
    if t.eval_seed is not None and t.eval_seed < 0:
        raise ConfigError(f"training.eval_seed must be >= 0, got {t.eval_seed}")
    if d.num_eval_samples < 0:
        raise ConfigError(f"data.num_eval_samples must be >= 0, got {d.num_eval_samples}")
    if not 0.0 < d.eval_fraction <= 1.0:
        raise ConfigError(f"data.eval_fraction must be in (0, 1], got {d.eval_fraction}")
    if d.holdout_near_duplicates is not None and not 0.0 < d.holdout_near_duplicates <= 1.0:
        raise ConfigError("data.holdout_near_duplicates (a Jaccard similarity threshold, e.g. 0.8) must be in "
                          f"(0, 1] or null (off), got {d.holdout_near_duplicates}")
    _validate_sampling(d)
    if t.global_batch_size % t.grad_accum_steps:
        raise ConfigError(
            f"training.global_batch_size ({t.global_batch_size}) must be divisible by "
            f"training.grad_accum_steps ({t.grad_accum_steps})"
        )
    _validate_objective(cfg)
    from .masking_rate import check_capacity, parse_rate

    rate = parse_rate(t.mlm_probability, t.max_steps)
    check_capacity(rate, d.max_seq_length, t.max_predictions_per_seq)
    if t.eval_mlm_probability is not None:
        parse_rate(t.eval_mlm_probability, t.max_steps, "training.eval_mlm_probability")
    if t.mask_replace_prob < 0 or t.random_replace_prob < 0 or t.mask_replace_prob + t.random_replace_prob > 1:
        raise ConfigError(
            "training.mask_replace_prob and training.random_replace_prob must be >= 0 and sum to at most 1 "
            f"(got {t.mask_replace_prob} + {t.random_replace_prob})"
        )
    if s.warmup_steps < 0:
        raise ConfigError(f"schedule.warmup_steps must be >= 0, got {s.warmup_steps}")
    if s.warmup_steps > cfg.decay_steps:
        raise ConfigError(
            f"schedule.warmup_steps ({s.warmup_steps}) is after the end of the decay ({cfg.decay_steps}); "
            "lower the warm-up or raise schedule.decay_steps / training.max_steps"
        )
    if o.max_grad_norm < 0 or o.weight_decay < 0:
        raise ConfigError("optimizer.max_grad_norm and optimizer.weight_decay must be >= 0")
