"""Sequence (and sentence-pair) classification (XNLI, PAWS-X, MLDoc): one or two text columns and a
label column.

A label of -1 marks an unlabelled example (GLUE-style test sets): weight 0. Metrics: ``accuracy``
and ``macro_f1`` (the mean over classes of ``2 tp / (2 tp + fp + fn)``). The head gives logits per
sequence from the first token (the family's sequence-classifier layout, e.g. RoBERTa's
``<s>`` state -> dense -> tanh -> ``out_proj``), exported as ``*ForSequenceClassification`` with
``problem_type: single_label_classification``.
"""

from __future__ import annotations

import numpy as np

from .base import TaskKind, accuracy_and_majority, truncate


class SequenceKind(TaskKind):
    name = "sequence"
    title = "sequence-classification"
    pipeline_tag = "text-classification"
    auto_class = "AutoModelForSequenceClassification"
    architecture_suffix = "ForSequenceClassification"
    default_metrics = ("accuracy", "macro_f1")

    def input_columns(self, task) -> list[str]:
        return list(task.text_columns)

    def label_values(self, column) -> set:
        return set(column)

    def map_labels(self, column, index: dict) -> list:
        return [index[v] for v in column]

    def tokenize(self, split, task, tokenizer, max_length: int):
        ids_rows, truncated = self.tokenize_texts(split, task, tokenizer, max_length)
        return ids_rows, [int(v) for v in split[task.label_column]], truncated

    def tokenize_texts(self, split, task, tokenizer, max_length: int) -> tuple[list, int]:
        """``(token id rows, truncated count)`` of the one or two text columns (a pair: ``<s> A </s></s> B </s>``)."""
        texts = [list(split[c]) for c in task.text_columns]
        enc = tokenizer(*texts, truncation=False, add_special_tokens=True, verbose=False)
        ids_rows, truncated = [], 0
        for i in range(len(split)):
            ids = enc["input_ids"][i]
            if len(ids) > max_length:
                truncated += 1
                ids = truncate(ids, max_length)
            ids_rows.append(ids)
        return ids_rows, truncated

    def label_arrays(self, label_rows, n, width):
        labels = np.asarray(label_rows, np.int32)
        weights = (labels >= 0).astype(np.float32)  # -1: an unlabelled example (e.g. GLUE-style test sets)
        return np.maximum(labels, 0), weights

    def metrics(self, preds, enc, labels, iob):
        keep = enc.weights > 0
        gold, pred = enc.labels[keep], preds[keep]
        m = accuracy_and_majority(gold, pred, len(labels))
        m["examples"] = int(keep.sum())
        f1s = []
        for c in range(len(labels)):
            tp = np.sum((pred == c) & (gold == c))
            fp, fn = np.sum((pred == c) & (gold != c)), np.sum((pred != c) & (gold == c))
            f1s.append(2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 0.0)
        m["macro_f1"] = float(np.mean(f1s))
        return m

    def example_scores(self, preds, enc, labels, iob):
        """Each labelled example's gold label and prediction: accuracy and macro F1 are recomputed from them."""
        keep = enc.weights > 0
        rows = np.stack([enc.labels[keep], preds[keep]], axis=1)
        return ["gold", "pred"], rows, {"accuracy": "accuracy(gold, pred)",
                                        "macro_f1": f"macro_f1(gold, pred, {len(labels)})"}

    def configure_export(self, config) -> None:
        config.problem_type = "single_label_classification"

    def card_example(self, report: dict) -> str:
        if len(report.get("text_columns", ())) == 2:
            return "{'text': 'Madrid es la capital de España.', 'text_pair': 'La capital de España es Madrid.'}"
        return "'Madrid es la capital de España.'"
