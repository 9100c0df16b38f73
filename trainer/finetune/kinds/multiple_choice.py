"""Multiple choice (SWAG-style): a context (and optionally a question or sentence start), N candidate
choices and the index of the right one.

The choices are a column of lists (``--choices-column choices``) or one column per choice
(``--choices-column ending0,ending1,ending2,ending3``); every example of a split has the same number
of choices (else one error line names the file and line). Each (context, choice) pair is encoded as
a sentence pair, ``<s> context </s></s> question choice </s>`` (as transformers' ``run_swag``: the
question, when given, starts the second sentence), pairs longer than the max length cut by
``longest_first``. The head is the family's sequence classifier with one output applied to every pair
(RoBERTa: ``<s>`` -> dense -> tanh -> out_proj, which is ``RobertaForMultipleChoice``'s pooler then
classifier), the scores of an example's choices soft-maxed together; trained with cross-entropy and
exported as ``*ForMultipleChoice``. Metrics: ``accuracy``, ``majority`` (the most frequent right
index's rate) and ``chance`` (1 / choices).
"""

from __future__ import annotations

import numpy as np

from ...errors import DataError
from .base import Encoded, TaskKind, accuracy_and_majority, pad_rows


def choice_columns(task) -> list[str]:
    """The choices column, or the choice columns (``a,b,c``)."""
    return [c.strip() for c in task.choices_column.split(",") if c.strip()]


def row_choices(row: dict, columns: list[str]):
    """The choices of one example: its list, or one value per column."""
    if len(columns) == 1:
        v = row[columns[0]]
        return list(v) if isinstance(v, (list, tuple)) else v
    return [row[c] for c in columns]


def label_index(v):
    """An integer label (``2``, ``2.0`` or ``"2"``) as an int, else None."""
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, float):
        return int(v) if v.is_integer() else None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


class MultipleChoiceKind(TaskKind):
    name = "multiple-choice"
    title = "multiple-choice"
    pipeline_tag = "multiple-choice"
    auto_class = "AutoModelForMultipleChoice"
    architecture_suffix = "ForMultipleChoice"
    default_metrics = ("accuracy",)
    fixed_labels = ("choice",)  # one score per (context, choice) pair
    renamed_head = True

    def input_columns(self, task) -> list[str]:
        return list(task.text_columns) + choice_columns(task)

    def report_columns(self, task) -> list[str]:
        return list(task.text_columns) + [task.choices_column]

    def check_split(self, split, task, where):
        columns, label = choice_columns(task), task.label_column
        first, labels = None, []
        for i, row in enumerate(split.select_columns(columns + [label])):
            choices = row_choices(row, columns)
            if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
                raise DataError(f"{where(i)}: {task.choices_column!r} is {choices!r}, not a list of choice texts")
            if first is None:
                first = (len(choices), where(i))
            elif len(choices) != first[0]:
                raise DataError(f"{where(i)}: {len(choices)} choices, but {first[1]} has {first[0]}; every example "
                                "needs the same number of choices")
            v = row[label]
            index = label_index(v)
            if index is None or not 0 <= index < len(choices):
                raise DataError(f"{where(i)}: the label {label!r} is {v!r}; it must be the index of the right choice, "
                                f"0 to {len(choices) - 1}")
            labels.append(index)
        return split.remove_columns([label]).add_column(label, labels)

    def encode(self, split, task, tokenizer, max_length: int) -> Encoded:
        columns = choice_columns(task)
        contexts = list(split[task.text_columns[0]])
        questions = list(split[task.text_columns[1]]) if len(task.text_columns) > 1 else None
        rows = split.select_columns(columns)
        firsts, seconds = [], []
        for i, row in enumerate(rows):
            for choice in row_choices(row, columns):
                firsts.append(contexts[i])
                seconds.append(f"{questions[i]} {choice}" if questions is not None else choice)
        n = len(split)
        c = len(firsts) // max(n, 1)
        ids = tokenizer(firsts, seconds, truncation=False, add_special_tokens=True, verbose=False)["input_ids"]
        long = [j for j, r in enumerate(ids) if len(r) > max_length]
        if long:
            cut = tokenizer([firsts[j] for j in long], [seconds[j] for j in long], truncation="longest_first",
                            max_length=max_length, add_special_tokens=True)["input_ids"]
            for j, r in zip(long, cut):
                ids[j] = r
        input_ids, mask = pad_rows(ids, tokenizer.pad_token_id, max_length)
        width = input_ids.shape[-1]
        labels = np.asarray(split[task.label_column], np.int32)
        return Encoded(input_ids.reshape(n, c, width), mask.reshape(n, c, width), labels, np.ones(n, np.float32),
                       len({j // c for j in long}))

    def logits(self, model, params, batch, deterministic, rngs=None):
        """The one-output head on every (context, choice) pair: ``[batch, choices]``."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        n, c, width = ids.shape
        flat = model.apply({"params": params}, ids.reshape(n * c, width), mask.reshape(n * c, width),
                           deterministic=deterministic, rngs=rngs or {})
        return flat.reshape(n, c)

    def metrics(self, preds, enc, labels, iob):
        choices = enc.input_ids.shape[1]
        m = accuracy_and_majority(enc.labels, preds, choices)
        m["chance"] = 1.0 / choices
        m["examples"] = len(enc)
        return m

    def example_scores(self, preds, enc, labels, iob):
        """Each example's right choice and predicted choice: the accuracy is recomputed from them."""
        return ["gold", "pred"], np.stack([enc.labels, preds], axis=1), {"accuracy": "accuracy(gold, pred)"}

    def card_usage(self, report: dict, model_ref: str) -> str:
        return ("import torch\nfrom transformers import AutoModelForMultipleChoice, AutoTokenizer\n"
                f"tokenizer = AutoTokenizer.from_pretrained('{model_ref}')\n"
                f"model = AutoModelForMultipleChoice.from_pretrained('{model_ref}')\n"
                "context, choices = 'Ana abre el paraguas porque', ['llueve.', 'hace sol.']\n"
                "enc = tokenizer([context] * len(choices), choices, return_tensors='pt', padding=True)\n"
                "logits = model(**{k: v[None] for k, v in enc.items()}).logits  # [1, choices]\n"
                "print(choices[int(logits.argmax())])")
