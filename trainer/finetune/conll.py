"""A reader of the raw CoNLL-2002 files (the ``ner`` / ``pos`` presets' data, no loading script needed).

The CoNLL-2002 shared task (Tjong Kim Sang, 2002) ships one file per split: for Spanish
``esp.train`` (train), ``esp.testa`` (development: the presets' ``validation``) and ``esp.testb``
(``test``). The format:

* one token per line: ``WORD TAG`` (the original distribution: the named-entity tag in IOB2,
  ``B-PER``, ``I-ORG``, ``O``, ...) or ``WORD POS TAG`` (the NLTK copy, which adds part-of-speech
  tags, as ``eriktks/conll2002`` read it), separated by single spaces; the last column is the
  entity tag;
* a blank line between sentences;
* ``-DOCSTART-`` lines (document breaks) are skipped.

The files are Latin-1 (ISO-8859-1) in the original distribution; UTF-8 is accepted too.

:func:`load_conll2002` reads them from a folder, or downloads them once from a base URL into the
cache (``$TRAINER_CACHE`` or ``~/.cache/trainer``; written under a temporary name, then renamed).
The default base URL is :data:`CONLL2002_URL`; ``$TRAINER_CONLL2002_URL`` or ``--conll-files``
choose another one (a mirror, or a local folder).
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from typing import Iterable, Optional

from mc4_sampling.common.outputs import write_atomic

from ..errors import DataError

#: Where the raw files are by default (NLTK's copy, with part-of-speech tags; the files the
#: ``eriktks/conll2002`` loading script downloaded).
CONLL2002_URL = "https://raw.githubusercontent.com/teropa/nlp/master/resources/corpora/conll2002/"

#: split -> file suffix (``{lang}.{suffix}``).
SPLIT_FILES = {"train": "train", "validation": "testa", "test": "testb"}

#: The entity tags in ``eriktks/conll2002``'s label order (the ids of ``ner_tags``).
NER_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")

#: CoNLL-2002 file prefixes by language code.
LANGUAGE_PREFIX = {"es": "esp", "nl": "ned"}


def parse_conll(lines: Iterable[str], where: str = "the file") -> list[dict]:
    """Sentences of CoNLL-2002 lines: ``{"tokens", "ner_tags"}`` (and ``"pos_tags"`` with three columns).

    Every token line of a file must have the same number of columns (2 or 3); DataError names the
    first line that does not.
    """
    sentences, tokens, pos, ner = [], [], [], []
    columns = None

    def flush():
        if tokens:
            s = {"tokens": list(tokens), "ner_tags": list(ner)}
            if columns == 3:
                s["pos_tags"] = list(pos)
            sentences.append(s)
        tokens.clear(), pos.clear(), ner.clear()

    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            flush()
            continue
        parts = line.split()
        if parts[0] == "-DOCSTART-":
            flush()
            continue
        if columns is None:
            columns = len(parts)
        if len(parts) != columns or columns not in (2, 3):
            raise DataError(f"{where} line {number}: {line!r} is not `WORD TAG` or `WORD POS TAG` "
                            f"({'the lines above have ' + str(columns) + ' columns' if columns else 'CoNLL-2002'})")
        tokens.append(parts[0])
        ner.append(parts[-1])
        if columns == 3:
            pos.append(parts[1])
    flush()
    return sentences


def read_file(path: str) -> list[dict]:
    """The sentences of one CoNLL-2002 file (UTF-8, else Latin-1)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return parse_conll(text.splitlines(), path)


def cache_dir() -> str:
    return os.environ.get("TRAINER_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "trainer")


def fetch(location: str, lang: str = "es") -> str:
    """A folder holding the split files of ``lang``: ``location`` itself when it is a folder, else the
    files downloaded from the base URL ``location`` (once; cached by URL)."""
    prefix = LANGUAGE_PREFIX.get(lang)
    if prefix is None:
        raise DataError(f"CoNLL-2002 has no language {lang!r}; known: {', '.join(LANGUAGE_PREFIX)}")
    names = [f"{prefix}.{suffix}" for suffix in SPLIT_FILES.values()]
    if os.path.isdir(location):
        missing = [n for n in names if not os.path.isfile(os.path.join(location, n))]
        if missing:
            raise DataError(f"--conll-files {location}: no {', '.join(missing)} in this folder")
        return location
    if not location.startswith(("http://", "https://")):
        raise DataError(f"--conll-files {location!r}: neither a folder nor an http(s) URL")
    base = location if location.endswith("/") else location + "/"
    folder = os.path.join(cache_dir(), "conll2002", hashlib.sha256(base.encode()).hexdigest()[:16])
    os.makedirs(folder, exist_ok=True)
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            continue
        url = base + name
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                data = response.read()
        except (urllib.error.URLError, OSError) as e:
            raise DataError(f"cannot download the CoNLL-2002 file {url}: {getattr(e, 'reason', e)} "
                            "(--conll-files takes another base URL or a local folder)") from None
        write_atomic(path, data)
    return folder


def load_conll2002(location: Optional[str] = None, lang: str = "es"):
    """A ``datasets.DatasetDict`` (train / validation / test) of ``tokens``, ``ner_tags`` (``ClassLabel``:
    :data:`NER_TAGS` when every tag is one of them, else the sorted tags) and, with three-column files,
    ``pos_tags`` (``ClassLabel`` of the sorted tags of all splits)."""
    import datasets

    location = location or os.environ.get("TRAINER_CONLL2002_URL") or CONLL2002_URL
    folder = fetch(location, lang)
    prefix = LANGUAGE_PREFIX[lang]
    splits = {split: read_file(os.path.join(folder, f"{prefix}.{suffix}")) for split, suffix in SPLIT_FILES.items()}
    has_pos = all("pos_tags" in s for sents in splits.values() for s in sents)

    def tags(column):
        return {t for sents in splits.values() for s in sents for t in s[column]}

    ner = list(NER_TAGS) if tags("ner_tags") <= set(NER_TAGS) else sorted(tags("ner_tags"))
    features = {"tokens": datasets.Sequence(datasets.Value("string")),
                "ner_tags": datasets.Sequence(datasets.ClassLabel(names=ner))}
    if has_pos:  # one label set over the splits (a tag of a test file absent from train is still a label)
        features["pos_tags"] = datasets.Sequence(datasets.ClassLabel(names=sorted(tags("pos_tags"))))
    out = {}
    for split, sents in splits.items():
        cols = {k: [s[k] for s in sents] for k in features}
        out[split] = datasets.Dataset.from_dict(cols, features=datasets.Features(features))
    return datasets.DatasetDict(out)
