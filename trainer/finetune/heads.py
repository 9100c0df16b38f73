"""RoBERTa with classification heads in Flax Linen, laid out like transformers' PyTorch models.

The encoder is composed of :mod:`trainer.models.roberta`'s own building blocks under the same submodule
names (``embeddings``, ``layers_{i}``), so pretrained parameters load one to one; the head is
``classifier``:

* token classification (``RobertaForTokenClassification``): dropout -> ``classifier`` (Dense);
* sequence classification (``RobertaClassificationHead``): the ``<s>`` state -> dropout ->
  ``classifier/dense`` -> tanh -> dropout -> ``classifier/out_proj``.

Logits are returned in float32.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..models.roberta import Embeddings, Layer, RobertaSpec, _dense

TOKEN, SEQUENCE = "token", "sequence"
KINDS = (TOKEN, SEQUENCE)


class SequenceHead(nn.Module):
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
    """``kind`` "token": logits ``[batch, length, labels]``; "sequence": ``[batch, labels]``."""

    spec: RobertaSpec
    num_labels: int
    kind: str

    def setup(self):
        s = self.spec
        self.embeddings = Embeddings(s)
        layer = nn.remat(Layer, static_argnums=(3,)) if s.remat == "full" else Layer
        self.layers = [layer(s) for _ in range(s.num_layers)]
        self.dropout = nn.Dropout(s.hidden_dropout)
        if self.kind == TOKEN:
            self.classifier = _dense(s, self.num_labels, "classifier")
        else:
            self.classifier = SequenceHead(s, self.num_labels)

    def __call__(self, input_ids, attention_mask=None, deterministic: bool = True):
        x = self.embeddings(input_ids, deterministic)
        for layer in self.layers:
            x = layer(x, attention_mask, deterministic)
        if self.kind == TOKEN:
            logits = self.classifier(self.dropout(x, deterministic=deterministic))
        else:
            logits = self.classifier(x, deterministic)
        return logits.astype(jnp.float32)


def init_classifier_params(spec: RobertaSpec, num_labels: int, kind: str, key: jax.Array, seq_len: int = 8):
    """Random parameters of the whole model (encoder and head)."""
    model = RobertaForClassification(spec, num_labels, kind)
    ids = jnp.full((1, seq_len), spec.pad_token_id + 2, dtype=jnp.int32)
    return jax.jit(lambda k: model.init({"params": k}, ids, deterministic=True)["params"])(key)
