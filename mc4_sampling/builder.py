"""The ``mc4-sampling`` dataset builder: mC4 streamed with a perplexity-based keep filter."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, fields
from typing import Sequence

import datasets
from datasets.builder import Key

from .errors import ConfigError, DataNotFoundError
from .languages import DEFAULT_BASE_URL, LANGUAGES, check_language, shard_counts, shard_file_name
from .perplexity import MODES, load_perplexity_model
from .pipeline import DocumentSampler, SamplingRule, ShardRef
from .reader import BAD_RECORD_POLICIES
from .sampling import DEFAULT_FACTORS, DEFAULT_WIDTH, METHODS

logger = logging.getLogger(__name__)

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

    # ---------------------------------------------------------------------------------------
    def validate(self) -> "Mc4SamplingConfig":
        """Check every option; raise :class:`ConfigError` naming the option and its valid range."""
        langs = self.languages or self.name.split("+")
        if isinstance(langs, str):
            langs = [langs]
        self.languages = [check_language(lang) for lang in langs]
        if self.sampling_method not in METHODS:
            raise ConfigError(
                f"sampling_method={self.sampling_method!r} is not valid; choose one of {', '.join(METHODS)}"
            )
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
            raise ConfigError(f"perplexity_mode={self.perplexity_mode!r} is not valid; choose one of {', '.join(MODES)}")
        if self.on_bad_record not in BAD_RECORD_POLICIES:
            raise ConfigError(
                f"on_bad_record={self.on_bad_record!r} is not valid; choose one of {', '.join(BAD_RECORD_POLICIES)}"
            )
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

    # ---------------------------------------------------------------------------------------
    def sampling_rules(self, language: str) -> dict[str, SamplingRule]:
        """The rule for each split, with defaults filled in from the calibration or the model."""
        method = self.sampling_method
        if method == "none":
            return {"train": SamplingRule("none"), "validation": SamplingRule("none")}
        calibration = self._calibration()
        params = calibration.parameters(method) if calibration else {}
        model = self.model(language) if method in ("stepwise", "gaussian") else None
        boundaries = None
        if model is not None:
            if calibration is not None:
                calibration.check_model(model.model_id, model.mode)
            boundaries = self.boundaries or (calibration.boundaries if calibration else None) or model.default_boundaries
            if boundaries is None:
                raise ConfigError(
                    f"sampling_method={method!r} needs boundaries (three quartile perplexities) for "
                    f"{model.name} in {model.mode!r} mode, which has no default ones: pass boundaries=(b1, b2, b3) "
                    "or a calibration file made with `mc4-sampling calibrate`"
                )
        factor = self.sampling_factor or params.get("factor")
        if factor is None:
            # a model's default factors go with its default boundaries (stepwise's scale depends on them)
            own_boundaries = model is not None and self.boundaries is None and calibration is None
            factor = (model.default_factors or {}).get(method) if own_boundaries else None
            if factor is None and method == "stepwise":
                raise ConfigError(
                    "sampling_method='stepwise' needs sampling_factor for these boundaries (its scale "
                    "depends on them): pass sampling_factor or a calibration file"
                )
            factor = factor or DEFAULT_FACTORS[method]
        width = self.width or params.get("width") or (model and model.default_width) or DEFAULT_WIDTH
        train = SamplingRule(method, float(factor), boundaries, float(width))
        if self.validation_sampling_factor is None:
            validation = SamplingRule("none")
        else:
            validation = SamplingRule(method, float(self.validation_sampling_factor), boundaries, float(width))
        return {"train": train, "validation": validation}

    def document_sampler(self, language: str, split: str, *, return_perplexity: bool | None = None,
                         score_all: bool = False) -> DocumentSampler:
        """The keep filter of one language and split, as the builder applies it.

        ``return_perplexity`` overrides the option; ``score_all`` scores rejected documents too.
        """
        return_perplexity = self.return_perplexity if return_perplexity is None else return_perplexity
        needs_model = self.needs_model(split) or return_perplexity or score_all
        return DocumentSampler(
            self.sampling_rules(language)[split],
            seed=self.seed,
            model=self.model(language) if needs_model else None,
            return_perplexity=return_perplexity,
            score_all=score_all,
            on_bad_record=self.on_bad_record,
            retries=self.http_retries,
        )

    def needs_model(self, split: str) -> bool:
        return self.return_perplexity or (
            self.sampling_method in ("stepwise", "gaussian")
            and (split == "train" or self.validation_sampling_factor is not None)
        )

    def model(self, language: str):
        if self.perplexity_model is None and language != "es" and self.perplexity_mode != "raw":
            raise ConfigError(
                f"the embedded perplexity model is Spanish; for language {language!r} pass perplexity_model= "
                "(a KenLM file, a folder or a Hub location of CCNet-style <lang>.arpa.bin/<lang>.sp.model)"
            )
        return load_perplexity_model(self.perplexity_model, language, self.perplexity_mode)

    def _calibration(self):
        if self.calibration is None:
            return None
        from .calibration import load_calibration

        return load_calibration(self.calibration)

    # ---------------------------------------------------------------------------------------
    def shard_refs(self, split: str) -> list[ShardRef]:
        """The files of ``split`` for every language, local (``data_dir``) or remote."""
        refs = []
        for lang in self.languages:
            if self.data_dir:
                found = _local_shards(self.data_dir, lang, split)
                indices = sorted(found) if self.shards is None else [i for i in self.shards if i in found]
                refs += [ShardRef(lang, split, i, found[i]) for i in indices]
            else:
                n = shard_counts()[lang].for_split(split)
                base = (self.base_url or DEFAULT_BASE_URL).rstrip("/")
                indices = range(n) if self.shards is None else [i for i in self.shards if i < n]
                refs += [ShardRef(lang, split, i, f"{base}/{shard_file_name(lang, split, i, n)}") for i in indices]
        return refs


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x


def _local_shards(data_dir: str, language: str, split: str) -> dict[int, str]:
    """Shard index -> path of the files of one language and split found in ``data_dir``."""
    folder = os.path.expanduser(str(data_dir))
    if os.path.isdir(os.path.join(folder, "multilingual")):
        folder = os.path.join(folder, "multilingual")
    if not os.path.isdir(folder):
        raise DataNotFoundError(
            f"data_dir={data_dir!r} is not a folder. Give a folder laid out like allenai/c4's "
            "multilingual/ (files c4-<lang>.tfrecord-NNNNN-of-NNNNN.json.gz), e.g. "
            "mc4_sampling.SAMPLE_DATA_DIR, or leave data_dir unset to stream from the Hub"
        )
    suffix = "" if split == "train" else "-validation"
    pattern = re.compile(rf"^c4-{re.escape(language)}{suffix}\.tfrecord-(\d{{5}})-of-(\d{{5}})\.json\.gz$")
    found = {}
    for name in os.listdir(folder):
        m = pattern.match(name)
        if m:
            found[int(m[1])] = os.path.join(folder, name)
    return found


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
            config.sampling_rules(lang)
            if config.needs_model("train") or config.needs_model("validation"):
                config.model(lang)
        generators = []
        for split, name in (("train", datasets.Split.TRAIN), ("validation", datasets.Split.VALIDATION)):
            refs = config.shard_refs(split)
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
        config = self.config
        for shard, file_id in zip(shards, file_ids):
            for position, example in config.document_sampler(shard.language, shard.split).sample(shard):
                yield Key(file_id, position), example
