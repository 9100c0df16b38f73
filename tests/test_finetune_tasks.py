"""Downstream tasks without training: `trainer compare` with a pair in two files, named tasks, the task kinds,
the bar chart's marks and y-axis, the task presets' sources and the CoNLL-2002 reader (local and
over a loopback server)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from loopback import FileServer

from trainer.cli import main
from trainer.errors import DataError


def _report(vals, replaced=(), collapsed=0, metric="accuracy", task="t"):
    return {"task": task, "kind": "sequence",
            "metrics": {metric: {"mean": float(np.mean(vals)), "std": float(np.std(vals)), "values": list(vals)}},
            "runs": [{"seed": i, "metrics": {metric: v}} for i, v in enumerate(vals)],
            "replaced_runs": [{"seed": 10 + i, "metrics": {metric: v}} for i, v in enumerate(replaced)],
            "reruns": len(replaced), "collapsed_kept": collapsed}


def _write(path, models: dict) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"models": models}, f)
    return str(path)


# ---------------------------------------------------------------------------------------------
# compare


def test_compare_refuses_a_model_task_pair_in_two_files(tmp_path, capsys):
    a = _write(tmp_path / "a" / "results.json", {"base": {"sequence-classification": _report([0.8, 0.9])}})
    b = _write(tmp_path / "b" / "results.json", {"base": {"sequence-classification": _report([0.5, 0.6])}})
    assert main(["compare", a, b, "--output", str(tmp_path / "cmp"), "--no-png"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: model 'base' / task 'sequence-classification' is in both ")
    assert a in err and b in err and "--task NAME=PRESET" in err and "Traceback" not in err
    assert not os.path.exists(tmp_path / "cmp" / "results.md")


def test_named_custom_tasks_compare_side_by_side(tmp_path, capsys):
    a = _write(tmp_path / "a" / "results.json", {"base": {"sentiment": _report([0.8, 0.9], task="sentiment")}})
    b = _write(tmp_path / "b" / "results.json", {"base": {"topics": _report([0.5, 0.6], task="topics")}})
    assert main(["compare", a, b, "--output", str(tmp_path / "cmp"), "--no-png"]) == 0
    table = open(tmp_path / "cmp" / "results.md").read()
    assert "| Model | sentiment (Acc) | topics (Acc) |" in table
    assert "| base | 0.8500 ± 0.0500 | 0.5500 ± 0.0500 |" in table


def test_compare_says_its_bold_is_no_significance_test(tmp_path):
    from trainer.finetune.results import markdown_table

    two = {"models": {"a": {"s": _report([0.8, 0.9], task="s")}, "b": {"s": _report([0.82, 0.86], task="s")}}}
    table = markdown_table(two)
    assert "| a | **0.8500 ± 0.0500** |" in table and "Bold: the highest mean of the task (not a significance test)" \
        in table
    one = markdown_table({"models": {"a": {"s": _report([0.8, 0.9], task="s")}}})
    assert "**" not in one and "Bold" not in one


def test_task_names_on_the_command_line():
    from trainer.errors import ConfigError
    from trainer.finetune.command import task_spec

    assert task_spec("ner") == ("ner", "ner")
    assert task_spec("sentiment=sequence-classification") == ("sentiment", "sequence-classification")
    for bad in ("=ner", "name=", "a/b=ner"):
        with pytest.raises(ConfigError, match="--task takes PRESET or NAME=PRESET"):
            task_spec(bad)


def test_finetune_refuses_two_tasks_of_one_name(tmp_path, capsys):
    rc = main(["finetune", "--model", str(tmp_path), "--task", "x=sequence-classification",
               "--task", "x=token-classification", "--output", str(tmp_path / "out")])
    assert rc == 2
    assert "two --task entries share a name (x, x); name them NAME=PRESET" in capsys.readouterr().err


def test_chart_marks_reruns_and_collapsed_runs_and_starts_at_zero(tmp_path):
    import matplotlib.pyplot as plt

    from trainer.finetune.results import bar_chart, chart_figure

    results = {"models": {
        "a": {"xnli": _report([0.78, 0.79, 0.785], replaced=[0.3333]), "paws": _report([0.89, 0.9, 0.895])},
        "b": {"xnli": _report([0.77, 0.3333, 0.78], collapsed=1), "paws": _report([0.88, 0.885, 0.87])},
    }}
    fig = chart_figure(results)
    ax = fig.axes[0]
    assert ax.get_ylim()[0] == 0.0 and ax.get_ylim()[1] >= 1.0  # not truncated to the scores' range
    texts = sorted(t.get_text() for t in ax.texts)
    assert texts == ["0.628!", "0.785*", "0.878", "0.895"]
    hatched = [p for c in ax.containers for p in getattr(c, "patches", ()) if p.get_hatch()]
    assert len(hatched) == 1 and hatched[0].get_height() == pytest.approx(np.mean([0.77, 0.3333, 0.78]))
    crosses = [line for line in ax.lines if line.get_marker() == "x"]
    assert len(crosses) == 1 and list(crosses[0].get_ydata()) == [0.3333]
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert sum(len(d.get_ydata()) for d in dots) == 12  # every kept run of every bar
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["a", "b", "a run (seed)", "collapsed, rerun (*)", "holds a collapsed run (!)"]
    plt.close(fig)
    # scores all near 0.3: the axis still starts at 0
    low = chart_figure({"models": {"m": {"t": _report([0.30, 0.31])}}})
    assert low.axes[0].get_ylim()[0] == 0.0
    plt.close(low)
    path = bar_chart(results, str(tmp_path / "results.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n" and os.listdir(tmp_path) == ["results.png"]


# ---------------------------------------------------------------------------------------------
# presets: today's datasets, no loading scripts


def test_presets_name_script_free_sources():
    from trainer.finetune.tasks import CONLL2002, PRESETS

    assert (PRESETS["xnli-256"].path, PRESETS["xnli-256"].name) == ("facebook/xnli", "es")
    assert (PRESETS["paws-x-512"].path, PRESETS["paws-x-512"].name) == ("google-research-datasets/paws-x", "es")
    for name in ("xnli-256", "xnli-512", "paws-x-512"):
        assert PRESETS[name].revision is None  # Parquet on main
    for name in ("ner", "pos", "ner-512", "pos-512"):
        assert PRESETS[name].path == CONLL2002 and PRESETS[name].name == "es"
    assert not any("eriktks" in str(p.path) for p in PRESETS.values())


# ---------------------------------------------------------------------------------------------
# CoNLL-2002


ESP = {  # the NLTK copy's layout: WORD POS TAG; -DOCSTART- between documents
    "esp.train": "-DOCSTART- -DOCSTART- O\nMelbourne NP B-LOC\n( Fpa O\nAustralia NP B-LOC\n) Fpt O\n\n"
                 "El DA O\nAbogado NC B-PER\nGeneral AQ I-PER\n\n-DOCSTART- -DOCSTART- O\n"
                 "Pedro NC B-PER\nvive VMI O\nen SPS O\nSan NC B-LOC\nSebastián NC I-LOC\n\n",
    "esp.testa": "Sao NC B-LOC\nPaulo VMI I-LOC\n( Fpa O\nBrasil NC B-LOC\n) Fpt O\n\nLa DA O\nEFE NC B-ORG\n",
    "esp.testb": "La DA O\nCoruña NC B-LOC\n\n\nIberia NC B-ORG\n, Fc O\n\n",
}


def _folder(root, files: dict, encoding="latin-1"):
    os.makedirs(root, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(text.encode(encoding))
    return str(root)


def test_conll_reader_on_a_local_copy(tmp_path):
    from trainer.finetune.conll import NER_TAGS, load_conll2002, parse_conll, read_file

    folder = _folder(tmp_path / "esp", ESP)
    train = read_file(os.path.join(folder, "esp.train"))  # Latin-1 bytes (Sebastián)
    assert [s["tokens"] for s in train] == [["Melbourne", "(", "Australia", ")"], ["El", "Abogado", "General"],
                                            ["Pedro", "vive", "en", "San", "Sebastián"]]
    assert train[2]["ner_tags"] == ["B-PER", "O", "O", "B-LOC", "I-LOC"]
    assert train[2]["pos_tags"] == ["NC", "VMI", "SPS", "NC", "NC"]
    # the original distribution: WORD TAG, no POS
    two = parse_conll(["Sao B-LOC", "Paulo I-LOC", "", "", "-DOCSTART- O", "La O", "EFE B-ORG"])
    assert two == [{"tokens": ["Sao", "Paulo"], "ner_tags": ["B-LOC", "I-LOC"]},
                   {"tokens": ["La", "EFE"], "ner_tags": ["O", "B-ORG"]}]
    with pytest.raises(DataError, match=r"esp.bad line 2: 'Paulo' is not `WORD TAG`"):
        parse_conll(["Sao B-LOC", "Paulo"], "esp.bad")
    ds = load_conll2002(folder, "es")
    assert {k: len(v) for k, v in ds.items()} == {"train": 3, "validation": 2, "test": 2}
    assert ds["train"].features["ner_tags"].feature.names == list(NER_TAGS)
    assert ds["validation"][1] == {"tokens": ["La", "EFE"], "ner_tags": [0, 3], "pos_tags": [1, 5]}
    assert ds["train"].features["pos_tags"].feature.names == ["AQ", "DA", "Fc", "Fpa", "Fpt", "NC", "NP", "SPS",
                                                              "VMI"]
    with pytest.raises(DataError, match="no esp.testb in this folder"):
        load_conll2002(_folder(tmp_path / "partial", {k: v for k, v in ESP.items() if k != "esp.testb"}))


def test_ner_and_pos_presets_download_the_raw_files_once(tmp_path, monkeypatch):
    from trainer.finetune.tasks import get_preset, load_task_data

    monkeypatch.setenv("TRAINER_CACHE", str(tmp_path / "cache"))
    root = _folder(tmp_path / "served", ESP, encoding="utf-8")
    with FileServer(root) as server:
        monkeypatch.setenv("TRAINER_CONLL2002_URL", server.url + "/")
        ner = load_task_data(get_preset("ner"))
        assert sorted(n for n, _ in server.requests) == ["esp.testa", "esp.testb", "esp.train"]
        assert ner.labels == ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
        assert ner.iob and len(ner.train) == 3 and len(ner.eval) == 2  # eval: esp.testa
        pos = load_task_data(get_preset("pos").replace(conll_files=server.url))  # cached: no new request
        assert len(server.requests) == 3 and "NC" in pos.labels and not pos.iob
        cached = os.listdir(os.path.join(tmp_path / "cache", "conll2002"))
        assert len(cached) == 1 and sorted(os.listdir(tmp_path / "cache" / "conll2002" / cached[0])) == [
            "esp.testa", "esp.testb", "esp.train"]
        server.errors["esp.train"] = [404]
        with pytest.raises(DataError, match=r"cannot download the CoNLL-2002 file .*/elsewhere/esp.train"):
            load_task_data(get_preset("ner").replace(conll_files=server.url + "/elsewhere"))
    with pytest.raises(DataError, match="neither a folder nor an http"):
        load_task_data(get_preset("ner").replace(conll_files=str(tmp_path / "missing")))


# ---------------------------------------------------------------------------------------------
# task kinds


def test_task_kinds_registry_and_metrics_against_sklearn():
    from seqeval.metrics import f1_score as seqeval_f1
    from sklearn.metrics import accuracy_score, f1_score

    from trainer.finetune.kinds import KINDS, get_kind
    from trainer.finetune.tasks import PRESETS, Encoded

    assert list(KINDS) == ["token", "sequence", "span", "regression", "multiple-choice"]
    assert {p.task_kind.name for p in PRESETS.values()} == set(KINDS)
    assert (KINDS["token"].pipeline_tag, KINDS["sequence"].pipeline_tag) == ("token-classification",
                                                                              "text-classification")
    assert KINDS["token"].auto_class == "AutoModelForTokenClassification"
    assert [KINDS[k].auto_class for k in ("span", "regression", "multiple-choice")] == [
        "AutoModelForQuestionAnswering", "AutoModelForSequenceClassification", "AutoModelForMultipleChoice"]
    with pytest.raises(DataError, match="unknown task kind 'ranking'; known: token, sequence, span, regression, "
                                        "multiple-choice"):
        get_kind("ranking")
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 3, 200)
    pred = np.where(rng.random(200) < 0.7, gold, rng.integers(0, 3, 200))
    gold[:5] = -1  # unlabelled
    labels, weights = KINDS["sequence"].label_arrays(list(gold), 200, 8)
    enc = Encoded(np.zeros((200, 8)), np.ones((200, 8)), labels, weights, 0)
    m = KINDS["sequence"].metrics(pred, enc, ["a", "b", "c"], False)
    assert m["examples"] == 195
    assert m["accuracy"] == pytest.approx(accuracy_score(gold[5:], pred[5:]))
    assert m["macro_f1"] == pytest.approx(f1_score(gold[5:], pred[5:], average="macro"))
    # token: only first sub-tokens count; entity F1 as seqeval on the label strings
    tags = ["O", "B-PER", "I-PER"]
    rows = [[-100, 1, 2, -100, 0, -100], [-100, 0, 1, -100]]
    labels, weights = KINDS["token"].label_arrays(rows, 2, 6)
    preds = np.array([[0, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]])
    enc = Encoded(np.zeros((2, 6)), np.ones((2, 6)), labels, weights, 0)
    m = KINDS["token"].metrics(preds, enc, tags, True)
    assert m["examples"] == 2 and m["accuracy"] == pytest.approx(4 / 5)
    assert m["f1"] == pytest.approx(seqeval_f1([["B-PER", "I-PER", "O"], ["O", "B-PER"]],
                                               [["B-PER", "O", "O"], ["O", "B-PER"]]))


def test_no_kind_switches_outside_the_kinds():
    """``if kind == TOKEN``-style branches live in trainer/finetune/kinds/ only."""
    import ast

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "trainer", "finetune")
    found = []
    for name in sorted(os.listdir(root)):
        if not name.endswith(".py"):
            continue
        tree = ast.parse(open(os.path.join(root, name)).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                if any(isinstance(o, ast.Name) and o.id in ("TOKEN", "SEQUENCE") for o in operands) or any(
                        isinstance(o, ast.Constant) and o.value in ("token", "sequence") for o in operands):
                    found.append(f"{name}:{node.lineno}")
    assert found == []
