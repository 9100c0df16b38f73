"""Weighted upsampling (mc4_sampling/upsampling.py): expected copies c = min(N, p * g(m)), copy k written when
u_k < clip(c - k, 0, 1). Checked statistically (fixed seeds, many documents), bit-identical to no upsampling at
N = 1, the same copies whatever the blocks, order or node split, the token budget met, bad input refused."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mc4_sampling import sample_dataset
from mc4_sampling.calibration.budget import expected_tokens, fit_token_budget, solve_token_factor
from mc4_sampling.draw import copy_key, uniform_draws
from mc4_sampling.errors import BadRecordError, ConfigError
from mc4_sampling.sampler import SamplingStats, decide_block
from mc4_sampling.upsampling import Upsampling, rehydration_weights
from mc4_sampling.weightings import SamplingRule

KEY = 0x1234_5678_9ABC_DEF0


@pytest.fixture(scope="module")
def corpus():
    """A FineWeb-2-shaped corpus in memory: text, id, a quality score q, minhash_cluster_size."""
    import datasets

    datasets.disable_progress_bars()
    rng = np.random.default_rng(7)
    n = 6000
    lengths = rng.integers(5, 120, n)
    return datasets.Dataset.from_dict({
        "text": [" ".join(["palabra"] * int(k)) + f" doc{i}" for i, k in enumerate(lengths)],
        "id": [f"<urn:uuid:{i:08d}>" for i in range(n)],
        "q": rng.lognormal(6.0, 0.5, n).tolist(),
        "minhash_cluster_size": rng.geometric(0.35, n).tolist(),
    })


GAUSSIAN = dict(sampling_method="gaussian", score_column="q", boundaries=(300.0, 400.0, 600.0))


def test_copy_keys_are_fresh_draws():
    assert copy_key(KEY, 0) == KEY
    keys = {copy_key(KEY, k) for k in range(8)}
    assert len(keys) == 8
    positions = np.arange(100_000)
    u0, u1 = uniform_draws(KEY, positions), uniform_draws(copy_key(KEY, 1), positions)
    assert abs(np.corrcoef(u0, u1)[0, 1]) < 0.015  # 1/sqrt(n) = 0.003
    assert abs(u1.mean() - 0.5) < 0.005


def test_expected_copies_and_their_spread():
    """E[copies] = c for every cluster size, and copies are floor(c) or floor(c) + 1 (copy k < floor(c) always)."""
    n = 200_000
    m = np.tile([1, 2, 3, 4, 7, 150, 5000], n // 7 + 1)[:n]
    rule = SamplingRule("random", factor=0.7)
    for function, g in (("linear", m.astype(float)), ("rehydration", rehydration_weights(m)),
                        ("sqrt", np.sqrt(m))):
        decision = decide_block(rule, KEY, np.arange(n, dtype=np.uint64), None,
                                upsampling=Upsampling(4, function), metadata=m.tolist())
        c = np.minimum(4.0, 0.7 * g)
        copies = decision.copies
        assert np.all((copies == np.floor(c)) | (copies == np.floor(c) + 1))
        for size in np.unique(m):
            at = m == size
            r = c[at][0] - np.floor(c[at][0])
            sigma = np.sqrt(r * (1 - r) / at.sum())
            assert abs(copies[at].mean() - c[at][0]) <= 5 * sigma + 1e-12, (function, size)
        assert np.array_equal(decision.keep, copies > 0)


def test_rehydration_weights_are_fineweb2s():
    def table(size):  # huggingface/fineweb-2 README, "Deduplication"
        if size >= 1000:
            return 1
        if size >= 100:
            return 8
        if size >= 5:
            return 5
        if size == 4:
            return 3
        if size in (2, 3):
            return size
        return 1

    sizes = np.arange(0, 2500)
    assert rehydration_weights(sizes).tolist() == [table(s) for s in sizes]


def test_one_copy_is_todays_decision_bit_for_bit(corpus):
    """max_copies=1 with g = 1 decides what no upsampling decides, on the upsampling code path too."""
    base = sample_dataset(corpus, **GAUSSIAN, id_column="id", return_score=True)
    same = sample_dataset(corpus, **GAUSSIAN, id_column="id", return_score=True, max_copies=1, upsample="none")
    assert list(base["id"]) == list(same["id"]) and 0 < len(base) < len(corpus)
    rng = np.random.default_rng(3)
    scores = rng.lognormal(6.0, 0.5, 5000)
    rule = SamplingRule("gaussian", 0.8, (300.0, 400.0, 600.0))
    positions = np.arange(5000, dtype=np.uint64)
    plain = decide_block(rule, KEY, positions, lambda idx: scores[idx])
    copies = decide_block(rule, KEY, positions, lambda idx: scores[idx], upsampling=Upsampling(1, "none"))
    assert np.array_equal(plain.keep, copies.keep) and np.array_equal(plain.to_score, copies.to_score)


def test_copies_do_not_depend_on_blocks_order_or_nodes(corpus):
    from datasets.distributed import split_dataset_by_node

    options = dict(**GAUSSIAN, sampling_factor=0.9, id_column="id", max_copies=6, upsample="rehydration")
    head = corpus.select(range(2000))
    stats = SamplingStats()
    ids = list(sample_dataset(head, stats=stats, **options)["id"])
    whole = Counter(ids)
    assert stats.copies == len(ids) and stats.kept == len(whole) and max(whole.values()) > 2
    assert sum(k * v for k, v in stats.copy_histogram.items()) == stats.copies
    first = {}
    for i, doc in enumerate(ids):  # copies follow one another: a repeated id repeats the row before it
        assert first.setdefault(doc, i) == i or ids[i - 1] == doc
    assert Counter(sample_dataset(head.shuffle(seed=1), block_size=97, **options)["id"]) == whole
    stream = head.to_iterable_dataset(num_shards=6)
    parts = Counter()
    for rank in range(3):
        parts.update(row["id"] for row in sample_dataset(split_dataset_by_node(stream, rank, 3), **options))
    assert parts == whole


def test_solver_against_bisection():
    rng = np.random.default_rng(5)
    for n_max in (1, 3, 8):
        a = rng.exponential(0.5, 500) * (rng.uniform(size=500) > 0.1)
        lengths = rng.integers(0, 300, 500).astype(float)
        budget = 0.6 * n_max * lengths[a > 0].sum()
        f = solve_token_factor(a, lengths, budget, n_max)
        lo, hi = 0.0, 1e6  # an independent reference: bisection on T(f)
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if expected_tokens(mid, a, lengths, n_max) < budget else (lo, mid)
        assert f == pytest.approx(hi, rel=1e-9)
        assert expected_tokens(f, a, lengths, n_max) == pytest.approx(budget, rel=1e-12)


def test_token_budget_is_met(corpus):
    """The realised tokens of the sample: within 4 standard deviations of the budget (copies of a document are
    floor(c) or floor(c) + 1, so its variance is r(1 - r), r = c - floor(c)), and within 3 %."""
    options = dict(**GAUSSIAN, max_copies=8, upsample="rehydration")
    budget = 500_000  # more tokens than the corpus has (380 000): copies needed
    fit = fit_token_budget(corpus, budget, id_column="id", **options)
    assert fit.expected_tokens == pytest.approx(budget, rel=1e-9) and fit.expected_copies > fit.expected_documents
    out = sample_dataset(corpus, **options, sampling_factor=fit.factor, id_column="id")
    realised = sum(len(t.split()) for t in out["text"])
    # the variance from the same weights: recompute c from the corpus
    from mc4_sampling.corpus import keep_weights

    _, w = keep_weights(corpus["q"], **GAUSSIAN)
    c = np.minimum(8.0, fit.factor * w * rehydration_weights(np.array(corpus["minhash_cluster_size"])))
    r = c - np.floor(c)
    lengths = np.array([len(t.split()) for t in corpus["text"]])
    sigma = np.sqrt(np.sum(lengths ** 2 * r * (1 - r)))
    assert abs(realised - budget) <= 4 * sigma and abs(realised / budget - 1) < 0.03
    half = fit_token_budget(corpus.select(range(3000)), budget, total_docs=len(corpus), **options)
    assert half.budget_here == pytest.approx(budget / 2) and half.factor == pytest.approx(fit.factor, rel=0.1)


BAD = [
    (dict(max_copies=0), "max_copies=0 is not valid; it must be an integer >= 1"),
    (dict(max_copies=2.5), "max_copies=2.5 is not valid; it must be an integer >= 1"),
    (dict(max_copies=True), "max_copies=True is not valid"),
    (dict(upsample="cube"), "upsample='cube' is not valid; choose one of none, linear, sqrt, log1p, rehydration"),
    (dict(upsample="sqrt", upsample_column="cluster"),
     "upsample_column='cluster' is not a column of the dataset (columns: id, minhash_cluster_size, q, text)"),
    (dict(upsample_column=3), "upsample_column=3 is not valid; it must be a column name"),
]


@pytest.mark.parametrize("values, words", BAD, ids=[w[:30] for _, w in BAD])
def test_bad_options(corpus, values, words):
    with pytest.raises(ConfigError) as e:
        sample_dataset(corpus, **GAUSSIAN, **values)
    assert words in str(e.value) and len(str(e.value).splitlines()) == 1


def test_bad_cluster_sizes(corpus):
    broken = corpus.select(range(300)).map(
        lambda row, i: {"minhash_cluster_size": None if i == 17 else row["minhash_cluster_size"]}, with_indices=True)
    with pytest.raises(BadRecordError, match=r"row 17 \(id='<urn:uuid:00000017>'\): column 'minhash_cluster_size' "
                                             r"\(upsample_column\) holds None, not a number >= 0"):
        sample_dataset(broken, **GAUSSIAN, id_column="id", upsample="linear", max_copies=3)
    stats = SamplingStats()
    out = sample_dataset(broken, **GAUSSIAN, id_column="id", upsample="linear", max_copies=3, on_bad_record="skip",
                         stats=stats)
    assert stats.bad_records == 1 and "<urn:uuid:00000017>" not in out["id"]


def test_mc4_and_budget_refusals(corpus):
    from mc4_sampling.options import flag, sampling_options

    with pytest.raises(ConfigError, match=r"--upsample-column minhash_cluster_size: mC4 has no such column"):
        sampling_options({"sampling_method": "random", "upsample": "sqrt"}, flag, corpus=False)
    from mc4_sampling import Mc4Sampling

    with pytest.raises(ConfigError, match=r"upsample_column='minhash_cluster_size': mC4 has no such column"):
        Mc4Sampling(config_name="es", sampling_method="random", upsample="sqrt")
    with pytest.raises(ConfigError, match="at most .* tokens expected, every document that can be kept at "
                                          "max_copies=2 copies"):
        fit_token_budget(corpus, 1e9, **GAUSSIAN, max_copies=2, upsample="linear")
    with pytest.raises(ConfigError, match="sampling_method='none' has none"):
        fit_token_budget(corpus, 1e4, sampling_method="none", upsample="linear", max_copies=4)
    with pytest.raises(ConfigError, match="token_budget=-5 is not valid"):
        fit_token_budget(corpus, -5, **GAUSSIAN)


def test_publish_writes_the_copies_the_builder_streams_whatever_the_tasks(tmp_path):
    """publish (1 and 3 tasks) writes each kept document's copies, as the streaming builder yields them, and
    states the duplication in its card; mC4 has no metadata column, so p > 1 (factor 1.6) gives the copies."""
    import gzip
    import json

    import pyarrow.parquet as pq
    from datasets import load_dataset

    from mc4_sampling import Mc4Sampling
    from mc4_sampling.publish import method_configs, publish

    root = tmp_path / "mc4"
    root.mkdir()
    for i in range(3):
        with gzip.open(root / f"c4-es.tfrecord-{i:05d}-of-02048.json.gz", "wt", encoding="utf-8") as f:
            for j in range(150):
                f.write(json.dumps({"text": f"{i} {j} " + "casa " * (j % 7), "timestamp": "t", "url": f"u/{i}/{j}"})
                        + "\n")
    options = dict(data_dir=str(root), sampling_method="random", sampling_factor=1.6, max_copies=3)
    configs = method_configs(Mc4Sampling(config_name="es", **options).config, ["random"])
    streamed = [d["url"] for d in load_dataset("mc4-sampling", "es", split="train", streaming=True, **options)]
    counts = Counter(streamed)
    assert set(counts.values()) == {1, 2} and len(counts) == 450  # c = 1.6: one or two copies, every document
    for tasks in (1, 3):
        out = tmp_path / f"out{tasks}"
        result = publish(configs, str(out), splits=["train"], tasks=tasks, workers=1)
        files = sorted((out / "data" / "random").glob("train-*.parquet"))
        assert [r["url"] for f in files for r in pq.read_table(f).to_pylist()] == streamed
        st = result.stats["random"]["train"]
        assert (st.kept, st.copies) == (450, len(streamed))
        card = (out / "README.md").read_text()
        assert f"| `random` | train | 3 | 1 | 450 | {len(streamed):,} |" in card
        assert f"num_examples: {len(streamed)}" in card


def test_a_fineweb2_folder_is_rehydrated_through_the_builder(tmp_path):
    """The builder over a FineWeb-2-shaped folder (source fineweb2): each document comes floor(c) or floor(c) + 1
    times, c = min(8, 0.7 * rehydration(minhash_cluster_size)), its copies together."""
    import datasets
    from source_fixtures import LANG, make_fineweb2

    folder = make_fineweb2(tmp_path / "fw2", files=2, docs_per_file=150, test_docs=10)
    rows = list(datasets.load_dataset("mc4-sampling", source="fineweb2", language=LANG, data_dir=str(folder),
                                      split="train", sampling_method="random", sampling_factor=0.7, max_copies=8,
                                      upsample="rehydration", streaming=True))
    copies = Counter(r["id"] for r in rows)
    size = {r["id"]: r["minhash_cluster_size"] for r in rows}
    assert max(copies.values()) >= 3
    for doc, n in copies.items():
        c = min(8.0, 0.7 * float(rehydration_weights(np.array([size[doc]]))[0]))
        assert n in (np.floor(c), np.floor(c) + 1), (doc, n, c)
    ids = [r["id"] for r in rows]
    assert all(ids[i] == ids[i - 1] or ids[i] not in ids[:i] for i in range(1, len(ids)))


def test_publish_rehydrates_a_fineweb2_folder_as_the_builder_streams_it(tmp_path):
    """publish over the fineweb2 source (2 tasks) writes, in order, the copies the builder streams: the draws
    keyed by id, the cluster size read from the source's kept columns."""
    import datasets
    import pyarrow.parquet as pq
    from source_fixtures import LANG, make_fineweb2

    from mc4_sampling import Mc4Sampling
    from mc4_sampling.publish import method_configs, publish

    folder = make_fineweb2(tmp_path / "fw2", files=2, docs_per_file=120, test_docs=10)
    options = dict(source="fineweb2", language=LANG, data_dir=str(folder), sampling_method="random",
                   sampling_factor=0.6, max_copies=8, upsample="rehydration")
    streamed = [r["id"] for r in datasets.load_dataset("mc4-sampling", split="train", streaming=True, **options)]
    assert len(streamed) > len(set(streamed))  # some documents come more than once
    configs = method_configs(Mc4Sampling(**options).config, ["random"])
    result = publish(configs, str(tmp_path / "out"), splits=["train"], tasks=2, workers=1)
    files = sorted((tmp_path / "out" / "data" / "random").glob("train-*.parquet"))
    assert [r["id"] for f in files for r in pq.read_table(f).to_pylist()] == streamed
    st = result.stats["random"]["train"]
    assert (st.kept, st.copies) == (len(set(streamed)), len(streamed))
    assert "rehydration(`minhash_cluster_size`)" in (tmp_path / "out" / "README.md").read_text()


def test_sample_token_budget_on_the_command_line(corpus, tmp_path, capsys):
    """``sample --dataset --token-budget``: the factor fitted on the corpus, the words written near the budget."""
    import json

    from mc4_sampling.cli import main

    corpus.select(range(2000)).to_json(tmp_path / "fw2" / "part.jsonl")
    out = tmp_path / "kept.jsonl"
    assert main(["sample", "--dataset", str(tmp_path / "fw2"), "--id-column", "id", "--method", "gaussian",
                 "--score-column", "q", "--boundaries", "300", "400", "600", "--max-copies", "8", "--upsample",
                 "rehydration", "--token-budget", "160000", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "token budget 160,000 words: --factor " in err and "upsampling: " in err
    words = sum(len(json.loads(line)["text"].split()) for line in out.read_text().splitlines())
    assert abs(words / 160_000 - 1) < 0.05


# --- calibrate --token-budget on the bundled FineWeb-2-shaped folder (1 600 train documents) -------------------

FW2 = ["--source", "fineweb2", "--lang", "spa_Latn"]
REHYDRATE = ["--max-copies", "8", "--upsample", "rehydration"]


@pytest.fixture(scope="module")
def fw2_budget(tmp_path_factory):
    """Two budget calibrations of the whole folder (--docs above its 1 600 documents: the size is counted), without
    and with rehydration, and the folder's train texts, cluster sizes and embedded-model perplexities."""
    import pyarrow.parquet as pq

    from mc4_sampling import SAMPLE_FINEWEB2_DIR, load_perplexity_model
    from mc4_sampling.cli import main

    root = tmp_path_factory.mktemp("fw2budget")
    location = ["--location", SAMPLE_FINEWEB2_DIR]
    runs = {"plain": (120_000, []), "rehydrated": (230_000, REHYDRATE)}
    for name, (budget, extra) in runs.items():
        assert main(["calibrate", *FW2, *location, "--docs", "5000", "--methods", "random", "gaussian",
                     "--token-budget", str(budget), *extra, "--no-plots", "-o", str(root / name)]) == 0
    table = pq.read_table(sorted((Path(SAMPLE_FINEWEB2_DIR) / "data" / "spa_Latn" / "train").glob("*.parquet")),
                          columns=["text", "minhash_cluster_size"]).to_pydict()
    model = load_perplexity_model(None, "es", mode="ccnet")
    return root, location, runs, table, np.asarray(model.perplexities(table["text"]), dtype=np.float64)


def _budget_file(root, name):
    import json

    return json.loads((root / name / "calibration.json").read_text())


@pytest.mark.parametrize("name", ["plain", "rehydrated"])
def test_calibrate_token_budget_file_and_expectation(fw2_budget, name):
    """calibration.json records the budget and the counted corpus; each method's factor gives, recomputed here from
    the folder's own perplexities (an independent scoring) and cluster sizes, expected words equal to the budget."""
    from mc4_sampling.weightings import keep_probability

    root, _, runs, table, ppl = fw2_budget
    budget, extra = runs[name]
    cal = _budget_file(root, name)
    assert cal["target_rate"] is None
    b = cal["token_budget"]
    assert (b["tokens"], b["total_docs"], b["total_docs_from"], b["documents"]) == (budget, 1600, "counted", 1600)
    assert (b["max_copies"], b["upsample"]) == ((8, "rehydration") if extra else (1, "none"))
    lengths = np.array([len(t.split()) for t in table["text"]], dtype=np.float64)
    g = rehydration_weights(np.array(table["minhash_cluster_size"])) if extra else np.ones(lengths.size)
    for method, params in cal["methods"].items():
        p = keep_probability(ppl, method, params["factor"], cal["boundaries"], params.get("width", 4.5))
        c = np.minimum(b["max_copies"], p * g)
        assert float(np.sum(lengths * c)) == pytest.approx(budget, rel=1e-6), method
        assert params["expected_words"] == pytest.approx(budget, rel=1e-9)
    if extra:  # more words than the folder holds once (about 200 000): copies needed
        assert cal["methods"]["gaussian"]["expected_copies"] > cal["methods"]["gaussian"]["expected_rate"]


@pytest.mark.parametrize("name, command", [("plain", "publish"), ("rehydrated", "sample")])
def test_a_run_with_the_budget_calibration_writes_the_budget(fw2_budget, tmp_path, name, command):
    """publish (2 tasks) / sample --calibration on the same folder: the words written are within 4 standard
    deviations of the budget, the exact ones of this sample (a document's copies are floor(c) or floor(c) + 1:
    variance L^2 r (1 - r), r = c - floor(c)), the subset being the whole corpus."""
    import json

    import pyarrow.parquet as pq

    from mc4_sampling.cli import main
    from mc4_sampling.weightings import keep_probability

    root, location, runs, table, ppl = fw2_budget
    budget, extra = runs[name]
    cal = _budget_file(root, name)
    calibration = ["--method", "gaussian", "--calibration", str(root / name / "calibration.json"), *extra]
    if command == "publish":
        assert main(["publish", str(tmp_path / "out"), *FW2, *location, *calibration, "--tasks", "2"]) == 0
        files = sorted((tmp_path / "out" / "data" / "gaussian").glob("train-*.parquet"))
        texts = [t for f in files for t in pq.read_table(f, columns=["text"]).column(0).to_pylist()]
    else:
        out = tmp_path / "kept.jsonl"
        assert main(["sample", *FW2, *location, *calibration, "-o", str(out)]) == 0
        texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    words = sum(len(t.split()) for t in texts)
    lengths = np.array([len(t.split()) for t in table["text"]], dtype=np.float64)
    g = rehydration_weights(np.array(table["minhash_cluster_size"])) if extra else np.ones(lengths.size)
    params = cal["methods"]["gaussian"]
    c = np.minimum(cal["token_budget"]["max_copies"],
                   keep_probability(ppl, "gaussian", params["factor"], cal["boundaries"], params["width"]) * g)
    r = c - np.floor(c)
    sigma = float(np.sqrt(np.sum(lengths ** 2 * r * (1 - r))))
    assert 0 < sigma < 0.05 * budget
    assert abs(words - budget) <= 4 * sigma, (words, budget, sigma)
    if extra:
        assert len(texts) > len(set(texts))  # copies written


def test_calibrate_token_budget_refusals(fw2_budget, tmp_path, capsys):
    """One line each, nothing written: two targets, a budget <= 0, upsampling without a budget, --fit-width, the
    corpus size unknown (a subset of part of it), a budget out of reach (the most it reaches said), and a run
    with another upsampling than the budget's."""
    from mc4_sampling.cli import main

    root, location, _, _, _ = fw2_budget
    base = ["calibrate", *FW2, *location, "--methods", "random", "--no-plots"]
    cases = [
        (["--token-budget", "1e5", "--target-rate", "0.3"],
         "--token-budget and --target-rate are two targets: pick one"),
        (["--token-budget", "1e5", "--target-docs", "50"], "--token-budget and --target-docs are two targets"),
        (["--token-budget", "0"], "--token-budget 0.0 is not valid; it must be a finite number of tokens > 0"),
        (["--token-budget", "-3"], "--token-budget -3.0 is not valid"),
        (["--target-rate", "0.3", *REHYDRATE], "--max-copies applies with --token-budget"),
        (["--token-budget", "1e5", "--fit-width"], "--fit-width fits the gaussian width to a keep rate"),
        (["--token-budget", "1e5", "--docs", "100"],
         "--token-budget needs the corpus' document count: the subset did not read "),
        (["--token-budget", "1e9", *REHYDRATE],
         r"--token-budget 1e\+09 cannot be reached by random: at most [0-9.e+]+ words expected over the 1600 "
         "documents assumed"),
    ]
    for i, (flags, words) in enumerate(cases):
        out = tmp_path / f"c{i}"
        assert main([*base, *flags, "-o", str(out)]) == 2, flags
        err = capsys.readouterr().err.strip().splitlines()
        assert re.search(words, err[-1]), (flags, err[-1])
        assert not out.exists()
    cal = str(root / "rehydrated" / "calibration.json")
    assert main(["sample", *FW2, *location, "--method", "gaussian", "--calibration", cal, "--max-copies", "4",
                 "--upsample", "rehydration", "-o", str(tmp_path / "k.jsonl")]) == 2
    assert "solved its factors for a budget of 230000 words with --max-copies 8 --upsample rehydration" \
        in capsys.readouterr().err


def test_calibrate_token_budget_scales_a_subset_to_the_corpus(fw2_budget, tmp_path):
    """Half the folder (--docs 800) with --total-docs 1600: random's factor is budget * 800 / 1600 over the subset's
    words, and near the whole folder's (the subset's mean length within 4 standard errors of a draw without
    replacement); on mC4 the size is estimated from the picked shard: its documents times shards over picked."""
    import json

    from mc4_sampling import SAMPLE_DATA_DIR
    from mc4_sampling.cli import main

    root, location, runs, table, _ = fw2_budget
    budget = runs["plain"][0]
    assert main(["calibrate", *FW2, *location, "--docs", "800", "--total-docs", "1600", "--methods", "random",
                 "--token-budget", str(budget), "--no-plots", "-o", str(tmp_path / "half")]) == 0
    half = json.loads((tmp_path / "half" / "calibration.json").read_text())
    b = half["token_budget"]
    assert (b["documents"], b["total_docs"], b["total_docs_from"]) == (800, 1600, "given")
    factor = half["methods"]["random"]["factor"]
    assert factor == pytest.approx(budget * 800 / 1600 / b["words"], rel=1e-9)
    lengths = np.array([len(t.split()) for t in table["text"]], dtype=np.float64)
    whole = _budget_file(root, "plain")["methods"]["random"]["factor"]
    assert whole == pytest.approx(budget / lengths.sum(), rel=1e-9)
    se = lengths.std() / np.sqrt(800) * np.sqrt(1 - 800 / 1600)  # the subset's mean length: finite population
    assert abs(b["words"] / 800 - lengths.mean()) <= 4 * se
    files = sorted(Path(SAMPLE_DATA_DIR, "multilingual").glob("c4-es.tfrecord-*.json.gz"))
    assert main(["calibrate", "--lang", "es", "--data-dir", SAMPLE_DATA_DIR, "--shards-to-read", "1", "--docs", "20",
                 "--methods", "random", "--token-budget", "1e4", "--no-plots", "-o", str(tmp_path / "mc4")]) == 0
    mc4 = json.loads((tmp_path / "mc4" / "calibration.json").read_text())
    read = mc4["subset"]["documents_read"]
    assert mc4["token_budget"]["total_docs_from"] == "estimated" and len(files) > 1
    assert mc4["token_budget"]["total_docs"] == pytest.approx(read * len(files))
