"""The ``mc4-sampling`` dataset builder: mC4 streamed with a perplexity-based keep filter.

:class:`Mc4SamplingConfig` holds and validates the options; what they mean for a language is its
:class:`~mc4_sampling.plan.SamplingPlan`, which the builder applies to every shard.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import datasets
from datasets.builder import Key

from .errors import ConfigError, DataNotFoundError, invalid_choice
from .languages import LANGUAGES, check_language, shard_counts, shard_file_name
from .perplexity import MODES
from .plan import SamplingPlan
from .reader import BAD_RECORD_POLICIES
from .shards import ShardRef, shard_refs_for
from .weighting import METHODS

_DESCRIPTION = """\
mC4 (the multilingual colossal clean crawled corpus, 108 languages) streamed with a per-document
keep filter: random, stepwise or gaussian weighting of the document's KenLM perplexity, as the
BERTIN project sampled Spanish mC4."""
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
class Mc4SamplingConfig(datasets.BuilderConfig):
    """Options of the ``mc4-sampling`` builder (every one is also a ``load_dataset`` keyword).

    Attributes:
        languages: mC4 language codes; defaults to the config name (``"es"``, or ``"es+ca"``).
        sampling_method: ``none``, ``random``, ``stepwise`` or ``gaussian``.
        sampling_factor: the weighting's factor; BERTIN's per-method default when unset
            (random 0.5, gaussian 0.78, stepwise 1.5e5 for BERTIN's boundaries).
        validation_sampling_factor: factor for the validation split; unset, the validation split
            is not sampled (every document kept), as BERTIN did.
        width: gaussian width (default 9/2).
        boundaries: three increasing perplexities (quartiles) for stepwise/gaussian; default:
            those that belong to the perplexity model and mode.
        perplexity_model: unset (embedded Spanish model), a KenLM path, a pair of paths, a folder,
            or a Hub location ``owner/name[/subfolder][@revision]``.
        perplexity_mode: ``raw`` or ``ccnet``; default depends on the model (see README).
        seed: seed of the keep decisions.
        return_perplexity: add a ``perplexity`` float to every document.
        base_url: HTTP(S) mirror of ``allenai/c4``'s ``multilingual/`` folder.
        shards: only these shard indices of each split (indices beyond a split's count ignored).
        on_bad_record: ``raise`` (default) or ``skip`` (skip and count bad records).
        calibration: a calibration JSON file (``mc4-sampling calibrate``), used in place of
            ``boundaries``, ``sampling_factor`` and ``width``.
        http_retries: reconnections allowed per remote file.
    """

    languages: Sequence[str] | None = None
    sampling_method: str = "none"
    sampling_factor: float | None = None
    validation_sampling_factor: float | None = None
    width: float | None = None
    boundaries: Sequence[float] | None = None
    perplexity_model: str | Sequence[str] | None = None
    perplexity_mode: str | None = None
    seed: int = 2021
    return_perplexity: bool = False
    base_url: str | None = None
    shards: Sequence[int] | None = None
    on_bad_record: str = "raise"
    calibration: str | None = None
    http_retries: int = 5

    def __post_init__(self):
        if self.languages and self.name == "default":
            self.name = "+".join(self.languages)
        super().__post_init__()

    def validate(self) -> "Mc4SamplingConfig":
        """Check every option; raise :class:`ConfigError` naming the option and its valid range."""
        langs = self.languages or self.name.split("+")
        if isinstance(langs, str):
            langs = [langs]
        self.languages = [check_language(lang) for lang in langs]
        if self.sampling_method not in METHODS:
            raise invalid_choice("sampling_method", self.sampling_method, METHODS)
        for name in ("sampling_factor", "validation_sampling_factor", "width"):
            value = getattr(self, name)
            if value is not None and not (_is_number(value) and value > 0):
                raise ConfigError(f"{name}={value!r} is not valid; it must be a number > 0")
        if self.boundaries is not None:
            b = self.boundaries
            if not (
                isinstance(b, (list, tuple)) and len(b) == 3 and all(_is_number(x) for x in b)
                and 0 < b[0] < b[1] < b[2]
            ):
                raise ConfigError(
                    f"boundaries={b!r} is not valid; it must be three increasing positive perplexities (b1 < b2 < b3)"
                )
            self.boundaries = tuple(float(x) for x in b)
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool) and self.seed >= 0):
            raise ConfigError(f"seed={self.seed!r} is not valid; it must be an integer >= 0")
        if self.perplexity_mode is not None and self.perplexity_mode not in MODES:
            raise invalid_choice("perplexity_mode", self.perplexity_mode, MODES)
        if self.on_bad_record not in BAD_RECORD_POLICIES:
            raise invalid_choice("on_bad_record", self.on_bad_record, BAD_RECORD_POLICIES)
        if self.base_url is not None and not str(self.base_url).startswith(("http://", "https://")):
            raise ConfigError(f"base_url={self.base_url!r} is not valid; it must start with http:// or https://")
        if self.data_dir and self.base_url:
            raise ConfigError("data_dir and base_url are exclusive: give a local folder or an HTTP mirror, not both")
        if self.shards is not None:
            most = max(shard_counts()[lang].train for lang in self.languages)
            if not (
                isinstance(self.shards, (list, tuple, range)) and len(self.shards) > 0
                and all(isinstance(i, int) and 0 <= i < most for i in self.shards)
            ):
                raise ConfigError(f"shards={self.shards!r} is not valid; give shard indices in [0, {most})")
            self.shards = sorted(set(self.shards))
        if self.calibration is not None:
            clashes = [n for n in ("boundaries", "sampling_factor", "width") if getattr(self, n) is not None]
            if clashes:
                raise ConfigError(
                    f"calibration={self.calibration!r} replaces {', '.join(clashes)}; pass one or the other"
                )
        return self


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x


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
            raise ConfigError(f"unknown option(s) {', '.join(unknown)} for mc4-sampling; valid options: {', '.join(options)}")
        if isinstance(config_name, str) and config_name not in self.builder_configs:
            if all(lang in LANGUAGES for lang in config_name.split("+")):
                config_kwargs.setdefault("languages", config_name.split("+"))
                self.builder_configs[config_name] = Mc4SamplingConfig(name=config_name, languages=config_name.split("+"))
            else:
                check_language(config_name)
        config, config_id = super()._create_builder_config(config_name, custom_features, config_id, **config_kwargs)
        config.validate()
        return config, config_id

    def _info(self):
        features = {"text": datasets.Value("string"), "timestamp": datasets.Value("string"), "url": datasets.Value("string")}
        if self.config.return_perplexity:
            features["perplexity"] = datasets.Value("float64")
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
