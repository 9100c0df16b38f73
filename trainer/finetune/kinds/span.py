"""Extractive question answering (SQuAD-style): a question column, a context column and an answers column
``{"text": [...], "answer_start": [...]}`` (character offsets into the context; in a CSV file, that
dict as JSON).

Every answer is checked against its context (``context[start:start + len(text)] == text``, else one
error line naming the file and line). Encoding follows transformers' ``run_qa.py``: ``<s> question
</s></s> context </s>``, a long context cut into windows of ``max_length`` tokens that share
``doc_stride`` tokens (the fast tokenizer's overflowing tokens and offset mapping); a window holding
the first answer is labelled with its first and last tokens, a window that does not (or an example
without answers) with ``<s>`` (position 0). The head is the family's token classifier with two outputs,
start and end logits (RoBERTa: a Dense over every hidden state, ``qa_outputs`` in transformers),
trained with the mean of the start and end cross-entropies over the window's positions (padding left
out), exported as ``*ForQuestionAnswering``. Post-processing (``run_qa``'s, :func:`best_answer`) takes the
``n_best`` highest start and end logits of every window of an example, keeps the spans inside the
context with ``start <= end`` and at most ``max_answer_length`` tokens, and answers the text of the one
with the highest start + end logit. Metrics: SQuAD v1.1's official ``exact_match`` and ``f1``
(:func:`normalize_answer`, :func:`squad_f1`: the best over the gold answers, averaged over the
examples), as fractions (the official script prints them times 100).
"""

from __future__ import annotations

import collections
import json
import logging
import re
import string

import numpy as np

from ...errors import DataError
from .base import Encoded, TaskKind, pad_rows, threshold_collapse

log = logging.getLogger(__name__)

_PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """SQuAD v1.1's official normalisation: lower-case, remove ASCII punctuation (``string.punctuation``: not
    ``¿`` or ``¡``), remove the English articles ``a``, ``an``, ``the`` as words, collapse white space."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCTUATION)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def squad_exact_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised texts are equal, else 0.0."""
    return float(normalize_answer(prediction) == normalize_answer(gold))


def squad_f1(prediction: str, gold: str) -> float:
    """Token F1 of the normalised texts: ``same = |bag(pred) & bag(gold)|``; 0 when ``same == 0``, else
    ``2 p r / (p + r)`` with ``p = same / |pred|``, ``r = same / |gold|``."""
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if same == 0:
        return 0.0
    p, r = same / len(pred), same / len(ref)
    return 2 * p * r / (p + r)


def squad_example_scores(predictions: list[str], golds: list[list[str]]) -> tuple[list, list]:
    """``(em, f1)``: per example the best exact match and F1 over its gold answers (``[""]`` when it has none)."""
    em = [max(squad_exact_match(p, g) for g in (gs or [""])) for p, gs in zip(predictions, golds)]
    f1 = [max(squad_f1(p, g) for g in (gs or [""])) for p, gs in zip(predictions, golds)]
    return em, f1


def squad_scores(predictions: list[str], golds: list[list[str]]) -> dict:
    """``exact_match`` and ``f1``: :func:`squad_example_scores` averaged over the examples."""
    em, f1 = squad_example_scores(predictions, golds)
    return {"exact_match": float(np.mean(em)) if em else 0.0, "f1": float(np.mean(f1)) if f1 else 0.0}


def best_answer(windows, context: str, n_best: int, max_answer_length: int) -> str:
    """The answer text of ``windows`` (``(start logits, end logits, offsets)`` of each window, ``offsets[j]``
    the character span of token ``j`` or None outside the context): among the ``n_best`` highest starts and
    ends of each window, the span ``start <= end < start + max_answer_length`` inside the context with the
    highest ``start logit + end logit`` (the first one on ties); ``""`` when there is none."""
    best, text = -np.inf, ""
    for start_logits, end_logits, offsets in windows:
        n = len(offsets)
        start_logits, end_logits = np.asarray(start_logits)[:n], np.asarray(end_logits)[:n]
        starts = np.argsort(start_logits)[-1:-n_best - 1:-1]
        ends = np.argsort(end_logits)[-1:-n_best - 1:-1]
        for s in starts:
            for e in ends:
                if offsets[s] is None or offsets[e] is None or e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(start_logits[s]) + float(end_logits[e])
                if score > best:
                    best, text = score, context[offsets[s][0]:offsets[e][1]]
    return text


def _answers(value):
    """An answers cell as ``(texts, starts)``; a JSON string (CSV) is parsed; None when malformed."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict) or not isinstance(value.get("text"), list) or \
            not isinstance(value.get("answer_start"), list) or len(value["text"]) != len(value["answer_start"]):
        return None
    return value["text"], value["answer_start"]


class SpanKind(TaskKind):
    name = "span"
    title = "question-answering"
    pipeline_tag = "question-answering"
    auto_class = "AutoModelForQuestionAnswering"
    architecture_suffix = "ForQuestionAnswering"
    per_token = True
    default_metrics = ("f1", "exact_match")
    fixed_labels = ("start", "end")
    renamed_head = True

    def input_columns(self, task) -> list[str]:
        return list(task.text_columns)

    def _columns(self, task) -> tuple[str, str]:
        if len(task.text_columns) != 2:
            raise DataError(f"a span (question answering) task reads two text columns, the question and the context "
                            f"(--text-columns question,context), not {len(task.text_columns)}")
        return task.text_columns[0], task.text_columns[1]

    def check_split(self, split, task, where):
        question_col, context_col = self._columns(task)
        label = task.label_column
        parsed = []
        for i, row in enumerate(split.select_columns([context_col, label])):
            context, answers = row[context_col], _answers(row[label])
            if not isinstance(context, str):
                raise DataError(f"{where(i)}: the context {context_col!r} is {context!r}, not a text")
            if answers is None:
                raise DataError(f"{where(i)}: {label!r} is {row[label]!r}, not {{\"text\": [...], \"answer_start\": "
                                "[...]}} with as many texts as starts")
            for text, start in zip(*answers):
                ok_start = isinstance(start, int) and not isinstance(start, bool)
                if not isinstance(text, str) or not ok_start or context[start:start + len(text)] != text or \
                        start < 0 or not text:
                    found = context[start:start + len(text)] if ok_start and isinstance(text, str) else None
                    raise DataError(f"{where(i)}: the answer {text!r} at character {start!r} does not match the "
                                    f"context there ({found!r}); answer_start is the 0-based character offset of "
                                    "the answer in the context")
            parsed.append({"text": list(answers[0]), "answer_start": list(answers[1])})
        return split.remove_columns([label]).add_column(label, parsed)

    def encode(self, split, task, tokenizer, max_length: int) -> Encoded:
        question_col, context_col = self._columns(task)
        if not getattr(tokenizer, "is_fast", False):
            raise DataError("a span (question answering) task needs a fast tokenizer (tokenizer.json): its offsets "
                            "map the tokens to the context's characters")
        if not 0 <= task.doc_stride < max_length:
            raise DataError(f"--doc-stride {task.doc_stride} must be at least 0 and below the max length {max_length}")
        questions = [q.lstrip() for q in split[question_col]]
        contexts = list(split[context_col])
        answers = list(split[task.label_column])
        try:
            enc = tokenizer(questions, contexts, truncation="only_second", max_length=max_length,
                            stride=task.doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                            padding=False)
        except Exception as e:  # a question that leaves no room for the context: the tokenizer's own message
            raise DataError(f"cannot cut the contexts into windows of {max_length} tokens with --doc-stride "
                            f"{task.doc_stride} ({str(e).splitlines()[0]}): raise --max-length or lower "
                            "--doc-stride") from None
        rows, labels, examples, offsets = [], [], [], []
        for i, ids in enumerate(enc["input_ids"]):
            example = enc["overflow_to_sample_mapping"][i]
            sequence_ids = enc.sequence_ids(i)
            window = [o if sequence_ids[j] == 1 else None for j, o in enumerate(enc["offset_mapping"][i])]
            rows.append(ids)
            examples.append(example)
            offsets.append(window)
            labels.append(self._label(window, answers[example]))
        input_ids, mask = pad_rows(rows, tokenizer.pad_token_id, max_length)
        if len(rows) > len(split):
            split_up = sum(1 for n in collections.Counter(examples).values() if n > 1)
            log.info("%d examples longer than %d tokens: %d windows in all (doc stride %d)", split_up, max_length,
                     len(rows), task.doc_stride)
        extra = {"examples": np.asarray(examples), "offsets": offsets, "contexts": contexts,
                 "answers": [a["text"] for a in answers], "n_best": task.n_best,
                 "max_answer_length": task.max_answer_length}
        return Encoded(input_ids, mask, np.asarray(labels, np.int32).reshape(-1, 2), np.ones(len(rows), np.float32),
                       0, extra)

    @staticmethod
    def _label(window: list, answers: dict) -> tuple[int, int]:
        """``(start token, end token)`` of the first answer in the window, ``(0, 0)`` (``<s>``) when it is not
        wholly inside (as run_qa)."""
        if not answers["text"]:
            return 0, 0
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        inside = [j for j, o in enumerate(window) if o is not None]
        first, last = inside[0], inside[-1]
        if not (window[first][0] <= start_char and window[last][1] >= end_char):
            return 0, 0
        start = first
        while start <= last and window[start][0] <= start_char:
            start += 1
        end = last
        while end >= first and window[end][1] >= end_char:
            end -= 1
        return start - 1, end + 1

    def loss(self, logits, batch):
        """``(CE(start) + CE(end)) / 2`` over each window's positions (padding left out), weighted mean over windows."""
        import jax
        import jax.numpy as jnp

        logits = jnp.where(batch["attention_mask"][..., None] > 0, logits, -1e9)
        logp = jax.nn.log_softmax(logits, axis=1)  # over positions
        pos = batch["labels"]  # [batch, 2]
        ce = -(jnp.take_along_axis(logp[..., 0], pos[:, :1], axis=1)[:, 0]
               + jnp.take_along_axis(logp[..., 1], pos[:, 1:], axis=1)[:, 0]) / 2
        w = batch["weights"]
        return jnp.sum(jnp.where(w > 0, ce * w, 0.0)) / jnp.maximum(jnp.sum(w), 1.0)

    def prediction(self, logits):
        return logits  # start and end logits [batch, length, 2]: post-processed over the windows (metrics)

    def predict_answers(self, preds, enc) -> list[str]:
        """The answer text of each example (:func:`best_answer` over its windows)."""
        x = enc.extra
        per_example: dict = collections.defaultdict(list)
        for w, example in enumerate(x["examples"]):
            per_example[int(example)].append((preds[w, :, 0], preds[w, :, 1], x["offsets"][w]))
        return [best_answer(per_example[i], x["contexts"][i], x["n_best"], x["max_answer_length"])
                for i in range(len(x["contexts"]))]

    def metrics(self, preds, enc, labels, iob):
        m = squad_scores(self.predict_answers(preds, enc), enc.extra["answers"])
        m["examples"] = len(enc.extra["contexts"])
        m["windows"] = len(enc)
        return m

    def example_scores(self, preds, enc, labels, iob):
        """Each question's exact match and F1 (its answer post-processed over all its windows): SQuAD's means over
        the questions are recomputed from them."""
        em, f1 = squad_example_scores(self.predict_answers(preds, enc), enc.extra["answers"])
        return ["em", "f1"], np.stack([np.asarray(em, np.float64).reshape(-1), np.asarray(f1, np.float64).reshape(-1)],
                                      axis=1), {"exact_match": "mean(em)", "f1": "mean(f1)"}

    def collapse(self, metrics, num_labels, margin):
        """Collapsed when SQuAD's F1 is ``<= margin``."""
        return threshold_collapse(metrics, "f1", margin)

    def card_example(self, report: dict) -> str:
        return "{'question': '¿Dónde vive Ana?', 'context': 'Ana vive en Madrid con su familia.'}"
