"""Transfer arms of `trainer study` (a source stage, then the target stage): a micro study end to end with a
natural source (the study's other documents) and an artificial one (word-level files with their own tokenizer),
embeddings re-initialised, positions kept or reset as asked, the source stage reused on resume; the tokenizer
clash and other bad input as one line before training."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from test_study import MICRO, write_config

from trainer.errors import StoppedBySignal

#: the target: 150 random documents of the micro study's 600; 10 steps per stage
TARGET = {"sampling_method": "random", "max_documents": 150}


def artificial_corpus(folder, n_sentences: int = 400, vocab: int = 60, seed: int = 0) -> tuple[str, str]:
    """A word-level corpus (tokens ``w0``..``w{vocab-1}``, Zipf-drawn, one sentence per line) and its
    one-token-one-id tokenizer (RoBERTa's specials first): ``(corpus folder, tokenizer folder)``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    corpus = os.path.join(folder, "corpus")
    os.makedirs(corpus, exist_ok=True)
    with open(os.path.join(corpus, "sentences.txt"), "w", encoding="utf-8") as f:
        for _ in range(n_sentences):
            f.write(" ".join(f"w{i}" for i in rng.choice(vocab, int(rng.integers(5, 20)), p=p)) + "\n")
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    ids = {t: i for i, t in enumerate(specials + [f"w{i}" for i in range(vocab)])}
    backend = Tokenizer(models.WordLevel(ids, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                  pad_token="<pad>", mask_token="<mask>", cls_token="<s>", sep_token="</s>")
    tok.save_pretrained(os.path.join(folder, "tokenizer"))
    return corpus, os.path.join(folder, "tokenizer")


def transfer_study(tmp_path, corpus: str, tokenizer: str, arms=("scratch", "natural", "artificial"), **changes
                   ) -> dict:
    data = json.loads(json.dumps(MICRO))
    data.update(name="micro-transfer", output_dir=str(tmp_path / "out"), downstream=[], eval={
        **MICRO["eval"], "subsets": {}, "max_documents": 60, "curve_documents": 30})
    data["arms"] = [
        {"name": "scratch", **TARGET},
        {"name": "natural", **TARGET, "source": {"corpus": "study", "max_documents": 300,
                                                 "reset_position_embeddings": True}},
        {"name": "artificial", **TARGET, "source": {"corpus": "files", "files": [corpus], "tokenizer": tokenizer,
                                                    "eval_documents": 40, "freeze_embeddings": True}}]
    data["arms"] = [a for a in data["arms"] if a["name"] in arms]
    data["baseline"] = "scratch" if "scratch" in arms else None
    data.update(changes)
    return data


def _params(folder: str) -> dict:
    from trainer.export import load_checkpoint_params
    from trainer.param_paths import flat_params

    _spec, params, _meta, step = load_checkpoint_params(folder)
    return {k: np.asarray(v) for k, v in flat_params(params).items()}, step


def _corr(a, b) -> float:
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


@pytest.fixture(scope="module")
def transfer_run(tmp_path_factory):
    """The micro study of one transfer arm (an artificial source, 8 + 8 steps), first stopped by Ctrl-C right
    after its source stage, then rerun to the end."""
    from trainer.study.runner import run_study, run_unit
    from trainer.study.transfer import run_source_stage

    tmp = tmp_path_factory.mktemp("transfer")
    corpus, tok = artificial_corpus(str(tmp / "artificial"))
    data = transfer_study(tmp, corpus, tok, arms=("artificial",), budget_tokens=2048)  # 8 steps of 8 x 32
    data["trainer"]["set"] += ["checkpoint.every_steps=4", "training.eval_every_steps=4"]
    path = write_config(tmp, data)

    def stop_after_source(payload):
        if payload["source"] is None:
            return run_unit(payload)
        run_source_stage(payload)
        raise KeyboardInterrupt

    with pytest.raises(StoppedBySignal):
        run_study(path, unit_fn=stop_after_source, progress=lambda s: None)
    out = tmp / "out"
    source_result = out / "units" / "artificial" / "seed0" / "source" / "result.json"
    stamp = source_result.stat().st_mtime_ns
    lines: list[str] = []
    report = run_study(path, progress=lines.append)
    return out, report, lines, stamp


@pytest.mark.slow  # scheduled first (tests/conftest.py)
def test_transfer_study_end_to_end(transfer_run):
    out, report, lines, stamp = transfer_run
    assert "0 done, 1 to run" in lines[0]
    unit = out / "units" / "artificial" / "seed0"
    assert (unit / "source" / "result.json").stat().st_mtime_ns == stamp  # the source stage reused, not retrained
    result = json.loads((unit / "result.json").read_text())
    src = result["source"]
    assert src["steps"] == 8 and result["steps"] == 8 and [c["step"] for c in src["curve"]] == [4, 8]
    assert src["shards"] == {"train": {"documents": 360, "tokens": src["shards"]["train"]["tokens"]},
                             "eval": {"documents": 40, "tokens": src["shards"]["eval"]["tokens"]}}
    assert result["sample"]["documents"] == 150
    # weights: the layers and positions start from the source's (correlated after 8 target steps), the word
    # embeddings fresh (the artificial vocabulary: 65 rows padded, the study's 600); the source trained with
    # frozen word embeddings
    source, _ = _params(str(unit / "source" / "run" / "checkpoints"))
    target, step = _params(str(unit / "run" / "checkpoints"))
    assert step == 8
    for path in ("layers_0/attention/self/query/kernel", "embeddings/position_embeddings/embedding"):
        assert _corr(source[path], target[path]) > 0.9, path
    words = "embeddings/word_embeddings/embedding"
    assert source[words].shape[0] <= 128 < 600 <= target[words].shape[0]
    first, _ = _params(str(unit / "source" / "run" / "checkpoints" / "4"))
    assert np.array_equal(first[words], source[words])
    assert not np.array_equal(first["layers_0/attention/self/query/kernel"],
                              source["layers_0/attention/self/query/kernel"])
    # the report: the best accuracy on the curve, and the accuracy curves
    assert report["best_accuracy"]["artificial"]["values"] == [max(c["accuracy"] for c in result["curve"])]
    text = (out / "report.md").read_text()
    assert "## Best masked-LM accuracy during training" in text
    assert "| `artificial` | artificial/corpus (frozen embeddings) |" in text
    assert (out / "eval_accuracy_curves.png").stat().st_size > 0
    lines.clear()  # a rerun of the finished study trains nothing
    from trainer.study.runner import run_study

    run_study(str(out.parent / "study.yaml"), progress=lines.append)
    assert "1 done, 0 to run" in lines[0]


def test_best_accuracy_against_from_scratch():
    """The best-accuracy table: each unit's maximum over its curve, per arm mean and interval, Welch's test against
    the baseline (checked against scipy), in bold only where p < alpha."""
    scipy_stats = pytest.importorskip("scipy.stats")
    from trainer.study.config import ArmConfig, SourceConfig, StudyConfig
    from trainer.study.report import best_lines, compare_best, source_label

    curves = {"scratch": [[0.10, 0.20, 0.18], [0.11, 0.19, 0.21], [0.12, 0.205, 0.2]],
              "natural": [[0.15, 0.24, 0.25], [0.16, 0.26, 0.255], [0.14, 0.245, 0.25]],
              "zipf": [[0.1, 0.2, 0.19], [0.12, 0.21, 0.2], [0.1, 0.17, 0.195]]}
    results = [{"unit": {"arm": arm, "index": k}, "curve": [{"step": 10 * (i + 1), "loss": 1.0, "accuracy": a}
                                                            for i, a in enumerate(c)]}
               for arm, cs in curves.items() for k, c in enumerate(cs)]
    cfg = StudyConfig(arms=[ArmConfig(name="scratch", sampling_method="random"),
                            ArmConfig(name="natural", sampling_method="random", source=SourceConfig()),
                            ArmConfig(name="zipf", sampling_method="random", source=SourceConfig(
                                corpus="files", files=["x/zipf"], tokenizer="x/tok", freeze_embeddings=True))],
                      baseline="scratch")
    best = compare_best(cfg, results)
    maxima = {arm: [max(c) for c in cs] for arm, cs in curves.items()}
    for arm in ("natural", "zipf"):
        assert best[arm]["values"] == maxima[arm]
        ref = scipy_stats.ttest_ind(maxima[arm], maxima["scratch"], equal_var=False)
        assert best[arm]["vs_baseline"]["p"] == pytest.approx(ref.pvalue, rel=1e-7)
    assert best["natural"]["steps"] == [30, 20, 30]
    assert best["natural"]["vs_baseline"]["p"] < 0.05 < best["zipf"]["vs_baseline"]["p"]
    report = {"best_accuracy": best, "baseline": "scratch", "confidence": 0.95,
              "arms": {a.name: {"source": source_label(a)} for a in cfg.arms}}
    table = {line.split(" | ")[0]: line for line in best_lines(report) if line.startswith("| `")}
    assert table["| `natural`"].endswith("** |") and "the study's other documents" in table["| `natural`"]
    assert "| x/zipf (frozen embeddings) |" in table["| `zipf`"] and not table["| `zipf`"].endswith("** |")
    assert "| from scratch |" in table["| `scratch`"] and "baseline" in table["| `scratch`"]


def test_natural_source_is_the_study_other_documents(tmp_path):
    """``corpus: study``: the source shards hold the indexed documents the target sample leaves out (none of the
    target's, at most ``max_documents``); the target stage starts from the source with fresh embeddings and, as
    asked, fresh positions; the source trains with another seed."""
    from trainer.data.token_shards import TokenSplit
    from trainer.data.tokenizer import load_tokenizer
    from trainer.study.config import load_study_config
    from trainer.study.runner import check_study, prepare_shared, unit_payload, write_samples
    from trainer.study.transfer import SOURCE_SEED_OFFSET

    data = transfer_study(tmp_path, str(tmp_path), str(tmp_path), arms=("scratch", "natural"))
    data["corpus"]["max_documents"] = 450  # 150 target documents, 300 for the source of the rest
    cfg = load_study_config(write_config(tmp_path, data))
    p = check_study(cfg)
    tok, eval_file, index = prepare_shared(p, lambda s: None)
    write_samples(p, p.units, index, tok)
    tokenizer = load_tokenizer(tok)

    def texts(shards: str) -> list[str]:  # decoded independently of how the study wrote them
        dtype = np.dtype(json.load(open(os.path.join(shards, "manifest.json")))["dtype"])
        return [tokenizer.decode(d[:-1].tolist()) for d in TokenSplit(os.path.join(shards, "train"), dtype).documents()]

    unit = next(u for u in p.units if u.arm == "natural")
    target, source = texts(unit.shards_dir), texts(unit.source_shards_dir)
    assert len(target) == 150 and len(source) == min(300, len(index) - 150) > 250
    assert not set(target) & set(source)
    assert target == texts(next(u for u in p.units if u.arm == "scratch").shards_dir)  # the same target sample
    payload = unit_payload(p, unit, tok, eval_file)
    sets = dict(s.split("=", 1) for s in payload["overrides"])
    assert sets["model.transfer_from"].endswith('natural/seed0/source/run/checkpoints"')
    assert sets["model.reinit_embeddings"] == "true" and sets["model.reset_position_embeddings"] == "true"
    source_sets = dict(s.split("=", 1) for s in payload["source"]["overrides"])
    assert source_sets["training.seed"] == str(unit.training_seed + SOURCE_SEED_OFFSET)
    assert "model.freeze" not in source_sets


def _one_line(capsys, path) -> str:
    from trainer.cli import main

    assert main(["study", path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_tokenizer_clash_is_one_line_before_training(tmp_path, capsys):
    corpus, tok = artificial_corpus(str(tmp_path / "artificial"), n_sentences=60)
    data = transfer_study(tmp_path, corpus, tok)
    data["arms"][2]["source"].update(reinit_embeddings=False, reset_position_embeddings=False)
    line = _one_line(capsys, write_config(tmp_path, data))
    assert "arms.artificial.source: reinit_embeddings false keeps the source's word embeddings" in line
    assert "(65 tokens) is not the study's" in line and "set arms.artificial.source.reinit_embeddings: true" in line
    assert not os.path.exists(tmp_path / "out" / "units") and not os.path.exists(tmp_path / "out" / "shared" /
                                                                                   "corpus")


BAD = [
    ({"corpus": "files"}, "arms.natural.source.files: give the source corpus's files"),
    ({"tokenizer": "/nowhere"}, "arms.natural.source.tokenizer: the study's documents (corpus: study)"),
    ({"trainer_set": ["model.hidden_size=64"]}, "arms.natural.source.trainer_set[0]: 'model.hidden_size' changes"),
    ({"trainer_set": ["training.max_stepz=3"]}, "arms.natural.source: unknown config key"),
    ({"budget_tokens": 0}, "arms.natural.source.budget_tokens must be >= 1"),
    ({"reinit_embeddings": False, "reset_position_embeddings": True}, "reset_position_embeddings with"),
    ({"corpus": "files", "files": ["/nowhere/x.txt"]}, "arms.natural.source.files: no file or folder '/nowhere/x.txt'"),
    ({"corpus": "files", "files": ["CORPUS"], "tokenizer": "/nowhere"}, "arms.natural.source.tokenizer: no tokenizer"),
    ({"corpuss": "study"}, "unknown config key 'arms[1].source.corpuss'"),
]


@pytest.mark.parametrize("change,needle", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_source_is_one_line(tmp_path, capsys, change, needle):
    corpus, tok = str(tmp_path), str(tmp_path)  # never read: every error comes first
    (tmp_path / "a.txt").write_text("w1 w2\n")
    data = transfer_study(tmp_path, corpus, tok)
    data["arms"][1]["source"].update({k: ([str(tmp_path / "a.txt")] if v == ["CORPUS"] else v)
                                      for k, v in change.items()})
    line = _one_line(capsys, write_config(tmp_path, data))
    assert needle in line, line
    assert not os.path.exists(tmp_path / "out" / "units")


def test_shipped_artificial_configs():
    """The tiny study (four arms on one target sample, the two artificial sources where `make study-artificial`
    writes them) and the full-size one (the blog's numbers: 100 k source steps of 256 x 128, 50 k target steps of
    128 x 128, peak LR 1e-4, 10 k warm-up)."""
    from trainer.config_loading import load_config, resolve_config_path
    from trainer.study.config import load_study_config
    from trainer.study.runner import budget_steps
    from trainer.study.transfer import source_steps, stage_sets

    tiny = load_study_config("study-artificial-tiny")
    assert [a.name for a in tiny.arms] == ["scratch", "natural", "pcfg-zipf", "pcfg-loglinear"]
    assert tiny.baseline == "scratch" and 2 <= tiny.seeds.count <= 3
    assert {(a.sampling_method, a.max_documents) for a in tiny.arms} == {("random", 600)}
    assert [a.source.files for a in tiny.arms[2:]] == [["study-output/artificial-corpora/zipf/train"],
                                                       ["study-output/artificial-corpora/loglinear/train"]]
    full = load_study_config("study-artificial")
    trainer_config = resolve_config_path(full.trainer.config)
    base = load_config(trainer_config, full.trainer.set)
    assert budget_steps(full, base) == 50_000 and base.training.global_batch_size == 128
    assert (base.model.num_layers, base.model.hidden_size, base.data.max_seq_length) == (12, 768, 128)
    assert (base.optimizer.learning_rate, base.schedule.warmup_steps) == (1e-4, 10_000)
    for arm in full.arms[1:]:
        src = load_config(trainer_config, full.trainer.set + stage_sets(arm, base))
        assert source_steps(arm, src, 50_000) == 100_000 and src.training.global_batch_size == 256
