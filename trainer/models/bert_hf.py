"""One-to-one mapping between our Flax BERT (:mod:`.bert`) and transformers' ``BertForPreTraining``,
``BertForMaskedLM``, ``BertForTokenClassification`` and ``BertForSequenceClassification``.

The encoder's names are RoBERTa's (:mod:`.roberta_hf`) under ``bert.`` instead of ``roberta.``; the
heads are ``bert.pooler.dense``, ``cls.predictions.{transform.dense,transform.LayerNorm,bias}`` (the
decoder tied to the word embeddings) and ``cls.seq_relationship``. The export is a
``BertForPreTraining`` folder (``AutoModelForMaskedLM`` and ``AutoModelForPreTraining`` both load
it); the import reads any of the four, a bare ``BertModel`` and the TF-era names ``gamma``/``beta``
(MultiBERTs' checkpoints), the heads a folder lacks starting from random weights.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Iterator, Optional

import numpy as np

from ..errors import ExportError
from . import roberta_hf, state_dicts
from .bert import BertSpec
from .hf_folder import read_weights, write_folder

log = logging.getLogger(__name__)

_DENSE = (("kernel", "weight", True), ("bias", "bias", False))
_LN = (("scale", "weight", False), ("bias", "bias", False))
_VOCAB_ROWS = (("embeddings", "word_embeddings", "embedding"), ("lm_head", "bias"))
#: top-level parameters a transformers folder may lack (they then start from random weights)
_OPTIONAL = ("pooler", "lm_head", "nsp")


def _encoder_entries(spec: BertSpec) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """(flax path, torch name, transposed) of the embeddings and layers (RoBERTa's names under ``bert.``)."""
    for fpath, tname, tr in roberta_hf._entries(spec):
        if fpath[0] != "lm_head":
            yield fpath, "bert." + tname[len("roberta."):], tr


def _pooler_entries():
    for leaf, tname, tr in _DENSE:
        yield ("pooler", leaf), f"bert.pooler.dense.{tname}", tr


def _entries(spec: BertSpec) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """Every parameter of ``BertForPreTraining``."""
    yield from _encoder_entries(spec)
    yield from _pooler_entries()
    for sub, tprefix, leaves in ((("lm_head", "dense"), "cls.predictions.transform.dense", _DENSE),
                                 (("lm_head", "layer_norm"), "cls.predictions.transform.LayerNorm", _LN),
                                 (("nsp",), "cls.seq_relationship", _DENSE)):
        for leaf, tname, tr in leaves:
            yield sub + (leaf,), f"{tprefix}.{tname}", tr
    yield ("lm_head", "bias"), "cls.predictions.bias", False


def params_to_state_dict(params, spec: BertSpec, entries=None) -> dict[str, np.ndarray]:
    """Flax params -> ``{torch name: float32 array}`` (vocabulary padding rows dropped)."""
    return state_dicts.params_to_state_dict(params, _entries(spec) if entries is None else entries, _VOCAB_ROWS,
                                            spec.vocab_size)


def state_dict_to_params(state_dict: dict[str, np.ndarray], spec: BertSpec, fallback=None, entries=None) -> dict:
    """``{torch name: array}`` -> Flax params; missing heads (pooler, masked-LM, NSP) from ``fallback``."""
    return state_dicts.state_dict_to_params(state_dict, _entries(spec) if entries is None else entries, _VOCAB_ROWS,
                                            spec.vocab_size, spec.padded_vocab_size, fallback, _OPTIONAL)


def spec_to_hf_config(spec: BertSpec, bos_token_id: int = 0, eos_token_id: int = 2):
    """transformers' ``BertConfig`` of ``spec`` (architecture ``BertForPreTraining``; BERT has no bos/eos)."""
    from transformers import BertConfig

    return BertConfig(
        vocab_size=spec.vocab_size,
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        intermediate_size=spec.intermediate_size,
        hidden_act="gelu",
        hidden_dropout_prob=spec.hidden_dropout,
        attention_probs_dropout_prob=spec.attention_dropout,
        max_position_embeddings=spec.max_position_embeddings,
        type_vocab_size=spec.type_vocab_size,
        initializer_range=spec.initializer_range,
        layer_norm_eps=spec.layer_norm_eps,
        pad_token_id=spec.pad_token_id,
        tie_word_embeddings=True,
        architectures=["BertForPreTraining"],
    )


def hf_config_to_spec(config: dict, **overrides) -> BertSpec:
    """A transformers BERT ``config.json`` (as a dict; MultiBERTs' included) -> :class:`BertSpec`."""
    if config.get("model_type") != "bert":
        raise ExportError(f"not a BERT model (model_type={config.get('model_type')!r})")
    if config.get("hidden_act", "gelu") != "gelu":
        raise ExportError(f"unsupported hidden_act {config.get('hidden_act')!r} (only exact 'gelu')")
    if config.get("position_embedding_type", "absolute") != "absolute":
        raise ExportError("only absolute position embeddings are supported")
    kw = dict(
        vocab_size=config["vocab_size"],
        hidden_size=config["hidden_size"],
        num_layers=config["num_hidden_layers"],
        num_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"],
        max_position_embeddings=config.get("max_position_embeddings", 512),
        type_vocab_size=config.get("type_vocab_size", 2),
        layer_norm_eps=config.get("layer_norm_eps", 1e-12),
        hidden_dropout=config.get("hidden_dropout_prob", 0.1),
        attention_dropout=config.get("attention_probs_dropout_prob", 0.1),
        initializer_range=config.get("initializer_range", 0.02),
        pad_token_id=config.get("pad_token_id") or 0,
    )
    kw.update(overrides)
    return BertSpec(**kw)


def export_pretrained(params, spec: BertSpec, out_dir: str, tokenizer_dir: Optional[str] = None,
                      tokenizer=None, extra_files: Optional[dict[str, str]] = None) -> str:
    """A ``BertForPreTraining`` folder: ``config.json``, ``model.safetensors`` (+ tokenizer files)."""
    return write_folder(params_to_state_dict(params, spec), lambda bos, eos: spec_to_hf_config(spec, bos, eos),
                        out_dir, spec.max_position_embeddings, tokenizer_dir, tokenizer, extra_files,
                        f"BERT, {spec.num_layers} layers, hidden {spec.hidden_size}, vocab {spec.vocab_size}")


def read_state_dict(folder: str, prefix: Optional[str] = "bert.") -> dict[str, np.ndarray]:
    """Weights of a transformers BERT folder with today's names: ``gamma``/``beta`` (TF-era checkpoints)
    read as ``weight``/``bias``, ``cls.predictions.decoder.bias`` as ``cls.predictions.bias``, and
    ``prefix`` added to the encoder's names when none has it (a bare ``BertModel``)."""
    sd = {}
    for k, v in read_weights(folder).items():
        if k.endswith(".gamma"):
            k = k[: -len("gamma")] + "weight"
        elif k.endswith(".beta"):
            k = k[: -len("beta")] + "bias"
        sd[k] = v
    if "cls.predictions.bias" not in sd and "cls.predictions.decoder.bias" in sd:
        sd["cls.predictions.bias"] = sd["cls.predictions.decoder.bias"]
    if prefix and not any(k.startswith(prefix) for k in sd):
        sd = {(k if k.startswith(("cls.", "classifier.")) else prefix + k): v for k, v in sd.items()}
    return sd


def import_pretrained(folder: str, fallback_params=None, **spec_overrides):
    """Read a transformers BERT folder -> ``(spec, params)`` (numpy float32); the heads it lacks
    (``BertForMaskedLM`` has no pooler nor NSP head) start from random weights (a warning names them)."""
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise ExportError(f"{folder}: no config.json (not a transformers model folder)")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    spec = hf_config_to_spec(config, **spec_overrides)
    sd = read_state_dict(folder)
    missing = sorted({fpath[0] for fpath, tname, _ in _entries(spec) if tname not in sd and fpath[0] in _OPTIONAL})
    if missing and fallback_params is None:
        import jax

        from .bert import init_params

        log.warning("%s has no %s weights; they start from random weights", folder, ", ".join(missing))
        fallback_params = jax.tree.map(np.asarray, init_params(spec, jax.random.key(0)))
    return spec, state_dict_to_params(sd, spec, fallback=fallback_params)


# --- classification heads (BertForTokenClassification / BertForSequenceClassification) -----------------


def classifier_entries(spec: BertSpec, per_token: bool) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """(flax path, torch name, transposed) of a classification model: the encoder, the pooler (sequence
    classification only, as transformers), the ``classifier``."""
    yield from _encoder_entries(spec)
    if not per_token:
        yield from _pooler_entries()
    for leaf, tname, tr in _DENSE:
        yield ("classifier", leaf), f"classifier.{tname}", tr


def classifier_to_state_dict(params, spec: BertSpec, per_token: bool) -> dict[str, np.ndarray]:
    return params_to_state_dict(params, spec, classifier_entries(spec, per_token))


def encoder_from_state_dict(state_dict: dict[str, np.ndarray], spec: BertSpec) -> dict:
    """The encoder (``embeddings``, ``layers_{i}``) of a BERT state dict as Flax params, with the ``pooler``
    when the state dict has one (sequence classification needs it)."""
    entries = list(_encoder_entries(spec))
    if all(t in state_dict for _, t, _ in _pooler_entries()):
        entries += list(_pooler_entries())
    return state_dict_to_params(state_dict, spec, entries=entries)


def head_from_state_dict(state_dict: dict[str, np.ndarray], per_token: bool) -> Optional[dict]:
    """The ``classifier`` params in a state dict (one dense layer for both kinds), or None."""
    return state_dicts.dense_head_from_state_dict(state_dict)
