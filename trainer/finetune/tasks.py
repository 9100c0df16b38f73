"""Downstream tasks: presets reproducing BERTIN's settings, dataset loading, labels and encoding.

A task reads a ``datasets`` dataset (``load_dataset(path, name, revision=...)``, or local
``data_files``) with either

* a tokens column and a tag column (token classification: POS, NER), or
* one or two text columns and a label column (sequence / sentence-pair classification).

Labels come from the ``ClassLabel`` feature when there is one (its names), else from the sorted
values of the training split. Token labels are set on each word's first sub-token; the other
sub-tokens, ``<s>``, ``</s>`` and the padding get weight 0 (transformers' -100).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Optional

import numpy as np

from ..errors import DataError
from .heads import SEQUENCE, TOKEN

log = logging.getLogger(__name__)

#: Revisions of the canonical datasets are to be pinned: they could not be checked without network access.
TO_BE_PINNED = None


@dataclasses.dataclass(frozen=True)
class TaskPreset:
    """One downstream task and its fine-tuning settings (BERTIN's where its card states them)."""

    kind: str  # "token" or "sequence"
    path: Optional[str]  # dataset on the Hub (or a builder name such as "parquet"); None: must be given
    name: Optional[str] = None  # dataset config
    revision: Optional[str] = TO_BE_PINNED
    text_columns: tuple = ()  # sequence tasks: one or two text columns
    tokens_column: str = "tokens"  # token tasks
    label_column: str = "label"
    train_split: str = "train"
    eval_split: str = "validation"
    max_length: int = 128
    batch_size: int = 16
    epochs: float = 5.0
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    metrics: tuple = ("accuracy",)  # the reported metrics; the first is the table's headline

    def replace(self, **changes) -> "TaskPreset":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


_CONLL = dict(kind=TOKEN, path="eriktks/conll2002", name="es", revision="refs/convert/parquet",
              tokens_column="tokens", metrics=("f1", "accuracy"))
_XNLI = dict(kind=SEQUENCE, path="facebook/xnli", name="es", text_columns=("premise", "hypothesis"),
             label_column="label", metrics=("accuracy", "macro_f1"))
_PAWSX = dict(kind=SEQUENCE, path="google-research-datasets/paws-x", name="es",
              text_columns=("sentence1", "sentence2"), label_column="label", metrics=("accuracy", "macro_f1"))

#: BERTIN's Table 3 (max length 128/256) and Table 4 (512) settings; see README "Downstream evaluation".
PRESETS: dict[str, TaskPreset] = {
    "pos": TaskPreset(**_CONLL, label_column="pos_tags", max_length=128, batch_size=16, epochs=5),
    "ner": TaskPreset(**_CONLL, label_column="ner_tags", max_length=128, batch_size=16, epochs=5),
    "xnli-256": TaskPreset(**_XNLI, max_length=256, batch_size=32, epochs=2),
    "pos-512": TaskPreset(**_CONLL, label_column="pos_tags", max_length=512, batch_size=16, epochs=5),
    "ner-512": TaskPreset(**_CONLL, label_column="ner_tags", max_length=512, batch_size=16, epochs=5),
    "paws-x-512": TaskPreset(**_PAWSX, max_length=512, batch_size=16, epochs=5),
    "xnli-512": TaskPreset(**_XNLI, max_length=512, batch_size=16, epochs=5),
    # no script-free canonical copy known: give --dataset (and the columns)
    "ud-pos": TaskPreset(kind=TOKEN, path=None, tokens_column="tokens", label_column="upos",
                         metrics=("f1", "accuracy")),
    "mldoc": TaskPreset(kind=SEQUENCE, path=None, text_columns=("text",), label_column="label",
                        max_length=512, batch_size=16, epochs=5, metrics=("accuracy", "macro_f1")),
    # any dataset: give --dataset and the columns
    "token-classification": TaskPreset(kind=TOKEN, path=None, metrics=("f1", "accuracy")),
    "sequence-classification": TaskPreset(kind=SEQUENCE, path=None, text_columns=("text",),
                                          metrics=("accuracy", "macro_f1")),
}


def get_preset(name: str) -> TaskPreset:
    if name not in PRESETS:
        raise DataError(f"unknown task {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclasses.dataclass
class TaskData:
    """The training and evaluation splits of a task and its label names."""

    train: object  # datasets.Dataset
    eval: object
    labels: list[str]
    iob: bool  # token tags in IOB form (seqeval entity F1 applies)


def _load(task: TaskPreset, data_files=None):
    import datasets

    if task.path is None:
        raise DataError("this task has no default dataset; pass --dataset (a Hub id or a builder such as parquet)")
    kwargs = {"data_files": data_files} if data_files else {}
    try:
        return datasets.load_dataset(task.path, task.name, revision=task.revision, **kwargs)
    except (FileNotFoundError, ValueError) as e:
        raise DataError(f"cannot load dataset {task.path!r} ({task.name}): {str(e).splitlines()[0]}") from None
    except Exception as e:
        if type(e).__name__ in ("DatasetNotFoundError", "RepositoryNotFoundError", "RevisionNotFoundError",
                                "DataFilesNotFoundError", "EmptyDatasetError", "ConnectionError"):
            raise DataError(f"cannot load dataset {task.path!r} ({task.name}): {str(e).splitlines()[0]}") from None
        if type(e).__name__ == "DatasetGenerationError":  # a corrupt data file: name the files and the cause
            from mc4_sampling.console_guard import root_cause

            files = ", ".join(p for paths in (data_files or {}).values() for p in paths) or task.path
            raise DataError(f"cannot read the data of {task.path!r} ({files}): {root_cause(e)}") from None
        raise


def _label_names(feature, split, column: str) -> Optional[list[str]]:
    inner = getattr(feature, "feature", None) or (feature[0] if isinstance(feature, list) else None)
    f = inner if inner is not None else feature
    return list(f.names) if hasattr(f, "names") else None


def load_task_data(task: TaskPreset, data_files=None) -> TaskData:
    """Load the task's splits, check the columns and the label sets (same names in both splits)."""
    ds = _load(task, data_files)
    for split in (task.train_split, task.eval_split):
        if split not in ds:
            raise DataError(f"dataset {task.path!r} has no split {split!r} (splits: {', '.join(ds)})")
    needed = ([task.tokens_column] if task.kind == TOKEN else list(task.text_columns)) + [task.label_column]
    for split in (task.train_split, task.eval_split):
        cols = ds[split].column_names
        missing = [c for c in needed if c not in cols]
        if missing:
            raise DataError(f"dataset {task.path!r} split {split!r} has no column {', '.join(map(repr, missing))} "
                            f"(its columns: {', '.join(cols)}); name the columns with --text-columns / "
                            "--tokens-column / --label-column")
    train, evals = ds[task.train_split], ds[task.eval_split]
    names = [_label_names(d.features[task.label_column], s, task.label_column) for d, s in
             ((train, task.train_split), (evals, task.eval_split))]
    if names[0] is not None and names[1] is not None:
        if names[0] != names[1]:
            raise DataError(f"the label sets of {task.train_split!r} and {task.eval_split!r} differ: "
                            f"{names[0]} vs {names[1]}")
        labels = names[0]
        check = None
    else:  # plain values: the training split's, and the eval split must not have others
        def values(d):
            col = d[task.label_column]
            return set(v for row in col for v in row) if task.kind == TOKEN else set(col)
        tv, ev = values(train), values(evals)
        if not ev <= tv:
            raise DataError(f"the label sets of {task.train_split!r} and {task.eval_split!r} differ: "
                            f"{task.eval_split!r} has {sorted(map(str, ev - tv))} not in {task.train_split!r}")
        labels = sorted(tv, key=lambda v: (str(type(v)), v))
        check = labels
    if check is not None:  # map values to ids
        index = {v: i for i, v in enumerate(check)}

        def to_ids(batch):
            col = batch[task.label_column]
            return {task.label_column: [[index[v] for v in row] for row in col] if task.kind == TOKEN
                    else [index[v] for v in col]}
        train = train.map(to_ids, batched=True)
        evals = evals.map(to_ids, batched=True)
    labels = [str(v) for v in labels]
    if len(labels) < 2:
        raise DataError(f"column {task.label_column!r} has {len(labels)} label(s); classification needs 2 or more")
    iob = task.kind == TOKEN and all(v == "O" or v[:2] in ("B-", "I-") for v in labels)
    return TaskData(train, evals, labels, iob)


@dataclasses.dataclass
class Encoded:
    """Padded arrays of a split: ``input_ids``, ``attention_mask`` ``[N, L]``; ``labels``, ``weights``
    ``[N, L]`` (token tasks) or ``[N]``; ``truncated``: examples cut at ``max_length``."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    labels: np.ndarray
    weights: np.ndarray
    truncated: int

    def __len__(self) -> int:
        return len(self.input_ids)


def model_max_length(spec) -> int:
    """The longest input the position embeddings allow (RoBERTa's positions start after the padding id)."""
    return spec.max_position_embeddings - spec.pad_token_id - 1


def encode(split, task: TaskPreset, tokenizer, max_length: int, split_name: str = "") -> Encoded:
    """Tokenize a split to fixed-length arrays (padded to its longest example, a multiple of 8)."""
    n = len(split)
    ids_rows, label_rows, truncated = [], [], 0
    label_col = list(split[task.label_column])
    if task.kind == TOKEN:
        words = [list(w) for w in split[task.tokens_column]]
        enc = tokenizer(words, is_split_into_words=True, truncation=False, add_special_tokens=True)
        for i in range(n):
            ids = enc["input_ids"][i]
            word_ids = enc.word_ids(i)
            labels, prev = [], None
            for w in word_ids:
                labels.append(-100 if w is None or w == prev else int(label_col[i][w]))
                prev = w
            if len(ids) > max_length:
                truncated += 1
                ids = ids[: max_length - 1] + [ids[-1]]
                labels = labels[: max_length - 1] + [-100]
            ids_rows.append(ids)
            label_rows.append(labels)
    else:
        texts = [list(split[c]) for c in task.text_columns]
        enc = tokenizer(*texts, truncation=False, add_special_tokens=True)
        for i in range(n):
            ids = enc["input_ids"][i]
            if len(ids) > max_length:
                truncated += 1
                ids = ids[: max_length - 1] + [ids[-1]]
            ids_rows.append(ids)
        label_rows = [int(v) for v in label_col]
    if truncated:
        log.warning("%d of %d examples of %s are longer than %d tokens: truncated", truncated, n,
                    split_name or "the split", max_length)
    width = min(max_length, -(-max(len(r) for r in ids_rows) // 8) * 8)
    pad = tokenizer.pad_token_id
    input_ids = np.full((n, width), pad, np.int32)
    mask = np.zeros((n, width), np.int32)
    for i, r in enumerate(ids_rows):
        input_ids[i, : len(r)] = r
        mask[i, : len(r)] = 1
    if task.kind == TOKEN:
        labels = np.full((n, width), -100, np.int32)
        for i, r in enumerate(label_rows):
            labels[i, : len(r)] = r
        weights = (labels >= 0).astype(np.float32)
        labels = np.maximum(labels, 0)
    else:
        labels = np.asarray(label_rows, np.int32)
        weights = (labels >= 0).astype(np.float32)  # -1: an unlabelled example (e.g. GLUE-style test sets)
        labels = np.maximum(labels, 0)
    return Encoded(input_ids, mask, labels, weights, truncated)
