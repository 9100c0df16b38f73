"""The trainer: ``Trainer(cfg).run()``, a thin composition of the run's units with the public API.

:meth:`Trainer.setup` makes every check before the first step, in this order: the output folder
policy, the distributed start, the device and batch checks, the tokenizer and the model spec
(:mod:`trainer.run_setup`); where the run starts, resumed or not (:mod:`trainer.initial_state`);
the data source, the eval set (:mod:`trainer.evaluation`), the state, the compiled steps and the
memory check (:mod:`trainer.compilation`); then the run files. :meth:`Trainer.run` runs the step
loop with its hooks (:mod:`trainer.loop`), stopped cleanly by a signal or a non-finite step
(:mod:`trainer.preemption`). :meth:`Trainer.add_hook` adds hooks, run after the default ones.
Features outside the core loop (checkpoint-schedule revisions, weight statistics, transfer:
:mod:`trainer.research`) come in as :class:`~trainer.hooks.Extension` objects
(``Trainer(cfg, extensions=[...])``); :mod:`trainer.entry` composes them (``trainer train`` and
:func:`trainer.entry.train`). This module imports none of them.
"""

from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Callable, Optional, Sequence

import jax
import numpy as np

from mc4_sampling.common.console import Interrupted

from . import loop
from .checkpoint import gather_positions
from .compilation import check_memory, compile_steps, step_memory
from .config import TrainerConfig
from .data.batches import StreamPosition
from .data.tokenizer import TokenizerFns, load_tokenizer
from .evaluation import build_eval_set, evaluate
from .hooks import Extension, Hook, StepInfo, check_served
from .initial_state import check_transformers_init, choose_start, init_state, open_checkpoints
from .loop import TrainResult
from .masking import masking_rule
from .preemption import NonFiniteSteps
from .run_setup import (
    accumulation_steps,
    build_spec,
    check_devices,
    claim_output_dir,
    init_distributed,
    open_stream,
    run_meta,
    write_run_files,
)
from .steps import run_keys

log = logging.getLogger(__name__)


class Trainer:
    """``Trainer(cfg).run()``; :meth:`setup` (called by :meth:`run` when needed) makes every check first.

    ``extensions``: features from outside the core loop (:class:`~trainer.hooks.Extension`), in order.
    """

    def __init__(self, cfg: TrainerConfig, on_eval: Optional[Callable[[int, dict], None]] = None,
                 extensions: Sequence[Extension] = ()):
        self.cfg = cfg
        self.on_eval = on_eval  # called with (step, eval metrics) after each evaluation
        self.hooks: list[Hook] = []  # added with add_hook; run after the default hooks
        self.extensions: list[Extension] = list(extensions)
        self._saved_step: Optional[int] = None

    def add_hook(self, fn: Callable[[StepInfo], Any], every: int = 1) -> None:
        """Call ``fn(StepInfo)`` after every ``every``-th step and after the last (:func:`~trainer.hooks.itstime`)."""
        self.hooks.append(Hook(fn, every))

    # -- setup (every check happens here, before the first step) ---------------------------------
    def setup(self) -> None:
        """Every check, then the state; a failed check leaves no folder behind and no Orbax thread running."""
        out = self.cfg.training.output_dir
        created = self.created_output = claim_output_dir(self.cfg)
        self.ckpt = self._init_src = None
        try:
            self._setup()
        except BaseException:
            for manager in (self.ckpt, self._init_src):
                if manager is not None:
                    manager.close()
            if created and os.path.isdir(out):
                shutil.rmtree(out, ignore_errors=True)
            raise

    def _setup(self) -> None:
        cfg = self.cfg
        check_served(cfg, self.extensions)
        init_distributed(cfg)
        self.rank, self.world = jax.process_index(), jax.process_count()
        self.num_devices = jax.device_count()
        self.micro = check_devices(cfg, self.num_devices, self.world)
        self.accum = accumulation_steps(cfg, self.num_devices)
        self.hf_tokenizer = load_tokenizer(cfg.data.tokenizer)
        self.tok = TokenizerFns(self.hf_tokenizer)
        self.spec = build_spec(cfg, self.tok)
        self.keys = run_keys(cfg.training.seed)
        self.imported = check_transformers_init(cfg, self.spec) if cfg.model.init_from_transformers else None

        # Where do we start from: our own latest checkpoint, another run's (phase switch), or scratch.
        # The checkpoint folder is opened here only when it exists: a new one is made after every check.
        if os.path.isdir(cfg.checkpoint_dir):
            self.ckpt = open_checkpoints(cfg, self._preserved_steps())
        self.start = choose_start(cfg, self.spec, self.ckpt)
        self._init_src = self.start.init_source[0] if self.start.init_source is not None else None
        self.resume_step, self.start_position = self.start.resume_step, self.start.position
        self.nonfinite = NonFiniteSteps(cfg.training.on_nonfinite, self.start.skipped_steps)

        self.stream = open_stream(cfg, self.tok, self.rank, self.world, self.start.position)
        self.masking = masking_rule(cfg, self.tok)
        self.eval_set, self.eval_tokens = build_eval_set(cfg, self.stream, self.tok.pad_id, self.masking, self.keys)
        state = init_state(cfg, self.spec, self.keys, self.start, self.ckpt, self.imported, self.extensions)
        self.mesh, self.tx = state.mesh, state.tx
        self.param_sharding, self.opt_sharding = state.param_sharding, state.opt_sharding
        self.params, self.opt_state, self.step = state.params, state.opt_state, state.step
        if self._init_src is not None:
            self._init_src.close()
            self._init_src = None

        steps = compile_steps(cfg, self.spec, self.tx, self.masking, self.keys.step, self.tok.pad_id, self.mesh,
                              self.param_sharding, self.opt_sharding, sep_id=self.tok.eos_id)
        self.train_step, self.eval_step = steps.train_step, steps.eval_step
        self.batch_sharding, self.eval_sharding = steps.batch_sharding, steps.eval_sharding
        L = cfg.data.max_seq_length
        width = L + 1 if cfg.training.objective == "mlm+nsp" else L  # NSP rows: the label in a last column
        self.memory_estimate = step_memory(steps, self.params, self.opt_state, self.accum, self.micro, width)
        check_memory(self.memory_estimate, self.spec, self.micro, self.num_devices, self.accum, L)

        if self.ckpt is None:  # every check passed: now the checkpoint folder may be made
            self.ckpt = open_checkpoints(cfg, self._preserved_steps())
        self._saved_step = self.resume_step
        # token shards: each process reads only its devices' rows (batch_crc32 is then of those rows)
        self.read_rows = self.local_rows() if cfg.data.token_shards and self.world > 1 else None
        if self.rank == 0:
            write_run_files(cfg, self.hf_tokenizer, self.stream)

    def _preserved_steps(self) -> tuple[int, ...]:
        return tuple(sorted({int(s) for ext in self.extensions for s in ext.preserved_steps(self.cfg)}))

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train (or resume) to ``training.max_steps`` (:func:`trainer.loop.run`); :meth:`setup` first if needed."""
        if not hasattr(self, "stream"):
            try:
                self.setup()
            except KeyboardInterrupt as e:
                if isinstance(e, Interrupted):
                    raise
                raise Interrupted(interrupted_in_setup(self.cfg.checkpoint_dir)) from None
        return loop.run(self)

    def off_the_step_clock(self, fn: Callable[[StepInfo], Any]) -> Callable[[StepInfo], Any]:
        """``fn`` with its time excluded from the training-step throughput (still in the ``_wall`` figures):
        for hooks that do other work than training (evaluation, checkpoints, exports)."""
        def hook(info: StepInfo):
            with self.throughput.paused(info.metrics):
                return fn(info)

        hook.__name__ = getattr(fn, "__name__", "hook")
        return hook

    def meta(self) -> dict:
        """The metadata saved with every checkpoint (:func:`trainer.run_setup.run_meta`)."""
        return run_meta(self.cfg, self.spec, self.world, self.num_devices)

    # -- device transfer ------------------------------------------------------------------------
    read_rows: Optional[np.ndarray] = None  # the rows of the global batch this process reads (None: all)

    def _global(self, array: np.ndarray, sharding):
        """The global host ``array`` as a sharded jax.Array: each process copies only its devices' rows."""
        return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])

    def local_rows(self) -> np.ndarray:
        """The rows of the global batch (``[accum, micro, L]`` flattened to ``accum x micro`` rows) that this
        process's devices hold."""
        L = self.cfg.data.max_seq_length
        index = self.batch_sharding.addressable_devices_indices_map((self.accum, self.micro, L))
        held = np.zeros((self.accum, self.micro), bool)
        for idx in index.values():
            held[idx[:2]] = True
        return np.flatnonzero(held.reshape(-1))

    def device_batch(self, tokens: np.ndarray):
        """The global batch ``[global_batch_size, L]`` as ``[accum, micro, L]`` over the mesh; ``tokens`` may
        hold only this process's rows (:meth:`local_rows`, what the token-shard reader reads)."""
        if self.read_rows is not None:
            full = np.empty((self.accum * self.micro, tokens.shape[-1]), tokens.dtype)  # others' rows: never read
            full[self.read_rows] = tokens
            tokens = full
        return self._global(tokens.reshape(self.accum, self.micro, tokens.shape[-1]), self.batch_sharding)

    def evaluate(self) -> dict:
        """Loss, accuracy and masked tokens over the eval set (:func:`trainer.evaluation.evaluate`)."""
        return evaluate(self.eval_step, self.params, self.eval_set, lambda a: self._global(a, self.eval_sharding))

    # -- checkpoints and non-finite steps ---------------------------------------------------------
    @property
    def skipped_steps(self) -> int:
        """Updates dropped by ``training.on_nonfinite=skip``, over the resumed runs too."""
        return self.nonfinite.skipped

    def check_nonfinite(self) -> None:
        """Check the steps not checked yet: stop at a non-finite one, or count it when skipped."""
        self.nonfinite.check(self._saved_step, lambda: self.ckpt.directory)

    def save(self, position: StreamPosition) -> None:
        """Checkpoint the current step: arrays, ``{step, seed}``, every process's stream position, metadata."""
        self.check_nonfinite()  # never save a non-finite state
        positions = gather_positions(position.to_json())
        train = {"step": self.step, "seed": self.cfg.training.seed, "skipped_steps": self.skipped_steps}
        self.ckpt.save(self.step, self.params, self.opt_state, train, positions, self.meta())
        self._saved_step = self.step
        log.info("checkpoint at step %d requested (%s)", self.step, self.ckpt.directory)

    @property
    def saved_step(self) -> Optional[int]:
        """The last step checkpointed by this run (or the step it resumed from); None before any."""
        return self._saved_step

    def ensure_saved(self, position: StreamPosition) -> None:
        """Checkpoint the current step unless it is saved already (e.g. by the regular checkpoint hook)."""
        if self._saved_step != self.step:
            self.save(position)


def interrupted_in_setup(checkpoint_dir: str) -> str:
    """The line for a Ctrl-C before the first step (set-up, data, compilation): nothing new was saved, and what the
    run folder already holds, so the user knows whether the same command starts or resumes."""
    steps = sorted(int(n) for n in os.listdir(checkpoint_dir) if n.isdigit()) if os.path.isdir(checkpoint_dir) else []
    held = (f"its checkpoints in {checkpoint_dir} are untouched (latest: step {steps[-1]}); run the same command "
            "again to resume" if steps else "no checkpoint exists yet; run the same command again to start")
    return f"interrupted before the first step (while setting up): nothing new was saved; {held}"
