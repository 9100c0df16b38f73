"""RoBERTa for masked LM in Flax Linen, laid out like transformers' ``RobertaForMaskedLM``.

Linen is used on purpose: the model is a pure function ``apply(params, ...)`` of a plain
parameter pytree, which makes sharding, checkpointing, exact resume and the one-to-one mapping
onto the PyTorch state dict (:mod:`trainer.models.roberta_hf`) straightforward.

Parameter tree (``L`` layers)::

    embeddings/{word_embeddings,position_embeddings,token_type_embeddings}/embedding, LayerNorm
    layers_{i}/attention/{query,key,value}, attention/output/{dense,LayerNorm}
    layers_{i}/intermediate/dense, layers_{i}/output/{dense,LayerNorm}
    lm_head/{dense,layer_norm,bias}      (the decoder is tied to the word embeddings)

Compute runs in ``spec.dtype`` (bf16 by default) on ``spec.param_dtype`` (f32) master weights;
LayerNorm statistics, softmax and the loss are computed in float32.
"""

from __future__ import annotations

import dataclasses
from dataclasses import field
from typing import Literal, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from .base import ARCH, ModelFamily, ModelOptions, check_encoder, register_family
from .layers import mask_padded_vocab, resolve_attention_impl


@dataclasses.dataclass(frozen=True)
class RobertaArchitecture:
    """The network: sizes, numerics, dropout (BERTIN's RoBERTa-base by default).

    Declared once for the ``model`` config section (:class:`RobertaConfig`) and the resolved
    :class:`RobertaSpec` the model is built from; both extend it.
    """

    vocab_size: Optional[int] = field(default=None, metadata=ARCH)  # None: the tokenizer's size (BERTIN: 50 265)
    hidden_size: int = field(default=768, metadata=ARCH)
    num_layers: int = field(default=12, metadata=ARCH)
    num_heads: int = field(default=12, metadata=ARCH)
    intermediate_size: int = field(default=3072, metadata=ARCH)
    # RoBERTa offsets positions by pad_token_id + 1
    max_position_embeddings: int = field(default=514, metadata=ARCH)
    type_vocab_size: int = field(default=1, metadata=ARCH)
    layer_norm_eps: float = field(default=1e-5, metadata=ARCH)  # an imported folder's must match (logits change)
    hidden_dropout: float = 0.1
    # Dropout on attention probabilities forbids the fused (cuDNN) kernel; 0 keeps it usable.
    attention_dropout: float = 0.0
    initializer_range: float = 0.02
    dtype: Literal["bfloat16", "float32", "float16"] = "bfloat16"  # compute dtype
    param_dtype: Literal["float32", "bfloat16"] = "float32"  # master weights
    attention_impl: Literal["auto", "xla", "cudnn"] = "auto"
    # Rows of the word embeddings and LM-head bias padded to a multiple of this (1: no padding);
    # the padded logits are masked out and the export keeps the tokenizer's vocabulary size.
    pad_vocab_to_multiple_of: int = field(default=128, metadata=ARCH)
    # Rematerialisation: "full" recomputes each encoder layer's activations in the backward pass
    # (nn.remat), trading about a third more compute for activation memory.
    remat: Literal["none", "full"] = "none"


@dataclasses.dataclass(frozen=True)
class RobertaConfig(ModelOptions, RobertaArchitecture):
    """The ``model`` section of ``type: roberta`` (the default): RoBERTa encoder with a masked-LM head
    (transformers' ``RobertaForMaskedLM`` layout)."""

    positions_note = " (RoBERTa positions start at pad_token_id + 1)"

    def max_sequence_length(self, pad_token_id: int = 1) -> int:
        """``max_position_embeddings - (pad_token_id + 1)``: RoBERTa numbers positions from ``pad_token_id + 1``."""
        return self.max_position_embeddings - (pad_token_id + 1)

    def check(self) -> None:
        check_encoder(self)
        super().check()


@dataclasses.dataclass(frozen=True)
class RobertaSpec(RobertaArchitecture):
    """The resolved architecture the model is built from (hashable: a Linen attribute and a jit static).

    The network fields of the ``model`` config section (:class:`RobertaArchitecture`,
    BERTIN's RoBERTa-base by default) with what the config leaves open filled in: ``vocab_size``
    and ``pad_token_id`` (from the tokenizer), ``attention_impl`` (``"xla"`` or ``"cudnn"``; None
    means ``"xla"``).
    """

    vocab_size: int = dataclasses.field(metadata=ARCH)
    attention_impl: Optional[str] = None
    # 1 here (not the config's 128) so that specs of older checkpoints and transformers folders,
    # which have no padding, read back unchanged; the trainer passes the config's value.
    pad_vocab_to_multiple_of: int = dataclasses.field(default=1, metadata=ARCH)
    pad_token_id: int = dataclasses.field(default=1, metadata=ARCH)

    @classmethod
    def from_config(cls, model: RobertaArchitecture, vocab_size: int, pad_token_id: int,
                    backend: Optional[str] = None) -> "RobertaSpec":
        """``model``'s network fields with ``vocab_size``, ``pad_token_id`` and the attention resolved."""
        arch = {f.name: getattr(model, f.name) for f in dataclasses.fields(RobertaArchitecture)}
        impl = resolve_attention_impl(model.attention_impl, model.dtype, model.hidden_size // model.num_heads, backend)
        return cls(**{**arch, "vocab_size": vocab_size, "pad_token_id": pad_token_id, "attention_impl": impl})

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def padded_vocab_size(self) -> int:
        """Rows of the word embeddings and LM-head bias: ``vocab_size`` rounded up to the multiple."""
        m = max(1, self.pad_vocab_to_multiple_of)
        return -(-self.vocab_size // m) * m


#: The architecture fields trained weights depend on (``metadata["arch"]``): a checkpoint being
#: resumed or continued, or an imported transformers folder, must agree on every one.
ARCH_FIELDS = tuple(f.name for f in dataclasses.fields(RobertaSpec) if f.metadata.get("arch"))


def padding_lengths(mask: jax.Array):
    """``(lengths, right_padded)`` of an attention mask ``[batch, length]`` (1 = token, 0 = padding).

    ``lengths = max(sum(mask), 1)``: the sequence lengths of the cuDNN kernel's padding mask, which
    masks the positions ``>= length``; an all-padding row gets length 1 (length 0 gives NaN), its
    outputs are meaningless and its loss weights must be zero. ``right_padded`` is True for rows
    whose mask is ``1 ... 1 0 ... 0``, the only ones the lengths describe (left padding or holes
    need the explicit mask).
    """
    m = mask.astype(bool)
    n = jnp.sum(m, axis=-1, dtype=jnp.int32)
    right = jnp.all(m == (jnp.arange(m.shape[-1]) < n[..., None]), axis=-1)
    return jnp.maximum(n, 1), right


def roberta_position_ids(input_ids: jax.Array, pad_token_id: int) -> jax.Array:
    """RoBERTa positions: ``cumsum(ids != pad) * (ids != pad) + pad`` (pad tokens get ``pad``).

    Non-padding tokens are numbered ``pad + 1, pad + 2, ...`` exactly as transformers'
    ``create_position_ids_from_input_ids``.
    """
    not_pad = (input_ids != pad_token_id).astype(jnp.int32)
    return jnp.cumsum(not_pad, axis=1) * not_pad + pad_token_id


def _dense(spec: RobertaSpec, features: int, name: str) -> nn.Dense:
    return nn.Dense(
        features,
        dtype=spec.dtype,
        param_dtype=spec.param_dtype,
        kernel_init=nn.initializers.normal(spec.initializer_range),
        name=name,
    )


def _layer_norm(spec: RobertaSpec, name: str) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=spec.layer_norm_eps, dtype=spec.dtype, param_dtype=spec.param_dtype, name=name)


class Embeddings(nn.Module):
    spec: RobertaSpec

    def setup(self):
        s = self.spec
        init = nn.initializers.normal(s.initializer_range)
        kw = dict(dtype=s.dtype, param_dtype=s.param_dtype, embedding_init=init)
        self.word_embeddings = nn.Embed(s.padded_vocab_size, s.hidden_size, **kw)
        self.position_embeddings = nn.Embed(s.max_position_embeddings, s.hidden_size, **kw)
        self.token_type_embeddings = nn.Embed(s.type_vocab_size, s.hidden_size, **kw)
        self.LayerNorm = _layer_norm(s, None)
        self.dropout = nn.Dropout(s.hidden_dropout)

    def __call__(self, input_ids, deterministic: bool):
        positions = roberta_position_ids(input_ids, self.spec.pad_token_id)
        x = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)
            + self.token_type_embeddings(jnp.zeros_like(input_ids))
        )
        return self.dropout(self.LayerNorm(x), deterministic=deterministic)

    def attend(self, x):
        """Tied decoder: ``x @ word_embeddings.T``."""
        return self.word_embeddings.attend(x)


class SelfAttention(nn.Module):
    """Multi-head attention through ``jax.nn.dot_product_attention`` (fused when possible)."""

    spec: RobertaSpec

    @nn.compact
    def __call__(self, x, mask: Optional[jax.Array], deterministic: bool):
        s = self.spec
        b, t, _ = x.shape
        split = lambda y: y.reshape(b, t, s.num_heads, s.head_dim)  # noqa: E731
        q = split(_dense(s, s.hidden_size, "query")(x))
        k = split(_dense(s, s.hidden_size, "key")(x))
        v = split(_dense(s, s.hidden_size, "value")(x))
        if s.attention_dropout > 0.0 and not deterministic:
            out = _explicit_attention(q, k, v, mask, s.attention_dropout, self.make_rng("dropout"))
        elif s.attention_impl == "cudnn" and mask is None:
            out = jax.nn.dot_product_attention(q, k, v, implementation="cudnn")
        elif s.attention_impl == "cudnn":
            # The fused kernel's padding mask is a length per row: right for right-padded rows only.
            # Any other mask (left padding, holes) takes the explicit XLA path, decided at run time.
            lengths, right = padding_lengths(mask)
            out = jax.lax.cond(
                jnp.all(right),
                lambda: jax.nn.dot_product_attention(q, k, v, query_seq_lengths=lengths,
                                                     key_value_seq_lengths=lengths, implementation="cudnn"),
                lambda: _xla_attention(q, k, v, mask),
            )
        else:
            out = _xla_attention(q, k, v, mask)
        return out.reshape(b, t, s.hidden_size)


def _xla_attention(q, k, v, mask) -> jax.Array:
    m = None if mask is None else mask[:, None, None, :].astype(bool)
    return jax.nn.dot_product_attention(q, k, v, mask=m, implementation="xla")


def _explicit_attention(q, k, v, mask, rate: float, rng) -> jax.Array:
    """``softmax(q k^T / sqrt(d) + mask) -> dropout -> @ v`` (the path with attention dropout)."""
    logits = jnp.einsum("btnd,bsnd->bnts", q, k).astype(jnp.float32) / jnp.sqrt(q.shape[-1]).astype(jnp.float32)
    if mask is not None:
        logits = jnp.where(mask[:, None, None, :].astype(bool), logits, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(logits, axis=-1)
    keep = jax.random.bernoulli(rng, 1.0 - rate, probs.shape)
    probs = jnp.where(keep, probs / (1.0 - rate), 0.0).astype(v.dtype)
    return jnp.einsum("bnts,bsnd->btnd", probs, v)


class AttentionBlock(nn.Module):
    """transformers' ``RobertaAttention``: self-attention, projection, dropout, residual + LayerNorm."""

    spec: RobertaSpec

    @nn.compact
    def __call__(self, x, mask, deterministic: bool):
        s = self.spec
        h = SelfAttention(s, name="self")(x, mask, deterministic)
        h = _dense(s, s.hidden_size, "output_dense")(h)
        h = nn.Dropout(s.hidden_dropout)(h, deterministic=deterministic)
        return _layer_norm(s, "output_LayerNorm")(h + x)


class Layer(nn.Module):
    spec: RobertaSpec

    @nn.compact
    def __call__(self, x, mask, deterministic: bool):
        s = self.spec
        x = AttentionBlock(s, name="attention")(x, mask, deterministic)
        h = nn.gelu(_dense(s, s.intermediate_size, "intermediate_dense")(x), approximate=False)
        h = _dense(s, s.hidden_size, "output_dense")(h)
        h = nn.Dropout(s.hidden_dropout)(h, deterministic=deterministic)
        return _layer_norm(s, "output_LayerNorm")(h + x)


class LMHead(nn.Module):
    """dense -> GELU -> LayerNorm -> tied decoder + bias; the padded vocabulary rows' logits are masked."""

    spec: RobertaSpec

    @nn.compact
    def __call__(self, x, embeddings: Embeddings):
        s = self.spec
        h = nn.gelu(_dense(s, s.hidden_size, "dense")(x), approximate=False)
        h = _layer_norm(s, "layer_norm")(h)
        bias = self.param("bias", nn.initializers.zeros, (s.padded_vocab_size,), s.param_dtype)
        logits = embeddings.attend(h) + bias.astype(s.dtype)
        return mask_padded_vocab(logits, s.vocab_size)


class RobertaForMaskedLM(nn.Module):
    spec: RobertaSpec

    def setup(self):
        self.embeddings = Embeddings(self.spec)
        # model.remat "full": each layer's activations are recomputed in the backward pass
        # (argument 3, ``deterministic``, is a Python bool: static).
        layer = nn.remat(Layer, static_argnums=(3,)) if self.spec.remat == "full" else Layer
        self.layers = [layer(self.spec) for _ in range(self.spec.num_layers)]
        self.lm_head = LMHead(self.spec)

    def __call__(self, input_ids, attention_mask=None, deterministic: bool = True, predict_positions=None):
        """Logits ``[batch, length, padded vocab]`` in the compute dtype (padded ids masked).

        ``attention_mask`` (1 = attend, 0 = padding) may be None: packed training sequences
        have no padding, and a None mask keeps the fused attention kernel on its fastest path.
        ``predict_positions`` ``[batch, P]``: the LM head runs on those positions only (gathered
        first, as MosaicBERT does) and the logits are ``[batch, P, padded vocab]``.
        """
        x = self.embeddings(input_ids, deterministic)
        for layer in self.layers:
            x = layer(x, attention_mask, deterministic)
        if predict_positions is not None:
            x = jnp.take_along_axis(x, predict_positions[..., None].astype(jnp.int32), axis=1)
        return self.lm_head(x, self.embeddings)


def init_params(spec: RobertaSpec, key: jax.Array, seq_len: int = 8):
    """Random parameters (normal(initializer_range) weights, zero biases, unit LayerNorm scales)."""
    model = RobertaForMaskedLM(spec)
    ids = jnp.full((1, seq_len), spec.pad_token_id + 2, dtype=jnp.int32)
    return jax.jit(lambda k: model.init({"params": k}, ids, deterministic=True)["params"])(key)


class SequenceHead(nn.Module):
    """transformers' ``RobertaClassificationHead``: ``<s>`` state -> dropout -> dense -> tanh -> dropout -> out_proj."""

    spec: RobertaSpec
    num_labels: int

    @nn.compact
    def __call__(self, x, deterministic: bool):
        s = self.spec
        h = nn.Dropout(s.hidden_dropout)(x[:, 0], deterministic=deterministic)
        h = jnp.tanh(_dense(s, s.hidden_size, "dense")(h))
        h = nn.Dropout(s.hidden_dropout)(h, deterministic=deterministic)
        return _dense(s, self.num_labels, "out_proj")(h)


class RobertaForClassification(nn.Module):
    """The encoder (``embeddings``, ``layers_{i}``) and a ``classifier``: ``per_token`` (dropout -> Dense,
    logits ``[batch, length, labels]``, transformers' token head) or not (:class:`SequenceHead`,
    ``[batch, labels]``); float32 logits."""

    spec: RobertaSpec
    num_labels: int
    per_token: bool

    def setup(self):
        s = self.spec
        self.embeddings = Embeddings(s)
        layer = nn.remat(Layer, static_argnums=(3,)) if s.remat == "full" else Layer
        self.layers = [layer(s) for _ in range(s.num_layers)]
        self.dropout = nn.Dropout(s.hidden_dropout)
        if self.per_token:
            self.classifier = _dense(s, self.num_labels, "classifier")
        else:
            self.classifier = SequenceHead(s, self.num_labels)

    def __call__(self, input_ids, attention_mask=None, deterministic: bool = True):
        x = self.embeddings(input_ids, deterministic)
        for layer in self.layers:
            x = layer(x, attention_mask, deterministic)
        if self.per_token:
            logits = self.classifier(self.dropout(x, deterministic=deterministic))
        else:
            logits = self.classifier(x, deterministic)
        return logits.astype(jnp.float32)


def init_classifier_params(spec: RobertaSpec, num_labels: int, per_token: bool, key: jax.Array, seq_len: int = 8):
    """Random parameters of the whole classification model (encoder and head)."""
    model = RobertaForClassification(spec, num_labels, per_token)
    ids = jnp.full((1, seq_len), spec.pad_token_id + 2, dtype=jnp.int32)
    return jax.jit(lambda k: model.init({"params": k}, ids, deterministic=True)["params"])(key)


@register_family
class RobertaFamily(ModelFamily):
    """RoBERTa (BERTIN's architecture): learned positions offset by ``pad_token_id + 1``, post-LayerNorm."""

    name = "roberta"
    title = "RoBERTa"
    config_class = RobertaConfig
    spec_class = RobertaSpec
    hf_module = __package__ + ".roberta_hf"
    hf_architecture_prefix = "Roberta"
    wordpiece = False
    hf_model_types = ("roberta", "xlm-roberta", "camembert")
    # RobertaForQuestionAnswering: the token classifier (2 outputs) is ``qa_outputs``; RobertaForMultipleChoice:
    # the sequence head's dense is the pooler, its out_proj (1 output) the ``classifier``
    hf_task_heads = {"ForQuestionAnswering": {"classifier": "qa_outputs"},
                     "ForMultipleChoice": {"classifier.dense": "roberta.pooler.dense",
                                           "classifier.out_proj": "classifier"}}
    vocab_row_paths = (("embeddings", "word_embeddings", "embedding"), ("lm_head", "bias"))
    reinit_paths = vocab_row_paths
    position_paths = (("embeddings", "position_embeddings", "embedding"),)
    mlm_only_params = ("lm_head",)
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
        "lm_head/dense/kernel": "head dense W",
        "lm_head/dense/bias": "head dense b",
        "lm_head/layer_norm/scale": "head LN scale",
        "lm_head/layer_norm/bias": "head LN bias",
        "lm_head/bias": "head bias",
    }

    def spec_from_config(self, model, vocab_size, pad_token_id, eos_token_id=None, backend=None):
        return RobertaSpec.from_config(model, vocab_size=vocab_size, pad_token_id=pad_token_id, backend=backend)

    def max_length(self, spec) -> int:
        """RoBERTa's positions start after the padding id: ``max_position_embeddings - pad_token_id - 1``."""
        return spec.max_position_embeddings - spec.pad_token_id - 1

    def mlm_module(self, spec):
        return RobertaForMaskedLM(spec)

    def init_params(self, spec, key, seq_len: int = 8):
        return init_params(spec, key, seq_len)

    def classifier_module(self, spec, num_labels, per_token):
        return RobertaForClassification(spec, num_labels, per_token)

    def init_classifier_params(self, spec, num_labels, per_token, key, seq_len: int = 8):
        return init_classifier_params(spec, num_labels, per_token, key, seq_len)

    def encoder_matmul_params(self, spec) -> int:
        """Per layer ``4 H^2`` (Q, K, V, output) ``+ 2 H I`` (FFN)."""
        h, i = spec.hidden_size, spec.intermediate_size
        return spec.num_layers * (4 * h * h + 2 * h * i)

    def head_matmul_params(self, spec) -> int:
        """``H^2`` (dense) ``+ V H`` (the tied decoder, ``V`` the real vocabulary)."""
        h = spec.hidden_size
        return h * h + spec.vocab_size * h
