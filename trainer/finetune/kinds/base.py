"""The interface of a downstream task type (:class:`TaskKind`): one module per member (``token.py``,
``sequence.py``, ``span.py``, ``regression.py``, ``multiple_choice.py``), registered by name in
:mod:`trainer.finetune.kinds`.

A kind gathers what differs between task types: the columns it reads, how labels are collected
and mapped (or its fixed outputs, :attr:`TaskKind.fixed_labels`, with the checks of each example),
the encoding to fixed-length arrays (:meth:`TaskKind.encode`), the forward pass, loss and prediction
of a batch, the metrics and when a run collapsed, its head (:attr:`TaskKind.per_token`: logits per
token or per sequence, on any model family's encoder, :meth:`TaskKind.classifier`), the transformers
architecture of the export (the family's prefix + :attr:`TaskKind.architecture_suffix`; a head that
transformers names otherwise than the family's token/sequence classifier is renamed by the family's
:attr:`~trainer.models.base.ModelFamily.hf_task_heads`) and the Auto class that loads it, and the
export's card. A model family supplies only its encoder and the layout of its transformers classifier
(:meth:`trainer.models.base.ModelFamily.classifier_module`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any, Callable, Optional

import numpy as np

from ...errors import ExportError
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
    #: The names of the head's outputs when they do not come from the data (span: start, end; regression: one
    #: score); empty: a classifier whose labels are the label column's values.
    fixed_labels: tuple = ()
    #: Transformers names the head otherwise than the family's token/sequence classifier: the family's
    #: ``hf_task_heads[architecture_suffix]`` maps the names (and says the family has that class).
    renamed_head: bool = False

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

    def check_split(self, split, task, where: Callable[[int], str]):
        """Refuse, before any work, examples of ``split`` the encoding cannot take (one DataError naming
        ``where(i)``, the file and line of example ``i``); returns the split, its labels converted if needed
        (a kind with :attr:`fixed_labels`). Nothing is checked by default."""
        return split

    # -- encoding --------------------------------------------------------------------------------
    def encode(self, split, task, tokenizer, max_length: int) -> "Encoded":
        """The split as padded arrays (to its longest example, a multiple of 8): :meth:`tokenize`, then
        :meth:`label_arrays`."""
        ids_rows, label_rows, truncated = self.tokenize(split, task, tokenizer, max_length)
        input_ids, mask = pad_rows(ids_rows, tokenizer.pad_token_id, max_length)
        labels, weights = self.label_arrays(label_rows, len(ids_rows), input_ids.shape[-1])
        return Encoded(input_ids, mask, labels, weights, truncated)

    def tokenize(self, split, task, tokenizer, max_length: int) -> tuple[list, list, int]:
        """``(token id rows, label rows, truncated count)``; rows longer than ``max_length`` are cut
        to ``max_length`` keeping the final ``</s>``."""
        raise NotImplementedError

    def label_arrays(self, label_rows: list, n: int, width: int) -> tuple[np.ndarray, np.ndarray]:
        """``(labels, weights)`` arrays: weight 0 where a position (or example) has no label."""
        raise NotImplementedError

    # -- a batch through the network ----------------------------------------------------------
    def logits(self, model, params, batch: dict, deterministic: bool, rngs: Optional[dict] = None):
        """The head's float32 logits of a batch (``input_ids``, ``attention_mask``)."""
        return model.apply({"params": params}, batch["input_ids"], batch["attention_mask"],
                           deterministic=deterministic, rngs=rngs or {})

    def loss(self, logits, batch: dict):
        """Weighted mean cross-entropy: ``sum_i w_i (-log softmax(logits_i)[y_i]) / max(sum_i w_i, 1)``."""
        import jax
        import jax.numpy as jnp

        logp = jax.nn.log_softmax(logits, axis=-1)
        ce = -jnp.take_along_axis(logp, batch["labels"][..., None], axis=-1)[..., 0]
        w = batch["weights"]
        return jnp.sum(jnp.where(w > 0, ce * w, 0.0)) / jnp.maximum(jnp.sum(w), 1.0)

    def prediction(self, logits):
        """What :meth:`metrics` reads of a batch's logits: the predicted class ids."""
        import jax.numpy as jnp

        return jnp.argmax(logits, axis=-1).astype(jnp.int32)

    # -- evaluation ------------------------------------------------------------------------------
    def metrics(self, preds: np.ndarray, enc, labels: list[str], iob: bool) -> dict:
        """The kind's metrics, ``accuracy`` and ``majority`` (the most frequent gold label's rate)
        among them, and ``examples``."""
        raise NotImplementedError

    def example_scores(self, preds: np.ndarray, enc, labels: list[str], iob: bool) -> Optional[tuple]:
        """``(columns, rows, formulas)``: per-example numbers from which the Multi-Bootstrap
        (:mod:`trainer.statistics.bootstrap`) recomputes each metric on resampled examples (``formulas``:
        ``{metric: "ratio(correct, count)"}``, :data:`~trainer.statistics.bootstrap.FORMULAS`); None when the
        kind keeps none (its comparisons then resample the seeds only)."""
        return None

    def collapse(self, metrics: dict, num_labels: int, margin: float) -> tuple[bool, str]:
        """Whether a run's metrics say it learnt nothing (:func:`accuracy_collapse`), and why."""
        return accuracy_collapse(metrics, num_labels, margin)

    # -- the network -----------------------------------------------------------------------------
    def classifier(self, spec, num_labels: int):
        """The Flax classification network: ``spec``'s family encoder with this kind's head."""
        return family_of(spec).classifier_module(spec, num_labels, self.per_token)

    def init_classifier_params(self, spec, num_labels: int, key, seq_len: int = 8):
        """Random parameters of the whole network (encoder and head)."""
        return family_of(spec).init_classifier_params(spec, num_labels, self.per_token, key, seq_len)

    def head_from_state_dict(self, spec, state_dict: dict):
        """This kind's ``classifier`` params in a transformers state dict of ``spec``'s family, or None."""
        if self.renamed_head:
            try:
                names = self.head_names(spec)
            except ExportError:  # the family has no transformers class of this kind
                return None
            state_dict = rename_prefixes(state_dict, {theirs: ours for ours, theirs in names.items()})
        return family_of(spec).hf.head_from_state_dict(state_dict, self.per_token)

    def head_names(self, spec) -> dict:
        """``{prefix of the family's classifier names: transformers' prefix}`` of this kind's export
        (empty: the family's token/sequence classifier names); ExportError when the family has no
        transformers class of this kind."""
        if not self.renamed_head:
            return {}
        family = family_of(spec)
        names = family.hf_task_heads.get(self.architecture_suffix)
        if names is None:
            raise ExportError(f"the {family.title} family has no transformers "
                              f"{family.hf_architecture_prefix}{self.architecture_suffix} mapping "
                              f"(its hf_task_heads); the {self.title} task cannot be exported for it")
        return names

    # -- export ----------------------------------------------------------------------------------
    def architecture(self, spec) -> str:
        """The transformers class of the export (``RobertaForTokenClassification``)."""
        return family_of(spec).hf_architecture_prefix + self.architecture_suffix

    def state_dict(self, params, spec) -> dict:
        """The network's params as the export's state dict (``{torch name: float32 array}``)."""
        names = self.head_names(spec)
        return rename_prefixes(family_of(spec).hf.classifier_to_state_dict(params, spec, self.per_token), names)

    def configure_export(self, config: Any) -> None:
        """Set the kind's fields of the exported transformers config (beyond labels and architecture)."""

    def card_example(self, report: dict) -> str:
        """The Python literal the model card's usage example passes to the pipeline."""
        raise NotImplementedError

    def card_usage(self, report: dict, model_ref: str) -> str:
        """The model card's Python usage example (default: the ``pipeline_tag`` pipeline on :meth:`card_example`)."""
        return (f"from transformers import pipeline\nclassify = pipeline('{self.pipeline_tag}', model='{model_ref}')\n"
                f"classify({self.card_example(report)})")


@dataclasses.dataclass
class Encoded:
    """Padded arrays of a split: ``input_ids``, ``attention_mask`` ``[N, L]`` (multiple choice ``[N, C, L]``);
    ``labels``, ``weights`` ``[N, L]`` (token tasks), ``[N, 2]`` / ``[N]`` (span) or ``[N]``; ``truncated``:
    examples cut at ``max_length``; ``extra``: what a kind's metrics need besides (span: windows, offsets)."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    truncated: int
    extra: Any = None

    def __len__(self) -> int:
        return len(self.input_ids)


def pad_rows(rows: list, pad_id: int, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, attention mask)`` int32 ``[N, W]``: ``rows`` padded with ``pad_id`` to ``W = min(max_length,
    the longest row rounded up to a multiple of 8)``."""
    n = len(rows)
    width = min(max_length, -(-max(len(r) for r in rows) // 8) * 8)
    ids = np.full((n, width), pad_id, np.int32)
    mask = np.zeros((n, width), np.int32)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    return ids, mask


def rename_prefixes(state_dict: dict, names: dict) -> dict:
    """``state_dict`` with each key ``OURS.rest`` renamed ``THEIRS.rest`` for ``names = {OURS: THEIRS}`` (the
    first matching prefix; other keys unchanged)."""
    if not names:
        return state_dict
    out = {}
    for key, value in state_dict.items():
        for ours, theirs in names.items():
            if key.startswith(ours + "."):
                key = theirs + key[len(ours):]
                break
        out[key] = value
    return out


def accuracy_collapse(metrics: dict, num_labels: int, margin: float) -> tuple[bool, str]:
    """Collapsed when ``accuracy <= max(majority rate, chance) + margin``; chance is ``metrics["chance"]``
    when the kind states it, else ``1 / num_labels``."""
    floor = max(metrics["majority"], metrics.get("chance", 1.0 / num_labels))
    if metrics["accuracy"] <= floor + margin:
        return True, f"accuracy {metrics['accuracy']:.4f} <= majority/chance rate {floor:.4f} + margin {margin}"
    return False, ""


def threshold_collapse(metrics: dict, name: str, margin: float) -> tuple[bool, str]:
    """Collapsed when the metric ``name`` is not finite or ``<= margin`` (nothing learnt)."""
    v = metrics[name]
    if not math.isfinite(v) or v <= margin:
        return True, f"{name} {v:.4f} <= margin {margin}"
    return False, ""


def truncate(ids: list, max_length: int) -> list:
    """``ids`` cut to ``max_length`` keeping the last id (``</s>``)."""
    return ids[: max_length - 1] + [ids[-1]]


def accuracy_and_majority(gold: np.ndarray, pred: np.ndarray, num_labels: int) -> dict:
    """``accuracy = mean(gold == pred)``; ``majority = max_c count(gold == c) / len(gold)``."""
    counts = np.bincount(gold, minlength=num_labels)
    return {"accuracy": float(np.mean(gold == pred)) if gold.size else 0.0,
            "majority": float(counts.max() / max(gold.size, 1))}
