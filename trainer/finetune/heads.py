"""The fine-tuning networks: each model family's encoder with a classification head (:mod:`trainer.models`).

The encoder has the family's own submodule names (RoBERTa: ``embeddings``, ``layers_{i}``;
ModernBERT: also ``final_norm``), so pretrained parameters load one to one; the head is
``classifier``, laid out like the family's transformers ``...ForTokenClassification`` /
``...ForSequenceClassification``. Logits are returned in float32.
"""

from __future__ import annotations

import jax

from ..models import family_of
from ..models.base import SEQUENCE, TOKEN
from ..models.roberta import RobertaForClassification  # noqa: F401  (the RoBERTa network, by its old name)

KINDS = (TOKEN, SEQUENCE)


def classifier_model(spec, num_labels: int, kind: str):
    """The classification network of ``spec``'s family (``kind`` "token" or "sequence")."""
    return family_of(spec).classifier_module(spec, num_labels, kind)


def init_classifier_params(spec, num_labels: int, kind: str, key: jax.Array, seq_len: int = 8):
    """Random parameters of the whole model (encoder and head)."""
    return family_of(spec).init_classifier_params(spec, num_labels, kind, key, seq_len)
