"""The embedding map (BERTIN's t-SNE check): does score sampling keep every kind of document?

A sample of documents is scored by the plan's scorer and decided by the plan's weighting exactly as sampling
decides them (the same counter-based draw ``u`` of the same key, the same ``u < p(score)``: a document kept
here is a document ``sample`` keeps), embedded by an encoder (:mod:`.embedding`), and projected to 2-D
(t-SNE from scikit-learn, or UMAP when ``umap-learn`` is installed). If the kept documents cover the map as
the dropped ones do, the sampling did not drop a topic or a cluster of documents along with the low scores.

Two sources: mC4 shards (the bundled sample by default), a uniform sample of ``n_docs`` documents of the
first ``shards_to_read`` shards, each decided with its shard's key and its position, as the builder does; or
any ``datasets`` corpus (``--dataset``), its first ``n_docs`` rows after a seeded shuffle, decided by
:class:`~mc4_sampling.corpus.CorpusSampler` (the draw keyed by the id or the text, as ``sample --dataset``).
Everything random takes ``seed``: the same seed gives the same map.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Optional

import numpy as np

from .calibration.subset import reservoir_sample
from .errors import BadRecordError, ConfigError
from .plan import SamplingPlan
from .reader import iter_records
from .sampler import BlockDecider
from .shards import shard_refs_for

log = logging.getLogger(__name__)

PROJECTIONS = ("tsne", "umap")


@dataclasses.dataclass
class MapDocuments:
    """The sampled documents with their score, keep probability and decision (arrays aligned with ``texts``)."""

    texts: list
    scores: np.ndarray
    probability: np.ndarray  # min(1, p(score))
    kept: np.ndarray
    where: list  # "shard 3, line 17" / "row 42"
    score_name: str
    method: str
    factor: Optional[float]


def mc4_documents(config, language: str, split: str, n_docs: int, seed: int, shards_to_read: int = 4,
                  progress: Callable[[int], None] | None = None) -> MapDocuments:
    """``n_docs`` documents drawn uniformly (reservoir, ``seed``) from the first ``shards_to_read`` shards of
    ``split``, each decided as the builder decides it (its shard's key, its line)."""
    shards = shard_refs_for(config, split)[:shards_to_read]
    shards = [s for s in shards if s.language == language]
    if not shards:
        raise ConfigError(f"no {split} files of {language!r} found (data_dir={config.data_dir!r})")
    plan = SamplingPlan.resolve(config, language)
    sampler = plan.document_sampler(split, score_all=True)

    def records():
        for shard in shards:
            for position, record in iter_records(shard.path, config.on_bad_record):
                if record is not None and isinstance(record.get("text"), str):
                    yield shard, position, record["text"]
                    if progress is not None:
                        progress(1)

    picked, _ = reservoir_sample(records(), n_docs, np.random.default_rng(seed))
    picked.sort(key=lambda d: (d[0].index, d[1]))
    texts, scores, probs, kept, where = [], [], [], [], []
    for shard in shards:
        block = [d for d in picked if d[0] is shard]
        if not block:
            continue
        positions = np.fromiter((d[1] for d in block), dtype=np.uint64, count=len(block))
        model = sampler.model

        def bad(indices, block=block, shard=shard):
            i = int(indices[0])
            return BadRecordError(shard.path, int(block[i][1]) + 1, model.bad_value(block[i][2]))

        decision = sampler.decider.decide(sampler.shard_key(shard), positions,
                                          lambda idx, block=block: model.score([block[i][2] for i in idx]), bad)
        for i, ok in BlockDecider.documents(decision):
            texts.append(block[i][2])
            scores.append(decision.perplexity[i])
            probs.append(min(float(decision.probability[i]), 1.0))
            kept.append(ok)
            where.append(f"{shard.path.rsplit('/', 1)[-1]}, line {int(block[i][1]) + 1}")
    return MapDocuments(texts, np.asarray(scores, float), np.asarray(probs), np.asarray(kept, bool), where,
                        plan.score_name, plan.rule(split).method, _factor(plan, split))


def corpus_documents(ds, options, language: str, n_docs: int, seed: int, *, text_column: str = "text",
                     id_column: str | None = None) -> MapDocuments:
    """The first ``n_docs`` rows of ``ds`` after ``ds.shuffle(seed)``, decided by
    :class:`~mc4_sampling.corpus.CorpusSampler` as ``sample_dataset`` decides them."""
    from .corpus import CorpusSampler

    plan = SamplingPlan.resolve(options, language)
    if hasattr(ds, "shuffle"):
        ds = ds.shuffle(seed=seed, **({"buffer_size": max(10_000, n_docs)} if hasattr(ds, "n_shards") else {}))
    rows = []
    for row in ds:
        if isinstance(row.get(text_column), str):
            rows.append(row)
        if len(rows) == n_docs:
            break
    if not rows:
        raise ConfigError(f"the corpus has no rows with a string in column {text_column!r}")
    sampler = CorpusSampler(plan, text_column=text_column, id_column=id_column)
    batch = {k: [r.get(k) for r in rows] for k in rows[0]}
    keep, _ = sampler.decide(batch, list(range(len(rows))))
    model = plan.model
    values = batch[model.input_column] if model.input_column is not None else batch[text_column]
    scores = np.asarray(model.score(values), float)
    probs = np.minimum(np.asarray(plan.train.probability(scores), float) * np.ones(len(rows)), 1.0)
    return MapDocuments(batch[text_column], scores, probs, np.asarray(keep, bool),
                        [f"row {i}" for i in range(len(rows))], plan.score_name, plan.train.method,
                        _factor(plan, "train"))


def _factor(plan: SamplingPlan, split: str) -> Optional[float]:
    rule = plan.rule(split)
    return None if rule.weighting.keeps_all else float(rule.factor)


def project(embeddings: np.ndarray, method: str = "tsne", seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """``(n, 2)`` coordinates of ``embeddings``: t-SNE (scikit-learn; PCA initialisation, hence deterministic;
    its perplexity at most ``(n - 1) / 3``) or UMAP (umap-learn, seeded)."""
    n = len(embeddings)
    if n < 5:
        raise ConfigError(f"a map needs at least 5 documents, got {n}")
    x = np.asarray(embeddings, np.float64)
    if method == "umap":
        try:
            import umap
        except ImportError:
            raise ConfigError("--projection umap needs umap-learn: pip install umap-learn "
                              "(or use --projection tsne)") from None
        return np.asarray(umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, n - 1)).fit_transform(x))
    if method != "tsne":
        raise ConfigError(f"--projection {method}: choose one of {', '.join(PROJECTIONS)}")
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise ConfigError("the map needs scikit-learn: pip install 'mc4-sampling[maps]'") from None
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    tsne = TSNE(n_components=2, perplexity=min(perplexity, (n - 1) / 3), init="pca", learning_rate="auto",
                random_state=seed)
    # one thread: OpenMP threads spinning on a busy machine made 60 points take 50 s instead of 0.3 s
    with threadpool_limits(1):
        return np.asarray(tsne.fit_transform(x))
