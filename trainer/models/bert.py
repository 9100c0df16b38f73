"""BERT (Devlin et al., 2019) in Flax Linen, laid out like transformers' ``BertForPreTraining``.

The encoder is RoBERTa's (:mod:`.roberta`: the same post-LayerNorm layers, reused module for module)
with BERT's embeddings: absolute positions numbered from 0 (RoBERTa starts at ``pad_token_id + 1``)
and token type embeddings (segment A = 0, segment B = 1). On top: the pooler
(``tanh(dense(h[CLS]))``), the masked-LM head (``dense -> GELU -> LayerNorm -> tied decoder + bias``)
and the next-sentence-prediction head (a 2-way dense layer on the pooled ``[CLS]``; label 0: B is the
true next segment, 1: B is random, as in transformers).

Parameter tree (``L`` layers)::

    embeddings/{word_embeddings,position_embeddings,token_type_embeddings}/embedding, LayerNorm
    layers_{i}/...                       (as RoBERTa's)
    pooler/{kernel,bias}
    lm_head/{dense,layer_norm,bias}      (cls.predictions; the decoder is tied to the word embeddings)
    nsp/{kernel,bias}                    (cls.seq_relationship)

The masked-LM network returns the masked-LM logits; ``next_sentence=True`` returns ``(mlm, nsp)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Literal, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from .base import ARCH, ModelFamily, ModelOptions, check_encoder, register_family
from .layers import resolve_attention_impl
from .roberta import Layer, LMHead, _dense, _layer_norm


@dataclasses.dataclass(frozen=True)
class BertArchitecture:
    """The network fields of a ``type: bert`` model section (BERT-base, MultiBERTs' ``config.json``, by default)."""

    vocab_size: Optional[int] = field(default=None, metadata=ARCH)  # None: the tokenizer's size (BERT: 30 522)
    hidden_size: int = field(default=768, metadata=ARCH)
    num_layers: int = field(default=12, metadata=ARCH)
    num_heads: int = field(default=12, metadata=ARCH)
    intermediate_size: int = field(default=3072, metadata=ARCH)
    max_position_embeddings: int = field(default=512, metadata=ARCH)  # positions 0 .. 511
    type_vocab_size: int = field(default=2, metadata=ARCH)  # segments A and B
    layer_norm_eps: float = 1e-12
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1  # BERT's; 0 allows the fused (cuDNN) attention
    initializer_range: float = 0.02
    dtype: Literal["bfloat16", "float32", "float16"] = "bfloat16"
    param_dtype: Literal["float32", "bfloat16"] = "float32"
    attention_impl: Literal["auto", "xla", "cudnn"] = "auto"
    pad_vocab_to_multiple_of: int = field(default=128, metadata=ARCH)
    remat: Literal["none", "full"] = "none"


@dataclasses.dataclass(frozen=True)
class BertConfig(ModelOptions, BertArchitecture):
    """The ``model`` section of ``type: bert``: BERT with its masked-LM and next-sentence heads."""

    type: str = "bert"
    positions_note = " (BERT positions start at 0)"

    def max_sequence_length(self, pad_token_id: int = 0) -> int:
        """``max_position_embeddings``: BERT numbers positions from 0."""
        return self.max_position_embeddings

    def check(self) -> None:
        check_encoder(self)
        super().check()


@dataclasses.dataclass(frozen=True)
class BertSpec(BertArchitecture):
    """The resolved architecture (hashable): the config's network fields, the tokenizer's ``vocab_size``
    and ``pad_token_id``, the attention implementation."""

    vocab_size: int = field(default=30522, metadata=ARCH)
    attention_impl: Optional[str] = None
    pad_vocab_to_multiple_of: int = field(default=1, metadata=ARCH)
    pad_token_id: int = field(default=0, metadata=ARCH)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def padded_vocab_size(self) -> int:
        m = max(1, self.pad_vocab_to_multiple_of)
        return -(-self.vocab_size // m) * m


class Embeddings(nn.Module):
    """word + position (``0 .. T-1``) + token type embeddings -> LayerNorm -> dropout."""

    spec: BertSpec

    def setup(self):
        s = self.spec
        kw = dict(dtype=s.dtype, param_dtype=s.param_dtype, embedding_init=nn.initializers.normal(s.initializer_range))
        self.word_embeddings = nn.Embed(s.padded_vocab_size, s.hidden_size, **kw)
        self.position_embeddings = nn.Embed(s.max_position_embeddings, s.hidden_size, **kw)
        self.token_type_embeddings = nn.Embed(s.type_vocab_size, s.hidden_size, **kw)
        self.LayerNorm = _layer_norm(s, None)
        self.dropout = nn.Dropout(s.hidden_dropout)

    def __call__(self, input_ids, token_type_ids, deterministic: bool):
        positions = jnp.arange(input_ids.shape[-1])[None, :]
        types = jnp.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings(types)
        return self.dropout(self.LayerNorm(x), deterministic=deterministic)

    def attend(self, x):
        """Tied decoder: ``x @ word_embeddings.T``."""
        return self.word_embeddings.attend(x)


def _layers(spec: BertSpec):
    layer = nn.remat(Layer, static_argnums=(3,)) if spec.remat == "full" else Layer
    return [layer(spec) for _ in range(spec.num_layers)]


def _encode(module, input_ids, attention_mask, token_type_ids, deterministic):
    x = module.embeddings(input_ids, token_type_ids, deterministic)
    for layer in module.layers:
        x = layer(x, attention_mask, deterministic)
    return x


class BertForPreTraining(nn.Module):
    spec: BertSpec

    def setup(self):
        s = self.spec
        self.embeddings = Embeddings(s)
        self.layers = _layers(s)
        self.pooler = _dense(s, s.hidden_size, "pooler")
        self.lm_head = LMHead(s)
        self.nsp = _dense(s, 2, "nsp")

    def __call__(self, input_ids, attention_mask=None, deterministic: bool = True, predict_positions=None,
                 token_type_ids=None, next_sentence: bool = False):
        """Masked-LM logits ``[batch, length or P, padded vocab]`` (as RoBERTa's); with ``next_sentence``
        also the next-sentence logits ``[batch, 2]`` (float32) from the pooled first token."""
        x = _encode(self, input_ids, attention_mask, token_type_ids, deterministic)
        nsp = self.nsp(jnp.tanh(self.pooler(x[:, 0]))).astype(jnp.float32) if next_sentence else None
        if predict_positions is not None:
            x = jnp.take_along_axis(x, predict_positions[..., None].astype(jnp.int32), axis=1)
        mlm = self.lm_head(x, self.embeddings)
        return (mlm, nsp) if next_sentence else mlm


class BertForClassification(nn.Module):
    """transformers' ``BertForTokenClassification`` (``per_token``: dropout -> ``classifier`` on every
    token) or ``BertForSequenceClassification`` (the pooler, dropout, ``classifier``); float32 logits."""

    spec: BertSpec
    num_labels: int
    per_token: bool

    def setup(self):
        s = self.spec
        self.embeddings = Embeddings(s)
        self.layers = _layers(s)
        if not self.per_token:
            self.pooler = _dense(s, s.hidden_size, "pooler")
        self.dropout = nn.Dropout(s.hidden_dropout)
        self.classifier = _dense(s, self.num_labels, "classifier")

    def __call__(self, input_ids, attention_mask=None, deterministic: bool = True, token_type_ids=None):
        x = _encode(self, input_ids, attention_mask, token_type_ids, deterministic)
        if not self.per_token:
            x = jnp.tanh(self.pooler(x[:, 0]))
        return self.classifier(self.dropout(x, deterministic=deterministic)).astype(jnp.float32)


def _init_ids(spec: BertSpec, seq_len: int):
    return jnp.full((1, seq_len), min(spec.pad_token_id + 2, spec.vocab_size - 1), dtype=jnp.int32)


def init_params(spec: BertSpec, key: jax.Array, seq_len: int = 8):
    """Random parameters of every head (normal(initializer_range) weights, zero biases, unit LayerNorm scales)."""
    model = BertForPreTraining(spec)
    ids = _init_ids(spec, seq_len)
    return jax.jit(lambda k: model.init({"params": k}, ids, deterministic=True, next_sentence=True)["params"])(key)


def init_classifier_params(spec: BertSpec, num_labels: int, per_token: bool, key: jax.Array, seq_len: int = 8):
    model = BertForClassification(spec, num_labels, per_token)
    ids = _init_ids(spec, seq_len)
    return jax.jit(lambda k: model.init({"params": k}, ids, deterministic=True)["params"])(key)


@register_family
class BertFamily(ModelFamily):
    """BERT: absolute positions from 0, token types, post-LayerNorm, pooler, masked-LM and next-sentence heads."""

    name = "bert"
    title = "BERT"
    config_class = BertConfig
    spec_class = BertSpec
    hf_module = __package__ + ".bert_hf"
    hf_architecture_prefix = "Bert"
    hf_model_types = ("bert",)
    # BertForQuestionAnswering: the token classifier named qa_outputs (no pooler); BertForMultipleChoice: the
    # sequence classifier (pooler, classifier) under the same names
    hf_task_heads = {"ForQuestionAnswering": {"classifier": "qa_outputs"}, "ForMultipleChoice": {}}
    vocab_row_paths = (("embeddings", "word_embeddings", "embedding"), ("lm_head", "bias"))
    reinit_paths = vocab_row_paths
    position_paths = (("embeddings", "position_embeddings", "embedding"),)
    mlm_only_params = ("lm_head", "nsp")
    #: the family has a next-sentence-prediction head (``training.objective: mlm+nsp``)
    next_sentence_head = True
    wordpiece = True
    layer_modules = {
        "attention/self/query": "attention query",
        "attention/self/key": "attention key",
        "attention/self/value": "attention value",
        "attention/output_dense": "attention output",
        "attention/output_LayerNorm": "attention LayerNorm",
        "intermediate_dense": "intermediate",
        "output_dense": "output",
        "output_LayerNorm": "output LayerNorm",
    }
    other_names = {
        "embeddings/word_embeddings/embedding": "word emb",
        "embeddings/position_embeddings/embedding": "position emb",
        "embeddings/token_type_embeddings/embedding": "type emb",
        "embeddings/LayerNorm/scale": "emb LN scale",
        "embeddings/LayerNorm/bias": "emb LN bias",
        "pooler/kernel": "pooler W",
        "pooler/bias": "pooler b",
        "lm_head/dense/kernel": "head dense W",
        "lm_head/dense/bias": "head dense b",
        "lm_head/layer_norm/scale": "head LN scale",
        "lm_head/layer_norm/bias": "head LN bias",
        "lm_head/bias": "head bias",
        "nsp/kernel": "NSP W",
        "nsp/bias": "NSP b",
    }

    def spec_from_config(self, model, vocab_size, pad_token_id, eos_token_id=None, backend=None):
        arch = {f.name: getattr(model, f.name) for f in dataclasses.fields(BertArchitecture)}
        impl = resolve_attention_impl(model.attention_impl, model.dtype, model.hidden_size // model.num_heads, backend)
        return BertSpec(**{**arch, "vocab_size": vocab_size, "pad_token_id": pad_token_id, "attention_impl": impl})

    def max_length(self, spec) -> int:
        """Positions from 0: ``max_position_embeddings``."""
        return spec.max_position_embeddings

    def mlm_module(self, spec):
        return BertForPreTraining(spec)

    def init_params(self, spec, key, seq_len: int = 8):
        return init_params(spec, key, seq_len)

    def classifier_module(self, spec, num_labels, per_token):
        return BertForClassification(spec, num_labels, per_token)

    def init_classifier_params(self, spec, num_labels, per_token, key, seq_len: int = 8):
        return init_classifier_params(spec, num_labels, per_token, key, seq_len)

    def encoder_matmul_params(self, spec) -> int:
        """Per layer ``4 H^2`` (Q, K, V, output) ``+ 2 H I`` (FFN)."""
        h, i = spec.hidden_size, spec.intermediate_size
        return spec.num_layers * (4 * h * h + 2 * h * i)

    def head_matmul_params(self, spec) -> int:
        """``H^2`` (the head's dense) ``+ V H`` (the tied decoder); the pooler and NSP layers act on one token."""
        h = spec.hidden_size
        return h * h + spec.vocab_size * h
