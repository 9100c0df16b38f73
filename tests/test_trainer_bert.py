"""The BERT family: logit parity with transformers' BertForPreTraining / BertForMaskedLM / token and sequence
classification in both directions (token types, right padding), MultiBERTs' checkpoint names."""

from __future__ import annotations

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from trainer_helpers import tiny_overrides  # noqa: E402

from trainer.models import family_of, get_family  # noqa: E402
from trainer.models.bert import BertForClassification, BertForPreTraining, BertSpec, init_params  # noqa: E402
from trainer.models.bert_hf import (  # noqa: E402
    classifier_to_state_dict,
    encoder_from_state_dict,
    export_pretrained,
    head_from_state_dict,
    import_pretrained,
    params_to_state_dict,
    read_state_dict,
)

SPEC = BertSpec(vocab_size=100, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=48,
                max_position_embeddings=48, dtype="float32", attention_impl="xla", pad_token_id=0,
                pad_vocab_to_multiple_of=64, hidden_dropout=0.0, attention_dropout=0.0)


def _random_params(spec, seed=0):
    """init_params moved off its initial values (LayerNorm scales and biases not 1 / 0, biases not 0)."""
    params = init_params(spec, jax.random.key(seed))
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    return jax.tree.unflatten(tree, [a + 0.05 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)])


def _inputs(vocab: int, length: int = 30):
    """Two rows ``[CLS] A [SEP] B [SEP]`` with token types 0/1; the second right-padded after 22 tokens."""
    ids = np.random.default_rng(0).integers(5, vocab, (2, length))
    types = np.zeros_like(ids)
    types[0, 12:] = 1
    types[1, 9:22] = 1
    mask = np.ones_like(ids)
    mask[1, 22:] = 0
    ids[1, 22:] = 0
    return ids, types, mask


def _torch_out(model, ids, types, mask):
    with torch.no_grad():
        return model.eval()(input_ids=torch.tensor(ids), token_type_ids=torch.tensor(types),
                            attention_mask=torch.tensor(mask))


def _flax_pretraining(spec, params, ids, types, mask):
    mlm, nsp = BertForPreTraining(spec).apply({"params": params}, jnp.asarray(ids), jnp.asarray(mask),
                                              token_type_ids=jnp.asarray(types), next_sentence=True)
    return np.asarray(mlm)[..., : spec.vocab_size], np.asarray(nsp)


def _close(ours, ref, mask):
    """Max |difference| over the real (unpadded) tokens."""
    m = mask.astype(bool)
    return max(np.abs(ours[0] - ref[0]).max(), np.abs(ours[1][m[1]] - ref[1][m[1]]).max())


def test_export_gives_pytorch_logits_and_imports_back(tmp_path):
    from transformers import AutoModelForMaskedLM, BertForPreTraining as TorchPT

    params = _random_params(SPEC)
    folder = str(tmp_path / "out")
    export_pretrained(jax.tree.map(np.asarray, params), SPEC, folder)
    ids, types, mask = _inputs(SPEC.vocab_size)
    ours_mlm, ours_nsp = _flax_pretraining(SPEC, params, ids, types, mask)
    ref = _torch_out(TorchPT.from_pretrained(folder, attn_implementation="eager"), ids, types, mask)
    assert _close(ours_mlm, ref.prediction_logits.numpy(), mask) <= 1e-4
    assert np.abs(ours_nsp - ref.seq_relationship_logits.numpy()).max() <= 1e-4
    mlm_only = AutoModelForMaskedLM.from_pretrained(folder, attn_implementation="sdpa")
    assert type(mlm_only).__name__ == "BertForMaskedLM"
    assert _close(ours_mlm, _torch_out(mlm_only, ids, types, mask).logits.numpy(), mask) <= 1e-4
    spec, back = import_pretrained(folder, pad_vocab_to_multiple_of=64, dtype="float32", attention_impl="xla",
                                   hidden_dropout=0.0, attention_dropout=0.0)
    assert spec == SPEC
    sd, sd_back = params_to_state_dict(params, SPEC), params_to_state_dict(back, spec)
    assert sd.keys() == sd_back.keys() and all(np.array_equal(sd[k], sd_back[k]) for k in sd)


def _torch_bert(cls, **extra):
    from transformers import BertConfig

    torch.manual_seed(0)
    config = BertConfig(vocab_size=90, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=40, max_position_embeddings=40, type_vocab_size=2, pad_token_id=0, **extra)
    model = cls(config)
    with torch.no_grad():  # LayerNorm parameters and biases off 1 / 0
        for name, p in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                p.add_(0.1 * torch.randn_like(p))
    return model


def test_a_transformers_bert_for_pretraining_imports_with_its_logits(tmp_path):
    """A random BertForPreTraining saved by transformers (as a MultiBERTs checkpoint) read back gives its masked-LM
    and next-sentence logits; a BertForMaskedLM folder imports too, its pooler and NSP head random."""
    from transformers import BertForMaskedLM as TorchMLM, BertForPreTraining as TorchPT

    model = _torch_bert(TorchPT)
    folder = str(tmp_path / "hf")
    model.save_pretrained(folder)
    spec, params = import_pretrained(folder, dtype="float32", attention_impl="xla")
    assert spec.vocab_size == 90 and spec.type_vocab_size == 2 and spec.max_position_embeddings == 40
    ids, types, mask = _inputs(90, 28)
    ref = _torch_out(model, ids, types, mask)
    mlm, nsp = _flax_pretraining(spec, params, ids, types, mask)
    assert _close(mlm, ref.prediction_logits.numpy(), mask) <= 1e-4
    assert np.abs(nsp - ref.seq_relationship_logits.numpy()).max() <= 1e-4

    mlm_model = _torch_bert(TorchMLM)
    mfolder = str(tmp_path / "mlm")
    mlm_model.save_pretrained(mfolder)
    spec, params = import_pretrained(mfolder, dtype="float32", attention_impl="xla")
    mlm, _ = _flax_pretraining(spec, params, ids, types, mask)
    assert _close(mlm, _torch_out(mlm_model, ids, types, mask).logits.numpy(), mask) <= 1e-4


def test_tf_era_names_are_read():
    """MultiBERTs-era names (LayerNorm gamma/beta, the decoder's bias, a bare BertModel) read as today's."""
    import tempfile

    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory() as d:
        save_file({"embeddings.LayerNorm.gamma": np.ones(4, np.float32),
                   "embeddings.LayerNorm.beta": np.zeros(4, np.float32),
                   "cls.predictions.decoder.bias": np.arange(3, dtype=np.float32)}, f"{d}/model.safetensors")
        sd = read_state_dict(d)
    assert set(sd) == {"bert.embeddings.LayerNorm.weight", "bert.embeddings.LayerNorm.bias",
                       "cls.predictions.decoder.bias", "cls.predictions.bias"}


@pytest.mark.parametrize("per_token", [True, False])
def test_classifiers_match_pytorch_both_ways(per_token):
    """BertForTokenClassification (no pooler) / BertForSequenceClassification (pooler): a transformers model's
    weights give its logits in Flax, and the Flax params' state dict loads back into transformers exactly."""
    from transformers import BertForSequenceClassification, BertForTokenClassification

    model = _torch_bert(BertForTokenClassification if per_token else BertForSequenceClassification, num_labels=3)
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    spec = dataclasses.replace(SPEC, vocab_size=90, max_position_embeddings=40, num_heads=2, intermediate_size=40,
                               pad_vocab_to_multiple_of=1)
    family = get_family("bert")
    assert family_of(spec) is family and family.hf_architecture_prefix + "ForTokenClassification" == \
        type(_torch_bert(BertForTokenClassification, num_labels=3)).__name__
    params = {**encoder_from_state_dict(sd, spec), "classifier": head_from_state_dict(sd, per_token)}
    assert ("pooler" in params) == (not per_token)
    ids, types, mask = _inputs(90, 28)
    ours = np.asarray(BertForClassification(spec, 3, per_token).apply(
        {"params": params}, jnp.asarray(ids), jnp.asarray(mask), token_type_ids=jnp.asarray(types)))
    ref = _torch_out(model, ids, types, mask).logits.numpy()
    assert (_close(ours, ref, mask) if per_token else np.abs(ours - ref).max()) <= 1e-4
    back = classifier_to_state_dict(params, spec, per_token)
    expected = {k for k in sd if not k.endswith("position_ids")}
    assert set(back) == expected
    assert all(np.array_equal(back[k], sd[k]) for k in back)


@pytest.mark.parametrize("kind_name, cls_name", [("span", "BertForQuestionAnswering"),
                                                ("multiple-choice", "BertForMultipleChoice")])
def test_question_answering_and_multiple_choice_heads_match_pytorch_both_ways(kind_name, cls_name):
    """The span and multiple-choice kinds on BERT: transformers' weights, renamed by the family's hf_task_heads,
    give its logits through the kind's forward pass, and the kind's state dict is transformers' again."""
    import transformers

    from trainer.finetune.kinds import get_kind
    from trainer.finetune.kinds.base import rename_prefixes

    kind = get_kind(kind_name)
    model = _torch_bert(getattr(transformers, cls_name), num_labels=2)
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    spec = dataclasses.replace(SPEC, vocab_size=90, max_position_embeddings=40, num_heads=2, intermediate_size=40,
                               pad_vocab_to_multiple_of=1)
    assert kind.architecture(spec) == cls_name
    ours_names = rename_prefixes(sd, {theirs: ours for ours, theirs in kind.head_names(spec).items()})
    params = {**encoder_from_state_dict(ours_names, spec), "classifier": head_from_state_dict(ours_names,
                                                                                            kind.per_token)}
    ids, types, mask = _inputs(90, 28)
    types[:] = 0  # the kinds' batches carry no token types
    labels = 2 if kind_name == "span" else 1
    batch = {"input_ids": jnp.asarray(ids if kind_name == "span" else ids[None]),
             "attention_mask": jnp.asarray(mask if kind_name == "span" else mask[None])}
    ours = np.asarray(kind.logits(kind.classifier(spec, labels), params, batch, True))
    with torch.no_grad():
        out = model.eval()(input_ids=torch.tensor(np.asarray(batch["input_ids"])),
                           attention_mask=torch.tensor(np.asarray(batch["attention_mask"])))
    if kind_name == "span":
        m = mask.astype(bool)
        assert np.abs(ours[..., 0] - out.start_logits.numpy())[m].max() <= 1e-4
        assert np.abs(ours[..., 1] - out.end_logits.numpy())[m].max() <= 1e-4
    else:
        assert out.logits.shape == (1, 2) and np.abs(ours - out.logits.numpy()).max() <= 1e-4
    back = kind.state_dict(params, spec)
    assert set(back) == {k for k in sd if not k.endswith("position_ids")}
    assert all(np.array_equal(back[k], sd[k]) for k in back)


# -- EarlyBERTs in one command: a tiny suite from MultiBERTs-style step-0 checkpoints on a loopback Hub -----------


def _torch_init(seed: int, vocab: int, folder: str) -> str:
    """A random BertForPreTraining (the step-0 checkpoint of MultiBERTs seed ``seed``), saved by transformers."""
    from transformers import BertConfig, BertForPreTraining as TorchPT

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=40, pad_token_id=0,
                        architectures=["BertForPreTraining"])
    TorchPT(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def earlyberts(tmp_path_factory):
    """``trainer suite --config earlyberts-base --seeds 2 --init-from 'google/multiberts-seed_{seed}-step_0k'``, tiny
    (masked LM + next-sentence prediction, two steps, checkpoints at 1 and 2, revisions step1 and step2): the
    step-0 checkpoints are random BertForPreTraining folders served by a loopback Hub."""
    import huggingface_hub.constants as hf
    from loopback_hub import LoopbackHub
    from trainer_helpers import make_corpus

    from trainer.data.tokenizer import train_wordpiece
    from trainer.models.hf_folder import multiberts_id
    from trainer.research.suite import run_suite

    tmp = tmp_path_factory.mktemp("earlyberts")
    paths = make_corpus(str(tmp / "corpus"), n_docs=80, n_files=1)
    texts = [json.loads(line)["text"] for line in open(paths[0], encoding="utf-8")]
    tok = train_wordpiece(texts, str(tmp / "wordpiece"), vocab_size=300, min_frequency=2, model_max_length=40)
    hub = LoopbackHub()
    mp = pytest.MonkeyPatch()
    mp.setenv("HF_ENDPOINT", hub.url)
    mp.setattr(hf, "HF_HUB_CACHE", str(tmp / "hub-cache"))
    mp.setattr(hf, "ENDPOINT", hub.url)
    mp.setattr(hf, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    inits = {}
    for seed in (0, 1):
        folder = _torch_init(seed, len(tok), str(tmp / f"init{seed}"))
        hub.add_files(multiberts_id(seed, 0), {name: os.path.join(folder, name) for name in os.listdir(folder)})
        inits[seed] = read_state_dict(folder)
    overrides = tiny_overrides(paths, str(tmp / "wordpiece"), str(tmp / "suite"), **{
        "model.dtype": "float32", "model.vocab_size": None, "model.intermediate_size": 64, "model.num_layers": 1,
        "model.hidden_dropout": 0.0, "model.attention_dropout": 0.0, "training.max_steps": 2,
        "training.eval_every_steps": 2, "data.num_eval_samples": 8, "schedule.warmup_steps": 1,
        "training.max_predictions_per_seq": 8, "checkpoint.schedule": [1, 2], "checkpoint.every_steps": 1,
        "hub.push_to_hub": "me/earlyberts"})
    results = run_suite("earlyberts-base", overrides, 2, init_from="google/multiberts-seed_{seed}-step_0k")
    yield results, inits, hub, overrides
    mp.undo()
    hub.close()


def test_earlyberts_suite_from_multiberts_step0_on_the_hub(earlyberts):
    """Each seed starts from its own step-0 checkpoint, trains masked LM + NSP (both logged and evaluated), pushes
    its scheduled steps as revisions ``step{N}`` of its repository, and a revision reads back as ``repo@step{N}``."""
    from trainer.models.hf_folder import model_folder
    from trainer.monitor import read_metrics

    results, inits, hub, _ = earlyberts
    assert [r.step for r in results] == [2, 2]
    key = "bert.encoder.layer.0.output.dense.weight"
    for seed, r in enumerate(results):
        assert hub.repo_branches(f"me/earlyberts-seed{seed}") == ["main", "step1", "step2"]
        # step 1 ran at the warm-up's learning rate 0; step 2 is one AdamW step (lr 1e-4) from the seed's step 0
        step2 = read_state_dict(os.path.join(r.output_dir, "revisions", "step2"))
        for name in (key, "cls.seq_relationship.weight", "bert.embeddings.token_type_embeddings.weight"):
            assert 0 < np.abs(step2[name] - inits[seed][name]).max() < 1e-3, name  # the NSP head trains too
        assert np.abs(step2[key] - inits[1 - seed][key]).max() > 0.04  # not from the other seed's
        m = read_metrics(os.path.join(r.output_dir, "metrics.jsonl"))[2]
        assert 0.3 < m["nsp_loss"] < 1.2 and 0.0 <= m["nsp_accuracy"] <= 1.0
        ev = r.eval_history[-1]
        assert ev["nsp_pairs"] > 0 and 0.3 < ev["nsp_loss"] < 1.2 and ev["masked_tokens"] > 0
    back = read_state_dict(model_folder("me/earlyberts-seed1@step1", "model.init_from_transformers"))
    np.testing.assert_array_equal(back[key], read_state_dict(os.path.join(results[1].output_dir, "revisions",
                                                                           "step1"))[key])


def test_nsp_stream_resumes_exactly(earlyberts):
    """The NSP batch stream resumed from any batch's position gives the following batches bit for bit (the pending
    labelled rows travel in the position); rows are [CLS] A [SEP] B [SEP] with their label last."""
    from trainer.config_loading import load_config
    from trainer.data.batches import BatchStream, StreamPosition
    from trainer.data.tokenizer import load_tokenizer

    _, _, _, overrides = earlyberts
    cfg = load_config("earlyberts-base", overrides + ["data.num_eval_samples=0", "data.tokenize_batch_size=7"])
    tok = load_tokenizer(cfg.data.tokenizer)
    stream = BatchStream(cfg.data, tok, 4, 0, nsp=True)
    run = [b for _, b in zip(range(12), stream.batches())]
    assert run[0].tokens.shape == (4, 33) and set(np.unique(np.concatenate([b.tokens[:, -1] for b in run]))) == {0, 1}
    assert (run[0].tokens[:, 0] == tok.cls_token_id).all() and ((run[0].tokens[:, :-1] == tok.sep_token_id).sum(1)
                                                                 == 2).all()
    for k in (2, 5):
        position = StreamPosition.from_json(json.loads(json.dumps(run[k].position.to_json())))
        again = [b for _, b in zip(range(12 - k - 1), BatchStream(cfg.data, tok, 4, 0, nsp=True).batches(position))]
        assert [b.digest for b in again] == [b.digest for b in run[k + 1:]]


def test_nsp_bad_input(earlyberts, tmp_path):
    """An NSP objective with a family without an NSP head, and documents too short to form pairs: one line each."""
    from trainer.config_loading import load_config
    from trainer.data.batches import BatchStream
    from trainer.data.tokenizer import load_tokenizer
    from trainer.errors import ConfigError, DataError

    _, _, _, overrides = earlyberts
    with pytest.raises(ConfigError, match=r"training.objective 'mlm\+nsp' needs a model with a next-sentence head; "
                                          r"model.type 'roberta' \(RoBERTa\) has none"):
        load_config("tiny-cpu", ["training.objective=mlm+nsp"])
    with pytest.raises(ConfigError, match="'data.nsp_segments': expected one of 'sentences', 'lines', got 'words'"):
        load_config("earlyberts-base", ["data.nsp_segments=words"])  # the loader names the choices
    short = tmp_path / "short.jsonl"
    short.write_text("".join(json.dumps({"text": f"Una sola frase {i}"}) + "\n" for i in range(30)))
    cfg = load_config("earlyberts-base", overrides + [f"data.data_files={json.dumps([str(short)])}",
                                                      "data.num_eval_samples=0", "data.shuffle_buffer=10"])
    wordpiece = [o.split("=", 1)[1] for o in overrides if o.startswith("data.tokenizer=")][0]
    stream = BatchStream(cfg.data, load_tokenizer(json.loads(wordpiece)), 4, 0, nsp=True)
    with pytest.raises(DataError, match=r"10 documents skipped \(fewer than 2 sentences: no pair can be formed\)"):
        next(stream.batches())


def test_wordpiece_tokenizer_and_the_family_check(tmp_path):
    """`trainer tokenizer --type wordpiece` gives BERT's specials, normalisation and pair framing; a WordPiece
    tokenizer is refused by a RoBERTa config and a byte-level BPE one by a BERT config, one line each."""
    from trainer.cli import build_parser
    from trainer.config_loading import load_config
    from trainer.data.tokenizer import TokenizerFns, train_tokenizer, train_wordpiece
    from trainer.errors import ConfigError
    from trainer.run_setup import build_spec

    texts = ["El Árbol grande come pan.", "La niña lee un libro hoy.", "Mañana canta el gato."] * 20
    wp = train_wordpiece(texts, str(tmp_path / "wp"), vocab_size=300, min_frequency=1, model_max_length=40)
    assert wp.convert_ids_to_tokens(range(5)) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    enc = wp("El ÁRBOL", "lee")
    assert wp.convert_ids_to_tokens(enc["input_ids"]) == ["[CLS]", "el", "arbol", "[SEP]", "lee", "[SEP]"]
    assert enc["token_type_ids"] == [0, 0, 0, 0, 1, 1]
    bpe = train_tokenizer(texts, str(tmp_path / "bpe"), vocab_size=300, min_frequency=1, model_max_length=40)
    fns = TokenizerFns(wp)
    assert (fns.bos_id, fns.eos_id, fns.pad_id, fns.mask_id, fns.is_wordpiece) == (2, 3, 0, 4, True)
    small = ["model.hidden_size=32", "model.num_layers=1", "model.num_heads=2", "model.intermediate_size=32",
             "model.max_position_embeddings=40", "data.max_seq_length=32"]
    with pytest.raises(ConfigError, match=r"is a WordPiece tokenizer; model.type 'roberta' \(RoBERTa\) is trained "
                                          r"with a byte-level BPE"):
        build_spec(load_config("tiny-cpu", small + [f"data.tokenizer={tmp_path / 'wp'}"]), fns)
    with pytest.raises(ConfigError, match=r"is a BPE tokenizer; model.type 'bert' \(BERT\) is trained with a "
                                          r"WordPiece one"):
        build_spec(load_config("earlyberts-base", small + ["model.vocab_size=null"]), TokenizerFns(bpe))
    spec = build_spec(load_config("earlyberts-base", small + ["model.vocab_size=null"]), fns)
    assert spec.vocab_size == len(wp) and spec.pad_token_id == 0
    args = build_parser().parse_args(["tokenizer", "--config", "tiny-cpu", "--output", "x", "--type", "wordpiece",
                                      "--cased"])
    assert (args.type, args.cased, args.vocab_size) == ("wordpiece", True, None)


def test_earlyberts_config_is_multiberts_recipe():
    from trainer.config_loading import load_config
    from trainer.research.checkpoint_schedule import EARLYBERTS_STEPS, resolve_schedule

    cfg = load_config("earlyberts-base")
    m, t = cfg.model, cfg.training
    assert m.type == "bert" and (m.hidden_size, m.num_layers, m.num_heads, m.intermediate_size) == (768, 12, 12, 3072)
    assert (m.vocab_size, m.max_position_embeddings, m.type_vocab_size) == (30522, 512, 2)
    assert (cfg.data.max_seq_length, t.global_batch_size, t.max_steps) == (512, 256, 2_000_000)
    assert (t.objective, t.mlm_probability, t.max_predictions_per_seq) == ("mlm+nsp", 0.15, 80)
    assert (cfg.optimizer.learning_rate, cfg.optimizer.b2, cfg.schedule.warmup_steps) == (1e-4, 0.999, 10_000)
    assert resolve_schedule(cfg.checkpoint.schedule) == list(EARLYBERTS_STEPS)
