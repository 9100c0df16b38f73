"""What each arm keeps, seed by seed: the sampler's decisions in match order, exact size matching, composition."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Optional

import numpy as np

from ..errors import ConfigError
from . import sampling
from .config import StudyConfig, match_order


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


def sampling_seed(cfg: StudyConfig, k: int) -> int:
    """The sampling seed of seed index ``k``: ``seeds.sampling_seed``, plus ``k`` when ``seeds.vary_sampling``."""
    return cfg.seeds.sampling_seed + (k if cfg.seeds.vary_sampling else 0)


def sample_arms(cfg: StudyConfig, ids: list, texts: list, labels: list, tokens: np.ndarray, k: int,
                only: Optional[set] = None) -> dict[str, ArmSample]:
    """Every arm's sample for seed index ``k`` (arms matched by others are computed too when needed)."""
    by_name = {a.name: a for a in cfg.arms}
    need = set(only) if only is not None else set(by_name)
    for name in list(need):  # the targets of the arms asked for
        while by_name[name].match is not None:
            name = by_name[name].match
            need.add(name)
    seed = sampling_seed(cfg, k)
    lang = cfg.corpus.language
    out: dict[str, ArmSample] = {}
    totals = Counter(labels) if labels and labels[0] is not None else None
    for name in match_order(cfg.arms):
        if name not in need:
            continue
        arm = by_name[name]
        factor = arm.factor
        if arm.match is not None:
            target = out[arm.match]
            u = sampling.random_draws(ids, seed, lang)
            if arm.match_by == "documents":
                factor, n = sampling.factor_keeping(u, target.documents), target.documents
            else:
                factor, n = sampling.factor_keeping_tokens(u, tokens, target.tokens)
            mask = sampling.keep_mask(arm, texts, ids, seed, lang, factor=factor)
            if int(mask.sum()) != n:
                raise ConfigError(f"arms.{name}: the factor {factor} computed to keep {n} documents kept "
                                  f"{int(mask.sum())}: the sampler's random rule is no longer u < factor "
                                  "(adapt trainer/study/sampling.py)")
        elif arm.max_documents is not None and arm.method == "random":  # exactly max_documents
            factor = sampling.factor_keeping(sampling.random_draws(ids, seed, lang), min(arm.max_documents, len(ids)))
            mask = sampling.keep_mask(arm, texts, ids, seed, lang, factor=factor)
        else:
            mask = sampling.keep_mask(arm, texts, ids, seed, lang)
            if arm.max_documents is not None and mask.sum() > arm.max_documents:  # the first ones, as a stream stops
                mask[np.flatnonzero(mask)[arm.max_documents:]] = False
        if not mask.any():
            raise ConfigError(f"arms.{name} keeps no document of the corpus (sampling seed {seed}); "
                              "raise its factor")
        comp = {}
        if totals is not None:
            kept = Counter(lab for lab, m in zip(labels, mask) if m)
            comp = {lab: [int(kept.get(lab, 0)), int(n)] for lab, n in sorted(totals.items())}
        out[name] = ArmSample(name, k, seed, mask, factor, int(mask.sum()), int(tokens[mask].sum()), comp)
    return out
