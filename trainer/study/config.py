"""The study's YAML schema (one dataclass per section) and every check that needs no data.

Everything a user can get wrong is one :class:`~trainer.errors.ConfigError` line, raised before any
training: an unknown key, an arm with an unknown scorer or weighting (checked by the sampler itself,
:mod:`.sampling`), two arms with one name, a ``match`` naming no arm or making a cycle, a token
budget of 0, a baseline that is no arm, revision steps not increasing (or, in the runner, not before the
end of training), an eval subset or downstream task that cannot be built.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import yaml

from mc4_sampling.options import SamplingOptions
from mc4_sampling.weightings import keeps_all

from ..errors import ConfigError

#: the bundled sample's kinds sidecar (written by scripts/build_sample.py)
SAMPLE_KINDS = "SAMPLE_DATA_DIR/kinds.tsv.gz"


@dataclass
class CorpusConfig:
    """The unsampled corpus: a folder in the mC4 layout (``data_dir``) or JSON-lines ``files``."""

    data_dir: Optional[str] = "SAMPLE_DATA_DIR"  # <data_dir>/multilingual/c4-<language>[-validation].tfrecord-*.json.gz
    # JSON-lines (.jsonl[.gz|.zst]) or Parquet files (one split; e.g. a FineWeb-2 folder's data/<lang>/train/*.parquet,
    # listed); used when data_dir is null
    files: Optional[list[str]] = None
    language: str = "es"
    text_column: str = "text"
    # labels of the documents: mC4 layout, a TSV(.gz) "split shard position label" sidecar; files, a column name
    labels: Optional[str] = SAMPLE_KINDS
    max_documents: Optional[int] = None  # read at most this many training documents (cheap tests)


@dataclass
class EvalConfig:
    """The common eval set: taken from the unsampled corpus before any sampling, held out of every arm by content."""

    split: Optional[str] = "validation"  # mC4 layout: this split; null: a content-hash fraction of the training split
    fraction: float = 0.05  # with split null: documents whose content hash falls in this fraction
    max_documents: Optional[int] = None
    subsets: dict[str, list[str]] = field(default_factory=dict)  # subset name -> labels (reported apart)
    mask_seed: int = 1234  # the eval masks: the same for every arm and seed
    # documents of the eval set evaluated during training (the loss curves; the first ones); null: all
    curve_documents: Optional[int] = None
    # training steps whose checkpoints are evaluated too (kept by checkpoint.schedule); each < the unit's steps
    revision_steps: list[int] = field(default_factory=list)
    revision_downstream: bool = False  # also fine-tune those checkpoints on the downstream tasks
    # LAWA: each unit also averages its last k checkpoints (checkpoint.average_last) and that average is evaluated
    # beside the final checkpoint (the report's "averaged" rows); 0: off
    average_last: int = 0


@dataclass
class TokenizerSection:
    """One byte-level BPE tokenizer for every arm, trained once on the unsampled training corpus."""

    vocab_size: int = 50_265
    min_frequency: int = 2
    max_documents: Optional[int] = None


@dataclass
class TrainerSection:
    """The model, schedule and batch: a trainer config (file or shipped name) and overrides."""

    config: str = "tiny-cpu"
    set: list[str] = field(default_factory=list)


@dataclass
class SourceConfig:
    """The source stage of a transfer arm (:mod:`.transfer`): pretrain on this corpus first, then continue on the
    arm's own sample of the study's corpus (the target) with the transfer options (``model.transfer_from``:
    every weight kept but the re-initialised ones)."""

    # study: the study's corpus documents that the arm's target sample does not keep (a natural source of the
    # same language, disjoint from the target); files: the files of `files`
    corpus: Literal["study", "files"] = "study"
    # JSON lines (.jsonl/.json, their `text_column`) or plain text (.txt, one document per line), optionally .gz;
    # a folder: its files of these kinds, in name order (e.g. a generated artificial corpus)
    files: Optional[list[str]] = None
    text_column: str = "text"
    tokenizer: str = "study"  # study: the study's tokenizer; a folder: that tokenizer (e.g. the artificial one)
    max_documents: Optional[int] = None  # read at most this many source documents
    eval_documents: int = 100  # corpus files: the first documents, the source stage's eval split (its curve)
    budget_tokens: Optional[int] = None  # source training tokens (sets its training.max_steps); null: the study's
    # trainer `--set` overrides of the source stage only (schedule, batch, optimizer, data; not model.*: the
    # target keeps the source's shape), e.g. ["training.global_batch_size=64"]
    trainer_set: list[str] = field(default_factory=list)
    freeze_embeddings: bool = False  # the word embeddings get no update in the source stage (model.freeze)
    reinit_embeddings: bool = True  # the target stage starts with fresh word embeddings (and LM-head bias)
    reset_position_embeddings: bool = False  # ... and fresh position embeddings


@dataclass
class ArmConfig(SamplingOptions):
    """One sampling of the corpus: the sampler's options by their own names (any scorer and weighting
    it offers, :class:`mc4_sampling.options.SamplingOptions`), or ``match`` another arm's size.

    The study sets the draw's seed (``seeds``) and scores every document itself: an arm does not set
    :data:`STUDY_SETS`.
    """

    name: str = ""
    match: Optional[str] = None  # keep exactly as many documents (or tokens) as this arm (its factor computed)
    match_by: Literal["documents", "tokens"] = "documents"
    # keep at most this many: a random arm exactly this many (its factor computed), another arm the first
    # this many it keeps in corpus order (BERTIN stopped its streams at 50 M documents)
    max_documents: Optional[int] = None
    # trainer `--set` overrides of this arm, of the masking keys only (ARM_TRAINER_KEYS), e.g.
    # ["training.masking=whole-word"] or ['training.mlm_probability={schedule: linear, start: 0.3, end: 0.15}']:
    # masking arms; every arm is evaluated with the base trainer config's masks
    trainer_set: list[str] = field(default_factory=list)
    # a transfer arm: a source stage before the target stage on the arm's sample (null: from scratch)
    source: Optional[SourceConfig] = None

    #: keys of earlier versions, refused with the name that replaced them
    FORMER_KEYS = {"method": "sampling_method", "factor": "sampling_factor"}

    def sampler_values(self) -> dict:
        """The arm's sampler options that differ from their defaults (``sampling_method`` always)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(SamplingOptions)
                  if getattr(self, f.name) != f.default}
        values["sampling_method"] = self.sampling_method
        return values

    def record(self) -> dict:
        """The arm as the study's fingerprint holds it: the options of the first studies (method, factor,
        width, boundaries, perplexity_model, perplexity_mode, calibration) under the names they had then,
        so that their folders stay valid, and any other sampler option that is set."""
        first = {"method": "sampling_method", "factor": "sampling_factor", "width": "width",
                 "boundaries": "boundaries", "perplexity_model": "perplexity_model",
                 "perplexity_mode": "perplexity_mode", "calibration": "calibration"}
        d = {"name": self.name, **{old: getattr(self, new) for old, new in first.items()}}
        d.update(match=self.match, match_by=self.match_by, max_documents=self.max_documents)
        d.update({k: v for k, v in self.sampler_values().items() if k not in first.values()})
        if self.trainer_set:  # absent when unset: the folders of earlier studies stay valid
            d["trainer_set"] = list(self.trainer_set)
        if self.source is not None:  # absent when unset, as trainer_set
            d["source"] = dataclasses.asdict(self.source)
        if d.get("boundaries") is not None:
            d["boundaries"] = list(d["boundaries"])
        return d


#: the key of the averaged checkpoint's results among a unit's revisions (``eval.average_last``)
AVERAGED = "averaged"

#: the trainer keys an arm may set (``arms.<name>.trainer_set``): the masking methods; the model, data and
#: budget stay the study's
ARM_TRAINER_KEYS = ("training.masking", "training.mlm_probability", "training.mask_replace_prob",
                    "training.random_replace_prob", "training.max_predictions_per_seq")

#: sampler options the study sets for every arm (the seed: ``seeds``; the scores: the study's index)
STUDY_SETS = ("seed", "return_perplexity", "return_score")


@dataclass
class SeedsConfig:
    """Seed ``k`` of ``count``: training seed ``first + k``; sampling seed ``sampling_seed`` (``+ k`` when
    ``vary_sampling``)."""

    count: int = 3
    first: int = 0
    sampling_seed: int = 2021
    vary_sampling: bool = True


@dataclass
class DownstreamConfig:
    """A sequence-classification task made from the eval set's labelled documents (split by content hash)."""

    name: str = "kind"
    # a `trainer finetune` task preset (ner, pos, xnli-256, ...) read with its dataset (data_files: local files);
    # null: a task made from the eval set's labels
    preset: Optional[str] = None
    data_files: Optional[dict[str, Any]] = None
    labels: Optional[list[str]] = None  # the classes (documents of other labels are left out); null: all
    train_fraction: float = 0.7
    min_examples: int = 100  # the eval set must give at least this many labelled documents
    max_length: int = 64
    batch_size: int = 16
    epochs: float = 3.0
    learning_rate: float = 1e-4
    seeds: int = 1  # fine-tuning seeds per checkpoint (collapsed runs rerun as `trainer finetune` does)
    max_reruns: int = 2


@dataclass
class RunnerConfig:
    """Where the units run; never part of the results (nor of the study's fingerprint)."""

    engine: Literal["local", "ray"] = "local"
    ray_address: Optional[str] = None  # null: a local Ray started in this process
    cpus_per_unit: int = 1
    index_workers: int = 1  # processes that tokenise and score the corpus files (once per study)


@dataclass
class BootstrapConfig:
    """The report's Multi-Bootstrap (:mod:`trainer.statistics.bootstrap`); never part of the fingerprint (it is
    the report's only)."""

    samples: int = 1000  # resamples of seeds and eval examples
    seed: int = 0


@dataclass
class StudyConfig:
    name: str = "study"
    output_dir: str = "study-output"
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    tokenizer: TokenizerSection = field(default_factory=TokenizerSection)
    trainer: TrainerSection = field(default_factory=TrainerSection)
    arms: list[ArmConfig] = field(default_factory=list)
    baseline: Optional[str] = None  # the arm every other is compared with (default: the first random arm)
    seeds: SeedsConfig = field(default_factory=SeedsConfig)
    budget_tokens: Optional[int] = None  # training tokens per unit (sets training.max_steps); null: the trainer's
    downstream: list[DownstreamConfig] = field(default_factory=list)
    confidence: float = 0.95  # of the confidence intervals (Student-t, Welch and the Multi-Bootstrap's)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def fingerprint(self) -> str:
        """What the results depend on: everything but the runner, the output folder, the report's bootstrap and
        the seed count (more seeds reuse the units already done); each arm as :meth:`ArmConfig.record` holds it."""
        d = self.to_dict()
        d["arms"] = [a.record() for a in self.arms]
        for key in ("runner", "output_dir", "bootstrap"):
            d.pop(key)
        if not d["eval"]["average_last"]:  # absent when off: the folders of earlier studies stay valid
            d["eval"].pop("average_last")
        d["seeds"].pop("count")
        return hashlib.sha1(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]

    @property
    def baseline_arm(self) -> Optional[str]:
        if self.baseline is not None:
            return self.baseline
        from mc4_sampling.weightings import is_uniform

        return next((a.name for a in self.arms if is_uniform(a.sampling_method)), None)


def match_order(arms: list[ArmConfig]) -> list[str]:
    """Arm names ordered so that every arm comes after the arm it matches; a cycle is a ConfigError."""
    by_name = {a.name: a for a in arms}
    order: list[str] = []
    state: dict[str, int] = {}  # 1: visiting, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = path[path.index(name):] + [name]
            raise ConfigError(f"arms: match makes a cycle ({' -> '.join(cycle)}); an arm must match one that "
                              "does not match it back")
        state[name] = 1
        target = by_name[name].match
        if target is not None:
            visit(target, path + [name])
        state[name] = 2
        order.append(name)

    for a in arms:
        visit(a.name, [])
    return order


def sampling_seed(cfg: StudyConfig, k: int) -> int:
    """The sampling seed of seed index ``k``: ``seeds.sampling_seed``, plus ``k`` when ``seeds.vary_sampling``."""
    return cfg.seeds.sampling_seed + (k if cfg.seeds.vary_sampling else 0)


def check_arm_options(arm: ArmConfig) -> None:
    """The sampler's one validation of an arm's options, each error naming ``arms.<name>.<option>``; the
    options the study sets itself (:data:`STUDY_SETS`) and mC4's validation factor are refused."""
    from mc4_sampling.errors import Mc4SamplingError
    from mc4_sampling.options import MC4_ONLY, sampling_options

    def spell(name: str) -> str:
        return f"arms.{arm.name}.{name}"

    values = arm.sampler_values()
    for name in STUDY_SETS + MC4_ONLY:
        if name in values:
            raise ConfigError(f"{spell(name)} is set by the study for every arm (seeds.sampling_seed, the "
                              "index's scores, one split); drop it")
    upsampled = [name for name in ("max_copies", "upsample") if name in values]
    if upsampled:  # the study's arms are keep masks over its index: copies would be dropped, so refused
        raise ConfigError(f"{spell(upsampled[0])}: the study's arms keep or drop each indexed document; upsampling "
                          "(copies) is not supported there; drop it")
    try:
        sampling_options(values, spell)
    except Mc4SamplingError as e:
        raise ConfigError(str(e)) from None


def check_arm_trainer_set(arm: ArmConfig) -> None:
    """Each of ``arms.<name>.trainer_set`` is ``key=value`` with a key of :data:`ARM_TRAINER_KEYS` (the trainer
    checks the values when the study loads each arm's config)."""
    from ..config_loading import parse_override

    for i, text in enumerate(arm.trainer_set):
        try:
            keys, _ = parse_override(text)
        except ConfigError as e:
            raise ConfigError(f"arms.{arm.name}.trainer_set[{i}]: {e}") from None
        if ".".join(keys) not in ARM_TRAINER_KEYS:
            raise ConfigError(f"arms.{arm.name}.trainer_set[{i}]: {'.'.join(keys)!r} is not a key an arm may set; "
                              f"an arm sets {', '.join(ARM_TRAINER_KEYS)} (the rest: trainer.set, for every arm)")


#: trainer keys a source stage may not set (``arms.<name>.source.trainer_set``): the target keeps its shape
SOURCE_REFUSED = ("model.",)


def check_source(arm: ArmConfig) -> None:
    """The checks of ``arms.<name>.source`` that need no file (its files, tokenizer and trainer config:
    :func:`.transfer.check_sources`)."""
    from ..config_loading import parse_override

    s, where = arm.source, f"arms.{arm.name}.source"
    if s.corpus == "files" and not s.files:
        raise ConfigError(f"{where}.files: give the source corpus's files or folders (corpus: files)")
    if s.corpus == "study" and s.files:
        raise ConfigError(f"{where}.files is set but {where}.corpus is 'study' (the study's documents the target "
                          "sample does not keep); set corpus: files")
    if s.corpus == "study" and s.tokenizer != "study":
        raise ConfigError(f"{where}.tokenizer: the study's documents (corpus: study) are tokenised once with the "
                          "study's tokenizer; set tokenizer: study, or give the source as files")
    if s.corpus == "study" and keeps_all(arm.sampling_method):
        raise ConfigError(f"{where}.corpus 'study' is the study's documents the arm's target sample leaves out, and "
                          f"arms.{arm.name} keeps them all (sampling_method none); sample the target (e.g. random "
                          "with max_documents) or give source files")
    for key in ("max_documents", "budget_tokens"):
        if getattr(s, key) is not None and getattr(s, key) < 1:
            raise ConfigError(f"{where}.{key} must be >= 1, got {getattr(s, key)}")
    if s.eval_documents < 1:
        raise ConfigError(f"{where}.eval_documents must be >= 1, got {s.eval_documents}")
    if s.reset_position_embeddings and not s.reinit_embeddings:
        raise ConfigError(f"{where}: reset_position_embeddings with reinit_embeddings false re-initialises the "
                          "positions but keeps the word embeddings; set reinit_embeddings: true")
    for i, text in enumerate(s.trainer_set):
        try:
            keys, _ = parse_override(text)
        except ConfigError as e:
            raise ConfigError(f"{where}.trainer_set[{i}]: {e}") from None
        key = ".".join(keys)
        if key.startswith(SOURCE_REFUSED):
            raise ConfigError(f"{where}.trainer_set[{i}]: {key!r} changes the model, which the target stage "
                              "continues with its shape; set it in trainer.set for every arm (freeze: "
                              "freeze_embeddings)")


def validate(cfg: StudyConfig) -> None:
    """The checks that need no data (the sampler checks each arm's options, :func:`check_arm_options`; its
    files and models in :func:`.sampling.check_arm`)."""

    if not cfg.arms:
        raise ConfigError("arms: give at least one arm (name and sampling_method)")
    names = [a.name for a in cfg.arms]
    for i, a in enumerate(cfg.arms):
        if not a.name or not all(c.isalnum() or c in "-_." for c in a.name):
            raise ConfigError(f"arms[{i}].name={a.name!r} is not valid; use letters, digits, '-', '_' or '.'")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"arms: the name {dupes[0]!r} is given to {names.count(dupes[0])} arms; names must be unique")
    for a in cfg.arms:
        if a.match is not None:
            if a.match not in names:
                raise ConfigError(f"arms.{a.name}.match={a.match!r} names no arm (arms: {', '.join(names)})")
            if a.match == a.name:
                raise ConfigError(f"arms.{a.name}.match names the arm itself; a match cycle")
            if keeps_all(a.sampling_method):
                raise ConfigError(f"arms.{a.name}.match: an arm of sampling_method 'none' keeps every document; give "
                                  "it a weighting (random, gaussian, ...) to match another arm's size")
            if a.sampling_factor is not None or a.max_documents is not None:
                raise ConfigError(f"arms.{a.name}: match computes the arm's size; drop its sampling_factor / "
                                  "max_documents")
        if a.max_documents is not None and a.max_documents < 1:
            raise ConfigError(f"arms.{a.name}.max_documents must be >= 1, got {a.max_documents}")
    for a in cfg.arms:
        check_arm_options(a)
        check_arm_trainer_set(a)
        if a.source is not None:
            check_source(a)
    match_order(cfg.arms)
    if cfg.baseline is not None and cfg.baseline not in names:
        raise ConfigError(f"baseline={cfg.baseline!r} names no arm (arms: {', '.join(names)})")
    if cfg.budget_tokens is not None and cfg.budget_tokens <= 0:
        raise ConfigError(f"budget_tokens must be > 0 (training tokens per unit), got {cfg.budget_tokens}")
    s = cfg.seeds
    if s.count < 1:
        raise ConfigError(f"seeds.count must be >= 1, got {s.count}")
    if s.first < 0 or s.sampling_seed < 0:
        raise ConfigError("seeds.first and seeds.sampling_seed must be >= 0")
    c = cfg.corpus
    if (c.data_dir is None) == (c.files is None):
        raise ConfigError("corpus: give either corpus.data_dir (mC4 layout) or corpus.files (JSON lines), not both")
    if c.max_documents is not None and c.max_documents < 1:
        raise ConfigError(f"corpus.max_documents must be >= 1, got {c.max_documents}")
    e = cfg.eval
    if e.split is not None and c.data_dir is None:
        raise ConfigError("eval.split needs a corpus in the mC4 layout (corpus.data_dir); with corpus.files set "
                          "eval.split: null and eval.fraction")
    if e.split is None and not 0 < e.fraction < 1:
        raise ConfigError(f"eval.fraction must be in (0, 1), got {e.fraction}")
    if e.curve_documents is not None and e.curve_documents < 1:
        raise ConfigError(f"eval.curve_documents must be >= 1, got {e.curve_documents}")
    if e.max_documents is not None and e.max_documents < 1:
        raise ConfigError(f"eval.max_documents must be >= 1, got {e.max_documents}")
    if (e.subsets or any(d.preset is None for d in cfg.downstream)) and c.labels is None:
        raise ConfigError("eval.subsets and downstream tasks made from the eval set need document labels: "
                          "set corpus.labels")
    if e.average_last < 0 or e.average_last == 1:
        raise ConfigError(f"eval.average_last must be 0 (off) or the number of last checkpoints to average (>= 2), "
                          f"got {e.average_last}")
    for a, b in zip([0] + e.revision_steps, e.revision_steps):
        if b <= a:
            raise ConfigError(f"eval.revision_steps must be training steps >= 1, strictly increasing; got "
                              f"{e.revision_steps}")
    for name, labels in e.subsets.items():
        if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
            raise ConfigError(f"eval.subsets.{name} must be a non-empty list of labels, got {labels!r}")
    t = cfg.tokenizer
    if t.vocab_size < 300:
        raise ConfigError(f"tokenizer.vocab_size must be >= 300 (256 bytes and the specials), got {t.vocab_size}")
    tasks = [d.name for d in cfg.downstream]
    if len(set(tasks)) < len(tasks):
        raise ConfigError("downstream: two tasks have the same name")
    for d in cfg.downstream:
        if d.preset is not None:
            from ..finetune.tasks import get_preset

            try:
                get_preset(d.preset)
            except Exception as e:
                raise ConfigError(f"downstream.{d.name}.preset: {e}") from None
        if not 0 < d.train_fraction < 1:
            raise ConfigError(f"downstream.{d.name}.train_fraction must be in (0, 1), got {d.train_fraction}")
        for key in ("min_examples", "max_length", "batch_size", "seeds"):
            if getattr(d, key) < 1:
                raise ConfigError(f"downstream.{d.name}.{key} must be >= 1, got {getattr(d, key)}")
        if d.epochs <= 0 or d.learning_rate <= 0:
            raise ConfigError(f"downstream.{d.name}: epochs and learning_rate must be > 0")
    if not 0 < cfg.confidence < 1:
        raise ConfigError(f"confidence must be in (0, 1), got {cfg.confidence}")
    if cfg.bootstrap.samples < 100:
        raise ConfigError(f"bootstrap.samples must be an integer >= 100, got {cfg.bootstrap.samples}")
    if cfg.bootstrap.seed < 0:
        raise ConfigError(f"bootstrap.seed must be an integer >= 0, got {cfg.bootstrap.seed}")
    for key in ("cpus_per_unit", "index_workers"):
        if getattr(cfg.runner, key) < 1:
            raise ConfigError(f"runner.{key} must be >= 1, got {getattr(cfg.runner, key)}")


def load_study_config(path, overrides: Optional[list[str]] = None) -> StudyConfig:
    """Read a study YAML (a path or a shipped name such as ``study-tiny``), apply ``key=value`` overrides
    (``seeds.count=1``; the value is YAML), check the keys and types, then :func:`validate`."""
    from ..config_loading import from_dict, parse_override, resolve_config_path, yaml_error

    if isinstance(path, StudyConfig):
        cfg = path
    else:
        path = resolve_config_path(str(path), study=True)
        with open(path, encoding="utf-8") as f:
            try:
                data = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise yaml_error(path, e) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
        for text in overrides or []:
            keys, value = parse_override(text)
            node = data
            for k in keys[:-1]:
                node = node.setdefault(k, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"override {text!r}: {k!r} is not a section")
            node[keys[-1]] = value
        cfg = from_dict(StudyConfig, data)
    validate(cfg)
    return cfg


def resolve_path(value: Optional[str]) -> Optional[str]:
    """``SAMPLE_DATA_DIR`` replaced by the bundled sample folder, ``~`` expanded."""
    from ..data.stream import resolve_markers

    return None if value is None else os.path.expanduser(resolve_markers(value))
