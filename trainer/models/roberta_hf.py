"""One-to-one mapping between our Flax parameters and transformers' ``RobertaForMaskedLM``.

* :func:`params_to_state_dict` / :func:`state_dict_to_params`: parameter pytree <-> PyTorch
  state-dict names (Dense kernels are stored transposed in PyTorch: ``weight = kernel.T``).
* :func:`export_pretrained`: a folder with ``config.json``, ``model.safetensors`` and the
  tokenizer files, loadable by ``AutoModelForMaskedLM.from_pretrained``.
* :func:`import_pretrained`: the other way, from any transformers RoBERTa folder.
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
from .roberta import RobertaSpec

log = logging.getLogger(__name__)

_LN = (("scale", "weight", False), ("bias", "bias", False))
_DENSE = (("kernel", "weight", True), ("bias", "bias", False))


def _entries(spec: RobertaSpec) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """(flax path, torch name, transposed) for every parameter."""
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        yield ("embeddings", name, "embedding"), f"roberta.embeddings.{name}.weight", False
    for leaf, tname, tr in _LN:
        yield ("embeddings", "LayerNorm", leaf), f"roberta.embeddings.LayerNorm.{tname}", tr
    for i in range(spec.num_layers):
        fl, tl = f"layers_{i}", f"roberta.encoder.layer.{i}"
        modules = [
            ((fl, "attention", "self", "query"), f"{tl}.attention.self.query", _DENSE),
            ((fl, "attention", "self", "key"), f"{tl}.attention.self.key", _DENSE),
            ((fl, "attention", "self", "value"), f"{tl}.attention.self.value", _DENSE),
            ((fl, "attention", "output_dense"), f"{tl}.attention.output.dense", _DENSE),
            ((fl, "attention", "output_LayerNorm"), f"{tl}.attention.output.LayerNorm", _LN),
            ((fl, "intermediate_dense"), f"{tl}.intermediate.dense", _DENSE),
            ((fl, "output_dense"), f"{tl}.output.dense", _DENSE),
            ((fl, "output_LayerNorm"), f"{tl}.output.LayerNorm", _LN),
        ]
        for fpath, tprefix, leaves in modules:
            for leaf, tname, tr in leaves:
                yield fpath + (leaf,), f"{tprefix}.{tname}", tr
    for fpath, tprefix, leaves in [(("lm_head", "dense"), "lm_head.dense", _DENSE),
                                   (("lm_head", "layer_norm"), "lm_head.layer_norm", _LN)]:
        for leaf, tname, tr in leaves:
            yield fpath + (leaf,), f"{tprefix}.{tname}", tr
    yield ("lm_head", "bias"), "lm_head.bias", False


#: The parameters with one row per vocabulary id (padded to ``spec.padded_vocab_size`` in Flax).
_VOCAB_ROWS = (("embeddings", "word_embeddings", "embedding"), ("lm_head", "bias"))


def params_to_state_dict(params, spec: RobertaSpec, entries=None) -> dict[str, np.ndarray]:
    """Flax params -> ``{torch name: float32 array}`` (contiguous, ready for safetensors).

    ``entries`` are (flax path, torch name, transposed) triples, by default those of the masked-LM
    model. The vocabulary padding rows are dropped: the state dict has ``spec.vocab_size`` rows.
    """
    return state_dicts.params_to_state_dict(params, _entries(spec) if entries is None else entries, _VOCAB_ROWS,
                                            spec.vocab_size)


def state_dict_to_params(state_dict: dict[str, np.ndarray], spec: RobertaSpec, fallback=None, entries=None) -> dict:
    """``{torch name: array}`` -> Flax params of ``entries`` (default: the masked-LM model's).

    Missing LM-head weights are taken from ``fallback``; vocabulary rows are padded to
    ``spec.padded_vocab_size``.
    """
    return state_dicts.state_dict_to_params(state_dict, _entries(spec) if entries is None else entries, _VOCAB_ROWS,
                                            spec.vocab_size, spec.padded_vocab_size, fallback, ("lm_head",))


def spec_to_hf_config(spec: RobertaSpec, bos_token_id: int = 0, eos_token_id: int = 2):
    from transformers import RobertaConfig

    return RobertaConfig(
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
        bos_token_id=bos_token_id,
        eos_token_id=eos_token_id,
        tie_word_embeddings=True,
        architectures=["RobertaForMaskedLM"],
    )


def hf_config_to_spec(config: dict, **overrides) -> RobertaSpec:
    """A transformers RoBERTa ``config.json`` (as a dict) -> :class:`RobertaSpec`."""
    if config.get("model_type") not in ("roberta", "xlm-roberta", "camembert"):
        raise ExportError(f"not a RoBERTa model (model_type={config.get('model_type')!r})")
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
        max_position_embeddings=config["max_position_embeddings"],
        type_vocab_size=config.get("type_vocab_size", 1),
        layer_norm_eps=config.get("layer_norm_eps", 1e-12),
        hidden_dropout=config.get("hidden_dropout_prob", 0.1),
        attention_dropout=config.get("attention_probs_dropout_prob", 0.1),
        initializer_range=config.get("initializer_range", 0.02),
        pad_token_id=config.get("pad_token_id", 1),
    )
    kw.update(overrides)
    return RobertaSpec(**kw)


def export_pretrained(params, spec: RobertaSpec, out_dir: str, tokenizer_dir: Optional[str] = None,
                      tokenizer=None, extra_files: Optional[dict[str, str]] = None) -> str:
    """Write ``config.json``, ``model.safetensors`` (+ tokenizer files) to ``out_dir``."""
    return write_folder(params_to_state_dict(params, spec), lambda bos, eos: spec_to_hf_config(spec, bos, eos),
                        out_dir, spec.max_position_embeddings - spec.pad_token_id - 1, tokenizer_dir, tokenizer,
                        extra_files, f"{spec.num_layers} layers, hidden {spec.hidden_size}, vocab {spec.vocab_size}")


def read_state_dict(folder: str, prefix: Optional[str] = "roberta.") -> dict[str, np.ndarray]:
    """Weights of a transformers RoBERTa folder (:func:`~.hf_folder.read_weights`); ``prefix``: added to the
    encoder's names when none has it (a bare RobertaModel checkpoint)."""
    sd = read_weights(folder)
    if prefix and not any(k.startswith(prefix) for k in sd):
        sd = {(prefix + k if not k.startswith("lm_head.") else k): v for k, v in sd.items()}
    return sd


def import_pretrained(folder: str, fallback_params=None, **spec_overrides):
    """Read a transformers RoBERTa folder -> ``(spec, params)`` (numpy float32 params)."""
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise ExportError(f"{folder}: no config.json (not a transformers model folder)")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    spec = hf_config_to_spec(config, **spec_overrides)
    sd = read_state_dict(folder)
    if "lm_head.bias" not in sd and fallback_params is None:
        import jax

        from .roberta import init_params

        log.warning("%s has no masked-LM head; the head starts from random weights", folder)
        fallback_params = jax.tree.map(np.asarray, init_params(spec, jax.random.key(0)))
    return spec, state_dict_to_params(sd, spec, fallback=fallback_params)


# --- classification heads (RobertaForTokenClassification / RobertaForSequenceClassification) ------------


def head_modules(per_token: bool) -> tuple:
    """(flax path, torch name prefix) of the classifier's Dense layers: transformers' token head (one
    ``classifier``) or ``RobertaClassificationHead`` (``classifier.dense``, ``classifier.out_proj``)."""
    if per_token:
        return ((("classifier",), "classifier"),)
    return ((("classifier", "dense"), "classifier.dense"), (("classifier", "out_proj"), "classifier.out_proj"))


def classifier_entries(spec: RobertaSpec, per_token: bool) -> Iterator[tuple[tuple[str, ...], str, bool]]:
    """(flax path, torch name, transposed) of a classification model: the encoder, then the head."""
    for entry in _entries(spec):
        if entry[0][0] != "lm_head":
            yield entry
    for fpath, tprefix in head_modules(per_token):
        for leaf, tname, tr in _DENSE:
            yield fpath + (leaf,), f"{tprefix}.{tname}", tr


def classifier_to_state_dict(params, spec: RobertaSpec, per_token: bool) -> dict[str, np.ndarray]:
    """Classification params -> ``{torch name: float32 array}`` (vocabulary padding rows dropped)."""
    return params_to_state_dict(params, spec, classifier_entries(spec, per_token))


def encoder_from_state_dict(state_dict: dict[str, np.ndarray], spec: RobertaSpec) -> dict:
    """The encoder part (``embeddings``, ``layers_{i}``) of a RoBERTa state dict as Flax params."""
    encoder = [e for e in _entries(spec) if e[0][0] != "lm_head"]
    return state_dict_to_params(state_dict, spec, entries=encoder)


def head_from_state_dict(state_dict: dict[str, np.ndarray], per_token: bool) -> Optional[dict]:
    """The ``classifier`` params of a token (``per_token``) or sequence head in a state dict, or None."""
    head: dict = {}
    for fpath, tprefix in head_modules(per_token):
        for leaf, tname, tr in _DENSE:
            name = f"{tprefix}.{tname}"
            if name not in state_dict:
                return None
            value = np.asarray(state_dict[name], dtype=np.float32)
            node = head
            for p in fpath[1:]:
                node = node.setdefault(p, {})
            node[leaf] = value.T if tr else value
    return head
