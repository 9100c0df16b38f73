"""Sentence (or sentence-pair) regression (STS): one or two text columns and a numeric label column.

The head is the family's sequence classifier with one output (RoBERTa: ``RobertaClassificationHead`` on
``<s>``), trained with the mean squared error, as transformers' ``problem_type="regression"``; exported as
``*ForSequenceClassification`` with ``num_labels: 1`` and ``problem_type: regression``. Metrics:
``pearson`` and ``spearman`` correlations of the predicted and gold scores (:func:`pearson`,
:func:`spearman`), and ``mse``. A label that is not a number is refused naming its file and line.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import DataError
from .base import threshold_collapse
from .sequence import SequenceKind


def pearson(x, y) -> float:
    """``r = sum (x - mean x)(y - mean y) / sqrt(sum (x - mean x)^2 sum (y - mean y)^2)``; NaN when one is constant
    (tested on the values: the mean of equal values can differ from them by a rounding)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if not x.size or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    dx, dy = x - x.mean(), y - y.mean()
    den = math.sqrt(float(np.sum(dx * dx)) * float(np.sum(dy * dy)))
    return float(np.sum(dx * dy) / den) if den > 0 else float("nan")


def ranks(x) -> np.ndarray:
    """1-based ranks of ``x``, ties given the mean of the ranks they span (``scipy.stats.rankdata``'s "average")."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    out = np.empty(len(x), np.float64)
    start = 0
    while start < len(x):
        end = start
        while end + 1 < len(x) and sorted_x[end + 1] == sorted_x[start]:
            end += 1
        out[order[start:end + 1]] = (start + end) / 2.0 + 1.0
        start = end + 1
    return out


def spearman(x, y) -> float:
    """Spearman's rho: :func:`pearson` of the :func:`ranks` of ``x`` and ``y``."""
    return pearson(ranks(x), ranks(y))


class RegressionKind(SequenceKind):
    name = "regression"
    title = "text-regression"
    pipeline_tag = "text-classification"
    auto_class = "AutoModelForSequenceClassification"
    architecture_suffix = "ForSequenceClassification"
    default_metrics = ("pearson", "spearman")
    fixed_labels = ("score",)

    def check_split(self, split, task, where):
        column = task.label_column
        for i, v in enumerate(split[column]):
            try:
                ok = v is not None and not isinstance(v, bool) and math.isfinite(float(v))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise DataError(f"{where(i)}: the regression label {column!r} is {v!r}, not a number")
        return split.map(lambda b: {column: [float(v) for v in b[column]]}, batched=True)

    def tokenize(self, split, task, tokenizer, max_length: int):
        ids_rows, truncated = self.tokenize_texts(split, task, tokenizer, max_length)
        return ids_rows, [float(v) for v in split[task.label_column]], truncated

    def label_arrays(self, label_rows, n, width):
        return np.asarray(label_rows, np.float32), np.ones(n, np.float32)

    def loss(self, logits, batch):
        """Weighted mean squared error ``sum_i w_i (logit_i - y_i)^2 / max(sum_i w_i, 1)``."""
        import jax.numpy as jnp

        w = batch["weights"]
        se = (logits[..., 0] - batch["labels"]) ** 2
        return jnp.sum(jnp.where(w > 0, se * w, 0.0)) / jnp.maximum(jnp.sum(w), 1.0)

    def prediction(self, logits):
        return logits[..., 0]

    def metrics(self, preds, enc, labels, iob):
        keep = enc.weights > 0
        gold, pred = enc.labels[keep].astype(np.float64), preds[keep].astype(np.float64)
        return {"pearson": pearson(pred, gold), "spearman": spearman(pred, gold),
                "mse": float(np.mean((pred - gold) ** 2)) if gold.size else float("nan"), "examples": int(keep.sum())}

    def example_scores(self, preds, enc, labels, iob):
        """Each labelled example's prediction and gold score: Pearson's r from their weighted moments, Spearman's
        rho from weighted ranks and the MSE are recomputed from them (:mod:`trainer.statistics.bootstrap`)."""
        keep = enc.weights > 0
        rows = np.stack([preds[keep].astype(np.float64), enc.labels[keep].astype(np.float64)], axis=1)
        return ["pred", "gold"], rows, {"pearson": "pearson(pred, gold)", "spearman": "spearman(pred, gold)",
                                        "mse": "mse(pred, gold)"}

    def collapse(self, metrics, num_labels, margin):
        """Collapsed when the Pearson correlation is not finite (constant predictions) or ``<= margin``."""
        return threshold_collapse(metrics, "pearson", margin)

    def configure_export(self, config) -> None:
        config.problem_type = "regression"

    def card_usage(self, report: dict, model_ref: str) -> str:
        return (f"from transformers import pipeline\nscore = pipeline('text-classification', model='{model_ref}', "
                "function_to_apply='none')\n" + f"score({self.card_example(report)})")
