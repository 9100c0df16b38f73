"""Downstream tasks: presets reproducing BERTIN's settings, dataset loading, labels and encoding.

A task reads a ``datasets`` dataset (``load_dataset(path, name, revision=...)``, or local
``data_files``; ``path="conll2002"``: the raw CoNLL-2002 files, :mod:`trainer.finetune.conll`) with either

* a tokens column and a tag column (token classification: POS, NER), or
* one or two text columns and a label column (sequence / sentence-pair classification).

Labels come from the ``ClassLabel`` feature when there is one (its names), else from the sorted
values of the training split. What differs between the two task types (columns, label
collection, encoding, metrics, head, export) is the task's kind (:mod:`trainer.finetune.kinds`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from typing import Optional

from ..errors import DataError
from .kinds import MULTIPLE_CHOICE, REGRESSION, SEQUENCE, SPAN, TOKEN, TaskKind, get_kind
from .kinds.base import Encoded
from .squad import SQUAD_JSON

log = logging.getLogger(__name__)

#: Revisions of the canonical datasets are to be pinned: they could not be checked without network access.
TO_BE_PINNED = None


@dataclasses.dataclass(frozen=True)
class TaskPreset:
    """One downstream task and its fine-tuning settings (BERTIN's where its card states them)."""

    kind: str  # a task kind's name (trainer.finetune.kinds)
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
    conll_files: Optional[str] = None  # path "conll2002": base URL or folder of the raw files (None: the default)
    choices_column: str = "choices"  # multiple choice: a column of lists, or several columns joined by ","
    doc_stride: int = 128  # span: tokens shared by consecutive windows of a long context (run_qa's doc_stride)
    max_answer_length: int = 30  # span: longest predicted answer, in tokens
    n_best: int = 20  # span: start and end candidates per window (run_qa's n_best_size)
    # the dataset's SQuAD-format JSON files, ((split, file in the repository), ...): read by trainer.finetune.squad
    squad_files: tuple = ()

    @property
    def task_kind(self) -> TaskKind:
        """The :class:`~trainer.finetune.kinds.base.TaskKind` of ``kind``."""
        return get_kind(self.kind)

    def replace(self, **changes) -> "TaskPreset":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


#: The ``path`` of the raw CoNLL-2002 files (read by :mod:`trainer.finetune.conll`; ``name``: the language).
CONLL2002 = "conll2002"

# ``eriktks/conll2002`` holds only a loading script (which today's ``datasets`` no longer runs): the
# NER and POS presets read the raw files themselves; XNLI and PAWS-X hold Parquet on their main branch.
_CONLL = dict(kind=TOKEN, path=CONLL2002, name="es", tokens_column="tokens", metrics=("f1", "accuracy"))
_XNLI = dict(kind=SEQUENCE, path="facebook/xnli", name="es", text_columns=("premise", "hypothesis"),
             label_column="label", metrics=("accuracy", "macro_f1"))
_PAWSX = dict(kind=SEQUENCE, path="google-research-datasets/paws-x", name="es",
              text_columns=("sentence1", "sentence2"), label_column="label", metrics=("accuracy", "macro_f1"))

# SQuAD-style question answering as transformers' run_qa.py (max length 384, doc stride 128, 2 epochs, 3e-5)
_SPAN = dict(kind=SPAN, text_columns=("question", "context"), label_column="answers", max_length=384,
             doc_stride=128, batch_size=16, epochs=2, learning_rate=3e-5, metrics=("f1", "exact_match"))
_REGRESSION = dict(kind=REGRESSION, label_column="label", max_length=128, batch_size=16, epochs=5,
                   metrics=("pearson", "spearman"))

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
    # the source documents' other evaluations: Spanish QA (SQAC: its SQuAD-format JSON files, not its loading
    # script), Spanish STS (PlanTL's STS-es), multiple choice (no Spanish training set known: local files)
    "sqac": TaskPreset(**_SPAN, path="PlanTL-GOB-ES/SQAC", revision="f9928e8819596a601b8887cc5f8598b15d589a82",
                       squad_files=(("train", "train.json"), ("validation", "dev.json"), ("test", "test.json"))),
    "sts-es": TaskPreset(**_REGRESSION, path="PlanTL-GOB-ES/sts-es", text_columns=("sentence1", "sentence2")),
    "question-answering": TaskPreset(**_SPAN, path=None),
    "text-regression": TaskPreset(**_REGRESSION, path=None, text_columns=("text",)),
    "text-multiple-choice": TaskPreset(kind=MULTIPLE_CHOICE, path=None, text_columns=("context",),
                                       choices_column="choices", label_column="label", max_length=128,
                                       batch_size=16, epochs=3, metrics=("accuracy",)),
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
    if task.path == CONLL2002:
        from .conll import load_conll2002

        if data_files:
            raise DataError("--data-files does not apply to the raw CoNLL-2002 files; give their folder or base "
                            "URL with --conll-files")
        return load_conll2002(task.conll_files, task.name or "es")
    if task.path == SQUAD_JSON or (task.squad_files and not data_files):
        from .squad import load_squad_json

        if task.path == SQUAD_JSON and not data_files:
            raise DataError(f"--dataset {SQUAD_JSON} reads local SQuAD-format JSON files: give them with --data-files "
                            "train=PATH --data-files validation=PATH")
        files = data_files or {split: [f"hf://datasets/{task.path}@{task.revision or 'main'}/{name}"]
                               for split, name in task.squad_files}
        return load_squad_json(files, repr(task.path))
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
            from mc4_sampling.common.console import root_cause

            files = ", ".join(p for paths in (data_files or {}).values() for p in paths) or task.path
            raise DataError(f"cannot read the data of {task.path!r} ({files}): {root_cause(e)}") from None
        raise


def _label_names(feature, split, column: str) -> Optional[list[str]]:
    inner = getattr(feature, "feature", None) or (feature[0] if isinstance(feature, list) else None)
    f = inner if inner is not None else feature
    return list(f.names) if hasattr(f, "names") else None


def row_location(task: TaskPreset, data_files, split: str):
    """``where(i)``: how a message names example ``i`` of ``split``: ``FILE line N`` for local JSON lines and
    CSV files (the header is line 1), ``FILE row N`` for others, ``dataset 'ID' split 'S' row N`` else."""
    paths = list((data_files or {}).get(split) or ())

    def where(i: int) -> str:
        if not paths:
            return f"dataset {task.path!r} split {split!r} row {i + 1}"
        left = i
        for path in paths:
            lines = _record_lines(path)
            if lines is None:
                return f"{', '.join(paths)} row {i + 1}"
            if left < len(lines):
                return f"{path} line {lines[left]}"
            left -= len(lines)
        return f"{', '.join(paths)} row {i + 1}"
    return where


def _record_lines(path: str) -> Optional[list[int]]:
    """The line number of each record of a JSON-lines or CSV file (None: another format)."""
    import csv

    if path.endswith((".jsonl", ".json")):
        with open(path, encoding="utf-8") as f:
            try:
                first = json.loads(f.readline() or "null")
            except ValueError:
                return None  # one JSON document over several lines (an array, SQuAD's format)
            if not isinstance(first, dict) or "data" in first:
                return None
            f.seek(0)
            return [n for n, line in enumerate(f, 1) if line.strip()]
    if path.endswith((".csv", ".tsv")):
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t" if path.endswith(".tsv") else ",")
            out, start = [], 1
            for n, _ in enumerate(reader):
                if n:
                    out.append(start)
                start = reader.line_num + 1
            return out
    return None


def load_task_data(task: TaskPreset, data_files=None) -> TaskData:
    """Load the task's splits, check the columns, every example the kind checks
    (:meth:`~trainer.finetune.kinds.base.TaskKind.check_split`) and the label sets (same names in both splits;
    a kind with fixed outputs has none)."""
    ds = _load(task, data_files)
    for split in (task.train_split, task.eval_split):
        if split not in ds:
            raise DataError(f"dataset {task.path!r} has no split {split!r} (splits: {', '.join(ds)})")
    kind = task.task_kind
    needed = kind.input_columns(task) + [task.label_column]
    for split in (task.train_split, task.eval_split):
        cols = ds[split].column_names
        missing = [c for c in needed if c not in cols]
        if missing:
            raise DataError(f"dataset {task.path!r} split {split!r} has no column {', '.join(map(repr, missing))} "
                            f"(its columns: {', '.join(cols)}); name the columns with --text-columns / "
                            "--tokens-column / --label-column / --choices-column")
    train, evals = ds[task.train_split], ds[task.eval_split]
    train, evals = (kind.check_split(ds[s], task, row_location(task, data_files, s))
                    for s in (task.train_split, task.eval_split))
    if kind.fixed_labels:
        return TaskData(train, evals, list(kind.fixed_labels), False)
    names = [_label_names(d.features[task.label_column], s, task.label_column) for d, s in
             ((train, task.train_split), (evals, task.eval_split))]
    if names[0] is not None and names[1] is not None:
        if names[0] != names[1]:
            raise DataError(f"the label sets of {task.train_split!r} and {task.eval_split!r} differ: "
                            f"{names[0]} vs {names[1]}")
        labels = names[0]
        check = None
    else:  # plain values: the training split's, and the eval split must not have others
        tv, ev = kind.label_values(train[task.label_column]), kind.label_values(evals[task.label_column])
        if not ev <= tv:
            raise DataError(f"the label sets of {task.train_split!r} and {task.eval_split!r} differ: "
                            f"{task.eval_split!r} has {sorted(map(str, ev - tv))} not in {task.train_split!r}")
        labels = sorted(tv, key=lambda v: (str(type(v)), v))
        check = labels
    if check is not None:  # map values to ids
        index = {v: i for i, v in enumerate(check)}

        def to_ids(batch):
            return {task.label_column: kind.map_labels(batch[task.label_column], index)}
        train = train.map(to_ids, batched=True)
        evals = evals.map(to_ids, batched=True)
    labels = [str(v) for v in labels]
    if len(labels) < 2:
        raise DataError(f"column {task.label_column!r} has {len(labels)} label(s); classification needs 2 or more")
    iob = kind.is_iob(labels)
    return TaskData(train, evals, labels, iob)


def encode(split, task: TaskPreset, tokenizer, max_length: int, split_name: str = "") -> Encoded:
    """Tokenize a split to fixed-length arrays (padded to its longest example, a multiple of 8), as the
    task's kind does (:meth:`~trainer.finetune.kinds.base.TaskKind.encode`)."""
    enc = task.task_kind.encode(split, task, tokenizer, max_length)
    if enc.truncated:
        log.warning("%d of %d examples of %s are longer than %d tokens: truncated", enc.truncated, len(split),
                    split_name or "the split", max_length)
    return enc
