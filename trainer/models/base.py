"""The model-family interface and its registry (``model.type`` in the YAML, as levanter's ``register_subclass``).

A family is one encoder architecture with a masked-LM head. It carries:

* its ``model`` config section (:attr:`ModelFamily.config_class`: the network fields plus the
  shared :class:`ModelOptions`, with the section's checks, :meth:`ModelOptions.check`) and the
  resolved, hashable spec the network is built from (:attr:`ModelFamily.spec_class`;
  :meth:`~ModelFamily.spec_from_config`, :meth:`~ModelFamily.spec_from_dict` for checkpoint metadata);
* the networks: :meth:`~ModelFamily.mlm_module` (``__call__(input_ids, attention_mask=None,
  deterministic=True, predict_positions=None, **packed)``), :meth:`~ModelFamily.classifier_module`
  (the encoder with the family's transformers classifier layout, per token or per sequence: which
  one, the head's pooling and the architecture suffix are the task kind's, :mod:`trainer.finetune.kinds`),
  their initialisations, and :meth:`~ModelFamily.packed_inputs` (what a
  packed training row tells the network besides its ids, e.g. document ids);
* FLOPs per token (:meth:`~ModelFamily.encoder_matmul_params`, :meth:`~ModelFamily.head_matmul_params`,
  :meth:`~ModelFamily.attention_flops`);
* parameter-path conventions (vocabulary rows, re-initialised embeddings, position embeddings,
  the per-layer module kinds of the weight statistics);
* the mapping to and from transformers: :attr:`~ModelFamily.hf_module` names a module with
  ``export_pretrained``, ``import_pretrained``, ``spec_to_hf_config``, ``hf_config_to_spec``,
  ``read_state_dict``, ``encoder_from_state_dict``, ``head_from_state_dict`` and
  ``classifier_to_state_dict`` (imported on first use: it needs ``transformers`` only then);
  :attr:`~ModelFamily.hf_architecture_prefix` names its transformers classes (``Roberta`` +
  ``ForMaskedLM``, + the task kind's suffix).

Adding a family is one module (config section, network and a :class:`ModelFamily` subclass decorated
with :func:`register_family`), its transformers mapping, its import in :mod:`trainer.models` and its test.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
from dataclasses import field
from typing import Any, ClassVar, Optional

from ..errors import ConfigError, ExportError

_FAMILIES: dict[str, "ModelFamily"] = {}
#: an encoder layer's parameter group (:meth:`ModelFamily.layer_of`)
_LAYER_NAME = re.compile(r"layers_(\d+)")
#: ``model.type`` of checkpoints and configs that do not name one.
DEFAULT_TYPE = "roberta"

#: Field metadata of the architecture values the trained weights depend on: a checkpoint being
#: resumed or an imported transformers folder must agree on each (:meth:`ModelFamily.arch_fields`).
ARCH = {"arch": True}


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """What every ``model`` section has besides its network: the family and where the weights start from.

    ``type`` names the model family (:func:`family_names`); the section's other keys are that
    family's network fields (its :attr:`ModelFamily.config_class`, which extends this class and
    owns its checks, :meth:`check`).
    """

    type: str = DEFAULT_TYPE
    # A transformers folder of the same family to start from (weights imported one to one).
    init_from_transformers: Optional[str] = None
    # Transfer / continued pretraining with a new tokenizer (trainer.research.transfer): a checkpoint of this
    # trainer, a transformers folder of the same family or a Hub id; every other weight is taken from it.
    transfer_from: Optional[str] = None
    reinit_embeddings: bool = True  # with transfer_from: fresh word embeddings, tied decoder and LM-head bias
    reset_position_embeddings: bool = False  # with transfer_from: fresh position embeddings too
    # Regexes (re.fullmatch) over "/"-joined parameter paths, e.g. "embeddings/.*": no update, no decay.
    freeze: list[str] = field(default_factory=list)

    #: how the family numbers positions, for the message of a too long ``data.max_seq_length``
    positions_note: ClassVar[str] = ""

    def max_sequence_length(self, pad_token_id: int = 1) -> int:
        """Longest input the network's positions allow (the family's rule)."""
        raise NotImplementedError

    def check(self) -> None:
        """The section's checks (ConfigError naming the key): the shared options; a family adds its own."""
        for pattern in self.freeze:
            try:
                re.compile(pattern)
            except re.error as e:
                raise ConfigError(f"model.freeze: {pattern!r} is not a regular expression: {e}") from None


def check_encoder(m) -> None:
    """The checks of the network fields every transformer encoder section has (sizes > 0, heads dividing
    the width, dropout rates in [0, 1), the cuDNN attention's needs); ConfigError naming the key."""
    for key in ("hidden_size", "num_layers", "num_heads", "intermediate_size", "max_position_embeddings"):
        positive(f"model.{key}", getattr(m, key))
    if m.vocab_size is not None:
        positive("model.vocab_size", m.vocab_size)
    positive("model.pad_vocab_to_multiple_of", m.pad_vocab_to_multiple_of)
    if m.hidden_size % m.num_heads:
        raise ConfigError(f"model.hidden_size ({m.hidden_size}) must be divisible by model.num_heads ({m.num_heads})")
    for key in ("hidden_dropout", "attention_dropout"):
        if not 0.0 <= getattr(m, key) < 1.0:
            raise ConfigError(f"config key 'model.{key}' must be in [0, 1), got {getattr(m, key)}")
    if m.attention_impl == "cudnn" and m.attention_dropout > 0:
        raise ConfigError("model.attention_impl 'cudnn' has no attention dropout; set model.attention_dropout=0")
    if m.attention_impl == "cudnn" and m.dtype == "float32":
        raise ConfigError("model.attention_impl 'cudnn' needs model.dtype bfloat16 or float16")


def positive(key: str, value) -> None:
    """ConfigError ``config key 'KEY' must be > 0, got VALUE`` unless ``value > 0``."""
    if value <= 0:
        raise ConfigError(f"config key '{key}' must be > 0, got {value}")


class ModelFamily:
    """One encoder family (see the module docstring). Subclasses set the class attributes."""

    name: ClassVar[str]
    #: how messages and Hub commits name the family ("RoBERTa")
    title: ClassVar[str]
    config_class: ClassVar[type]
    spec_class: ClassVar[type]
    hf_module: ClassVar[str]
    #: transformers class names of the family start with it ("Roberta": RobertaForMaskedLM, ...)
    hf_architecture_prefix: ClassVar[str]
    #: transformers classes of task kinds whose head is the family's token or sequence classifier under other
    #: names: ``{architecture suffix: {prefix of the classifier's torch names: transformers' prefix}}`` (an
    #: empty dict: the same names); a suffix missing here: the family has no such class
    #: (:meth:`trainer.finetune.kinds.base.TaskKind.head_names`)
    hf_task_heads: ClassVar[dict[str, dict[str, str]]] = {}
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
    #: whether the masked-LM network also has a next-sentence-prediction head (``training.objective: mlm+nsp``):
    #: its :meth:`mlm_module` then takes ``token_type_ids`` and ``next_sentence=True`` returns ``(mlm, nsp)``
    next_sentence_head: ClassVar[bool] = False
    #: the tokenizer model the family is trained with: True, a WordPiece one (BERT's ``[CLS] [SEP] [MASK]``);
    #: False, anything but WordPiece (RoBERTa's byte-level BPE, SentencePiece); None: any
    wordpiece: ClassVar[Optional[bool]] = None
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

    def layer_of(self, path: tuple[str, ...]) -> Optional[int]:
        """Where a parameter (its path of names, e.g. ``("model", "layers_3", "attn", "Wqkv", "kernel")``) sits in
        the encoder: ``i`` inside encoder layer ``i`` (``layers_{i}``, 0 at the bottom), ``-1`` in the embeddings,
        None above the encoder (final norm, prediction head, classifier). Fine-tuning's layer-wise learning rates,
        freezing and re-initialisation read it; a family whose names differ overrides it."""
        for name in path:
            m = _LAYER_NAME.fullmatch(name)
            if m:
                return int(m.group(1))
            if name == "embeddings":
                return -1
        return None

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

    def classifier_module(self, spec, num_labels: int, per_token: bool):
        """The encoder with a classifier laid out as the family's transformers ``...For*Classification``:
        logits ``[batch, length, labels]`` (``per_token``) or ``[batch, labels]`` (from the first token)."""
        raise NotImplementedError

    def init_classifier_params(self, spec, num_labels: int, per_token: bool, key, seq_len: int = 8):
        raise NotImplementedError

    def apply_mlm(self, spec, params, input_ids, attention_mask=None, deterministic: bool = True,
                  dropout_key=None, predict_positions=None, source_tokens=None):
        """Masked-LM logits; ``source_tokens``: the unmasked packed rows (:meth:`packed_inputs`)."""
        packed = self.packed_inputs(spec, source_tokens) if source_tokens is not None else {}
        rngs = {"dropout": dropout_key} if dropout_key is not None else {}
        return self.mlm_module(spec).apply({"params": params}, input_ids, attention_mask=attention_mask,
                                           deterministic=deterministic, rngs=rngs,
                                           predict_positions=predict_positions, **packed)

    def apply_pretraining(self, spec, params, input_ids, token_type_ids, attention_mask=None,
                          deterministic: bool = True, dropout_key=None, predict_positions=None):
        """``(masked-LM logits, next-sentence logits [batch, 2])`` of a family with :attr:`next_sentence_head`."""
        rngs = {"dropout": dropout_key} if dropout_key is not None else {}
        return self.mlm_module(spec).apply({"params": params}, input_ids, attention_mask=attention_mask,
                                           deterministic=deterministic, rngs=rngs, predict_positions=predict_positions,
                                           token_type_ids=token_type_ids, next_sentence=True)

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
    """The registered families, the default (RoBERTa) first, then in registration order."""
    return tuple(sorted(_FAMILIES, key=lambda name: name != DEFAULT_TYPE))


def _ordered() -> list["ModelFamily"]:
    return [_FAMILIES[name] for name in family_names()]


def get_family(name: Optional[str]) -> ModelFamily:
    """The family registered as ``name`` (None: the default, RoBERTa)."""
    name = DEFAULT_TYPE if name is None else name
    if name not in _FAMILIES:
        raise ConfigError(f"model.type {name!r} is not a model family (valid: {', '.join(family_names())})")
    return _FAMILIES[name]


def family_of(spec_or_config) -> ModelFamily:
    """The family of a spec or ``model`` config section (by its class)."""
    for family in _ordered():
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
    for family in _ordered():
        if model_type in family.hf_model_types:
            return family
    known = ", ".join(t for f in _ordered() for t in f.hf_model_types)
    raise ExportError(f"unsupported transformers model_type {model_type!r} (supported: {known})")


def config_class(name: Optional[str]) -> type:
    """The ``model`` section's dataclass of ``model.type`` ``name``."""
    return get_family(name).config_class


def default_model_config() -> ModelOptions:
    """The ``model`` section of a config that gives none: the default family's defaults."""
    return config_class(None)()
