"""The hold-out by content: which documents are evaluated on, and which are therefore never trained on.

Rule (the same for any number of processes, workers or restarts: it reads the content alone)::

    norm(t)   = NFKC(t), lower-cased, runs of white space -> one space, stripped
    key(t)    = SHA-256(norm(t))                                      (content identity)
    u(t)      = first 8 bytes of BLAKE2b(norm(t), key="holdout:{data.holdout_seed}") / 2**64  in [0, 1)
    candidate = u(t) < data.eval_fraction
    eval set  = the first data.num_eval_samples candidates of the stream with distinct key(t)
    training  = every document (any position, any epoch) whose key(t) is not an eval key
                (and, with data.holdout_near_duplicates = J, whose estimated Jaccard similarity to
                every eval document over word 5-gram shingles is < J)

Exact duplicates (equal after ``norm``) therefore always fall on the same side; near-duplicates
too when ``holdout_near_duplicates`` is set (MinHash, :class:`NearDuplicateIndex`). Candidates
that are not among the first ``num_eval_samples`` are trained on like any other document.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """``NFKC(text)``, lower-cased, white space runs collapsed to one space, stripped."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def content_key(text: str) -> bytes:
    """SHA-256 of the UTF-8 normalised text (32 bytes): equal for exact duplicates."""
    return hashlib.sha256(normalize_text(text).encode("utf-8")).digest()


def text_sha256(text: str) -> str:
    """SHA-256 hex digest of the UTF-8 text as stored (what the eval manifest records)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def holdout_draw(text: str, seed: int) -> float:
    """``u(t)``: a keyed hash of the normalised text mapped to [0, 1) (uniform over documents)."""
    h = hashlib.blake2b(normalize_text(text).encode("utf-8"), digest_size=8, key=f"holdout:{seed}".encode())
    return int.from_bytes(h.digest(), "big") / 2.0 ** 64


def is_candidate(text: str, seed: int, fraction: float) -> bool:
    """Whether ``text`` may be picked for the eval set: ``u(t) < fraction``."""
    return holdout_draw(text, seed) < fraction


def select_eval_texts(texts: Iterable[str], count: int, seed: int, fraction: float) -> tuple[list[str], int]:
    """The eval set of a stream of ``texts``: its first ``count`` candidates with distinct ``key(t)``
    (fewer when the stream ends first); returns ``(eval texts, documents read)``."""
    chosen: list[str] = []
    keys: set = set()
    read = 0
    if count:
        for text in texts:
            read += 1
            if not is_candidate(text, seed, fraction):
                continue
            key = content_key(text)
            if key in keys:
                continue
            keys.add(key)
            chosen.append(text)
            if len(chosen) == count:
                break
    return chosen, read


def held_out_count(data_cfg) -> int:
    """How many eval documents the trainer draws from its stream: ``data.num_eval_samples``, or none
    with ``data.eval_files`` (the eval set is then those files)."""
    return 0 if getattr(data_cfg, "eval_files", None) else data_cfg.num_eval_samples


# ---------------------------------------------------------------------------------------------
# near duplicates: MinHash over word shingles, banded LSH

_PRIME = 4294967291  # the largest prime below 2**32: a s + b < 2**64 for 32-bit a, b, s (exact in uint64)


def shingles(text: str, n: int = 5) -> np.ndarray:
    """32-bit hashes (uint64) of the distinct word ``n``-grams of the normalised text (fewer words: the text)."""
    words = normalize_text(text).split(" ")
    grams = {" ".join(words[i: i + n]) for i in range(max(1, len(words) - n + 1))}
    return np.fromiter((int.from_bytes(hashlib.blake2b(g.encode(), digest_size=4).digest(), "big")
                        for g in grams), np.uint64, len(grams))


class MinHasher:
    """``sig[k] = min_s ((a_k s + b_k) mod P)``, ``P = 2**32 - 5``, over the shingle hashes ``s``;
    ``P(sig_x[k] == sig_y[k]) ~= Jaccard(x, y)``. ``a, b`` from ``default_rng([seed, 5113])``."""

    def __init__(self, num_perm: int = 128, seed: int = 0):
        rng = np.random.default_rng([seed, 5113])
        self.a = rng.integers(1, _PRIME, num_perm, dtype=np.uint64)[:, None]
        self.b = rng.integers(0, _PRIME, num_perm, dtype=np.uint64)[:, None]
        self.num_perm = num_perm

    def signature(self, text: str) -> np.ndarray:
        s = shingles(text)[None, :]
        return ((self.a * s + self.b) % np.uint64(_PRIME)).min(axis=1)


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """``(bands, rows)`` with ``bands * rows <= num_perm`` whose S-curve midpoint ``(1/bands)**(1/rows)``
    is the closest below ``threshold`` (pairs near the threshold are then found with high probability)."""
    best = (1, num_perm)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        mid = (1.0 / bands) ** (1.0 / rows)
        if mid <= threshold:
            best = (bands, rows)
    return best


class NearDuplicateIndex:
    """The eval documents' MinHash signatures; :meth:`match` tells whether a text's estimated Jaccard
    similarity to one of them is >= ``threshold`` (candidates from LSH bands, then the full signature)."""

    def __init__(self, texts: Iterable[str], threshold: float, num_perm: int = 128, seed: int = 0):
        self.threshold = threshold
        self.hasher = MinHasher(num_perm, seed)
        self.bands, self.rows = lsh_bands(threshold, num_perm)
        self.signatures: list[np.ndarray] = []
        self.buckets: dict = {}
        for i, t in enumerate(texts):
            sig = self.hasher.signature(t)
            self.signatures.append(sig)
            for key in self._keys(sig):
                self.buckets.setdefault(key, []).append(i)

    def _keys(self, sig: np.ndarray):
        for band in range(self.bands):
            yield band, sig[band * self.rows: (band + 1) * self.rows].tobytes()

    def match(self, text: str) -> Optional[int]:
        """Index of an eval document similar to ``text`` at ``>= threshold``, or None."""
        if not self.signatures:
            return None
        sig = self.hasher.signature(text)
        seen = set()
        for key in self._keys(sig):
            for i in self.buckets.get(key, ()):
                if i in seen:
                    continue
                seen.add(i)
                if float(np.mean(self.signatures[i] == sig)) >= self.threshold:
                    return i
        return None


class HoldOut:
    """The eval documents' content keys (and near-duplicate index): :meth:`excluded` decides training."""

    def __init__(self, eval_texts: list[str], near_duplicates: Optional[float] = None, seed: int = 0):
        self.keys = {content_key(t): i for i, t in enumerate(eval_texts)}
        self.near = NearDuplicateIndex(eval_texts, near_duplicates, seed=seed) if near_duplicates else None

    def excluded(self, text: str) -> Optional[tuple[str, int]]:
        """``("exact", i)`` / ``("near", i)`` when ``text`` duplicates eval document ``i``; None: trained on."""
        if not self.keys:
            return None
        i = self.keys.get(content_key(text))
        if i is not None:
            return "exact", i
        if self.near is not None:
            j = self.near.match(text)
            if j is not None:
                return "near", j
        return None


class StreamHoldOut:
    """What the trainer holds out of a config's stream, for readers other than the trainer (the
    tokenizer): the same eval set (:func:`select_eval_texts`, :func:`held_out_count`) and the same
    exclusion (:meth:`HoldOut.excluded`); :meth:`training` filters a stream, :meth:`summary` says what it did.

    ``open_texts()``: a fresh iterator over the stream's texts (read once more for the eval set). Unlike
    the trainer, a stream with fewer candidates than ``data.num_eval_samples`` is accepted: every
    candidate is then held out (a superset of the eval set any smaller ``num_eval_samples`` gives).
    """

    def __init__(self, open_texts: Callable[[], Iterable[str]], data_cfg):
        self.cfg = data_cfg
        self.wanted = held_out_count(data_cfg)
        self.eval_texts, self.read = select_eval_texts(open_texts(), self.wanted, data_cfg.holdout_seed,
                                                       data_cfg.eval_fraction)
        self.holdout = HoldOut(self.eval_texts, data_cfg.holdout_near_duplicates, data_cfg.holdout_seed)
        self.seen: set = set()  # eval documents met in the filtered stream
        self.copies = 0  # further documents left out as exact copies of an eval document
        self.near = 0  # as near-duplicates

    def training(self, texts: Iterable[str]) -> Iterator[str]:
        """``texts`` without the eval documents, their copies and (``holdout_near_duplicates``) near-duplicates."""
        for text in texts:
            why = self.holdout.excluded(text)
            if why is None:
                yield text
            elif why[0] == "exact":
                self.copies += why[1] in self.seen
                self.seen.add(why[1])
            else:
                self.near += 1

    def summary(self) -> str:
        """What was held out, in one phrase."""
        cfg = self.cfg
        if getattr(cfg, "eval_files", None):
            return "held out nothing: data.eval_files is the eval set, and the trainer trains on the whole stream"
        if not self.wanted:
            return "held out nothing (data.num_eval_samples=0)"
        n = len(self.eval_texts)
        text = (f"held out {n} eval documents by the trainer's content rule (data.eval_fraction={cfg.eval_fraction}, "
                f"data.holdout_seed={cfg.holdout_seed})")
        if self.copies or self.near:
            text += f", and {self.copies} copies" + (f", {self.near} near-duplicates" if self.near else "") + " of them"
        if n < self.wanted:
            text += (f"; the stream's {self.read} documents hold only {n} candidates, fewer than "
                     f"data.num_eval_samples={self.wanted}: all are held out, and training with this config "
                     "will ask to lower data.num_eval_samples")
        return text


# ---------------------------------------------------------------------------------------------
# the eval manifest of a run folder

EVAL_MANIFEST = "eval_manifest.json"


def eval_manifest(texts: list[str], cfg) -> dict:
    """The eval set as anyone can check it: the rule's settings and, per eval document in order, the
    SHA-256 of its text (``sha256``) and of its normalised text (``content_sha256``, the hold-out key)."""
    return {
        "rule": "eval candidate: BLAKE2b(normalised text, key='holdout:<holdout_seed>') / 2**64 < eval_fraction; "
                "eval set: the first num_eval_samples distinct candidates of the stream; training: every "
                "document whose normalised text is not an eval document's (see trainer/data/holdout.py)",
        "eval_fraction": cfg.eval_fraction, "holdout_seed": cfg.holdout_seed,
        "holdout_near_duplicates": cfg.holdout_near_duplicates, "num_documents": len(texts),
        "documents": [{"sha256": text_sha256(t), "content_sha256": content_key(t).hex()} for t in texts],
    }


def write_eval_manifest(path: str, texts: list[str], cfg) -> None:
    """:func:`eval_manifest` as JSON at ``path`` (written under a temporary name, then renamed)."""
    import json

    from mc4_sampling.common.outputs import write_atomic

    write_atomic(path, json.dumps(eval_manifest(texts, cfg), indent=1))
