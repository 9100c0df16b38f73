"""Run set-up: the output folder policy, the distributed start, the device and batch checks, the model
spec, the data source and the run files.

:class:`trainer.train.Trainer` calls these before its first step: :func:`claim_output_dir` (a folder
holding files this trainer did not write is refused), :func:`init_distributed`, :func:`check_devices`
(with :func:`accumulation_steps`), :func:`build_spec`, :func:`open_stream` (the streaming source or
token shards, with their checks) and, once every check has passed, :func:`write_run_files` (first
process only). A run that fails before its first checkpoint leaves no folder it created
(:func:`remove_unsaved_output`).
"""

from __future__ import annotations

import dataclasses
import os
import shutil

import jax
import yaml

from mc4_sampling.common.outputs import check_output_dir, is_ours, mark_as_ours

from .checkpoint import model_meta
from .config import TrainerConfig, max_sequence_length
from .data.batches import BatchStream, StreamPosition
from .data.holdout import EVAL_MANIFEST
from .data.tokenizer import TokenizerFns
from .errors import ConfigError
from .models import family_of


def is_run_folder(path: str) -> bool:
    """A folder this trainer wrote: its marker, or the files of a run (from before the marker)."""
    return is_ours(path) or os.path.isfile(os.path.join(path, "config.yaml")) or os.path.isdir(
        os.path.join(path, "checkpoints"))


def claim_output_dir(cfg: TrainerConfig) -> bool:
    """Refuse a ``training.output_dir`` holding others' files; whether the folder is still to be made."""
    out = cfg.training.output_dir
    check_output_dir(out, "training.output_dir", ours=is_run_folder,  # never write into others' files
                     hint="give another training.output_dir, or empty it")
    return not os.path.exists(out)


def remove_unsaved_output(output_dir: str, checkpoint_dir: str) -> None:
    """Remove ``output_dir`` (which this run created) unless ``checkpoint_dir`` holds a step: nothing to resume."""
    folder = checkpoint_dir
    if not any(name.isdigit() for name in (os.listdir(folder) if os.path.isdir(folder) else ())):
        shutil.rmtree(output_dir, ignore_errors=True)


def init_distributed(cfg: TrainerConfig) -> None:
    """``jax.distributed.initialize`` with the ``training`` coordinator settings, when ``training.distributed``."""
    t = cfg.training
    if not t.distributed:
        return
    kwargs = {k: v for k, v in dict(coordinator_address=t.coordinator_address, num_processes=t.num_processes,
                                     process_id=t.process_id).items() if v is not None}
    if not jax.distributed.is_initialized():
        jax.distributed.initialize(**kwargs)


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


def build_spec(cfg: TrainerConfig, tok: TokenizerFns):
    """The model spec of ``cfg.model`` for the tokenizer (its vocabulary and pad/eos ids), checked against it."""
    m = cfg.model
    vocab = m.vocab_size if m.vocab_size is not None else tok.vocab_size
    if tok.vocab_size > vocab:
        raise ConfigError(f"model.vocab_size ({vocab}) is smaller than the tokenizer's vocabulary ({tok.vocab_size})")
    family = family_of(m)
    if family.wordpiece is not None and family.wordpiece != tok.is_wordpiece:
        got = "a WordPiece" if tok.is_wordpiece else f"a {tok.model_name}"
        want = "a WordPiece one ([CLS] [SEP] [MASK]; `trainer tokenizer --type wordpiece`)" if family.wordpiece else \
            "a byte-level BPE or SentencePiece one (`trainer tokenizer --type bpe`)"
        raise ConfigError(f"data.tokenizer={cfg.data.tokenizer!r} is {got} tokenizer; model.type "
                          f"{m.type!r} ({family.title}) is trained with {want}")
    spec = family.spec_from_config(m, vocab_size=vocab, pad_token_id=tok.pad_id, eos_token_id=tok.eos_id)
    if cfg.data.max_seq_length > max_sequence_length(m, tok.pad_id):
        raise ConfigError(
            f"data.max_seq_length ({cfg.data.max_seq_length}) exceeds the {max_sequence_length(m, tok.pad_id)} "
            f"tokens model.max_position_embeddings={m.max_position_embeddings} allows with pad id {tok.pad_id}"
        )
    return spec


def open_stream(cfg: TrainerConfig, tok: TokenizerFns, rank: int, world: int, start: StreamPosition):
    """The run's batch source, checked: the streaming :class:`~trainer.data.batches.BatchStream`, or
    :class:`~trainer.data.token_shards.TokenShardStream` with ``data.token_shards``.

    One global stream on every process (the same batches for any process count); each process puts
    only its devices' rows on them (:meth:`trainer.train.Trainer.device_batch`). With ``data.eval_files``
    the eval set comes from those files, and nothing is held out of the stream.
    """
    audit = os.path.join(cfg.training.output_dir, "audit") if cfg.logging.audit else None
    stream_cls = BatchStream
    if cfg.data.token_shards:
        if cfg.data.eval_files:
            raise ConfigError("data.eval_files cannot be combined with data.token_shards (their eval split "
                              "was held out when the shards were written); set only one of them")
        from .data.token_shards import TokenShardStream as stream_cls
    stream_data = dataclasses.replace(cfg.data, num_eval_samples=0) if cfg.data.eval_files else cfg.data
    nsp = {"nsp": True} if cfg.training.objective == "mlm+nsp" else {}  # (refused with token shards)
    stream = stream_cls(stream_data, tok, cfg.training.global_batch_size, cfg.training.seed, rank, world,
                        audit_dir=audit, **nsp)
    stream.check_source()
    if start.shuffle_buffer and start.shuffle_buffer != cfg.data.shuffle_buffer:
        raise ConfigError(
            f"data.shuffle_buffer ({cfg.data.shuffle_buffer}) differs from the checkpoint's "
            f"({start.shuffle_buffer}); keep it, or set checkpoint.init_data_position=false"
        )
    return stream


def tokenizer_dir(cfg: TrainerConfig) -> str:
    """Where the run keeps a copy of its tokenizer (``OUTPUT_DIR/tokenizer``, absolute)."""
    return os.path.abspath(os.path.join(cfg.training.output_dir, "tokenizer"))


def write_run_files(cfg: TrainerConfig, hf_tokenizer, stream) -> None:
    """The run folder's marker, ``config.yaml``, ``tokenizer/`` and the eval manifest."""
    out = cfg.training.output_dir
    os.makedirs(out, exist_ok=True)
    mark_as_ours(out, "trainer train")
    with open(os.path.join(out, "config.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
    hf_tokenizer.save_pretrained(tokenizer_dir(cfg))
    stream.write_eval_manifest(os.path.join(out, EVAL_MANIFEST))


def run_meta(cfg: TrainerConfig, spec, num_processes: int, num_devices: int) -> dict:
    """The metadata saved with every checkpoint: the model's, the config, the tokenizer copy, the topology."""
    return {**model_meta(spec), "config": cfg.to_dict(), "tokenizer_dir": tokenizer_dir(cfg),
            "num_processes": num_processes, "num_devices": num_devices}
