"""Token classification (POS, NER): a tokens column of word lists and a tag-list column.

Labels are set on each word's first sub-token; the other sub-tokens, ``<s>``, ``</s>`` and the
padding get weight 0 (transformers' -100). Metrics: token ``accuracy`` (first sub-tokens) and
``f1`` (seqeval, as transformers' ``run_ner``: entity F1 for IOB tags). The head gives logits per
token (``per_token``; the family's token-classifier layout), exported as ``*ForTokenClassification``.
"""

from __future__ import annotations

import warnings

import numpy as np

from .base import TaskKind, accuracy_and_majority, truncate


class TokenKind(TaskKind):
    name = "token"
    title = "token-classification"
    pipeline_tag = "token-classification"
    auto_class = "AutoModelForTokenClassification"
    architecture_suffix = "ForTokenClassification"
    per_token = True
    default_metrics = ("f1", "accuracy")

    def input_columns(self, task) -> list[str]:
        return [task.tokens_column]

    def label_values(self, column) -> set:
        return set(v for row in column for v in row)

    def map_labels(self, column, index: dict) -> list:
        return [[index[v] for v in row] for row in column]

    def is_iob(self, labels: list[str]) -> bool:
        return all(v == "O" or v[:2] in ("B-", "I-") for v in labels)

    def check_split(self, split, task, where):
        """Every row has one tag per token."""
        from ...errors import DataError

        tokens, tags = split[task.tokens_column], split[task.label_column]
        for i, (words, row_tags) in enumerate(zip(tokens, tags)):
            if len(words) != len(row_tags):
                raise DataError(
                    f"{where(i)}: {len(words)} tokens in {task.tokens_column!r} but {len(row_tags)} tags "
                    f"in {task.label_column!r}; each token needs exactly one tag")
        return split

    def tokenize(self, split, task, tokenizer, max_length: int):
        label_col = list(split[task.label_column])
        words = [list(w) for w in split[task.tokens_column]]
        enc = tokenizer(words, is_split_into_words=True, truncation=False, add_special_tokens=True, verbose=False)
        ids_rows, label_rows, truncated = [], [], 0
        for i in range(len(split)):
            ids = enc["input_ids"][i]
            labels, prev = [], None
            for w in enc.word_ids(i):
                labels.append(-100 if w is None or w == prev else int(label_col[i][w]))
                prev = w
            if len(ids) > max_length:
                truncated += 1
                ids = truncate(ids, max_length)
                labels = labels[: max_length - 1] + [-100]
            ids_rows.append(ids)
            label_rows.append(labels)
        return ids_rows, label_rows, truncated

    def label_arrays(self, label_rows, n, width):
        labels = np.full((n, width), -100, np.int32)
        for i, r in enumerate(label_rows):
            labels[i, : len(r)] = r
        weights = (labels >= 0).astype(np.float32)
        return np.maximum(labels, 0), weights

    def metrics(self, preds, enc, labels, iob):
        from seqeval.metrics import f1_score

        keep = enc.weights > 0
        m = accuracy_and_majority(enc.labels[keep], preds[keep], len(labels))
        m["examples"] = int(keep.any(axis=-1).sum())
        true_seqs = [[labels[v] for v in enc.labels[i][keep[i]]] for i in range(len(enc))]
        pred_seqs = [[labels[v] for v in preds[i][keep[i]]] for i in range(len(enc))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m["f1"] = float(f1_score(true_seqs, pred_seqs))
        m["f1_kind"] = "seqeval entity F1" if iob else "seqeval F1 on non-IOB tags (as run_ner)"
        return m

    def example_scores(self, preds, enc, labels, iob):
        """Per sentence: correct first sub-tokens, labelled tokens, and seqeval's entities (true positives,
        predicted, gold). seqeval's micro F1 over the corpus is ``2 sum tp / (sum pred + sum gold)`` (it
        joins the sentences with an ``O`` between them, so no entity spans two), the token accuracy
        ``sum correct / sum count``: both are recomputed exactly on resampled sentences."""
        from seqeval.metrics.sequence_labeling import get_entities

        keep = enc.weights > 0
        rows = []
        for i in range(len(enc)):
            gold, pred = enc.labels[i][keep[i]], preds[i][keep[i]]
            true = set(get_entities([labels[v] for v in gold]))
            found = set(get_entities([labels[v] for v in pred]))
            rows.append([int(np.sum(gold == pred)), int(gold.size), len(true & found), len(found), len(true)])
        return (["correct", "count", "tp", "pred", "gold"], np.asarray(rows, np.int64).reshape(-1, 5),
                {"accuracy": "ratio(correct, count)", "f1": "f1(tp, pred, gold)"})

    def card_example(self, report: dict) -> str:
        return "'Me llamo Ana y vivo en Madrid.'"
