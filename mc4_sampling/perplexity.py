"""KenLM perplexity of documents, as BERTIN (``raw``) or CCNet (``ccnet``) computes it.

Both modes score a document line by line with a KenLM model (log10 probabilities, with
sentence begin and end markers) and return ``10 ** (-sum(line scores) / sum(line lengths))``:

- ``raw``: every ``\\n``-separated line of the raw text, length = whitespace words + 1. This is
  BERTIN's computation (BERTIN scored CCNet's Spanish ``es.arpa.bin`` this way).
- ``ccnet``: each line is normalised (:mod:`mc4_sampling.normalization`) and tokenised with
  SentencePiece; the pieces joined by spaces are scored, length = pieces + 1. Lines empty after
  normalisation carry no text and are skipped.
- ``ccnet_document``: exactly CCNet's own computation (``cc_net/perplexity.py``, also edugp's
  models' users and datatrove): the *whole* document is normalised at once, which deletes the
  newlines and glues the lines together (:func:`~mc4_sampling.normalization.normalize_text`),
  SentencePiece encodes it, the pieces joined by spaces are scored as one line, length =
  whitespace tokens + 1, and the perplexity is rounded to one decimal as CCNet's
  ``round(pp(log_score, length), 1)`` does. Its values are on CCNet's scale, so thresholds published
  for CCNet-scored corpora apply.

A document with nothing to score (empty, or only empty lines in ``ccnet`` mode) is scored as one
empty line, ``10 ** -score("")``: a finite, defined value, never a division by zero.

The model files are loaded lazily, on first use; a :class:`PerplexityModel` pickles as its
paths, so it can be sent to worker processes. Locating models (files, folders, the Hub, the
embedded one) and their default sampling parameters is :mod:`mc4_sampling.kenlm_models`' job.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from functools import cached_property, lru_cache
from typing import Iterable, Sequence

import numpy as np

from .errors import ConfigError, ModelNotFoundError, invalid_choice
from .normalization import normalize_document, normalize_text
from .scoring.base import Scorer, file_fingerprint

MODES = ("raw", "ccnet", "ccnet_document")
#: the modes that tokenise with SentencePiece (and need a SentencePiece model)
SENTENCEPIECE_MODES = ("ccnet", "ccnet_document")


def _check_readable(path: str, what: str) -> str:
    if not os.path.isfile(path):
        raise ModelNotFoundError(
            f"{what} not found: {path!r}. Pass an existing file, a folder with <lang>.arpa.bin and "
            "<lang>.sp.model, a Hub location 'owner/name[/subfolder]', or leave perplexity_model "
            "unset for the embedded Spanish model."
        )
    if not os.access(path, os.R_OK):
        raise ModelNotFoundError(f"{what} is not readable: {path!r} (check its permissions)")
    return path


def kenlm_reason(error: Exception) -> str:
    """KenLM's load error in a few words: its reason without the C++ location, and what a model is."""
    text = str(error)
    if "Exception." in text:
        text = text.split("Exception.", 1)[1]
    text = re.sub(r"\s*Byte: \d+\)?\s*$", "", text).strip().rstrip(".")
    return (f"{text}; not a KenLM model (an ARPA file or KenLM's binary): make one with "
            "`mc4-sampling train-model` (or KenLM's lmplz and build_binary)")


class PerplexityModel(Scorer):
    """A KenLM model (plus a SentencePiece model in ``ccnet`` mode) that scores documents: the
    ``kenlm`` :class:`~mc4_sampling.scoring.Scorer` (lower perplexities are better documents).

    Args:
        kenlm_path: ARPA or KenLM binary file.
        sp_path: SentencePiece model; required in ``ccnet`` mode.
        mode: ``"raw"``, ``"ccnet"`` or ``"ccnet_document"``; defaults to ``ccnet`` when ``sp_path`` is given.
        lower_case, strip_accents: CCNet normalisation switches (``ccnet`` and ``ccnet_document`` modes).
        default_boundaries, default_factors, default_width: the sampling parameters that belong
            to this (model, mode) pair, if known.
        name: how logs and calibration files refer to the model.
    """

    kind = "kenlm"
    higher_is_better = False
    score_name = "perplexity"
    score_format = ".2f"

    def __init__(
        self,
        kenlm_path: str,
        sp_path: str | None = None,
        mode: str | None = None,
        *,
        lower_case: bool = True,
        strip_accents: bool = True,
        default_boundaries: Sequence[float] | None = None,
        default_factors: dict | None = None,
        default_width: float | None = None,
        name: str | None = None,
    ):
        mode = mode or ("ccnet" if sp_path else "raw")
        if mode not in MODES:
            raise invalid_choice("perplexity_mode", mode, MODES)
        if mode in SENTENCEPIECE_MODES and not sp_path:
            raise ConfigError(
                f"perplexity_mode={mode!r} needs a SentencePiece model: pass perplexity_model as a pair "
                "(kenlm_path, sp_path) or a folder with <lang>.arpa.bin and <lang>.sp.model"
            )
        self.kenlm_path = _check_readable(str(kenlm_path), "KenLM model")
        self.sp_path = _check_readable(str(sp_path), "SentencePiece model") if sp_path else None
        self.mode = mode
        self.lower_case = lower_case
        self.strip_accents = strip_accents
        self.default_boundaries = tuple(default_boundaries) if default_boundaries else None
        self.default_factors = dict(default_factors) if default_factors else None
        self.default_width = default_width
        self.name = name or os.path.basename(self.kenlm_path)

    # --- identity and pickling ---------------------------------------------------------------
    @cached_property
    def model_id(self) -> str:
        """``<kenlm file>#<fingerprint>[+<sp file>#<fingerprint>]``: the same files give the same id."""
        parts = [f"{os.path.basename(self.kenlm_path)}#{file_fingerprint(self.kenlm_path)}"]
        if self.sp_path and self.mode in SENTENCEPIECE_MODES:
            parts.append(f"{os.path.basename(self.sp_path)}#{file_fingerprint(self.sp_path)}")
        return "+".join(parts)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_kenlm", None)
        state.pop("_sp", None)
        return state

    def __repr__(self):
        return f"PerplexityModel({self.name!r}, mode={self.mode!r})"

    # --- lazy loading ------------------------------------------------------------------------
    @property
    def kenlm(self):
        model = self.__dict__.get("_kenlm")
        if model is None:
            import kenlm

            try:
                with _kenlm_chatter_to_log(self.kenlm_path):
                    model = kenlm.Model(self.kenlm_path)
            except (OSError, RuntimeError) as e:
                raise ModelNotFoundError(f"cannot load KenLM model {self.kenlm_path!r}: {kenlm_reason(e)}") from None
            self.__dict__["_kenlm"] = model
        return model

    @property
    def sp(self):
        model = self.__dict__.get("_sp")
        if model is None:
            import sentencepiece

            model = sentencepiece.SentencePieceProcessor()
            try:
                model.Load(self.sp_path)
            except (OSError, RuntimeError) as e:
                raise ModelNotFoundError(f"cannot load SentencePiece model {self.sp_path!r}: {e}") from None
            self.__dict__["_sp"] = model
        return model

    def load(self) -> "PerplexityModel":
        """Load the model files now (they are otherwise loaded on first use)."""
        self.kenlm
        if self.mode in SENTENCEPIECE_MODES:
            self.sp
        return self

    # --- scoring -----------------------------------------------------------------------------
    def score(self, values) -> np.ndarray:
        """The scorer interface: :meth:`perplexities`."""
        return self.perplexities(values)

    def perplexity(self, text: str) -> float:
        """Perplexity of one document."""
        return float(self.perplexities([text])[0])

    def perplexities(self, texts: Iterable[str]) -> np.ndarray:
        """Perplexities of several documents (scored together: one SentencePiece batch)."""
        texts = list(texts)
        if self.mode == "ccnet_document":
            return self._ccnet_document(texts)
        return self._raw(texts) if self.mode == "raw" else self._ccnet(texts)

    def _raw(self, texts: list[str]) -> np.ndarray:
        lines: list[str] = []
        ends: list[int] = []
        for text in texts:
            lines.extend(text.split("\n"))
            ends.append(len(lines))
        scores = list(map(self.kenlm.score, lines))
        # words never span lines, so the words of a document's lines are the words of its text
        words = word_counts(texts)
        return _document_perplexities(scores, ends, words + np.diff(ends, prepend=0))

    def _ccnet(self, texts: list[str]) -> np.ndarray:
        lines: list[str] = []
        ends: list[int] = []
        for text in texts:
            lines.extend(normalize_document(text, self.lower_case, self.strip_accents) or [""])
            ends.append(len(lines))
        pieces = self.sp.encode(lines, out_type=str, num_threads=1)
        scores = list(map(self.kenlm.score, [" ".join(p) for p in pieces]))
        starts = np.array([0] + ends[:-1], dtype=np.int64)
        lengths = np.add.reduceat(np.fromiter(map(len, pieces), np.int64, len(pieces)), starts)
        return _document_perplexities(scores, ends, lengths + np.diff(ends, prepend=0))

    def _ccnet_document(self, texts: list[str]) -> np.ndarray:
        # CCNet: SentencePiece(normalize=True) then DocLM(normalize=False) on the tokenized field
        docs = [normalize_text(text, self.lower_case, self.strip_accents) for text in texts]
        pieces = self.sp.encode(docs, out_type=str, num_threads=1)
        score = self.kenlm.score
        out = np.empty(len(texts), dtype=np.float64)
        for i, doc_pieces in enumerate(pieces):
            log_score, length = 0.0, 0
            for line in " ".join(doc_pieces).split("\n"):  # one line: normalisation deleted the newlines
                log_score += score(line)
                length += len(line.split()) + 1
            out[i] = round(10.0 ** (-log_score / length), 1)
        return out


def _document_perplexities(line_scores: list[float], ends: list[int], lengths) -> np.ndarray:
    """``10 ** (-sum(line scores) / length)`` per document; ``ends`` ends each one's lines.

    The scores are added left to right in Python, as a line-by-line loop adds them.
    """
    out = np.empty(len(ends), dtype=np.float64)
    start = 0
    for i, end in enumerate(ends):
        out[i] = sum(line_scores[start:end])
        start = end
    return 10.0 ** (-out / lengths)


@lru_cache(maxsize=1)
def _whitespace_table() -> np.ndarray:
    """``table[c]`` is True where ``chr(c).isspace()``, i.e. where ``str.split()`` splits."""
    table = np.zeros(sys.maxunicode + 1, dtype=bool)
    table[[c for c in range(sys.maxunicode + 1) if chr(c).isspace()]] = True
    return table


def word_counts(texts: list[str]) -> np.ndarray:
    """``[len(t.split()) for t in texts]``, vectorised: count the starts of non-space runs."""
    if not texts:
        return np.zeros(0, dtype=np.int64)
    joined = " ".join(texts) + " "  # a space after every document ends its last word there
    codes = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    word = ~_whitespace_table()[codes]
    starts = word & np.r_[True, ~word[:-1]]
    offsets = np.cumsum([0] + [len(t) + 1 for t in texts[:-1]])  # strictly increasing
    return np.add.reduceat(starts.astype(np.int64), offsets)


logger = logging.getLogger(__name__)
#: what KenLM writes to the process' stderr while it parses an ARPA file (its advice and a progress bar)
_KENLM_CHATTER = re.compile(r"^(Loading the LM will be faster if you build a binary file\.|Reading .*|"
                            r"[-0-9]*|\**|\s*)$")


@contextmanager
def _kenlm_chatter_to_log(path: str):
    """Load a KenLM model without its chatter on stderr: while an ARPA text file is parsed, KenLM writes
    "Loading the LM will be faster if you build a binary file" and a progress bar to file descriptor 2,
    once per process (every publish worker). Those lines go to the debug log; any other line KenLM
    writes is logged as a warning. A binary model is loaded as it is (KenLM says nothing)."""
    try:
        with open(path, "rb") as f:
            binary = not f.read(64).lstrip().startswith(b"\\data\\")
    except OSError:  # the load itself reports it
        binary = True
    if binary:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                (logger.debug if _KENLM_CHATTER.match(line.strip()) else logger.warning)("KenLM: %s", line)
