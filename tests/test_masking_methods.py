"""The masking methods and what builds on them: whole-word masking (BPE, WordPiece and SentencePiece
tokenizers), masking-rate schedules (values, bad input, exact resume mid-schedule), checkpoint averaging
(LAWA) and ``trainer evaluate --mlm`` against the trainer's own eval."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from trainer_helpers import _WORDS

from trainer.config_loading import load_config
from trainer.errors import CheckpointError, ConfigError
from trainer.masking import mask_tokens, masking_rule
from trainer.masking_rate import parse_rate

# -- whole-word masking ---------------------------------------------------------------------------


def _texts(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(_WORDS, int(rng.integers(20, 40)))) + ", fin." for _ in range(n)]


def _wordpiece(texts):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    t = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    t.normalizer, t.pre_tokenizer, t.decoder = (normalizers.BertNormalizer(), pre_tokenizers.BertPreTokenizer(),
                                                decoders.WordPiece())
    t.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=120, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    return PreTrainedTokenizerFast(tokenizer_object=t, cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]",
                                   mask_token="[MASK]", unk_token="[UNK]")


def _sentencepiece(texts):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    t = Tokenizer(models.Unigram())
    t.pre_tokenizer, t.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    t.train_from_iterator(texts, trainers.UnigramTrainer(
        vocab_size=120, special_tokens=["<pad>", "<unk>", "<s>", "</s>", "<mask>"], unk_token="<unk>"))
    return PreTrainedTokenizerFast(tokenizer_object=t, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   mask_token="<mask>", unk_token="<unk>")


def _bpe(texts, folder):
    from transformers import AutoTokenizer

    from trainer.data.tokenizer import train_tokenizer

    train_tokenizer(texts, folder, vocab_size=300, min_frequency=2)
    return AutoTokenizer.from_pretrained(folder)


@pytest.mark.parametrize("kind", ["bpe", "wordpiece", "sentencepiece"])
def test_whole_word_masking_never_splits_a_word_and_counts_the_rate_in_tokens(kind, tmp_path):
    """Words as the fast tokenizer's pre-tokenisation gives them (``word_ids()``): each is masked whole or not
    at all; the masked share of the maskable tokens is the rate within binomial bounds; 80/10/10 per token."""
    from trainer.data.tokenizer import TokenizerFns

    texts = _texts(96)
    hf = {"bpe": lambda: _bpe(texts, str(tmp_path / "bpe")), "wordpiece": lambda: _wordpiece(texts),
          "sentencepiece": lambda: _sentencepiece(texts)}[kind]()
    tok = TokenizerFns(hf)
    cont = tuple(tok.continuation_ids())
    assert cont and len(cont) < tok.vocab_size
    L, p = 40, 0.15
    encodings = hf.backend_tokenizer.encode_batch(texts, add_special_tokens=False)
    rows = np.full((len(texts), L), tok.pad_id, np.int32)
    words = np.full((len(texts), L), -1)
    for r, e in enumerate(encodings):
        n = min(len(e.ids), L - 2)
        rows[r, 0], rows[r, 1:1 + n], rows[r, 1 + n] = tok.bos_id, e.ids[:n], tok.eos_id
        words[r, 1:1 + n] = [w for w in e.word_ids[:n]]
        if n < len(e.ids) and e.word_ids[n] == e.word_ids[n - 1]:  # a word cut by the row's end: not checked
            words[r, 1:1 + n][words[r, 1:1 + n] == e.word_ids[n - 1]] = -1
    fn = jax.jit(lambda k, x: mask_tokens(k, x, special_ids=tok.special_ids, mask_id=tok.mask_id,
                                          vocab_size=tok.vocab_size, mlm_probability=p, continuation_ids=cont,
                                          max_predictions=24))
    inputs, _, weights = (np.asarray(a) for a in fn(jax.random.key(3), jnp.asarray(rows)))
    chosen = weights > 0
    partial = [(r, w) for r in range(len(rows)) for w in set(words[r][words[r] >= 0])
               if 0 < chosen[r][words[r] == w].sum() < (words[r] == w).sum()]
    assert not partial
    assert not chosen[np.isin(rows, tok.special_ids)].any()
    maskable = ~np.isin(rows, tok.special_ids)
    N, k = int(maskable.sum()), int(chosen.sum())
    assert abs(k - p * N) <= 4 * math.sqrt(N * p * (1 - p)), (k, p * N)
    multi = [w for r in range(len(rows)) for w in set(words[r][words[r] >= 0]) if (words[r] == w).sum() > 1]
    assert multi  # the check above saw words of several pieces
    to_mask = (inputs == tok.mask_id) & chosen
    assert abs(to_mask.sum() - 0.8 * k) <= 4 * math.sqrt(k * 0.8 * 0.2)


def test_token_masking_is_the_default_and_unchanged():
    """The default config: no schedule, no words; the step does not change the masks."""
    from types import SimpleNamespace

    cfg = load_config("tiny-cpu")
    tok = SimpleNamespace(special_ids=(0, 1, 2, 3, 4), mask_id=4, vocab_size=300,
                          continuation_ids=lambda: pytest.fail("token masking reads no words"))
    rule = masking_rule(cfg, tok)
    assert rule.rate is None and rule.continuation_ids is None and rule.mlm_probability == 0.15
    x = jax.random.randint(jax.random.key(0), (4, 64), 0, 300)
    key = jax.random.key(1)

    @jax.jit
    def three_ways(key, x):
        direct = mask_tokens(key, x, special_ids=(0, 1, 2, 3, 4), mask_id=4, vocab_size=300, mlm_probability=0.15,
                             random_exclude=(0, 1, 2, 3, 4), max_predictions=rule.max_predictions)
        return rule.apply(key, x), rule.apply(key, x, jnp.int32(77)), direct

    for a, b, c in zip(*three_ways(key, x)):
        assert np.array_equal(a, b) and np.array_equal(a, c)


# -- masking-rate schedules -------------------------------------------------------------------------


def test_rate_schedules_at_given_steps():
    lin = parse_rate({"schedule": "linear", "start": 0.3, "end": 0.15}, max_steps=100)
    assert [round(float(lin.at(s)), 6) for s in (0, 50, 100, 200)] == [0.3, 0.225, 0.15, 0.15]
    cos = parse_rate({"schedule": "cosine", "start": 0.3, "end": 0.1, "steps": 40}, max_steps=100)
    for s in (0, 10, 20, 40, 90):
        expected = 0.1 + 0.2 * 0.5 * (1 + math.cos(math.pi * min(s / 40, 1)))
        assert abs(float(cos.at(s)) - expected) < 1e-6
    pw = parse_rate({"schedule": "piecewise", "values": [0.3, 0.15, 0.05], "boundaries": [10, 20]}, max_steps=100)
    assert [round(float(pw.at(s)), 6) for s in (0, 9, 10, 19, 20, 99)] == [0.3, 0.3, 0.15, 0.15, 0.05, 0.05]
    assert (pw.peak, pw.final, lin.peak, lin.final) == (0.3, 0.05, 0.3, 0.15)
    jitted = jax.jit(lin.at)  # the train step traces the step
    assert abs(float(jitted(jnp.int32(25))) - 0.2625) < 1e-6


@pytest.mark.parametrize("value, message", [
    ({"schedule": "linear", "start": 0.3, "end": 1.2}, "training.mlm_probability.end must be a rate in (0, 1)"),
    ({"schedule": "linear", "start": 0.0, "end": 0.1}, "training.mlm_probability.start must be a rate in (0, 1)"),
    ({"schedule": "step", "start": 0.3}, "training.mlm_probability.schedule must be one of linear, cosine, piecewise"),
    ({"schedule": "linear", "end": 0.1}, "training.mlm_probability.start is missing"),
    ({"schedule": "piecewise", "values": [0.3, 0.1], "boundaries": [5, 9]},
     "training.mlm_probability: a piecewise schedule needs values"),
    ({"schedule": "piecewise", "values": [0.3, 0.2, 0.1], "boundaries": [9, 5]},
     "training.mlm_probability.boundaries must be steps >= 1, strictly increasing"),
    (1.5, "training.mlm_probability must be a rate in (0, 1)"),
])
def test_bad_rate_schedules_are_one_line_naming_the_key(value, message):
    with pytest.raises(ConfigError, match=f"^{message}".replace("(", r"\(").replace(")", r"\)")) as e:
        load_config("tiny-cpu", [f"training.mlm_probability={json.dumps(value)}"])
    assert "\n" not in str(e.value)


def test_schedule_peak_must_fit_max_predictions():
    with pytest.raises(ConfigError, match=r"peaks at 0.4: 26 masked tokens per row of data.max_seq_length=64 .* "
                                          r"training.max_predictions_per_seq=16"):
        load_config("tiny-cpu", ['training.mlm_probability={"schedule": "linear", "start": 0.4, "end": 0.15}',
                                 "training.max_predictions_per_seq=16"])
    cfg = load_config("tiny-cpu", ['training.mlm_probability={"schedule": "linear", "start": 0.4, "end": 0.15}'])
    from types import SimpleNamespace

    rule = masking_rule(cfg, SimpleNamespace(special_ids=(0,), mask_id=4, vocab_size=300))
    # sized for 0.4: ceil(25.6 + 6 sqrt(25.6 x 0.6)) = 50, a multiple of 8: 56 (32 at 0.15); eval at the final rate
    assert rule.max_predictions == 56 and rule.mlm_probability == 0.15


# -- averaging ---------------------------------------------------------------------------------------
# (the averaged checkpoints of a run, their export, and ``evaluate --mlm`` against the trainer's eval are tested
# on the reference run of tests/test_trainer_train.py, which masks whole words at a scheduled rate)


def test_averaging_refuses_checkpoints_of_different_models():
    from trainer.research.averaging import check_same_model

    meta = {"model_type": "roberta", "spec": {"hidden_size": 16}, "config": {"model": {"hidden_size": 16},
                                                                             "data": {"tokenizer": "t"}}}
    check_same_model({4: meta, 8: meta}, "runs/x")
    other = {**meta, "spec": {"hidden_size": 32}}
    with pytest.raises(CheckpointError, match=r"steps 4 and 8 differ in spec.hidden_size \(16 vs 32\)"):
        check_same_model({4: meta, 8: other}, "runs/x")
    with pytest.raises(CheckpointError, match=r"differ in model.type \('roberta' vs 'modernbert'\)"):
        check_same_model({4: meta, 8: {**meta, "model_type": "modernbert"}}, "runs/x")


def test_average_params_is_the_float32_mean():
    from trainer.research.averaging import average_params

    rng = np.random.default_rng(0)
    a = {"w": rng.standard_normal((3, 4)).astype(np.float32), "b": {"x": np.float32([1e-8, 3.0, -7.5])}}
    b = {"w": rng.standard_normal((3, 4)).astype(np.float32), "b": {"x": np.float32([3e-8, 1.0, 2.5])}}
    avg = average_params([a, b])
    assert avg["w"].dtype == np.float32 and np.array_equal(avg["w"], (a["w"] + b["w"]) / np.float32(2))
    assert np.array_equal(avg["b"]["x"], np.float32([2e-8, 2.0, -2.5]))
    three = average_params([a, b, a])
    assert np.allclose(three["w"], (2 * a["w"].astype(np.float64) + b["w"]) / 3, atol=1e-7)
