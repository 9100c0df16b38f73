"""The span (question answering), regression and multiple-choice task kinds: SQuAD's EM/F1 and the answer
post-processing against hand-computed values, Pearson/Spearman against scipy, doc-stride windows, each kind
end to end on tiny local files (train, evaluate, export, the same logits from transformers' PyTorch class),
and bad input as one line naming the file and line."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import finetune_data as fd  # noqa: E402

from trainer.cli import main  # noqa: E402
from trainer.finetune.kinds import get_kind  # noqa: E402
from trainer.finetune.loading import load_model  # noqa: E402
from trainer.statistics.bootstrap import table_metric  # noqa: E402


@pytest.fixture(scope="module")
def one_layer(tiny_model, tmp_path_factory):
    """A one-layer random RoBERTa with the tiny model's tokenizer (each kind compiles its own steps: one layer
    compiles faster)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    return fd.random_roberta_folder(str(tmp_path_factory.mktemp("one-layer")), tok, num_layers=1)


def _local(tmp_path, name: str, train: list, evals: list) -> list[str]:
    tr = fd.write_jsonl(str(tmp_path / f"{name}-train.jsonl"), train)
    ev = fd.write_jsonl(str(tmp_path / f"{name}-validation.jsonl"), evals)
    return ["--dataset", "json", "--data-files", f"train={tr}", "--data-files", f"validation={ev}"]


def _finetune(model: str, out: str, task: str, *args) -> dict:
    rc = main(["finetune", "--model", f"tiny={model}", "--task", task, *args, "--learning-rate", "5e-3",
               "--seeds", "1", "--max-reruns", "0", "--output", out, "--no-png", "--export"])
    assert rc == 0
    return json.load(open(os.path.join(out, "results.json")))["models"]["tiny"][task]


def _ours(folder: str, kind_name: str, ids, mask) -> np.ndarray:
    """Our network's logits on the export read back (encoder and the kind's head from the folder)."""
    import jax
    import jax.numpy as jnp

    kind, loaded = get_kind(kind_name), load_model(folder)
    model = kind.classifier(loaded.spec, len(kind.fixed_labels))
    params = {**loaded.encoder, "classifier": loaded.heads[kind_name]}
    batch = {"input_ids": jnp.asarray(ids), "attention_mask": jnp.asarray(mask)}
    return np.asarray(jax.jit(lambda p, b: kind.logits(model, p, b, True))(params, batch))


def _no_missing_weights(auto_class, folder):
    model, info = auto_class.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    return model.eval()


# ---------------------------------------------------------------------------------------------
# the math


def test_squad_normalisation_exact_match_and_f1_by_hand():
    from trainer.finetune.kinds.span import normalize_answer, squad_exact_match, squad_f1, squad_scores

    assert normalize_answer("The  Cat, sat!") == "cat sat"
    # the official normaliser: ASCII punctuation and the English articles only
    assert normalize_answer("¿El gato?") == "¿el gato"
    assert squad_exact_match("a cat", "The cat.") == 1.0 and squad_f1("a cat", "the cat") == 1.0
    # 2 shared tokens of 3 and 3: p = r = 2/3
    assert squad_f1("el gato negro", "gato negro grande") == pytest.approx(2 / 3)
    assert squad_f1("perro", "gato") == 0.0
    # best over the gold answers, mean over the examples: EM (1 + 0) / 2; F1 (1 + max(2/3, 1/3)) / 2
    scores = squad_scores(["Madrid", "en Sevilla"], [["Madrid"], ["Sevilla", "la ciudad de Sevilla"]])
    assert scores["exact_match"] == pytest.approx(0.5) and scores["f1"] == pytest.approx(5 / 6)
    assert squad_scores(["x"], [[]]) == {"exact_match": 0.0, "f1": 0.0}  # no gold answer: the empty one


def test_best_answer_over_windows_by_hand():
    from trainer.finetune.kinds.span import best_answer

    context = "Ana vive en Madrid"
    # tokens: <s> (not context), Ana, vive, en, Madrid, </s> (not context)
    offsets = [None, (0, 3), (4, 8), (9, 11), (12, 18), None]
    start = np.array([10.0, 1.0, 5.0, 0.0, 2.0, 9.0])
    end = np.array([10.0, 0.0, 1.0, 0.0, 6.0, 9.0])
    # <s> and </s> are outside the context; the best valid span: vive (5) .. Madrid (6)
    assert best_answer([(start, end, offsets)], context, 20, 30) == "vive en Madrid"
    # at most 1 token: vive..vive 6, Madrid..Madrid 8: Madrid
    assert best_answer([(start, end, offsets)], context, 20, 1) == "Madrid"
    # n_best 1: the top start (<s>) and end (<s>) are both outside the context: no answer
    assert best_answer([(start, end, offsets)], context, 1, 30) == ""
    # an end before its start is never an answer
    assert best_answer([(np.array([0, 0, 0, 0, 9.0, 0]), np.array([0, 9.0, 0, 0, 0, 0]), offsets)],
                       context, 20, 30) in ("Ana", "Madrid")
    # several windows: the best score of any of them
    second = (np.array([0, 0, 0, 0, 20.0, 0]), np.array([0, 0, 0, 0, 20.0, 0]), offsets)
    assert best_answer([(start, end, offsets), second], context, 20, 30) == "Madrid"


def test_pearson_and_spearman_against_scipy():
    from scipy import stats

    from trainer.finetune.kinds.regression import pearson, ranks, spearman

    rng = np.random.default_rng(0)
    x = rng.integers(0, 6, 50).astype(float)  # ties
    y = x + rng.normal(0, 2, 50)
    assert pearson(x, y) == pytest.approx(stats.pearsonr(x, y)[0], abs=1e-12)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    np.testing.assert_allclose(ranks(x), stats.rankdata(x))
    assert np.isnan(pearson(np.ones(5), np.arange(5)))  # constant predictions: undefined


# ---------------------------------------------------------------------------------------------
# data: windows, SQuAD-format files


def test_doc_stride_windows_label_the_answer_or_cls(tiny_model, tmp_path):
    from trainer.finetune.squad import SQUAD_JSON
    from trainer.finetune.tasks import encode, get_preset, load_task_data

    rows = fd.qa_rows(12, 5, long_every=2)
    path = tmp_path / "squad.json"  # the questions as one SQuAD-format file
    path.write_bytes(_squad_json(rows))
    task = get_preset("question-answering").replace(path=SQUAD_JSON, doc_stride=6)
    data = load_task_data(task, {"train": [str(path)], "validation": [str(path)]})
    assert data.labels == ["start", "end"] and list(data.eval["id"]) == [r["id"] for r in rows]
    tok = load_model(tiny_model).tokenizer
    enc = encode(data.eval, task, tok, 24)
    assert len(enc) > len(rows) and enc.input_ids.shape[1] == 24  # long contexts: several windows
    x = enc.extra
    assert sorted(set(x["examples"].tolist())) == list(range(len(rows)))
    found = set()
    for w, (s, e) in enumerate(enc.labels):
        example = int(x["examples"][w])
        if (s, e) == (0, 0):  # the answer is not wholly in this window: <s>
            continue
        offsets = x["offsets"][w]
        assert offsets[s] is not None and offsets[e] is not None and s <= e
        assert rows[example]["context"][offsets[s][0]:offsets[e][1]] == rows[example]["answers"]["text"][0]
        found.add(example)
    assert found == set(range(len(rows)))  # every answer is wholly inside some window (stride 6)
    # consecutive windows of an example share doc_stride context tokens
    first = [w for w in range(len(enc)) if x["examples"][w] == 0]
    assert len(first) > 1  # rows[0] is long
    a, b = ([int(t) for t, o in zip(enc.input_ids[w], x["offsets"][w]) if o is not None] for w in first[:2])
    assert a[-6:] == b[:6]


def _squad_json(rows: list[dict]) -> bytes:
    """SQuAD-format JSON (articles > paragraphs > qas) of flat question rows."""
    return json.dumps({"version": "1.1", "data": [{"title": "t", "paragraphs": [{"context": r["context"], "qas": [
        {"id": r["id"], "question": r["question"],
         "answers": [{"text": t, "answer_start": s} for t, s in zip(r["answers"]["text"],
                                                                  r["answers"]["answer_start"])]}]}]} for r in rows]},
                      ensure_ascii=False, indent=1).encode()


def test_sqac_preset_reads_the_squad_json_files_at_its_revision(loopback_hub, monkeypatch, tmp_path):
    """The SQAC preset reads the repository's SQuAD-format files (through datasets' hf:// file system at the
    pinned commit), never its loading script."""
    import dataclasses

    import datasets.config
    import huggingface_hub.constants as hf
    from huggingface_hub import HfFileSystem

    from trainer.finetune.tasks import PRESETS, load_task_data

    hub = loopback_hub()
    train, dev = fd.qa_rows(6, 1), fd.qa_rows(4, 2)
    commit = hub.add_files("PlanTL-GOB-ES/SQAC", {"train.json": _squad_json(train), "dev.json": _squad_json(dev),
                                                  "test.json": _squad_json(dev), "SQAC.py": b"raise SystemExit"},
                           repo_type="dataset")
    # the Hub clients read HF_ENDPOINT when imported: point their constants at the loopback Hub
    monkeypatch.setattr(hf, "ENDPOINT", hub.url)
    monkeypatch.setattr(hf, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", hub.url)
    monkeypatch.setattr(datasets.config, "HUB_DATASETS_URL", hub.url + "/datasets/{repo_id}/resolve/{revision}/{path}")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    HfFileSystem.clear_instance_cache()
    try:
        task = dataclasses.replace(PRESETS["sqac"], revision=commit)  # the loopback Hub's commit id
        data = load_task_data(task)
    finally:
        HfFileSystem.clear_instance_cache()
    assert list(data.train["id"]) == [r["id"] for r in train] and list(data.eval["question"]) == [
        r["question"] for r in dev]
    assert data.eval[0]["answers"] == dev[0]["answers"] and data.labels == ["start", "end"]
    assert not any("SQAC.py" in r for r in hub.requests) and any(commit in r for r in hub.requests)


# ---------------------------------------------------------------------------------------------
# end to end: train, evaluate, export, transformers' logits


def test_span_end_to_end_exports_question_answering(one_layer, tmp_path, capsys):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    data = _local(tmp_path, "qa", fd.qa_rows(48, 1), fd.qa_rows(16, 2))
    out = str(tmp_path / "qa")
    report = _finetune(one_layer, out, "question-answering", *data, "--max-length", "32", "--doc-stride", "8",
                       "--max-steps", "12")
    assert report["kind"] == "span" and set(report["metrics"]) == {"f1", "exact_match"}
    run = report["runs"][0]["metrics"]
    assert run["examples"] == 16 and run["windows"] > 16 and 0.0 <= run["exact_match"] <= run["f1"] <= 1.0
    table = report["runs"][0]["examples"]  # per question, for the Multi-Bootstrap: the run's own metrics back
    assert len(table["rows"]) == 16 and all(float(table_metric(table, m)) == pytest.approx(run[m], abs=1e-9)
                                            for m in ("exact_match", "f1"))
    assert "| Model | question-answering (F1 / EM) |" in open(os.path.join(out, "results.md")).read()
    folder = os.path.join(out, "tiny-question-answering")
    assert json.load(open(os.path.join(folder, "config.json")))["architectures"] == ["RobertaForQuestionAnswering"]
    assert "pipeline_tag: question-answering" in open(os.path.join(folder, "README.md")).read()
    model = _no_missing_weights(AutoModelForQuestionAnswering, folder)
    enc = AutoTokenizer.from_pretrained(folder)(["¿Dónde vive Ana?", "¿Dónde vive Juan?"],
                                               ["Ana vive en Madrid.", "el gato de Juan vive en Toledo hoy."],
                                               padding=True, return_tensors="np")
    ids, mask = enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)
    with torch.no_grad():
        theirs = model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask))
    ours = _ours(folder, "span", ids, mask)
    keep = mask.astype(bool)
    assert np.abs(ours[..., 0] - theirs.start_logits.numpy())[keep].max() <= 1e-4
    assert np.abs(ours[..., 1] - theirs.end_logits.numpy())[keep].max() <= 1e-4
    # `trainer evaluate` reads the export's head back: the run's metrics
    capsys.readouterr()
    assert main(["evaluate", "--model", folder, "--task", "question-answering", *data, "--max-length", "32",
                 "--doc-stride", "8", "--output", str(tmp_path / "eval.json")]) == 0
    evaluated = json.load(open(tmp_path / "eval.json"))["metrics"]
    assert evaluated["f1"] == pytest.approx(run["f1"]) and evaluated["exact_match"] == pytest.approx(
        run["exact_match"])


def test_regression_learns_and_exports_a_regression_classifier(one_layer, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    data = _local(tmp_path, "reg", fd.regression_rows(128, 1), fd.regression_rows(64, 2))
    out = str(tmp_path / "reg")
    report = _finetune(one_layer, out, "text-regression", *data, "--max-length", "32", "--max-steps", "40")
    assert report["kind"] == "regression" and report["labels"] == ["score"]
    # the count of "gato" is learnt: a strong correlation on held-out sentences (0 for a random head on average)
    assert report["metrics"]["pearson"]["mean"] > 0.5 and report["metrics"]["spearman"]["mean"] > 0.5
    run, table = report["runs"][0]["metrics"], report["runs"][0]["examples"]
    assert all(float(table_metric(table, m)) == pytest.approx(run[m], abs=1e-9) for m in ("pearson", "spearman", "mse"))
    assert "text-regression (Pearson / Spearman)" in open(os.path.join(out, "results.md")).read()
    folder = os.path.join(out, "tiny-text-regression")
    config = json.load(open(os.path.join(folder, "config.json")))
    assert config["problem_type"] == "regression" and config["architectures"] == ["RobertaForSequenceClassification"]
    model = _no_missing_weights(AutoModelForSequenceClassification, folder)
    assert model.num_labels == 1
    rows = fd.regression_rows(4, 9)
    enc = AutoTokenizer.from_pretrained(folder)([r["text"] for r in rows], padding=True, return_tensors="np")
    ids, mask = enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)
    with torch.no_grad():
        theirs = model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask)).logits
    assert np.abs(_ours(folder, "regression", ids, mask) - theirs.numpy()).max() <= 1e-4


def test_multiple_choice_end_to_end_exports_a_choice_model(one_layer, tmp_path):
    from transformers import AutoModelForMultipleChoice, AutoTokenizer

    data = _local(tmp_path, "mc", fd.choice_rows(48, 1), fd.choice_rows(16, 2))
    out = str(tmp_path / "mc")
    report = _finetune(one_layer, out, "text-multiple-choice", *data, "--max-length", "32", "--max-steps", "6")
    run = report["runs"][0]["metrics"]
    assert report["kind"] == "multiple-choice" and run["chance"] == pytest.approx(1 / 3) and run["examples"] == 16
    assert float(table_metric(report["runs"][0]["examples"], "accuracy")) == pytest.approx(run["accuracy"], abs=1e-12)
    folder = os.path.join(out, "tiny-text-multiple-choice")
    assert json.load(open(os.path.join(folder, "config.json")))["architectures"] == ["RobertaForMultipleChoice"]
    model = _no_missing_weights(AutoModelForMultipleChoice, folder)
    rows = fd.choice_rows(2, 9)
    firsts = [r["context"] for r in rows for _ in r["choices"]]
    seconds = [c for r in rows for c in r["choices"]]
    enc = AutoTokenizer.from_pretrained(folder)(firsts, seconds, padding=True, return_tensors="np")
    ids = enc["input_ids"].astype(np.int32).reshape(2, 3, -1)
    mask = enc["attention_mask"].astype(np.int32).reshape(2, 3, -1)
    with torch.no_grad():
        theirs = model(input_ids=torch.tensor(ids, dtype=torch.long), attention_mask=torch.tensor(mask)).logits
    assert theirs.shape == (2, 3)
    assert np.abs(_ours(folder, "multiple-choice", ids, mask) - theirs.numpy()).max() <= 1e-4


# ---------------------------------------------------------------------------------------------
# bad input


def _error(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0] and "Traceback" not in "\n".join(err), err
    return errors[0]


def test_bad_examples_are_one_line_naming_the_file_and_line(tiny_model, tmp_path, capsys):
    out = ["--output", str(tmp_path / "out")]
    # a QA answer whose offset does not match its text (the third line)
    qa = fd.qa_rows(4, 3)
    qa[2]["answers"]["answer_start"] = [qa[2]["answers"]["answer_start"][0] + 1]
    train = fd.write_jsonl(str(tmp_path / "qa.jsonl"), qa)
    msg = _error(capsys, ["finetune", "--model", tiny_model, "--task", "question-answering", "--dataset", "json",
                          "--data-files", f"train={train}", "--data-files", f"validation={train}", *out])
    assert f"{train} line 3: the answer {qa[2]['answers']['text'][0]!r}" in msg and "does not match" in msg
    # a regression label that is not a number (CSV: the header is line 1, the bad row line 4)
    csv = tmp_path / "sts.csv"
    csv.write_text("text,label\nel gato,1.5\nla casa,2\nel perro,alto\n")
    msg = _error(capsys, ["finetune", "--model", tiny_model, "--task", "text-regression", "--dataset", "csv",
                          "--data-files", f"train={csv}", "--data-files", f"validation={csv}", *out])
    assert f"{csv} line 4: the regression label 'label' is 'alto', not a number" in msg
    # a multiple-choice example with another number of choices (the second line)
    mc = fd.choice_rows(3, 4)
    mc[1]["choices"] = mc[1]["choices"][:2]
    train = fd.write_jsonl(str(tmp_path / "mc.jsonl"), mc)
    msg = _error(capsys, ["finetune", "--model", tiny_model, "--task", "text-multiple-choice", "--dataset", "json",
                          "--data-files", f"train={train}", "--data-files", f"validation={train}", *out])
    assert f"{train} line 2: 2 choices, but {train} line 1 has 3" in msg
