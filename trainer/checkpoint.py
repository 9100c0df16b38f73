"""Orbax checkpoints: parameters, optimizer state, step, seed, batch-stream position, metadata.

Layout of one step (Orbax writes it in a temporary folder and renames it when complete, so a
crash while saving leaves the previous steps usable)::

    <dir>/<step>/params      sharded arrays
    <dir>/<step>/opt_state   sharded arrays
    <dir>/<step>/train       JSON: step, seed (every PRNG key is derived from the seed)
    <dir>/<step>/position    JSON: one StreamPosition per process
    <dir>/<step>/meta        JSON: model type and spec, config, tokenizer folder
    <dir>/<step>/checksums.json   size and SHA-256 of every file above, written last
                                  (:mod:`trainer.checkpoint_integrity`)

Every restore checks the step first (:meth:`Checkpointer.damage`): a damaged step is named in one
line with the newest intact one, and is only replaced by it when the user asks
(``--from-last-good``, ``checkpoint.from_last_good``; :func:`usable_step`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import threading
import warnings
from typing import Optional

import jax
import numpy as np

from .checkpoint_integrity import has_checksums, step_damage, write_checksums
from .errors import CheckpointError
from .models import family_of, family_of_meta

log = logging.getLogger(__name__)

def _ocp():
    import orbax.checkpoint as ocp

    if logging.getLogger("absl").getEffectiveLevel() < logging.CRITICAL:
        # Orbax reports normal events as warnings, and a failed background save (reported by
        # Checkpointer.save/close as one line) as an error with a traceback
        logging.getLogger("absl").setLevel(logging.CRITICAL)
    return ocp


class Checkpointer:
    def __init__(self, directory: str, keep: int = 5, async_save: bool = True, read_only: bool = False,
                 preserve: tuple = ()):
        """``keep``: the latest steps kept; ``preserve``: steps never deleted (``checkpoint.schedule``)."""
        ocp = _ocp()
        self.directory = os.path.abspath(directory)
        self.async_save = async_save
        self._requested: Optional[int] = None  # the last step whose save was started
        self._failed = False  # a save failed (checkpoint_failure)
        if read_only and not os.path.isdir(self.directory):
            raise CheckpointError(f"no checkpoint folder at {directory}")
        retention = dict(max_to_keep=keep)
        if preserve:
            cm = ocp.checkpoint_managers
            retention = dict(preservation_policy=cm.AnyPreservationPolicy(
                [cm.LatestN(n=keep), cm.CustomSteps(steps=sorted(preserve))]))
        options = ocp.CheckpointManagerOptions(
            create=not read_only, enable_async_checkpointing=async_save, read_only=read_only,
            cleanup_tmp_directories=not read_only, **retention,
        )
        self.manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("params", "opt_state", "train", "position", "meta")
        )

    def latest_step(self) -> Optional[int]:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(self, step: int, params, opt_state, train: dict, positions: list[dict], meta: dict) -> None:
        """Start saving ``step`` (in the background with ``async_save``); a failed save, this one or the
        previous background one, raises one CheckpointError keeping the last good checkpoint."""
        ocp = _ocp()
        self._finish_previous()  # Orbax's save would wait for it too, and blame its failure on ``step``
        with self._failures_stop_the_run(step):
            self._save(ocp, step, params, opt_state, train, positions, meta)
        self._requested = step
        if not self.async_save:
            self._finish_previous()

    def _finish_previous(self) -> None:
        """Wait for the save in flight; its failure is one CheckpointError naming its step; once
        finished, its checksum manifest is written (by the first process)."""
        step = self._requested
        with self._failures_stop_the_run(step):
            self.manager.wait_until_finished()
            self.manager.check_for_errors()
            if step is not None and jax.process_index() == 0:
                step_dir = self.step_dir(step)
                if os.path.isdir(step_dir) and not has_checksums(step_dir):
                    write_checksums(step_dir)

    def step_dir(self, step: int) -> str:
        return os.path.join(self.directory, str(step))

    def damage(self, step: int) -> Optional[str]:
        """None when step ``step`` is intact (:func:`~trainer.checkpoint_integrity.step_damage`), else what is wrong."""
        return step_damage(self.step_dir(step))

    def newest_intact(self, below: Optional[int] = None, sealed: bool = False) -> Optional[int]:
        """The newest intact step (below ``below`` when given; with ``sealed``, only a step verified by
        its ``checksums.json``), or None."""
        for s in sorted(self.all_steps(), reverse=True):
            if ((below is None or s < below) and (not sealed or has_checksums(self.step_dir(s)))
                    and self.damage(s) is None):
                return s
        return None

    @contextlib.contextmanager
    def _failures_stop_the_run(self, step: Optional[int]):
        try:
            yield
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(checkpoint_failure(self, e, step)) from None

    def _save(self, ocp, step, params, opt_state, train, positions, meta) -> None:
        self.manager.save(step, args=ocp.args.Composite(
            params=ocp.args.StandardSave(params),
            opt_state=ocp.args.StandardSave(opt_state),
            train=ocp.args.JsonSave(train),
            position=ocp.args.JsonSave({"positions": positions}),
            meta=ocp.args.JsonSave(meta),
        ), force=True)

    def _require(self, step: Optional[int]) -> int:
        step = self.latest_step() if step is None else step
        if step is None or step not in self.all_steps():
            raise CheckpointError(
                f"no checkpoint {'at step ' + str(step) if step is not None else ''} in {self.directory} "
                f"(steps: {self.all_steps() or 'none'})"
            )
        return step

    def restore_json(self, step: Optional[int] = None) -> tuple[int, dict, dict, list[dict]]:
        """``(step, meta, train, positions)`` without touching the arrays."""
        ocp = _ocp()
        step = self._require(step)
        try:
            r = self.manager.restore(step, args=ocp.args.Composite(
                meta=ocp.args.JsonRestore(), train=ocp.args.JsonRestore(), position=ocp.args.JsonRestore()))
        except Exception as e:
            raise CheckpointError(self.restore_failure(step, e)) from None
        return step, r["meta"], r["train"], r["position"]["positions"]

    def restore_arrays(self, step: int, abstract_params, abstract_opt_state=None):
        """Restore params (and opt_state when an abstract tree is given) with their shardings."""
        ocp = _ocp()
        items = {"params": ocp.args.StandardRestore(abstract_params)}
        if abstract_opt_state is not None:
            items["opt_state"] = ocp.args.StandardRestore(abstract_opt_state)
        try:
            r = self.manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as e:
            raise CheckpointError(self.restore_failure(step, e)) from None
        return r["params"], r.get("opt_state") if abstract_opt_state is not None else None

    def restore_failure(self, step: int, error: BaseException) -> str:
        """One line for a step Orbax cannot restore. A step without ``checksums.json`` (the run ended, killed
        or crashed, before sealing it) was not verified: the line names the newest earlier step and how to
        go on from it; :func:`usable_step` cannot tell that such a step is damaged."""
        line = f"cannot restore step {step} from {self.directory}: {one_line(error)}"
        if has_checksums(self.step_dir(step)):
            return line
        earlier = self.newest_intact(below=step)
        way = (f"the newest earlier step is {earlier}: rerun with --from-last-good, or move {self.step_dir(step)} "
               f"aside (e.g. to {os.path.join(self.directory, f'damaged-{step}')}), to go on from it"
               if earlier is not None
               else f"no earlier step is left (steps: {self.all_steps()})")
        return (f"{line}; the step has no checksums.json (the run ended before it was verified), so it is likely "
                f"damaged; {way}")

    def close(self) -> None:
        """Wait for the background save; a failed one raises CheckpointError (after closing)."""
        try:
            if self._failed:  # already reported in one line: only wait for Orbax's threads
                with contextlib.suppress(Exception):
                    self.manager.wait_until_finished()
            else:
                self._finish_previous()
        finally:
            self.manager.close()
            if self._failed:  # a failed save's threads may still have been writing when it was reported
                remove_partial_steps(self.directory)


def checkpoint_failure(ckpt: "Checkpointer", error: BaseException, step: Optional[int]) -> str:
    """One line for a failed checkpoint save: the folder, the OS's reason, the last good step kept.
    The failed step's temporary folder is removed (it is incomplete)."""
    reason = failure_reason(error)
    ckpt._failed = True  # close() removes what Orbax's threads still wrote after this
    release_waiting_threads()
    remove_partial_steps(ckpt.directory)
    try:
        ckpt.manager.reload()
        last = ckpt.manager.latest_step()
    except Exception:
        last = None
    kept = f"the last good checkpoint, step {last}, is kept" if last is not None else "no checkpoint was saved"
    return (f"saving a checkpoint{f' at step {step}' if step is not None else ''} in {ckpt.directory} failed: "
            f"{reason}; training stopped and {kept}")


def release_waiting_threads() -> None:
    """After a failed save: Orbax's background threads of that save wait for signals (the step's folder
    created, ...) that the failed save never sends, for up to its coordination timeout (300 s), and the
    process cannot exit before them. Each is cancelled and sent the signals it waits for, so it ends at
    once (a read-only checkpoint folder used to keep the stopped run alive for 5 minutes)."""
    try:
        from orbax.checkpoint._src.futures import future as orbax_future
    except ImportError:  # another Orbax layout: its own timeout applies
        return
    thread_type = getattr(orbax_future, "_SignalingThread", None)
    if thread_type is None:
        return
    for thread in threading.enumerate():
        if isinstance(thread, thread_type) and thread.is_alive():
            try:
                thread.cancel()
                orbax_future.set_signals(thread._receive_signals, operation_id=thread._operation_id)
                with warnings.catch_warnings():  # never to run: closed now, quietly, not warned about at exit
                    warnings.simplefilter("ignore", RuntimeWarning)
                    for coroutine in _coroutines_of(getattr(thread, "_target", None)):
                        coroutine.close()
            except Exception as e:  # best effort: the run has failed already
                log.debug("could not release Orbax thread %s: %s", thread.name, e)


def _coroutines_of(fn, depth: int = 4) -> list:
    """The coroutine objects a function's closure holds (a thread's target, a few closures deep)."""
    import inspect

    found = []
    for cell in getattr(fn, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if inspect.iscoroutine(value) and inspect.getcoroutinestate(value) == inspect.CORO_CREATED:
            found.append(value)
        elif depth > 0 and callable(value):
            found += _coroutines_of(value, depth - 1)
    return found


def remove_partial_steps(directory: str) -> None:
    """Remove Orbax's temporary folders of steps whose save did not complete."""
    for name in os.listdir(directory) if os.path.isdir(directory) else ():
        if ".orbax-checkpoint-tmp" in name:
            shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def usable_step(ckpt: Checkpointer, step: Optional[int], from_last_good: bool, what: str, flag: str) -> int:
    """The step to restore: ``step`` (the latest when None) when it is intact; else, with
    ``from_last_good``, the newest intact step before it (logged as one warning line); else one
    CheckpointError naming the damaged step, what is wrong with it, and the newest intact one. With
    ``from_last_good``, a latest step that was never verified (no ``checksums.json``: the run ended
    before sealing it) counts as damaged when a verified step precedes it.

    ``what``: the action (``"resume"``, ``"export"``); ``flag``: how the user asks for the fallback
    (``"rerun with --from-last-good"``)."""
    step = ckpt._require(step)
    damage = ckpt.damage(step)
    if damage is None and from_last_good and not has_checksums(ckpt.step_dir(step)) \
            and ckpt.newest_intact(below=step, sealed=True) is not None:
        # asked for the last good step: one that was never verified (the run ended before sealing it) is not
        damage = "not verified: it has no checksums.json, the run ended before sealing it"
    if damage is None:
        return step
    good = ckpt.newest_intact(below=step)
    where = f"checkpoint step {step} in {ckpt.directory} is damaged ({damage})"
    if good is None:
        raise CheckpointError(f"{where}, and no earlier step is intact (steps: {ckpt.all_steps()}); "
                              f"nothing to {what} from")
    if not from_last_good:
        raise CheckpointError(f"{where}; the newest intact one is step {good}: {flag} to {what} from it")
    log.warning("%s; using step %d, the newest intact one, to %s from, as asked", where, good, what)
    return good


def set_aside_damaged(ckpt: Checkpointer, good: int) -> list[str]:
    """Move the steps after ``good`` (damaged: ``good`` is the newest intact one) to
    ``<dir>/damaged-<step>`` so that the resumed run writes them anew; returns the new paths."""
    moved = []
    if jax.process_index() == 0:
        for s in sorted(ckpt.all_steps()):
            if s > good:
                target = os.path.join(ckpt.directory, f"damaged-{s}")
                n = 1
                while os.path.exists(target):
                    n += 1
                    target = os.path.join(ckpt.directory, f"damaged-{s}.{n}")
                os.rename(ckpt.step_dir(s), target)
                moved.append(target)
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices("trainer:set_aside_damaged")
    ckpt.manager.reload()
    return moved


def one_line(error: BaseException) -> str:
    """``Type: first line`` of an exception (TensorStore's spec dump and Orbax's details cut), at most 300
    characters."""
    text = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    text = text.split(" See full TensorStore details")[0]
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def failure_reason(error: BaseException) -> str:
    """The OS's reason of a failed save (Orbax/TensorStore word ENOSPC as ``os_error_code='28'``)."""
    import re

    from mc4_sampling.common.outputs import os_error_message

    if isinstance(error, OSError):
        return os_error_message(error)
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    code = re.search(r"os_error_code='?(\d+)", text)
    if code:
        return os_error_message(OSError(int(code.group(1)), os.strerror(int(code.group(1)))))
    return f"{type(error).__name__}: {text}"


def spec_to_meta(spec) -> dict:
    return dataclasses.asdict(spec)


def model_meta(spec) -> dict:
    """The metadata entries of the model: ``model_type`` (the family, ``model.type``) and ``spec``."""
    return {"model_type": family_of(spec).name, "spec": spec_to_meta(spec)}


def check_compatible(saved_spec: dict, spec, where: str, model_type: Optional[str] = None) -> None:
    """Raise CheckpointError naming the family or each differing architecture field (the family's ``arch_fields``).

    ``saved_spec``, ``model_type``: the checkpoint's ``meta["spec"]`` and ``meta.get("model_type")``
    (a checkpoint without ``model_type`` is RoBERTa).
    """
    family = family_of(spec)
    saved_family = family_of_meta({"model_type": model_type})
    if saved_family is not family:
        raise CheckpointError(f"the checkpoint in {where} is a {saved_family.name} model, the config a "
                              f"{family.name} one (model.type); use a matching model config or another "
                              "checkpoint folder")
    # a field the checkpoint does not name has its spec default (e.g. no vocabulary padding)
    defaults = family.arch_defaults()
    saved = {k: saved_spec.get(k, defaults.get(k)) for k in family.arch_fields()}
    diffs = [f"{k}: checkpoint {saved[k]!r}, config {getattr(spec, k)!r}"
             for k in family.arch_fields() if saved[k] != getattr(spec, k)]
    if diffs:
        raise CheckpointError(
            f"the checkpoint in {where} was made for another model shape ({'; '.join(diffs)}); "
            "use a matching model config or another checkpoint folder"
        )


def split_checkpoint_path(path: str) -> tuple[str, Optional[int]]:
    """``runs/x/checkpoints`` -> (that, None); ``runs/x/checkpoints/300`` -> (``runs/x/checkpoints``, 300).

    A run folder holding ``checkpoints/`` is accepted too.
    """
    path = os.path.abspath(path)
    base = os.path.basename(path)
    if base.isdigit() and os.path.isdir(path):
        return os.path.dirname(path), int(base)
    if os.path.isdir(os.path.join(path, "checkpoints")):
        return os.path.join(path, "checkpoints"), None
    return path, None


def gather_positions(position_json: dict) -> list[dict]:
    """Every process's stream position (one entry per process, in process order)."""
    if jax.process_count() == 1:
        return [position_json]
    import json

    from jax.experimental import multihost_utils

    data = np.frombuffer(json.dumps(position_json).encode(), np.uint8)
    lengths = multihost_utils.process_allgather(np.asarray([len(data)], np.int64))
    padded = np.zeros((int(np.max(lengths)),), np.uint8)
    padded[: len(data)] = data
    allp = multihost_utils.process_allgather(padded)
    return [json.loads(bytes(row[: int(n)]).decode()) for row, n in zip(allp, np.ravel(lengths))]
