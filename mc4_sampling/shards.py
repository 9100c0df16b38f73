"""Where the shards of a split are: the files found in a local ``data_dir``, or remote URLs.

File names and shard counts come from :mod:`mc4_sampling.languages`. :func:`shard_refs_for`, the way
every reader of mC4 (``sample``, ``calibrate``, ``publish``, the builder, so the trainer) finds its
shards, applies the reachability rule (:func:`require_source`) to remote shards before any work;
:func:`no_files_error` says what a ``data_dir`` without the wanted files holds.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Sequence

from .common.errors import HubUnreachableError
from .common.hub import hub_offline, require_reachable
from .errors import DataNotFoundError
from .languages import default_base_url, shard_counts, shard_file_name


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
            base = (base_url or default_base_url()).rstrip("/")
            indices = range(n) if shards is None else [i for i in shards if i < n]
            refs += [ShardRef(lang, split, i, f"{base}/{shard_file_name(lang, split, i, n)}") for i in indices]
    return refs


def shard_refs_for(options, split: str) -> list[ShardRef]:
    """:func:`shard_refs` of an options object (``languages``, ``data_dir``, ``base_url``, ``shards``);
    remote shards only once :func:`require_source` found their server reachable."""
    if not options.data_dir:
        require_source(options)
    return shard_refs(options.languages, split, data_dir=options.data_dir, base_url=options.base_url,
                      shards=options.shards)


def require_source(options) -> None:
    """The reachability rule for remote mC4 (no ``data_dir``): its server answers within seconds, else
    one :class:`~mc4_sampling.common.errors.HubUnreachableError` line before any work. With
    ``HF_HUB_OFFLINE`` set, the Hub's copy (no ``base_url``) is refused at once: shards are streamed,
    never cached."""
    languages = "+".join(options.languages)
    if options.base_url is None and hub_offline():
        raise HubUnreachableError(
            f"HF_HUB_OFFLINE is set, and mC4 ({languages}) is streamed from the Hub, never cached; give a "
            "local copy (data_dir=FOLDER), or unset HF_HUB_OFFLINE")
    require_reachable(options.base_url or default_base_url(), f"read mC4 ({languages})",
                      "check the network, or give a local copy (data_dir=FOLDER) or a mirror (base_url=URL)",
                      name="the Hub" if options.base_url is None else "the server")


def no_files_error(options, split: str, language: str | None = None) -> DataNotFoundError:
    """The error for a ``split`` without files: the folder searched, the file names looked for and the
    languages and splits the folder holds (remote: the shards asked for, and the split's count)."""
    languages = [language] if language else list(options.languages)
    if not options.data_dir:
        counts = ", ".join(f"{lang}: {shard_counts()[lang].for_split(split)}" for lang in languages)
        return DataNotFoundError(f"no {split} files for {'+'.join(languages)}: shards={list(options.shards)} "
                                 f"are beyond the split's shard count ({counts})")
    folder = os.path.expanduser(str(options.data_dir))
    if os.path.isdir(os.path.join(folder, "multilingual")):
        folder = os.path.join(folder, "multilingual")
    suffix = "" if split == "train" else "-validation"
    wanted = " or ".join(f"c4-{lang}{suffix}.tfrecord-NNNNN-of-NNNNN.json.gz" for lang in languages)
    held: dict[str, int] = {}
    for name in sorted(os.listdir(folder)):
        m = _ANY_SHARD.match(name)
        if m:
            key = f"{m['lang']} {'validation' if m['validation'] else 'train'}"
            held[key] = held.get(key, 0) + 1
    holds = ", ".join(f"{k} ({n} shard{'s' * (n != 1)})" for k, n in held.items()) or "no mC4 files"
    only = f" among shards={list(options.shards)}" if options.shards is not None else ""
    return DataNotFoundError(f"no {split} files for {'+'.join(languages)} in {folder!r}{only} (looked for "
                             f"{wanted}); it holds: {holds}")


_ANY_SHARD = re.compile(r"^c4-(?P<lang>[\w-]+?)(?P<validation>-validation)?\.tfrecord-\d{5}-of-\d{5}\.json\.gz$")


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
