"""The ``mc4-sampling`` dataset builder: mC4 streamed with a per-document keep filter on a quality score
(KenLM perplexity by default, or any registered scorer) and any registered weighting.

:class:`Mc4SamplingConfig` holds and validates the options; what they mean for a language is its
:class:`~mc4_sampling.plan.SamplingPlan`, which the builder applies to every shard.
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
from .errors import ConfigError, DataNotFoundError
from .languages import LANGUAGES, check_language, shard_counts, shard_file_name
from .options import (
    SamplingOptions,
    check_mc4_scorer,
    check_positive,
    check_sampling_options,
    is_int,
    options_doc,
    wants_score,
)
from .plan import SamplingPlan
from .scoring import ScorerSource
from .shards import ShardRef, shard_refs_for
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
{sampling}
    """

    languages: Sequence[str] | None = None
    base_url: str | None = None
    shards: Sequence[int] | None = None
    http_retries: int = 5
    max_record_bytes: int | None = None
    http_timeout: float | None = None

    __doc__ = __doc__.format(sampling=options_doc())

    def __post_init__(self):
        if self.languages and self.name == "default":
            self.name = "+".join(self.languages)
        super().__post_init__()

    def validate(self) -> "Mc4SamplingConfig":
        """Check every option; raise :class:`ConfigError` naming the option and its valid range."""
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
        check_positive(self, ("http_timeout",))
        for name, least in (("http_retries", 0), ("max_record_bytes", 1)):
            value = getattr(self, name)
            if (value is not None or name != "max_record_bytes") and not (is_int(value) and value >= least):
                raise ConfigError(f"{name}={value!r} is not valid; it must be an integer >= {least}")
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

    def content_fingerprint(self) -> str:
        """A hash of the content of every local file the options point to, so that the cache of a
        non-streaming ``load_dataset`` is not reused after one of them changed: the calibration
        file and the perplexity model files (content fingerprints, when the sampling uses them)
        and each local shard (size, modification time, first and last 64 KiB). A file that
        cannot be found is left out: the error comes when the data is generated."""
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
        if self.data_dir:
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
        if isinstance(config_name, str) and config_name not in self.builder_configs:
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

    def _generate_examples(self, shards: list[ShardRef], file_ids: list[int]):
        samplers = {}
        for shard, file_id in zip(shards, file_ids):
            key = (shard.language, shard.split)
            if key not in samplers:
                samplers[key] = SamplingPlan.resolve(self.config, shard.language).document_sampler(shard.split)
            for position, example in samplers[key].sample(shard):
                yield Key(file_id, position), example
