"""FineWeb-2 (``HuggingFaceFW/fineweb-2``) as a corpus source: Parquet under ``data/<lang_Script>/{train,test}/``.

Languages are FineWeb-2's subsets (``spa_Latn``, ``cat_Latn``, ...); the location is a local copy (its root or
its ``data/`` folder) or a Hub path (default ``hf://datasets/HuggingFaceFW/fineweb-2``, listed through the
tree API, read by ranges). Columns: ``text``; ``id`` (the draw's key); kept as metadata: ``url``, ``date``,
``language_score``, ``minhash_cluster_size`` (FineWeb-2's duplicate count, which upsampling reads). A
language the copy lacks is one error listing the near subsets it has.
"""

from __future__ import annotations

import difflib
import os

from ..errors import DataNotFoundError
from .base import register_source
from .files import FileSource, expand
from .remote import HubPath, is_hf, list_hub, parse_hf, require_remote

DEFAULT_LOCATION = "hf://datasets/HuggingFaceFW/fineweb-2"


def missing_language(title: str, language: str, available, where: str, spell: str = "language"):
    """``<spell>='xx' is not a <title> language in <where>; near ones: ...`` (or how many it has)."""
    available = sorted(available)
    near = difflib.get_close_matches(language, available, n=6, cutoff=0.5)
    if not near:  # the same language in another script, another spelling of the code
        near = [a for a in available if a.split("_")[0].lower() == language.split("_")[0].lower()][:6]
    hint = (f"near ones: {', '.join(near)}" if near else
            f"it has {len(available)}: {', '.join(available[:12])}{', ...' if len(available) > 12 else ''}"
            if available else "it has none")
    return DataNotFoundError(f"{spell}={language!r} is not a language of {title} in {where}; {hint}")


@register_source
class FineWeb2Source(FileSource):
    """FineWeb-2 by ``lang_Script``; splits ``train`` and ``test``."""

    name = "fineweb2"
    title = "FineWeb-2"
    layout = ("`data/<lang_Script>/{train,test}/*.parquet` (`HuggingFaceFW/fineweb-2`, a local copy or an "
              "`hf://` path); columns `text`, `id`, `url`, `date`, `dump`, `file_path`, `language`, "
              "`language_score`, `language_script`, `minhash_cluster_size`, `top_langs`; id `id`; metadata "
              "`url`, `date`, `language_score`, `minhash_cluster_size`; splits train, test; units: files")
    text_column = "text"
    id_column = "id"
    metadata_columns = ("url", "date", "language_score", "minhash_cluster_size")

    def __init__(self, options):
        super().__init__(options)
        self.location = str(options.location or DEFAULT_LOCATION)
        self._remote = is_hf(self.location)
        self._checked_language = False
        self._listing: list[str] | None = None

    def where(self) -> str:
        return f"location={self.location!r}"

    def _data(self) -> str:
        """The folder (local) or Hub path holding the language folders."""
        if self._remote:
            hub = parse_hf(self.location)
            return str(hub) if hub.path.endswith("data") else str(HubPath(hub.repo, hub.revision,
                                                                         f"{hub.path}/data".strip("/")))
        folder = os.path.expanduser(self.location)
        if not os.path.isdir(folder):
            raise DataNotFoundError(f"location={self.location!r} is not a folder; give a local copy of "
                                    "HuggingFaceFW/fineweb-2 (its root or its data/ folder) or an hf:// path")
        return os.path.join(folder, "data") if os.path.isdir(os.path.join(folder, "data")) else folder

    def _languages(self) -> list[str]:
        data = self._data()
        if self._remote:
            return list_hub(parse_hf(data), folders=True)
        return [n for n in os.listdir(data) if os.path.isdir(os.path.join(data, n))]

    def _language_folder(self) -> str:
        data = self._data()
        if self._remote:
            require_remote(data, f"read FineWeb-2 ({self.language})")
            hub = parse_hf(data)
            path = f"{hub.path}/{self.language}"
            if not self._checked_language:
                if self.language not in self._languages():
                    raise missing_language(self.title, self.language, self._languages(), self.where())
                self._checked_language = True
            return str(HubPath(hub.repo, hub.revision, path))
        folder = os.path.join(data, self.language)
        if not os.path.isdir(folder):
            raise missing_language(self.title, self.language, self._languages(), self.where())
        return folder

    def splits(self) -> tuple[str, ...]:
        return ("train", "test")

    def split_files(self, split: str) -> list[str]:
        folder = self._language_folder()
        if self._remote:  # the language folder listed once, for both splits
            hub = parse_hf(folder)
            if self._listing is None:
                self._listing = list_hub(hub)
            prefix = f"{hub.path}/{split}/"
            return [hub.url(p) for p in self._listing if p.startswith(prefix) and p.endswith(".parquet")]
        return expand(os.path.join(folder, split, "*.parquet"), "location")
