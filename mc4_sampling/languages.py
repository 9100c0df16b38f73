"""mC4 languages, shard counts and file names (layout of ``allenai/c4``, folder ``multilingual/``)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ConfigError

#: Revision of ``allenai/c4`` whose ``multilingual/`` folder the default URLs point at.
C4_REVISION = "1ddc917116b730e1859edef32896ec5c16be51d0"
#: Path of ``allenai/c4``'s ``multilingual/`` folder on the Hub (after the endpoint).
C4_PATH = f"/datasets/allenai/c4/resolve/{C4_REVISION}/multilingual"
#: Default base URL: shard files are found at ``{base_url}/{file name}``.
DEFAULT_BASE_URL = f"https://huggingface.co{C4_PATH}"


def default_base_url() -> str:
    """Where mC4's files are read by default: :data:`DEFAULT_BASE_URL` on ``HF_ENDPOINT`` when it is set."""
    from .common.hub import endpoint

    return endpoint().rstrip("/") + C4_PATH

_TSV = Path(__file__).with_name("data") / "mc4-languages.tsv"


@dataclass(frozen=True)
class ShardCounts:
    train: int
    validation: int

    def for_split(self, split: str) -> int:
        return self.train if split == "train" else self.validation


@lru_cache(maxsize=None)
def shard_counts() -> dict[str, ShardCounts]:
    """Language code -> number of train and validation shards, for all 108 mC4 languages."""
    with open(_TSV, newline="", encoding="utf-8") as f:
        rows = csv.DictReader(f, delimiter="\t")
        return {
            r["language"]: ShardCounts(int(r["train_shards"]), int(r["validation_shards"]))
            for r in rows
        }


LANGUAGES: tuple[str, ...] = tuple(shard_counts())


def check_language(language: str) -> str:
    if language not in shard_counts():
        raise ConfigError(
            f"language={language!r} is not an mC4 language; valid codes are: "
            + ", ".join(LANGUAGES)
        )
    return language


def shard_file_name(language: str, split: str, index: int, n_shards: int) -> str:
    """``c4-{language}{suffix}.tfrecord-{index:05d}-of-{n_shards:05d}.json.gz``.

    ``suffix`` is ``""`` for train and ``"-validation"`` for validation.
    """
    suffix = "" if split == "train" else "-validation"
    return f"c4-{language}{suffix}.tfrecord-{index:05d}-of-{n_shards:05d}.json.gz"
