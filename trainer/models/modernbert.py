"""ModernBERT for masked LM in Flax Linen, laid out like transformers' ``ModernBertForMaskedLM``.

The architecture of Warner et al. (2024), "Smarter, Better, Faster, Longer": rotary positions
(RoPE), GeGLU feed-forward, pre-LayerNorm without biases, no biases in the linear layers,
alternating global and local attention (every ``global_attn_every_n_layers``-th layer, from layer
0, is global with RoPE theta ``global_rope_theta``; the others attend to the tokens at most
``local_attention // 2`` positions away with theta ``local_rope_theta``), a final LayerNorm, and the
head ``dense -> GELU -> LayerNorm -> tied decoder (+ bias)``.

Padding-free training on packed rows: the trainer's rows hold several documents
(``<s> doc </s> doc </s> ...``, :mod:`trainer.data.packing`). With ``document_masking`` (the
default) :meth:`ModernBertFamily.packed_inputs` gives every token its document id (a document ends
with its ``</s>``), attention stays inside a document and the rotary positions restart at 0 with
each document: the row computes what the unpadded, concatenated documents of ModernBERT's
FlashAttention path compute. Without document ids (inference, fine-tuning, the transformers parity)
the row is one sequence with positions ``0 .. L-1``, as in transformers.

Parameter tree (``L`` layers)::

    embeddings/{tok_embeddings/embedding, norm}
    layers_{i}/attn_norm (not in layer 0), attn/{Wqkv,Wo}, mlp_norm, mlp/{Wi,Wo}
    final_norm, head/{dense,norm}, decoder/bias     (the decoder weight is tok_embeddings)

Compute runs in ``spec.dtype`` on ``spec.param_dtype`` master weights; LayerNorm statistics, RoPE,
softmax and the loss are computed in float32.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import field
from typing import Literal, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..errors import ConfigError
from .base import ARCH, ModelFamily, ModelOptions, check_encoder, register_family
from .layers import mask_padded_vocab, resolve_attention_impl


@dataclasses.dataclass(frozen=True)
class ModernBertArchitecture:
    """The network fields of a ``type: modernbert`` model section (ModernBERT-base by default,
    transformers' ``ModernBertConfig``)."""

    vocab_size: Optional[int] = field(default=None, metadata=ARCH)  # None: the tokenizer's size
    hidden_size: int = field(default=768, metadata=ARCH)
    num_layers: int = field(default=22, metadata=ARCH)
    num_heads: int = field(default=12, metadata=ARCH)
    intermediate_size: int = field(default=1152, metadata=ARCH)  # GeGLU: Wi projects to 2x this
    # the longest sequence (rotary positions: no table; ModernBERT was trained to 8192)
    max_position_embeddings: int = 8192
    global_attn_every_n_layers: int = field(default=3, metadata=ARCH)
    local_attention: int = field(default=128, metadata=ARCH)  # the local window: local_attention // 2 each side
    global_rope_theta: float = field(default=160_000.0, metadata=ARCH)
    local_rope_theta: float = field(default=10_000.0, metadata=ARCH)
    norm_eps: float = field(default=1e-5, metadata=ARCH)  # an imported folder's must match (logits change)
    norm_bias: bool = field(default=False, metadata=ARCH)
    decoder_bias: bool = field(default=True, metadata=ARCH)
    hidden_dropout: float = 0.0  # embedding and MLP dropout (ModernBERT: 0)
    attention_dropout: float = 0.0  # on the attention output (as transformers' out_drop)
    initializer_range: float = 0.02
    initializer_cutoff_factor: float = 2.0  # truncated normal at +- this many standard deviations
    dtype: Literal["bfloat16", "float32", "float16"] = "bfloat16"
    param_dtype: Literal["float32", "bfloat16"] = "float32"
    attention_impl: Literal["auto", "xla", "cudnn"] = "auto"
    pad_vocab_to_multiple_of: int = field(default=128, metadata=ARCH)
    remat: Literal["none", "full"] = "none"
    # packed training rows: attention within a document, positions restarting per document
    document_masking: bool = True


@dataclasses.dataclass(frozen=True)
class ModernBertConfig(ModelOptions, ModernBertArchitecture):
    """The ``model`` section of ``type: modernbert``."""

    type: str = "modernbert"

    def max_sequence_length(self, pad_token_id: int = 1) -> int:
        """Rotary positions: ``max_position_embeddings`` tokens."""
        return self.max_position_embeddings

    def check(self) -> None:
        check_encoder(self)
        if self.reset_position_embeddings:
            raise ConfigError("model.reset_position_embeddings: a modernbert model has rotary positions, no "
                              "position embeddings to reset; remove the option")
        for key in ("global_attn_every_n_layers", "local_attention"):
            if getattr(self, key) < 1:
                raise ConfigError(f"config key 'model.{key}' must be >= 1, got {getattr(self, key)}")
        for key in ("global_rope_theta", "local_rope_theta"):
            if not getattr(self, key) > 0:
                raise ConfigError(f"config key 'model.{key}' must be > 0, got {getattr(self, key)}")
        super().check()


@dataclasses.dataclass(frozen=True)
class ModernBertSpec(ModernBertArchitecture):
    """The resolved architecture (hashable): the config's network fields, the tokenizer's
    ``vocab_size``, ``pad_token_id`` and ``eos_token_id`` (the document separator), the attention."""

    vocab_size: int = field(default=50368, metadata=ARCH)
    attention_impl: Optional[str] = None
    pad_vocab_to_multiple_of: int = field(default=1, metadata=ARCH)
    pad_token_id: int = field(default=1, metadata=ARCH)
    eos_token_id: Optional[int] = 2

    def __post_init__(self):
        # every n >= num_layers gives the same layers (only layer 0 global): one value for one network, so that
        # specs compare equal (a transformers config.json holds the layer types, not n)
        object.__setattr__(self, "global_attn_every_n_layers", min(self.global_attn_every_n_layers,
                                                                   max(self.num_layers, 1)))

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def padded_vocab_size(self) -> int:
        m = max(1, self.pad_vocab_to_multiple_of)
        return -(-self.vocab_size // m) * m

    def is_global(self, layer: int) -> bool:
        """Layer ``layer`` attends globally (``layer % global_attn_every_n_layers == 0``)."""
        return layer % self.global_attn_every_n_layers == 0


def _init(spec: ModernBertSpec, std: float):
    c = spec.initializer_cutoff_factor
    return nn.initializers.truncated_normal(std, lower=-c, upper=c)


def _dense(spec: ModernBertSpec, features: int, name: str, std: Optional[float] = None) -> nn.Dense:
    return nn.Dense(features, use_bias=False, dtype=spec.dtype, param_dtype=spec.param_dtype,
                    kernel_init=_init(spec, spec.initializer_range if std is None else std), name=name)


def _out_std(spec: ModernBertSpec) -> float:
    """transformers' "out" standard deviation: ``initializer_range / sqrt(2 L)``."""
    return spec.initializer_range / math.sqrt(2.0 * spec.num_layers)


def _norm(spec: ModernBertSpec, name: Optional[str]) -> nn.LayerNorm:
    return nn.LayerNorm(epsilon=spec.norm_eps, use_bias=spec.norm_bias, dtype=spec.dtype,
                        param_dtype=spec.param_dtype, name=name)


def document_ids(tokens: jax.Array, eos_token_id: int) -> jax.Array:
    """Document index of each token of packed rows: ``sum_{j < i} [tokens_j == eos]`` (a document ends with
    its ``</s>``)."""
    ends = (tokens == eos_token_id).astype(jnp.int32)
    return jnp.cumsum(ends, axis=-1) - ends


def document_positions(segment_ids: jax.Array) -> jax.Array:
    """Positions restarting at 0 with each document: ``i - (first index of i's document)``."""
    t = segment_ids.shape[-1]
    idx = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), segment_ids.shape)
    start = jnp.concatenate([jnp.ones_like(segment_ids[..., :1], bool),
                             segment_ids[..., 1:] != segment_ids[..., :-1]], axis=-1)
    return idx - jax.lax.cummax(jnp.where(start, idx, 0), axis=segment_ids.ndim - 1)


def rope(x: jax.Array, positions: jax.Array, theta: float) -> jax.Array:
    """Rotary embedding of ``x [b, t, heads, d]``: ``x cos(p w) + rotate_half(x) sin(p w)``,
    ``w_k = theta^(-2k/d)`` (the frequencies repeated for both halves), in float32."""
    d = x.shape[-1]
    inv_freq = 1.0 / (theta ** (jnp.arange(0, d, 2, dtype=jnp.float32) / d))
    freqs = positions[..., None].astype(jnp.float32) * inv_freq
    emb = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]
    xf = x.astype(jnp.float32)
    rotated = jnp.concatenate([-xf[..., d // 2:], xf[..., : d // 2]], axis=-1)
    return (xf * jnp.cos(emb) + rotated * jnp.sin(emb)).astype(x.dtype)


def attention_mask_4d(t: int, attention_mask, segment_ids, window: Optional[int]):
    """``[b or 1, 1, t, t]`` boolean mask: key not padding, same document, ``|i - j| <= window`` (None: all)."""
    m = None
    if attention_mask is not None:
        m = attention_mask.astype(bool)[:, None, None, :]
    if segment_ids is not None:
        same = segment_ids[:, None, :, None] == segment_ids[:, None, None, :]
        m = same if m is None else m & same
    if window is not None:
        i = jnp.arange(t)
        near = (jnp.abs(i[:, None] - i[None, :]) <= window)[None, None]
        m = near if m is None else m & near
    return m


class Attention(nn.Module):
    spec: ModernBertSpec
    layer: int

    @nn.compact
    def __call__(self, x, mask, positions, deterministic: bool):
        s = self.spec
        b, t, _ = x.shape
        qkv = _dense(s, 3 * s.hidden_size, "Wqkv")(x).reshape(b, t, 3, s.num_heads, s.head_dim)
        q, k, v = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]
        theta = s.global_rope_theta if s.is_global(self.layer) else s.local_rope_theta
        q, k = rope(q, positions, theta), rope(k, positions, theta)
        impl = "cudnn" if s.attention_impl == "cudnn" else "xla"
        out = jax.nn.dot_product_attention(q, k, v, mask=mask, implementation=impl)
        out = _dense(s, s.hidden_size, "Wo", _out_std(s))(out.reshape(b, t, s.hidden_size))
        return nn.Dropout(s.attention_dropout)(out, deterministic=deterministic)


class MLP(nn.Module):
    """GeGLU: ``Wo(gelu(a) * g)`` with ``[a, g] = Wi(x)``."""

    spec: ModernBertSpec

    @nn.compact
    def __call__(self, x, deterministic: bool):
        s = self.spec
        a, g = jnp.split(_dense(s, 2 * s.intermediate_size, "Wi")(x), 2, axis=-1)
        h = nn.Dropout(s.hidden_dropout)(nn.gelu(a, approximate=False) * g, deterministic=deterministic)
        return _dense(s, s.hidden_size, "Wo", _out_std(s))(h)


class Layer(nn.Module):
    """Pre-norm block: ``x + attn(attn_norm(x))``, then ``x + mlp(mlp_norm(x))`` (layer 0: no attn_norm)."""

    spec: ModernBertSpec
    layer: int

    @nn.compact
    def __call__(self, x, mask, positions, deterministic: bool):
        s = self.spec
        h = x if self.layer == 0 else _norm(s, "attn_norm")(x)
        x = x + Attention(s, self.layer, name="attn")(h, mask, positions, deterministic)
        return x + MLP(s, name="mlp")(_norm(s, "mlp_norm")(x), deterministic)


class Embeddings(nn.Module):
    spec: ModernBertSpec

    def setup(self):
        s = self.spec
        self.tok_embeddings = nn.Embed(s.padded_vocab_size, s.hidden_size, dtype=s.dtype, param_dtype=s.param_dtype,
                                       embedding_init=_init(s, s.initializer_range))
        self.norm = _norm(s, None)
        self.drop = nn.Dropout(s.hidden_dropout)

    def __call__(self, input_ids, deterministic: bool):
        return self.drop(self.norm(self.tok_embeddings(input_ids)), deterministic=deterministic)

    def attend(self, x):
        return self.tok_embeddings.attend(x)


class Encoder(nn.Module):
    """Embeddings, the layers and ``final_norm``: hidden states ``[batch, length, hidden]``."""

    spec: ModernBertSpec

    def setup(self):
        s = self.spec
        self.embeddings = Embeddings(s)
        layer = nn.remat(Layer, static_argnums=(4,)) if s.remat == "full" else Layer
        self.layers = [layer(s, i) for i in range(s.num_layers)]
        self.final_norm = _norm(s, None)

    def __call__(self, input_ids, attention_mask=None, deterministic: bool = True, segment_ids=None):
        s = self.spec
        t = input_ids.shape[-1]
        if segment_ids is not None:
            positions = document_positions(segment_ids)
        else:
            positions = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), input_ids.shape)
        masks = {w: attention_mask_4d(t, attention_mask, segment_ids, w)
                 for w in {None if s.is_global(i) else s.local_attention // 2 for i in range(s.num_layers)}}
        x = self.embeddings(input_ids, deterministic)
        for i, layer in enumerate(self.layers):
            x = layer(x, masks[None if s.is_global(i) else s.local_attention // 2], positions, deterministic)
        return self.final_norm(x)


class PredictionHead(nn.Module):
    """``norm(gelu(dense(x)))`` (transformers' ``ModernBertPredictionHead``, no bias)."""

    spec: ModernBertSpec

    @nn.compact
    def __call__(self, x):
        s = self.spec
        return _norm(s, "norm")(nn.gelu(_dense(s, s.hidden_size, "dense", _out_std(s))(x), approximate=False))


class Decoder(nn.Module):
    """The tied decoder's bias (one per padded vocabulary row; zeros, not trained, without ``decoder_bias``)."""

    spec: ModernBertSpec

    @nn.compact
    def __call__(self, h, embeddings: Embeddings):
        s = self.spec
        logits = embeddings.attend(h)
        if s.decoder_bias:
            logits = logits + self.param("bias", nn.initializers.zeros, (s.padded_vocab_size,),
                                         s.param_dtype).astype(s.dtype)
        return mask_padded_vocab(logits, s.vocab_size)


class ModernBertForMaskedLM(nn.Module):
    spec: ModernBertSpec

    def setup(self):
        self.model = Encoder(self.spec)
        self.head = PredictionHead(self.spec)
        self.decoder = Decoder(self.spec)

    def __call__(self, input_ids, attention_mask=None, deterministic: bool = True, predict_positions=None,
                 segment_ids=None):
        """Logits ``[batch, length or P, padded vocab]`` (see :class:`trainer.models.roberta.RobertaForMaskedLM`);
        ``segment_ids`` ``[batch, length]``: document ids of packed rows (:func:`document_ids`)."""
        x = self.model(input_ids, attention_mask, deterministic, segment_ids)
        if predict_positions is not None:
            x = jnp.take_along_axis(x, predict_positions[..., None].astype(jnp.int32), axis=1)
        return self.decoder(self.head(x), self.model.embeddings)


class ModernBertForClassification(nn.Module):
    """transformers' ``ModernBertFor{Token,Sequence}Classification``: encoder, ``head``, dropout, ``classifier``
    (Dense with bias); per sequence (not ``per_token``) it pools the first (``[CLS]``/``<s>``) token. Float32 logits."""

    spec: ModernBertSpec
    num_labels: int
    per_token: bool

    def setup(self):
        s = self.spec
        self.model = Encoder(s)
        self.head = PredictionHead(s)
        self.drop = nn.Dropout(s.hidden_dropout)
        self.classifier = nn.Dense(self.num_labels, dtype=s.dtype, param_dtype=s.param_dtype,
                                   kernel_init=_init(s, s.initializer_range))

    def __call__(self, input_ids, attention_mask=None, deterministic: bool = True):
        x = self.model(input_ids, attention_mask, deterministic)
        if not self.per_token:
            x = x[:, 0]
        return self.classifier(self.drop(self.head(x), deterministic=deterministic)).astype(jnp.float32)


def _init_ids(spec: ModernBertSpec, seq_len: int):
    return jnp.full((1, seq_len), min(spec.pad_token_id + 2, spec.vocab_size - 1), dtype=jnp.int32)


def init_params(spec: ModernBertSpec, key: jax.Array, seq_len: int = 8):
    """Random parameters (truncated normal as transformers' ``_init_weights``; unit LayerNorm scales)."""
    model = ModernBertForMaskedLM(spec)
    return jax.jit(lambda k: model.init({"params": k}, _init_ids(spec, seq_len), deterministic=True)["params"])(key)


def init_classifier_params(spec: ModernBertSpec, num_labels: int, per_token: bool, key: jax.Array, seq_len: int = 8):
    model = ModernBertForClassification(spec, num_labels, per_token)
    return jax.jit(lambda k: model.init({"params": k}, _init_ids(spec, seq_len), deterministic=True)["params"])(key)


@register_family
class ModernBertFamily(ModelFamily):
    """ModernBERT: RoPE, GeGLU, pre-norm, no biases, alternating global / local attention, document masking."""

    name = "modernbert"
    title = "ModernBERT"
    config_class = ModernBertConfig
    spec_class = ModernBertSpec
    hf_module = __package__ + ".modernbert_hf"
    hf_architecture_prefix = "ModernBert"
    hf_model_types = ("modernbert",)
    # ModernBertForQuestionAnswering / ForMultipleChoice: the token / sequence classifier under the same names
    hf_task_heads = {"ForQuestionAnswering": {}, "ForMultipleChoice": {}}
    vocab_row_paths = (("model", "embeddings", "tok_embeddings", "embedding"), ("decoder", "bias"))
    reinit_paths = vocab_row_paths
    position_paths = ()  # rotary positions: nothing to reset
    mlm_only_params = ("decoder",)
    layer_modules = {
        "attn_norm": "attention LayerNorm",
        "attn/Wqkv": "attention QKV",
        "attn/Wo": "attention output",
        "mlp_norm": "MLP LayerNorm",
        "mlp/Wi": "MLP in (GeGLU)",
        "mlp/Wo": "MLP out",
    }
    other_names = {
        "model/embeddings/tok_embeddings/embedding": "word emb",
        "model/embeddings/norm/scale": "emb LN scale",
        "model/embeddings/norm/bias": "emb LN bias",
        "model/final_norm/scale": "final LN scale",
        "model/final_norm/bias": "final LN bias",
        "head/dense/kernel": "head dense W",
        "head/norm/scale": "head LN scale",
        "head/norm/bias": "head LN bias",
        "decoder/bias": "decoder bias",
    }

    def spec_from_config(self, model, vocab_size, pad_token_id, eos_token_id=None, backend=None):
        arch = {f.name: getattr(model, f.name) for f in dataclasses.fields(ModernBertArchitecture)}
        impl = resolve_attention_impl(model.attention_impl, model.dtype, model.hidden_size // model.num_heads,
                                      backend)
        return ModernBertSpec(**{**arch, "vocab_size": vocab_size, "pad_token_id": pad_token_id,
                                 "eos_token_id": eos_token_id, "attention_impl": impl})

    def max_length(self, spec) -> int:
        return spec.max_position_embeddings

    def mlm_module(self, spec):
        return ModernBertForMaskedLM(spec)

    def init_params(self, spec, key, seq_len: int = 8):
        return init_params(spec, key, seq_len)

    def packed_inputs(self, spec, tokens) -> dict:
        if not spec.document_masking or spec.eos_token_id is None:
            return {}
        return {"segment_ids": document_ids(tokens, spec.eos_token_id)}

    def classifier_module(self, spec, num_labels, per_token):
        return ModernBertForClassification(spec, num_labels, per_token)

    def init_classifier_params(self, spec, num_labels, per_token, key, seq_len: int = 8):
        return init_classifier_params(spec, num_labels, per_token, key, seq_len)

    def encoder_matmul_params(self, spec) -> int:
        """Per layer ``3 H^2`` (Wqkv) ``+ H^2`` (Wo) ``+ 3 H I`` (GeGLU: Wi to ``2 I``, Wo from ``I``)."""
        h, i = spec.hidden_size, spec.intermediate_size
        return spec.num_layers * (4 * h * h + 3 * h * i)

    def head_matmul_params(self, spec) -> int:
        h = spec.hidden_size
        return h * h + spec.vocab_size * h

    def attention_flops(self, spec, seq_len: int) -> float:
        """``12 x H x`` the keys each query needs, summed over layers: ``L`` (global), ``min(L, window + 1)`` (local).

        (The masked-out keys of the XLA path's dense computation are not counted.)
        """
        local = min(seq_len, spec.local_attention + 1)
        keys = sum(seq_len if spec.is_global(i) else local for i in range(spec.num_layers))
        return 12.0 * keys * spec.hidden_size
