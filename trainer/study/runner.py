"""Running a study: every check first, the shared files (the tokenizer, the eval set, the corpus index:
every document tokenised and scored once), each arm's sample (token shards), then the units that are not
done, one after another (``local``) or in parallel on Ray (``ray``), then the report.

A unit is a pure function of its payload (config, sample, seeds): the engine and the number of workers
never change its result. A rerun runs only the units without ``result.json``; an interrupted unit resumes
from its last checkpoint (the trainer's exact resume). Ctrl-C stops with one line.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
import traceback
from typing import Callable, Optional

from mc4_sampling.common.outputs import atomic_folder

from ..errors import ConfigError, DataError, StoppedBySignal, TrainerError
from . import sampling, transfer
from .arms import check_against_sampler, sample_arms
from .config import AVERAGED, StudyConfig, load_study_config
from .corpus import Documents, HoldOut, load_eval, load_labels, read_shard, training_shards
from .evaluate import downstream_metrics, eval_subsets, make_task, mlm_metrics
from .index import CorpusIndex, build_index, write_selection
from .units import Unit, check_unit, claim_folder, read_json, reset_unit, units_of, write_json

log = logging.getLogger(__name__)

#: the project root (where ``trainer`` is imported from), given to Ray workers
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def unit_overrides(cfg: StudyConfig, unit: Unit, tokenizer_dir: str, max_steps: Optional[int],
                   arm_sets: bool = True) -> list[str]:
    """The ``--set`` overrides that make the study's trainer config train one unit (on its token shards, whose
    eval split is the study's curve documents); with ``arm_sets``, the arm's own ``trainer_set`` (its masking)
    too (without: the config every arm's checkpoints are evaluated with, the same masks for all)."""
    d = json.dumps
    sets = list(cfg.trainer.set) + [
        f"data.token_shards={d(os.path.abspath(unit.shards_dir))}", "data.sampling.sampling_method=none",
        f"data.tokenizer={d(os.path.abspath(tokenizer_dir))}", "data.eval_files=null",
        f"training.seed={unit.training_seed}", f"training.eval_seed={cfg.eval.mask_seed}",
        f"training.output_dir={d(os.path.abspath(unit.run_dir))}", "checkpoint.directory=null",
        f"name={d(f'{cfg.name}-{unit.arm}-seed{unit.index}')}", "logging.progress_bar=false",
        "logging.tensorboard=false",
    ]
    if max_steps is not None:
        sets.append(f"training.max_steps={max_steps}")
    if cfg.eval.revision_steps:  # kept by checkpoint.keep (trainer.research.revisions)
        sets.append(f"checkpoint.schedule={d(cfg.eval.revision_steps)}")
    if cfg.eval.average_last:  # <run>/averaged (trainer.research.averaging)
        sets.append(f"checkpoint.average_last={cfg.eval.average_last}")
    if arm_sets:
        sets += list(next(a.trainer_set for a in cfg.arms if a.name == unit.arm))
    return sets


def check_revision_steps(steps: list[int], max_steps: int) -> None:
    """Every revision step must come before the unit's last training step (that one is the final checkpoint)."""
    late = [s for s in steps if s >= max_steps]
    if late:
        raise ConfigError(f"eval.revision_steps: step {late[0]} is not before the end of training; give steps in "
                          f"1..{max_steps - 1} (a unit trains {max_steps} steps)")


def budget_steps(cfg: StudyConfig, trainer_cfg) -> Optional[int]:
    """``training.max_steps`` for ``budget_tokens``: ``ceil(budget / (global_batch_size x max_seq_length))``."""
    if cfg.budget_tokens is None:
        return None
    return max(1, math.ceil(cfg.budget_tokens / (trainer_cfg.training.global_batch_size
                                                 * trainer_cfg.data.max_seq_length)))


# --- one unit (runs in this process or in a Ray worker) -------------------------------------------

def run_unit(payload: dict) -> dict:
    """Train, evaluate and record one unit; returns its result (also written to ``result.json``)."""
    from ..config_loading import load_config
    from ..console import configure_logging
    from ..entry import build_trainer
    from ..monitor import read_metrics

    if payload.get("configure_logging"):
        configure_logging()
    if payload.get("xla_cache"):  # units of one seed compile the same steps: compile once (same executables)
        import jax

        jax.config.update("jax_compilation_cache_dir", payload["xla_cache"])
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    unit = Unit(**payload["unit"])
    start = time.perf_counter()
    tcfg = load_config(payload["trainer_config"], payload["overrides"])
    # every arm's checkpoints are evaluated with the same masks (an arm's trainer_set changes its training only)
    ecfg = load_config(payload["trainer_config"], payload.get("eval_overrides", payload["overrides"]))
    say = payload.get("print_progress", True)

    def on_eval(step: int, ev: dict) -> None:
        if say:
            print(f"  {unit.name}: step {step}/{tcfg.training.max_steps}, eval loss {ev['loss']:.4f}", flush=True)

    source = None
    if payload.get("source"):  # a transfer arm: the source stage first (reused when done)
        source = transfer.run_source_stage(payload, (lambda s: print(f"  {unit.name} (source): {s}", flush=True)) if say
                                  else None)
    result = build_trainer(tcfg, on_eval=on_eval).run()
    with open(payload["eval_file"], encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    evals = Documents([r["id"] for r in rows], [r["text"] for r in rows], [r.get("label") for r in rows])
    texts = eval_subsets(evals, payload["subsets"])
    final = evaluate_checkpoint(tcfg.checkpoint_dir, payload, texts, ecfg, downstream=True)
    revisions = {str(step): evaluate_checkpoint(os.path.join(tcfg.checkpoint_dir, str(step)), payload, texts, ecfg,
                                                downstream=payload.get("revision_downstream", False))
                 for step in payload.get("revision_steps", [])}
    if tcfg.checkpoint.average_last:  # eval.average_last: the average of the last checkpoints, as the final one
        revisions[AVERAGED] = evaluate_checkpoint(tcfg.averaged_dir, payload, texts, ecfg,
                                                  downstream=payload.get("revision_downstream", False))
    metrics_file = os.path.join(tcfg.training.output_dir, "metrics.jsonl")
    curve = [{"step": s, "loss": r["loss"], "accuracy": r["accuracy"]}
             for s, r in sorted(read_metrics(metrics_file, "eval").items())] if os.path.exists(metrics_file) else []
    out = {"unit": payload["unit"], "sample": read_json(os.path.join(unit.folder, "unit.json"))["sample"],
           "steps": result.step, "mlm": final["mlm"], "downstream": final["downstream"], "curve": curve,
           "seconds": time.perf_counter() - start}
    if revisions:
        out["revisions"] = revisions
    if source is not None:
        out["source"] = source
    write_json(unit.result_path, out)
    return out


def evaluate_checkpoint(checkpoint: str, payload: dict, texts: dict, tcfg, downstream: bool) -> dict:
    """``{"mlm": ..., "downstream": ...}`` of one checkpoint (a checkpoint folder: its latest step; a step
    folder ``<checkpoints>/<N>``: that step); without ``downstream``, the masked-LM metrics only."""
    from .config import DownstreamConfig
    from .evaluate import TaskSplit

    out = {"mlm": mlm_metrics(checkpoint, payload["tokenizer_dir"], texts, tcfg, payload["mask_seed"])}
    if downstream:
        out["downstream"] = {}
        for task_dict in payload["downstream"]:
            task = DownstreamConfig(**task_dict)
            made = payload["tasks"].get(task.name)
            out["downstream"][task.name] = downstream_metrics(checkpoint, payload["tokenizer_dir"], task,
                                                              TaskSplit(**made) if made is not None else None)
    return out


# --- engines ----------------------------------------------------------------------------------------

class Progress:
    """``[done/total] unit: ...`` lines and an estimate of the time left."""

    def __init__(self, total: int, done: int, say: Callable[[str], None]):
        self.total, self.done, self.say, self.start, self.ran = total, done, say, time.perf_counter(), 0

    def finished(self, unit: Unit, result: Optional[dict], error: Optional[str] = None) -> None:
        self.done += 1
        self.ran += 1
        elapsed = time.perf_counter() - self.start
        left = (self.total - self.done) * elapsed / self.ran
        if error is None:
            mlm = result["mlm"]["all"]
            self.say(f"[{self.done}/{self.total}] {unit.name} done in {result['seconds']:.0f} s: eval loss "
                     f"{mlm['loss']:.4f}, accuracy {mlm['accuracy']:.4f} (about {left / 60:.1f} min left)")
        else:
            self.say(f"[{self.done}/{self.total}] {unit.name} FAILED: {error} (see {unit.folder}/error.txt)")


def _record_failure(unit: Unit, exc: BaseException) -> str:
    os.makedirs(unit.folder, exist_ok=True)
    with open(os.path.join(unit.folder, "error.txt"), "w", encoding="utf-8") as f:
        f.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {first}"


def run_local(jobs: list, progress: Progress, fn: Callable[[dict], dict] = run_unit) -> dict:
    """The units one after another in this process: ``{unit name: result or error line}``."""
    out = {}
    for unit, payload in jobs:
        try:
            out[unit.name] = fn(payload)
            progress.finished(unit, out[unit.name])
        except (KeyboardInterrupt, StoppedBySignal):
            raise
        except Exception as e:  # a failed unit is recorded and rerun next time; the others go on
            out[unit.name] = _record_failure(unit, e)
            progress.finished(unit, None, out[unit.name])
    return out


def run_ray(jobs: list, progress: Progress, cfg: StudyConfig, fn: Callable[[dict], dict] = run_unit) -> dict:
    """The units as Ray tasks (``runner.cpus_per_unit`` CPUs each) on ``runner.ray_address`` or a local Ray."""
    import ray

    if not ray.is_initialized():
        pythonpath = os.pathsep.join(p for p in (_ROOT, os.environ.get("PYTHONPATH")) if p)
        ray.init(address=cfg.runner.ray_address, include_dashboard=False, log_to_driver=True,
                 runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    remote = ray.remote(num_cpus=cfg.runner.cpus_per_unit, max_retries=0)(fn)
    refs = {remote.remote({**payload, "configure_logging": True}): unit for unit, payload in jobs}
    out = {}
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            unit = refs.pop(ready[0])
            try:
                out[unit.name] = ray.get(ready[0])
                progress.finished(unit, out[unit.name])
            except Exception as e:
                cause = getattr(e, "cause", None) or e
                out[unit.name] = _record_failure(unit, cause)
                progress.finished(unit, None, out[unit.name])
    except KeyboardInterrupt:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    return out


# --- the study ----------------------------------------------------------------------------------------

@dataclasses.dataclass
class Prepared:
    cfg: StudyConfig
    evals: Documents
    trainer_config: str
    max_steps: Optional[int]
    subsets: dict
    tasks: dict
    units: list
    source_steps: dict  # transfer arm -> its source stage's training.max_steps (None: the trainer config's)


def check_study(cfg: StudyConfig) -> Prepared:
    """Every check that can fail before training: the arms' options (by the sampler), the trainer config and
    the revision steps, the corpus files, the eval set, its subsets and downstream tasks (it must be large
    enough), the folder."""
    from ..config_loading import load_config, resolve_config_path

    for arm in cfg.arms:
        sampling.check_arm(arm, cfg.corpus.language)
    trainer_config = resolve_config_path(cfg.trainer.config)
    base = load_config(trainer_config, cfg.trainer.set)
    max_steps = budget_steps(cfg, base)
    if max_steps is not None:  # the units' schedule must hold in the budget's steps
        load_config(trainer_config, list(cfg.trainer.set) + [f"training.max_steps={max_steps}"])
    budget = [f"training.max_steps={max_steps}"] if max_steps is not None else []
    average = [f"checkpoint.average_last={cfg.eval.average_last}"] if cfg.eval.average_last else []
    if average:  # the revisions' checkpoint.schedule keeps more checkpoints than checkpoint.keep
        if cfg.eval.revision_steps:
            average.insert(0, f"checkpoint.schedule={json.dumps(cfg.eval.revision_steps)}")
        try:
            load_config(trainer_config, list(cfg.trainer.set) + budget + average)
        except ConfigError as e:
            raise ConfigError(f"eval.average_last: {e}") from None
    for arm in cfg.arms:  # each masking arm's trainer config
        if arm.trainer_set:
            try:
                load_config(trainer_config, list(cfg.trainer.set) + budget + average + list(arm.trainer_set))
            except ConfigError as e:
                raise ConfigError(f"arms.{arm.name}.trainer_set: {e}") from None
    check_revision_steps(cfg.eval.revision_steps, max_steps if max_steps is not None else base.training.max_steps)
    source_steps = transfer.check_sources(cfg, trainer_config, max_steps)
    for arm in cfg.arms:  # each transfer arm's target stage
        if arm.source is not None:
            try:
                load_config(trainer_config, list(cfg.trainer.set) + budget + list(arm.trainer_set)
                            + transfer.target_sets(arm, os.path.join(cfg.output_dir, "source")))
            except ConfigError as e:
                raise ConfigError(f"arms.{arm.name}.source: {e}") from None
    training_shards(cfg)
    evals = load_eval(cfg)
    subsets = {name: labels for name, labels in cfg.eval.subsets.items()}
    eval_subsets(evals, subsets)
    tasks = {t.name: make_task(evals, t) for t in cfg.downstream if t.preset is None}
    claim_folder(cfg)
    units = units_of(cfg)
    for unit in units:
        check_unit(unit, cfg.fingerprint())
    return Prepared(cfg, evals, trainer_config, max_steps, subsets, tasks, units, source_steps)


def tokenizer_texts(cfg: StudyConfig, evals: Documents):
    """The texts the tokenizer learns from: the unsampled training documents that are not held out, in corpus
    order (the first ``tokenizer.max_documents``; ``corpus.max_documents`` read at most)."""
    hold, sidecar = HoldOut.of(cfg, evals), load_labels(cfg)
    given, read = 0, 0
    for shard in training_shards(cfg):
        limit = None if cfg.corpus.max_documents is None else cfg.corpus.max_documents - read
        if limit == 0:
            return
        docs = read_shard(cfg, shard, sidecar, limit)
        read += len(docs)
        for text in docs.texts:
            if not hold(text):
                yield text
                given += 1
                if given == cfg.tokenizer.max_documents:
                    return


def prepare_shared(p: Prepared, say: Callable[[str], None] = print) -> tuple[str, str, CorpusIndex]:
    """The tokenizer (trained once on the unsampled corpus; reused when there), the eval file, and the corpus
    index (every training document that is not held out, tokenised and scored once)."""
    from ..config import max_sequence_length
    from ..config_loading import load_config
    from ..data.tokenizer import train_tokenizer
    from .units import write_text

    cfg, evals = p.cfg, p.evals
    shared = os.path.join(cfg.output_dir, "shared")
    tok_dir = os.path.join(shared, "tokenizer")
    if not os.path.isfile(os.path.join(tok_dir, "tokenizer.json")):
        base = load_config(p.trainer_config, cfg.trainer.set)
        with atomic_folder(tok_dir) as tmp:
            train_tokenizer(tokenizer_texts(cfg, evals), str(tmp), cfg.tokenizer.vocab_size,
                            cfg.tokenizer.min_frequency, model_max_length=max_sequence_length(base.model))
    transfer.check_tokenizers(cfg, os.path.abspath(tok_dir))  # a clash of tokenizers: one line before the index
    eval_file = os.path.join(shared, "eval.jsonl")
    write_text(eval_file, "".join(json.dumps({"id": i, "text": t, "label": lab}, ensure_ascii=False) + "\n"
                                  for i, t, lab in zip(evals.ids, evals.texts, evals.labels)))
    step = max(1, len(training_shards(cfg)) // 10)

    def indexed(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            say(f"corpus index: {done}/{total} files tokenised and scored")

    index = build_index(cfg, evals, tok_dir, os.path.join(shared, "corpus"), cfg.runner.index_workers, indexed)
    if not len(index):
        raise DataError("no training documents are left after holding out the eval set")
    write_json(os.path.join(shared, "data.json"), {
        "train_documents": len(index), "documents_read": index.read, "eval_documents": len(evals),
        "held_out_duplicates": index.held_out, "train_tokens": int(index.tokens.sum()),
        "eval_subsets": {k: len(v) for k, v in eval_subsets(evals, p.subsets).items()},
        "tasks": {k: {"labels": t.labels, "train": len(t.train_texts), "eval": len(t.eval_texts)}
                  for k, t in p.tasks.items()}})
    return tok_dir, eval_file, index


def write_samples(p: Prepared, todo: list[Unit], index: CorpusIndex, tokenizer_dir: str) -> None:
    """Each unit's kept documents (token shards, whose eval split is the curve documents) and ``unit.json``,
    for the units still to run; every sample is first checked against the sampler itself."""
    cfg = p.cfg
    curve = p.evals.texts[: cfg.eval.curve_documents]
    for k in sorted({u.index for u in todo}):
        arms = {u.arm for u in todo if u.index == k}
        samples = sample_arms(cfg, index, k, only=arms)
        check_against_sampler(cfg, index, samples)
        for unit in (u for u in todo if u.index == k):
            s = samples[unit.arm]
            reset_unit(unit)
            os.makedirs(unit.folder, exist_ok=True)
            write_selection(index, s.mask, unit.shards_dir, tokenizer_dir, curve)
            arm = next(a for a in cfg.arms if a.name == unit.arm)
            if arm.source is not None and not os.path.isfile(unit.source_result_path):
                source_tok = transfer.source_tokenizer(arm, os.path.abspath(tokenizer_dir))
                transfer.write_source_shards(arm, unit.source_shards_dir, source_tok, index, s.mask.copy(), curve)
            write_json(os.path.join(unit.folder, "unit.json"), {
                "fingerprint": cfg.fingerprint(), "arm": unit.arm, "seed_index": unit.index,
                "training_seed": unit.training_seed, "sampling_seed": unit.sampling_seed, "sample": s.summary()})


def unit_payload(p: Prepared, unit: Unit, tokenizer_dir: str, eval_file: str) -> dict:
    """Everything :func:`run_unit` needs (plain data: it travels to Ray workers)."""
    from ..config_loading import load_config

    cfg = p.cfg
    arm = next(a for a in cfg.arms if a.name == unit.arm)
    overrides, source = unit_overrides(cfg, unit, tokenizer_dir, p.max_steps), None
    if arm.source is not None:
        base = load_config(p.trainer_config, cfg.trainer.set)
        sets = transfer.source_overrides(cfg, arm, unit, transfer.source_tokenizer(arm, os.path.abspath(tokenizer_dir)),
                                p.source_steps.get(arm.name), base)
        source = {"overrides": sets, "result": unit.source_result_path}
        overrides += transfer.target_sets(arm, load_config(p.trainer_config, sets).checkpoint_dir)
    return {"unit": dataclasses.asdict(unit), "trainer_config": p.trainer_config, "source": source,
            "overrides": overrides,
            "eval_overrides": unit_overrides(cfg, unit, tokenizer_dir, p.max_steps, arm_sets=False),
            "xla_cache": os.path.abspath(os.path.join(cfg.output_dir, "shared", "xla-cache")),
            "tokenizer_dir": tokenizer_dir, "eval_file": eval_file, "subsets": p.subsets,
            "mask_seed": cfg.eval.mask_seed, "revision_steps": cfg.eval.revision_steps,
            "revision_downstream": cfg.eval.revision_downstream,
            "downstream": [dataclasses.asdict(t) for t in cfg.downstream],
            "tasks": {k: dataclasses.asdict(t) for k, t in p.tasks.items()}}


def run_study(config, overrides: Optional[list] = None, engine: Optional[str] = None,
              progress: Callable[[str], None] = print, unit_fn: Callable[[dict], dict] = run_unit) -> dict:
    """Check, prepare, run the missing units, write the report; returns the report (a dict)."""
    from .report import write_report

    cfg = load_study_config(config, overrides)
    if engine is not None:
        if engine not in ("local", "ray"):
            raise ConfigError(f"--engine {engine!r} is not valid; use local or ray")
        cfg.runner.engine = engine
    p = check_study(cfg)
    done = [u for u in p.units if u.done()]
    todo = [u for u in p.units if not u.done()]
    progress(f"study {cfg.name}: {len(p.units)} units ({len(cfg.arms)} arms x {cfg.seeds.count} seeds), "
             f"{len(done)} done, {len(todo)} to run ({cfg.runner.engine}); folder {cfg.output_dir}")
    try:
        tok_dir, eval_file, index = prepare_shared(p, progress)
        if todo:
            write_samples(p, todo, index, tok_dir)
        jobs = [(u, unit_payload(p, u, tok_dir, eval_file)) for u in todo]
        bar = Progress(len(p.units), len(done), progress)
        outcome = (run_ray(jobs, bar, cfg, unit_fn) if cfg.runner.engine == "ray" else run_local(jobs, bar, unit_fn))
    except (KeyboardInterrupt, StoppedBySignal):
        n = sum(u.done() for u in p.units)
        raise StoppedBySignal(f"study stopped by Ctrl-C with {n} of {len(p.units)} units done; rerun the same "
                              "command to continue (an interrupted unit resumes from its last checkpoint)",
                              130) from None
    failed = {name: r for name, r in outcome.items() if isinstance(r, str)}
    results = [read_json(u.result_path) for u in p.units if u.done()]
    report = write_report(cfg, read_json(os.path.join(cfg.output_dir, "shared", "data.json")), results)
    progress(f"report: {os.path.join(cfg.output_dir, 'report.md')}")
    if failed:
        which = "; ".join(f"{k}: {v}" for k, v in failed.items())
        raise TrainerError(f"{len(failed)} of {len(p.units)} units failed ({which}); "
                           "rerun the same command to retry them")
    return report
