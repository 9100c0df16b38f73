"""Throughput and memory work on the trainer: random replacements, padding lengths, vocabulary
padding, the LM head on masked positions only, remat, accumulation from the per-device batch,
the memory check, the throughput clock."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainer.masking import default_max_predictions, mask_tokens, random_token_ids
from trainer.models.layers import mlm_loss_sums
from trainer.models.roberta import RobertaForMaskedLM, RobertaSpec, init_params, padding_lengths
from trainer.steps import MaskingRule, gather_predictions, make_eval_step, make_train_step, run_keys

SPECIALS = (0, 1, 2, 3, 4)
SPEC = RobertaSpec(vocab_size=97, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                   max_position_embeddings=40, hidden_dropout=0.0, dtype="float32", attention_impl="xla")


# -- 1a: random replacements ------------------------------------------------------------------


def test_random_replacements_never_draw_specials_and_are_uniform():
    vocab, exclude = 300, SPECIALS + (150, 299)  # an added special in the middle and one at the end
    ids = np.full((256, 512), 10, np.int32)
    # every token selected and replaced by a random one: 131 072 draws over 293 allowed ids
    inputs, _, weights = mask_tokens(jax.random.key(0), jnp.asarray(ids), special_ids=SPECIALS, mask_id=4,
                                     vocab_size=vocab, mlm_probability=0.999999, mask_replace_prob=0.0,
                                     random_replace_prob=1.0, random_exclude=exclude)
    drawn = np.asarray(inputs)[np.asarray(weights) > 0]
    assert drawn.size > 130_000
    assert not np.isin(drawn, exclude).any() and drawn.min() >= 0 and drawn.max() < vocab
    allowed = np.setdiff1d(np.arange(vocab), exclude)
    counts = np.bincount(drawn, minlength=vocab)[allowed]
    expected = drawn.size / len(allowed)
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    df = len(allowed) - 1
    assert chi2 < df + 5 * np.sqrt(2 * df)  # 5 sigma above the chi-square mean (about 413)
    assert (counts > 0).all()
    # without exclusions the specials do come up (the test above is not vacuous)
    plain = np.asarray(random_token_ids(jax.random.key(1), (100_000,), vocab))
    assert np.isin(plain, SPECIALS).any()


def test_trainer_rule_draws_from_the_tokenizer_vocabulary_without_specials():
    from trainer.config import TrainerConfig
    from trainer.masking import masking_rule

    class Tok:
        special_ids, mask_id, vocab_size = SPECIALS, 4, 97

    cfg = TrainerConfig()
    rule = masking_rule(cfg, Tok())
    assert rule.vocab_size == 97 and rule.random_exclude == SPECIALS  # not the model's padded 128 rows
    assert rule.max_predictions == default_max_predictions(128, 0.15) == 48
    cfg.training.random_replace_excludes_specials = False
    cfg.training.max_predictions_per_seq = 0
    rule = masking_rule(cfg, Tok())
    assert rule.random_exclude == () and rule.max_predictions is None
    assert default_max_predictions(512, 0.15) == 128 and default_max_predictions(16, 0.5) == 16


# -- 1b: padding lengths for the fused attention kernel ---------------------------------------


def test_padding_lengths_right_left_and_empty_rows():
    mask = jnp.asarray([[1, 1, 1, 0, 0],   # right padding
                        [1, 1, 1, 1, 1],   # none
                        [0, 0, 1, 1, 1],   # left padding: sum(mask) would be wrong
                        [1, 0, 1, 0, 0],   # a hole
                        [0, 0, 0, 0, 0]])  # all padding: length 0 would give NaN
    lengths, right = padding_lengths(mask)
    assert lengths.tolist() == [3, 5, 3, 2, 1]
    assert right.tolist() == [True, True, False, False, True]


def test_eval_with_an_all_padding_row_is_finite_and_unchanged():
    params = init_params(SPEC, jax.random.key(0))
    rule = MaskingRule(SPECIALS, 4, 97, 0.3, 0.8, 0.1, SPECIALS, 16)
    ids = np.array(jax.random.randint(jax.random.key(2), (4, 24), 5, 97), np.int32)
    ids[:, 0] = 0
    ids[1, 15:] = 1  # right-padded
    ids[3] = 1  # padding only
    inputs, labels, weights = rule.apply(jax.random.key(3), jnp.asarray(ids))
    eval_step = jax.jit(make_eval_step(SPEC, 1, 16))
    sums = np.asarray(eval_step(params, inputs, labels, weights))
    assert np.isfinite(sums).all()
    first3 = np.asarray(eval_step(params, inputs[:3], labels[:3], weights[:3]))
    np.testing.assert_allclose(sums, first3, rtol=1e-6)
    full = np.asarray(jax.jit(make_eval_step(SPEC, 1, None))(params, inputs, labels, weights))
    np.testing.assert_allclose(sums, full, rtol=1e-5)  # the gathered head gives the full head's sums


# -- 1c / 3: export with a padded vocabulary --------------------------------------------------


def test_padded_vocabulary_exports_the_real_one_with_the_same_logits(tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForMaskedLM

    from trainer.models.roberta_hf import export_pretrained, import_pretrained

    spec = dataclasses.replace(SPEC, pad_vocab_to_multiple_of=128)
    assert spec.padded_vocab_size == 128
    params = init_params(spec, jax.random.key(0))
    assert params["embeddings"]["word_embeddings"]["embedding"].shape == (128, 32)
    assert params["lm_head"]["bias"].shape == (128,)
    params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(p.size), p.shape), params)
    params["lm_head"]["bias"] = params["lm_head"]["bias"].at[97:].set(1e4)  # padded rows must never win
    export_pretrained(params, spec, str(tmp_path))
    model = AutoModelForMaskedLM.from_pretrained(str(tmp_path)).eval()
    assert model.config.vocab_size == 97
    ids = np.random.default_rng(0).integers(5, 97, size=(3, 20)).astype(np.int64)
    ids[:, 0] = 0
    ids[1, 15:] = 1
    mask = (ids != 1).astype(np.int64)
    ours = np.asarray(RobertaForMaskedLM(spec).apply({"params": params}, jnp.asarray(ids, jnp.int32),
                                                      jnp.asarray(mask, jnp.int32)))
    assert ours.shape == (3, 20, 128)
    with torch.no_grad():
        theirs = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()
    assert np.abs(ours[..., :97] - theirs)[mask.astype(bool)].max() <= 1e-4
    assert (ours.argmax(-1) < 97).all() and (ours[..., 97:] == np.finfo(np.float32).min).all()
    # and back: a 97-row folder imported into the padded model
    spec2, params2 = import_pretrained(str(tmp_path), dtype="float32", attention_impl="xla",
                                       pad_vocab_to_multiple_of=128)
    assert params2["embeddings"]["word_embeddings"]["embedding"].shape == (128, 32)
    np.testing.assert_array_equal(params2["lm_head"]["bias"][:97], np.asarray(params["lm_head"]["bias"][:97]))


def test_exported_tokenizer_holds_the_model_length(tmp_path):
    from trainer_helpers import make_corpus, make_tokenizer

    from trainer.models.roberta_hf import export_pretrained

    paths = make_corpus(str(tmp_path / "corpus"), n_docs=60, n_files=1)
    tok_dir = make_tokenizer(str(tmp_path / "tok"), paths, vocab_size=300)  # saved with model_max_length 64
    spec = dataclasses.replace(SPEC, vocab_size=300, max_position_embeddings=40)
    export_pretrained(init_params(spec, jax.random.key(0)), spec, str(tmp_path / "out"), tokenizer_dir=tok_dir)
    saved = json.loads((tmp_path / "out" / "tokenizer_config.json").read_text())
    assert saved["model_max_length"] == 40 - 1 - 1


def test_checkpoints_without_the_padding_field_read_as_unpadded():
    from trainer.checkpoint import check_compatible, spec_to_meta
    from trainer.errors import CheckpointError

    old = {k: v for k, v in spec_to_meta(SPEC).items() if k != "pad_vocab_to_multiple_of"}
    check_compatible(old, SPEC, "old")
    with pytest.raises(CheckpointError, match="pad_vocab_to_multiple_of: checkpoint 1, config 128"):
        check_compatible(old, dataclasses.replace(SPEC, pad_vocab_to_multiple_of=128), "old")


# -- 4 / 5: the gathered head and remat give the full computation's loss and gradients -----------


def _loss_and_grads(spec, params, inputs, labels, weights, max_predictions):
    model = RobertaForMaskedLM(spec)

    def loss(p):
        positions, lab, w = gather_predictions(labels, weights, max_predictions)
        logits = model.apply({"params": p}, inputs, deterministic=True, predict_positions=positions)
        return mlm_loss_sums(logits, lab, w)[0]

    return jax.jit(jax.value_and_grad(loss))(params)


@pytest.mark.parametrize("pad", [1, 128])
def test_head_on_masked_positions_gives_the_full_loss_and_gradients(pad):
    spec = dataclasses.replace(SPEC, pad_vocab_to_multiple_of=pad)
    params = init_params(spec, jax.random.key(0))
    ids = jax.random.randint(jax.random.key(1), (6, 32), 5, 97)
    P = default_max_predictions(32, 0.15)
    inputs, labels, weights = mask_tokens(jax.random.key(2), ids, special_ids=SPECIALS, mask_id=4, vocab_size=97,
                                          random_exclude=SPECIALS, max_predictions=P)
    assert 0 < int(np.asarray(weights).sum(-1).max()) <= P
    full_loss, full_grads = _loss_and_grads(spec, params, inputs, labels, weights, None)
    loss, grads = _loss_and_grads(spec, params, inputs, labels, weights, P)
    np.testing.assert_allclose(float(loss), float(full_loss), rtol=1e-5)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(full_grads), jax.tree.leaves(grads)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7, err_msg=str(path))
    if pad > 1:  # the padding rows get no gradient
        assert not np.asarray(grads["embeddings"]["word_embeddings"]["embedding"][97:]).any()


def test_train_step_with_the_gathered_head_equals_the_full_head():
    from trainer.config import TrainerConfig
    from trainer.optim import make_optimizer, schedule_fn

    cfg = TrainerConfig()
    cfg.schedule = dataclasses.replace(cfg.schedule, warmup_steps=0)
    tx = make_optimizer(cfg)
    tokens = jax.random.randint(jax.random.key(0), (2, 4, 32), 5, 97)
    params = init_params(SPEC, jax.random.key(1))
    out = {}
    for P in (None, 24, 32):  # no head cap (and no masking cap) / the default bound / the whole row
        rule = MaskingRule(SPECIALS, 4, 97, 0.15, 0.8, 0.1, SPECIALS, P)
        step = jax.jit(make_train_step(SPEC, tx, schedule_fn(cfg), rule, run_keys(0).step))
        out[P] = step(params, tx.init(params), 0, tokens)
    for P in (24, 32):
        assert float(out[P][2]["masked_tokens"]) == float(out[None][2]["masked_tokens"])
        np.testing.assert_allclose(float(out[P][2]["loss"]), float(out[None][2]["loss"]), rtol=1e-5)
        for a, b in zip(jax.tree.leaves(out[None][0]), jax.tree.leaves(out[P][0])):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)


def test_remat_gives_the_same_loss_and_gradients():
    params = init_params(SPEC, jax.random.key(0))
    remat = dataclasses.replace(SPEC, remat="full")
    assert jax.tree.structure(init_params(remat, jax.random.key(0))) == jax.tree.structure(params)
    ids = jax.random.randint(jax.random.key(1), (4, 32), 5, 97)
    inputs, labels, weights = mask_tokens(jax.random.key(2), ids, special_ids=SPECIALS, mask_id=4, vocab_size=97)
    a_loss, a_grads = _loss_and_grads(SPEC, params, inputs, labels, weights, 24)
    b_loss, b_grads = _loss_and_grads(remat, params, inputs, labels, weights, 24)
    np.testing.assert_allclose(float(b_loss), float(a_loss), rtol=1e-6)
    for a, b in zip(jax.tree.leaves(a_grads), jax.tree.leaves(b_grads)):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-7)


# -- 2: the step clock excludes eval and checkpoint hooks -------------------------------------


def test_throughput_pauses_the_step_clock_around_non_step_hooks():
    from trainer.throughput import Throughput

    now = [0.0]
    synced = []
    tp = Throughput(1000, mfu_of=lambda tps: tps / 1e6, clock=lambda: now[0], sync=synced.append)
    with tp.paused("m0"):  # before the first step: nothing to exclude
        now[0] += 50.0
    tp.stepped("m1")  # the compiling step starts the clock at t = 50
    assert synced == ["m1"]
    for _ in range(4):  # 4 steps of 0.5 s, 0.1 s of it waiting for the batch
        t0 = now[0]

        def slow_batches():
            now[0] += 0.1
            yield None

        tp.next_batch(slow_batches())
        now[0] = t0 + 0.5
        tp.stepped("m")
    with tp.paused("m4"):  # an evaluation of 3 s
        now[0] += 3.0
    assert synced[-1] == "m4"  # the steps still on the device count as step time
    r = tp.read()
    assert r["tokens_per_second"] == pytest.approx(4000 / 2.0)
    assert r["tokens_per_second_wall"] == pytest.approx(4000 / 5.0)
    assert r["mfu"] == pytest.approx(2e-3) and r["mfu_wall"] == pytest.approx(8e-4)
    assert r["input_wait_fraction"] == pytest.approx(0.2)
    tp.stepped("m")
    now[0] += 1.0
    assert tp.read()["tokens_per_second"] == pytest.approx(1000.0)  # a new interval, no pause left over


def test_flops_convention_counts_the_head_on_the_predicted_fraction():
    from trainer.flops import flops_per_token, predicted_fraction

    base = RobertaSpec(vocab_size=50265)
    assert predicted_fraction(None, 0.15) == 1.0 and predicted_fraction(48, 0.15) == 0.15
    assert flops_per_token(base, 128) == pytest.approx(759e6, rel=2e-3)
    assert flops_per_token(base, 128, 0.15) == pytest.approx(559e6, rel=2e-3)
    head = 6 * (768 ** 2 + 50265 * 768)
    assert flops_per_token(base, 128) - flops_per_token(base, 128, 0.15) == pytest.approx(0.85 * head)
    # the padding rows are not needed FLOPs
    assert flops_per_token(dataclasses.replace(base, pad_vocab_to_multiple_of=128), 128) == flops_per_token(base, 128)


# -- 5: accumulation from the per-device batch, the memory check --------------------------------


def test_per_device_batch_size_sets_the_accumulation():
    from trainer.config_loading import load_config
    from trainer.errors import ConfigError
    from trainer.run_setup import accumulation_steps, check_devices

    cfg = load_config("roberta-base-128", ["training.per_device_batch_size=256"])
    assert accumulation_steps(cfg, 1) == 8 and check_devices(cfg, 1, 1) == 256
    assert accumulation_steps(cfg, 4) == 2 and check_devices(cfg, 4, 1) == 1024
    with pytest.raises(ConfigError, match="not a multiple of training.per_device_batch_size"):
        accumulation_steps(cfg, 3)
    cfg = load_config("roberta-base-128", ["training.per_device_batch_size=null", "training.grad_accum_steps=4"])
    assert accumulation_steps(cfg, 2) == 4 and check_devices(cfg, 2, 1) == 512
    with pytest.raises(ConfigError, match="either training.per_device_batch_size"):
        load_config("roberta-base-128", ["training.per_device_batch_size=128", "training.grad_accum_steps=2"])


def test_memory_check_decides_on_the_estimate_and_the_limit():
    from trainer.errors import ConfigError
    from trainer.memory import GiB, check_fits, compiled_bytes, device_limit

    est = {"arguments": 2 * GiB, "outputs": 2 * GiB, "aliased": 2 * GiB, "temporaries": 60 * GiB, "code": 0,
           "total": 62 * GiB}
    kw = dict(per_device_batch_size=256, accum=8, seq_len=128)
    assert "of 80.0 GiB" in check_fits(est, 80 * GiB, remat="none", **kw)
    with pytest.raises(ConfigError, match=r"needs about 62.0 GiB per device but the device has 40.0 GiB.*"
                                          r"training.per_device_batch_size \(now 256.*model.remat=full"):
        check_fits(est, 40 * GiB, remat="none", **kw)
    with pytest.raises(ConfigError) as e:
        check_fits(est, 40 * GiB, remat="full", **kw)
    assert "remat" not in str(e.value)
    assert "not checked" in check_fits(est, None, remat="none", **kw)  # CPUs: no bytes_limit
    assert "not checked" in check_fits(None, 40 * GiB, remat="none", **kw)  # no analysis

    class NoAnalysis:
        def memory_analysis(self):
            return None

    class NoStats:
        def memory_stats(self):
            return None

    assert compiled_bytes(NoAnalysis()) is None and device_limit(NoStats()) is None
    compiled = jax.jit(lambda x: (x @ x).sum()).lower(jax.ShapeDtypeStruct((64, 64), jnp.float32)).compile()
    got = compiled_bytes(compiled)
    assert got is None or got["arguments"] == 64 * 64 * 4  # the CPU backend gives figures


def test_trainer_refuses_a_step_that_cannot_fit(tmp_path, monkeypatch):
    from trainer_helpers import make_corpus, make_tokenizer, tiny_overrides

    from trainer import memory
    from trainer.config_loading import load_config
    from trainer.errors import ConfigError
    from trainer.train import Trainer

    paths = make_corpus(str(tmp_path / "corpus"), n_docs=80, n_files=1)
    tok = make_tokenizer(str(tmp_path / "tok"), paths, vocab_size=300)
    sets = tiny_overrides(paths, tok, str(tmp_path / "run"), **{"training.per_device_batch_size": 4})
    trainer = Trainer(load_config("tiny-cpu", sets))
    monkeypatch.setattr(memory, "device_limit", lambda device: 1000)  # a device of 1000 bytes
    with pytest.raises(ConfigError, match=r"per_device_batch_size \(now 4 sequences of 32 tokens per device; "
                                          r"grad_accum_steps, now 2, follows\) or set model.remat=full"):
        trainer.setup()
    assert trainer.accum == 2 and trainer.micro == 4
    assert trainer.memory_estimate is None or trainer.memory_estimate["total"] > 1000
    assert trainer.params["embeddings"]["word_embeddings"]["embedding"].shape[0] == 384  # 300 -> 3 x 128
