"""The model-family interface and its registry (``model.type`` in the YAML, as levanter's ``register_subclass``).

A family is one encoder architecture with a masked-LM head. It carries:

* its ``model`` config section (:attr:`ModelFamily.config_class`: the network fields plus the
  shared :class:`~trainer.config.ModelOptions`) and the resolved, hashable spec the network is
  built from (:attr:`ModelFamily.spec_class`; :meth:`~ModelFamily.spec_from_config`,
  :meth:`~ModelFamily.spec_from_dict` for checkpoint metadata);
* the networks: :meth:`~ModelFamily.mlm_module` (``__call__(input_ids, attention_mask=None,
  deterministic=True, predict_positions=None, **packed)``), :meth:`~ModelFamily.classifier_module`
  for the fine-tuning heads, their initialisations, and :meth:`~ModelFamily.packed_inputs` (what a
  packed training row tells the network besides its ids, e.g. document ids);
* FLOPs per token (:meth:`~ModelFamily.encoder_matmul_params`, :meth:`~ModelFamily.head_matmul_params`,
  :meth:`~ModelFamily.attention_flops`);
* parameter-path conventions (vocabulary rows, re-initialised embeddings, position embeddings,
  the per-layer module kinds of the weight statistics);
* the mapping to and from transformers: :attr:`~ModelFamily.hf_module` names a module with
  ``export_pretrained``, ``import_pretrained``, ``hf_config_to_spec``, ``read_state_dict``,
  ``encoder_from_state_dict``, ``head_from_state_dict``, ``classifier_hf_config`` and
  ``classifier_to_state_dict`` (imported on first use: it needs ``transformers`` only then).

Adding a family is one module (network + a :class:`ModelFamily` subclass decorated with
:func:`register_family`), its transformers mapping and a config.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, ClassVar, Optional

from ..errors import ConfigError, ExportError

#: The fine-tuning head kinds every family provides (:meth:`ModelFamily.classifier_module`).
TOKEN, SEQUENCE = "token", "sequence"

_FAMILIES: dict[str, "ModelFamily"] = {}
#: ``model.type`` of checkpoints and configs that do not name one.
DEFAULT_TYPE = "roberta"


class ModelFamily:
    """One encoder family (see the module docstring). Subclasses set the class attributes."""

    name: ClassVar[str]
    config_class: ClassVar[type]
    spec_class: ClassVar[type]
    hf_module: ClassVar[str]
    #: transformers ``model_type`` values this family imports
    hf_model_types: ClassVar[tuple[str, ...]] = ()
    #: parameters with one row per vocabulary id (padded in Flax; the padding rows are dropped on
    #: export and left out of the weight statistics)
    vocab_row_paths: ClassVar[tuple[tuple[str, ...], ...]] = ()
    #: parameters re-initialised by ``model.reinit_embeddings`` (the decoder is tied to the first)
    reinit_paths: ClassVar[tuple[tuple[str, ...], ...]] = ()
    #: parameters re-initialised by ``model.reset_position_embeddings`` (none without a position table)
    position_paths: ClassVar[tuple[tuple[str, ...], ...]] = ()
    #: top-level parameters of the masked-LM model the fine-tuning networks do not have
    mlm_only_params: ClassVar[tuple[str, ...]] = ()
    #: weight statistics: module path inside ``layers_{i}`` -> column title, in plot order
    layer_modules: ClassVar[dict[str, str]] = {}
    #: weight statistics: short names of the parameters outside the layers
    other_names: ClassVar[dict[str, str]] = {}

    # --- config and spec -------------------------------------------------------------------
    def spec_from_config(self, model, vocab_size: int, pad_token_id: int, eos_token_id: Optional[int] = None,
                         backend: Optional[str] = None):
        """The spec of ``model`` (a :attr:`config_class` section) for a tokenizer's sizes and ids."""
        raise NotImplementedError

    def spec_from_dict(self, saved: dict):
        """A spec from checkpoint metadata (unknown keys dropped, missing ones at their defaults)."""
        names = {f.name for f in dataclasses.fields(self.spec_class)}
        return self.spec_class(**{k: v for k, v in saved.items() if k in names})

    def arch_fields(self) -> tuple[str, ...]:
        """The spec fields trained weights depend on (``metadata["arch"]``)."""
        return tuple(f.name for f in dataclasses.fields(self.spec_class) if f.metadata.get("arch"))

    def arch_defaults(self) -> dict[str, Any]:
        return {f.name: f.default for f in dataclasses.fields(self.spec_class)}

    def max_length(self, spec) -> int:
        """The longest input (in tokens, specials included) the network's positions allow."""
        raise NotImplementedError

    def for_inference(self, spec, dtype: str = "float32"):
        """``spec`` computing in ``dtype`` on float32 weights with the portable attention."""
        return dataclasses.replace(spec, dtype=dtype, param_dtype="float32", attention_impl="xla")

    # --- networks --------------------------------------------------------------------------
    def mlm_module(self, spec):
        raise NotImplementedError

    def init_params(self, spec, key, seq_len: int = 8):
        raise NotImplementedError

    def packed_inputs(self, spec, tokens) -> dict:
        """Keyword arguments of :meth:`mlm_module` for packed training rows ``tokens`` (the unmasked ids)."""
        return {}

    def classifier_module(self, spec, num_labels: int, kind: str):
        raise NotImplementedError

    def init_classifier_params(self, spec, num_labels: int, kind: str, key, seq_len: int = 8):
        raise NotImplementedError

    def apply_mlm(self, spec, params, input_ids, attention_mask=None, deterministic: bool = True,
                  dropout_key=None, predict_positions=None, source_tokens=None):
        """Masked-LM logits; ``source_tokens``: the unmasked packed rows (:meth:`packed_inputs`)."""
        packed = self.packed_inputs(spec, source_tokens) if source_tokens is not None else {}
        rngs = {"dropout": dropout_key} if dropout_key is not None else {}
        return self.mlm_module(spec).apply({"params": params}, input_ids, attention_mask=attention_mask,
                                           deterministic=deterministic, rngs=rngs,
                                           predict_positions=predict_positions, **packed)

    # --- FLOPs -----------------------------------------------------------------------------
    def encoder_matmul_params(self, spec) -> int:
        raise NotImplementedError

    def head_matmul_params(self, spec) -> int:
        raise NotImplementedError

    def attention_flops(self, spec, seq_len: int) -> float:
        """Training FLOPs per token of attention's ``QK^T`` and ``AV`` (full: ``12 x layers x L x hidden``)."""
        return 12.0 * spec.num_layers * seq_len * spec.hidden_size

    # --- transformers ----------------------------------------------------------------------
    @property
    def hf(self):
        """The transformers mapping module of the family."""
        return importlib.import_module(self.hf_module)


def register_family(cls):
    """Class decorator: register an instance of ``cls`` under ``cls.name``."""
    _FAMILIES[cls.name] = cls()
    return cls


def family_names() -> tuple[str, ...]:
    return tuple(_FAMILIES)


def get_family(name: Optional[str]) -> ModelFamily:
    """The family registered as ``name`` (None: the default, RoBERTa)."""
    name = DEFAULT_TYPE if name is None else name
    if name not in _FAMILIES:
        raise ConfigError(f"model.type {name!r} is not a model family (valid: {', '.join(_FAMILIES)})")
    return _FAMILIES[name]


def family_of(spec_or_config) -> ModelFamily:
    """The family of a spec or ``model`` config section (by its class)."""
    for family in _FAMILIES.values():
        if isinstance(spec_or_config, (family.spec_class, family.config_class)):
            return family
    raise TypeError(f"{type(spec_or_config).__name__} belongs to no registered model family")


def family_of_meta(meta: dict) -> ModelFamily:
    """The family of checkpoint metadata; checkpoints written before ``model_type`` existed are RoBERTa."""
    return get_family(meta.get("model_type") or DEFAULT_TYPE)


def spec_from_meta(meta: dict):
    return family_of_meta(meta).spec_from_dict(meta["spec"])


def family_of_hf_config(config: dict) -> ModelFamily:
    """The family importing a transformers ``config.json`` (by its ``model_type``)."""
    model_type = config.get("model_type")
    for family in _FAMILIES.values():
        if model_type in family.hf_model_types:
            return family
    known = ", ".join(t for f in _FAMILIES.values() for t in f.hf_model_types)
    raise ExportError(f"unsupported transformers model_type {model_type!r} (supported: {known})")


def config_class(name: Optional[str]) -> type:
    """The ``model`` section's dataclass of ``model.type`` ``name``."""
    return get_family(name).config_class
