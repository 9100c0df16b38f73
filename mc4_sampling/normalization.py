"""CCNet text normalisation, applied one line at a time.

CCNet (``cc_net/text_normalizer.py``) normalises a text before SentencePiece and KenLM with, in
order: strip; lower-case; strip accents (NFD, drop combining marks); every digit -> ``0``; map
Unicode punctuation to ASCII; drop non-printing characters (code points 0-31 and 127-159).

CCNet's last step also deletes ``\\n``, so a whole document collapses into one "line". Here the
caller splits the document into lines first and normalises each line on its own.

Everything after lower-casing and NFD is one ``str.translate`` table, which keeps this cheap next
to SentencePiece and KenLM.
"""

from __future__ import annotations

import sys
import unicodedata

#: CCNet's Unicode punctuation map.
UNICODE_PUNCT: dict[str, str] = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"',
    "１": '"', "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":",
    "？": "?", "！": "!", "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ",
    "～": "~", "’": "'", "…": "...", "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]",
    "％": "%", "►": "-",
}  # fmt: skip

NON_PRINTING = [*range(0, 32), *range(127, 160)]


def _build_table(strip_accents: bool) -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for cp in range(sys.maxunicode + 1):
        ch = chr(cp)
        if strip_accents and unicodedata.category(ch) == "Mn":
            table[cp] = None
        elif unicodedata.category(ch) == "Nd":  # what CCNet's r"\d" matches
            table[cp] = "0"
    for src, dst in UNICODE_PUNCT.items():
        if table.get(ord(src)) != "0":  # digits became "0" before the punctuation map ran
            table[ord(src)] = dst
    for cp in NON_PRINTING:
        table[cp] = None
    return table


_TABLES: dict[bool, dict[int, str | None]] = {}


def _table(strip_accents: bool) -> dict[int, str | None]:
    if strip_accents not in _TABLES:
        _TABLES[strip_accents] = _build_table(strip_accents)
    return _TABLES[strip_accents]


def normalize_line(line: str, lower_case: bool = True, strip_accents: bool = True) -> str:
    """Normalise one line as CCNet does (see module docstring); ``\\n`` must not occur in it."""
    line = line.strip()
    if not line:
        return line
    if lower_case:
        line = line.lower()
    if strip_accents:
        line = unicodedata.normalize("NFD", line)
    return line.translate(_table(strip_accents))


def normalize_document(text: str, lower_case: bool = True, strip_accents: bool = True) -> list[str]:
    """Split ``text`` on ``\\n`` and normalise each line; lines that end up empty are dropped."""
    lines = (normalize_line(x, lower_case, strip_accents) for x in text.split("\n"))
    return [x for x in lines if x]
