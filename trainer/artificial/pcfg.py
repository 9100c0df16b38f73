"""A probabilistic grammar over dependency-relation tags, learned from the trees of a treebank, and sampled.

The formulation (each step a pure function below):

* **Tags** (:func:`kept_relations`, :func:`tag_of`): with ``c(r)`` the number of words whose relation is ``r``
  (``DEPREL``, or its universal part before ``:`` with ``strip_subtypes``), the ``k`` most frequent relations
  (ties broken by name) are kept, ``root`` always among them (it replaces the ``k``-th when it is not); every
  other relation becomes the one tag ``other``. A treebank with fewer than ``k`` relations is refused.
* **Productions** (:func:`production_counts`): every word ``h`` of tag ``r`` gives one production
  ``r -> l_1 ... l_a HEAD r_1 ... r_b`` where ``l_1..l_a`` are the tags of its dependents left of it and
  ``r_1..r_b`` those right of it, each in sentence order. ``c(r -> α)`` counts them over the treebank.
* **Probabilities** (:func:`learn_grammar`): maximum likelihood, ``P(α | r) = c(r -> α) / Σ_β c(r -> β)``.
* **Sampling** (:func:`sample_tags`): a tree grows top-down from one node of tag ``root`` at depth 0; a node of
  tag ``r`` at depth ``d < max_depth`` draws its production ``α ~ P(· | r)`` (one uniform ``u`` from the
  sentence's generator: the first ``α`` in the fixed production order whose cumulative count exceeds
  ``u · Σ_β c(r -> β)``), then its left dependents, then its right ones, each a node at depth ``d + 1`` grown
  the same way (depth first, left to right); a node at depth ``max_depth`` draws nothing and has no dependents.
* **Linearisation**: a node's sequence is its left dependents' sequences, its own tag, its right dependents'
  sequences (the in-order walk); a sentence is the root's sequence of tags.

The same ``rng`` state gives the same tags: draws happen in the fixed order above.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

from ..errors import ConfigError, DataError
from .conllu import Sentence

#: The tag of every relation outside the kept ones.
OTHER = "other"
#: The tag a sentence starts from.
ROOT = "root"


def relation_of(deprel: str, strip_subtypes: bool = False) -> str:
    """The relation of a ``DEPREL``: as written, or its universal part (``acl:relcl`` -> ``acl``)."""
    return deprel.split(":", 1)[0] if strip_subtypes else deprel


def relation_counts(sentences: Iterable[Sentence], strip_subtypes: bool = False) -> Counter:
    """``c(r)``: the number of words of each relation."""
    return Counter(relation_of(r, strip_subtypes) for s in sentences for r in s.deprels)


def kept_relations(counts: Counter, top_k: int, option: str = "--top-k", where: str = "the treebank") -> tuple:
    """The ``top_k`` most frequent relations (count down, then name), ``root`` always kept; a ConfigError when
    there are fewer than ``top_k``."""
    if top_k < 1:
        raise ConfigError(f"{option} must be at least 1, got {top_k}")
    if len(counts) < top_k:
        raise ConfigError(f"{option} {top_k}: {where} has only {len(counts)} dependency relations; give "
                          f"{option} {len(counts)} or less")
    ranked = sorted(counts, key=lambda r: (-counts[r], r))
    kept = ranked[:top_k]
    if ROOT not in kept:
        if ROOT not in counts:
            raise DataError(f"{where} has no word of relation {ROOT!r} (HEAD 0)")
        kept[-1] = ROOT
    return tuple(kept)


def tag_of(relation: str, kept: Sequence[str]) -> str:
    """A relation's tag: itself when kept, else :data:`OTHER`."""
    return relation if relation in kept else OTHER


def production_counts(sentences: Iterable[Sentence], kept: Sequence[str], strip_subtypes: bool = False) -> dict:
    """``c(r -> α)``: ``{tag: Counter({(left_tags, right_tags): count})}`` over every word of every sentence."""
    kept = set(kept)
    out: dict = {}
    for s in sentences:
        tags = [tag_of(relation_of(r, strip_subtypes), kept) for r in s.deprels]
        deps: list = [[] for _ in range(len(s) + 1)]  # deps[h]: the ids of h's dependents, in order
        for i, h in enumerate(s.heads, 1):
            deps[h].append(i)
        for h in range(1, len(s) + 1):
            left = tuple(tags[d - 1] for d in deps[h] if d < h)
            right = tuple(tags[d - 1] for d in deps[h] if d > h)
            out.setdefault(tags[h - 1], Counter())[(left, right)] += 1
    return out


def form_counts(sentences: Iterable[Sentence], kept: Sequence[str], strip_subtypes: bool = False) -> dict:
    """The number of distinct word forms (lower-cased) of each tag: ``{tag: n}``."""
    kept = set(kept)
    forms: dict = {}
    for s in sentences:
        for form, rel in zip(s.forms, s.deprels):
            forms.setdefault(tag_of(relation_of(rel, strip_subtypes), kept), set()).add(form.lower())
    return {t: len(f) for t, f in forms.items()}


@dataclasses.dataclass(frozen=True)
class Grammar:
    """The learned grammar. ``tags``: the kept relations by frequency, then :data:`OTHER` when some relation
    was mapped to it; ``productions[tag]``: ``((left, right), count)`` pairs in a fixed order (count down,
    then the tags); ``forms[tag]``: distinct word forms of the tag in the treebank."""

    tags: tuple
    productions: dict
    forms: dict

    def probability(self, tag: str, left: tuple, right: tuple) -> float:
        """``P(left HEAD right | tag)``."""
        rules = self.productions[tag]
        return sum(c for (lr, c) in rules if lr == (tuple(left), tuple(right))) / sum(c for _, c in rules)

    def to_json(self) -> dict:
        return {"tags": list(self.tags), "forms": dict(self.forms),
                "productions": {t: [[list(left), list(right), c] for (left, right), c in rules]
                                for t, rules in self.productions.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "Grammar":
        return cls(tuple(data["tags"]),
                   {t: tuple(((tuple(left), tuple(right)), int(c)) for left, right, c in rules)
                    for t, rules in data["productions"].items()},
                   {t: int(n) for t, n in data["forms"].items()})


def learn_grammar(sentences: Sequence[Sentence], top_k: int = 20, strip_subtypes: bool = False,
                  option: str = "--top-k", where: str = "the treebank") -> Grammar:
    """The grammar of the module's formulation learned from ``sentences``."""
    kept = kept_relations(relation_counts(sentences, strip_subtypes), top_k, option, where)
    counts = production_counts(sentences, kept, strip_subtypes)
    tags = tuple(kept) + ((OTHER,) if OTHER in counts else ())
    productions = {t: tuple(sorted(counts[t].items(), key=lambda kv: (-kv[1], kv[0]))) for t in tags}
    return Grammar(tags, productions, form_counts(sentences, kept, strip_subtypes))


class Sampler:
    """Draws tag sequences from a :class:`Grammar` (:func:`sample_tags` with the cumulative counts computed
    once)."""

    def __init__(self, grammar: Grammar, max_depth: int):
        self.grammar = grammar
        self.max_depth = max_depth
        self._rules = {t: [lr for lr, _ in rules] for t, rules in grammar.productions.items()}
        self._cumulative = {t: list(itertools.accumulate(c for _, c in rules))
                            for t, rules in grammar.productions.items()}

    def _grow(self, tag: str, depth: int, rng: np.random.Generator, out: list) -> None:
        if depth >= self.max_depth:
            out.append(tag)
            return
        cum = self._cumulative[tag]
        left, right = self._rules[tag][bisect.bisect_right(cum, rng.random() * cum[-1])]
        for child in left:
            self._grow(child, depth + 1, rng, out)
        out.append(tag)
        for child in right:
            self._grow(child, depth + 1, rng, out)

    def sample(self, rng: np.random.Generator) -> list:
        """One sentence: the linearised tags of a tree grown from :data:`ROOT`."""
        out: list = []
        self._grow(ROOT, 0, rng, out)
        return out


def sample_tags(grammar: Grammar, rng: np.random.Generator, max_depth: int = 10) -> list:
    """One sentence of tags drawn as the module says (depth cap ``max_depth``)."""
    return Sampler(grammar, max_depth).sample(rng)
