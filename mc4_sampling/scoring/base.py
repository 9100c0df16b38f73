"""The scorer plug-in point: a :class:`Scorer` turns a block of documents into one float each.

A scorer says which way is better (:attr:`Scorer.higher_is_better`: a perplexity is better low, a
classifier's probability high), has an identity (:attr:`Scorer.model_id`: its name and a
fingerprint of its files' content, used by calibration files, the non-streaming cache and the
dataset card), may declare default weighting parameters (:attr:`default_boundaries`,
:attr:`default_factors`, :attr:`default_width`), and names the column its scores go to
(:attr:`score_name`: ``perplexity`` for KenLM, ``score`` otherwise). It reads the text of each
document, or with :attr:`input_column` another column (the score column of
:class:`~mc4_sampling.scoring.column.ColumnScorer`). A value it cannot score is NaN: the sampler
treats it as a bad record (an error, or skipped and counted under ``on_bad_record="skip"``).

A scorer is one module with a subclass and one :func:`register_scorer` call: the factory receives
``(model, options, language)`` (``scorer_model``, ``scorer_options`` and the language) and returns
the scorer. Scorers pickle without their loaded model (reloaded once per process), so that they
travel to ``DataLoader`` workers and datatrove tasks.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..common.errors import HubUnreachableError
from ..common.hub import HubLocation, fetch
from ..errors import ConfigError, ModelNotFoundError, invalid_choice


class Scorer:
    """One quality signal (see the module). Subclasses override :meth:`score`."""

    #: the registry name (``kenlm``, ``fasttext``, ``transformers``, ``column``, ``callable``)
    kind: str = ""
    #: True when higher scores are better documents
    higher_is_better: bool = True
    #: the column kept documents carry their score in
    score_name: str = "score"
    #: the column the scorer reads; None: the text column
    input_column: str | None = None
    #: KenLM's perplexity mode; None for other scorers
    mode: str | None = None
    default_boundaries: tuple | None = None
    default_factors: Mapping[str, float] | None = None
    default_width: float | None = None
    #: how logs, errors and cards name the scorer
    name: str = "scorer"
    #: how ``mc4-sampling score`` prints a score (a format spec)
    score_format: str = ".6g"

    def score(self, values: Sequence) -> np.ndarray:  # pragma: no cover - abstract
        """One float64 per document (NaN where a value cannot be scored)."""
        raise NotImplementedError

    @property
    def model_id(self) -> str:
        """``<kind>:<name>#<fingerprint>``: the same files give the same identity."""
        return f"{self.kind}:{self.name}"

    @property
    def direction(self) -> str:
        return "higher" if self.higher_is_better else "lower"

    def load(self) -> "Scorer":
        """Load the model now (scorers otherwise load on first use)."""
        return self

    def bad_value(self, value) -> str:
        """Why ``value`` got no score, for a bad-record message."""
        return f"{self.name} gave no finite score for {value!r:.60}"

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


def file_fingerprint(path: str) -> str:
    """A cheap content identity: BLAKE2b of the size, the first and the last MiB of the file."""
    h = hashlib.blake2b(digest_size=8)
    size = os.path.getsize(path)
    h.update(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(1 << 20))
        if size > 2 << 20:
            f.seek(-(1 << 20), os.SEEK_END)
            h.update(f.read())
    return h.hexdigest()


def folder_fingerprint(folder: str) -> str:
    """:func:`file_fingerprint` of every file of ``folder`` (names included), combined."""
    h = hashlib.blake2b(digest_size=8)
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = os.path.join(root, name)
            h.update(f"{os.path.relpath(path, folder)}:{file_fingerprint(path)}\n".encode())
    return h.hexdigest()


def as_bool(options: Mapping, key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"scorer_options.{key}={value!r} is not valid; it must be true or false")
    return value


def check_options(kind: str, options: Mapping, valid: Sequence[str]) -> None:
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ConfigError(f"scorer_options {', '.join(unknown)} not valid for scorer={kind!r}; "
                          f"valid keys: {', '.join(valid) or 'none'}")


def local_or_hub(spec, option: str = "scorer_model", *, what: str = "model") -> str:
    """A local file or folder, or a Hub location ``owner/name[/subfolder][/file][@revision]`` fetched by
    the common resolver (:func:`~mc4_sampling.common.hub.fetch`: ``HF_ENDPOINT``, the fast offline
    failure); the local path."""
    if spec is None:
        raise ConfigError(f"{option} is not set; give a local {what} path or a Hub location 'owner/name[@revision]'")
    path = os.path.expanduser(str(spec))
    if os.path.exists(path):
        return path
    location = HubLocation.parse(spec)
    if location is None:
        raise ModelNotFoundError(f"{option}={spec!r} is neither an existing path nor a Hub location "
                                 "'owner/name[/subfolder][@revision]'")
    sub = location.subfolder
    try:
        if sub and "." in sub.rsplit("/", 1)[-1]:  # a file of the repository
            folder, _, name = sub.rpartition("/")
            return os.path.join(fetch(replace(location, subfolder=folder), f"{what} {spec!r}", [name]), name)
        return fetch(location, f"{what} {spec!r}")
    except HubUnreachableError:
        raise
    except Exception as e:  # huggingface_hub raises many types; all mean "not fetched"
        raise ModelNotFoundError(f"{option}={spec!r}: cannot fetch it from the Hub ({type(e).__name__}: {e})") from None


# --- the registry ----------------------------------------------------------------------------------

#: ``kind -> factory(model, options, language) -> Scorer``
SCORERS: dict[str, Callable[..., Scorer]] = {}


def register_scorer(kind: str):
    """Decorator: make ``factory`` the ``scorer=kind`` option everywhere."""
    def decorate(factory):
        SCORERS[kind] = factory
        return factory
    return decorate


#: the built-in scorers' modules, imported when a scorer is first made (they import heavy libraries
#: lazily, and the KenLM one imports :mod:`mc4_sampling.kenlm_models`)
BUILTIN_MODULES = ("kenlm", "column", "fasttext", "transformers")

_CACHE: dict = {}


def scorer_kinds() -> tuple[str, ...]:
    """Every registered scorer name (built-ins included)."""
    _load_builtins()
    return tuple(SCORERS) + ("callable",)


_BUILTINS_LOADED: list = []


def _load_builtins() -> None:
    if _BUILTINS_LOADED:  # once per process: make_scorer runs once per block
        return
    import importlib

    for name in BUILTIN_MODULES:
        importlib.import_module(f"{__package__}.{name}")
    _BUILTINS_LOADED.append(True)


def builtin_factory(kind: str) -> Callable[..., Scorer]:
    """The factory registered as ``kind`` (the built-in scorers imported first), for a scorer made uncached."""
    _load_builtins()
    return SCORERS[kind]


def clear_scorer_cache() -> None:
    _CACHE.clear()


def make_scorer(kind: str, model: Any = None, options: Mapping | None = None, language: str = "es") -> Scorer:
    """The scorer ``kind`` of ``model`` with ``options`` (cached per process by these three)."""
    _load_builtins()
    if kind not in SCORERS:
        raise invalid_choice("scorer", kind, scorer_kinds())
    options = dict(options or {})
    key = (kind, model if not isinstance(model, list) else tuple(model), repr(sorted(options.items())), language)
    try:
        hash(key)
    except TypeError:
        return SCORERS[kind](model, options, language)
    if key not in _CACHE:
        _CACHE[key] = SCORERS[kind](model, options, language)
    return _CACHE[key]
