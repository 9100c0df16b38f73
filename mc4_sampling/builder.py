"""The ``mc4-sampling`` dataset builder: mC4 (or any corpus source: FineWeb-2, HPLT 3.0, Parquet/JSONL files,
a ``datasets`` dataset) streamed with a per-document keep filter on a quality score (KenLM perplexity by
default, or any registered scorer) and any registered weighting.

:class:`Mc4SamplingConfig` holds and validates the options; what they mean for a language is its
:class:`~mc4_sampling.plan.SamplingPlan`, which the builder applies to every shard. mC4 (``source="mc4"``,
the default) keeps BERTIN's positional draw, bit-exact; the other sources
(:mod:`mc4_sampling.sources`) are read unit by unit and decided by document id (or text) through
:class:`~mc4_sampling.corpus.CorpusSampler`.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, fields
from typing import Sequence

import datasets
from datasets.builder import Key

from .common.errors import UserError
from .corpus import source_examples
from .errors import ConfigError, DataNotFoundError, invalid_choice
from .languages import LANGUAGES, check_language, shard_counts, shard_file_name
from .options import (
    SamplingOptions,
    check_mc4_scorer,
    check_mc4_upsampling,
    check_positive,
    check_sampling_options,
    is_int,
    options_doc,
    wants_score,
)
from .plan import SamplingPlan
from .scoring import ScorerSource
from .shards import ShardRef, shard_refs_for
from .sources.base import CorpusSource, SourceOptions, SourceUnit, make_source, source_names
from .weightings import WEIGHTINGS

_DESCRIPTION = """\
mC4 (the multilingual colossal clean crawled corpus, 108 languages) streamed with a per-document
keep filter: a weighting (BERTIN's random, stepwise or gaussian, or threshold, pareto) of a quality
score (KenLM perplexity by default, as the BERTIN project sampled Spanish mC4; fastText, transformers,
a score column or a callable)."""
_CITATION = """\
@article{BERTIN,
  author = {Javier De la Rosa y Eduardo G. Ponferrada y Manu Romero y Paulo Villegas y Pablo
            González de Prado Salas y María Grandury},
  title = {BERTIN: Efficient Pre-Training of a Spanish Language Model using Perplexity Sampling},
  journal = {Procesamiento del Lenguaje Natural}, volume = {68}, pages = {13--23}, year = {2022}
}
@inproceedings{xue-etal-2021-mt5,
  title = {mT5: A Massively Multilingual Pre-trained Text-to-Text Transformer},
  author = {Xue, Linting and others}, booktitle = {NAACL}, year = {2021}
}"""
_LICENSE = "ODC-BY 1.0 (mC4 / C4), subject to Common Crawl's terms of use"


@dataclass
class Mc4SamplingConfig(SamplingOptions, datasets.BuilderConfig):
    """Options of the ``mc4-sampling`` builder (every one is also a ``load_dataset`` keyword): the
    sampling options (:class:`~mc4_sampling.options.SamplingOptions`, declared once for every entry
    point; listed below from that declaration) and the mC4 source's.

    Attributes:
        languages: mC4 language codes; defaults to the config name (``"es"``, or ``"es+ca"``).
        base_url: HTTP(S) mirror of ``allenai/c4``'s ``multilingual/`` folder.
        shards: only these shard indices of each split (indices beyond a split's count ignored).
        http_retries: reconnections allowed per remote file (an integer >= 0).
        max_record_bytes: longest line read as a record (default 16 MiB); a longer one is a bad
            record (see ``on_bad_record``).
        http_timeout: seconds without an answer or a byte before a remote request counts as
            failed (default 60).
        source: the corpus source (``mc4``, the default; ``fineweb2``, ``hplt3``, ``files``,
            ``datasets``: see docs/sampling.md, "Sources"); ``data_dir`` is its local folder,
            ``base_url`` its ``http(s)://`` or ``hf://datasets/...`` location.
        language: the language as the source spells it (``spa_Latn`` for FineWeb-2 and HPLT 3.0);
            for mC4 the same as ``languages=[language]``.
        data_files: for ``source="files"``: globs per split (``{{"train": ["a/*.parquet"]}}``).
        text_column, id_column, metadata_columns: override the source's columns (``id_column=""``:
            the draw keyed by the text's hash).
        source_options: the source's own options (``{{"min_bin": 7}}`` for HPLT 3.0,
            ``{{"rows_per_unit": 100000}}`` for Parquet files, ``{{"config": ...}}`` for ``datasets``).
{sampling}
    """

    languages: Sequence[str] | None = None
    base_url: str | None = None
    shards: Sequence[int] | None = None
    http_retries: int = 5
    max_record_bytes: int | None = None
    http_timeout: float | None = None
    source: str = "mc4"
    language: str | None = None
    text_column: str | None = None
    id_column: str | None = None
    metadata_columns: Sequence[str] | None = None
    source_options: dict | None = None

    __doc__ = __doc__.format(sampling=options_doc())

    def __post_init__(self):
        if self.name == "default" and self.source != "mc4" and (self.language or self.languages):
            self.name = f"{self.source}-{self.language or '+'.join(self.languages)}"
        elif self.name == "default" and (self.languages or self.language):
            self.name = "+".join(self.languages or [self.language])
        super().__post_init__()

    @property
    def is_mc4(self) -> bool:
        return self.source == "mc4"

    def validate(self) -> "Mc4SamplingConfig":
        """Check every option; raise :class:`ConfigError` naming the option and its valid range."""
        if not isinstance(self.source, str) or self.source not in source_names():
            raise invalid_choice("source", self.source, source_names())
        if not self.is_mc4:
            return self._validate_source()
        for name in ("text_column", "id_column", "metadata_columns", "source_options"):
            if getattr(self, name) is not None:
                raise ConfigError(f"{name}={getattr(self, name)!r} is an option of the other corpus sources; mC4's "
                                  "columns are fixed (text, timestamp, url): pass source=... to read another corpus")
        if self.data_files:
            raise ConfigError("data_files is an option of source='files'; mC4 is read from data_dir or base_url")
        if self.language is not None:
            if self.languages and list(self.languages) != [self.language]:
                raise ConfigError(f"language={self.language!r} and languages={self.languages!r} disagree; give one")
            self.languages = [self.language]
        langs = self.languages or self.name.split("+")
        if isinstance(langs, str):
            langs = [langs]
        if not isinstance(langs, (list, tuple)) or not all(isinstance(lang, str) for lang in langs):
            raise ConfigError(f"languages={self.languages!r} is not valid; give mC4 language codes, e.g. ['es', 'ca']")
        self.languages = [check_language(lang) for lang in langs]
        repeated = sorted({lang for lang in self.languages if self.languages.count(lang) > 1})
        if repeated:  # every document of a repeated language would come twice
            raise ConfigError(f"languages={self.languages!r} names {', '.join(map(repr, repeated))} more than once; "
                              "give each language once")
        check_sampling_options(self)
        check_mc4_scorer(self)
        check_mc4_upsampling(self)
        self._check_reading()
        for name in ("base_url", "data_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise ConfigError(f"{name}={value!r} is not valid; it must be a string")
        if self.base_url is not None and not str(self.base_url).startswith(("http://", "https://")):
            raise ConfigError(f"base_url={self.base_url!r} is not valid; it must start with http:// or https://")
        if self.data_dir and self.base_url:
            raise ConfigError("data_dir and base_url are exclusive: give a local folder or an HTTP mirror, not both")
        if self.shards is not None:
            most = max(shard_counts()[lang].train for lang in self.languages)
            if not (
                isinstance(self.shards, (list, tuple, range)) and len(self.shards) > 0
                and all(is_int(i) and 0 <= i < most for i in self.shards)
            ):
                raise ConfigError(f"shards={self.shards!r} is not valid; give shard indices in [0, {most})")
            self.shards = sorted(set(self.shards))
        return self

    def _check_reading(self) -> None:
        """The reader's options (every source): ``http_timeout`` > 0, ``http_retries`` >= 0,
        ``max_record_bytes`` >= 1."""
        check_positive(self, ("http_timeout",))
        for name, least in (("http_retries", 0), ("max_record_bytes", 1)):
            value = getattr(self, name)
            if (value is not None or name != "max_record_bytes") and not (is_int(value) and value >= least):
                raise ConfigError(f"{name}={value!r} is not valid; it must be an integer >= {least}")

    def _validate_source(self) -> "Mc4SamplingConfig":
        """:meth:`validate` for a source other than mC4: one language, a location, the source's columns."""
        langs = list(self.languages or [])
        language = self.language or (langs[0] if len(langs) == 1 else None)
        if not isinstance(language, str) or not language or (langs and langs != [language]):
            raise ConfigError(f"language={self.language!r} is not valid for source={self.source!r}; give one "
                              "language as the source spells it, e.g. language='spa_Latn'")
        self.language, self.languages = language, [language]
        check_sampling_options(self)
        self._check_reading()
        if self.shards is not None:
            raise ConfigError("shards is an option of mC4; other sources are read whole (publish splits them "
                              "into units)")
        if self.data_dir and self.base_url:
            raise ConfigError("data_dir and base_url are exclusive: give a local folder or a remote location, not both")
        if self.base_url is not None and not str(self.base_url).startswith(("http://", "https://", "hf://")):
            raise ConfigError(f"base_url={self.base_url!r} is not valid; it must start with http://, https:// or "
                              "hf://datasets/")
        for name in ("text_column", "id_column"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{name}={value!r} is not valid; it must be a column name")
        if self.metadata_columns is not None and (
                isinstance(self.metadata_columns, str)
                or not all(isinstance(c, str) for c in self.metadata_columns)):
            raise ConfigError(f"metadata_columns={self.metadata_columns!r} is not valid; give a list of column names")
        if self.source_options is not None and not isinstance(self.source_options, dict):
            raise ConfigError(f"source_options={self.source_options!r} is not valid; give a dict")
        source = self.corpus_source()
        if ScorerSource.of(self, language).kind == "column":
            column = self.score_column or dict(self.scorer_options or {}).get("column")
            held = [*source.metadata_columns, *source.score_columns]
            if column not in held:
                raise ConfigError(f"score_column={column!r}: the {source.name} source has no such column (its "
                                  f"records carry {', '.join(held) or 'text only'}; add it with metadata_columns)",
                                  option="score_column", value=column)
        return self

    def source_data_files(self) -> dict | None:
        """``data_files`` as ``{split: [patterns]}`` (``load_dataset`` hands them over as a ``DataFilesDict``)."""
        if not self.data_files:
            return None
        return {str(split): [str(p) for p in files] for split, files in dict(self.data_files).items()}

    def source_options_of(self) -> SourceOptions:
        """The :class:`~mc4_sampling.sources.base.SourceOptions` of these options."""
        return SourceOptions(self.source, self.language or self.languages[0],
                             str(self.data_dir) if self.data_dir else self.base_url, self.source_data_files(),
                             self.text_column, self.id_column,
                             tuple(self.metadata_columns) if self.metadata_columns is not None else None,
                             dict(self.source_options or {}))

    def corpus_source(self) -> CorpusSource:
        """The corpus source these options read (built, not checked: :meth:`CorpusSource.check`)."""
        return make_source(self.source_options_of())

    def content_fingerprint(self) -> str:
        """A hash of the content of every local file the options point to, so that the cache of a
        non-streaming ``load_dataset`` is not reused after one of them changed: the calibration
        file and the perplexity model files (content fingerprints, when the sampling uses them)
        and each local shard (size, modification time, first and last 64 KiB). A file that
        cannot be found is left out: the error comes when the data is generated. A corpus source's
        local files count the same way (size, modification time, first and last 64 KiB)."""
        from .scoring.base import file_fingerprint

        h = hashlib.blake2b(digest_size=8)
        uses_model = wants_score(self) or WEIGHTINGS[self.sampling_method].needs_scores
        sampled = not WEIGHTINGS[self.sampling_method].keeps_all
        if sampled and self.calibration is not None and os.path.isfile(self.calibration):
            h.update(f"calibration:{file_fingerprint(str(self.calibration))}\n".encode())
        for lang in self.languages if uses_model else ():
            try:
                model_id = ScorerSource.of(self, lang).load().model_id
            except UserError:
                continue
            h.update(f"model:{lang}:{model_id}\n".encode())
        if not self.is_mc4:  # local files only: listing a remote source here would reach the network
            patterns = [p for files in (self.source_data_files() or {}).values() for p in files]
            local = (os.path.exists(os.path.expanduser(str(self.data_dir))) if self.data_dir
                     else bool(patterns) and not any("://" in p for p in patterns))
            try:
                source = self.corpus_source() if local else None
                paths = sorted({u.path for split in source.splits() for u in source.units(split)}) if source else []
            except UserError:
                paths = []
            for path in paths:
                if os.path.isfile(path):
                    h.update(f"file:{path}:{_shard_fingerprint(path)}\n".encode())
        elif self.data_dir:
            for split in ("train", "validation"):
                try:
                    refs = shard_refs_for(self, split)
                except UserError:
                    continue
                for ref in refs:
                    h.update(f"shard:{ref.path}:{_shard_fingerprint(ref.path)}\n".encode())
        return h.hexdigest()


def _shard_fingerprint(path: str, edge: int = 64 << 10) -> str:
    """Size, modification time and a hash of the first and last ``edge`` bytes of a local file."""
    st = os.stat(path)
    h = hashlib.blake2b(digest_size=8)
    h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    if not stat.S_ISREG(st.st_mode):  # a FIFO or a device: reading it here would consume it
        return h.hexdigest()
    with open(path, "rb") as f:
        h.update(f.read(edge))
        if st.st_size > 2 * edge:
            f.seek(-edge, os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()


class Mc4Sampling(datasets.GeneratorBasedBuilder):
    """mC4 streamed with perplexity sampling; see :class:`Mc4SamplingConfig` for the options."""

    BUILDER_CONFIG_CLASS = Mc4SamplingConfig
    BUILDER_CONFIGS = [Mc4SamplingConfig(name=lang, languages=[lang]) for lang in LANGUAGES]
    VERSION = datasets.Version("1.0.0")

    def _create_builder_config(self, config_name=None, custom_features=None, config_id=None, **config_kwargs):
        valid = {f.name for f in fields(Mc4SamplingConfig)}
        unknown = sorted(set(config_kwargs) - valid)
        if unknown:
            options = sorted(valid - {"name", "version", "description", "data_files"})
            raise ConfigError(f"unknown option(s) {', '.join(unknown)} for mc4-sampling; "
                              f"valid options: {', '.join(options)}")
        source = config_kwargs.get("source") or "mc4"
        if isinstance(config_name, str) and config_name not in self.builder_configs and source != "mc4":
            config_kwargs.setdefault("language", config_name)  # the config name is the source's language
            self.builder_configs[config_name] = Mc4SamplingConfig(name=config_name, source=source,
                                                                  language=config_kwargs["language"])
        elif isinstance(config_name, str) and config_name not in self.builder_configs:
            if all(lang in LANGUAGES for lang in config_name.split("+")):
                config_kwargs.setdefault("languages", config_name.split("+"))
                self.builder_configs[config_name] = Mc4SamplingConfig(name=config_name,
                                                                      languages=config_name.split("+"))
            else:
                check_language(config_name)
        explicit_id = config_id is not None
        config, config_id = super()._create_builder_config(config_name, custom_features, config_id, **config_kwargs)
        config.validate()
        if not explicit_id:  # the cache of a non-streaming build depends on the files' content too
            config_id = f"{config_id}-{config.content_fingerprint()}"
        return config, config_id

    def _info(self):
        if not self.config.is_mc4:  # the source's columns: known once its files are read
            return datasets.DatasetInfo(description=_DESCRIPTION, citation=_CITATION)
        features = {"text": datasets.Value("string"), "timestamp": datasets.Value("string"),
                    "url": datasets.Value("string")}
        if wants_score(self.config):
            features[ScorerSource.of(self.config, self.config.languages[0]).score_name] = datasets.Value("float64")
        return datasets.DatasetInfo(
            description=_DESCRIPTION,
            features=datasets.Features(features),
            homepage="https://huggingface.co/datasets/allenai/c4",
            license=_LICENSE,
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        config = self.config
        if not config.is_mc4:
            return self._source_split_generators()
        for lang in config.languages:  # resolve models, boundaries and factors before any reading
            SamplingPlan.resolve(config, lang)
        generators = []
        for split, name in (("train", datasets.Split.TRAIN), ("validation", datasets.Split.VALIDATION)):
            refs = shard_refs_for(config, split)
            if not refs:
                continue
            generators.append(
                datasets.SplitGenerator(
                    name=name,
                    gen_kwargs={"shards": refs, "file_ids": list(range(len(refs)))},
                )
            )
        if not generators:
            raise DataNotFoundError(
                f"no mC4 files for {', '.join(config.languages)} in data_dir={config.data_dir!r}. Expected names like "
                f"{shard_file_name(config.languages[0], 'train', 0, shard_counts()[config.languages[0]].train)}; "
                "mc4_sampling.SAMPLE_DATA_DIR holds a small Spanish sample"
            )
        return generators

    def _source_split_generators(self):
        """The splits of a corpus source: its units, checked and located before any reading."""
        config = self.config
        source = config.corpus_source()
        source.check()
        SamplingPlan.resolve(config, config.language)  # models, boundaries, factors before any reading
        generators = []
        for split in source.splits():
            units = source.units(split)
            if units:
                generators.append(datasets.SplitGenerator(name=split, gen_kwargs={"units": units}))
        if not generators:
            raise DataNotFoundError(f"no files for {config.language!r} in the {source.name} source "
                                    f"({source.options.location or source.options.data_files})")
        return generators

    def _generate_examples(self, shards: list[ShardRef] | None = None, file_ids: list[int] | None = None,
                           units: list[SourceUnit] | None = None):
        if units is not None:
            yield from self._generate_source_examples(units)
            return
        samplers = {}
        for shard, file_id in zip(shards, file_ids):
            key = (shard.language, shard.split)
            if key not in samplers:
                samplers[key] = SamplingPlan.resolve(self.config, shard.language).document_sampler(shard.split)
            for position, example in samplers[key].sample(shard):
                yield Key(file_id, position), example

    def _generate_source_examples(self, units: list[SourceUnit]):
        """The kept documents of a corpus source's units, decided by document id (or text)."""
        config = self.config
        for unit, position, example in source_examples(config, config.corpus_source(), units):
            yield Key(unit.index, position), example
