"""The trainer: setup and every check before the first step, then a step loop with periodic hooks.

:meth:`Trainer.run` repeats: next batch, one jitted train step, then the hooks that are due
(:mod:`trainer.hooks`). The default hooks, in order: progress bar, metrics logging (every
``logging.every_steps``), held-out evaluation (``training.eval_every_steps``), checkpoint
(``checkpoint.every_steps``); each also runs after the last step. :meth:`Trainer.add_hook` adds
more, run after those. Features outside the core loop (checkpoint-schedule revisions, weight
statistics, transfer: :mod:`trainer.research`) come in as :class:`~trainer.hooks.Extension` objects
(``Trainer(cfg, extensions=[...])``); :mod:`trainer.entry` composes them (``trainer train`` and
:func:`trainer.entry.train`). This module imports none of them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import signal
import sys
import threading
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import yaml

from mc4_sampling.common.safe_output import check_output_dir, is_ours, mark_as_ours

from . import flops as flops_lib
from .checkpoint import Checkpointer, check_compatible, gather_positions, model_meta, split_checkpoint_path
from .config import TrainerConfig, max_sequence_length
from .data.batches import BatchStream, StreamPosition, TokenizerFns
from .data.holdout import EVAL_MANIFEST
from .data.prefetch import Prefetcher
from .errors import CheckpointError, ConfigError, NonFiniteError, StoppedBySignal
from .hooks import Extension, Hook, StepInfo, check_served, run_hooks
from .masking import default_max_predictions
from .models import family_of
from .monitor import Monitor
from .optim import make_optimizer, schedule_fn
from .param_paths import check_freeze
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


def build_spec(cfg: TrainerConfig, tok: TokenizerFns):
    m = cfg.model
    vocab = m.vocab_size if m.vocab_size is not None else tok.vocab_size
    if tok.vocab_size > vocab:
        raise ConfigError(f"model.vocab_size ({vocab}) is smaller than the tokenizer's vocabulary ({tok.vocab_size})")
    spec = family_of(m).spec_from_config(m, vocab_size=vocab, pad_token_id=tok.pad_id, eos_token_id=tok.eos_id)
    if cfg.data.max_seq_length > max_sequence_length(m, tok.pad_id):
        raise ConfigError(
            f"data.max_seq_length ({cfg.data.max_seq_length}) exceeds the {max_sequence_length(m, tok.pad_id)} "
            f"tokens model.max_position_embeddings={m.max_position_embeddings} allows with pad id {tok.pad_id}"
        )
    return spec


def accumulation_steps(cfg: TrainerConfig, num_devices: int) -> int:
    """Micro-batches per optimizer step: ``training.grad_accum_steps``, or, when
    ``training.per_device_batch_size`` is set, ``global_batch_size / (per_device_batch_size x devices)``."""
    t = cfg.training
    if t.per_device_batch_size is None:
        return t.grad_accum_steps
    per_micro = t.per_device_batch_size * num_devices
    if t.global_batch_size % per_micro:
        raise ConfigError(
            f"training.global_batch_size ({t.global_batch_size}) is not a multiple of "
            f"training.per_device_batch_size ({t.per_device_batch_size}) x {num_devices} devices = {per_micro}; "
            "choose a per-device batch that divides global_batch_size / devices"
        )
    return t.global_batch_size // per_micro


def check_devices(cfg: TrainerConfig, num_devices: int, num_processes: int) -> int:
    """Return the micro-batch size; raise ConfigError when the batch does not split over devices."""
    t = cfg.training
    micro = t.global_batch_size // accumulation_steps(cfg, num_devices)
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


def masking_rule(cfg: TrainerConfig, tok: TokenizerFns) -> MaskingRule:
    """The run's masking: random replacements from the tokenizer's vocabulary (without its specials
    unless ``training.random_replace_excludes_specials`` is false), at most
    ``training.max_predictions_per_seq`` masked positions per row (None: the default bound,
    :func:`~trainer.masking.default_max_predictions`; 0: no cap and the LM head at every position)."""
    t = cfg.training
    cap = t.max_predictions_per_seq
    if cap is None:
        cap = default_max_predictions(cfg.data.max_seq_length, t.mlm_probability)
    exclude = tok.special_ids if t.random_replace_excludes_specials else ()
    return MaskingRule(tok.special_ids, tok.mask_id, tok.vocab_size, t.mlm_probability, t.mask_replace_prob,
                       t.random_replace_prob, random_exclude=tuple(exclude),
                       max_predictions=min(cap, cfg.data.max_seq_length) if cap else None)


def init_distributed(cfg: TrainerConfig) -> None:
    t = cfg.training
    if not t.distributed:
        return
    kwargs = {k: v for k, v in dict(coordinator_address=t.coordinator_address, num_processes=t.num_processes,
                                     process_id=t.process_id).items() if v is not None}
    if not jax.distributed.is_initialized():
        jax.distributed.initialize(**kwargs)


def check_transformers_init(cfg: TrainerConfig, spec):
    """Import ``model.init_from_transformers``; its architecture (the family's ``arch_fields``) must match."""
    family = family_of(spec)
    folder = cfg.model.init_from_transformers
    imported_spec, params = family.hf.import_pretrained(folder, pad_vocab_to_multiple_of=spec.pad_vocab_to_multiple_of)
    diffs = [f"{k}: folder {getattr(imported_spec, k)!r}, config {getattr(spec, k)!r}"
             for k in family.arch_fields() if getattr(imported_spec, k) != getattr(spec, k)]
    if diffs:
        raise ConfigError(f"model.init_from_transformers={folder!r} does not match the model config: "
                          + "; ".join(diffs))
    return params


# ---------------------------------------------------------------------------------------------


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
        check_output_dir(out, "training.output_dir", ours=is_run_folder,  # never write into others' files
                         hint="give another training.output_dir, or empty it")
        created = self._created_output = not os.path.exists(out)
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
            self.ckpt = Checkpointer(cfg.checkpoint_dir, keep=cfg.checkpoint.keep,
                                     async_save=cfg.checkpoint.async_save,
                                     preserve=self._preserved_steps())
        latest = self.ckpt.latest_step() if self.ckpt is not None else None
        self.resume_step = latest if cfg.checkpoint.resume else None
        self.skipped_steps = 0  # updates dropped by training.on_nonfinite=skip (over the resumed runs too)
        if not cfg.checkpoint.resume and latest is not None:
            raise ConfigError(
                f"checkpoint.resume is false but {self.ckpt.directory} already holds steps {self.ckpt.all_steps()}; "
                "use another training.output_dir / checkpoint.directory, or resume"
            )
        self.init_source = None
        if self.resume_step is not None:
            _, meta, self.resume_train, positions = self.ckpt.restore_json(self.resume_step)
            check_compatible(meta["spec"], self.spec, self.ckpt.directory, meta.get("model_type"))
            self.start_position = self._position_for_rank(positions, self.ckpt.directory)
            if self.resume_train.get("seed") != cfg.training.seed:
                raise ConfigError(f"training.seed ({cfg.training.seed}) differs from the run being resumed "
                                  f"({self.resume_train.get('seed')}); exact resume needs the same seed")
            self.skipped_steps = int(self.resume_train.get("skipped_steps", 0))
        elif cfg.checkpoint.init_from:
            directory, step = split_checkpoint_path(cfg.checkpoint.init_from)
            step = cfg.checkpoint.init_step if cfg.checkpoint.init_step is not None else step
            src = self._init_src = Checkpointer(directory, read_only=True, async_save=False)
            step, meta, _, positions = src.restore_json(step)
            check_compatible(meta["spec"], self.spec, directory, meta.get("model_type"))
            self.init_source = (src, step)
            self.start_position = (self._position_for_rank(positions, directory)
                                   if cfg.checkpoint.init_data_position else StreamPosition())
        else:
            self.start_position = StreamPosition()

        audit = os.path.join(cfg.training.output_dir, "audit") if cfg.logging.audit else None
        # one global stream on every process (the same batches for any process count); each process
        # puts only its devices' rows on them (device_batch)
        stream_cls = BatchStream
        if cfg.data.token_shards:
            if cfg.data.eval_files:
                raise ConfigError("data.eval_files cannot be combined with data.token_shards (their eval split "
                                  "was held out when the shards were written); set only one of them")
            from .data.token_shards import TokenShardStream as stream_cls
        # data.eval_files: the eval set comes from those files, nothing is held out of the stream
        stream_data = dataclasses.replace(cfg.data, num_eval_samples=0) if cfg.data.eval_files else cfg.data
        self.stream = stream_cls(stream_data, self.tok, cfg.training.global_batch_size,
                                 cfg.training.seed, self.rank, self.world, audit_dir=audit)
        self.stream.check_source()
        if self.start_position.shuffle_buffer and self.start_position.shuffle_buffer != cfg.data.shuffle_buffer:
            raise ConfigError(
                f"data.shuffle_buffer ({cfg.data.shuffle_buffer}) differs from the checkpoint's "
                f"({self.start_position.shuffle_buffer}); keep it, or set checkpoint.init_data_position=false"
            )
        self._build_eval_set()
        self._build_state()
        if self._init_src is not None:
            self._init_src.close()
            self._init_src = None
        self._compile()
        if self.ckpt is None:  # every check passed: now the checkpoint folder may be made
            self.ckpt = Checkpointer(cfg.checkpoint_dir, keep=cfg.checkpoint.keep,
                                     async_save=cfg.checkpoint.async_save,
                                     preserve=self._preserved_steps())
        if self.rank == 0:
            self._write_run_files()

    def _preserved_steps(self) -> tuple[int, ...]:
        return tuple(sorted({int(s) for ext in self.extensions for s in ext.preserved_steps(self.cfg)}))

    def _position_for_rank(self, positions: list, where: str) -> StreamPosition:
        """The global stream position: every process saved the same one, so any process count resumes it."""
        if any(p != positions[0] for p in positions[1:]):
            raise CheckpointError(f"the checkpoint in {where} holds {len(positions)} different stream positions "
                                  "(per-process streams of an older trainer); set checkpoint.init_data_position="
                                  "false to start the data afresh")
        return StreamPosition.from_json(positions[0])

    def _build_eval_set(self) -> None:
        cfg = self.cfg
        L = cfg.data.max_seq_length
        if cfg.data.eval_files:  # the same on every process
            from .data.eval_files import read_eval_texts

            texts = read_eval_texts(cfg.data.eval_files, cfg.data.text_column)
            seqs = self.stream.eval_sequences(texts, L) if texts else np.zeros((0, L), np.int32)
            num_docs = len(texts)
        else:
            seqs = self.stream.eval_rows(L)  # the same on every process
            num_docs = self.stream.num_eval_documents
        rows = len(seqs)
        eval_batch = cfg.training.eval_batch_size  # global: each process puts its devices' rows on them
        n_batches = -(-rows // eval_batch) if rows else 0
        padded = np.full((n_batches * eval_batch, L), self.tok.pad_id, np.int32)
        padded[: len(seqs)] = seqs
        rule = self._masking_rule()
        with jax.default_device(jax.local_devices(backend="cpu")[0]):
            key = self.keys.eval if cfg.training.eval_seed is None else jax.random.key(cfg.training.eval_seed)
            inputs, labels, weights = jax.jit(rule.apply)(key, jnp.asarray(padded))
        shape = (n_batches, eval_batch, L)
        self.eval_set = [np.asarray(a).reshape(shape) for a in (inputs, labels, weights)]
        self.eval_tokens = int(np.asarray(weights).sum())
        log.info("eval set: %d documents -> %d sequences, %d masked tokens", num_docs, len(seqs), self.eval_tokens)

    def _masking_rule(self) -> MaskingRule:
        return masking_rule(self.cfg, self.tok)

    def _build_state(self) -> None:
        cfg = self.cfg
        self.mesh = make_mesh()
        self.tx = make_optimizer(cfg)
        abstract_params = jax.eval_shape(lambda k: family_of(self.spec).init_params(self.spec, k), self.keys.init)
        check_freeze(abstract_params, cfg.model.freeze)
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
        elif (start := self._extension_params()) is not None:  # e.g. a transfer (trainer.research.transfer)
            self.params = jax.device_put(start, self.param_sharding)
            self.opt_state = init_opt(self.params)
        elif self.imported is not None:
            self.params = jax.device_put(jax.tree.map(lambda a, s: np.asarray(a, s.dtype), self.imported,
                                                      abstract_params), self.param_sharding)
            self.opt_state = init_opt(self.params)
        else:
            init = jax.jit(lambda k: family_of(self.spec).init_params(self.spec, k), out_shardings=self.param_sharding)
            self.params = init(self.keys.init)
            self.opt_state = init_opt(self.params)

    def _extension_params(self):
        """The first extension's starting parameters (:meth:`~trainer.hooks.Extension.initial_params`), or None."""
        fresh = lambda: jax.jit(lambda k: family_of(self.spec).init_params(self.spec, k))(self.keys.init)  # noqa: E731
        for ext in self.extensions:
            start = ext.initial_params(self.spec, fresh)
            if start is not None:
                return start
        return None

    def _compile(self) -> None:
        cfg = self.cfg
        train_step = make_train_step(self.spec, self.tx, schedule_fn(cfg), self._masking_rule(), self.keys.step,
                                     skip_nonfinite=cfg.training.on_nonfinite == "skip")
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
        self.eval_step = jax.jit(make_eval_step(self.spec, self.tok.pad_id, self._masking_rule().max_predictions),
                                 in_shardings=(self.param_sharding, self.eval_sharding, self.eval_sharding,
                                               self.eval_sharding), out_shardings=rep)
        self._check_memory()

    def _check_memory(self) -> None:
        """Compile the train step now (the first step reuses it) and check XLA's memory estimate
        against the device's memory (:mod:`trainer.memory`): a step that cannot fit is a ConfigError."""
        from . import memory

        like = lambda tree: jax.tree.map(  # noqa: E731
            lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), tree)
        L = self.cfg.data.max_seq_length
        # the step goes in as an uncommitted scalar (no sharding), as the loop passes it: same cache key
        args = (like(self.params), like(self.opt_state), jax.ShapeDtypeStruct((), jnp.int32),
                jax.ShapeDtypeStruct((self.accum, self.micro, L), jnp.int32, sharding=self.batch_sharding))
        self.memory_estimate = memory.compiled_bytes(self.train_step.lower(*args).compile())
        device = jax.local_devices()[0]
        source = (f"${memory.LIMIT_ENV}" if os.environ.get(memory.LIMIT_ENV) else
                  "host memory available" if device.platform == "cpu" else "")
        summary = memory.check_fits(self.memory_estimate, memory.device_limit(device),
                                    per_device_batch_size=self.micro // self.num_devices, accum=self.accum,
                                    remat=self.spec.remat, seq_len=L, limit_source=source)
        log.info("train step memory: %s", summary)

    def _write_run_files(self) -> None:
        out = self.cfg.training.output_dir
        os.makedirs(out, exist_ok=True)
        mark_as_ours(out, "trainer train")
        with open(os.path.join(out, "config.yaml"), "w", encoding="utf-8") as f:
            yaml.safe_dump(self.cfg.to_dict(), f, sort_keys=False)
        self.tokenizer_dir = os.path.abspath(os.path.join(out, "tokenizer"))
        self.hf_tokenizer.save_pretrained(self.tokenizer_dir)
        self.stream.write_eval_manifest(os.path.join(out, EVAL_MANIFEST))

    def meta(self) -> dict:
        return {**model_meta(self.spec), "config": self.cfg.to_dict(),
                "tokenizer_dir": os.path.abspath(os.path.join(self.cfg.training.output_dir, "tokenizer")),
                "num_processes": self.world, "num_devices": self.num_devices}

    # -- device transfer ------------------------------------------------------------------------
    _rows: Optional[np.ndarray] = None

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
        if self._rows is not None:
            full = np.empty((self.accum * self.micro, tokens.shape[-1]), tokens.dtype)  # others' rows: never read
            full[self._rows] = tokens
            tokens = full
        return self._global(tokens.reshape(self.accum, self.micro, tokens.shape[-1]), self.batch_sharding)

    # -- evaluation -----------------------------------------------------------------------------
    def evaluate(self) -> dict:
        sums = np.zeros(3, np.float64)
        for inputs, labels, weights in zip(*self.eval_set):
            args = [self._global(a, self.eval_sharding) for a in (inputs, labels, weights)]
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
        predicted = flops_lib.predicted_fraction(self._masking_rule().max_predictions, t.mlm_probability)
        self.throughput = Throughput(t.global_batch_size * L,
                                     lambda tps: flops_lib.mfu(tps, self.spec, L, device_kind, self.num_devices,
                                                               predicted))
        self.monitor = Monitor(cfg, enabled=self.rank == 0, resume_step=self.resume_step)
        self.train_metrics: dict = {}  # the last logged record
        self.eval_history: list = []
        self.bar = None
        if cfg.logging.progress_bar and self.rank == 0:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=t.max_steps, initial=self.step, desc=cfg.name, unit="step", dynamic_ncols=True)
        hooks = self._default_hooks() + self.hooks
        # token shards: each process reads only its devices' rows (batch_crc32 is then of those rows)
        self._rows = self.local_rows() if cfg.data.token_shards and self.world > 1 else None
        source = (self.stream.batches(self.start_position, rows=self._rows) if self._rows is not None
                  else self.stream.batches(self.start_position))
        batches = Prefetcher(source, size=cfg.data.prefetch_batches)
        self._unchecked: list = []  # (step, metrics) whose finiteness is not checked yet
        self._saved_step = self.resume_step
        self._install_signal_handlers()
        try:
            while self.step < t.max_steps:
                batch = self.throughput.next_batch(batches)
                self.params, self.opt_state, metrics = self.train_step(
                    self.params, self.opt_state, jnp.asarray(self.step, jnp.int32), self.device_batch(batch.tokens))
                self.step += 1
                self._check_nonfinite()  # the previous step's, ready by now: the device is not stalled
                self._unchecked.append((self.step, metrics))
                self.throughput.stepped(metrics)
                info = StepInfo(self.step, t.max_steps, self, batch, metrics)
                run_hooks(hooks, info)
                if self.step < t.max_steps and self._should_stop():
                    self._stop_on_signal(info)
            self._check_nonfinite()
        finally:
            self._restore_signal_handlers()
            batches.close()
            if self.bar is not None:
                self.bar.close()
            try:
                self.ckpt.close()  # a failed background save raises CheckpointError here
            finally:
                extension_errors = [e for e in (ext.close() for ext in self.extensions) if e is not None]
                self.monitor.close()
                if sys.exc_info()[0] is not None:
                    self._remove_output_if_nothing_saved()
        if extension_errors:
            raise extension_errors[0]
        return TrainResult(self.step, cfg.training.output_dir, self.ckpt.directory, self.train_metrics,
                           self.eval_history)

    def _remove_output_if_nothing_saved(self) -> None:
        """A run that failed before its first checkpoint leaves no folder it created (nothing to resume)."""
        if not getattr(self, "_created_output", False) or self.rank != 0:
            return
        folder = self.ckpt.directory
        if not any(name.isdigit() for name in (os.listdir(folder) if os.path.isdir(folder) else ())):
            shutil.rmtree(self.cfg.training.output_dir, ignore_errors=True)

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
            hooks.append(Hook(self.off_the_step_clock(self._evaluate), cfg.training.eval_every_steps))
        hooks.append(Hook(self.off_the_step_clock(self._checkpoint), cfg.checkpoint.every_steps))
        for ext in self.extensions:  # e.g. checkpoint.schedule revisions, weight statistics (trainer.research)
            hooks += ext.hooks(self)
        return hooks

    def off_the_step_clock(self, fn: Callable[[StepInfo], Any]) -> Callable[[StepInfo], Any]:
        """``fn`` with its time excluded from the training-step throughput (still in the ``_wall`` figures):
        for hooks that do other work than training (evaluation, checkpoints, exports)."""
        def hook(info: StepInfo):
            with self.throughput.paused(info.metrics):
                return fn(info)

        hook.__name__ = getattr(fn, "__name__", "hook")
        return hook

    def _advance_bar(self, info: StepInfo) -> None:
        self.bar.update(1)

    def _log_metrics(self, info: StepInfo) -> None:
        """The step's metrics, the throughput since the last record, the batch's digest and epoch."""
        self._check_nonfinite()
        m = {k: float(v) for k, v in jax.device_get(info.metrics).items()}
        m["skipped_steps"] = self.skipped_steps
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

    # -- preemption and non-finite steps ----------------------------------------------------------
    def _install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT only set a flag; the loop saves after the current step and stops."""
        self._stop_signal: Optional[int] = None
        self._previous_handlers: dict = {}
        if threading.current_thread() is not threading.main_thread():
            return

        def on_signal(signum, frame):
            if self._stop_signal is not None:  # a second signal: stop at once
                raise KeyboardInterrupt
            self._stop_signal = signum

        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous_handlers[sig] = signal.signal(sig, on_signal)

    def _restore_signal_handlers(self) -> None:
        for sig, handler in self._previous_handlers.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        self._previous_handlers = {}

    def _should_stop(self) -> bool:
        """Whether a signal asks to stop after this step. With several processes they agree (the
        first signal number any of them got) every ``logging.every_steps`` steps, so that all
        save the same step together."""
        if self.world == 1:
            return self._stop_signal is not None
        if self.step % self.cfg.logging.every_steps:
            return False
        from jax.experimental import multihost_utils

        got = np.asarray(multihost_utils.process_allgather(np.asarray([self._stop_signal or 0], np.int32)))
        first = int(got[got > 0][0]) if (got > 0).any() else 0
        if first and self._stop_signal is None:
            self._stop_signal = first
        return first != 0

    def _stop_on_signal(self, info: StepInfo) -> None:
        """Save this step (unless a hook just did) and raise StoppedBySignal; run()'s ``finally`` waits for it."""
        name = signal.Signals(self._stop_signal).name
        log.warning("%s received: saving step %d and stopping", name, self.step)
        self.ensure_saved(info.position)
        raise StoppedBySignal(f"stopped by {name} at step {self.step}; checkpoint saved in {self.ckpt.directory}; "
                              "rerun the same command to resume", 128 + self._stop_signal)

    def _check_nonfinite(self) -> None:
        """Check the steps not checked yet: stop at a non-finite one, or count it when skipped."""
        pending, self._unchecked = self._unchecked, []
        for step, m in pending:
            if float(m["nonfinite"]) == 0.0:
                continue
            loss, grad_norm = float(m["loss"]), float(m["grad_norm"])
            if self.cfg.training.on_nonfinite == "skip":
                self.skipped_steps += 1
                log.warning("step %d: loss %s, gradient norm %s: update skipped", step, loss, grad_norm)
                continue
            kept = (f"the last checkpoint, step {self._saved_step} in {self.ckpt.directory}, is kept"
                    if self._saved_step is not None else "no checkpoint was saved")
            raise NonFiniteError(
                f"step {step}: the loss ({loss}) or the gradient norm ({grad_norm}) is not finite; training stopped "
                f"and {kept}; lower optimizer.learning_rate, or set training.on_nonfinite=skip to drop such updates")

    def save(self, position: StreamPosition) -> None:
        """Checkpoint the current step: arrays, ``{step, seed}``, every process's stream position, metadata."""
        self._check_nonfinite()  # never save a non-finite state
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


def train(cfg: TrainerConfig, on_eval: Optional[Callable[[int, dict], None]] = None,
          extensions: Sequence[Extension] = ()) -> TrainResult:
    """The core loop only: train (or resume) with the given extensions. :func:`trainer.entry.train`
    composes the research features; use it (or ``trainer train``) for a config that sets them."""
    return Trainer(cfg, on_eval=on_eval, extensions=extensions).run()

def is_run_folder(path: str) -> bool:
    """A folder this trainer wrote: its marker, or the files of a run (from before the marker)."""
    return is_ours(path) or os.path.isfile(os.path.join(path, "config.yaml")) or os.path.isdir(
        os.path.join(path, "checkpoints"))


