"""The relexicaliser family: what turns a sentence of relation tags into tokens of the artificial vocabulary.

* :func:`allocate_vocabulary` (shared by every member): the ``V`` tokens are split among the ``T`` tags in
  proportion to the distinct word forms ``f_r`` each tag has in the treebank, every tag at least one token:
  ``n_r = 1 + ⌊q_r⌋ (+1 for the V - T - Σ⌊q⌋ largest fractional parts, ties in tag order)``,
  ``q_r = (V - T) · f_r / Σ_s f_s`` (Hamilton's largest remainders), so ``Σ n_r = V``. Tag ``r`` owns the
  ids ``o_r .. o_r + n_r - 1`` (``o_r`` = the sizes of the tags before it, in the grammar's tag order); token
  ``i`` is written ``w<i>``.
* :class:`Relexicaliser`: a member draws one id per tag from the sentence's generator; members register by name
  (:func:`register_relexicaliser`, :data:`RELEXICALISERS`) and are chosen by ``--relexicalise``.
* :func:`block_cumulative`, :func:`draw_in_blocks`: every block's cumulative distribution in one sorted array,
  and the draws of a whole sentence from it at once (the first token of the tag's block whose cumulative
  probability within the block exceeds the draw's uniform ``u``).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Sequence

import numpy as np

from ...errors import ConfigError


def allocate_vocabulary(weights: Sequence[float], total: int, option: str = "--vocab-size") -> list:
    """The sizes ``n_r`` of the module's formula for ``weights`` ``f_r`` (one per tag) summing to ``total``;
    a ConfigError naming ``option`` when ``total`` is smaller than the number of tags."""
    t = len(weights)
    if total < t:
        raise ConfigError(f"{option} {total} is smaller than the {t} relation tags (each needs a token); give "
                          f"{option} {t} or more")
    w = np.asarray(weights, dtype=np.float64)
    w = w if w.sum() > 0 else np.ones(t)
    q = (total - t) * w / w.sum()
    base = np.floor(q).astype(np.int64)
    left = (total - t) - int(base.sum())
    order = sorted(range(t), key=lambda i: (-(q[i] - base[i]), i))
    for i in order[:left]:
        base[i] += 1
    return [1 + int(b) for b in base]


def token_name(i: int) -> str:
    """How token ``i`` of the artificial vocabulary is written in the corpus."""
    return f"w{i}"


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """The artificial vocabulary: ``tags`` in order, ``sizes[j]`` tokens for ``tags[j]`` from ``offsets[j]``."""

    tags: tuple
    sizes: tuple
    offsets: tuple = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "offsets", tuple(int(x) for x in np.concatenate([[0], np.cumsum(self.sizes)[:-1]])))

    @property
    def ends(self) -> np.ndarray:
        """The last id of every block."""
        return np.asarray(self.offsets) + np.asarray(self.sizes) - 1

    @property
    def total(self) -> int:
        return int(sum(self.sizes))

    def block(self, tag: str) -> range:
        j = self.tags.index(tag)
        return range(self.offsets[j], self.offsets[j] + self.sizes[j])

    def labels(self) -> list:
        """The tag of every token id, in id order."""
        return [t for t, n in zip(self.tags, self.sizes) for _ in range(n)]

    @classmethod
    def of(cls, grammar, total: int, option: str = "--vocab-size") -> "Vocabulary":
        return cls(tuple(grammar.tags), tuple(allocate_vocabulary([grammar.forms.get(t, 0) for t in grammar.tags],
                                                                  total, option)))


@dataclasses.dataclass(frozen=True)
class LexiconOptions:
    """Every member's options (each reads its own): the Zipf exponent ``s``; the log-linear dimension ``d``
    and temperature ``τ``."""

    zipf_exponent: float = 1.0
    dimension: int = 10
    temperature: float = 1.0


class Relexicaliser:
    """One way to draw tokens for tags. Subclasses set :attr:`name`, :attr:`summary` and implement
    :meth:`draw`; they are built once per process from the vocabulary, the options and the lexicon's
    generator (fixed by the seed, the same in every worker)."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""

    def __init__(self, vocabulary: Vocabulary, options: LexiconOptions, lexicon_rng: np.random.Generator):
        self.vocabulary = vocabulary
        self.options = options

    def draw(self, tags: Sequence[str], rng: np.random.Generator) -> np.ndarray:
        """One token id per tag, drawn from the sentence's generator ``rng``."""
        raise NotImplementedError

    def parameters(self) -> dict:
        """The options this member reads (written to the manifest)."""
        return {}


#: name -> Relexicaliser subclass
RELEXICALISERS: dict = {}


def register_relexicaliser(cls: type) -> type:
    """Register a :class:`Relexicaliser` subclass under its ``name`` (a class decorator)."""
    RELEXICALISERS[cls.name] = cls
    return cls


def get_relexicaliser(name: str, option: str = "--relexicalise") -> type:
    if name not in RELEXICALISERS:
        raise ConfigError(f"{option} {name!r} is not one of {', '.join(sorted(RELEXICALISERS))}")
    return RELEXICALISERS[name]


def block_cumulative(weights: np.ndarray, vocabulary: "Vocabulary") -> np.ndarray:
    """``G[i] = j + Σ_{o_j <= m <= i} w_m / Σ_{m in block j} w_m`` for token ``i`` of block ``j``: each block's
    cumulative distribution, shifted by its index so that one sorted array holds them all (:func:`draw_in_blocks`).
    Each block is normalised by itself (no cancellation against the blocks before it)."""
    w = np.asarray(weights, dtype=np.float64)
    starts = np.asarray(vocabulary.offsets)
    sizes = np.asarray(vocabulary.sizes)
    block = np.repeat(np.arange(len(sizes)), sizes)
    c = np.cumsum(w)
    before = np.concatenate([[0.0], c])[starts]  # the cumulative weight before each block
    totals = c[starts + sizes - 1] - before
    return block + (c - before[block]) / totals[block]


def draw_in_blocks(cumulative: np.ndarray, blocks: np.ndarray, u: np.ndarray, vocabulary: "Vocabulary") -> np.ndarray:
    """For each draw ``n``: the first token of block ``blocks[n]`` whose cumulative probability within the block
    exceeds ``u[n]`` (``cumulative``: :func:`block_cumulative`), as its id."""
    ids = np.searchsorted(cumulative, blocks + u, side="right")
    return np.minimum(ids, vocabulary.ends[blocks])  # u · total rounding at a block's very end
