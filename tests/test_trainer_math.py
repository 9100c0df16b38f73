"""The pure functions: masking, run keys, packing, shuffle, schedule, weight-decay mask, FLOPs, hook periods."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from trainer.data.batches import block_permutation
from trainer.data.packing import pack, pad_final, token_stream, unpack
from trainer.flops import flops_per_token, matmul_params, mfu, peak_flops
from trainer.hooks import Hook, StepInfo, itstime, run_hooks
from trainer.masking import mask_tokens
from trainer.models.roberta import RobertaSpec, init_params
from trainer.optim import decay_mask, warmup_linear_decay
from trainer.steps import run_keys

SPECIALS = (0, 1, 2, 3)
MASK = 4


def test_masking_rates_and_specials():
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 1000, size=(64, 512)).astype(np.int32)
    ids[:, 0] = 0
    ids[:, 100] = 2
    ids[:, 400:] = 1  # padding
    inputs, labels, weights = mask_tokens(jax.random.key(1), jnp.asarray(ids), special_ids=SPECIALS, mask_id=MASK,
                                          vocab_size=1000)
    inputs, labels, weights = map(np.asarray, (inputs, labels, weights))
    assert (labels == ids).all()
    special = np.isin(ids, SPECIALS)
    assert weights[special].sum() == 0 and (inputs[special] == ids[special]).all()
    sel = weights.astype(bool)
    assert abs(sel.sum() / (~special).sum() - 0.15) < 0.01
    masked = (inputs == MASK) & sel
    changed = (inputs != ids) & (inputs != MASK) & sel
    same = (inputs == ids) & sel
    assert abs(masked.sum() / sel.sum() - 0.8) < 0.02
    assert abs(changed.sum() / sel.sum() - 0.1) < 0.02  # (a random token may equal the original)
    assert abs(same.sum() / sel.sum() - 0.1) < 0.02
    assert (inputs[~sel] == ids[~sel]).all()


def test_masking_is_a_pure_function_of_the_step_key():
    ids = jnp.arange(5, 5 + 2 * 64, dtype=jnp.int32).reshape(2, 64)
    kw = dict(special_ids=SPECIALS, mask_id=MASK, vocab_size=200)
    step_key = lambda seed, step: jax.random.fold_in(run_keys(seed).step, step)  # noqa: E731
    a = mask_tokens(step_key(7, 3), ids, **kw)
    b = mask_tokens(step_key(7, 3), ids, **kw)
    c = mask_tokens(step_key(7, 4), ids, **kw)
    assert all((np.asarray(x) == np.asarray(y)).all() for x, y in zip(a, b))
    assert not (np.asarray(a[2]) == np.asarray(c[2])).all()


def test_packing_keeps_every_token():
    docs = [[10, 11, 12], [], [20] * 9, [30, 31]]
    seqs, rem = pack(np.zeros(0, np.int32), docs, seq_len=5, bos_id=0, eos_id=2)
    stream = token_stream(docs, 2)
    assert (seqs[:, 0] == 0).all() and seqs.shape == (len(stream) // 4, 5)
    assert np.array_equal(np.concatenate([unpack(seqs), rem]), stream)
    assert list(stream[:4]) == [10, 11, 12, 2]  # </s> between documents, empty ones skipped
    seqs2, rem2 = pack(rem, [[40, 41, 42]], 5, 0, 2)
    assert np.array_equal(np.concatenate([unpack(seqs2), rem2]), np.concatenate([rem, [40, 41, 42, 2]]))
    last = pad_final(np.asarray([7, 8]), 5, 0, 1)
    assert last.tolist() == [[0, 7, 8, 1, 1]] and pad_final(np.zeros(0, np.int32), 5, 0, 1).shape == (0, 5)


def test_block_permutation_is_pure_and_depends_on_epoch():
    a = block_permutation(1, 0, 3, 100)
    assert np.array_equal(a, block_permutation(1, 0, 3, 100))
    assert sorted(a) == list(range(100))
    assert not np.array_equal(a, block_permutation(1, 1, 3, 100))


def test_warmup_then_linear_decay():
    lr = lambda s: float(warmup_linear_decay(s, 6e-4, 100, 1100))  # noqa: E731
    assert lr(0) == 0.0 and lr(50) == pytest.approx(3e-4) and lr(100) == pytest.approx(6e-4)
    assert lr(600) == pytest.approx(3e-4) and lr(1100) == 0.0 and lr(5000) == 0.0
    assert float(warmup_linear_decay(0, 1.0, 0, 10)) == 1.0


def test_no_weight_decay_on_biases_and_layernorm():
    spec = RobertaSpec(vocab_size=50, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                       max_position_embeddings=20, dtype="float32")
    m = decay_mask(init_params(spec, jax.random.key(0)))
    assert m["embeddings"]["word_embeddings"]["embedding"] is True
    assert m["layers_0"]["attention"]["self"]["query"]["kernel"] is True
    assert m["layers_0"]["attention"]["self"]["query"]["bias"] is False
    assert m["layers_0"]["output_LayerNorm"]["scale"] is False and m["lm_head"]["bias"] is False


def test_flops_per_token_roberta_base():
    base = RobertaSpec(vocab_size=50265)
    assert matmul_params(base) == 12 * (4 * 768 ** 2 + 2 * 768 * 3072) + 768 ** 2 + 50265 * 768
    assert flops_per_token(base, 128) == pytest.approx(759e6, rel=2e-3)
    assert flops_per_token(base, 512) == pytest.approx(801e6, rel=2e-3)
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12 and peak_flops("cpu") is None
    assert mfu(650_000, base, 128, "NVIDIA H100 80GB HBM3", 1) == pytest.approx(0.499, abs=0.002)


def test_run_keys_are_three_distinct_pure_keys():
    data = lambda keys: [tuple(np.asarray(jax.random.key_data(k)).ravel()) for k in keys]  # noqa: E731
    first = data(run_keys(2021))
    assert len(set(first)) == 3 and first == data(run_keys(2021)) and first != data(run_keys(2022))


def test_itstime_on_multiples_and_at_the_last_step():
    assert [s for s in range(1, 15) if itstime(s, 4, 14)] == [4, 8, 12, 14]
    assert [s for s in range(1, 6) if itstime(s, 1, 5)] == [1, 2, 3, 4, 5]
    assert [s for s in range(1, 8) if itstime(s, 100, 7)] == [7]
    assert [s for s in range(9, 15) if itstime(s, 4, 14)] == [12, 14]  # a resumed run keeps the count


def test_hooks_run_in_order_when_due():
    calls = []
    hooks = [Hook(lambda i: calls.append(("a", i.step)), 2), Hook(lambda i: calls.append(("b", i.step)), 3)]
    for step in range(1, 6):
        run_hooks(hooks, StepInfo(step, 5, trainer=None, batch=None, metrics={}))
    assert calls == [("a", 2), ("b", 3), ("a", 4), ("a", 5), ("b", 5)]
    with pytest.raises(ValueError, match="every N >= 1"):
        Hook(print, 0)
