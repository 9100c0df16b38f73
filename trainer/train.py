"""The trainer: setup and every check before the first step, then a step loop with periodic hooks.

:meth:`Trainer.run` repeats: next batch, one jitted train step, then the hooks that are due
(:mod:`trainer.hooks`). The default hooks, in order: progress bar, metrics logging (every
``logging.every_steps``), held-out evaluation (``training.eval_every_steps``), checkpoint
(``checkpoint.every_steps``); each also runs after the last step. :meth:`Trainer.add_hook` adds
more, run after those.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from . import flops as flops_lib
from .batches import BatchStream, StreamPosition, TokenizerFns
from .checkpoint import Checkpointer, check_compatible, gather_positions, spec_to_meta, split_checkpoint_path
from .config import TrainerConfig, max_sequence_length
from .errors import CheckpointError, ConfigError
from .hooks import Hook, StepInfo, run_hooks
from .model import ARCH_FIELDS, RobertaSpec, init_params
from .monitor import Monitor
from .optim import make_optimizer, schedule_fn
from .prefetch import Prefetcher
from .sharding import batch_sharding, make_mesh, replicated, state_shardings
from .steps import MaskingRule, make_eval_step, make_train_step, run_keys
from .throughput import Throughput

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainResult:
    step: int
    output_dir: str
    checkpoint_dir: str
    train_metrics: dict
    eval_history: list


# ---------------------------------------------------------------------------------------------
# setup helpers


def load_tokenizer(path: Optional[str]):
    if not path:
        raise ConfigError("data.tokenizer is not set: train one with `python -m trainer tokenizer` "
                          "and pass --set data.tokenizer=FOLDER")
    if not os.path.isdir(path):
        raise ConfigError(f"data.tokenizer: no tokenizer folder at {path!r}")
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as e:
        raise ConfigError(f"data.tokenizer: cannot load a tokenizer from {path!r}: {e}") from None
    if not getattr(tok, "is_fast", False):
        raise ConfigError(f"data.tokenizer: {path!r} is not a fast tokenizer (tokenizer.json needed)")
    return tok


def build_spec(cfg: TrainerConfig, tok: TokenizerFns) -> RobertaSpec:
    m = cfg.model
    vocab = m.vocab_size if m.vocab_size is not None else tok.vocab_size
    if tok.vocab_size > vocab:
        raise ConfigError(f"model.vocab_size ({vocab}) is smaller than the tokenizer's vocabulary ({tok.vocab_size})")
    spec = RobertaSpec.from_config(m, vocab_size=vocab, pad_token_id=tok.pad_id)
    if cfg.data.max_seq_length > max_sequence_length(m, tok.pad_id):
        raise ConfigError(
            f"data.max_seq_length ({cfg.data.max_seq_length}) exceeds the {max_sequence_length(m, tok.pad_id)} "
            f"tokens model.max_position_embeddings={m.max_position_embeddings} allows with pad id {tok.pad_id}"
        )
    return spec


def check_devices(cfg: TrainerConfig, num_devices: int, num_processes: int) -> int:
    """Return the micro-batch size; raise ConfigError when the batch does not split over devices."""
    t = cfg.training
    micro = t.global_batch_size // t.grad_accum_steps
    if micro % num_devices:
        raise ConfigError(
            f"training.global_batch_size / training.grad_accum_steps = {micro} sequences per micro-batch "
            f"is not divisible by the {num_devices} devices; use a multiple of {num_devices}"
        )
    if t.global_batch_size % num_processes or micro % num_processes:
        raise ConfigError(f"training.global_batch_size must be divisible by the {num_processes} processes")
    if t.eval_batch_size % num_devices:
        raise ConfigError(
            f"training.eval_batch_size ({t.eval_batch_size}) is not divisible by the {num_devices} devices"
        )
    return micro


def init_distributed(cfg: TrainerConfig) -> None:
    t = cfg.training
    if not t.distributed:
        return
    kwargs = {k: v for k, v in dict(coordinator_address=t.coordinator_address, num_processes=t.num_processes,
                                     process_id=t.process_id).items() if v is not None}
    if not jax.distributed.is_initialized():
        jax.distributed.initialize(**kwargs)


def check_transformers_init(cfg: TrainerConfig, spec: RobertaSpec):
    """Import ``model.init_from_transformers``; its architecture (:data:`ARCH_FIELDS`) must match the config."""
    from .convert import import_pretrained

    folder = cfg.model.init_from_transformers
    imported_spec, params = import_pretrained(folder)
    diffs = [f"{k}: folder {getattr(imported_spec, k)!r}, config {getattr(spec, k)!r}"
             for k in ARCH_FIELDS if getattr(imported_spec, k) != getattr(spec, k)]
    if diffs:
        raise ConfigError(f"model.init_from_transformers={folder!r} does not match the model config: "
                          + "; ".join(diffs))
    return params


# ---------------------------------------------------------------------------------------------


class Trainer:
    """``Trainer(cfg).run()``; :meth:`setup` (called by :meth:`run` when needed) makes every check first."""

    def __init__(self, cfg: TrainerConfig, on_eval: Optional[Callable[[int, dict], None]] = None):
        self.cfg = cfg
        self.on_eval = on_eval  # called with (step, eval metrics) after each evaluation
        self.hooks: list[Hook] = []  # added with add_hook; run after the default hooks

    def add_hook(self, fn: Callable[[StepInfo], Any], every: int = 1) -> None:
        """Call ``fn(StepInfo)`` after every ``every``-th step and after the last (:func:`~trainer.hooks.itstime`)."""
        self.hooks.append(Hook(fn, every))

    # -- setup (every check happens here, before the first step) ---------------------------------
    def setup(self) -> None:
        cfg = self.cfg
        init_distributed(cfg)
        self.rank, self.world = jax.process_index(), jax.process_count()
        self.num_devices = jax.device_count()
        self.micro = check_devices(cfg, self.num_devices, self.world)
        self.hf_tokenizer = load_tokenizer(cfg.data.tokenizer)
        self.tok = TokenizerFns(self.hf_tokenizer)
        self.spec = build_spec(cfg, self.tok)
        self.keys = run_keys(cfg.training.seed)
        self.imported = check_transformers_init(cfg, self.spec) if cfg.model.init_from_transformers else None

        # Where do we start from: our own latest checkpoint, another run's (phase switch), or scratch.
        self.ckpt = Checkpointer(cfg.checkpoint_dir, keep=cfg.checkpoint.keep, async_save=cfg.checkpoint.async_save)
        self.resume_step = self.ckpt.latest_step() if cfg.checkpoint.resume else None
        if not cfg.checkpoint.resume and self.ckpt.latest_step() is not None:
            raise ConfigError(
                f"checkpoint.resume is false but {self.ckpt.directory} already holds steps {self.ckpt.all_steps()}; "
                "use another training.output_dir / checkpoint.directory, or resume"
            )
        self.init_source = None
        if self.resume_step is not None:
            _, meta, self.resume_train, positions = self.ckpt.restore_json(self.resume_step)
            check_compatible(meta["spec"], self.spec, self.ckpt.directory)
            self.start_position = self._position_for_rank(positions, self.ckpt.directory)
            if self.resume_train.get("seed") != cfg.training.seed:
                raise ConfigError(f"training.seed ({cfg.training.seed}) differs from the run being resumed "
                                  f"({self.resume_train.get('seed')}); exact resume needs the same seed")
        elif cfg.checkpoint.init_from:
            directory, step = split_checkpoint_path(cfg.checkpoint.init_from)
            step = cfg.checkpoint.init_step if cfg.checkpoint.init_step is not None else step
            src = Checkpointer(directory, read_only=True, async_save=False)
            step, meta, _, positions = src.restore_json(step)
            check_compatible(meta["spec"], self.spec, directory)
            self.init_source = (src, step)
            self.start_position = (self._position_for_rank(positions, directory)
                                   if cfg.checkpoint.init_data_position else StreamPosition())
        else:
            self.start_position = StreamPosition()

        audit = os.path.join(cfg.training.output_dir, "audit") if cfg.logging.audit else None
        self.stream = BatchStream(cfg.data, self.tok, cfg.training.global_batch_size // self.world,
                                  cfg.training.seed, self.rank, self.world, audit_dir=audit)
        self.stream.check_source()
        if self.start_position.shuffle_buffer and self.start_position.shuffle_buffer != cfg.data.shuffle_buffer:
            raise ConfigError(
                f"data.shuffle_buffer ({cfg.data.shuffle_buffer}) differs from the checkpoint's "
                f"({self.start_position.shuffle_buffer}); keep it, or set checkpoint.init_data_position=false"
            )
        self._build_eval_set()
        self._build_state()
        self._compile()
        if self.rank == 0:
            self._write_run_files()

    def _position_for_rank(self, positions: list, where: str) -> StreamPosition:
        if len(positions) != self.world:
            raise CheckpointError(f"the checkpoint in {where} was written by {len(positions)} processes, "
                                  f"this run has {self.world}; the stream position cannot be split again")
        return StreamPosition.from_json(positions[self.rank])

    def _build_eval_set(self) -> None:
        cfg = self.cfg
        texts = self.stream.eval_texts()
        L = cfg.data.max_seq_length
        seqs = self.stream.eval_sequences(texts, L) if texts else np.zeros((0, L), np.int32)
        rows = len(seqs)
        if self.world > 1:
            from jax.experimental import multihost_utils

            rows = int(np.max(multihost_utils.process_allgather(np.asarray([rows]))))
        local_eval_batch = cfg.training.eval_batch_size // self.world
        n_batches = -(-rows // local_eval_batch) if rows else 0
        padded = np.full((n_batches * local_eval_batch, L), self.tok.pad_id, np.int32)
        padded[: len(seqs)] = seqs
        rule = self._masking_rule()
        with jax.default_device(jax.local_devices(backend="cpu")[0]):
            inputs, labels, weights = jax.jit(rule.apply)(self.keys.eval, jnp.asarray(padded))
        shape = (n_batches, local_eval_batch, L)
        self.eval_set = [np.asarray(a).reshape(shape) for a in (inputs, labels, weights)]
        self.eval_tokens = int(np.asarray(weights).sum())
        log.info("eval set: %d documents -> %d sequences, %d masked tokens", len(texts), len(seqs), self.eval_tokens)

    def _masking_rule(self) -> MaskingRule:
        t = self.cfg.training
        return MaskingRule(self.tok.special_ids, self.tok.mask_id, self.spec.vocab_size, t.mlm_probability,
                           t.mask_replace_prob, t.random_replace_prob)

    def _build_state(self) -> None:
        cfg = self.cfg
        self.mesh = make_mesh()
        self.tx = make_optimizer(cfg)
        abstract_params = jax.eval_shape(lambda k: init_params(self.spec, k), self.keys.init)
        self.param_sharding = state_shardings(abstract_params, self.mesh, cfg.training.fsdp)
        abstract_opt = jax.eval_shape(self.tx.init, abstract_params)
        self.opt_sharding = state_shardings(abstract_opt, self.mesh, cfg.training.fsdp)
        with_sharding = lambda tree, sh: jax.tree.map(  # noqa: E731
            lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), tree, sh)
        init_opt = jax.jit(self.tx.init, out_shardings=self.opt_sharding)
        self.step = 0
        if self.resume_step is not None:
            self.params, self.opt_state = self.ckpt.restore_arrays(
                self.resume_step, with_sharding(abstract_params, self.param_sharding),
                with_sharding(abstract_opt, self.opt_sharding))
            self.step = int(self.resume_train["step"])
            log.info("resumed from %s at step %d", self.ckpt.directory, self.step)
        elif self.init_source is not None:
            src, step = self.init_source
            keep = cfg.checkpoint.init_optimizer == "keep"
            self.params, opt = src.restore_arrays(step, with_sharding(abstract_params, self.param_sharding),
                                                  with_sharding(abstract_opt, self.opt_sharding) if keep else None)
            self.opt_state = opt if keep else init_opt(self.params)
            log.info("phase switch: params from %s step %d, %s optimizer state", src.directory, step,
                     "kept" if keep else "fresh")
        elif self.imported is not None:
            self.params = jax.device_put(jax.tree.map(lambda a, s: np.asarray(a, s.dtype), self.imported,
                                                      abstract_params), self.param_sharding)
            self.opt_state = init_opt(self.params)
        else:
            init = jax.jit(lambda k: init_params(self.spec, k), out_shardings=self.param_sharding)
            self.params = init(self.keys.init)
            self.opt_state = init_opt(self.params)

    def _compile(self) -> None:
        cfg = self.cfg
        train_step = make_train_step(self.spec, self.tx, schedule_fn(cfg), self._masking_rule(), self.keys.step)
        self.batch_sharding = batch_sharding(self.mesh)
        rep = replicated(self.mesh)
        self.train_step = jax.jit(
            train_step,
            in_shardings=(self.param_sharding, self.opt_sharding, rep, self.batch_sharding),
            out_shardings=(self.param_sharding, self.opt_sharding, rep),
            donate_argnums=(0, 1),
        )
        from jax.sharding import NamedSharding, PartitionSpec as P

        self.eval_sharding = NamedSharding(self.mesh, P("data"))
        self.eval_step = jax.jit(make_eval_step(self.spec, self.tok.pad_id),
                                 in_shardings=(self.param_sharding, self.eval_sharding, self.eval_sharding,
                                               self.eval_sharding), out_shardings=rep)

    def _write_run_files(self) -> None:
        out = self.cfg.training.output_dir
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "config.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(self.cfg.to_dict(), f, sort_keys=False)
        self.tokenizer_dir = os.path.abspath(os.path.join(out, "tokenizer"))
        self.hf_tokenizer.save_pretrained(self.tokenizer_dir)

    def meta(self) -> dict:
        return {"spec": spec_to_meta(self.spec), "config": self.cfg.to_dict(),
                "tokenizer_dir": os.path.abspath(os.path.join(self.cfg.training.output_dir, "tokenizer")),
                "num_processes": self.world, "num_devices": self.num_devices}

    # -- device transfer ------------------------------------------------------------------------
    def _global(self, local: np.ndarray, sharding, global_shape):
        return jax.make_array_from_process_local_data(sharding, local, global_shape)

    def device_batch(self, tokens: np.ndarray):
        t = self.cfg.training
        local = tokens.reshape(t.grad_accum_steps, -1, tokens.shape[-1])
        return self._global(local, self.batch_sharding, (t.grad_accum_steps, self.micro, tokens.shape[-1]))

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self) -> dict:
        sums = np.zeros(3, np.float64)
        t = self.cfg.training
        L = self.cfg.data.max_seq_length
        for inputs, labels, weights in zip(*self.eval_set):
            args = [self._global(a, self.eval_sharding, (t.eval_batch_size, L)) for a in (inputs, labels, weights)]
            sums += np.asarray(self.eval_step(self.params, *args), np.float64)
        count = max(sums[1], 1.0)
        return {"loss": float(sums[0] / count), "accuracy": float(sums[2] / count), "masked_tokens": int(sums[1])}

    # -- loop -----------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        if not hasattr(self, "stream"):
            self.setup()
        cfg, t = self.cfg, self.cfg.training
        L = cfg.data.max_seq_length
        device_kind = jax.devices()[0].device_kind
        self.throughput = Throughput(t.global_batch_size * L,
                                     lambda tps: flops_lib.mfu(tps, self.spec, L, device_kind, self.num_devices))
        self.monitor = Monitor(cfg, enabled=self.rank == 0)
        self.train_metrics: dict = {}  # the last logged record
        self.eval_history: list = []
        self.bar = None
        if cfg.logging.progress_bar and self.rank == 0:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=t.max_steps, initial=self.step, desc=cfg.name, unit="step", dynamic_ncols=True)
        hooks = self._default_hooks() + self.hooks
        batches = Prefetcher(self.stream.batches(self.start_position), size=cfg.data.prefetch_batches)
        try:
            while self.step < t.max_steps:
                batch = self.throughput.next_batch(batches)
                self.params, self.opt_state, metrics = self.train_step(
                    self.params, self.opt_state, jnp.asarray(self.step, jnp.int32), self.device_batch(batch.tokens))
                self.step += 1
                self.throughput.stepped(metrics)
                run_hooks(hooks, StepInfo(self.step, t.max_steps, self, batch, metrics))
        finally:
            batches.close()
            if self.bar is not None:
                self.bar.close()
            self.ckpt.close()
            self.monitor.close()
        return TrainResult(self.step, cfg.training.output_dir, self.ckpt.directory, self.train_metrics,
                           self.eval_history)

    # -- default hooks ----------------------------------------------------------------------------
    def _default_hooks(self) -> list[Hook]:
        cfg = self.cfg
        hooks = []
        if self.bar is not None:
            hooks.append(Hook(self._advance_bar, 1))
        hooks.append(Hook(self._log_metrics, cfg.logging.every_steps))
        if self.bar is not None:
            hooks.append(Hook(self._show_metrics_on_bar, cfg.logging.every_steps))
        if self.eval_tokens:
            hooks.append(Hook(self._evaluate, cfg.training.eval_every_steps))
        hooks.append(Hook(self._checkpoint, cfg.checkpoint.every_steps))
        return hooks

    def _advance_bar(self, info: StepInfo) -> None:
        self.bar.update(1)

    def _log_metrics(self, info: StepInfo) -> None:
        """The step's metrics, the throughput since the last record, the batch's digest and epoch."""
        m = {k: float(v) for k, v in jax.device_get(info.metrics).items()}
        m.update(self.throughput.read())
        m["batch_crc32"] = info.batch.digest
        m["epoch"] = info.position.epoch
        self.train_metrics = m
        self.monitor.write(info.step, m, "train")

    def _show_metrics_on_bar(self, info: StepInfo) -> None:
        m = self.train_metrics
        self.bar.set_postfix(loss=f"{m['loss']:.3f}", tok_s=f"{m.get('tokens_per_second', 0):.0f}")

    def _evaluate(self, info: StepInfo) -> None:
        ev = self.evaluate()
        self.eval_history.append({"step": info.step, **ev})
        self.monitor.write(info.step, ev, "eval")
        log.info("step %d: eval loss %.4f, masked accuracy %.4f", info.step, ev["loss"], ev["accuracy"])
        if self.on_eval is not None:
            self.on_eval(info.step, ev)

    def _checkpoint(self, info: StepInfo) -> None:
        self.save(info.position)

    def save(self, position: StreamPosition) -> None:
        """Checkpoint the current step: arrays, ``{step, seed}``, every process's stream position, metadata."""
        positions = gather_positions(position.to_json())
        train = {"step": self.step, "seed": self.cfg.training.seed}
        self.ckpt.save(self.step, self.params, self.opt_state, train, positions, self.meta())
        log.info("checkpoint at step %d requested (%s)", self.step, self.ckpt.directory)


def train(cfg: TrainerConfig, on_eval: Optional[Callable[[int, dict], None]] = None) -> TrainResult:
    """Train (or resume) as configured; returns the final step, metrics and eval history."""
    return Trainer(cfg, on_eval=on_eval).run()
