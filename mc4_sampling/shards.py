"""Where the shards of a split are: the files found in a local ``data_dir``, or remote URLs.

File names and shard counts come from :mod:`mc4_sampling.languages`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

from .errors import DataNotFoundError
from .languages import DEFAULT_BASE_URL, shard_counts, shard_file_name


@dataclass(frozen=True)
class ShardRef:
    """One mC4 file: its language, split, index among that split's shards, and location."""

    language: str
    split: str
    index: int
    path: str


def shard_refs(
    languages: Sequence[str],
    split: str,
    *,
    data_dir: str | None = None,
    base_url: str | None = None,
    shards: Sequence[int] | None = None,
) -> list[ShardRef]:
    """The files of ``split`` for every language, in order: local (``data_dir``) or remote.

    Locally only the files present count; remotely every shard of the split, at
    ``{base_url}/{file name}`` (default: ``allenai/c4`` on the Hub). ``shards`` keeps only these
    indices (those beyond a split's count are ignored).
    """
    refs = []
    for lang in languages:
        if data_dir:
            found = _local_shards(data_dir, lang, split)
            indices = sorted(found) if shards is None else [i for i in shards if i in found]
            refs += [ShardRef(lang, split, i, found[i]) for i in indices]
        else:
            n = shard_counts()[lang].for_split(split)
            base = (base_url or DEFAULT_BASE_URL).rstrip("/")
            indices = range(n) if shards is None else [i for i in shards if i < n]
            refs += [ShardRef(lang, split, i, f"{base}/{shard_file_name(lang, split, i, n)}") for i in indices]
    return refs


def shard_refs_for(options, split: str) -> list[ShardRef]:
    """:func:`shard_refs` of an options object (``languages``, ``data_dir``, ``base_url``, ``shards``)."""
    return shard_refs(options.languages, split, data_dir=options.data_dir, base_url=options.base_url,
                      shards=options.shards)


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
