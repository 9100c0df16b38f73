"""The artificial-language generator (`trainer generate-pcfg`, :mod:`trainer.artificial`): the grammar against
counts made here by brute force on the shipped treebank, the sampler against the grammar's own expectations,
the Zipf exponent fitted back, the log-linear co-occurrence, determinism over workers and shards, the
tokenizer, the treebank read over HTTP, and bad input (one line naming the file and line)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from trainer.artificial import conllu, pcfg
from trainer.artificial.generate import GenerateOptions, Language, generate, learn
from trainer.artificial.relexicalisers import allocate_vocabulary
from trainer.artificial.relexicalisers.zipf import zipf_probabilities
from trainer.errors import ConfigError, DataError

TREEBANK = str(Path(__file__).resolve().parents[1] / "trainer" / "artificial" / "data" / "es-tiny.conllu")


def _brute_force_rows() -> list:
    """The fixture's sentences as lists of ``(id, form, head, deprel)``, read here without the module's reader."""
    sentences, rows = [], []
    for line in Path(TREEBANK).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if rows:
                sentences.append(rows)
            rows = []
        elif not line.startswith("#"):
            c = line.split("\t")
            if c[0].isdigit():
                rows.append((int(c[0]), c[1], int(c[6]), c[7]))
    if rows:
        sentences.append(rows)
    return sentences


@pytest.fixture(scope="module")
def treebank():
    return conllu.read_treebank(TREEBANK)


def test_fixture_treebank_is_spanish_ud(treebank):
    assert 60 <= len(treebank) <= 150
    relations = {r for s in treebank for r in s.deprels}
    assert len(relations) >= 21  # the default --top-k 20 leaves an `other` tag
    assert {"root", "nsubj", "obj", "det", "case", "punct", "acl:relcl"} <= relations


@pytest.mark.parametrize("top_k", [20, 8])
def test_learned_grammar_equals_brute_force_counts(treebank, top_k):
    sentences = _brute_force_rows()
    assert len(sentences) == len(treebank)
    freq = Counter(rel for s in sentences for (_, _, _, rel) in s)
    kept = sorted(freq, key=lambda r: (-freq[r], r))[:top_k]
    if "root" not in kept:
        kept[-1] = "root"
    tag = {r: (r if r in kept else "other") for r in freq}
    counts: dict = {}
    forms: dict = {}
    for s in sentences:
        for (i, form, _, rel) in s:  # every word as a head: scan the whole sentence for its dependents
            left = tuple(tag[r] for (j, _, h, r) in s if h == i and j < i)
            right = tuple(tag[r] for (j, _, h, r) in s if h == i and j > i)
            counts.setdefault(tag[rel], Counter())[(left, right)] += 1
            forms.setdefault(tag[rel], set()).add(form.lower())
    g = pcfg.learn_grammar(treebank, top_k)
    assert list(g.tags[:top_k]) == kept and set(g.tags) == set(counts)
    assert g.forms == {t: len(f) for t, f in forms.items()}
    for t, rules in counts.items():
        total = sum(rules.values())
        assert dict(g.productions[t]) == dict(rules)
        for (left, right), c in rules.items():
            assert g.probability(t, left, right) == pytest.approx(c / total, abs=1e-12)
    # the grammar survives its JSON (what the workers and grammar.json get)
    assert pcfg.Grammar.from_json(json.loads(json.dumps(g.to_json()))) == g


def _expected_tag_counts(g: pcfg.Grammar, max_depth: int) -> dict:
    """E[count of each tag in a sentence] by the grammar's recursion: N_D(r) = e_r, N_d(r) = e_r + Σ_α P(α|r) Σ_c
    N_{d+1}(c); and the expected length."""
    tags = list(g.tags)
    e = {t: np.eye(len(tags))[i] for i, t in enumerate(tags)}
    n = dict(e)  # depth max_depth
    for _ in range(max_depth):
        total = {t: sum(c for _, c in g.productions[t]) for t in tags}
        n = {t: e[t] + sum(c / total[t] * sum((n[k] for k in left + right), np.zeros(len(tags)))
                           for (left, right), c in g.productions[t]) for t in tags}
    return dict(zip(tags, n["root"]))


def test_sampled_sentences_follow_the_grammar(treebank):
    g = pcfg.learn_grammar(treebank, 20)
    # depth 1: the sentence is exactly the root's production (its dependents are leaves)
    sampler = pcfg.Sampler(g, max_depth=1)
    rng = np.random.default_rng(7)
    n = 3000
    seen = Counter()
    for _ in range(n):
        tags = sampler.sample(rng)
        i = tags.index("root")
        seen[(tuple(tags[:i]), tuple(tags[i + 1:]))] += 1
    assert set(seen) <= {lr for lr, _ in g.productions["root"]}
    for (left, right), c in g.productions["root"]:
        p = g.probability("root", left, right)
        assert abs(seen[(left, right)] / n - p) <= 5 * math.sqrt(p * (1 - p) / n) + 1e-9, (left, right)
    # full depth: the mean count of every tag in a sentence against the grammar's expectation
    depth = 6
    expected = _expected_tag_counts(g, depth)
    sampler = pcfg.Sampler(g, max_depth=depth)
    n = 2000
    counts = np.array([[Counter(s)[t] for t in g.tags] for s in (sampler.sample(rng) for _ in range(n))])
    for j, t in enumerate(g.tags):
        sd = max(counts[:, j].std(), 1 / n)
        assert abs(counts[:, j].mean() - expected[t]) <= 5 * sd / math.sqrt(n) + 1e-3, t


def test_vocabulary_split_follows_the_distinct_forms():
    weights = [50, 30, 3, 1, 0]
    sizes = allocate_vocabulary(weights, 100)
    assert sum(sizes) == 100 and min(sizes) == 1
    q = [(100 - 5) * w / sum(weights) for w in weights]
    assert all(abs(n - 1 - x) < 1 for n, x in zip(sizes, q))
    with pytest.raises(ConfigError, match=r"--vocab-size 4 is smaller than the 5 relation tags"):
        allocate_vocabulary(weights, 4)


def _fit_zipf(ranks_by_size: dict, grid=np.linspace(0.5, 2.0, 1501)) -> float:
    """Maximum likelihood exponent of truncated Zipf laws: ranks_by_size {n: Counter(rank)}."""
    def nll(s):
        out = 0.0
        for n, c in ranks_by_size.items():
            k = np.array(list(c.keys()), dtype=np.float64)
            m = np.array(list(c.values()), dtype=np.float64)
            out += s * (m * np.log(k)).sum() + m.sum() * np.log((np.arange(1, n + 1) ** -s).sum())
        return out
    return float(grid[np.argmin([nll(s) for s in grid])])


def test_zipf_exponent_is_recovered(treebank):
    options = GenerateOptions(sentences=3000, seed=3, zipf_exponent=1.3, vocab_size=2000)
    lang = Language(pcfg.learn_grammar(treebank, 20), options)
    v = lang.vocabulary
    ranks: dict = {}
    for j, tag in enumerate(v.tags):
        ranks[tag] = Counter()
    for i in range(options.sentences):
        tags, ids = lang.sentence(i)
        for t, w in zip(tags, ids):
            block = v.block(t)
            assert w in block  # every token from its tag's own set
            ranks[t][w - block.start + 1] += 1
    fitted = _fit_zipf({v.sizes[v.tags.index(t)]: c for t, c in ranks.items() if c and v.sizes[v.tags.index(t)] > 5})
    assert abs(fitted - 1.3) < 0.06, fitted
    assert zipf_probabilities(4, 1.0) == pytest.approx(np.array([1, 1 / 2, 1 / 3, 1 / 4]) / (25 / 12))


def _cosine_gap(lang: Language, vectors: np.ndarray, n: int) -> tuple:
    """Mean cosine of token pairs within a sentence minus that of pairs across sentences, and its standard error."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    within, across = [], []
    previous = None
    for i in range(n):
        ids = lang.sentence(i)[1]
        if len(ids) >= 2:
            within.append(float(unit[ids[0]] @ unit[ids[-1]]))
        if previous is not None:
            across.append(float(unit[ids[0]] @ unit[previous[-1]]))
        previous = ids
    w, a = np.array(within), np.array(across)
    return w.mean() - a.mean(), math.sqrt(w.var() / len(w) + a.var() / len(a))


def test_loglinear_tokens_with_similar_vectors_co_occur(treebank):
    g = pcfg.learn_grammar(treebank, 20)
    options = GenerateOptions(sentences=1500, seed=5, relexicalise="loglinear", vocab_size=1000, dimension=10,
                              temperature=0.5)
    lang = Language(g, options)
    vectors = lang.relexicaliser.vectors
    assert vectors.shape == (1000, 10)
    gap, se = _cosine_gap(lang, vectors, options.sentences)
    assert gap > 0.15 and gap > 6 * se, (gap, se)
    # control: the same vectors, tokens drawn by Zipf (no topic): no co-occurrence beyond chance
    control = Language(g, dataclasses.replace(options, relexicalise="zipf"))
    gap0, se0 = _cosine_gap(control, vectors, options.sentences)
    assert abs(gap0) < 4 * se0 + 0.02, (gap0, se0)
    # a higher temperature flattens p(w|t): a smaller gap
    warm = Language(g, dataclasses.replace(options, temperature=5.0))
    assert _cosine_gap(warm, vectors, options.sentences)[0] < gap / 2


def _files(folder) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(Path(folder, "train").iterdir())}


def test_the_corpus_depends_on_seed_and_index_only(tmp_path):
    base = GenerateOptions(sentences=400, seed=11, shard_size=100, vocab_size=200, relexicalise="loglinear")
    one = generate(TREEBANK, str(tmp_path / "one"), base, workers=1)
    two = generate(TREEBANK, str(tmp_path / "two"), base, workers=2)
    assert _files(tmp_path / "one") == _files(tmp_path / "two") and len(_files(tmp_path / "one")) == 4
    assert one["shards"] == two["shards"] and one["complete"] and one["sentences"] == 400
    # another shard size: the same sentences in the same order
    whole = generate(TREEBANK, str(tmp_path / "whole"), dataclasses.replace(base, shard_size=400))
    texts = lambda folder: [json.loads(line)["text"] for f in sorted(Path(folder, "train").iterdir())  # noqa: E731
                            for line in f.read_text().splitlines()]
    assert texts(tmp_path / "whole") == texts(tmp_path / "one") and whole["tokens"] == one["tokens"]
    # the streaming view gives the same texts; another seed others
    lang = Language(learn(TREEBANK, base), base)
    assert list(lang.texts(0, 400)) == texts(tmp_path / "one")
    assert list(Language(learn(TREEBANK, base), dataclasses.replace(base, seed=12)).texts(0, 50)) != \
        texts(tmp_path / "one")[:50]
    # resume: a lost shard is written again, the same bytes; other options are refused with one line
    before = _files(tmp_path / "one")
    os.unlink(tmp_path / "one" / "train" / "00002.jsonl")
    assert generate(TREEBANK, str(tmp_path / "one"), base)["shards"] == one["shards"]
    assert _files(tmp_path / "one") == before
    with pytest.raises(ConfigError, match=r"other settings \(--seed 11 -> 12\)"):
        generate(TREEBANK, str(tmp_path / "one"), dataclasses.replace(base, seed=12))


def test_parquet_shards_and_the_tokenizer(tmp_path):
    import pyarrow.parquet as pq

    from trainer.data.tokenizer import TokenizerFns, load_tokenizer

    options = GenerateOptions(sentences=50, seed=2, vocab_size=120, shard_size=50, format="parquet")
    manifest = generate(TREEBANK, str(tmp_path / "pq"), options)
    texts = pq.read_table(tmp_path / "pq" / "train" / "00000.parquet").column("text").to_pylist()
    assert len(texts) == 50 and manifest["shards"][0]["file"] == "train/00000.parquet"
    fns = TokenizerFns(load_tokenizer(str(tmp_path / "pq" / "tokenizer")))
    assert fns.vocab_size == 125 and (fns.bos_id, fns.pad_id, fns.eos_id, fns.mask_id) == (0, 1, 2, 4)
    ids = fns.encode(texts)
    assert [[5 + int(w[1:]) for w in t.split()] for t in texts] == ids  # one token one id
    assert fns.continuation_ids() == []  # whole-word masking is token masking
    rows = (tmp_path / "pq" / "labels.tsv").read_text().splitlines()
    lang = Language(learn(TREEBANK, options), options)
    assert rows[0] == "token\trelation" and rows[1:] == [f"w{i}\t{t}" for i, t in
                                                         enumerate(lang.vocabulary.labels())]
    for t, i in zip(texts[0].split(), lang.sentence(0)[1]):
        assert t == f"w{i}" and rows[1 + i].split("\t")[1] in manifest["vocabulary"]["tags"]


def test_treebank_over_http_is_the_same(tmp_path, file_server, treebank):
    server = file_server(Path(TREEBANK).parent)
    remote = conllu.read_treebank(f"{server.url}/es-tiny.conllu")
    assert remote == treebank
    with pytest.raises(DataError, match=r"--treebank: http://\S+/es-missing.conllu: HTTP 404 Not Found; check"):
        conllu.read_treebank(f"{server.url}/es-missing.conllu")


GOOD = "1\tEl\tel\tDET\t_\t_\t2\tdet\t_\t_\n2\tgato\tgato\tNOUN\t_\t_\t0\troot\t_\t_\n"
BAD = [
    ("# x\n1\tEl\tel\tDET\n", 2, "expected 10 tab-separated columns"),
    ("The cat sleeps.\n", 1, "expected 10 tab-separated columns ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL"),
    (GOOD.replace("2\tgato", "3\tgato"), 2, "word id '3' where 2 was expected"),
    (GOOD.replace("1\tEl", "x\tEl"), 1, "word id 'x' where 1 was expected"),
    (GOOD.replace("\t2\tdet", "\tdos\tdet"), 1, "HEAD 'dos' is not a word id"),
    (GOOD.replace("\t2\tdet", "\t7\tdet"), 1, "HEAD 7 is past the sentence's last word 2"),
    (GOOD.replace("\t2\tdet", "\t0\tdet"), 1, "has 2 roots (HEAD 0), not one"),
    (GOOD.replace("\troot\t", "\t_\t"), 2, "no DEPREL"),
    ("\n# only a comment\n", None, "no sentence"),
]


@pytest.mark.parametrize("text, line, words", BAD, ids=[w[:24] for _, _, w in BAD])
def test_not_conllu_is_one_line_with_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "bad.conllu"
    path.write_text(text + ("\n" + GOOD if line is not None else ""), encoding="utf-8")  # a good sentence after
    with pytest.raises(DataError) as e:
        conllu.read_treebank(str(path))
    message = str(e.value)
    assert "\n" not in message and words in message and str(path) in message
    if line is not None:
        assert f"line {line}:" in message


def test_multiword_tokens_and_empty_nodes_are_skipped(tmp_path):
    path = tmp_path / "mwt.conllu"
    path.write_text("1-2\tdel\t_\t_\t_\t_\t_\t_\t_\t_\n" + GOOD.replace("\n", "\n1.1\tx\tx\tX\t_\t_\t_\t_\t_\t_\n", 1)
                    + "\n" + GOOD, encoding="utf-8")
    assert [s.deprels for s in conllu.read_treebank(str(path))] == [("det", "root")] * 2


def test_bad_options_are_one_line(treebank):
    with pytest.raises(ConfigError, match=r"--top-k 40: treebank x has only 28 dependency relations; give --top-k 28"):
        pcfg.learn_grammar(treebank, 40, where="treebank x")
    g = pcfg.learn_grammar(treebank, 20)
    with pytest.raises(ConfigError, match=r"--vocab-size 20 is smaller than the 21 relation tags"):
        Language(g, GenerateOptions(vocab_size=20))
    with pytest.raises(ConfigError, match=r"--relexicalise 'markov' is not one of loglinear, zipf"):
        Language(g, GenerateOptions(relexicalise="markov"))
    with pytest.raises(ConfigError, match=r"--temperature must be a finite number > 0"):
        Language(g, GenerateOptions(temperature=0.0))
