"""Corpora stored as Parquet or JSON-lines files (plain, ``.gz``, ``.zst``), local or remote: :class:`FileSource`,
what every file-based source shares, and the generic ``files`` source (globs per split, or a folder).

A file-based source lists the files of a split (:meth:`FileSource.split_files`); its units are the files
in that order, or, with the option ``rows_per_unit``, runs of a Parquet file's row groups of at least that
many rows. Rows are read by :mod:`mc4_sampling.sources.formats`; a row becomes a
:class:`~mc4_sampling.sources.base.Record` of its text column, its id column (the draw's key; none: the
text's hash) and its metadata columns. :meth:`FileSource.check` reads the first file's columns before
any work and names the file and the columns it has when the text or id column is not among them.

Where files are (``files``): ``data_files={"train": ["a/*.parquet", ...], "test": [...]}`` (local globs,
``http(s)://`` URLs, ``hf://datasets/<repo>[@rev]/<glob>``), or ``location=FOLDER`` (local or ``hf://``):
each subfolder holding data files is a split named after it, else the folder's own files are ``train``.
"""

from __future__ import annotations

import glob
import os
from typing import ClassVar, Iterator, Mapping

from ..errors import ConfigError, DataNotFoundError
from ..http_stream import is_remote
from . import formats
from .base import CorpusSource, Record, SourceUnit, register_source
from .remote import HubPath, is_hf, list_hub, parse_hf, require_remote

_GLOB = set("*?[")


class FileSource(CorpusSource):
    """A corpus of Parquet/JSON-lines files (see the module). Subclasses implement :meth:`split_files`."""

    #: source option -> what it means (every other key of ``SourceOptions.options`` is refused)
    extra_options: ClassVar[Mapping[str, str]] = {
        "rows_per_unit": "split Parquet files into runs of row groups of at least this many rows",
    }
    #: metadata name -> the column it is read from, where they differ (HPLT's ``url`` is ``u``)
    renamed: ClassVar[Mapping[str, str]] = {}

    def __init__(self, options):
        super().__init__(options)
        unknown = sorted(set(options.options) - set(self.extra_options))
        if unknown:
            valid = ", ".join(self.extra_options) or "none"
            raise ConfigError(f"source_options {', '.join(map(repr, unknown))} are not options of the {self.name} "
                              f"source; valid: {valid}")
        rows = options.options.get("rows_per_unit")
        if rows is not None and not (isinstance(rows, int) and not isinstance(rows, bool) and rows >= 1):
            raise ConfigError(f"source_options rows_per_unit={rows!r} is not valid; it must be an integer >= 1")
        self._files: dict[str, list[str]] = {}

    # -- what a member says ---------------------------------------------------------------------

    def split_files(self, split: str) -> list[str]:  # pragma: no cover - abstract
        """The files (paths or URLs) of ``split``, in their fixed order."""
        raise NotImplementedError

    def columns_read(self) -> list[str]:
        """The columns a row needs beside the text: the id and the metadata's."""
        names = [self.renamed.get(m, m) for m in self.metadata_columns]
        return list(dict.fromkeys([*([self.id_column] if self.id_column else []), *names]))

    def make_record(self, row: dict) -> Record:
        return formats.make_record(row, self.text_column, self.id_column, self.metadata_columns, dict(self.renamed))

    # -- the interface --------------------------------------------------------------------------

    def files(self, split: str) -> list[str]:
        if split not in self._files:
            self._files[split] = self.split_files(split)
        return self._files[split]

    def check(self) -> None:
        first = next((f for split in self.splits() for f in self.files(split)), None)
        if first is None:
            raise DataNotFoundError(f"the {self.name} source has no files for {self.language!r} "
                                    f"({self.where()})")
        if is_remote(first):
            require_remote(first, f"read {self.title or self.name} ({self.language})")
        formats.require_format(first)
        present = formats.first_columns(first, text_field=self.text_column)
        wanted = {"text_column": self.text_column, "id_column": self.id_column or ""}
        wanted.update({f"metadata_columns[{m!r}]": self.renamed.get(m, m) for m in self.metadata_columns})
        error = formats.missing_columns_error(first, wanted, present)
        if error is not None:
            raise error

    def where(self) -> str:
        """Where the files were looked for, in words (for errors)."""
        return f"location={self.options.location!r}"

    def units(self, split: str) -> list[SourceUnit]:
        files = self.files(split)
        if files and is_remote(files[0]):
            require_remote(files[0], f"read {self.title or self.name} ({self.language})")
        rows = self.options.options.get("rows_per_unit")
        pieces: list[tuple[str, tuple[int, ...] | None]] = []
        for path in files:
            if rows is None or formats.file_format(path) != "parquet":
                pieces.append((path, None))
                continue
            runs = _row_group_runs(formats.row_group_sizes(path), rows)
            pieces += [(path, None if len(runs) == 1 else run) for run in runs]
        return [SourceUnit(split, i, len(pieces), self.language, path, groups)
                for i, (path, groups) in enumerate(pieces)]

    def records(self, unit: SourceUnit, *, on_bad_record: str = "raise", retries: int = 5,
                timeout: float | None = None) -> Iterator[tuple[int, Record | None]]:
        for position, row in formats.iter_rows(unit.path, text_field=self.text_column, columns=self.columns_read(),
                                               row_groups=unit.row_groups, on_bad_record=on_bad_record,
                                               retries=retries, timeout=timeout):
            yield position, (None if row is None else self.make_record(row))


def _row_group_runs(sizes: list[int], rows: int) -> list[tuple[int, ...]]:
    """Consecutive row groups joined until a run holds at least ``rows`` rows (the last run may hold fewer)."""
    runs, run, held = [], [], 0
    for group, size in enumerate(sizes):
        run.append(group)
        held += size
        if held >= rows:
            runs.append(tuple(run))
            run, held = [], 0
    if run:
        runs.append(tuple(run))
    return runs or [()]


# --- where files are ----------------------------------------------------------------------------


def expand(pattern: str, spell: str) -> list[str]:
    """The files a pattern names, sorted: a local glob or folder (data files under it), an ``http(s)://``
    URL (as it is: a server cannot be globbed), ``hf://datasets/<repo>[@rev]/<glob or folder>``."""
    pattern = str(pattern)
    if is_hf(pattern):
        hub = parse_hf(pattern, spell)
        if _GLOB & set(hub.path):
            parts = hub.path.split("/")
            fixed = "/".join(p for p in parts[:next(i for i, p in enumerate(parts) if _GLOB & set(p))])
            return [hub.url(p) for p in list_hub(HubPath(hub.repo, hub.revision, fixed), pattern=hub.path)]
        if formats.is_data_file(hub.path):
            return [hub.url()]
        return [hub.url(p) for p in list_hub(hub) if formats.is_data_file(p)]
    if is_remote(pattern):
        if _GLOB & set(pattern.split("?", 1)[0]):
            raise ConfigError(f"{spell}={pattern!r}: a web server cannot be searched with a glob; give the file "
                              "URLs, or hf://datasets/<repo>/<glob> for the Hub")
        return [pattern]
    path = os.path.expanduser(pattern)
    if os.path.isdir(path):
        return sorted(p for p in glob.glob(os.path.join(path, "**", "*"), recursive=True)
                      if os.path.isfile(p) and formats.is_data_file(p))
    return sorted(p for p in glob.glob(path, recursive=True) if os.path.isfile(p))


def folder_splits(location: str, spell: str = "location") -> dict[str, list[str]]:
    """Split -> files of a folder (local or ``hf://``): each subfolder holding data files is a split named
    after it; without such subfolders, the folder's files are ``train``."""
    if is_hf(location):
        hub = parse_hf(location, spell)
        listed = [p for p in list_hub(hub) if formats.is_data_file(p)]
        prefix = f"{hub.path}/" if hub.path else ""
        relative = [(p[len(prefix):], hub.url(p)) for p in listed]
    else:
        folder = os.path.expanduser(str(location))
        if not os.path.isdir(folder):
            raise DataNotFoundError(f"{spell}={location!r} is not a folder")
        relative = [(os.path.relpath(p, folder), p) for p in expand(folder, spell)]
    splits: dict[str, list[str]] = {}
    for rel, full in relative:
        parts = rel.replace(os.sep, "/").split("/")
        splits.setdefault(parts[0] if len(parts) > 1 else "train", []).append(full)
    return {split: sorted(files) for split, files in sorted(splits.items())}


@register_source
class FilesSource(FileSource):
    """Any Parquet/JSON-lines files: ``data_files`` globs per split, or a ``location`` folder."""

    name = "files"
    title = "Parquet/JSON-lines files"
    layout = ("`*.parquet`, `*.jsonl`, `*.jsonl.gz`, `*.jsonl.zst` (also `.json`, `.json.gz`): `data_files` globs per "
              "split (local, `http(s)://` URLs, `hf://datasets/<repo>[@rev]/<glob>`) or a `location` folder (a "
              "subfolder per split, else `train`); columns: `text_column` (default `text`), `id_column` (default "
              "none: the text's hash), `metadata_columns`; units: files, or Parquet row-group runs with "
              "`rows_per_unit`")

    def __init__(self, options):
        super().__init__(options)
        if options.data_files is None and options.location is None:
            raise ConfigError("the files source needs data_files={'train': [globs]} or location=FOLDER")
        if options.data_files is not None:
            if not isinstance(options.data_files, Mapping) or not all(
                    isinstance(k, str) and isinstance(v, (list, tuple, str)) for k, v in options.data_files.items()):
                raise ConfigError(f"data_files={options.data_files!r} is not valid; give {{split: [globs]}}, e.g. "
                                  "{'train': ['data/*.parquet']}")
        self._splits: dict[str, list[str]] | None = None

    def _all(self) -> dict[str, list[str]]:
        if self._splits is None:
            if self.options.data_files is not None:
                self._splits = {}
                for split, patterns in self.options.data_files.items():
                    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
                    found = [f for p in patterns for f in expand(p, f"data_files[{split!r}]")]
                    self._splits[split] = list(dict.fromkeys(found))
            else:
                self._splits = folder_splits(self.options.location)
        return self._splits

    def where(self) -> str:
        if self.options.data_files is not None:
            return f"data_files={dict(self.options.data_files)!r}"
        return super().where()

    def splits(self) -> tuple[str, ...]:
        return tuple(self._all())

    def split_files(self, split: str) -> list[str]:
        return self._all().get(split, [])
