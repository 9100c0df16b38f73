"""Downstream fine-tuning (`trainer finetune` / `evaluate` / `compare`) on small synthetic datasets served by
the loopback Hub: learning beats chance, broken labels do not, collapsed runs are detected and rerun, the
exports give PyTorch's logits, bad input gives one-line errors; the stability options (frozen parameters bit-identical,
layer-wise decay measured on the first AdamW step, re-initialised top layers)."""

from __future__ import annotations

import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("seqeval")

import finetune_data as fd  # noqa: E402

from trainer.cli import main  # noqa: E402
from trainer.errors import ConfigError  # noqa: E402
from trainer.finetune.loading import load_model  # noqa: E402
from trainer.finetune.run import RunResult, Settings, collapse_check, run_seeds, summarize  # noqa: E402
from trainer.finetune.stability import Stability, layer_scale  # noqa: E402
from trainer.models import get_family  # noqa: E402


def _shuffled(rows: dict, seed: int) -> dict:
    out = dict(rows)
    out["label"] = list(np.random.default_rng(seed).permutation(rows["label"]))
    return out


@pytest.fixture
def hub(loopback_hub, monkeypatch, tmp_path):
    """The loopback Hub serving the synthetic datasets as Parquet; ``load_dataset("me/...")`` reaches it."""
    import datasets.config
    import huggingface_hub.constants as hf
    from huggingface_hub import HfFileSystem

    ner = lambda n, s: fd.parquet_bytes(fd.ner_rows(n, s), fd.ner_features())  # noqa: E731
    pairs = lambda rows: fd.parquet_bytes(rows, fd.pair_features())  # noqa: E731
    odd_train = {"text": ["uno", "dos", "tres", "cuatro"], "label": ["sí", "no", "sí", "no"]}
    odd_eval = {"text": ["cinco", "seis"], "label": ["sí", "quizá"]}
    files = {
        **fd.hub_files("me/ner", {"train": ner(200, 1), "validation": ner(80, 2)}),
        **fd.hub_files("me/pairs", {"train": pairs(fd.pair_rows(400, 1)), "validation": pairs(fd.pair_rows(100, 2))}),
        **fd.hub_files("me/pairs-shuffled", {"train": pairs(_shuffled(fd.pair_rows(400, 1), 0)),
                                             "validation": pairs(fd.pair_rows(100, 2))}),
        **fd.hub_files("me/odd-labels", {"train": fd.parquet_bytes(odd_train),
                                         "validation": fd.parquet_bytes(odd_eval)}),
    }
    server = loopback_hub(files)
    # the Hub clients read HF_ENDPOINT when imported: point their constants at the loopback Hub
    monkeypatch.setattr(hf, "ENDPOINT", server.url)
    monkeypatch.setattr(hf, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", server.url)
    monkeypatch.setattr(datasets.config, "HUB_DATASETS_URL",
                        server.url + "/datasets/{repo_id}/resolve/{revision}/{path}")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    HfFileSystem.clear_instance_cache()  # no file system of an earlier test's Hub
    yield server
    HfFileSystem.clear_instance_cache()


def _flax_logits(folder: str, kind: str, ids, mask):
    from trainer.finetune.kinds import get_kind
    from trainer.models.roberta import RobertaForClassification

    loaded = load_model(folder)
    params = {**loaded.encoder, "classifier": loaded.heads[kind]}
    model = get_kind(kind).classifier(loaded.spec, len(loaded.id2label))
    assert isinstance(model, RobertaForClassification)
    return np.asarray(model.apply({"params": params}, jnp.asarray(ids), jnp.asarray(mask)))


def _torch_logits(model, ids, mask):
    model.eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids, dtype=torch.long),
                     attention_mask=torch.tensor(mask, dtype=torch.long)).logits.numpy()


def test_ner_learns_exports_with_pytorch_parity_and_evaluates(tiny_model, hub, tmp_path, capsys):
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    out = str(tmp_path / "ner")
    rc = main(["finetune", "--model", f"tiny={tiny_model}", "--task", "ner", "--dataset", "me/ner",
               "--learning-rate", "5e-3", "--epochs", "10", "--seeds", "2", "--output", out, "--no-png",
               "--push-to-hub", "me/tiny-ner"])
    assert rc == 0
    report = json.load(open(os.path.join(out, "results.json")))["models"]["tiny"]["ner"]
    assert report["labels"] == fd.NER_TAGS and report["kind"] == "token"
    majority = report["runs"][0]["metrics"]["majority"]
    assert 0.5 < majority < 0.7  # "O"
    # a lexicon tagger: entity F1 and token accuracy far above the all-"O" baseline, on every seed
    assert min(report["metrics"]["f1"]["values"]) > 0.8
    assert min(report["metrics"]["accuracy"]["values"]) > majority + 0.25
    assert len(report["runs"]) == 2 and report["metrics"]["f1"]["std"] >= 0.0
    # the preset's max length (128) exceeds the model's 64 positions: said in the report
    assert "truncated at 64" in report["truncated"]["note"]
    assert "| tiny |" in open(os.path.join(out, "results.md")).read()

    # the export: RobertaForTokenClassification with the labels, same logits as ours
    folder = os.path.join(out, "tiny-ner")
    model, info = AutoModelForTokenClassification.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.config.id2label == dict(enumerate(fd.NER_TAGS))
    assert "token-classification" in open(os.path.join(folder, "README.md")).read()
    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(["el gato vive en San Sebastián con Ana", "Madrid"], padding=True, return_tensors="np")
    ids, mask = enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)
    ours, theirs = _flax_logits(folder, "token", ids, mask), _torch_logits(model, ids, mask)
    assert np.abs(ours - theirs)[mask.astype(bool)].max() <= 1e-4

    # uploaded to the (loopback) Hub with its card ...
    uploaded = hub.repo_files("me/tiny-ner")
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md"} <= set(uploaded)
    assert b"pipeline_tag: token-classification" in uploaded["README.md"]
    # ... and `trainer evaluate` on the model read back from the Hub gives the best seed's metrics
    capsys.readouterr()
    rc = main(["evaluate", "--model", "me/tiny-ner", "--task", "ner", "--dataset", "me/ner",
               "--output", str(tmp_path / "eval.json")])
    assert rc == 0
    evaluated = json.load(open(tmp_path / "eval.json"))["metrics"]
    assert evaluated["f1"] == max(report["metrics"]["f1"]["values"])


def test_pairs_learn_side_by_side_and_shuffled_labels_do_not(tiny_model, hub, tmp_path, capsys):
    from transformers import AutoModelForSequenceClassification

    out = str(tmp_path / "pairs")
    common = ["--task", "paws-x-512", "--learning-rate", "5e-3", "--epochs", "10", "--max-length", "64"]
    rc = main(["finetune", "--model", f"random-a={tiny_model}", "--model", f"random-b={tiny_model}", *common,
               "--dataset", "me/pairs", "--seeds", "2", "--max-reruns", "4", "--output", out, "--export"])
    assert rc == 0
    results = json.load(open(os.path.join(out, "results.json")))
    for name in ("random-a", "random-b"):
        r = results["models"][name]["paws-x-512"]
        assert r["collapsed_kept"] == 0 and len(r["runs"]) == 2
        # chance is 0.5 (100 examples: a standard deviation of 0.05); the shared key word is learnt
        assert r["metrics"]["accuracy"]["mean"] > 0.75  # 5 standard deviations above chance
        assert all(x["collapsed"] for x in r["replaced_runs"]) and r["reruns"] == len(r["replaced_runs"])
    table = open(os.path.join(out, "results.md")).read()
    assert "| random-a |" in table and "| random-b |" in table and "paws-x-512 (Acc / macro-F1)" in table
    assert open(os.path.join(out, "results.png"), "rb").read(8) == b"\x89PNG\r\n\x1a\n"

    # the sequence-classification export gives PyTorch's logits
    folder = os.path.join(out, "random-a-paws-x-512")
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    assert model.config.id2label == {0: "different", 1: "same"}
    rows = fd.pair_rows(4, 7)
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(folder)(rows["sentence1"], rows["sentence2"], padding=True, return_tensors="np")
    ids, mask = enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)
    assert np.abs(_flax_logits(folder, "sequence", ids, mask) - _torch_logits(model, ids, mask)).max() <= 1e-4

    # the same sentences with shuffled labels: nothing to learn, no better than chance
    broken = str(tmp_path / "broken")
    rc = main(["finetune", "--model", f"shuffled={tiny_model}", *common, "--dataset", "me/pairs-shuffled",
               "--seeds", "1", "--max-reruns", "0", "--output", broken, "--no-png"])
    assert rc == 0
    r = json.load(open(os.path.join(broken, "results.json")))["models"]["shuffled"]["paws-x-512"]
    assert r["metrics"]["accuracy"]["mean"] < 0.5 + 0.15
    # compare: both result files in one table
    rc = main(["compare", os.path.join(out, "results.json"), os.path.join(broken, "results.json"),
               "--output", str(tmp_path / "cmp"), "--no-png"])
    assert rc == 0
    merged = open(tmp_path / "cmp" / "results.md").read()
    assert "| shuffled |" in merged and "| random-a |" in merged
    assert "± n/a" in merged.split("| shuffled |")[1].splitlines()[0]  # one seed: no spread, not "± 0.0000"
    # ... and each model against the first with Welch's test and the Multi-Bootstrap (paired: the same eval set)
    assert "## Difference to `random-a`" in merged and "1000 resamples (seed 0)" in merged
    comparison = json.load(open(tmp_path / "cmp" / "results.json"))["comparison"]["tasks"]["paws-x-512"]
    shuffled, twin = comparison["shuffled"]["accuracy"], comparison["random-b"]["accuracy"]
    b = shuffled["bootstrap"]
    assert b["paired"] and b["examples"] and b["samples"] == 1000 and b["seed"] == 0
    base = results["models"]["random-a"]["paws-x-512"]["metrics"]["accuracy"]["mean"]
    assert b["difference"] == pytest.approx(r["metrics"]["accuracy"]["mean"] - base, abs=1e-12)
    assert b["ci_high"] < 0 and b["p_better"] < 0.05  # shuffled labels are worse, beyond resampling noise
    assert twin["bootstrap"]["difference"] == 0 and twin["welch"]["p"] == 1.0  # the same checkpoint and seeds
    # the same resampling seed gives the same numbers; an unknown baseline is one line naming the option
    rc = main(["compare", os.path.join(out, "results.json"), os.path.join(broken, "results.json"),
               "--output", str(tmp_path / "cmp2"), "--no-png", "--baseline", "random-a"])
    again = json.load(open(tmp_path / "cmp2" / "results.json"))["comparison"]["tasks"]["paws-x-512"]
    assert rc == 0 and again == comparison
    err = _error(capsys, ["compare", os.path.join(out, "results.json"), "--output", str(tmp_path / "cmp4"),
                          "--baseline", "nope"])
    assert "--baseline 'nope' is not a model of the results (random-a, random-b)" in err


def _fake(collapsing: dict):
    calls = []

    def train(seed):
        calls.append(seed)
        left = collapsing.get(seed % 1000, 0)
        bad = left > 0
        if bad:
            collapsing[seed % 1000] = left - 1
        acc = 0.5 if bad else 0.9 + 0.001 * (seed % 1000)
        return RunResult(seed, {"accuracy": acc, "majority": 0.5}, 10, 0.1, 1.0, bad, "forced" if bad else "")

    return train, calls


def test_collapsed_runs_are_rerun_with_other_seeds_within_the_budget():
    train, calls = _fake({1: 2})  # seed 1 collapses twice
    kept, replaced = run_seeds(train, Settings(seeds=3, max_reruns=3))
    assert calls == [0, 1, 1001, 2001, 2]
    assert [r.seed for r in kept] == [0, 2001, 2] and not any(r.collapsed for r in kept)
    report = summarize(kept, replaced, ("accuracy",))
    assert report["reruns"] == 2 and [r["seed"] for r in report["replaced_runs"]] == [1, 1001]
    assert report["metrics"]["accuracy"]["mean"] == pytest.approx(0.901)
    # the budget is shared by all runs: a run still collapsed afterwards is kept and flagged
    train, calls = _fake({0: 5, 1: 5})
    kept, replaced = run_seeds(train, Settings(seeds=2, max_reruns=2))
    assert calls == [0, 1000, 2000, 1] and [r.collapsed for r in kept] == [True, True]
    assert summarize(kept, replaced, ("accuracy",))["collapsed_kept"] == 2
    # the detector: majority/chance rate + margin, and non-finite losses
    assert collapse_check({"accuracy": 0.3333, "majority": 0.3334}, 3, 0.02, 0.9)[0]
    assert collapse_check({"accuracy": 0.52, "majority": 0.4}, 2, 0.02, 0.7)[0]  # chance 0.5 + 0.02
    assert not collapse_check({"accuracy": 0.8, "majority": 0.5}, 2, 0.02, 0.3)[0]
    assert collapse_check({"accuracy": 0.9, "majority": 0.5}, 2, 0.02, float("nan"))[0]


def test_a_run_forced_to_collapse_is_detected_and_reported(tiny_model, hub, tmp_path):
    out = str(tmp_path / "zero")
    rc = main(["finetune", "--model", f"frozen={tiny_model}", "--task", "paws-x-512", "--dataset", "me/pairs",
               "--learning-rate", "0", "--epochs", "1", "--max-length", "64", "--seeds", "1", "--max-reruns", "1",
               "--output", out, "--no-png"])
    assert rc == 0
    r = json.load(open(os.path.join(out, "results.json")))["models"]["frozen"]["paws-x-512"]
    assert r["reruns"] == 1 and r["collapsed_kept"] == 1  # learning rate 0: the head never learns
    assert "majority/chance rate" in r["runs"][0]["collapse_reason"]
    table = open(os.path.join(out, "results.md")).read()
    assert "!" in table.splitlines()[2] and "still collapsed" in table and "rerun with other seeds" in table


def _error(capsys, argv) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()  # (after the datasets' progress bars)
    errors = [line for line in err if line.startswith("error: ")]
    assert len(errors) == 1 and err[-1] == errors[0] and "Traceback" not in "\n".join(err), err
    return errors[0]


def test_bad_input_gives_one_line_errors(tiny_model, hub, tmp_path, capsys):
    out = str(tmp_path / "o")
    # a masked-LM checkpoint has no classification head to evaluate
    assert "has no token-classification head" in _error(
        capsys, ["evaluate", "--model", tiny_model, "--task", "ner", "--dataset", "me/ner"])
    # a dataset without the task's columns: the error lists the dataset's
    msg = _error(capsys, ["finetune", "--model", tiny_model, "--task", "ner", "--dataset", "me/pairs",
                          "--output", out])
    assert "no column 'tokens', 'ner_tags'" in msg and "sentence1, sentence2, label" in msg
    # label sets that differ between the splits
    msg = _error(capsys, ["finetune", "--model", tiny_model, "--task", "sequence-classification", "--dataset",
                          "me/odd-labels", "--output", out])
    assert "label sets" in msg and "quizá" in msg
    # a checkpoint with another vocabulary than its tokenizer
    small = str(tmp_path / "small-vocab")
    shutil.copytree(tiny_model, small)
    from safetensors.numpy import load_file, save_file

    sd = load_file(os.path.join(small, "model.safetensors"))
    for k in ("roberta.embeddings.word_embeddings.weight", "lm_head.bias"):
        sd[k] = sd[k][:100]
    save_file(sd, os.path.join(small, "model.safetensors"))
    cfg = json.load(open(os.path.join(small, "config.json")))
    json.dump({**cfg, "vocab_size": 100}, open(os.path.join(small, "config.json"), "w"))
    msg = _error(capsys, ["finetune", "--model", small, "--task", "ner", "--dataset", "me/ner", "--output", out])
    assert "vocabulary of 100" in msg
    # a missing checkpoint, an unknown task
    assert "no such checkpoint" in _error(capsys, ["finetune", "--model", str(tmp_path / "nope"), "--task", "ner",
                                                   "--dataset", "me/ner", "--output", out])
    assert "unknown task" in _error(capsys, ["finetune", "--model", tiny_model, "--task", "sts", "--output", out])


def test_long_sequences_are_truncated_and_counted(tiny_model, hub):
    from trainer.finetune.tasks import encode, get_preset, load_task_data

    loaded = load_model(tiny_model)
    for name, repo in (("ner", "me/ner"), ("paws-x-512", "me/pairs")):
        task = get_preset(name).replace(path=repo, max_length=12)
        task = type(task)(**{**task.__dict__, "name": None, "revision": None})
        data = load_task_data(task)
        enc = encode(data.eval, task, loaded.tokenizer, 12)
        assert enc.input_ids.shape[1] == 12 and 0 < enc.truncated < len(enc)
        # each truncated row still ends with </s>
        full = enc.attention_mask.sum(axis=1) == 12
        assert full.sum() >= enc.truncated
        assert (enc.input_ids[full, -1] == loaded.tokenizer.eos_token_id).all()
        if name == "ner":  # labels only on first sub-tokens, never on <s> / </s>
            assert (enc.weights[:, 0] == 0).all() and (enc.weights[full, -1] == 0).all()


def test_an_orbax_checkpoint_loads_the_same_encoder(tiny_model, tmp_path):
    """The trainer's own checkpoints are read as `trainer export` reads them (spec and tokenizer from the meta),
    vocabulary padding rows included; the classifier export drops them again."""
    import dataclasses

    import jax

    from trainer.checkpoint import Checkpointer, spec_to_meta
    from trainer.models.roberta_hf import (
        classifier_to_state_dict,
        import_pretrained,
        params_to_state_dict,
        state_dict_to_params,
    )

    spec, params = import_pretrained(tiny_model)
    padded = dataclasses.replace(spec, pad_vocab_to_multiple_of=64)
    assert padded.padded_vocab_size > spec.vocab_size
    params = state_dict_to_params(params_to_state_dict(params, spec), padded)
    ckpt = Checkpointer(str(tmp_path / "run" / "checkpoints"), async_save=False)
    ckpt.save(7, jax.tree.map(jnp.asarray, params), {"count": jnp.zeros(())}, {"step": 7, "seed": 0}, [{}],
              {"spec": spec_to_meta(padded), "tokenizer_dir": tiny_model})
    ckpt.close()
    from_orbax, from_folder = load_model(str(tmp_path / "run")), load_model(tiny_model)
    assert from_orbax.source.endswith("@7") and "lm_head" not in from_orbax.encoder
    words = from_orbax.encoder["embeddings"]["word_embeddings"]["embedding"]
    assert words.shape[0] == padded.padded_vocab_size
    np.testing.assert_array_equal(words[: spec.vocab_size],
                                  from_folder.encoder["embeddings"]["word_embeddings"]["embedding"])
    same = jax.tree.map(np.array_equal, from_orbax.encoder["layers_1"], from_folder.encoder["layers_1"])
    assert all(jax.tree.leaves(same))
    head = {"kernel": np.ones((spec.hidden_size, 3), np.float32), "bias": np.zeros(3, np.float32)}
    sd = classifier_to_state_dict({**from_orbax.encoder, "classifier": head}, from_orbax.spec, True)  # a token head
    assert sd["roberta.embeddings.word_embeddings.weight"].shape[0] == spec.vocab_size
    assert sd["classifier.weight"].shape == (3, spec.hidden_size)


def test_plain_label_values_from_local_files(tmp_path):
    """Labels without a ClassLabel feature: the training split's sorted values; ``--data-files``-style input."""
    from trainer.finetune.tasks import get_preset, load_task_data

    files = {}
    for split, rows in (("train", {"texto": ["a", "b", "c", "d"], "clase": ["pos", "neg", "neu", "pos"]}),
                        ("validation", {"texto": ["e", "f"], "clase": ["neg", "pos"]})):
        path = tmp_path / f"{split}.parquet"
        path.write_bytes(fd.parquet_bytes(rows))
        files[split] = [str(path)]
    task = get_preset("sequence-classification").replace(path="parquet", text_columns=("texto",),
                                                         label_column="clase")
    data = load_task_data(task, files)
    assert data.labels == ["neg", "neu", "pos"] and not data.iob
    assert list(data.train["clase"]) == [2, 0, 1, 2] and list(data.eval["clase"]) == [0, 2]


def test_a_task_kind_registered_in_a_test_builds_exports_and_reloads_its_head(tiny_model, tmp_path, monkeypatch):
    """A new task kind is its class and its registration: the head on any family's encoder, the transformers
    export (family prefix + the kind's suffix, PyTorch logits within 1e-4) and the reload of its head need no
    other edit."""
    import jax
    from transformers import AutoModelForSequenceClassification

    from trainer.finetune.kinds import KINDS, get_kind
    from trainer.finetune.kinds.sequence import SequenceKind
    from trainer.finetune.run import export_classifier

    class ToyKind(SequenceKind):
        name = "toy-sentence"
        title = "toy sentence classification"

    monkeypatch.setitem(KINDS, ToyKind.name, ToyKind())  # what register_kind does, undone after the test
    kind = get_kind("toy-sentence")
    loaded = load_model(tiny_model)
    params = {**loaded.encoder, **{k: v for k, v in jax.tree.map(np.asarray, kind.init_classifier_params(
        loaded.spec, 3, jax.random.key(1))).items() if k == "classifier"}}
    out = export_classifier(params, loaded.spec, "toy-sentence", ["a", "b", "c"], str(tmp_path / "toy"),
                            loaded.tokenizer, "card")
    with open(os.path.join(out, "config.json")) as f:
        assert json.load(f)["architectures"] == ["RobertaForSequenceClassification"]
    reloaded = load_model(out)
    assert set(reloaded.heads) >= {"toy-sentence"}
    ids = np.asarray([[0, 5, 6, 7, 2, 1], [0, 8, 9, 2, 1, 1]], np.int32)
    mask = (ids != 1).astype(np.int32)
    ours = np.asarray(kind.classifier(reloaded.spec, 3).apply(
        {"params": {**reloaded.encoder, "classifier": reloaded.heads["toy-sentence"]}}, jnp.asarray(ids),
        jnp.asarray(mask)))
    ref = _torch_logits(AutoModelForSequenceClassification.from_pretrained(out), ids, mask)
    assert np.abs(ours - ref).max() <= 1e-4


# --- stability options (trainer/finetune/stability.py) ------------------------------------------------------

@pytest.fixture(scope="module")
def pairs_tuning(tiny_model):
    """The tiny 2-layer RoBERTa and a small sentence-pair task, as ``FineTuner`` arguments."""
    import datasets

    from trainer.finetune.loading import load_model
    from trainer.finetune.tasks import TaskData, TaskPreset

    loaded = load_model(tiny_model)
    task = TaskPreset(kind="sequence", path=None, text_columns=("sentence1", "sentence2"), eval_split="validation",
                      max_length=32, batch_size=16, epochs=1, learning_rate=1e-3, warmup_ratio=0.0,
                      weight_decay=0.0, metrics=("accuracy", "macro_f1"))
    data = TaskData(datasets.Dataset.from_dict(fd.pair_rows(64, 1)), datasets.Dataset.from_dict(fd.pair_rows(32, 2)),
                    ["different", "same"], iob=False)
    return loaded, task, data


def _flat(tree) -> dict:
    return {"/".join(getattr(k, "key", str(k)) for k in path): np.asarray(v)
            for path, v in jax.tree_util.tree_flatten_with_path(tree)[0]}


def test_layer_scales_and_the_layer_of_each_family():
    assert [layer_scale(layer, 4, 0.5) for layer in (-1, 0, 3, None)] == [0.5 ** 5, 0.5 ** 4, 0.5, 1.0]
    roberta, modernbert = get_family("roberta"), get_family("modernbert")
    assert roberta.layer_of(("layers_11", "attention", "self", "query", "kernel")) == 11
    assert roberta.layer_of(("embeddings", "word_embeddings", "embedding")) == -1
    assert roberta.layer_of(("classifier", "out_proj", "kernel")) is None
    assert modernbert.layer_of(("model", "layers_2", "attn", "Wqkv", "kernel")) == 2
    assert modernbert.layer_of(("model", "embeddings", "tok_embeddings", "embedding")) == -1
    assert modernbert.layer_of(("model", "final_norm", "scale")) is None
    assert modernbert.layer_of(("head", "dense", "kernel")) is None


@pytest.mark.parametrize("options, message", [
    (Stability(layer_lr_decay=0.0), "--layer-lr-decay must be in (0, 1] (1: off), got 0.0"),
    (Stability(layer_lr_decay=1.5), "--layer-lr-decay must be in (0, 1] (1: off), got 1.5"),
    (Stability(freeze_layers=-1), "--freeze-layers must be an integer in [0, 2] (the model's 2 encoder layers), got"),
    (Stability(reinit_layers=3), "--reinit-layers must be an integer in [0, 2] (the model's 2 encoder layers), got"),
    (Stability(reinit_layers=1, freeze_layers=2), "--reinit-layers 1 + --freeze-layers 2 exceed"),
])
def test_bad_values_give_one_line_naming_the_option(options, message):
    with pytest.raises(ConfigError) as err:
        options.check(2)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_frozen_layers_stay_bit_identical_and_top_layers_restart(pairs_tuning):
    from trainer.finetune.run import FineTuner, Settings, fine_tune_task

    loaded, task, data = pairs_tuning
    options = Stability(reinit_layers=1, freeze_layers=1, freeze_embeddings=True)
    settings = Settings(seeds=1, max_reruns=0, max_steps=3, stability=options)
    report, best, tuner = fine_tune_task(loaded, task, data, settings, "pairs")
    assert {k: report["settings"][k] for k in options.record()} == options.record()  # recorded in the results
    from trainer.finetune.results import markdown_table

    assert ("* tiny / pairs: top 1 layer(s) re-initialised; lower 1 layer(s) frozen; embeddings frozen"
            in markdown_table({"models": {"tiny": {"pairs": report}}}))
    start, after, checkpoint = _flat(tuner.fine_tuning_start(best.seed)), _flat(best.params), _flat(loaded.encoder)
    frozen = [k for k in start if k.startswith(("embeddings/", "layers_0/"))]
    assert len(frozen) > 10 and all(np.array_equal(after[k], start[k]) for k in frozen)
    assert all(np.array_equal(start[k], checkpoint[k]) for k in frozen)
    top = [k for k in start if k.startswith("layers_1/") and k.endswith("kernel")]
    assert top and all(not np.array_equal(start[k], checkpoint[k]) for k in top)  # re-initialised ...
    assert all(not np.array_equal(after[k], start[k]) for k in top)  # ... and trained
    # the family's initialiser (RoBERTa: normal(initializer_range) kernels), drawn from the run's seed
    drawn = np.concatenate([start[k].ravel() for k in top])
    assert np.std(drawn) == pytest.approx(tuner.spec.initializer_range, rel=0.05) and abs(np.mean(drawn)) < 2e-3
    again, other = _flat(tuner.fine_tuning_start(best.seed)), _flat(tuner.fine_tuning_start(best.seed + 1))
    assert all(np.array_equal(again[k], start[k]) for k in start)
    assert all(not np.array_equal(other[k], start[k]) for k in top)
    # off by default: the start is the checkpoint
    plain = FineTuner(loaded, task, data, Settings(seeds=1, max_steps=1))
    assert plain.update_scales(start) is None
    assert all(np.array_equal(_flat(plain.fine_tuning_start(0))[k], checkpoint[k]) for k in checkpoint)


def test_layer_wise_decay_scales_the_first_adamw_step(pairs_tuning):
    """AdamW's first update is ``g / (|g| + eps)`` per element (weight decay 0, no warm-up): at most 1 and 1 up to
    ``eps / |g|`` for the larger gradients, so the largest |change| / lr of a layer's kernels is its decay factor."""
    from trainer.finetune.run import FineTuner, Settings

    loaded, task, data = pairs_tuning
    tuner = FineTuner(loaded, task, data, Settings(seeds=1, max_steps=1, stability=Stability(layer_lr_decay=0.5)))
    result = tuner.train(0)
    start, after = _flat(tuner.fine_tuning_start(0)), _flat(result.params)
    expected = {"embeddings/word_embeddings": 0.125, "layers_0/": 0.25, "layers_1/": 0.5, "classifier/": 1.0}
    for prefix, scale in expected.items():
        steps = np.concatenate([np.abs(after[k] - start[k]).ravel() for k in start
                                if k.startswith(prefix) and k.split("/")[-1] in ("kernel", "embedding")])
        moved = steps[steps > 0]
        assert moved.size > 100
        assert np.max(moved) / task.learning_rate == pytest.approx(scale, rel=1e-3), prefix
