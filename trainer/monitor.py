"""Metrics sinks: TensorBoard (tensorboardX), a JSON-lines file, optional Weights & Biases."""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import sys
from typing import Optional

from mc4_sampling.common.outputs import write_atomic

from .config import TrainerConfig
from .errors import DataError

log = logging.getLogger(__name__)


def summary_writer_class():
    """tensorboardX's ``SummaryWriter``, imported without PyTorch when PyTorch is not imported yet: tensorboardX
    imports torch where it is installed (3-4 s of every run's start) only to take torch tensors as values, and the
    trainer writes Python floats. While tensorboardX is imported, ``import torch`` fails (it falls back to NumPy)."""
    if "torch" in sys.modules:
        from tensorboardX import SummaryWriter

        return SummaryWriter
    sys.modules["torch"] = None  # type: ignore[assignment]
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


class Monitor:
    """Writes scalar metrics ``{name: value}`` at a step to every enabled sink (rank 0 only)."""

    def __init__(self, cfg: TrainerConfig, enabled: bool = True, resume_step: Optional[int] = None):
        """``resume_step``: the step training resumes from (None: from scratch); the records of
        ``metrics.jsonl`` after it (steps that will be replayed) are dropped first, so the file holds
        each step once."""
        self.writer = None
        self.file = None
        self.wandb = None
        if not enabled:
            return
        out = cfg.training.output_dir
        os.makedirs(out, exist_ok=True)
        if cfg.logging.tensorboard:
            self.writer = summary_writer_class()(os.path.join(out, "tensorboard"))
        if cfg.logging.metrics_file:
            path = os.path.join(out, "metrics.jsonl")
            keep_records_up_to(path, resume_step or 0)
            self.file = open(path, "a", encoding="utf-8")
        if cfg.logging.wandb:
            try:
                import wandb
            except ImportError:
                log.warning("logging.wandb is set but wandb is not installed; skipping Weights & Biases")
            else:
                self.wandb = wandb.init(project=cfg.logging.wandb_project, name=cfg.name, config=cfg.to_dict(),
                                        resume="allow")

    def write(self, step: int, metrics: dict, kind: str = "train") -> None:
        scalars = {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None}
        if self.writer is not None:
            self._check_tensorboard()
            for k, v in scalars.items():
                self.writer.add_scalar(f"{kind}/{k}", v, step)
        if self.file is not None:
            self.file.write(json.dumps({"kind": kind, "step": step, **metrics}) + "\n")
            self.file.flush()
        if self.wandb is not None:
            self.wandb.log({f"{kind}/{k}": v for k, v in scalars.items()}, step=step)

    def _check_tensorboard(self) -> None:
        """Raise (one line) when tensorboardX's writer thread died (a full disk...): writing more would
        block forever on its full queue."""
        if not self._tensorboard_died():
            return
        logdir = self.writer.logdir
        self.writer = None
        if shutil.disk_usage(logdir).free < 1 << 20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), logdir)
        raise DataError(f"writing TensorBoard events to {logdir} failed; fix the folder, or set "
                        "logging.tensorboard=false")

    def _tensorboard_died(self) -> bool:
        """Whether tensorboardX's writer thread is dead; then its close (also run at exit) is disarmed."""
        event_writer = getattr(getattr(self.writer, "file_writer", None), "event_writer", None)
        worker = getattr(event_writer, "_worker", None)
        if worker is None or worker.is_alive():
            return False
        event_writer._closed = True  # its close() would wait forever on the dead thread's full queue
        return True

    def close(self) -> None:
        if self.writer is not None and not self._tensorboard_died():
            try:
                self.writer.close()
            except OSError:  # its thread died of it; the error was or will be reported
                pass
        if self.file is not None:
            self.file.close()
        if self.wandb is not None:
            self.wandb.finish()


def keep_records_up_to(path: str, step: int) -> None:
    """Rewrite ``path`` (JSON lines with a ``step``) without the records after ``step`` (atomically)."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    kept = [line for line in lines if _step_of(line) is not None and _step_of(line) <= step]
    if len(kept) == len(lines):
        return
    write_atomic(path, "".join(kept))


def _step_of(line: str) -> Optional[int]:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):  # a line cut short by a crash
        return None


def read_metrics(path: str, kind: Optional[str] = "train") -> dict[int, dict]:
    """The last record per step of ``metrics.jsonl`` (a resumed run rewrites replayed steps)."""
    out: dict[int, dict] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if kind is None or rec.get("kind") == kind:
                out[rec["step"]] = rec
    return out
