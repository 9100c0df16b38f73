"""Checkpoint averaging (LAWA, "Stop Wasting My Time!": the average of the latest checkpoints): ``trainer
average`` and ``checkpoint.average_last`` (the last k averaged when training ends).

The averaged parameters are ``theta = (1 / k) sum_i theta_i`` over the chosen steps (:func:`average_params`,
summed in float64 and cast back, so two float32 checkpoints give ``(a + b) / 2`` exactly). They are
written as a checkpoint folder of one step, the last chosen one (its optimizer state, stream position and
metadata, plus ``meta["averaged"]``: the source folder and steps), whole or not at all: it exports,
fine-tunes and is evaluated like any other checkpoint. Checkpoints of another family, model shape,
model config or tokenizer are refused with one line.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import jax
import numpy as np

from ..errors import CheckpointError, ConfigError
from ..hooks import Extension, Hook

log = logging.getLogger(__name__)

def average_params(trees: Sequence) -> dict:
    """``(1 / k) sum_i trees[i]`` leaf by leaf (float64 sum, cast to each leaf's dtype)."""
    k = len(trees)
    return jax.tree.map(lambda *leaves: (np.sum([np.asarray(a, np.float64) for a in leaves], axis=0) / k)
                        .astype(np.asarray(leaves[0]).dtype), *trees)


def choose_steps(available: Sequence[int], last: Optional[int], steps: Optional[Sequence[int]], where: str) -> list:
    """The steps to average: ``steps`` (each saved) or the ``last`` saved ones; at least two."""
    available = sorted(available)
    if steps:
        missing = [s for s in steps if s not in available]
        if missing:
            raise CheckpointError(f"--steps: no checkpoint at step {missing[0]} in {where} (steps: {available})")
        chosen = sorted(set(steps))
    else:
        last = last or 0
        if last < 2 or last > len(available):
            raise CheckpointError(f"--last must be between 2 and the {len(available)} saved steps of {where} "
                                  f"({available}), got {last}")
        chosen = available[-last:]
    if len(chosen) < 2:
        raise CheckpointError(f"averaging needs at least two checkpoints; {where} offers {chosen}")
    return chosen


def _identity(meta: dict) -> dict:
    """What must agree between averaged checkpoints: the family, its spec, the model config, the tokenizer."""
    from ..models import family_of_meta

    cfg = meta.get("config", {})
    return {"model.type": family_of_meta(meta).name, **{f"spec.{k}": v for k, v in meta["spec"].items()},
            **{f"model.{k}": v for k, v in cfg.get("model", {}).items() if k not in ("init_from_transformers",)},
            "data.tokenizer": cfg.get("data", {}).get("tokenizer")}


def check_same_model(metas: dict, where: str) -> None:
    """CheckpointError naming the first key on which two of ``metas`` (step -> meta) differ."""
    steps = sorted(metas)
    first = _identity(metas[steps[0]])
    for s in steps[1:]:
        other = _identity(metas[s])
        for key in sorted(set(first) | set(other)):
            if first.get(key) != other.get(key):
                raise CheckpointError(
                    f"cannot average the checkpoints of {where}: steps {steps[0]} and {s} differ in {key} "
                    f"({first.get(key)!r} vs {other.get(key)!r}); average checkpoints of one config and family")


def average_checkpoints(path: str, output: str, last: Optional[int] = None, steps: Optional[Sequence[int]] = None,
                        overwrite: bool = False, command: str = "trainer average") -> tuple[str, list]:
    """Average the chosen checkpoints of ``path`` (a checkpoints or run folder) into the checkpoint folder
    ``output`` (:mod:`mc4_sampling.common.outputs`: refused when it holds files we did not write, renamed
    into place when complete). Returns ``(output, steps)``."""
    from mc4_sampling.common.outputs import atomic_dir, check_output_dir

    from ..checkpoint import Checkpointer, split_checkpoint_path
    from ..models import family_of_meta

    check_output_dir(output, "--output", overwrite)
    directory, _ = split_checkpoint_path(path)
    src = Checkpointer(directory, read_only=True, async_save=False)
    try:
        chosen = choose_steps(src.all_steps(), last, steps, directory)
        metas, trains, positions = {}, {}, {}
        for s in chosen:
            _, metas[s], trains[s], positions[s] = src.restore_json(s)
        check_same_model(metas, directory)
        meta = metas[chosen[-1]]
        family = family_of_meta(meta)
        spec = family.spec_from_dict(meta["spec"])
        cpu = jax.sharding.SingleDeviceSharding(jax.local_devices(backend="cpu")[0])
        abstract = jax.eval_shape(lambda k: family.init_params(spec, k), jax.random.key(0))
        abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=cpu), abstract)
        trees = [jax.tree.map(np.asarray, src.restore_arrays(s, abstract)[0]) for s in chosen]
        opt_state = _restore_opt_state(src, chosen[-1])
    finally:
        src.close()
    averaged = average_params(trees)
    del trees
    meta = {**meta, "averaged": {"source": directory, "steps": chosen}}
    with atomic_dir(output, command, "--output", overwrite) as folder:
        out = Checkpointer(str(folder), keep=1, async_save=False)
        try:
            out.save(chosen[-1], averaged, opt_state, trains[chosen[-1]], positions[chosen[-1]], meta)
        finally:
            out.close()
    log.info("averaged steps %s of %s into %s", chosen, directory, output)
    return output, chosen


def _restore_opt_state(ckpt, step: int):
    """The optimizer state of ``step`` as saved (no target tree: numpy leaves on the host)."""
    import orbax.checkpoint as ocp

    try:
        r = ckpt.manager.restore(step, args=ocp.args.Composite(opt_state=ocp.args.StandardRestore()))
    except Exception as e:
        raise CheckpointError(f"cannot read the optimizer state of step {step} in {ckpt.directory}: "
                              f"{type(e).__name__}: {e}") from None
    return jax.tree.map(np.asarray, r["opt_state"])


# -- checkpoint.average_last --------------------------------------------------------------------


class AveragingExtension(Extension):
    """``checkpoint.average_last: k``: when training reaches ``training.max_steps``, the last ``k`` saved
    checkpoints are averaged into ``<training.output_dir>/averaged`` (``TrainerConfig.averaged_dir``; process 0)."""

    options = ("checkpoint.average_last",)

    def __init__(self, k: int = 0):
        self.k = k
        self.finished: Optional[tuple] = None

    @classmethod
    def enabled(cls, cfg) -> bool:
        return bool(cfg.checkpoint.average_last)

    @classmethod
    def validate(cls, cfg) -> None:
        k, keep = cfg.checkpoint.average_last, cfg.checkpoint.keep
        # with checkpoint.schedule the scheduled steps are kept too (more checkpoints than keep)
        if k and (k < 2 or (k > keep and not cfg.checkpoint.schedule)):
            raise ConfigError(f"checkpoint.average_last must be 0 (off) or between 2 and checkpoint.keep={keep} "
                              f"(the saved checkpoints it averages), got {k}")

    @classmethod
    def from_config(cls, cfg) -> "AveragingExtension":
        return cls(cfg.checkpoint.average_last)

    def hooks(self, trainer) -> list[Hook]:
        def at_end(info) -> None:
            if info.step >= info.last_step and trainer.rank == 0:
                self.finished = (trainer.ckpt.directory, trainer.cfg.averaged_dir)

        return [Hook(at_end, 1)]

    def close(self) -> Optional[BaseException]:
        if self.finished is None:  # stopped early or failed: nothing to average yet
            return None
        directory, output = self.finished
        try:  # the loop has closed the checkpointer: every save is complete
            average_checkpoints(directory, output, last=self.k, overwrite=True, command="trainer train")
        except Exception as e:
            return e
        return None


# -- trainer average ----------------------------------------------------------------------------


def add_arguments(p) -> None:
    from mc4_sampling.common.cli_types import positive_int

    p.add_argument("--checkpoint", required=True, help="checkpoints folder (or the run folder holding it)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--last", type=positive_int, metavar="K", help="average the last K saved steps")
    which.add_argument("--steps", type=positive_int, nargs="+", metavar="STEP", help="average these saved steps")
    p.add_argument("--output", required=True, help="the averaged checkpoint folder: a new or empty folder, or "
                                                   "one this command wrote")
    p.add_argument("--overwrite", action="store_true", help="replace --output even if it holds other files")


def run(args) -> int:
    out, steps = average_checkpoints(args.checkpoint, args.output, last=args.last, steps=args.steps,
                                     overwrite=args.overwrite)
    print(f"averaged steps {', '.join(map(str, steps))} into {out} (export it with `trainer export --checkpoint "
          f"{out} --output FOLDER`)")
    return 0
