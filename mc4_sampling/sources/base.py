"""The corpus-source plug-in point: where a corpus' documents are, how they split into units, which
column is what.

A :class:`CorpusSource` is one corpus layout (mC4's ``c4-<lang>.tfrecord-...json.gz`` files,
FineWeb-2's Parquet under ``data/<lang_Script>/<split>/``, HPLT 3.0's ``jsonl.zst``, a Parquet/JSONL
glob, a ``datasets`` streaming dataset). It is built from :class:`SourceOptions` (the source's name,
the language as that source spells it, and where the files are) and answers four questions:

* :meth:`CorpusSource.check`: is the source usable at all (the language exists, a local folder has the
  files, a remote server answers, the text and id columns are in the first file)? One clear
  :class:`~mc4_sampling.common.errors.UserError` line before any work, else nothing.
* :meth:`CorpusSource.units`: the units of work of a split (a file, or a run of a Parquet file's row
  groups), in a fixed order. ``publish`` resumes by unit and gives units to tasks; the builder yields
  them in order.
* :meth:`CorpusSource.records`: the records of one unit as ``(position, record)``, ``position`` being
  the record's index in the unit (bad records counted), ``record`` a :class:`Record` or ``None`` for a
  bad record (``on_bad_record="skip"``).
* the columns: :attr:`CorpusSource.text_column`, :attr:`CorpusSource.id_column` (the draw's key; the
  text's hash where a source has no id), :attr:`CorpusSource.metadata_columns` (kept beside the text
  in published files) and :attr:`CorpusSource.score_columns` (columns ``--scorer column`` may read,
  e.g. HPLT's ``doc_scores[0]``).

The keep draw of a document is keyed by ``(seed, language, id)`` (:func:`mc4_sampling.draw.document_key`
and :func:`~mc4_sampling.draw.hashes64`), so the same seed keeps the same documents whatever the units,
tasks or workers; only mC4 keeps BERTIN's positional draw (:attr:`CorpusSource.draw_by_position`:
``(seed, language, split, shard, position)``), so its published subsets stay bit-exact.

A source is one module with a subclass and one :func:`register_source` call; its name goes in
:data:`BUILTIN_MODULES`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping, Sequence

from ..errors import invalid_choice


@dataclass(frozen=True)
class SourceOptions:
    """What every source is built from.

    Attributes:
        source: the registry name (``mc4``, ``fineweb2``, ``hplt3``, ``files``, ``datasets``).
        language: the language as the source spells it (``es`` for mC4, ``spa_Latn`` for FineWeb-2,
            ``spa_Latn`` for HPLT 3.0); the draw key and the scorer's language come from it.
        location: a local folder, an ``http(s)://`` base URL or an ``hf://datasets/<repo>[@rev]/``
            prefix; None: the source's public home.
        data_files: for ``files``: glob patterns per split (``{"train": ["a/*.parquet"]}``).
        text_column, id_column, metadata_columns: override the source's defaults (``id_column=""``:
            key the draw by the text's hash).
        options: source-specific options (``{"min_bin": 7}`` for HPLT's quality bins, ...).
    """

    source: str = "mc4"
    language: str = "es"
    location: str | None = None
    data_files: Mapping[str, Sequence[str]] | None = None
    text_column: str | None = None
    id_column: str | None = None
    metadata_columns: Sequence[str] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceUnit:
    """One unit of work: a file of a split, or a run of a Parquet file's row groups.

    ``index``/``count`` place it among the split's units (``name`` is ``<split>-NNNNN-of-NNNNN``, the
    publish file and resume marker of the unit); ``row_groups`` is None for a whole file.
    """

    split: str
    index: int
    count: int
    language: str
    path: str
    row_groups: tuple[int, ...] | None = None

    @property
    def name(self) -> str:
        return f"{self.split}-{self.index:05d}-of-{self.count:05d}"


@dataclass
class Record:
    """One good record: its text, its id (None: the text is the draw's key) and the kept metadata."""

    text: str
    id: str | None = None
    metadata: dict = field(default_factory=dict)


class CorpusSource:
    """One corpus layout (see the module). Subclasses set the class attributes and override
    :meth:`splits`, :meth:`units` and :meth:`records`; :meth:`check` may add source-specific checks."""

    #: the registry name
    name: ClassVar[str] = ""
    #: how docs and cards name it (``FineWeb-2``)
    title: ClassVar[str] = ""
    #: one line for docs/sampling.md: the layout and the columns
    layout: ClassVar[str] = ""
    #: True only for mC4: the draw is keyed by (split, shard, position), BERTIN's
    draw_by_position: ClassVar[bool] = False
    text_column: str = "text"
    #: None: the draw is keyed by the text's hash
    id_column: str | None = None
    metadata_columns: tuple[str, ...] = ()
    #: score column name -> what it is (``{"doc_score": "doc_scores[0], HPLT's overall quality"}``)
    score_columns: Mapping[str, str] = {}

    def __init__(self, options: SourceOptions):
        self.options = options
        self.language = options.language
        if options.text_column is not None:
            self.text_column = options.text_column
        if options.id_column is not None:
            self.id_column = options.id_column or None
        if options.metadata_columns is not None:
            self.metadata_columns = tuple(options.metadata_columns)

    def check(self) -> None:
        """Raise one clear user error if the source cannot be read (before any work)."""

    def splits(self) -> tuple[str, ...]:  # pragma: no cover - abstract
        """The splits this source has for its language (``("train", "validation")`` for mC4)."""
        raise NotImplementedError

    def units(self, split: str) -> list[SourceUnit]:  # pragma: no cover - abstract
        """The units of ``split`` in their fixed order (remote ones only once reachable)."""
        raise NotImplementedError

    def records(self, unit: SourceUnit, *, on_bad_record: str = "raise", retries: int = 5,
                timeout: float | None = None) -> Iterator[tuple[int, Record | None]]:  # pragma: no cover
        """``(position, record)`` of one unit (``None``: a bad record skipped by the policy)."""
        raise NotImplementedError


#: name -> source class
SOURCES: dict[str, type[CorpusSource]] = {}
#: the modules of this package that register the built-in sources
BUILTIN_MODULES = ("mc4", "fineweb2", "hplt3", "files", "datasets")


def register_source(cls: type[CorpusSource]) -> type[CorpusSource]:
    """Class decorator: make ``cls`` the source named ``cls.name``."""
    SOURCES[cls.name] = cls
    return cls


def source_names() -> tuple[str, ...]:
    _load_builtins()
    return tuple(SOURCES)


def make_source(options: SourceOptions, spell: str = "source") -> CorpusSource:
    """The source ``options.source`` built from ``options``; an unknown name is one error naming the
    option as the user wrote it (``spell``) and the registered names."""
    _load_builtins()
    if options.source not in SOURCES:
        raise invalid_choice(spell, options.source, tuple(SOURCES))
    return SOURCES[options.source](options)


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:  # each registers itself once, on its first import
        importlib.import_module(f"{__package__}.{module}")
