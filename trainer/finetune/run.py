"""Fine-tuning and evaluation: the jitted, sharded step, metrics, several seeds with collapsed-run reruns,
and the export as a transformers classification folder with its model card.

Training follows :mod:`trainer.optim` (AdamW without decay on biases and LayerNorm scales, global
norm clipping, linear warm-up then linear decay to 0, the rate applied outside the optimizer) and
:mod:`trainer.sharding` (parameters replicated, the batch split over the ``data`` axis).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
import types
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from ..config import OptimizerConfig
from ..errors import CheckpointError, ConfigError
from ..models import family_of
from ..optim import make_optimizer
from ..sharding import DATA, make_mesh, replicated
from .kinds import get_kind
from .kinds.base import accuracy_collapse
from .loading import LoadedModel
from .stability import Stability, reinit_top_layers, update_scales
from .tasks import Encoded, TaskData, TaskPreset, encode

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How a task is fine-tuned (the preset's values unless overridden) and how runs are judged."""

    seeds: int = 3
    seed: int = 0  # the first seed; run i uses seed + i
    max_reruns: int = 3  # collapsed runs rerun with another seed, this many times at most (all runs together)
    collapse_margin: float = 0.02  # collapsed: accuracy <= max(majority rate, chance) + margin
    dtype: str = "float32"  # compute dtype ("bfloat16" on accelerators); master weights stay float32
    max_grad_norm: float = 1.0
    eval_batch_size: int = 64
    max_steps: Optional[int] = None  # cap on the optimizer steps (tests, benchmarks)
    # layer-wise learning-rate decay, re-initialised top layers, frozen lower layers (:mod:`.stability`; off)
    stability: Stability = Stability()


@dataclasses.dataclass
class RunResult:
    seed: int
    metrics: dict
    steps: int
    train_loss: float
    examples_per_s: float  # training examples/s after the first step (nan for a one-step run)
    collapsed: bool = False
    collapse_reason: str = ""
    params: Optional[dict] = None
    examples: Optional[dict] = None  # per-example scores (:func:`example_scores`), for the Multi-Bootstrap


def _batch_sharding(mesh):
    return NamedSharding(mesh, P(DATA))


def linear_schedule(step, hyper):
    """:func:`trainer.optim.warmup_linear_decay` (to 0) with ``hyper = [peak, warmup_steps, total_steps]`` traced,
    so that one compiled step serves every learning rate and length."""
    s = jnp.asarray(step, jnp.float32)
    peak, warmup, total = hyper[0], hyper[1], hyper[2]
    warm = peak * s / jnp.maximum(warmup, 1.0)
    decay = peak * (1.0 - jnp.clip((s - warmup) / jnp.maximum(total - warmup, 1.0), 0.0, 1.0))
    return jnp.where(s < warmup, warm, decay)


_STEPS: dict = {}


def make_steps(model, kind, tx_key: tuple, mesh, layerwise: bool = False):
    """``(tx, train_step, predict_step)``, jitted: parameters replicated, the batch split over ``data``.

    ``train_step(params, opt_state, step, batch, key, hyper, scales)``; the learning rate is
    ``linear_schedule(step, hyper)`` times AdamW's unit-rate update (as :mod:`trainer.steps`). The forward
    pass, the loss and the prediction are the task kind's (:meth:`~trainer.finetune.kinds.base.TaskKind.logits`,
    ``loss``, ``prediction``). With ``layerwise``, ``scales`` (a tree like the params,
    :func:`.stability.update_scales`) multiplies each parameter's update, and a scale of 0 freezes it (gradient
    zeroed before clipping and AdamW, value kept); without, ``scales`` is None and the step is the plain one.
    Cached by model, kind and optimizer settings: runs of several seeds, tasks and learning rates share the
    compiled step.
    """
    cache_key = (type(model), model.spec, model.num_labels, model.per_token, type(kind), tx_key,
                 tuple(mesh.devices.flat), layerwise)
    if cache_key in _STEPS:
        return _STEPS[cache_key]
    weight_decay, max_grad_norm = tx_key
    opt = OptimizerConfig(learning_rate=1.0, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay,
                          max_grad_norm=max_grad_norm)
    # the trainer's optimizer, read from a minimal config view (no frozen parameters)
    tx = make_optimizer(types.SimpleNamespace(optimizer=opt, model=types.SimpleNamespace(freeze=[])))

    def loss_fn(params, batch, key):
        return kind.loss(kind.logits(model, params, batch, False, {"dropout": key}), batch)

    def train_step(params, opt_state, step, batch, key, hyper, scales):
        loss, grads = jax.value_and_grad(loss_fn)(params, batch, jax.random.fold_in(key, step))
        if layerwise:  # a frozen parameter adds nothing to the clipping norm nor to AdamW's moments
            grads = jax.tree.map(lambda g, s: jnp.where(s > 0, g, jnp.zeros_like(g)), grads, scales)
        updates, opt_state = tx.update(grads, opt_state, params)
        lr = linear_schedule(step, hyper)
        if layerwise:
            params = jax.tree.map(lambda p, u, s: jnp.where(s > 0, p + (lr * s * u).astype(u.dtype), p),
                                  params, updates, scales)
            return params, opt_state, loss
        updates = jax.tree.map(lambda u: (lr * u).astype(u.dtype), updates)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
        return params, opt_state, loss

    def predict_step(params, batch):
        return kind.prediction(kind.logits(model, params, batch, True))

    rep, data = replicated(mesh), _batch_sharding(mesh)
    donate = (0, 1) if jax.default_backend() != "cpu" else ()
    train = jax.jit(train_step, in_shardings=(rep, rep, None, data, rep, rep, rep), out_shardings=(rep, rep, rep),
                    donate_argnums=donate)
    # the prediction does not depend on the update: one compiled predict for both kinds of train step
    twin = _STEPS.get(cache_key[:-1] + (not layerwise,))
    predict = twin[2] if twin else jax.jit(predict_step, in_shardings=(rep, data), out_shardings=data)
    _STEPS[cache_key] = (tx, train, predict)
    return _STEPS[cache_key]


def _batches(enc: Encoded, order: np.ndarray, batch_size: int):
    """Fixed-shape batches in ``order``; the last one is completed with weight-0 rows."""
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        real = len(idx)
        if real < batch_size:
            idx = np.concatenate([idx, np.resize(order, batch_size - real)])
        w = enc.weights[idx].copy()
        w[real:] = 0.0
        yield {"input_ids": enc.input_ids[idx], "attention_mask": enc.attention_mask[idx],
               "labels": enc.labels[idx], "weights": w}, real


def predict(predict_step, params, enc: Encoded, batch_size: int, mesh) -> np.ndarray:
    out = []
    for batch, real in _batches(enc, np.arange(len(enc)), batch_size):
        batch = jax.device_put({k: batch[k] for k in ("input_ids", "attention_mask")}, _batch_sharding(mesh))
        out.append(np.asarray(predict_step(params, batch))[:real])
    return np.concatenate(out)


def compute_metrics(kind: str, preds: np.ndarray, enc: Encoded, labels: list[str], iob: bool) -> dict:
    """The metrics of task kind ``kind`` (:meth:`~trainer.finetune.kinds.base.TaskKind.metrics`): token
    tasks ``accuracy`` (first sub-tokens) and ``f1`` (seqeval, as transformers' run_ner); sequence tasks
    ``accuracy`` and ``macro_f1``; both ``majority`` (the most frequent gold label's rate); span tasks
    ``exact_match`` and ``f1`` (SQuAD's); regression ``pearson`` and ``spearman``; multiple choice ``accuracy``."""
    return get_kind(kind).metrics(preds, enc, labels, iob)


def example_scores(kind: str, preds: np.ndarray, enc: Encoded, labels: list[str], iob: bool,
                   key: str) -> Optional[dict]:
    """The run's per-example scores as a JSON table (:func:`trainer.statistics.bootstrap.example_table`): what the
    Multi-Bootstrap of ``trainer compare`` and the study resamples; None when the kind keeps none."""
    from ..statistics.bootstrap import example_table

    got = get_kind(kind).example_scores(preds, enc, labels, iob)
    return None if got is None else example_table(*got, key=key)


def collapse_check(metrics: dict, num_labels: int, margin: float, train_loss: float,
                   kind: Optional[str] = None) -> tuple[bool, str]:
    """A run collapsed when its training loss is not finite, or its metrics say it learnt nothing (the task
    kind's rule, :meth:`~trainer.finetune.kinds.base.TaskKind.collapse`; classification, the default: accuracy
    at or below ``max(majority rate, chance) + margin``: BERTIN's 0.3333 on XNLI-512, its PAWS-X failures)."""
    if not math.isfinite(train_loss):
        return True, "the training loss is not finite"
    if kind is None:
        return accuracy_collapse(metrics, num_labels, margin)
    return get_kind(kind).collapse(metrics, num_labels, margin)


class FineTuner:
    """Fine-tunes one checkpoint on one task (several seeds share the encoded data and the jitted steps)."""

    def __init__(self, loaded: LoadedModel, task: TaskPreset, data: TaskData, settings: Settings):
        self.loaded, self.task, self.data, self.settings = loaded, task, data, settings
        spec = dataclasses.replace(loaded.spec, dtype=settings.dtype)
        self.spec = spec
        limit = family_of(spec).max_length(spec)
        self.max_length = task.max_length
        self.length_note = ""
        if task.max_length > limit:
            self.length_note = (f"max length {task.max_length} > the model's {limit} positions: "
                                f"sequences truncated at {limit}")
            log.warning(self.length_note)
            self.max_length = limit
        tok = loaded.tokenizer
        self.train_enc = encode(data.train, task, tok, self.max_length, "train")
        self.eval_enc = encode(data.eval, task, tok, self.max_length, task.eval_split)
        n_dev = jax.device_count()
        for name, b in (("batch size", task.batch_size), ("eval batch size", settings.eval_batch_size)):
            if b % n_dev:
                raise ConfigError(f"{name} {b} is not a multiple of the {n_dev} devices")
        self.num_labels = len(data.labels)
        self.family = family_of(spec)
        settings.stability.check(spec.num_layers)
        self.model = task.task_kind.classifier(spec, self.num_labels)
        self.mesh = make_mesh()
        steps_per_epoch = math.ceil(len(self.train_enc) / task.batch_size)
        self.total_steps = max(1, int(math.ceil(task.epochs * steps_per_epoch)))
        if settings.max_steps is not None:
            self.total_steps = min(self.total_steps, settings.max_steps)
        self.warmup = int(round(task.warmup_ratio * self.total_steps))
        self.hyper = np.asarray([task.learning_rate, self.warmup, self.total_steps], np.float32)
        self.tx, self.train_step, self.predict_step = make_steps(
            self.model, task.task_kind, (task.weight_decay, settings.max_grad_norm), self.mesh,
            settings.stability.layerwise)

    def initial_params(self, seed: int):
        """The checkpoint's encoder, and its head when it has one of this task's shape, else a random head
        (normal(initializer_range) kernels, zero biases, drawn from ``seed``). Training starts from
        :meth:`fine_tuning_start` (these, with the stability options' re-initialised layers)."""
        if not hasattr(self, "_shapes"):  # the model's parameter shapes (traced once, nothing compiled)
            self._shapes = jax.tree.map(lambda a: a.shape, jax.eval_shape(
                lambda k: self.task.task_kind.init_classifier_params(self.spec, self.num_labels, k),
                jax.random.key(0)))
        shapes = self._shapes
        enc = self.loaded.encoder
        params = {}
        for name in shapes:
            if name == "classifier":
                continue
            if name not in enc:
                raise CheckpointError(f"{self.loaded.source} has no {name} weights")
            got = jax.tree.map(np.shape, enc[name])
            if got != shapes[name]:
                raise CheckpointError(f"{self.loaded.source}: {name} weights have shapes {got}, "
                                      f"expected {shapes[name]}")
            params[name] = enc[name]
        head = self.loaded.heads.get(self.task.kind)
        if head is not None and jax.tree.map(np.shape, head) == shapes["classifier"]:
            params["classifier"] = head
            return params
        if head is not None:
            log.warning("%s has a %s head of another shape: a new head is trained", self.loaded.source,
                        self.task.kind)
        rng = np.random.default_rng(seed)
        std = self.spec.initializer_range

        def draw(path, shape):
            leaf = path[-1].key
            if leaf == "kernel":
                return (std * rng.standard_normal(shape)).astype(np.float32)
            return np.zeros(shape, np.float32)

        params["classifier"] = jax.tree_util.tree_map_with_path(draw, shapes["classifier"],
                                                                is_leaf=lambda x: isinstance(x, tuple))
        return params

    def fine_tuning_start(self, seed: int):
        """:meth:`initial_params`, with the top ``stability.reinit_layers`` encoder layers drawn afresh from the
        family's initialiser (``key(seed)`` folded with 2)."""
        params = self.initial_params(seed)
        k = self.settings.stability.reinit_layers
        if k:
            if not hasattr(self, "_init"):  # jitted: compiled once, then a draw per seed costs little
                self._init = jax.jit(lambda key: self.task.task_kind.init_classifier_params(self.spec, self.num_labels,
                                                                                            key))
            fresh = self._init(jax.random.fold_in(jax.random.key(seed), 2))
            params = reinit_top_layers(params, jax.tree.map(np.asarray, fresh), self.family.layer_of,
                                       self.spec.num_layers, k)
        return params

    def update_scales(self, params):
        """The per-parameter update scales of the stability options (None when none scales the update)."""
        if not self.settings.stability.layerwise:
            return None
        return update_scales(params, self.family.layer_of, self.spec.num_layers, self.settings.stability)

    def train(self, seed: int) -> RunResult:
        mesh, task = self.mesh, self.task
        rep = replicated(mesh)
        start_params = self.fine_tuning_start(seed)
        scales = self.update_scales(start_params)
        scales = None if scales is None else jax.device_put(scales, rep)
        params = jax.device_put(start_params, rep)
        opt_state = jax.device_put(self.tx.init(params), rep)
        key = jax.device_put(jax.random.fold_in(jax.random.key(seed), 1), rep)
        hyper = jax.device_put(self.hyper, rep)
        rng = np.random.default_rng(seed)
        step, losses, seen = 0, [], 0
        start = time.perf_counter()
        while step < self.total_steps:
            order = rng.permutation(len(self.train_enc))
            for batch, real in _batches(self.train_enc, order, task.batch_size):
                batch = jax.device_put(batch, _batch_sharding(mesh))
                params, opt_state, loss = self.train_step(params, opt_state, step, batch, key, hyper, scales)
                losses.append(loss)
                step += 1
                if step == 1:  # the rate leaves out the first step (its compilation, the first time)
                    jax.block_until_ready(loss)
                    start = time.perf_counter()
                else:
                    seen += real
                if step >= self.total_steps:
                    break
        losses = [float(v) for v in jax.device_get(losses)]
        elapsed = time.perf_counter() - start
        preds = predict(self.predict_step, params, self.eval_enc, self.settings.eval_batch_size, mesh)
        metrics = compute_metrics(task.kind, preds, self.eval_enc, self.data.labels, self.data.iob)
        examples = example_scores(task.kind, preds, self.eval_enc, self.data.labels, self.data.iob,
                                  self.examples_key)
        tail = losses[-max(1, len(losses) // 10):]
        train_loss = float(np.mean(tail)) if all(map(math.isfinite, tail)) else float("nan")
        collapsed, reason = collapse_check(metrics, self.num_labels, self.settings.collapse_margin, train_loss,
                                           task.kind)
        return RunResult(seed, metrics, step, train_loss, seen / elapsed if seen else float("nan"), collapsed, reason,
                         params=jax.tree.map(np.asarray, params), examples=examples)

    @property
    def examples_key(self) -> str:
        """The identity of the eval examples (their columns' content): runs of any model on the same examples
        compare paired in the Multi-Bootstrap."""
        if not hasattr(self, "_examples_key"):
            from ..statistics.bootstrap import content_key

            columns = self.task.task_kind.input_columns(self.task) + [self.task.label_column]
            self._examples_key = content_key(self.task.kind, [self.data.eval[c] for c in columns
                                                              if c in self.data.eval.column_names])
        return self._examples_key

    def evaluate(self, params) -> dict:
        params = jax.device_put(params, replicated(self.mesh))
        preds = predict(self.predict_step, params, self.eval_enc, self.settings.eval_batch_size, self.mesh)
        return compute_metrics(self.task.kind, preds, self.eval_enc, self.data.labels, self.data.iob)


def run_seeds(train: Callable[[int], RunResult], settings: Settings) -> tuple[list[RunResult], list[RunResult]]:
    """``settings.seeds`` runs (seeds ``seed, seed + 1, ...``); a collapsed run is rerun with a fresh seed
    (``seed + 1000 * k``) while reruns are left (``max_reruns`` for all runs together).

    Returns ``(kept, collapsed)``: one result per seed slot (the last attempt; still flagged when every
    rerun collapsed too) and the collapsed attempts that were replaced.
    """
    kept, replaced = [], []
    reruns = 0
    for i in range(settings.seeds):
        seed = settings.seed + i
        result = train(seed)
        while result.collapsed and reruns < settings.max_reruns:
            reruns += 1
            log.warning("run with seed %d collapsed (%s): rerun with seed %d", result.seed, result.collapse_reason,
                        settings.seed + i + 1000 * reruns)
            result.params = None  # a replaced run is never exported: free its weights
            replaced.append(result)
            result = train(settings.seed + i + 1000 * reruns)
        kept.append(result)
    return kept, replaced


def summarize(kept: list[RunResult], replaced: list[RunResult], metrics: tuple) -> dict:
    """Mean and (sample) standard deviation of each metric over the kept runs (None with one run: no spread
    is measured, shown "n/a"), and the rerun record."""
    out = {}
    for name in metrics:
        values = [r.metrics[name] for r in kept]
        out[name] = {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                     "values": values}
    return {
        "metrics": out,
        "runs": [_run_record(r) for r in kept],
        "replaced_runs": [_run_record(r) for r in replaced],
        "reruns": len(replaced),
        "collapsed_kept": sum(r.collapsed for r in kept),
    }


def _run_record(r: RunResult) -> dict:
    return {"seed": r.seed, "metrics": r.metrics, "steps": r.steps, "train_loss": r.train_loss,
            "examples_per_s": r.examples_per_s, "collapsed": r.collapsed, "collapse_reason": r.collapse_reason,
            **({"examples": r.examples} if r.examples is not None else {})}


def fine_tune_task(loaded: LoadedModel, task: TaskPreset, data: TaskData, settings: Settings,
                   task_name: str = "") -> tuple[dict, Optional[RunResult], "FineTuner"]:
    """All seeds of one task: ``(report, best kept run, tuner)``; the report is JSON-ready."""
    tuner = FineTuner(loaded, task, data, settings)
    kept, replaced = run_seeds(tuner.train, settings)
    report = summarize(kept, replaced, task.metrics)
    report.update({
        "task": task_name, "kind": task.kind, "dataset": task.path, "dataset_config": task.name,
        "revision": task.revision, "eval_split": task.eval_split, "labels": data.labels,
        "text_columns": task.task_kind.report_columns(task),
        "label_column": task.label_column,
        "settings": {"max_length": tuner.max_length, "batch_size": task.batch_size, "epochs": task.epochs,
                     "learning_rate": task.learning_rate, "warmup_steps": tuner.warmup, "steps": tuner.total_steps,
                     "weight_decay": task.weight_decay, "dtype": settings.dtype, "seeds": settings.seeds,
                     "max_reruns": settings.max_reruns, "collapse_margin": settings.collapse_margin,
                     **settings.stability.record()},
        "truncated": {"train": tuner.train_enc.truncated, "eval": tuner.eval_enc.truncated,
                      "note": tuner.length_note},
        "train_examples": len(tuner.train_enc), "eval_examples": len(tuner.eval_enc),
    })
    ok = [r for r in kept if not r.collapsed] or kept
    best = max(ok, key=lambda r: r.metrics[task.metrics[0]])
    for r in kept:  # only the best run's weights are kept (for the export)
        if r is not best:
            r.params = None
    return report, best, tuner


def export_classifier(params, spec, kind: str, labels: list[str], out_dir: str, tokenizer, card: str) -> str:
    """A transformers folder of the model's family and the task kind's class (``...ForTokenClassification``,
    ``...ForQuestionAnswering``...) with ``id2label`` and a model card."""
    from safetensors.numpy import save_file

    family, task_kind = family_of(spec), get_kind(kind)
    os.makedirs(out_dir, exist_ok=True)
    spec = dataclasses.replace(spec, dtype="float32")
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    config = family.hf.spec_to_hf_config(spec, bos if bos is not None else 0, eos if eos is not None else 2)
    config.architectures = [task_kind.architecture(spec)]
    config.id2label = {i: name for i, name in enumerate(labels)}
    config.label2id = {name: i for i, name in enumerate(labels)}
    task_kind.configure_export(config)
    config.save_pretrained(out_dir)
    save_file(task_kind.state_dict(params, spec), os.path.join(out_dir, "model.safetensors"),
              metadata={"format": "pt"})
    tokenizer.model_max_length = family.max_length(spec)
    tokenizer.save_pretrained(out_dir)
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(card)
    return out_dir


def classifier_card(report: dict, source: str, repo_id: Optional[str] = None, name: Optional[str] = None,
                    best_seed: Optional[int] = None, family=None) -> str:
    """The model card of a fine-tuned export: the ``finetuned`` template of :mod:`trainer.cards`;
    ``family``: the model family (:mod:`trainer.models`; None: the default, RoBERTa)."""
    from .. import cards
    from ..models import get_family
    from .results import mean_sd

    kind = get_kind(report["kind"])
    family = family or get_family(None)
    rows = "".join(f"| {name} | {mean_sd(v['mean'], v['std'])} |\n" for name, v in report["metrics"].items())
    s = report["settings"]
    return cards.render(
        "finetuned",
        pipeline_tag=kind.pipeline_tag,
        family_tag=family.name,
        title=repo_id or name or f"{os.path.basename(source.rstrip('/'))}-{report['task']}",
        base_model=source, best_seed=best_seed if best_seed is not None else "?",
        base_model_line=f"base_model: {source}\n" if _is_hub_id(source) else "",
        task=report["task"], dataset=report["dataset"], dataset_config=report["dataset_config"],
        revision=report["revision"] or "not pinned", eval_split=report["eval_split"],
        labels=", ".join(report["labels"]), max_length=s["max_length"], batch_size=s["batch_size"],
        epochs=s["epochs"], learning_rate=s["learning_rate"], warmup_steps=s["warmup_steps"],
        weight_decay=s["weight_decay"], seeds=len(report["runs"]), reruns=report["reruns"], metric_rows=rows,
        usage=kind.card_usage(report, repo_id or "PATH"),
    )


def _is_hub_id(source: str) -> bool:
    return source.count("/") == 1 and not source.startswith((".", "/")) and not os.path.exists(source)
