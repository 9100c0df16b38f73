"""Metrics sinks: TensorBoard (tensorboardX), a JSON-lines file, optional Weights & Biases."""

from __future__ import annotations

import json
import logging
import os
from typing import Optional

from .config import TrainerConfig

log = logging.getLogger(__name__)


class Monitor:
    """Writes scalar metrics ``{name: value}`` at a step to every enabled sink (rank 0 only)."""

    def __init__(self, cfg: TrainerConfig, enabled: bool = True):
        self.writer = None
        self.file = None
        self.wandb = None
        if not enabled:
            return
        out = cfg.training.output_dir
        os.makedirs(out, exist_ok=True)
        if cfg.logging.tensorboard:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(os.path.join(out, "tensorboard"))
        if cfg.logging.metrics_file:
            self.file = open(os.path.join(out, "metrics.jsonl"), "a", encoding="utf-8")
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
            for k, v in scalars.items():
                self.writer.add_scalar(f"{kind}/{k}", v, step)
        if self.file is not None:
            self.file.write(json.dumps({"kind": kind, "step": step, **metrics}) + "\n")
            self.file.flush()
        if self.wandb is not None:
            self.wandb.log({f"{kind}/{k}": v for k, v in scalars.items()}, step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.file is not None:
            self.file.close()
        if self.wandb is not None:
            self.wandb.finish()


def read_metrics(path: str, kind: Optional[str] = "train") -> dict[int, dict]:
    """The last record per step of ``metrics.jsonl`` (a resumed run rewrites replayed steps)."""
    out: dict[int, dict] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            if kind is None or rec.get("kind") == kind:
                out[rec["step"]] = rec
    return out
