"""Interpolated modified Kneser-Ney n-gram estimation, exactly as KenLM's ``lmplz`` does it, written as ARPA.

The project's own estimator, so that ``mc4-sampling train-model`` works without a compiler (no PyPI
wheel ships ``lmplz``). Pure Python and numpy; the steps and their formulas follow ``lmplz``
(KenLM 0.3.0, ``lm/builder/``):

1. **Counting.** Each line is a sentence; words are separated by space, tab, CR or NUL. The
   sentence is ``<s>`` x (N-1), its words, ``</s>``; every N-gram ending at a word or ``</s>`` is
   counted (``corpus_count.cc``). ``<s>``, ``</s>`` and ``<unk>`` in the text are read as
   whitespace (``lmplz --skip_symbols``). Word ids: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, then
   words in order of first appearance.
2. **Adjusted counts** (``adjust_counts.cc``). The highest order keeps raw counts and drops the
   N-grams padded with two or more ``<s>``. A lower-order k-gram gets the number of distinct words
   (``<s>`` included) seen before it in the (k+1)-grams, ``a(g) = |{v : v g seen}|``, except a
   k-gram starting with ``<s>``, which keeps its raw count. k-grams with ``<s>`` past the first
   word do not exist. ``<unk>`` and ``<s>`` are unigrams with count 0.
3. **Pruning** (``--prune t1 t2 ...``, non-decreasing, the last repeated): a k-gram whose *raw*
   count is <= t_k is marked. Marked n-grams still count in the count-of-counts and in their
   context's denominator; they leave the model, and their adjusted counts go to the context's
   backoff mass.
4. **Discounts** per order from the count-of-counts n_j (adjusted counts 1..4, Chen & Goodman
   eq. 26): ``Y = n1 / (n1 + 2 n2)``, ``D_j = j - (j + 1) Y n_{j+1} / n_j`` for j = 1, 2, 3 (D3
   serves every count >= 3). An order with n_j = 0 or a D_j outside [0, j] takes the fallback
   discounts (``--discount_fallback``: 0.5, 1, 1.5) when given, else it is an error.
5. **Uninterpolated probabilities** (``initial_probabilities.cc``), per context c of the k-grams
   (all of them, marked ones included): ``denominator(c) = sum a``,
   ``gamma(c) = (D1 N1(c) + D2 N2(c) + D3 N3+(c) + sum of a over marked) / denominator(c)``, with
   N_j(c) the unmarked extensions of adjusted count j (3 for 3+);
   ``u(c w) = (a(c w) - D(a)) / denominator(c)``. Unigrams: ``<unk>`` gets 0, ``<s>`` 1 (and no
   interpolation).
6. **Interpolation** (``interpolate.cc``): ``p(c w) = u(c w) + gamma(c) p(c' w)`` with c' the
   context without its first word, down to the uniform ``1 / |V|`` (|V|: unigrams kept, ``<unk>``
   included, ``<s>`` not). The ARPA log10 probability is ``min(0, log10 p)``; the backoff of an
   n-gram g (below the highest order, not ending in ``<unk>`` or ``</s>``) is ``log10 gamma(g)``
   when g is the context of some (k+1)-gram, else 0.

Counting is a numpy sort of the N-gram windows; every later step is vectorised over the unique
N-grams (no Python loop per n-gram except writing the ARPA text).
"""

from __future__ import annotations

import logging
from array import array
from dataclasses import dataclass, field
from itertools import islice
from typing import Iterable, Sequence

import numpy as np

from .errors import ConfigError, Mc4SamplingError

logger = logging.getLogger(__name__)

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
#: ``lmplz --discount_fallback``'s discounts for adjusted counts 1, 2 and 3+ (CCNet passes the flag).
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)
#: What lmplz treats as whitespace (``corpus_count.cc``).
_OTHER_DELIMITERS = str.maketrans({"\t": " ", "\r": " ", "\0": " "})


class TooLittleTextError(Mc4SamplingError):
    """The text is too small (or too repetitive) for modified Kneser-Ney discounts at some order."""


@dataclass(frozen=True)
class KneserNeyOptions:
    """lmplz's estimation settings. Defaults: CCNet's (``lmplz -o 5 --discount_fallback``, no pruning)."""

    order: int = 5
    #: ``--prune``: raw-count thresholds per order (non-decreasing; the last repeats; the unigram one 0).
    prune: tuple[int, ...] = ()
    #: ``--discount_fallback`` discounts (D1, D2, D3+), or ``None`` to fail where the closed form fails.
    discount_fallback: tuple[float, float, float] | None = FALLBACK_DISCOUNTS

    def thresholds(self, spell: str = "prune") -> list[int]:
        """Pruning threshold of each order, checked as lmplz checks them."""
        if not isinstance(self.order, int) or self.order < 1:
            raise ConfigError(f"order={self.order!r}: must be an integer >= 1 (CCNet: 5)")
        values = [int(t) for t in self.prune]
        if not values:
            return [0] * self.order
        if len(values) > self.order:
            raise ConfigError(f"{spell} {' '.join(map(str, values))}: one threshold per order at most "
                              f"({self.order} for a {self.order}-gram model)")
        if any(t < 0 for t in values) or values != sorted(values):
            raise ConfigError(f"{spell} {' '.join(map(str, values))}: thresholds must be non-negative and "
                              "non-decreasing (e.g. 0 0 1 for singleton trigrams and above)")
        if values[0] != 0:
            raise ConfigError(f"{spell} {' '.join(map(str, values))}: the unigram threshold must be 0")
        return values + [values[-1]] * (self.order - len(values))


@dataclass
class Vocabulary:
    """Word <-> id, lmplz's numbering: ``<unk>`` 0, ``<s>`` 1, ``</s>`` 2, then first appearance."""

    ids: dict = field(default_factory=lambda: {UNK: UNK_ID, BOS: BOS_ID, EOS: EOS_ID})

    @property
    def words(self) -> list[str]:
        return list(self.ids)

    def __len__(self) -> int:
        return len(self.ids)


def encode_sentences(lines: Iterable[str], order: int,
                     vocab: Vocabulary | None = None) -> tuple[np.ndarray, Vocabulary, int]:
    """The text as one int array: per line ``<s>`` x (order-1), word ids, ``</s>``; the vocabulary and
    the number of words (``</s>`` not counted), as lmplz counts them."""
    vocab = vocab or Vocabulary()
    ids = vocab.ids
    pad = array("i", [BOS_ID] * (order - 1))
    seq = array("i")
    tokens = 0
    skipped = 0
    for line in lines:
        line = line.rstrip("\n")
        if "\t" in line or "\r" in line or "\0" in line:
            line = line.translate(_OTHER_DELIMITERS)
        words = [w for w in line.split(" ") if w]
        seq.extend(pad)
        for w in words:
            i = ids.get(w)
            if i is None:
                i = ids[w] = len(ids)
            elif i <= EOS_ID:  # <unk>, <s>, </s> in the text: whitespace (lmplz --skip_symbols)
                skipped += 1
                continue
            seq.append(i)
        tokens += len(words)
        seq.append(EOS_ID)
    if skipped:
        logger.warning("%d occurrences of <s>, </s> or <unk> in the text were read as whitespace", skipped)
    return np.frombuffer(seq, dtype=np.int32).copy() if len(seq) else np.zeros(0, np.int32), vocab, tokens - skipped


@dataclass
class Level:
    """The k-grams of one order: words (n x k), adjusted and raw counts, marks, links to order k-1."""

    words: np.ndarray
    adjusted: np.ndarray
    raw: np.ndarray
    marked: np.ndarray = None
    suffix: np.ndarray = None  # index in order k-1 of words[:, 1:]
    context: np.ndarray = None  # index in order k-1 of words[:, :-1]
    prob: np.ndarray = None
    logprob: np.ndarray = None
    backoff: np.ndarray = None


@dataclass
class Model:
    """An estimated model: its levels (unigrams indexed by word id), vocabulary, discounts, token count."""

    levels: list[Level]
    vocab: Vocabulary
    discounts: list[tuple[float, float, float]]
    tokens: int

    def counts(self) -> list[int]:
        """n-grams of each order in the model (``ngram k=`` of the ARPA header)."""
        return [int((~lv.marked).sum()) for lv in self.levels]


def _suffix_sort(windows: np.ndarray) -> np.ndarray:
    """Order of the rows of ``windows`` by last word, then the one before, ... (lmplz's SuffixOrder)."""
    n = windows.shape[1]
    width = max(int(windows.max(initial=0)).bit_length(), 1)
    per_key = max(63 // width, 1)
    keys = []  # np.lexsort: the last key is the primary one
    for stop in range(0, n, per_key):
        key = np.zeros(len(windows), dtype=np.int64)
        for c in range(min(stop + per_key, n) - 1, stop - 1, -1):  # the later column more significant
            key = (key << width) | windows[:, c].astype(np.int64)
        keys.append(key)
    return np.lexsort(keys) if len(keys) > 1 else np.argsort(keys[0], kind="stable")


def count_levels(seq: np.ndarray, vocab_size: int, order: int) -> list[Level]:
    """Unique N-grams with raw counts and the adjusted counts of every lower order (steps 1-2)."""
    n = order
    ends = np.flatnonzero(seq != BOS_ID)  # every window ends at a word or </s>
    if len(ends) == 0:
        raise TooLittleTextError("the text is empty")
    windows = np.stack([seq[ends - (n - 1 - c)] for c in range(n)], axis=1)
    perm = _suffix_sort(windows)
    rows = windows[perm]
    del windows
    starts_n = np.flatnonzero(_changed(rows, range(n)))  # first of each run of equal N-grams
    unique = rows[starts_n]
    counts = np.diff(np.append(starts_n, len(rows)))
    # unique-row index of every window, then of every text position (for the context links)
    row_of_window = np.empty(len(rows), dtype=np.int32)
    del rows
    index = np.zeros(len(perm), dtype=np.int32)
    index[starts_n] = 1
    row_of_window[perm] = np.cumsum(index, dtype=np.int32) - 1
    del perm, index
    row_at = np.full(len(seq), -1, dtype=np.int32)
    row_at[ends] = row_of_window
    first_window = _first_occurrence(row_of_window, ends, len(starts_n))
    del row_of_window, ends
    # unew[k][i]: the k-suffix of unique row i differs from the row before; group: its k-suffix's index
    unew = [None] + [_changed(unique, range(n - 1, n - 1 - k, -1)) for k in range(1, n + 1)]
    group = [None] + [np.cumsum(unew[k], dtype=np.int64) - 1 for k in range(1, n + 1)]

    levels: list[Level] = [None] * n
    keep_index: list[np.ndarray] = [None] * n  # group index -> index in the level (-1: dropped)
    for k in range(1, n + 1):
        starts = np.flatnonzero(unew[k])
        words = unique[starts][:, n - k:]
        raw = np.add.reduceat(counts, starts)
        if k == n:
            adjusted = raw.copy()
            keep = words[:, 1] != BOS_ID if n > 1 else np.ones(len(words), bool)
        else:
            distinct_longer = np.add.reduceat(unew[k + 1].astype(np.int64), starts)
            adjusted = np.where(words[:, 0] == BOS_ID, raw, distinct_longer)
            keep = words[:, 1] != BOS_ID if k > 1 else np.ones(len(words), bool)
        if k == 1:  # unigrams indexed by word id, <unk> and <s> with count 0
            ids = words[:, 0]
            full_words = np.arange(vocab_size, dtype=np.int32)[:, None]
            adj = np.zeros(vocab_size, np.int64)
            rw = np.zeros(vocab_size, np.int64)
            adj[ids], rw[ids] = adjusted, raw
            levels[0] = Level(full_words, adj, rw)
            keep_index[0] = ids
            continue
        idx = np.full(len(words), -1, dtype=np.int64)
        idx[keep] = np.arange(int(keep.sum()))
        keep_index[k - 1] = idx
        lv = Level(words[keep], adjusted[keep], raw[keep])
        rep = starts[keep]  # a unique row whose k-suffix is this k-gram
        lv.suffix = keep_index[k - 2][group[k - 1][rep]]
        # context: the (k-1)-gram ending one position earlier in the text than this k-gram
        pos = first_window[rep]
        prev_row = row_at[pos - 1]
        bos_context = lv.words[:, 0] == BOS_ID
        if k == 2:
            ctx = np.where(bos_context, BOS_ID, keep_index[0][group[1][np.maximum(prev_row, 0)]])
        else:
            ctx = keep_index[k - 2][group[k - 1][np.maximum(prev_row, 0)]]
        lv.context = ctx
        levels[k - 1] = lv
    return levels


def _changed(rows: np.ndarray, columns) -> np.ndarray:
    """Whether each row differs from the row before in any of ``columns`` (the first row: True)."""
    out = np.zeros(len(rows), dtype=bool)
    out[0] = True
    for c in columns:
        out[1:] |= rows[1:, c] != rows[:-1, c]
    return out


def _first_occurrence(row_of_window: np.ndarray, ends: np.ndarray, n_rows: int) -> np.ndarray:
    """Text position of the first occurrence of each unique row."""
    out = np.empty(n_rows, dtype=np.int64)
    out[row_of_window[::-1]] = ends[::-1]
    return out


def discount(stats: Sequence[int], order: int, fallback) -> tuple[float, float, float]:
    """``(D1, D2, D3+)`` from the count-of-counts n1..n4 of one order (Chen & Goodman eq. 26), or the
    fallback where the closed form fails; :class:`TooLittleTextError` without one."""
    n1, n2, n3, n4 = (int(s) for s in stats)
    problem = None
    if 0 in (n1, n2, n3):
        j = (n1, n2, n3).index(0) + 1
        problem = f"no {order}-gram is seen exactly {j} time{'s' if j > 1 else ''} (after Kneser-Ney adjustment)"
    else:
        y = n1 / (n1 + 2.0 * n2)
        d = tuple(j - (j + 1) * y * m / nj for j, nj, m in ((1, n1, n2), (2, n2, n3), (3, n3, n4)))
        bad = [j for j, dj in enumerate(d, 1) if not 0.0 <= dj <= j]
        if not bad:
            return d
        problem = f"the {order}-gram discount for count {bad[0]} is {d[bad[0] - 1]:.3f}, outside [0, {bad[0]}]"
    if fallback is None:
        raise TooLittleTextError(problem)
    logger.warning("%s: using the fallback discounts %s for order %d", problem, tuple(fallback), order)
    return tuple(float(x) for x in fallback)


def estimate(lines: Iterable[str], options: KneserNeyOptions = KneserNeyOptions()) -> Model:
    """Estimate the model of ``lines`` (one sentence each) as ``lmplz`` would (module docstring)."""
    thresholds = options.thresholds()
    n = options.order
    seq, vocab, tokens = encode_sentences(lines, n)
    levels = count_levels(seq, len(vocab), n)
    del seq
    # --- marks (step 3) and discounts (step 4)
    discounts = []
    for k, lv in enumerate(levels, 1):
        lv.marked = lv.raw <= thresholds[k - 1] if thresholds[k - 1] > 0 else np.zeros(len(lv.raw), bool)
        if k == 1:
            lv.marked[[UNK_ID, BOS_ID]] = False
        adj = lv.adjusted
        stats = [int(np.count_nonzero(adj == j)) for j in (1, 2, 3, 4)]
        discounts.append(discount(stats, k, options.discount_fallback))
    counts_pruned = [int((~lv.marked).sum()) for lv in levels]
    uniform = 1.0 / (counts_pruned[0] - 1)
    # --- step 5 per order, then step 6 from the unigrams up
    gammas = []
    for k, lv in enumerate(levels, 1):
        d = np.array((0.0, *discounts[k - 1]))
        a = lv.adjusted
        live = ~lv.marked & (a > 0)
        n_ctx = 1 if k == 1 else len(levels[k - 2].adjusted)
        ctx = np.zeros(len(a), np.int64) if k == 1 else lv.context
        denominator = np.bincount(ctx, weights=a, minlength=n_ctx)
        mass = np.bincount(ctx, weights=np.where(live, d[np.minimum(a, 3)], 0.0), minlength=n_ctx)
        mass += np.bincount(ctx, weights=np.where(lv.marked, a, 0), minlength=n_ctx)
        extended = np.bincount(ctx, minlength=n_ctx) > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma = np.where(denominator > 0, mass / denominator, 0.0)
            uninterp = (a - d[np.minimum(a, 3)]) / denominator[ctx]
        if k == 1:
            lower = np.full(len(a), uniform)
            g = np.full(len(a), gamma[0])
            uninterp[UNK_ID] = 0.0
            uninterp[BOS_ID], g[BOS_ID] = 1.0, 0.0
            prob = uninterp + g * lower
        else:
            prob = uninterp + gamma[ctx] * levels[k - 2].prob[lv.suffix]
        lv.prob = prob
        gammas.append((gamma, extended))
    for k, lv in enumerate(levels, 1):
        with np.errstate(divide="ignore"):
            lv.logprob = np.minimum(0.0, np.log10(lv.prob))
        if k < n:
            gamma, extended = gammas[k]
            last = lv.words[:, -1]
            is_context = extended & (last != UNK_ID) & (last != EOS_ID)
            with np.errstate(divide="ignore"):
                lv.backoff = np.where(is_context, np.log10(np.where(is_context, gamma, 1.0)), 0.0)
    return Model(levels, vocab, discounts, tokens)


def write_arpa(model: Model, path) -> None:
    """Write ``model`` as an ARPA file at ``path`` (the caller names it temporary and renames it).

    Values are rounded to 7 decimals (lmplz prints 8 significant digits); an n-gram's text is its
    context's text and its last word, built order by order."""
    words = model.vocab.words
    n = len(model.levels)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\\data\\\n")
        for k, count in enumerate(model.counts(), 1):
            f.write(f"ngram {k}={count}\n")
        f.write("\n")
        texts: list[str] = words
        for k, lv in enumerate(model.levels, 1):
            if k > 1:
                previous = texts
                texts = [previous[c] + " " + words[w] for c, w in zip(lv.context.tolist(), lv.words[:, -1].tolist())]
                del previous
            f.write(f"\\{k}-grams:\n")
            keep = np.flatnonzero(~lv.marked)
            kept = texts if len(keep) == len(texts) else [texts[i] for i in keep.tolist()]
            columns = [map(repr, _rounded(lv.logprob[keep])), iter(kept)]
            if k < n:
                columns.append(map(repr, _rounded(lv.backoff[keep])))
            for start in range(0, len(kept), 1 << 16):
                f.write("\n".join(map("\t".join, zip(*(islice(c, 1 << 16) for c in columns)))))
                f.write("\n")
            f.write("\n")
        f.write("\\end\\\n")


def _rounded(values: np.ndarray) -> list[float]:
    """``values`` rounded to 7 decimals, ``-0.0`` as ``0.0`` (printed by ``repr``: short and exact)."""
    return (np.round(values, 7) + 0.0).tolist()
