"""The interface of a downstream task type (:class:`TaskKind`): one module per member (``token.py``,
``sequence.py``), registered by name in :mod:`trainer.finetune.kinds`.

A kind gathers what differs between task types: the columns it reads, how labels are collected
and mapped, the encoding to fixed-length arrays, the metrics, its head (:attr:`TaskKind.per_token`:
logits per token or per sequence, on any model family's encoder, :meth:`TaskKind.classifier`), the
transformers architecture of the export (the family's prefix + :attr:`TaskKind.architecture_suffix`)
and the Auto class that loads it, and the export's card. A model family supplies only its encoder and
the layout of its transformers classifier (:meth:`trainer.models.base.ModelFamily.classifier_module`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ...models import family_of

log = logging.getLogger(__name__)


class TaskKind:
    """One task type. Subclasses set the names and implement the methods."""

    #: The kind's name in presets and reports (and the key of a checkpoint's head, ``LoadedModel.heads``).
    name: str = ""
    #: How messages call it ("token-classification").
    title: str = ""
    #: The Hub's pipeline tag of the export.
    pipeline_tag: str = ""
    #: The transformers Auto class that loads the export with its head.
    auto_class: str = ""
    #: The end of the export's transformers class name, after the family's prefix ("ForTokenClassification").
    architecture_suffix: str = ""
    #: The head's logits: one row per token (``[batch, length, labels]``) or per sequence (``[batch, labels]``,
    #: from the first token).
    per_token: bool = False
    #: The reported metrics when a preset names none (the first is the headline).
    default_metrics: tuple = ("accuracy",)

    # -- dataset ---------------------------------------------------------------------------------
    def input_columns(self, task) -> list[str]:
        """The columns read besides the label column."""
        raise NotImplementedError

    def report_columns(self, task) -> list[str]:
        """The input columns as the report lists them (``text_columns``)."""
        return self.input_columns(task)

    def label_values(self, column) -> set:
        """The distinct label values of a label column."""
        raise NotImplementedError

    def map_labels(self, column, index: dict) -> list:
        """A label column with every value replaced by ``index[value]``."""
        raise NotImplementedError

    def is_iob(self, labels: list[str]) -> bool:
        """Whether the labels are IOB tags (entity-level metrics apply)."""
        return False

    def check_rows(self, split, task, where: str) -> None:
        """Refuse, before any work, rows the encoding cannot take (one DataError naming ``where``, the
        dataset and split as the user gave them, and the row); nothing by default."""

    # -- encoding --------------------------------------------------------------------------------
    def tokenize(self, split, task, tokenizer, max_length: int) -> tuple[list, list, int]:
        """``(token id rows, label rows, truncated count)``; rows longer than ``max_length`` are cut
        to ``max_length`` keeping the final ``</s>``."""
        raise NotImplementedError

    def label_arrays(self, label_rows: list, n: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, weights)`` arrays: weight 0 where a position (or example) has no label."""
        raise NotImplementedError

    # -- evaluation ------------------------------------------------------------------------------
    def metrics(self, preds: np.ndarray, enc, labels: list[str], iob: bool) -> dict:
        """The kind's metrics, ``accuracy`` and ``majority`` (the most frequent gold label's rate)
        among them, and ``examples``."""
        raise NotImplementedError

    # -- the network -----------------------------------------------------------------------------
    def classifier(self, spec, num_labels: int):
        """The Flax classification network: ``spec``'s family encoder with this kind's head."""
        return family_of(spec).classifier_module(spec, num_labels, self.per_token)

    def init_classifier_params(self, spec, num_labels: int, key, seq_len: int = 8):
        """Random parameters of the whole network (encoder and head)."""
        return family_of(spec).init_classifier_params(spec, num_labels, self.per_token, key, seq_len)

    def head_from_state_dict(self, spec, state_dict: dict):
        """This kind's ``classifier`` params in a transformers state dict of ``spec``'s family, or None."""
        return family_of(spec).hf.head_from_state_dict(state_dict, self.per_token)

    # -- export ----------------------------------------------------------------------------------
    def architecture(self, spec) -> str:
        """The transformers class of the export (``RobertaForTokenClassification``)."""
        return family_of(spec).hf_architecture_prefix + self.architecture_suffix

    def state_dict(self, params, spec) -> dict:
        """The network's params as the export's state dict (``{torch name: float32 array}``)."""
        return family_of(spec).hf.classifier_to_state_dict(params, spec, self.per_token)

    def configure_export(self, config: Any) -> None:
        """Set the kind's fields of the exported transformers config (beyond labels and architecture)."""

    def card_example(self, report: dict) -> str:
        """The Python literal the model card's usage example passes to the pipeline."""
        raise NotImplementedError


def truncate(ids: list, max_length: int) -> list:
    """``ids`` cut to ``max_length`` keeping the last id (``</s>``)."""
    return ids[: max_length - 1] + [ids[-1]]


def accuracy_and_majority(gold: np.ndarray, pred: np.ndarray, num_labels: int) -> dict:
    """``accuracy = mean(gold == pred)``; ``majority = max_c count(gold == c) / len(gold)``."""
    counts = np.bincount(gold, minlength=num_labels)
    return {"accuracy": float(np.mean(gold == pred)) if gold.size else 0.0,
            "majority": float(counts.max() / max(gold.size, 1))}
