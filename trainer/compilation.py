"""The run's compiled steps and the memory check.

:func:`compile_steps` jits the train step (state donated, batch ``[accum, micro, L]`` sharded over
the mesh's data axis) and the eval step with the state's shardings. :func:`step_memory` compiles
the train step at once (the first step reuses it) and returns XLA's memory estimate;
:func:`check_memory` compares it with the device's memory (:mod:`trainer.memory`): a step that
cannot fit is a ConfigError before the first step.
"""

from __future__ import annotations

import logging
import os
from typing import Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from . import memory
from .config import TrainerConfig
from .masking import MaskingRule
from .optim import schedule_fn
from .sharding import batch_sharding, replicated
from .steps import make_eval_step, make_train_step

log = logging.getLogger(__name__)


class CompiledSteps(NamedTuple):
    train_step: Callable  # (params, opt_state, step, tokens[accum, micro, L]) -> (params, opt_state, metrics)
    eval_step: Callable  # (params, inputs, labels, weights) -> [loss sum, masked tokens, correct]
    batch_sharding: object  # of the training batch [accum, micro, L]
    eval_sharding: object  # of an eval batch [eval_batch_size, L]


def compile_steps(cfg: TrainerConfig, spec, tx, rule: MaskingRule, step_key, pad_id: int, mesh, param_sharding,
                  opt_sharding, sep_id: Optional[int] = None) -> CompiledSteps:
    """The jitted train and eval steps (:mod:`trainer.steps`) over ``mesh``; ``sep_id``: the tokenizer's
    ``[SEP]``, which the ``mlm+nsp`` objective's token types follow."""
    nsp_sep_id = sep_id if cfg.training.objective == "mlm+nsp" else None
    train_step = make_train_step(spec, tx, schedule_fn(cfg), rule, step_key,
                                 skip_nonfinite=cfg.training.on_nonfinite == "skip", nsp_sep_id=nsp_sep_id)
    batches = batch_sharding(mesh)
    rep = replicated(mesh)
    train_step = jax.jit(
        train_step,
        in_shardings=(param_sharding, opt_sharding, rep, batches),
        out_shardings=(param_sharding, opt_sharding, rep),
        donate_argnums=(0, 1),
    )
    from jax.sharding import NamedSharding, PartitionSpec as P

    eval_sharding = NamedSharding(mesh, P("data"))
    eval_step = jax.jit(make_eval_step(spec, pad_id, rule.max_predictions, nsp_sep_id),
                        in_shardings=(param_sharding, eval_sharding, eval_sharding, eval_sharding), out_shardings=rep)
    return CompiledSteps(train_step, eval_step, batches, eval_sharding)


def step_memory(steps: CompiledSteps, params, opt_state, accum: int, micro: int, seq_len: int):
    """Compile the train step now (the first step reuses it); XLA's memory estimate of it
    (:func:`trainer.memory.compiled_bytes`)."""
    like = lambda tree: jax.tree.map(  # noqa: E731
        lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)
    # the step goes in as an uncommitted scalar (no sharding), as the loop passes it: same cache key
    args = (like(params), like(opt_state), jax.ShapeDtypeStruct((), jnp.int32),
            jax.ShapeDtypeStruct((accum, micro, seq_len), jnp.int32, sharding=steps.batch_sharding))
    return memory.compiled_bytes(steps.train_step.lower(*args).compile())


def check_memory(estimate, spec, micro: int, num_devices: int, accum: int, seq_len: int) -> None:
    """ConfigError when the train step's ``estimate`` exceeds the device's memory; logs the summary."""
    device = jax.local_devices()[0]
    source = (f"${memory.LIMIT_ENV}" if os.environ.get(memory.LIMIT_ENV) else
              "host memory available" if device.platform == "cpu" else "")
    summary = memory.check_fits(estimate, memory.device_limit(device),
                                per_device_batch_size=micro // num_devices, accum=accum,
                                remat=spec.remat, seq_len=seq_len, limit_source=source)
    log.info("train step memory: %s", summary)
