"""Evaluation of a unit's checkpoints: masked-LM loss and accuracy on each eval subset (fixed masks), and
fine-tuning on the study's downstream tasks with the existing :mod:`trainer.finetune` machinery.

``checkpoint_dir`` is the run's checkpoint folder (its latest step: the final checkpoint) or a step folder
``<checkpoints>/<N>`` (that step: a revision of ``eval.revision_steps``), as
:func:`trainer.export.load_checkpoint_params` reads it."""

from __future__ import annotations

import dataclasses
import hashlib
import logging

import numpy as np

from ..errors import DataError
from .corpus import Documents, content_hash

log = logging.getLogger(__name__)


def eval_subsets(evals: Documents, subsets: dict) -> dict[str, list[str]]:
    """``{"all": every text, <subset>: the texts with one of its labels}`` (a subset with no document is an error)."""
    out = {"all": list(evals.texts)}
    for name, labels in subsets.items():
        texts = [t for t, lab in zip(evals.texts, evals.labels) if lab in set(labels)]
        if not texts:
            raise DataError(f"eval.subsets.{name}: no eval document has a label in {labels}")
        out[name] = texts
    return out


def mlm_metrics(checkpoint_dir: str, tokenizer_dir: str, texts_by_subset: dict, trainer_cfg, mask_seed: int) -> dict:
    """``{subset: {loss, accuracy, masked_tokens, examples}}`` of the checkpoint: each subset packed as the trainer
    packs its eval set, masked with ``key(mask_seed)`` and the run's masking rule (the same masks for every arm).
    ``examples``: each packed sequence's ``[loss_sum, count, correct]`` (an example table of
    :mod:`trainer.statistics.bootstrap`, keyed by the masked inputs: every arm's are paired), for the Multi-Bootstrap.

    When the other subsets split the eval set (each document in exactly one), ``all`` is not evaluated
    again: its sums are theirs (loss and accuracy over all their masked tokens)."""
    import jax

    from ..data.tokenizer import TokenizerFns, load_tokenizer
    from ..evaluation import mask_rows, pack_texts
    from ..export import load_checkpoint_params
    from ..masking import masking_rule
    from ..statistics.bootstrap import example_table
    from ..steps import make_eval_step

    spec, params, _meta, _step = load_checkpoint_params(checkpoint_dir)
    tok = TokenizerFns(load_tokenizer(tokenizer_dir))
    rule = masking_rule(trainer_cfg, tok)
    L, B = trainer_cfg.data.max_seq_length, trainer_cfg.training.eval_batch_size
    step = jax.jit(make_eval_step(spec, tok.pad_id, rule.max_predictions, per_row=True))
    out, sums_of, rows_of, keys = {}, {}, {}, {}
    parts = [t for name, texts in texts_by_subset.items() if name != "all" for t in texts]
    split = bool(parts) and sorted(parts) == sorted(texts_by_subset["all"])
    for name, texts in texts_by_subset.items():
        if name == "all" and split:
            continue
        seqs = pack_texts(tok, texts, L)
        inputs, labels, weights = mask_rows(seqs, rule, jax.random.key(mask_seed), tok.pad_id, B)
        sums, rows = np.zeros(3, np.float64), []
        for i in range(len(inputs)):
            batch_sums, batch_rows = step(params, inputs[i], labels[i], weights[i])
            sums += np.asarray(batch_sums, np.float64)
            rows.append(np.asarray(batch_rows, np.float64))
        sums_of[name] = sums
        rows_of[name] = np.concatenate(rows)[: len(seqs)]  # the padding rows have no weight
        keys[name] = hashlib.sha256(np.asarray(inputs).tobytes() + np.asarray(weights).tobytes()).hexdigest()[:16]
    if split:
        sums_of["all"] = sum(v for k, v in sums_of.items())
        parts_names = [k for k in texts_by_subset if k != "all"]
        rows_of["all"] = np.concatenate([rows_of[k] for k in parts_names])
        keys["all"] = hashlib.sha256("".join(keys[k] for k in parts_names).encode()).hexdigest()[:16]
    for name in texts_by_subset:
        sums = sums_of[name]
        count = max(sums[1], 1.0)
        out[name] = {"loss": float(sums[0] / count), "accuracy": float(sums[2] / count),
                     "masked_tokens": int(sums[1]),
                     "examples": example_table(["loss_sum", "count", "correct"], rows_of[name],
                                               {"loss": "ratio(loss_sum, count)",
                                                "accuracy": "ratio(correct, count)"}, keys[name])}
    return out


@dataclasses.dataclass
class TaskSplit:
    """A downstream task made from labelled eval documents: texts and label ids of its two splits."""

    labels: list
    train_texts: list
    train_labels: list
    eval_texts: list
    eval_labels: list


def make_task(evals: Documents, task) -> TaskSplit:
    """The documents with one of ``task.labels`` (all labels when unset), split by content hash:
    a document is in the training split when ``int(content_hash[:8], 16) < train_fraction * 2**32``."""
    wanted = set(task.labels) if task.labels else {lab for lab in evals.labels if lab is not None}
    rows = [(t, lab) for t, lab in zip(evals.texts, evals.labels) if lab in wanted]
    if len(rows) < task.min_examples:
        raise DataError(f"downstream.{task.name}: the eval set gives {len(rows)} labelled documents, the task needs "
                        f"at least {task.min_examples} (downstream.{task.name}.min_examples); use a larger eval set")
    labels = sorted({lab for _, lab in rows})
    if len(labels) < 2:
        raise DataError(f"downstream.{task.name}: the eval set has {len(labels)} label(s) of {sorted(wanted)}; "
                        "classification needs 2 or more")
    index = {lab: i for i, lab in enumerate(labels)}
    cut = int(task.train_fraction * 2**32)
    split = TaskSplit(labels, [], [], [], [])
    for t, lab in rows:
        if int(content_hash(t)[:8], 16) < cut:
            split.train_texts.append(t)
            split.train_labels.append(index[lab])
        else:
            split.eval_texts.append(t)
            split.eval_labels.append(index[lab])
    missing = sorted(set(labels) - {labels[i] for i in split.train_labels})
    if missing or not split.eval_texts:
        raise DataError(f"downstream.{task.name}: the split of {len(rows)} documents leaves "
                        + (f"no training example of {missing}" if missing else "no eval example")
                        + "; use a larger eval set or fewer labels")
    return split


def downstream_metrics(checkpoint_dir: str, tokenizer_dir: str, task, split) -> dict:
    """Fine-tune the checkpoint on the task (``task.seeds`` seeds, collapsed runs rerun): the summary of
    :func:`trainer.finetune.run.fine_tune_task` (mean, sd and values of its metrics). ``split`` is the task
    made from the eval set (a :class:`TaskSplit`), or None for a preset task (its dataset is loaded here)."""
    import datasets

    from ..finetune.kinds import SEQUENCE
    from ..finetune.loading import load_model
    from ..finetune.run import Settings, fine_tune_task
    from ..finetune.tasks import TaskData, TaskPreset, get_preset, load_task_data

    loaded = load_model(checkpoint_dir, tokenizer=tokenizer_dir)
    if task.preset is not None:
        preset = get_preset(task.preset).replace(max_length=task.max_length, batch_size=task.batch_size,
                                                 epochs=task.epochs, learning_rate=task.learning_rate)
        data = load_task_data(preset, task.data_files)
    else:
        preset = TaskPreset(kind=SEQUENCE, path=None, text_columns=("text",), label_column="label",
                            eval_split="eval", max_length=task.max_length, batch_size=task.batch_size,
                            epochs=task.epochs, learning_rate=task.learning_rate, metrics=("accuracy", "macro_f1"))
        data = TaskData(datasets.Dataset.from_dict({"text": split.train_texts, "label": split.train_labels}),
                        datasets.Dataset.from_dict({"text": split.eval_texts, "label": split.eval_labels}),
                        list(split.labels), iob=False)
    settings = Settings(seeds=task.seeds, seed=0, max_reruns=task.max_reruns, eval_batch_size=32)
    report, _best, _tuner = fine_tune_task(loaded, preset, data, settings, task_name=task.name)
    return {"metrics": {k: v["mean"] for k, v in report["metrics"].items()},
            "runs": report["runs"], "reruns": report["reruns"], "collapsed_kept": report["collapsed_kept"],
            "train_examples": report["train_examples"], "eval_examples": report["eval_examples"]}
