"""What each arm keeps, seed by seed: the sampler's decisions in match order, exact size matching (any
weighting), composition, and the check that the computed decisions are the sampler's own."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Optional

import numpy as np

from ..errors import ConfigError
from . import sampling
from .config import StudyConfig, match_order, sampling_seed
from .corpus import load_labels, read_shard
from .index import CorpusIndex

#: documents of the first corpus file on which every computed sample is checked against the sampler itself
VERIFY_DOCUMENTS = 1000


@dataclasses.dataclass
class ArmSample:
    arm: str
    seed_index: int
    sampling_seed: int
    mask: np.ndarray  # over the study's training documents
    factor: Optional[float]  # the computed factor of a matched arm (else the arm's own, or None)
    documents: int
    tokens: int
    composition: dict  # label -> [kept, total]

    def summary(self) -> dict:
        return {"arm": self.arm, "seed_index": self.seed_index, "sampling_seed": self.sampling_seed,
                "factor": self.factor, "documents": self.documents, "tokens": self.tokens,
                "composition": self.composition}


def sample_arms(cfg: StudyConfig, index: CorpusIndex, k: int, only: Optional[set] = None) -> dict[str, ArmSample]:
    """Every arm's sample for seed index ``k`` (arms matched by others are computed too when needed), from the
    index's scores and ids alone (:func:`.sampling.thresholds`)."""
    from mc4_sampling.weightings import is_uniform

    by_name = {a.name: a for a in cfg.arms}
    need = set(only) if only is not None else set(by_name)
    for name in list(need):  # the targets of the arms asked for
        while by_name[name].match is not None:
            name = by_name[name].match
            need.add(name)
    seed = sampling_seed(cfg, k)
    lang = cfg.corpus.language
    out: dict[str, ArmSample] = {}
    for name in match_order(cfg.arms):
        if name not in need:
            continue
        arm = by_name[name]
        factor, t = sampling.thresholds(arm, index.scores.get(sampling.scorer_key(arm)), index.keys, seed, lang)
        if arm.match is not None:
            target = out[arm.match]
            if arm.match_by == "documents":
                factor, n = sampling.factor_keeping(t, target.documents), target.documents
            else:
                factor, n = sampling.factor_keeping_tokens(t, index.tokens, target.tokens)
        elif arm.max_documents is not None and is_uniform(arm.sampling_method):  # exactly max_documents
            n = min(arm.max_documents, len(index))
            factor = sampling.factor_keeping(t, n)
        mask = t < factor if factor is not None else np.ones(len(index), dtype=bool)
        if arm.match is None and arm.max_documents is not None and mask.sum() > arm.max_documents:
            mask[np.flatnonzero(mask)[arm.max_documents:]] = False  # the first ones, as a stream stops
        if not mask.any():
            raise ConfigError(f"arms.{name} keeps no document of the corpus (sampling seed {seed}); "
                              "raise its factor")
        comp = {}
        if index.labels is not None:
            labels, totals = np.unique(index.labels, return_counts=True)
            kept = Counter(index.labels[mask].tolist())
            comp = {str(lab): [int(kept.get(lab, 0)), int(n)] for lab, n in zip(labels, totals)}
        out[name] = ArmSample(name, k, seed, mask, factor, int(mask.sum()), int(index.tokens[mask].sum()), comp)
    return out


def check_against_sampler(cfg: StudyConfig, index: CorpusIndex, samples: dict, limit: int = VERIFY_DOCUMENTS
                          ) -> None:
    """The computed decisions must be the sampler's own: ``sample_dataset`` with each arm's factor, run on the
    indexed documents among the first ``2 limit`` of the first corpus file (at most ``limit`` of them), keeps
    exactly the documents the study kept."""
    from mc4_sampling.draw import hashes64
    from mc4_sampling.weightings import keeps_all

    read = 2 * limit if cfg.corpus.max_documents is None else min(2 * limit, cfg.corpus.max_documents)
    docs = read_shard(cfg, index.shards[0], load_labels(cfg), read)  # their indexed ones are the file's first
    rows_of = {int(key): row for row, key in enumerate(index.keys[index.shard_rows(0)])}
    rows, picked = [], []
    for i, key in enumerate(hashes64(docs.ids).tolist()):
        if key in rows_of:
            rows.append(rows_of[key])
            picked.append(i)
            if len(rows) == limit:
                break
    texts, ids = [docs.texts[i] for i in picked], [docs.ids[i] for i in picked]
    by_name = {a.name: a for a in cfg.arms}
    for s in samples.values():
        arm = by_name[s.arm]
        if keeps_all(arm.sampling_method):
            continue
        got = sampling.keep_mask(arm, texts, ids, s.sampling_seed, cfg.corpus.language, factor=s.factor)
        if not np.array_equal(got, s.mask[rows]):
            raise ConfigError(f"arms.{s.arm}: the sampler keeps {int(got.sum())} of the first {len(rows)} documents, "
                              f"the study computed {int(s.mask[rows].sum())}: the sampler's rule is no longer "
                              "u < factor * w(x) (adapt trainer/study/sampling.py)")
