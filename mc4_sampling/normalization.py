"""CCNet text normalisation, applied one line at a time.

CCNet (``cc_net/text_normalizer.py``) normalises a text before SentencePiece and KenLM with, in
order: strip; lower-case; strip accents (NFD, drop combining marks); every digit -> ``0``; map
Unicode punctuation to ASCII; drop non-printing characters (code points 0-31 and 127-159).

CCNet's last step also deletes ``\\n``, so a whole document collapses into one "line". Here the
caller splits the document into lines first and normalises each line on its own.

Everything after lower-casing and NFD is one ``str.translate`` table. :func:`normalize_document`
applies it to whole documents and only to the characters it can change, which keeps
normalisation cheap next to SentencePiece and KenLM.
"""

from __future__ import annotations

import codecs
import sys
import threading
import unicodedata
from functools import lru_cache

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


#: Stands in for a normalised run that does not fit in Latin-1 (see :func:`normalize_document`).
_PLACEHOLDER = "\x00"


#: Greek capital sigma lower-cases by context (final or not): documents with it take the simple path.
_CONTEXTUAL_CASE = "\u03a3"


@lru_cache(maxsize=4)
def _latin1(lower_case: bool, strip_accents: bool) -> tuple[bytes, bytes, str]:
    """The normalisation of the 256 Latin-1 characters as a ``bytes.translate`` table.

    Returns ``(table, deleted bytes, name of the codec error handler)``. Every Latin-1 character
    lower-cases and normalises to at most one Latin-1 character (checked here), so one byte maps
    to one byte. ``\n`` and the placeholder map to themselves. The error handler normalises each
    run of characters beyond Latin-1 met while encoding; a result that still does not fit in
    Latin-1 is kept aside (in ``_ASIDE.runs``) and replaced by the placeholder.
    """
    table = _table(strip_accents)

    def normalize_run(run: str) -> str:
        if lower_case:
            run = run.lower()
        if strip_accents:
            run = unicodedata.normalize("NFD", run)
        return run.translate(table)

    mapping, deleted = bytearray(range(256)), bytearray()
    for b in range(256):
        if chr(b) in ("\n", _PLACEHOLDER):
            continue
        out = normalize_run(chr(b))
        if not out:
            deleted.append(b)
        else:
            assert len(out) == 1 and ord(out) < 256, (b, out)
            mapping[b] = ord(out)

    def handler(error: UnicodeEncodeError):
        out = normalize_run(error.object[error.start : error.end])
        if any(ord(c) > 255 for c in out):
            _ASIDE.runs.append(out)
            out = _PLACEHOLDER
        return out, error.end

    name = f"mc4_sampling.ccnet.{int(lower_case)}{int(strip_accents)}"
    codecs.register_error(name, handler)
    return bytes(mapping), bytes(deleted), name


_ASIDE = threading.local()  # .runs: the current document's runs kept aside, per thread


def normalize_document(text: str, lower_case: bool = True, strip_accents: bool = True) -> list[str]:
    """Split ``text`` on ``\n`` and normalise each line; lines that end up empty are dropped.

    Equal to ``[normalize_line(x) for x in text.split("\n")]`` without the empty lines, but
    several times faster: the lines are stripped and joined again, then encoded to Latin-1, where
    one ``bytes.translate`` applies every step to the Latin-1 characters; the codec's error
    handler normalises the runs of characters beyond Latin-1 (results that do not fit in
    Latin-1 wait behind a placeholder and are put back after decoding).
    Each step works on a run alone as on the whole text: lower-casing is per character (but for
    the Greek capital sigma, whose documents take the simple path), and characters below U+0300
    are NFD starters that never reorder with their neighbours.
    """
    doc = "\n".join([line.strip() for line in text.split("\n")])
    if _PLACEHOLDER in doc or _CONTEXTUAL_CASE in doc:  # rare: take the simple path
        lines = (normalize_line(x, lower_case, strip_accents) for x in doc.split("\n"))
        return [x for x in lines if x]
    mapping, deleted, errors = _latin1(lower_case, strip_accents)
    aside = _ASIDE.runs = []
    doc = doc.encode("latin-1", errors).translate(mapping, deleted).decode("latin-1")
    if aside:
        parts = doc.split(_PLACEHOLDER)
        doc = "".join(p for pair in zip(parts, aside + [""]) for p in pair)
    return [line for line in doc.split("\n") if line]


def normalize_text(text: str, lower_case: bool = True, strip_accents: bool = True) -> str:
    """CCNet's ``normalize`` of a whole document, as CCNet, its users and datatrove apply it.

    Unlike :func:`normalize_document`, nothing is split: the text is stripped once, and the
    non-printing-character step deletes the ``\\n`` too, gluing the last word of each line to the
    first of the next (CCNet's known defect, reproduced on purpose for the ``ccnet_document``
    mode). Inner lines keep their leading and trailing spaces. Returns one line.
    Equal to :func:`normalize_line` applied to the whole text, through the same Latin-1 fast path
    as :func:`normalize_document`.
    """
    text = text.strip()
    if not text:
        return text
    if _PLACEHOLDER in text or _CONTEXTUAL_CASE in text:  # rare: take the simple path
        return normalize_line(text, lower_case, strip_accents)  # its table deletes "\n" as CCNet does
    mapping, deleted, errors = _latin1(lower_case, strip_accents)
    aside = _ASIDE.runs = []
    text = text.encode("latin-1", errors).translate(mapping, deleted + b"\n").decode("latin-1")
    if aside:
        parts = text.split(_PLACEHOLDER)
        text = "".join(p for pair in zip(parts, aside + [""]) for p in pair)
    return text
