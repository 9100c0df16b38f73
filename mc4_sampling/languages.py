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


# --- other sources' language codes -> mC4's (the scorers' models are named by mC4/CCNet codes) ------------

#: ISO 639-3 codes (as FineWeb-2 and HPLT 3.0 write them, ``spa`` of ``spa_Latn``; macrolanguages and the
#: individual languages those corpora use) -> the mC4 code of the same language.
ISO639_3_TO_MC4 = {
    "afr": "af", "amh": "am", "ara": "ar", "arb": "ar", "aze": "az", "azj": "az", "bel": "be", "bul": "bg",
    "ben": "bn", "cat": "ca", "ceb": "ceb", "cos": "co", "ces": "cs", "cym": "cy", "dan": "da", "deu": "de",
    "ell": "el", "eng": "en", "epo": "eo", "spa": "es", "est": "et", "ekk": "et", "eus": "eu", "fas": "fa",
    "pes": "fa", "fin": "fi", "fil": "fil", "tgl": "fil", "fra": "fr", "fry": "fy", "gle": "ga", "gla": "gd",
    "glg": "gl", "guj": "gu", "hau": "ha", "haw": "haw", "hin": "hi", "hmn": "hmn", "hat": "ht", "hun": "hu",
    "hye": "hy", "ind": "id", "ibo": "ig", "isl": "is", "ita": "it", "heb": "iw", "jpn": "ja", "jav": "jv",
    "kat": "ka", "kaz": "kk", "khm": "km", "kan": "kn", "kor": "ko", "kur": "ku", "kmr": "ku", "kir": "ky",
    "lat": "la", "ltz": "lb", "lao": "lo", "lit": "lt", "lav": "lv", "lvs": "lv", "mlg": "mg", "plt": "mg",
    "mri": "mi", "mkd": "mk", "mal": "ml", "mon": "mn", "khk": "mn", "mar": "mr", "msa": "ms", "zsm": "ms",
    "mlt": "mt", "mya": "my", "nep": "ne", "npi": "ne", "nld": "nl", "nor": "no", "nob": "no", "nno": "no",
    "nya": "ny", "pan": "pa", "pol": "pl", "pus": "ps", "pbt": "ps", "por": "pt", "ron": "ro", "rus": "ru",
    "snd": "sd", "sin": "si", "slk": "sk", "slv": "sl", "smo": "sm", "sna": "sn", "som": "so", "sqi": "sq",
    "als": "sq", "srp": "sr", "sot": "st", "sun": "su", "swe": "sv", "swa": "sw", "swh": "sw", "tam": "ta",
    "tel": "te", "tgk": "tg", "tha": "th", "tur": "tr", "ukr": "uk", "urd": "ur", "uzb": "uz", "uzn": "uz",
    "vie": "vi", "xho": "xh", "yid": "yi", "ydd": "yi", "yor": "yo", "zho": "zh", "cmn": "zh", "zul": "zu",
}


def mc4_code(language: str) -> str:
    """The mC4 code of a language as a source spells it: ``spa_Latn`` -> ``es``, ``rus_Latn`` -> ``ru-Latn``
    (mC4's romanised subsets), an mC4 code as it is; a language mC4 does not know, unchanged."""
    if language in shard_counts():
        return language
    code, _, script = language.partition("_")
    mapped = ISO639_3_TO_MC4.get(code.lower())
    if mapped is None:
        return language
    if script == "Latn" and f"{mapped}-Latn" in shard_counts():
        return f"{mapped}-Latn"
    return mapped
