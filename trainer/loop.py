"""The step loop of a set-up :class:`~trainer.train.Trainer`, and its default hooks.

:func:`run` repeats until ``training.max_steps``: next batch (prefetched), one jitted train step,
then the hooks that are due (:func:`trainer.hooks.itstime`). The default hooks (:class:`DefaultHooks`),
in order: progress bar, metrics logging (every ``logging.every_steps``), held-out evaluation
(``training.eval_every_steps``), checkpoint (``checkpoint.every_steps``); each also runs after the
last step. The extensions' hooks follow, then those added with ``Trainer.add_hook``. A signal stops
the loop after a saved step, a non-finite step stops it or is skipped (:mod:`trainer.preemption`).
Whatever ends the loop, the prefetcher, the checkpoint writer, the extensions and the monitor are
closed, and a run that fails before its first checkpoint leaves no folder it created.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Optional

import jax
import jax.numpy as jnp

from . import flops as flops_lib
from .data.prefetch import Prefetcher
from .hooks import Hook, StepInfo, run_hooks
from .monitor import Monitor
from .preemption import StopSignals
from .run_setup import remove_unsaved_output
from .throughput import Throughput

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    step: int
    output_dir: str
    checkpoint_dir: str
    train_metrics: dict
    eval_history: list


class DefaultHooks:
    """The loop's own hooks: progress bar, metrics logging, evaluation, checkpoint (:meth:`hooks`).

    ``trainer``: the :class:`~trainer.train.Trainer` running the loop (not imported: it imports this module).
    """

    def __init__(self, trainer, bar=None):
        self.trainer = trainer
        self.bar = bar  # a tqdm bar on the first process with logging.progress_bar, else None
        self.train_metrics: dict = {}  # the last logged record
        self.eval_history: list = []

    def hooks(self) -> list[Hook]:
        tr, cfg = self.trainer, self.trainer.cfg
        hooks = []
        if self.bar is not None:
            hooks.append(Hook(self._advance_bar, 1))
        hooks.append(Hook(self._log_metrics, cfg.logging.every_steps))
        if self.bar is not None:
            hooks.append(Hook(self._show_metrics_on_bar, cfg.logging.every_steps))
        if tr.eval_tokens:
            hooks.append(Hook(tr.off_the_step_clock(self._evaluate), cfg.training.eval_every_steps))
        hooks.append(Hook(tr.off_the_step_clock(self._checkpoint), cfg.checkpoint.every_steps))
        return hooks

    def _advance_bar(self, info: StepInfo) -> None:
        self.bar.update(1)

    def _log_metrics(self, info: StepInfo) -> None:
        """The step's metrics, the throughput since the last record, the batch's digest and epoch."""
        tr = self.trainer
        tr.check_nonfinite()
        m = {k: float(v) for k, v in jax.device_get(info.metrics).items()}
        m["skipped_steps"] = tr.skipped_steps
        m.update(tr.throughput.read())
        m["batch_crc32"] = info.batch.digest
        m["epoch"] = info.position.epoch
        self.train_metrics = m
        tr.monitor.write(info.step, m, "train")

    def _show_metrics_on_bar(self, info: StepInfo) -> None:
        m = self.train_metrics
        self.bar.set_postfix(loss=f"{m['loss']:.3f}", tok_s=f"{m.get('tokens_per_second', 0):.0f}")

    def _evaluate(self, info: StepInfo) -> None:
        tr = self.trainer
        ev = tr.evaluate()
        self.eval_history.append({"step": info.step, **ev})
        tr.monitor.write(info.step, ev, "eval")
        log.info("step %d: eval loss %.4f, masked accuracy %.4f", info.step, ev["loss"], ev["accuracy"])
        if tr.on_eval is not None:
            tr.on_eval(info.step, ev)

    def _checkpoint(self, info: StepInfo) -> None:
        self.trainer.save(info.position)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress_bar(trainer) -> Optional[object]:
    cfg = trainer.cfg
    if not (cfg.logging.progress_bar and trainer.rank == 0):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=cfg.training.max_steps, initial=trainer.step, desc=cfg.name, unit="step", dynamic_ncols=True)


def run(trainer) -> TrainResult:
    """Train ``trainer`` (set up) from its step to ``training.max_steps``.

    Sets ``trainer.throughput`` (:meth:`~trainer.train.Trainer.off_the_step_clock` pauses it) and
    ``trainer.monitor`` (the metrics writer hooks may use) before the hooks are built.
    """
    cfg, t = trainer.cfg, trainer.cfg.training
    L = cfg.data.max_seq_length
    device_kind = jax.devices()[0].device_kind
    rate = trainer.masking.rate  # a schedule: the MFU counts the head at its peak width
    predicted = flops_lib.predicted_fraction(trainer.masking.max_predictions,
                                             rate.peak if rate is not None else trainer.masking.mlm_probability)
    trainer.throughput = Throughput(t.global_batch_size * L,
                                    lambda tps: flops_lib.mfu(tps, trainer.spec, L, device_kind, trainer.num_devices,
                                                              predicted))
    trainer.monitor = Monitor(cfg, enabled=trainer.rank == 0, resume_step=trainer.resume_step)
    defaults = DefaultHooks(trainer, _progress_bar(trainer))
    hooks = defaults.hooks()
    for ext in trainer.extensions:  # e.g. checkpoint.schedule revisions, weight statistics (trainer.research)
        hooks += ext.hooks(trainer)
    hooks += trainer.hooks
    # token shards: each process reads only its devices' rows (batch_crc32 is then of those rows)
    rows = trainer.read_rows
    source = (trainer.stream.batches(trainer.start_position, rows=rows) if rows is not None
              else trainer.stream.batches(trainer.start_position))
    batches = Prefetcher(source, size=cfg.data.prefetch_batches)
    signals = StopSignals()
    signals.install()
    try:
        while trainer.step < t.max_steps:
            batch = trainer.throughput.next_batch(batches)
            trainer.params, trainer.opt_state, metrics = trainer.train_step(
                trainer.params, trainer.opt_state, jnp.asarray(trainer.step, jnp.int32),
                trainer.device_batch(batch.tokens))
            trainer.step += 1
            trainer.check_nonfinite()  # the previous step's, ready by now: the device is not stalled
            trainer.nonfinite.add(trainer.step, metrics)
            trainer.throughput.stepped(metrics)
            info = StepInfo(trainer.step, t.max_steps, trainer, batch, metrics)
            run_hooks(hooks, info)
            if trainer.step < t.max_steps and signals.should_stop(trainer.step, trainer.world,
                                                                   cfg.logging.every_steps):
                signals.stop(trainer.step, lambda: trainer.ensure_saved(info.position),
                             lambda: trainer.ckpt.directory)
        trainer.check_nonfinite()
    finally:
        signals.restore()
        batches.close()
        defaults.close()
        try:
            trainer.ckpt.close()  # a failed background save raises CheckpointError here
        finally:
            extension_errors = [e for e in (ext.close() for ext in trainer.extensions) if e is not None]
            trainer.monitor.close()
            if sys.exc_info()[0] is not None and trainer.created_output and trainer.rank == 0:
                # a run that failed before its first checkpoint leaves no folder it created (nothing to resume)
                remove_unsaved_output(t.output_dir, trainer.ckpt.directory)
    if extension_errors:
        raise extension_errors[0]
    return TrainResult(trainer.step, t.output_dir, trainer.ckpt.directory, defaults.train_metrics,
                       defaults.eval_history)
