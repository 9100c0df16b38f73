"""HPLT 3.0 as a corpus source: ``jsonl.zst`` files per language, grouped by quality bin, served over HTTPS.

Layout (``https://data.hplt-project.org/three/sorted/``, the default location, or a local copy):
``<lang>.map`` lists a language's files (URLs, or paths relative to the map), ``<lang>/<bin>_<n>.jsonl.zst``
holds its documents, ``<bin>`` the quality bin (higher is better). A local folder is read from
``<lang>/`` (or its ``<lang>.map``); a server only through its map (a server cannot be listed). The
option ``min_bin`` keeps the files of bins ``>= min_bin``.

Rows: ``text``, ``id`` (the draw's key), ``u`` (the URL), ``doc_scores`` (first entry the document's overall
quality, 0-10), ``web-register`` (register labels and their probabilities). Metadata kept: ``url``,
``doc_score`` (``doc_scores[0]``: ``--scorer column --score-column doc_score`` samples by it) and
``web_register`` (the labels as a JSON object, sorted keys).
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import urljoin

from ..errors import ConfigError, DataNotFoundError
from ..http_stream import ResumableHTTPStream, is_remote
from .base import Record, register_source
from .files import FileSource
from .fineweb2 import missing_language
from .remote import require_remote

DEFAULT_LOCATION = "https://data.hplt-project.org/three/sorted"
_FILE = re.compile(r"(?:^|/)(?P<bin>\d+)_(?P<n>\d+)\.jsonl\.zst$")


@register_source
class Hplt3Source(FileSource):
    """HPLT 3.0 by language (``spa_Latn``); one split, ``train``."""

    name = "hplt3"
    title = "HPLT 3.0"
    layout = ("`<lang>/<bin>_<n>.jsonl.zst` grouped by quality bin, listed by `<lang>.map` (HTTPS "
              "`data.hplt-project.org/three/sorted/` or a local copy); rows `id`, `text`, `u`, `doc_scores`, "
              "`web-register`; id `id`; metadata `url` (`u`), `doc_score` (`doc_scores[0]`, a score column), "
              "`web_register`; option `min_bin`; split train; units: files")
    text_column = "text"
    id_column = "id"
    metadata_columns = ("url", "doc_score", "web_register")
    renamed = {"url": "u", "doc_score": "doc_scores", "web_register": "web-register"}
    score_columns = {"doc_score": "doc_scores[0], HPLT's overall quality score of the document (0-10)"}
    extra_options = {"min_bin": "read only the files of quality bins >= min_bin"}

    def __init__(self, options):
        super().__init__(options)
        self.location = str(options.location or DEFAULT_LOCATION).rstrip("/")
        self.min_bin = options.options.get("min_bin")
        if self.min_bin is not None and not (isinstance(self.min_bin, int) and not isinstance(self.min_bin, bool)):
            raise ConfigError(f"source_options min_bin={self.min_bin!r} is not valid; it must be an integer "
                              "(HPLT 3.0's bins run from 5 to 10)")

    def where(self) -> str:
        return f"location={self.location!r}"

    def splits(self) -> tuple[str, ...]:
        return ("train",)

    def split_files(self, split: str) -> list[str]:
        if split != "train":
            return []
        files = self._listed()
        if self.min_bin is not None:
            files = [f for f in files if _bin(f) is None or _bin(f) >= self.min_bin]
        return files

    def _listed(self) -> list[str]:
        map_name = f"{self.language}.map"
        if is_remote(self.location):
            url = f"{self.location}/{map_name}"
            require_remote(url, f"read HPLT 3.0 ({self.language})")
            return _read_map(url, self._read_url(url))
        folder = os.path.expanduser(self.location)
        if not os.path.isdir(folder):
            raise DataNotFoundError(f"location={self.location!r} is not a folder; give a local copy of HPLT 3.0 "
                                    f"(<lang>/<bin>_<n>.jsonl.zst files) or its base URL, e.g. {DEFAULT_LOCATION}")
        lang_folder = os.path.join(folder, self.language)
        if os.path.isdir(lang_folder):
            names = [n for n in os.listdir(lang_folder) if n.endswith(".jsonl.zst")]
            return [os.path.join(lang_folder, n) for n in sorted(names, key=_order)]
        path = os.path.join(folder, map_name)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as f:
                return _read_map(folder + os.sep, f.read(), local=True)
        held = {n[:-4] if n.endswith(".map") else n for n in os.listdir(folder)
                if n.endswith(".map") or os.path.isdir(os.path.join(folder, n))}
        raise missing_language(self.title, self.language, held, self.where())

    def _read_url(self, url: str) -> str:
        try:
            stream = ResumableHTTPStream(url)
        except DataNotFoundError as e:
            raise DataNotFoundError(f"language={self.language!r}: {self.title} has no file list at {url} "
                                    f"({str(e).split(': ', 1)[-1].split('.')[0]}); check the language code "
                                    "(ISO 639-3 and script, e.g. spa_Latn) and the location") from None
        with stream:
            return stream.read().decode("utf-8")

    def make_record(self, row: dict) -> Record:
        """The row's text, id and metadata: ``doc_score`` is ``doc_scores[0]``, ``web_register`` the labels as
        JSON, ``url`` the ``u`` field; any other metadata column (``metadata_columns=[..., "ts"]``) as it is."""
        value = row.get(self.id_column) if self.id_column else None
        metadata = {}
        for name in self.metadata_columns:
            field = row.get(self.renamed.get(name, name))
            if name == "doc_score":
                field = field[0] if isinstance(field, list) and field else field
                field = float(field) if isinstance(field, (int, float)) and not isinstance(field, bool) else None
            elif name == "web_register" and field is not None and not isinstance(field, str):
                field = json.dumps(field, sort_keys=True, ensure_ascii=False)
            metadata[name] = field
        return Record(row[self.text_column], None if value is None else str(value), metadata)


def _bin(path: str) -> int | None:
    m = _FILE.search(path.split("?", 1)[0])
    return int(m["bin"]) if m else None


def _order(name: str):
    """Best bin first, then the file number (the order of HPLT's maps)."""
    m = _FILE.search(name)
    return (-int(m["bin"]), int(m["n"]), name) if m else (1, 0, name)


def _read_map(base: str, text: str, local: bool = False) -> list[str]:
    """The files a map lists, each resolved against the map's place (``base``)."""
    files = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if is_remote(line) or os.path.isabs(line):
            files.append(line)
        elif local:
            files.append(os.path.join(base, line))
        else:
            files.append(urljoin(base, line))
    return files
