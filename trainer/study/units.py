"""The study folder: its fingerprint (a folder made with another config is refused), the shared files
and one folder per (arm, seed) unit, whose ``result.json`` (written last, atomically) marks it done.

Layout::

    <output_dir>/study.json                 the config and its fingerprint (written first)
    <output_dir>/shared/                    tokenizer/, eval.jsonl, corpus/ (the index), data.json
    <output_dir>/units/<arm>/seed<k>/       unit.json, shards/ (its sample), run/ (the trainer's), result.json
                                            and, for a transfer arm, source/ (shards/, run/, result.json)
    <output_dir>/report.md, report.json, eval_loss_curves.png, final_metrics.png
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from typing import Any

from mc4_sampling.common.outputs import write_atomic

from ..errors import ConfigError
from .config import StudyConfig, sampling_seed

STUDY_FILE = "study.json"


def write_json(path: str, obj: Any) -> None:
    """Write JSON under a temporary name, then rename it into place (never a half-written file)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=float) + "\n")


def write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomic(path, text)


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _first_difference(a: Any, b: Any, prefix: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
    return prefix[:-1] or "the config"


def claim_folder(cfg: StudyConfig) -> None:
    """Make the study folder, or check that it is this config's: a folder without ``study.json`` that holds
    anything, or one whose fingerprint differs, is refused (one line naming the folder and the first difference)."""
    out = cfg.output_dir
    path = os.path.join(out, STUDY_FILE)
    record = {"fingerprint": cfg.fingerprint(), "config": cfg.to_dict()}
    if os.path.isfile(path):
        old = read_json(path)
        if old.get("fingerprint") != record["fingerprint"]:
            mine = {k: v for k, v in record["config"].items() if k not in ("runner", "output_dir")}
            theirs = {k: v for k, v in old.get("config", {}).items() if k not in ("runner", "output_dir")}
            mine["seeds"] = {k: v for k, v in mine["seeds"].items() if k != "count"}
            theirs["seeds"] = {k: v for k, v in theirs.get("seeds", {}).items() if k != "count"}
            raise ConfigError(f"output_dir {out!r} holds a study made with another config (first difference: "
                              f"{_first_difference(mine, theirs)}); use another output_dir, or delete that folder")
        write_json(path, record)  # the same results, maybe another runner or seed count
        return
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise ConfigError(f"output_dir {out!r} exists and was not made by `trainer study` (no {STUDY_FILE}); "
                          "use a new or empty folder")
    write_json(path, record)


@dataclasses.dataclass(frozen=True)
class Unit:
    """One (arm, seed) of the study."""

    arm: str
    index: int  # seed index k
    training_seed: int
    sampling_seed: int
    folder: str

    @property
    def name(self) -> str:
        return f"{self.arm}/seed{self.index}"

    @property
    def result_path(self) -> str:
        return os.path.join(self.folder, "result.json")

    @property
    def shards_dir(self) -> str:
        """The unit's sample as token shards (what its trainer reads)."""
        return os.path.join(self.folder, "shards")

    @property
    def run_dir(self) -> str:
        return os.path.join(self.folder, "run")

    @property
    def source_dir(self) -> str:
        """A transfer arm's source stage (:mod:`.transfer`): ``shards/``, ``run/``, ``result.json``."""
        return os.path.join(self.folder, "source")

    @property
    def source_shards_dir(self) -> str:
        return os.path.join(self.source_dir, "shards")

    @property
    def source_run_dir(self) -> str:
        return os.path.join(self.source_dir, "run")

    @property
    def source_result_path(self) -> str:
        return os.path.join(self.source_dir, "result.json")

    def done(self) -> bool:
        return os.path.isfile(self.result_path)


def units_of(cfg: StudyConfig) -> list[Unit]:
    """Every unit, seed by seed and, within a seed, in the arms' order."""
    return [Unit(a.name, k, cfg.seeds.first + k, sampling_seed(cfg, k),
                 os.path.join(cfg.output_dir, "units", a.name, f"seed{k}"))
            for k in range(cfg.seeds.count) for a in cfg.arms]


def check_unit(unit: Unit, fingerprint: str) -> None:
    """A unit folder must be this study's (its ``unit.json``), else it is refused; a missing one is fine."""
    path = os.path.join(unit.folder, "unit.json")
    if os.path.isfile(path):
        rec = read_json(path)
        if rec.get("fingerprint") != fingerprint or rec.get("training_seed") != unit.training_seed:
            raise ConfigError(f"{unit.folder} was made by another study config; delete it or use another output_dir")
    elif os.path.isdir(unit.folder) and os.listdir(unit.folder):
        raise ConfigError(f"{unit.folder} holds files `trainer study` did not write (no unit.json); delete it")


def reset_unit(unit: Unit) -> None:
    """Remove what a failed unit left without a checkpoint to resume from (its sample is rewritten); a transfer
    unit's source checkpoints are kept too (its source stage resumes, or is reused when done)."""
    kept = [os.path.join(unit.run_dir, "checkpoints"), os.path.join(unit.source_run_dir, "checkpoints")]
    if os.path.isdir(unit.folder) and not any(os.path.isdir(p) for p in kept):
        shutil.rmtree(unit.folder)
