"""Where a run starts, and its starting state.

:func:`choose_start` decides, in this order: resume the run's own latest checkpoint
(``checkpoint.resume``; same seed, compatible model), switch phase from another run's checkpoint
(``checkpoint.init_from``, its data position with ``checkpoint.init_data_position``), or start
afresh; and where the batch stream starts (the global position every process saved).
:func:`init_state` then builds the mesh, the optimizer, the shardings and the sharded params and
optimizer state: restored, taken from the phase-1 checkpoint, from an extension
(:meth:`~trainer.hooks.Extension.initial_params`, e.g. a transfer), imported from a transformers
folder (``model.init_from_transformers``, :func:`check_transformers_init`), or initialised from
the run's init key.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Optional, Sequence

import jax
import numpy as np

from .checkpoint import Checkpointer, check_compatible, set_aside_damaged, split_checkpoint_path, usable_step
from .config import TrainerConfig
from .data.batches import StreamPosition
from .errors import CheckpointError, ConfigError
from .hooks import Extension
from .models import family_of
from .models.hf_folder import model_folder
from .optim import make_optimizer
from .param_paths import check_freeze
from .sharding import make_mesh, state_shardings
from .steps import RunKeys

log = logging.getLogger(__name__)

#: How a user asks to go on from the newest intact checkpoint when the latest is damaged.
FALLBACK_FLAG = "rerun with --from-last-good (or --set checkpoint.from_last_good=true)"


@dataclasses.dataclass
class Start:
    """Where a run starts (:func:`choose_start`)."""

    resume_step: Optional[int]  # the own checkpoint step resumed; None: not resuming
    resume_train: Optional[dict]  # its ``{step, seed, skipped_steps}``
    init_source: Optional[tuple]  # (read-only Checkpointer, step) of checkpoint.init_from; open until closed
    position: StreamPosition  # where the batch stream starts
    skipped_steps: int  # updates dropped by training.on_nonfinite=skip (over the resumed runs too)


@dataclasses.dataclass
class State:
    """The run's mesh, optimizer, shardings and sharded state (:func:`init_state`)."""

    mesh: object
    tx: object
    param_sharding: object
    opt_sharding: object
    params: object
    opt_state: object
    step: int


def open_checkpoints(cfg: TrainerConfig, preserve: tuple[int, ...]) -> Checkpointer:
    """The run's own checkpoint folder (``checkpoint.*`` settings; ``preserve``: steps never deleted)."""
    return Checkpointer(cfg.checkpoint_dir, keep=cfg.checkpoint.keep, async_save=cfg.checkpoint.async_save,
                        preserve=preserve)


def check_transformers_init(cfg: TrainerConfig, spec):
    """Import ``model.init_from_transformers``; its architecture (the family's ``arch_fields``) must match."""
    family = family_of(spec)
    folder = cfg.model.init_from_transformers
    local = model_folder(folder, "model.init_from_transformers")  # a folder, or a Hub id (owner/name@revision)
    imported_spec, params = family.hf.import_pretrained(local, pad_vocab_to_multiple_of=spec.pad_vocab_to_multiple_of)
    diffs = [(k, getattr(imported_spec, k), getattr(spec, k))
             for k in family.arch_fields() if getattr(imported_spec, k) != getattr(spec, k)]
    if diffs:
        raise ConfigError(f"model.init_from_transformers={folder!r} does not match the model config: "
                          + "; ".join(f"{k}: folder {f!r}, config {c!r}" for k, f, c in diffs)
                          + " (set " + ", ".join(f"model.{k}={f!r}" for k, f, _ in diffs) + " to import it)")
    return params


def global_position(positions: list, where: str) -> StreamPosition:
    """The global stream position: every process saved the same one, so any process count resumes it."""
    if any(p != positions[0] for p in positions[1:]):
        raise CheckpointError(f"the checkpoint in {where} holds {len(positions)} different stream positions "
                              "(per-process streams of an older trainer); set checkpoint.init_data_position="
                              "false to start the data afresh")
    return StreamPosition.from_json(positions[0])


def choose_start(cfg: TrainerConfig, spec, ckpt: Optional[Checkpointer]) -> Start:
    """Our own latest checkpoint (``ckpt``: the run's folder when it exists), another run's (phase switch),
    or scratch. The phase-1 checkpoint stays open in :attr:`Start.init_source` (closed here on an error)."""
    latest = ckpt.latest_step() if ckpt is not None else None
    resume_step = latest if cfg.checkpoint.resume else None
    if not cfg.checkpoint.resume and latest is not None:
        raise ConfigError(
            f"checkpoint.resume is false but {ckpt.directory} already holds steps {ckpt.all_steps()}; "
            "use another training.output_dir / checkpoint.directory, or resume"
        )
    if resume_step is not None:
        resume_step = usable_step(ckpt, resume_step, cfg.checkpoint.from_last_good, "resume", FALLBACK_FLAG)
        if resume_step != latest:  # asked for: the damaged steps are kept aside, and written anew
            for path in set_aside_damaged(ckpt, resume_step):
                log.warning("the damaged checkpoint is kept as %s", path)
        _, meta, resume_train, positions = ckpt.restore_json(resume_step)
        check_compatible(meta["spec"], spec, ckpt.directory, meta.get("model_type"))
        position = global_position(positions, ckpt.directory)
        if resume_train.get("seed") != cfg.training.seed:
            raise ConfigError(f"training.seed ({cfg.training.seed}) differs from the run being resumed "
                              f"({resume_train.get('seed')}); exact resume needs the same seed")
        return Start(resume_step, resume_train, None, position, int(resume_train.get("skipped_steps", 0)))
    if cfg.checkpoint.init_from:
        directory, step = split_checkpoint_path(cfg.checkpoint.init_from)
        step = cfg.checkpoint.init_step if cfg.checkpoint.init_step is not None else step
        src = Checkpointer(directory, read_only=True, async_save=False)
        try:
            step = usable_step(src, step, cfg.checkpoint.from_last_good, "switch phase", FALLBACK_FLAG)
            step, meta, _, positions = src.restore_json(step)
            check_compatible(meta["spec"], spec, directory, meta.get("model_type"))
            position = (global_position(positions, directory) if cfg.checkpoint.init_data_position
                        else StreamPosition())
        except BaseException:
            src.close()
            raise
        return Start(None, None, (src, step), position, 0)
    return Start(None, None, None, StreamPosition(), 0)


def init_state(cfg: TrainerConfig, spec, keys: RunKeys, start: Start, ckpt: Optional[Checkpointer], imported,
               extensions: Sequence[Extension]) -> State:
    """The mesh, the optimizer, the shardings (``training.fsdp``) and the state ``start`` asks for;
    ``imported``: the params of ``model.init_from_transformers`` (or None)."""
    mesh = make_mesh()
    tx = make_optimizer(cfg)
    abstract_params = jax.eval_shape(lambda k: family_of(spec).init_params(spec, k), keys.init)
    check_freeze(abstract_params, cfg.model.freeze)
    param_sharding = state_shardings(abstract_params, mesh, cfg.training.fsdp)
    abstract_opt = jax.eval_shape(tx.init, abstract_params)
    opt_sharding = state_shardings(abstract_opt, mesh, cfg.training.fsdp)
    with_sharding = lambda tree, sh: jax.tree.map(  # noqa: E731
        lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), tree, sh)
    init_opt = jax.jit(tx.init, out_shardings=opt_sharding)
    step = 0
    if start.resume_step is not None:
        params, opt_state = ckpt.restore_arrays(start.resume_step, with_sharding(abstract_params, param_sharding),
                                                with_sharding(abstract_opt, opt_sharding))
        step = int(start.resume_train["step"])
        log.info("resumed from %s at step %d", ckpt.directory, step)
    elif start.init_source is not None:
        src, src_step = start.init_source
        keep = cfg.checkpoint.init_optimizer == "keep"
        params, opt = src.restore_arrays(src_step, with_sharding(abstract_params, param_sharding),
                                         with_sharding(abstract_opt, opt_sharding) if keep else None)
        opt_state = opt if keep else init_opt(params)
        log.info("phase switch: params from %s step %d, %s optimizer state", src.directory, src_step,
                 "kept" if keep else "fresh")
    elif (first := extension_params(spec, keys, extensions)) is not None:  # e.g. a transfer (trainer.research)
        params = jax.device_put(first, param_sharding)
        opt_state = init_opt(params)
    elif imported is not None:
        params = jax.device_put(jax.tree.map(lambda a, s: np.asarray(a, s.dtype), imported, abstract_params),
                                param_sharding)
        opt_state = init_opt(params)
    else:
        init = jax.jit(lambda k: family_of(spec).init_params(spec, k), out_shardings=param_sharding)
        params = init(keys.init)
        opt_state = init_opt(params)
    return State(mesh, tx, param_sharding, opt_sharding, params, opt_state, step)


def extension_params(spec, keys: RunKeys, extensions: Sequence[Extension]):
    """The first extension's starting parameters (:meth:`~trainer.hooks.Extension.initial_params`), or None."""
    fresh = lambda: jax.jit(lambda k: family_of(spec).init_params(spec, k))(keys.init)  # noqa: E731
    for ext in extensions:
        first = ext.initial_params(spec, fresh)
        if first is not None:
            return first
    return None
