"""Where perplexity models come from, and the sampling defaults declared for them.

:func:`load_perplexity_model` resolves a ``perplexity_model`` option (nothing for the embedded
model, a KenLM file, a pair of files, a folder, or a Hub location) into a
:class:`~mc4_sampling.perplexity.PerplexityModel`, once per process.

Default sampling parameters (quartile ``boundaries``, per-method ``factors``, gaussian ``width``)
belong to a (model, mode) pair and come only from an explicit declaration, never from a file name:

- a ``model.json`` in the model's folder (the embedded model has one), declaring them for one
  mode (``"mode"`` beside ``"boundaries"``, ``"factors"``, ``"width"``) or per mode
  (``"modes": {"raw": {...}, "ccnet": {...}}``);
- :data:`KNOWN_SOURCES`: Hub locations whose defaults are known, such as the CCNet model BERTIN
  scored in raw mode.

Any other model, or a declared one in another mode, has no defaults: stepwise and gaussian
sampling with it need boundaries or a calibration file.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .common.hub import HubLocation
from .errors import ConfigError, ModelNotFoundError, invalid_choice
from .perplexity import MODES, SENTENCEPIECE_MODES, PerplexityModel
from .weightings import WEIGHTINGS, are_quartiles

logger = logging.getLogger(__name__)

#: Folder of the embedded Spanish model: ``es.arpa.bin``, ``es.sp.model`` and ``model.json``.
DEFAULT_MODEL_DIR = str(Path(__file__).with_name("data") / "model")
#: Name of the declaration file a model folder may carry.
MODEL_DECLARATION = "model.json"

@dataclass(frozen=True)
class SamplingDefaults:
    """The sampling parameters that belong to a (model, mode) pair; all ``None`` when unknown."""

    boundaries: tuple[float, float, float] | None = None
    factors: Mapping[str, float] | None = None
    width: float | None = None

    def model_kwargs(self) -> dict:
        """As :class:`PerplexityModel` keyword arguments."""
        return {"default_boundaries": self.boundaries, "default_factors": self.factors, "default_width": self.width}


#: BERTIN's Spanish quartiles: CCNet's ``es.arpa.bin`` (``edugp/kenlm``, ``wikipedia``) in ``raw`` mode.
BERTIN_ES_BOUNDARIES = (536394.99320948, 662247.50212365, 919250.87225178)

#: (Hub repository, subfolder, language, mode) -> defaults. BERTIN scored CCNet's Spanish
#: Wikipedia model in raw mode and computed these quartiles on 44 M Spanish mC4 documents.
KNOWN_SOURCES: dict[tuple[str, str, str, str], SamplingDefaults] = {
    # with these quartiles, each weighting's own default factor is BERTIN's (:attr:`Weighting.default_factor`)
    ("edugp/kenlm", "wikipedia", "es", "raw"): SamplingDefaults(
        BERTIN_ES_BOUNDARIES, {name: w.default_factor for name, w in WEIGHTINGS.items() if not w.keeps_all}),
}


# --- model.json ---------------------------------------------------------------------------------


def read_declaration(folder: str) -> dict | None:
    """The ``model.json`` of ``folder`` as a dict, or ``None`` when there is none."""
    path = os.path.join(folder, MODEL_DECLARATION)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelNotFoundError(f"{path}: not a readable model declaration ({e})") from None
    if not isinstance(meta, dict):
        raise ModelNotFoundError(f"{path}: not a model declaration (a JSON object)")
    return meta


def declared_defaults(meta: Mapping, mode: str, where: str = MODEL_DECLARATION) -> SamplingDefaults:
    """The defaults ``meta`` (a ``model.json``) declares for ``mode``; none for another mode.

    ``meta`` declares one mode (``"mode"`` with ``"boundaries"``, ``"factors"``, ``"width"`` at the
    top level; ``"ccnet"`` when ``"mode"`` is absent) or several (``"modes": {mode: {...}}``).
    """
    per_mode = meta.get("modes") or {meta.get("mode", "ccnet"): meta}
    declared = per_mode.get(mode) or {}
    boundaries = declared.get("boundaries")
    if boundaries is not None:
        try:
            boundaries = tuple(float(b) for b in boundaries)
        except (TypeError, ValueError):
            boundaries = ()
        if not are_quartiles(boundaries):
            raise ModelNotFoundError(
                f"{where}: boundaries for mode {mode!r} must be three increasing positive perplexities, "
                f"got {declared['boundaries']!r}"
            )
    return SamplingDefaults(boundaries, declared.get("factors"), declared.get("width"))


# --- the ways to name a model ---------------------------------------------------------------------


def from_folder(folder: str, language: str, mode: str | None, name: str) -> PerplexityModel:
    """``<language>.arpa.bin`` (and ``<language>.sp.model`` in ``ccnet`` mode, the default) of
    ``folder``, with what its ``model.json`` declares for that language and mode."""
    mode = mode or "ccnet"
    meta = read_declaration(folder)
    if meta is not None and meta.get("language", language) != language:
        meta = None  # the declaration is about another language's files
    meta = meta or {}
    return PerplexityModel(
        os.path.join(folder, f"{language}.arpa.bin"),
        os.path.join(folder, f"{language}.sp.model") if mode in SENTENCEPIECE_MODES else None,
        mode,
        lower_case=meta.get("lower_case", True),
        strip_accents=meta.get("strip_accents", True),
        name=name,
        **declared_defaults(meta, mode, os.path.join(folder, MODEL_DECLARATION)).model_kwargs(),
    )


def embedded_model(mode: str = "ccnet") -> PerplexityModel:
    """The small Spanish CCNet-style model shipped in the package, with its declared quartiles
    (declared for ``ccnet`` mode; in ``ccnet_document`` mode it has none)."""
    meta = read_declaration(DEFAULT_MODEL_DIR)
    if meta is None:
        raise ModelNotFoundError(
            f"the embedded model is missing ({os.path.join(DEFAULT_MODEL_DIR, MODEL_DECLARATION)!r}); "
            "reinstall the package or rebuild it with scripts/build_default_model.sh"
        )
    lang = meta.get("language", "es")
    return from_folder(DEFAULT_MODEL_DIR, lang, mode, name=f"embedded ({lang})")


def from_hub(location: HubLocation, language: str, mode: str | None) -> PerplexityModel:
    """CCNet-style files of a Hub location, fetched by the common resolver (:func:`~.common.hub.fetch`:
    the Hub cache, ``HF_ENDPOINT``, one line at once when the Hub cannot be reached)."""
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    from .common.hub import fetch

    repo, subfolder = location.repo, location.subfolder
    mode = mode or "ccnet"
    names = [f"{language}.arpa.bin"] + ([f"{language}.sp.model"] if mode in SENTENCEPIECE_MODES else [])
    paths = []
    for name in names:
        try:
            paths.append(os.path.join(fetch(location, f"perplexity model {repo!r}", [name]), name))
        except (EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError) as e:
            raise ModelNotFoundError(
                f"perplexity model file {name!r} not found on the Hub at {location}: {type(e).__name__}"
            ) from None
    logger.info("perplexity model %s fetched from the Hub into %s", names, os.path.dirname(paths[0]))
    spec = f"{repo}/{subfolder}" if subfolder else repo
    defaults = KNOWN_SOURCES.get((repo, subfolder, language, mode), SamplingDefaults())
    return PerplexityModel(
        paths[0], paths[1] if mode in SENTENCEPIECE_MODES else None, mode, name=f"{spec}/{names[0]}",
        **defaults.model_kwargs(),
    )


# --- resolving a ``perplexity_model`` option ----------------------------------------------------

_CACHE: dict = {}


def clear_cache() -> None:
    """Forget the models loaded so far in this process (the next load resolves its option again)."""
    _CACHE.clear()


def load_perplexity_model(spec=None, language: str = "es", mode: str | None = None) -> PerplexityModel:
    """Resolve a ``perplexity_model`` option into a :class:`PerplexityModel` (cached per process).

    ``spec`` is one of:

    - ``None``: the embedded Spanish model (``ccnet`` mode);
    - a KenLM file (``raw`` mode unless ``mode="ccnet"``, which then looks for
      ``<lang>.sp.model`` beside it);
    - a pair ``(kenlm_path, sp_path)`` (``ccnet`` mode by default);
    - a folder with ``<lang>.arpa.bin`` and ``<lang>.sp.model`` (``ccnet`` by default), and
      optionally a ``model.json`` declaring its defaults;
    - a Hub location ``owner/name[/subfolder][@revision]`` (optionally ``hf://``-prefixed) of
      CCNet-style files, fetched with ``huggingface_hub`` and cached.
    """
    if mode is not None and mode not in MODES:
        raise invalid_choice("perplexity_mode", mode, MODES)
    key = (tuple(spec) if isinstance(spec, (list, tuple)) else spec, language, mode)
    if key not in _CACHE:
        _CACHE[key] = _resolve(spec, language, mode)
    return _CACHE[key]


def _resolve(spec, language: str, mode: str | None) -> PerplexityModel:
    if spec is None:
        if mode == "raw":
            raise ConfigError(
                "the embedded model is a SentencePiece model and scores in 'ccnet' or 'ccnet_document' mode "
                "only; use perplexity_mode='ccnet' or pass a raw-text KenLM model"
            )
        return embedded_model(mode or "ccnet")
    if isinstance(spec, (list, tuple)):
        if len(spec) != 2:
            raise ConfigError(f"perplexity_model as a pair must be (kenlm_path, sp_path), got {spec!r}")
        kenlm_path, sp_path = (os.path.expanduser(str(p)) for p in spec)
        mode = mode or "ccnet"
        return PerplexityModel(kenlm_path, sp_path if mode in SENTENCEPIECE_MODES else None, mode)
    spec = str(spec)
    path = os.path.expanduser(spec)
    if os.path.isdir(path):
        return from_folder(path, language, mode, name=spec)
    if os.path.exists(path) or spec.startswith((".", "/", "~")) or spec.endswith((".arpa", ".bin")):
        mode = mode or "raw"
        sp_path = None
        if mode in SENTENCEPIECE_MODES:
            sp_path = os.path.join(os.path.dirname(path), os.path.basename(path).split(".")[0] + ".sp.model")
        return PerplexityModel(path, sp_path, mode)
    local_folder = os.path.dirname(path)
    if not spec.startswith("hf://") and local_folder and os.path.isdir(local_folder):  # a local path, missing
        raise ModelNotFoundError(f"perplexity_model={spec!r}: no such file or folder (for a Hub location under a "
                                 f"name that is also a local folder, write hf://{spec})")
    location = HubLocation.parse(spec)
    if location is not None:
        return from_hub(location, language, mode)
    raise ModelNotFoundError(
        f"perplexity_model={spec!r} is neither an existing path nor a Hub location 'owner/name[/subfolder][@revision]'"
    )


@dataclass(frozen=True)
class ModelSource:
    """The perplexity model of a language: a ``perplexity_model`` option and mode, loaded on demand."""

    spec: Any
    language: str
    mode: str | None

    def load(self) -> PerplexityModel:
        """The model, loaded once per process (:func:`load_perplexity_model`). A language spelt as another
        source spells it (``spa_Latn``) is looked up under its mC4 code (``es``: the embedded model, the
        ``<lang>.arpa.bin`` of folders and the Hub) unless a folder has files under the name as given."""
        from .languages import mc4_code

        code = mc4_code(self.language)
        if self.spec is None and code != "es" and self.mode != "raw":
            raise ConfigError(
                f"the embedded perplexity model is Spanish; for language {self.language!r} pass perplexity_model= "
                "(a KenLM file, a folder or a Hub location of CCNet-style <lang>.arpa.bin/<lang>.sp.model), or build "
                "one from text of the language with `mc4-sampling train-model`"
            )
        language = self.language
        if code != language:
            folder = os.path.expanduser(str(self.spec)) if isinstance(self.spec, (str, os.PathLike)) else None
            if not (folder and os.path.isfile(os.path.join(folder, f"{language}.arpa.bin"))):
                language = code
        return load_perplexity_model(self.spec, language, self.mode)
