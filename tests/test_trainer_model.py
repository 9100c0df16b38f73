"""Our Flax RoBERTa against transformers' PyTorch RobertaForMaskedLM: export and import."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from transformers import AutoModelForMaskedLM, RobertaConfig, RobertaForMaskedLM as TorchRoberta  # noqa: E402

from trainer.models.layers import resolve_attention_impl  # noqa: E402
from trainer.models.roberta import RobertaForMaskedLM, RobertaSpec, init_params, roberta_position_ids  # noqa: E402
from trainer.models.roberta_hf import export_pretrained, import_pretrained, params_to_state_dict  # noqa: E402

SPEC = RobertaSpec(vocab_size=97, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                   max_position_embeddings=40, dtype="float32", attention_impl="xla")


def _inputs():
    ids = np.random.default_rng(0).integers(5, 97, size=(3, 20)).astype(np.int64)
    ids[:, 0] = 0
    ids[1, 15:] = 1  # right padding
    return ids, (ids != 1).astype(np.int64)


def _torch_logits(model, ids, mask):
    model.eval()
    with torch.no_grad():
        return model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits.numpy()


def _ours(spec, params, ids, mask):
    return np.asarray(RobertaForMaskedLM(spec).apply({"params": params}, jnp.asarray(ids, jnp.int32),
                                                      jnp.asarray(mask, jnp.int32)))


def test_export_gives_the_same_logits_in_pytorch(tmp_path):
    params = init_params(SPEC, jax.random.key(0))
    # non-trivial biases and LayerNorms, so a transposition or a mix-up would show
    params = jax.tree.map(lambda p: p + 0.05 * jax.random.normal(jax.random.key(p.size), p.shape), params)
    export_pretrained(params, SPEC, str(tmp_path))
    files = sorted(p.name for p in tmp_path.iterdir())
    assert {"config.json", "model.safetensors"} <= set(files)
    model, info = AutoModelForMaskedLM.from_pretrained(str(tmp_path), output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    ids, mask = _inputs()
    diff = np.abs(_ours(SPEC, params, ids, mask) - _torch_logits(model, ids, mask))
    assert diff[mask.astype(bool)].max() <= 1e-4


def test_import_from_a_transformers_folder(tmp_path):
    torch.manual_seed(0)
    config = RobertaConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64, max_position_embeddings=40, layer_norm_eps=1e-5,
                           type_vocab_size=1)
    model = TorchRoberta(config)
    with torch.no_grad():  # random biases / LayerNorms instead of zeros / ones
        for name, p in model.named_parameters():
            if "bias" in name or "LayerNorm" in name or "layer_norm" in name:
                p.add_(0.1 * torch.randn_like(p))
    model.save_pretrained(str(tmp_path))
    spec, params = import_pretrained(str(tmp_path), dtype="float32", attention_impl="xla")
    assert dataclasses.replace(spec, attention_dropout=0.0, hidden_dropout=0.1) == SPEC
    ids, mask = _inputs()
    diff = np.abs(_ours(spec, params, ids, mask) - _torch_logits(model, ids, mask))
    assert diff[mask.astype(bool)].max() <= 1e-4
    # and the mapping is one to one: back to the same state dict
    sd = params_to_state_dict(params, spec)
    torch_sd = {k: v.numpy() for k, v in model.state_dict().items()}
    assert set(sd) == set(torch_sd) - {"lm_head.decoder.weight", "lm_head.decoder.bias"}
    assert all(np.array_equal(sd[k], torch_sd[k]) for k in sd)


def test_bf16_compute_keeps_f32_master_weights():
    spec = dataclasses.replace(SPEC, dtype="bfloat16")
    params = init_params(spec, jax.random.key(0))
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(params))
    ids, mask = _inputs()
    low = RobertaForMaskedLM(spec).apply({"params": params}, jnp.asarray(ids, jnp.int32), jnp.asarray(mask))
    assert low.dtype == jnp.bfloat16
    high = _ours(SPEC, params, ids, mask)
    assert np.abs(np.asarray(low, np.float32) - high).max() < 0.1


def test_positions_and_attention_choice():
    ids = jnp.asarray([[0, 7, 8, 2, 1, 1]])
    assert roberta_position_ids(ids, 1).tolist() == [[2, 3, 4, 5, 1, 1]]
    assert resolve_attention_impl("auto", "bfloat16", 64, backend="gpu") == "cudnn"
    assert resolve_attention_impl("auto", "float32", 64, backend="gpu") == "xla"
    assert resolve_attention_impl("auto", "bfloat16", 64, backend="cpu") == "xla"


def test_config_json_is_a_roberta_config(tmp_path):
    export_pretrained(init_params(SPEC, jax.random.key(1)), SPEC, str(tmp_path))
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "roberta" and cfg["architectures"] == ["RobertaForMaskedLM"]
    assert cfg["layer_norm_eps"] == 1e-5 and cfg["max_position_embeddings"] == 40
