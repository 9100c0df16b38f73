"""One-to-one mapping between our Flax ModernBERT and transformers' ``ModernBertForMaskedLM``.

The same functions as :mod:`trainer.models.roberta_hf` (the family's transformers mapping,
:class:`trainer.models.base.ModelFamily`): state dict <-> params (``weight = kernel.T``; the
decoder weight is tied to ``model.embeddings.tok_embeddings.weight`` and not stored),
``config.json`` <-> :class:`~trainer.models.modernbert.ModernBertSpec`, folder export / import,
and the classifier of ``ModernBertFor{Token,Sequence}Classification``.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Iterator, Optional

import numpy as np

from ..errors import ExportError
from . import state_dicts
from .hf_folder import read_weights, write_folder
from .modernbert import ModernBertSpec

log = logging.getLogger(__name__)

Entry = tuple[tuple[str, ...], str, bool]  # (flax path, torch name, transposed)


def _norm(spec: ModernBertSpec, fpath: tuple, tname: str) -> Iterator[Entry]:
    yield fpath + ("scale",), f"{tname}.weight", False
    if spec.norm_bias:
        yield fpath + ("bias",), f"{tname}.bias", False


def encoder_entries(spec: ModernBertSpec) -> Iterator[Entry]:
    """The encoder (``model.*``) and the prediction head (``head.*``, shared by every transformers ModernBERT class)."""
    yield ("model", "embeddings", "tok_embeddings", "embedding"), "model.embeddings.tok_embeddings.weight", False
    yield from _norm(spec, ("model", "embeddings", "norm"), "model.embeddings.norm")
    for i in range(spec.num_layers):
        fl, tl = ("model", f"layers_{i}"), f"model.layers.{i}"
        if i > 0:
            yield from _norm(spec, fl + ("attn_norm",), f"{tl}.attn_norm")
        yield fl + ("attn", "Wqkv", "kernel"), f"{tl}.attn.Wqkv.weight", True
        yield fl + ("attn", "Wo", "kernel"), f"{tl}.attn.Wo.weight", True
        yield from _norm(spec, fl + ("mlp_norm",), f"{tl}.mlp_norm")
        yield fl + ("mlp", "Wi", "kernel"), f"{tl}.mlp.Wi.weight", True
        yield fl + ("mlp", "Wo", "kernel"), f"{tl}.mlp.Wo.weight", True
    yield from _norm(spec, ("model", "final_norm"), "model.final_norm")
    yield ("head", "dense", "kernel"), "head.dense.weight", True
    yield from _norm(spec, ("head", "norm"), "head.norm")


def _entries(spec: ModernBertSpec) -> Iterator[Entry]:
    yield from encoder_entries(spec)
    if spec.decoder_bias:
        yield ("decoder", "bias"), "decoder.bias", False


_VOCAB_ROWS = (("model", "embeddings", "tok_embeddings", "embedding"), ("decoder", "bias"))
_CLASSIFIER = ((("classifier", "kernel"), "classifier.weight", True),
               (("classifier", "bias"), "classifier.bias", False))


def params_to_state_dict(params, spec: ModernBertSpec, entries=None) -> dict[str, np.ndarray]:
    """Flax params -> ``{torch name: float32 array}`` (vocabulary padding rows dropped)."""
    return state_dicts.params_to_state_dict(params, _entries(spec) if entries is None else entries, _VOCAB_ROWS,
                                            spec.vocab_size)


def state_dict_to_params(state_dict: dict[str, np.ndarray], spec: ModernBertSpec, entries=None) -> dict:
    """``{torch name: array}`` -> Flax params (vocabulary rows padded to ``spec.padded_vocab_size``)."""
    return state_dicts.state_dict_to_params(state_dict, _entries(spec) if entries is None else entries, _VOCAB_ROWS,
                                            spec.vocab_size, spec.padded_vocab_size)


def layer_types(spec: ModernBertSpec) -> list[str]:
    return ["full_attention" if spec.is_global(i) else "sliding_attention" for i in range(spec.num_layers)]


def spec_to_hf_config(spec: ModernBertSpec, bos_token_id: int = 0, eos_token_id: int = 2):
    from transformers import ModernBertConfig

    return ModernBertConfig(
        vocab_size=spec.vocab_size, hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads, hidden_activation="gelu",
        max_position_embeddings=spec.max_position_embeddings, initializer_range=spec.initializer_range,
        initializer_cutoff_factor=spec.initializer_cutoff_factor, norm_eps=spec.norm_eps, norm_bias=spec.norm_bias,
        pad_token_id=spec.pad_token_id, eos_token_id=eos_token_id, bos_token_id=bos_token_id,
        cls_token_id=bos_token_id, sep_token_id=eos_token_id, attention_bias=False, mlp_bias=False,
        attention_dropout=spec.attention_dropout, embedding_dropout=spec.hidden_dropout,
        mlp_dropout=spec.hidden_dropout,
        layer_types=layer_types(spec), local_attention=spec.local_attention,
        rope_parameters={"full_attention": {"rope_type": "default", "rope_theta": spec.global_rope_theta},
                         "sliding_attention": {"rope_type": "default", "rope_theta": spec.local_rope_theta}},
        decoder_bias=spec.decoder_bias, classifier_pooling="cls", classifier_bias=False,
        classifier_activation="gelu", tie_word_embeddings=True, architectures=["ModernBertForMaskedLM"],
    )


def _every_n(types: list[str]) -> int:
    """``global_attn_every_n_layers`` of a ``layer_types`` list (global at ``i % n == 0``)."""
    for n in range(1, len(types) + 1):
        if types == ["full_attention" if i % n == 0 else "sliding_attention" for i in range(len(types))]:
            return n
    raise ExportError(f"layer_types {types} is not 'global every n-th layer from layer 0'")


def hf_config_to_spec(config: dict, **overrides) -> ModernBertSpec:
    """A transformers ModernBERT ``config.json`` (as a dict) -> :class:`ModernBertSpec`."""
    if config.get("model_type") != "modernbert":
        raise ExportError(f"not a ModernBERT model (model_type={config.get('model_type')!r})")
    for key, expected in (("hidden_activation", "gelu"), ("classifier_activation", "gelu")):
        if config.get(key, expected) != expected:
            raise ExportError(f"unsupported {key} {config.get(key)!r} (only exact 'gelu')")
    for key in ("attention_bias", "mlp_bias", "classifier_bias"):
        if config.get(key, False):
            raise ExportError(f"unsupported {key}=true (this ModernBERT has no linear biases)")
    if config.get("classifier_pooling", "cls") != "cls":
        raise ExportError("only classifier_pooling 'cls' is supported")
    if not config.get("tie_word_embeddings", True):
        raise ExportError("only a decoder tied to the token embeddings is supported")
    n_layers = config["num_hidden_layers"]
    if config.get("layer_types"):
        every = _every_n(list(config["layer_types"]))
    else:
        every = config.get("global_attn_every_n_layers", 3)
    rp = config.get("rope_parameters") or {}
    for kind in ("full_attention", "sliding_attention"):
        if (rp.get(kind) or {}).get("rope_type", "default") != "default":
            raise ExportError(f"unsupported rope_type {rp[kind]['rope_type']!r} (only 'default')")
    glob = (rp.get("full_attention") or {}).get("rope_theta", config.get("global_rope_theta", 160_000.0))
    loc = (rp.get("sliding_attention") or {}).get("rope_theta", config.get("local_rope_theta", 10_000.0))
    kw = dict(
        vocab_size=config["vocab_size"], hidden_size=config["hidden_size"], num_layers=n_layers,
        num_heads=config["num_attention_heads"], intermediate_size=config["intermediate_size"],
        max_position_embeddings=config.get("max_position_embeddings", 8192), global_attn_every_n_layers=every,
        local_attention=config.get("local_attention", 128), global_rope_theta=float(glob),
        local_rope_theta=float(loc), norm_eps=config.get("norm_eps", 1e-5), norm_bias=config.get("norm_bias", False),
        decoder_bias=config.get("decoder_bias", True), hidden_dropout=config.get("mlp_dropout", 0.0),
        attention_dropout=config.get("attention_dropout", 0.0), initializer_range=config.get("initializer_range", 0.02),
        initializer_cutoff_factor=config.get("initializer_cutoff_factor", 2.0) or 2.0,
        pad_token_id=config.get("pad_token_id", 50283),
        eos_token_id=config.get("sep_token_id", config.get("eos_token_id")),
    )
    kw.update(overrides)
    return ModernBertSpec(**kw)


def read_state_dict(folder: str) -> dict[str, np.ndarray]:
    """Weights of a transformers ModernBERT folder (a bare ``ModernBertModel`` gets its ``model.`` prefix)."""
    sd = read_weights(folder)
    if not any(k.startswith("model.") for k in sd):
        sd = {("model." + k if not k.startswith(("head.", "decoder.", "classifier.")) else k): v
              for k, v in sd.items()}
    return sd


def export_pretrained(params, spec: ModernBertSpec, out_dir: str, tokenizer_dir: Optional[str] = None,
                      tokenizer=None, extra_files: Optional[dict[str, str]] = None) -> str:
    """Write ``config.json``, ``model.safetensors`` (+ tokenizer files) to ``out_dir``."""
    return write_folder(params_to_state_dict(params, spec), lambda bos, eos: spec_to_hf_config(spec, bos, eos),
                        out_dir, spec.max_position_embeddings, tokenizer_dir, tokenizer, extra_files,
                        f"{spec.num_layers} layers, hidden {spec.hidden_size}, vocab {spec.vocab_size}")


def import_pretrained(folder: str, fallback_params=None, **spec_overrides):
    """Read a transformers ModernBERT folder -> ``(spec, params)`` (numpy float32); a folder without the
    masked-LM head (``head.*``) takes it from ``fallback_params`` or a random initialisation."""
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise ExportError(f"{folder}: no config.json (not a transformers model folder)")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    spec = hf_config_to_spec(config, **spec_overrides)
    sd = read_state_dict(folder)
    if "head.dense.weight" not in sd or (spec.decoder_bias and "decoder.bias" not in sd):
        if fallback_params is None:
            import jax

            from .modernbert import init_params

            log.warning("%s has no masked-LM head; the head starts from random weights", folder)
            fallback_params = jax.tree.map(np.asarray, init_params(spec, jax.random.key(0)))
        sd = {**params_to_state_dict(fallback_params, spec), **sd}
    return spec, state_dict_to_params(sd, spec)


# --- classification heads -------------------------------------------------------------------


def classifier_entries(spec: ModernBertSpec) -> Iterator[Entry]:
    """The encoder, the prediction head and the ``classifier`` (the same for token and sequence heads)."""
    yield from encoder_entries(spec)
    yield from _CLASSIFIER


def classifier_to_state_dict(params, spec: ModernBertSpec, per_token: bool) -> dict[str, np.ndarray]:
    return params_to_state_dict(params, spec, classifier_entries(spec))


def encoder_from_state_dict(state_dict: dict[str, np.ndarray], spec: ModernBertSpec) -> dict:
    """The encoder (``model``) and, when the state dict has it, the prediction ``head`` as Flax params."""
    head = [e for e in encoder_entries(spec) if e[0][0] == "head"]
    entries = [e for e in encoder_entries(spec) if e[0][0] != "head"]
    if all(tname in state_dict for _, tname, _ in head):
        entries += head
    return state_dict_to_params(state_dict, spec, entries=entries)


def head_from_state_dict(state_dict: dict[str, np.ndarray], per_token: bool) -> Optional[dict]:
    """The ``classifier`` params in a state dict, or None (one Dense, token or sequence head alike)."""
    return state_dicts.dense_head_from_state_dict(state_dict)
