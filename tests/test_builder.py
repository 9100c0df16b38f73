"""The builder over the bundled sample: every method, statistics, determinism at scale."""

import math
import warnings

import numpy as np
import pytest
from datasets import load_dataset
from datasets.distributed import split_dataset_by_node

import mc4_sampling
from mc4_sampling import Mc4Sampling
from mc4_sampling.kenlm_models import embedded_model
from mc4_sampling.plan import SamplingPlan
from mc4_sampling.sampler import DocumentSampler, SamplingStats
from mc4_sampling.shards import shard_refs_for

SAMPLE = mc4_sampling.SAMPLE_DATA_DIR
METHODS = ("none", "random", "stepwise", "gaussian")
Z = 4.0  # two-sided bounds at about 6e-5: a fixed-seed test that fails only when behaviour is wrong


def load(split="train", streaming=True, **kw):
    return load_dataset("mc4-sampling", "es", data_dir=SAMPLE, split=split, streaming=streaming, **kw)


def urls(ds):
    return [x["url"] for x in ds]


def config(**kw):
    return Mc4Sampling(config_name="es", data_dir=SAMPLE, **kw).config


def rule_of(cfg, split="train"):
    return SamplingPlan.resolve(cfg, "es").rule(split)


def scored_run(method, seed, split="train", **kw):
    """(perplexity, keep probability, kept) of every document, with the builder's own rule."""
    cfg = config(sampling_method=method, seed=seed, **kw)
    sampler = DocumentSampler(rule_of(cfg, split), seed, embedded_model(), score_all=True)
    stats = SamplingStats()
    for shard in shard_refs_for(cfg, split):
        list(sampler.sample(shard, stats))
    return np.array(stats.scored_documents, dtype=float)


def test_sample_is_in_mc4_layout_and_sizable():
    cfg = config()
    train, validation = shard_refs_for(cfg, "train"), shard_refs_for(cfg, "validation")
    assert train and validation
    assert all(r.path.endswith(f"c4-es.tfrecord-{r.index:05d}-of-02048.json.gz") for r in train)
    assert all(r.path.endswith(f"c4-es-validation.tfrecord-{r.index:05d}-of-00016.json.gz") for r in validation)
    first = next(iter(load(sampling_method="none")))
    assert set(first) == {"text", "timestamp", "url"} and first["url"].startswith("http")
    assert 2000 <= sum(1 for _ in load(sampling_method="none")) <= 10000


@pytest.mark.parametrize("method", METHODS)
def test_every_method_streaming_and_not_gives_the_same_documents(method, tmp_path):
    streamed = list(load(sampling_method=method))
    built = load(sampling_method=method, streaming=False, cache_dir=str(tmp_path))
    assert [x["url"] for x in streamed] == built["url"]
    assert [x["text"] for x in streamed] == built["text"]
    assert built.features.keys() == {"text", "timestamp", "url"}


@pytest.mark.parametrize("method", ["random", "stepwise", "gaussian"])
def test_keep_counts_fall_inside_binomial_bounds(method):
    runs = scored_run(method, seed=11)
    p, kept = runs[:, 1], runs[:, 2]
    expected, sd = p.sum(), math.sqrt((p * (1 - p)).sum())
    assert abs(kept.sum() - expected) <= Z * sd, (kept.sum(), expected, sd)
    # the builder keeps exactly what the scored run kept
    assert sum(1 for _ in load(sampling_method=method, seed=11)) == kept.sum()
    if method == "random":
        assert p == pytest.approx(np.full_like(p, 0.5))


@pytest.mark.parametrize("method", ["stepwise", "gaussian"])
def test_acceptance_as_a_function_of_perplexity_matches_the_formula(method):
    runs = np.concatenate([scored_run(method, seed) for seed in range(6)])
    x, kept = runs[:, 0], runs[:, 2]
    cfg = config(sampling_method=method)
    rule = rule_of(cfg)
    p = np.minimum(rule.probability(x), 1.0)
    edges = np.quantile(x, np.linspace(0, 1, 11))
    bins = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, 9)
    for b in range(10):
        sel = bins == b
        n, pb = sel.sum(), p[sel]
        sd = math.sqrt((pb * (1 - pb)).sum()) or 1.0
        assert abs(kept[sel].sum() - pb.sum()) <= Z * sd, (b, kept[sel].sum(), pb.sum(), sd, n)
    # and the curve really has the method's shape
    if method == "gaussian":
        m = rule.boundaries[1]
        near, far = np.abs(np.log(x / m)) < 0.1, np.abs(np.log(x / m)) > 1.0
        assert kept[near].mean() > kept[far].mean() + 0.2
    else:
        b1, b2, b3 = rule.boundaries
        assert kept[(x > b1) & (x < b2)].mean() > kept[x >= b3].mean() + 0.3


def test_methods_visibly_differ_on_the_sample():
    q = {}
    for method in ("random", "stepwise", "gaussian"):
        runs = scored_run(method, seed=3)
        q[method] = np.quantile(runs[runs[:, 2] == 1, 0], [0.1, 0.5, 0.9])
    # random keeps the tails; the perplexity weightings drop the high-perplexity tail
    assert q["stepwise"][2] < 0.8 * q["random"][2]
    assert q["gaussian"][2] < 0.8 * q["random"][2]


def test_skipping_the_scoring_of_rejected_documents_changes_no_decision():
    cfg = config(sampling_method="gaussian", seed=5)
    rule = rule_of(cfg)
    model = embedded_model()
    lazy, eager = SamplingStats(), SamplingStats()
    shards = shard_refs_for(cfg, "train")
    lazy_kept = [ex["url"] for s in shards for _, ex in DocumentSampler(rule, 5, model).sample(s, lazy)]
    eager_sampler = DocumentSampler(rule, 5, model, score_all=True)
    eager_kept = [ex["url"] for s in shards for _, ex in eager_sampler.sample(s, eager)]
    assert lazy_kept == eager_kept
    assert eager.scored == eager.read and lazy.scored < eager.scored
    assert abs(lazy.scored / lazy.read - rule.max_probability) < 0.05


@pytest.mark.parametrize("method", ["random", "gaussian"])
def test_same_documents_for_1_2_and_3_nodes(method):
    whole = urls(load(sampling_method=method))
    for world in (2, 3):
        parts = [urls(split_dataset_by_node(load(sampling_method=method), rank, world)) for rank in range(world)]
        assert sorted(sum(parts, [])) == sorted(whole)
        assert sum(len(p) for p in parts) == len(set(whole)) == len(whole)


def test_same_documents_with_dataloader_workers():
    torch_data = pytest.importorskip("torch.utils.data")
    ds = load(sampling_method="gaussian")
    loaded = [x["url"] for x in torch_data.DataLoader(ds, batch_size=None, num_workers=2)]
    assert sorted(loaded) == sorted(urls(load(sampling_method="gaussian")))


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.9])
def test_restart_from_a_state_dict_continues_exactly(fraction):
    whole = urls(load(sampling_method="stepwise"))
    stop_after = max(1, int(fraction * len(whole)))
    ds = load(sampling_method="stepwise")
    head = []
    for x in ds:
        head.append(x["url"])
        if len(head) == stop_after:
            state = ds.state_dict()
            break
    resumed = load(sampling_method="stepwise")
    resumed.load_state_dict(state)
    assert head + urls(resumed) == whole


def test_different_seeds_give_different_samples():
    a, b = set(urls(load(sampling_method="random", seed=1))), set(urls(load(sampling_method="random", seed=2)))
    assert len(a & b) / len(a | b) < 0.6
    assert set(urls(load(sampling_method="random", seed=1))) == a


def test_return_perplexity_scores_every_yielded_document():
    model = embedded_model()
    docs = list(load(sampling_method="none", return_perplexity=True))
    assert all(isinstance(d["perplexity"], float) for d in docs)
    assert len(docs) == sum(1 for _ in load(sampling_method="none"))
    for d in docs[:50]:
        assert d["perplexity"] == pytest.approx(model.perplexity(d["text"]), rel=1e-12)
    kept = list(load(sampling_method="random", return_perplexity=True))
    assert all(d["perplexity"] > 0 for d in kept)


def test_validation_split_is_not_sampled_by_default():
    everything = urls(load("validation", sampling_method="none"))
    assert urls(load("validation", sampling_method="gaussian")) == everything
    sampled = urls(load("validation", sampling_method="random", validation_sampling_factor=0.25))
    n = len(everything)
    assert abs(len(sampled) - n / 4) <= Z * math.sqrt(n * 0.25 * 0.75)


def test_several_languages_each_with_their_own_urls(tmp_path, file_server, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", file_server(tmp_path).url)  # the Hub's place, reachable (nothing is read)
    cfg = Mc4Sampling(languages=["es", "ca"], sampling_method="random").config
    assert cfg.name == "es+ca"
    refs = shard_refs_for(cfg, "train")
    assert len(refs) == 2048 + 512
    assert refs[0].path.endswith("/multilingual/c4-es.tfrecord-00000-of-02048.json.gz")
    assert refs[-1].path.endswith("/multilingual/c4-ca.tfrecord-00511-of-00512.json.gz")
    assert "c4-es+ca" not in refs[0].path
    val = shard_refs_for(cfg, "validation")
    assert val[-1].path.endswith("c4-ca-validation.tfrecord-00000-of-00001.json.gz")
    ds = load_dataset("mc4-sampling", "es+ca", streaming=True, split="train")
    assert ds.n_shards == 2048 + 512


def test_fallback_builder_api_matches_load_dataset():
    builder = Mc4Sampling(config_name="es", data_dir=SAMPLE, sampling_method="gaussian")
    built = builder.as_streaming_dataset(split="train")
    assert urls(built) == urls(load(sampling_method="gaussian"))


def test_registration_is_guarded(monkeypatch):
    from datasets import packaged_modules

    from mc4_sampling import registry

    assert mc4_sampling.REGISTERED and "mc4-sampling" in packaged_modules._PACKAGED_DATASETS_MODULES
    monkeypatch.delattr(packaged_modules, "_PACKAGED_DATASETS_MODULES")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert registry.register() is False
    assert "as_streaming_dataset" in str(caught[0].message)


def test_non_streaming_cache_follows_the_content_of_local_shards_and_calibration(tmp_path, mini_mc4):
    """After a local shard or the calibration file changes, a non-streaming build is made again
    (the cache key covers their content), and equals streaming."""
    import json
    import os
    import shutil

    from conftest import write_shard

    from mc4_sampling.calibration import Calibration, save_calibration

    data = tmp_path / "data" / "multilingual"
    shutil.copytree(mini_mc4, data)
    model = embedded_model()
    calibration = tmp_path / "calibration.json"

    def calibrate(b1):
        save_calibration(Calibration(model.model_id, model.mode, (b1, b1 * 2, b1 * 4),
                                     {"gaussian": {"factor": 0.9, "width": 2.0}}), calibration)

    def both(**kw):
        kw = dict(data_dir=str(data.parent), split="train", shards=[0, 1], **kw)
        built = load_dataset("mc4-sampling", "es", streaming=False, cache_dir=str(tmp_path / "cache"), **kw)
        streamed = [x["url"] for x in load_dataset("mc4-sampling", "es", streaming=True, **kw)]
        assert built["url"] == streamed
        return streamed

    first = both(sampling_method="none")
    shard = data / "c4-es.tfrecord-00001-of-02048.json.gz"
    stat = os.stat(shard)
    write_shard(shard, 400, seed=7)  # same name and document count, other documents
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with the old modification time
    second = both(sampling_method="none")
    assert second != first and second[:400] == first[:400]
    assert any(u.startswith("https://ejemplo.es/7/") for u in second)

    calibrate(300.0)
    third = both(sampling_method="gaussian", calibration=str(calibration))
    calibrate(3000.0)
    fourth = both(sampling_method="gaussian", calibration=str(calibration))
    assert third != fourth
    assert json.loads(calibration.read_text())["boundaries"][0] == 3000.0
