"""The ModernBERT family: logit parity with transformers' ModernBertForMaskedLM (export and import, eager and
SDPA, with and without padding), packed documents computed as separate documents, a tiny run that resumes
bit for bit, revisions, export, fill-mask, weight statistics, transfer and freezing, fine-tuning heads."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from trainer_helpers import make_corpus, make_tokenizer, tiny_overrides  # noqa: E402

from trainer.models import family_of, get_family  # noqa: E402
from trainer.models.modernbert import ModernBertForMaskedLM, ModernBertSpec, document_ids, init_params  # noqa: E402
from trainer.models.modernbert_hf import export_pretrained, import_pretrained, params_to_state_dict  # noqa: E402

SPEC = ModernBertSpec(vocab_size=100, hidden_size=32, num_layers=4, num_heads=4, intermediate_size=48,
                      max_position_embeddings=64, local_attention=8, dtype="float32", attention_impl="xla",
                      pad_token_id=1, eos_token_id=2, pad_vocab_to_multiple_of=64)


def _random_params(spec, seed=0):
    """init_params moved off its initial values (LayerNorm scales and biases not 1 / 0)."""
    params = init_params(spec, jax.random.key(seed))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    return jax.tree.unflatten(tree, [a + 0.05 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)])


def _ids_and_mask(vocab: int, length: int = 40):
    ids = np.random.default_rng(0).integers(3, vocab, (2, length))
    mask = np.ones_like(ids)
    mask[1, 25:] = 0  # the second row right-padded
    return ids, mask


def _torch_logits(folder, ids, mask, impl="eager", cls=None):
    from transformers import AutoModelForMaskedLM

    model = (cls or AutoModelForMaskedLM).from_pretrained(folder, attn_implementation=impl).eval()
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    return type(model).__name__, logits.numpy()


def _flax_logits(spec, params, ids, mask=None):
    mask = None if mask is None else jnp.asarray(mask)
    out = ModernBertForMaskedLM(spec).apply({"params": params}, jnp.asarray(ids), mask)
    return np.asarray(out)[..., : spec.vocab_size]


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_export_gives_pytorch_logits_and_imports_back(tmp_path, impl):
    params = _random_params(SPEC)
    folder = str(tmp_path / "out")
    export_pretrained(jax.tree.map(np.asarray, params), SPEC, folder)
    ids, mask = _ids_and_mask(SPEC.vocab_size)  # 40 tokens: the local layers' window (|i - j| <= 4) matters
    name, ref = _torch_logits(folder, ids, mask, impl)
    assert name == "ModernBertForMaskedLM"
    ours = _flax_logits(SPEC, params, ids, mask)
    assert np.abs(ours[0] - ref[0]).max() <= 1e-4
    assert np.abs(ours[1, :25] - ref[1, :25]).max() <= 1e-4  # the padded row's tokens
    _, single = _torch_logits(folder, ids[:1, :17], np.ones((1, 17), np.int64), impl)  # one unpadded sequence
    assert np.abs(_flax_logits(SPEC, params, ids[:1, :17]) - single).max() <= 1e-4
    spec, back = import_pretrained(folder, pad_vocab_to_multiple_of=64, dtype="float32", attention_impl="xla")
    assert spec == SPEC  # the same weights (the vocabulary padding rows are not exported)
    sd, sd_back = params_to_state_dict(params, SPEC), params_to_state_dict(back, spec)
    assert sd.keys() == sd_back.keys() and all(np.array_equal(sd[k], sd_back[k]) for k in sd)


def test_a_transformers_modernbert_imports_with_its_logits(tmp_path):
    """Continued pretraining from a published checkpoint: a random transformers ModernBERT (LayerNorm biases,
    no decoder bias, global attention every 2nd layer, other RoPE thetas) read back gives its logits."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM as TorchMLM

    torch.manual_seed(0)
    config = ModernBertConfig(vocab_size=90, hidden_size=32, intermediate_size=40, num_hidden_layers=3,
                              num_attention_heads=2, max_position_embeddings=64, local_attention=6, norm_bias=True,
                              decoder_bias=False, global_attn_every_n_layers=2, global_rope_theta=5000.0,
                              local_rope_theta=500.0, pad_token_id=0, eos_token_id=2, bos_token_id=1, cls_token_id=1,
                              sep_token_id=2)
    model = TorchMLM(config)
    with torch.no_grad():  # LayerNorm parameters off 1 / 0
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    folder = str(tmp_path / "hf")
    model.save_pretrained(folder)
    spec, params = import_pretrained(folder, dtype="float32", attention_impl="xla")
    assert (spec.global_attn_every_n_layers, spec.local_attention, spec.norm_bias, spec.decoder_bias) == (2, 6, True,
                                                                                                          False)
    assert (spec.global_rope_theta, spec.local_rope_theta) == (5000.0, 500.0)
    ids, mask = _ids_and_mask(90, 30)
    _, ref = _torch_logits(folder, ids, mask, "eager")
    ours = _flax_logits(spec, params, ids, mask)
    assert np.abs(ours[0] - ref[0]).max() <= 1e-4 and np.abs(ours[1, :25] - ref[1, :25]).max() <= 1e-4


def test_packed_documents_are_computed_as_separate_documents():
    """Document ids from the </s> ends: attention stays in a document, positions restart; the packed row's
    logits are each document's own (padding-free training on packed rows)."""
    params = _random_params(SPEC)
    rng = np.random.default_rng(1)
    a, b, c = (np.append(rng.integers(3, 100, n), 2) for n in (11, 20, 6))  # doc </s>
    row = np.concatenate([a, b, c])[None]
    seg = document_ids(jnp.asarray(row), 2)
    assert np.asarray(seg)[0].tolist() == [0] * 12 + [1] * 21 + [2] * 7
    apply = jax.jit(lambda ids, mask, seg: ModernBertForMaskedLM(SPEC).apply({"params": params}, ids, mask,
                                                                               segment_ids=seg))
    ones = jnp.ones_like(jnp.asarray(row))
    packed = np.asarray(apply(jnp.asarray(row), ones, seg))
    alone_rows = np.ones((3, row.shape[1]), np.int64)  # each document alone, right-padded to the row's length
    masks = np.zeros_like(alone_rows)
    for i, doc in enumerate((a, b, c)):
        alone_rows[i, :len(doc)], masks[i, :len(doc)] = doc, 1
    alone = np.asarray(apply(jnp.asarray(alone_rows), jnp.asarray(masks), jnp.zeros_like(jnp.asarray(alone_rows))))
    start = 0
    for i, doc in enumerate((a, b, c)):
        assert np.abs(packed[0, start:start + len(doc)] - alone[i, :len(doc)]).max() < 1e-4
        start += len(doc)
    plain = np.asarray(apply(jnp.asarray(row), ones, jnp.zeros_like(seg)))
    assert np.abs(plain - packed).max() > 1e-2  # without the ids the documents see each other
    fam = get_family("modernbert")
    assert fam.packed_inputs(dataclasses.replace(SPEC, document_masking=False), row) == {}


def test_flops_count_the_local_window_only():
    from trainer.flops import flops_per_token, matmul_params

    base = get_family("modernbert").spec_from_config(get_family("modernbert").config_class(), 50368, 50283, 50282,
                                                     backend="cpu")
    h, i = 768, 1152
    assert matmul_params(base) == 22 * (4 * h * h + 3 * h * i) + h * h + 50368 * h
    # 8 global layers see all 512 keys, 14 local ones 129
    attention = 12.0 * h * (8 * 512 + 14 * 129)
    assert flops_per_token(base, 512) == pytest.approx(6 * matmul_params(base) + attention)


# -- a tiny run: resume, revisions, export, fill-mask, weight statistics, transfer, freezing ------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mb-corpus")
    paths = make_corpus(str(folder), n_docs=120, n_files=1)
    return paths, make_tokenizer(str(folder / "tok"), paths, vocab_size=300)


def _cfg(corpus, out, **extra):
    from trainer.config_loading import load_config

    paths, tok = corpus
    sets = {"training.max_steps": 6, "checkpoint.every_steps": 3, "training.eval_every_steps": 3,
            "model.local_attention": 8, "model.hidden_dropout": 0.1, **extra}
    return load_config("tiny-modernbert-cpu", tiny_overrides(paths, tok, out, **sets))


@pytest.fixture(scope="module")
def reference_run(corpus, tmp_path_factory):
    """6 uninterrupted steps, checkpoints at 3 and 6, the revision of step 3."""
    from trainer.entry import build_trainer

    out = str(tmp_path_factory.mktemp("mb-run") / "run")
    build_trainer(_cfg(corpus, out, **{"checkpoint.schedule": [3]})).run()
    return out


def _params(ckpt_dir, step):
    from trainer.export import load_checkpoint_params

    return load_checkpoint_params(ckpt_dir, step)


def test_tiny_run_resumes_bit_for_bit_and_records_its_family(corpus, reference_run, tmp_path):
    from trainer.entry import build_trainer
    from trainer.monitor import read_metrics

    out = str(tmp_path / "run")
    shutil.copytree(reference_run, out)
    shutil.rmtree(os.path.join(out, "checkpoints", "6"))  # as if killed after the step-3 save
    build_trainer(_cfg(corpus, out, **{"checkpoint.schedule": [3]})).run()
    spec, ref, meta, _ = _params(os.path.join(reference_run, "checkpoints"), 6)
    _, got, _, _ = _params(os.path.join(out, "checkpoints"), 6)
    assert meta["model_type"] == "modernbert" and isinstance(spec, ModernBertSpec)
    assert all(jax.tree.leaves(jax.tree.map(np.array_equal, ref, got)))
    assert read_metrics(os.path.join(out, "metrics.jsonl"))[6]["loss"] == \
        read_metrics(os.path.join(reference_run, "metrics.jsonl"))[6]["loss"]
    # a RoBERTa config refuses the checkpoint, naming the families
    from trainer.errors import CheckpointError

    with pytest.raises(CheckpointError, match="is a modernbert model, the config a roberta one"):
        from trainer.config_loading import load_config

        paths, tok = corpus
        build_trainer(load_config("tiny-cpu", tiny_overrides(paths, tok, out))).setup()


def test_revision_export_and_fill_mask_give_pytorch_predictions(corpus, reference_run, tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    from trainer.export import export_checkpoint
    from trainer.fill_mask import FillMask

    revision = os.path.join(reference_run, "revisions", "step3")
    assert json.load(open(os.path.join(revision, "config.json")))["model_type"] == "modernbert"
    folder = export_checkpoint(os.path.join(reference_run, "checkpoints"), str(tmp_path / "export"))
    tok = AutoTokenizer.from_pretrained(folder)
    text = f"el perro {tok.mask_token} en la casa"
    enc = tok(text, return_tensors="pt")
    model = AutoModelForMaskedLM.from_pretrained(folder, attn_implementation="eager").eval()
    with torch.no_grad():
        ref = torch.softmax(model(**enc).logits[0].double(), -1).numpy()
    pos = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0])
    preds = FillMask(folder)(text, top_k=3)[0]
    assert [p["token"] for p in preds] == list(np.argsort(-ref[pos])[:3])
    assert abs(preds[0]["score"] - ref[pos].max()) < 1e-5


def test_weight_stats_transfer_and_freezing(corpus, reference_run, tmp_path):
    from trainer.param_paths import check_freeze
    from trainer.research.stats_report import format_table, load_stats, plot
    from trainer.research.transfer import combine

    ckpts = os.path.join(reference_run, "checkpoints")
    loaded = load_stats(ckpts)
    assert loaded.family == "modernbert" and loaded.num_layers == 2
    assert "model/layers_1/attn/Wqkv/kernel" in loaded.stats and "decoder/bias" in loaded.stats
    assert "model/layers_1/attn/Wqkv/kernel" in format_table([loaded])
    assert open(plot([loaded, load_stats("random:tiny-modernbert-cpu")], str(tmp_path / "w.png")),
                "rb").read(4) == b"\x89PNG"
    spec, source, _, _ = _params(ckpts, 6)
    fresh = jax.tree.map(np.asarray, init_params(spec, jax.random.key(7)))
    both = combine(source, fresh, reinit_embeddings=True, family=family_of(spec))
    words = ("model", "embeddings", "tok_embeddings", "embedding")
    get = lambda t, p: t[p[0]][p[1]][p[2]][p[3]] if len(p) == 4 else t[p[0]][p[1]]  # noqa: E731
    assert np.array_equal(get(both, words), get(fresh, words))
    assert np.array_equal(both["decoder"]["bias"], fresh["decoder"]["bias"])
    assert np.array_equal(both["model"]["layers_1"]["mlp"]["Wi"]["kernel"],
                          source["model"]["layers_1"]["mlp"]["Wi"]["kernel"])
    assert "model/layers_0/attn/Wqkv/kernel" in check_freeze(source, ["model/layers_0/.*"])

    # a transfer run with frozen layers: the frozen leaves stay the source's
    from trainer.entry import build_trainer

    out = str(tmp_path / "transfer")
    cfg = _cfg(corpus, out, **{"training.max_steps": 2, "schedule.warmup_steps": 1,
                               "model.transfer_from": ckpts, "model.freeze": ["model/layers_0/.*"]})
    result = build_trainer(cfg).run()
    _, after, _, _ = _params(result.checkpoint_dir, 2)
    layer0 = jax.tree.map(np.array_equal, after["model"]["layers_0"], source["model"]["layers_0"])
    assert all(jax.tree.leaves(layer0))
    assert not np.array_equal(after["model"]["layers_1"]["mlp"]["Wi"]["kernel"],
                              source["model"]["layers_1"]["mlp"]["Wi"]["kernel"])


def test_config_errors_name_the_key(corpus, tmp_path):
    from trainer.errors import ConfigError

    with pytest.raises(ConfigError, match="config key 'model.type': expected one of 'roberta', 'bert', 'modernbert'"):
        _cfg(corpus, str(tmp_path), **{"model.type": "gpt"})
    with pytest.raises(ConfigError, match="unknown config key 'model.type_vocab_size'"):
        _cfg(corpus, str(tmp_path), **{"model.type_vocab_size": 2})
    with pytest.raises(ConfigError, match="model.reset_position_embeddings: a modernbert model has rotary"):
        _cfg(corpus, str(tmp_path), **{"model.reset_position_embeddings": True})


# -- fine-tuning heads ------------------------------------------------------------------------------


@pytest.fixture
def hub(loopback_hub, monkeypatch, tmp_path):
    import datasets.config
    import finetune_data as fd
    import huggingface_hub.constants as hf
    from huggingface_hub import HfFileSystem

    ner = lambda n, s: fd.parquet_bytes(fd.ner_rows(n, s), fd.ner_features())  # noqa: E731
    pairs = lambda rows: fd.parquet_bytes(rows, fd.pair_features())  # noqa: E731
    server = loopback_hub({
        **fd.hub_files("me/ner", {"train": ner(200, 1), "validation": ner(80, 2)}),
        **fd.hub_files("me/pairs", {"train": pairs(fd.pair_rows(200, 1)), "validation": pairs(fd.pair_rows(60, 2))}),
    })
    monkeypatch.setattr(hf, "ENDPOINT", server.url)
    monkeypatch.setattr(hf, "HUGGINGFACE_CO_URL_TEMPLATE", server.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", server.url)
    monkeypatch.setattr(datasets.config, "HUB_DATASETS_URL",
                        server.url + "/datasets/{repo_id}/resolve/{revision}/{path}")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    HfFileSystem.clear_instance_cache()
    yield server
    HfFileSystem.clear_instance_cache()


@pytest.fixture(scope="module")
def tiny_modernbert(tmp_path_factory):
    """The synthetic sentences' tokenizer and a random tiny ModernBERT (transformers folder)."""
    import finetune_data as fd
    from transformers import AutoTokenizer

    folder = str(tmp_path_factory.mktemp("tiny-mb"))
    fd.tiny_model_folder(folder)  # its tokenizer (the RoBERTa folder is not used)
    tok = AutoTokenizer.from_pretrained(os.path.join(folder, "tokenizer"))
    spec = dataclasses.replace(SPEC, vocab_size=len(tok), pad_vocab_to_multiple_of=1, pad_token_id=tok.pad_token_id,
                               eos_token_id=tok.eos_token_id, hidden_dropout=0.0)
    out = os.path.join(folder, "modernbert")
    export_pretrained(jax.tree.map(np.asarray, init_params(spec, jax.random.key(0))), spec, out, tokenizer=tok)
    return out


@pytest.mark.parametrize("task, dataset, cls", [("ner", "me/ner", "AutoModelForTokenClassification"),
                                                ("paws-x-512", "me/pairs", "AutoModelForSequenceClassification")])
def test_finetuning_learns_and_exports_with_pytorch_parity(tiny_modernbert, hub, tmp_path, task, dataset, cls):
    import transformers

    from trainer.cli import main
    from trainer.finetune.kinds import get_kind
    from trainer.finetune.loading import load_model

    out = str(tmp_path / "ft")
    rc = main(["finetune", "--model", f"mb={tiny_modernbert}", "--task", task, "--dataset", dataset,
               "--learning-rate", "5e-3", "--epochs", "6" if task == "ner" else "2", "--seeds", "1",
               "--max-length", "64", "--output", out,
               "--no-png", "--export", "--max-reruns", "0"])
    assert rc == 0
    report = json.load(open(os.path.join(out, "results.json")))["models"]["mb"][task]
    if task == "ner":  # the lexicon tagger is learnt (the pairs' smoke run only has to train and export)
        assert report["metrics"]["f1"]["mean"] > 0.6
    folder = os.path.join(out, f"mb-{task}")
    name, ref = _torch_logits(folder, *_head_inputs(folder), cls=getattr(transformers, cls))
    assert name.startswith("ModernBertFor")
    loaded = load_model(folder)
    kind = "token" if task == "ner" else "sequence"
    params = {**loaded.encoder, "classifier": loaded.heads[kind]}
    ids, mask = _head_inputs(folder)
    ours = np.asarray(get_kind(kind).classifier(loaded.spec, len(loaded.id2label)).apply(
        {"params": params}, jnp.asarray(ids), jnp.asarray(mask)))
    if kind == "token":
        real = mask.astype(bool)
        assert np.abs(ours[real] - ref[real]).max() <= 1e-4
    else:
        assert np.abs(ours - ref).max() <= 1e-4


def test_question_answering_and_multiple_choice_exports_match_pytorch(tiny_modernbert, tmp_path):
    """The span and multiple-choice kinds export ModernBertForQuestionAnswering / ForMultipleChoice (the family's
    token / sequence classifier under transformers' names): the same logits from PyTorch, heads read back."""
    import transformers

    from trainer.finetune.kinds import get_kind
    from trainer.finetune.loading import load_model
    from trainer.finetune.run import export_classifier

    loaded = load_model(tiny_modernbert)
    ids, mask = _head_inputs(tiny_modernbert)
    for name, cls, labels in (("span", "AutoModelForQuestionAnswering", ["start", "end"]),
                              ("multiple-choice", "AutoModelForMultipleChoice", ["choice"])):
        kind = get_kind(name)
        shapes = jax.eval_shape(lambda k: kind.init_classifier_params(loaded.spec, len(labels), k),
                                jax.random.key(0))["classifier"]
        rng = np.random.default_rng(3)  # a random head (numpy draws: no compilation of the initialisation)
        head = jax.tree.map(lambda a: rng.normal(0, 0.2, a.shape).astype(np.float32), shapes)
        params = {**loaded.encoder, "classifier": head}
        folder = export_classifier(params, loaded.spec, name, labels, str(tmp_path / name), loaded.tokenizer, "card")
        model, info = getattr(transformers, cls).from_pretrained(folder, output_loading_info=True)
        assert type(model).__name__ == "ModernBert" + kind.architecture_suffix
        assert not info["missing_keys"] and not info["unexpected_keys"], info
        back = load_model(folder)
        params = {**back.encoder, "classifier": back.heads[name]}
        batch_ids, batch_mask = (ids, mask) if name == "span" else (ids[None], mask[None])  # one example, 2 choices
        ours = np.asarray(jax.jit(lambda p, b: kind.logits(kind.classifier(back.spec, len(labels)), p, b, True))(
            params, {"input_ids": jnp.asarray(batch_ids), "attention_mask": jnp.asarray(batch_mask)}))
        with torch.no_grad():
            out = model.eval()(input_ids=torch.tensor(batch_ids), attention_mask=torch.tensor(batch_mask))
        if name == "span":
            real = mask.astype(bool)
            assert np.abs(ours[..., 0] - out.start_logits.numpy())[real].max() <= 1e-4
            assert np.abs(ours[..., 1] - out.end_logits.numpy())[real].max() <= 1e-4
        else:
            assert out.logits.shape == (1, 2) and np.abs(ours - out.logits.numpy()).max() <= 1e-4


def _head_inputs(folder):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    enc = tok(["el perro come pan en la casa grande hoy", "la niña lee"], padding="max_length", max_length=12)
    return np.asarray(enc["input_ids"]), np.asarray(enc["attention_mask"])


def test_continued_pretraining_from_a_transformers_modernbert(corpus, tmp_path):
    """``model.init_from_transformers``: a transformers ModernBERT folder's weights are the run's start."""
    from transformers import AutoTokenizer

    from trainer.train import Trainer

    paths, tok_dir = corpus
    tok = AutoTokenizer.from_pretrained(tok_dir)
    cfg = _cfg(corpus, str(tmp_path / "run"))
    spec = family_of(cfg.model).spec_from_config(cfg.model, len(tok), tok.pad_token_id, tok.eos_token_id, "cpu")
    folder = str(tmp_path / "published")
    params = jax.tree.map(np.asarray, _random_params(spec, 3))
    export_pretrained(params, spec, folder, tokenizer=tok)
    trainer = Trainer(_cfg(corpus, str(tmp_path / "run"), **{"model.init_from_transformers": folder}))
    trainer.setup()
    sd, got = params_to_state_dict(params, spec), params_to_state_dict(jax.device_get(trainer.params), spec)
    assert all(np.array_equal(sd[k], got[k]) for k in sd)
    assert spec.global_attn_every_n_layers == 2  # the config's 3 with 2 layers: only layer 0 is global
    with pytest.raises(Exception, match="global_attn_every_n_layers: folder 2, config 1"):
        Trainer(_cfg(corpus, str(tmp_path / "run2"), **{"model.init_from_transformers": folder,
                                                         "model.global_attn_every_n_layers": 1})).setup()
    with pytest.raises(Exception, match=r"norm_eps: folder 1e-05, config 1e-06 \(set model.norm_eps=1e-05"):
        Trainer(_cfg(corpus, str(tmp_path / "run3"), **{"model.init_from_transformers": folder,
                                                         "model.norm_eps": 1e-6})).setup()


def test_hub_commit_messages_name_the_family(tmp_path):
    from trainer.export import commit_message

    for model_type, title in (("modernbert", "ModernBERT"), ("roberta", "RoBERTa")):
        (tmp_path / "config.json").write_text(json.dumps({"model_type": model_type}))
        assert commit_message(str(tmp_path), "Upload {family} MLM from mc4-sampling trainer") == \
            f"Upload {title} MLM from mc4-sampling trainer"
