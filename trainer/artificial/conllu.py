"""A small CoNLL-U reader: the dependency trees of a treebank, from a local file (``.conllu`` or
``.conllu.gz``) or an http(s) URL (read through :class:`mc4_sampling.http_stream.ResumableHTTPStream`).

Only what the grammar needs is kept: for each word (integer ``ID``) its ``FORM``, ``HEAD`` and ``DEPREL``.
Comment lines (``#``), multiword-token lines (``ID`` ``3-4``) and empty nodes (``ID`` ``5.1``) are skipped;
a blank line ends a sentence. Anything else that is not ten tab-separated columns with a word id in
sequence, a head within the sentence and a relation raises :class:`~trainer.errors.DataError` naming the
file and the line (``treebank es.conllu line 12: ...``).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import re
from typing import Iterator

from mc4_sampling.common.errors import UserError

from ..errors import DataError

_MULTIWORD = re.compile(r"^\d+-\d+$")
_EMPTY = re.compile(r"^\d+\.\d+$")


@dataclasses.dataclass(frozen=True)
class Sentence:
    """One tree: ``forms[i]``, ``heads[i]`` (0 for the root, else the 1-based id of the head) and
    ``deprels[i]`` of word ``i + 1``."""

    forms: tuple
    heads: tuple
    deprels: tuple

    def __len__(self) -> int:
        return len(self.forms)


def _open_text(path: str, option: str):
    from mc4_sampling.http_stream import is_remote

    if is_remote(path):
        from mc4_sampling.http_stream import ResumableHTTPStream

        raw = io.BufferedReader(ResumableHTTPStream(path))
        if path.endswith(".gz"):
            raw = gzip.GzipFile(fileobj=raw)
        return io.TextIOWrapper(raw, encoding="utf-8")
    if not os.path.isfile(path):
        raise DataError(f"{option}: no file {path!r}; give a CoNLL-U treebank (.conllu), e.g. one of "
                        "https://universaldependencies.org, or the shipped trainer/artificial/data/es-tiny.conllu")
    opener = gzip.open if path.endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8")


def _bad(path: str, number: int, why: str) -> DataError:
    return DataError(f"treebank {path} line {number}: not CoNLL-U ({why})")


def parse_conllu(lines, path: str = "<treebank>") -> Iterator[Sentence]:
    """The sentences of CoNLL-U ``lines`` (an iterable of strings), checked as the module says; ``path``
    names the file in errors."""
    words: list = []
    start = 0
    number = 0
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\r\n")
        if not line.strip():
            if words:
                yield _finish(words, path, start)
                words = []
            continue
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) != 10:
            raise _bad(path, number, f"expected 10 tab-separated columns ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL "
                                     f"DEPS MISC, found {len(cols)}")
        wid = cols[0]
        if _MULTIWORD.match(wid) or _EMPTY.match(wid):
            continue
        if not wid.isdigit() or int(wid) != len(words) + 1:
            raise _bad(path, number, f"word id {wid!r} where {len(words) + 1} was expected")
        if not cols[6].isdigit():
            raise _bad(path, number, f"HEAD {cols[6]!r} is not a word id")
        if not cols[7] or cols[7] == "_":
            raise _bad(path, number, "no DEPREL")
        if not words:
            start = number
        words.append((cols[1], int(cols[6]), cols[7], number))
    if words:
        yield _finish(words, path, start)


def _finish(words: list, path: str, start: int) -> Sentence:
    n = len(words)
    roots = 0
    for form, head, rel, number in words:
        if head > n:
            raise _bad(path, number, f"HEAD {head} is past the sentence's last word {n}")
        roots += head == 0
    if roots != 1:
        raise _bad(path, start, f"the sentence starting here has {roots} roots (HEAD 0), not one")
    return Sentence(tuple(w[0] for w in words), tuple(w[1] for w in words), tuple(w[2] for w in words))


def read_treebank(path: str, option: str = "--treebank") -> list[Sentence]:
    """Every sentence of the treebank at ``path`` (a file or an http(s) URL); a DataError naming ``option``
    when it is missing, naming the file and line when it is not CoNLL-U, or when it has no sentence."""
    try:
        with _open_text(path, option) as f:
            sentences = list(parse_conllu(f, path))
    except UnicodeDecodeError as e:
        raise DataError(f"treebank {path}: not CoNLL-U (not UTF-8 text: {e.reason} at byte {e.start})") from None
    except FileNotFoundError as e:
        if not isinstance(e, UserError):
            raise DataError(f"{option}: no file {path!r}") from None
        reason = str(e).split(". ")[0]  # "<url>: HTTP 404 Not Found" (the rest is about mC4 shards)
        raise DataError(f"{option}: {reason}; check the URL or download the treebank and give its path") from None
    except (OSError, EOFError) as e:
        if isinstance(e, UserError):  # the HTTP reader's own line (retries spent, the file changed)
            raise
        raise DataError(f"{option}: cannot read {path!r} ({type(e).__name__}: {e})") from None
    if not sentences:
        raise DataError(f"treebank {path}: not CoNLL-U (no sentence: no line of ten tab-separated columns)")
    return sentences
