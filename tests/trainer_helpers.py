"""Shared helpers of the trainer tests: a synthetic corpus, a tiny tokenizer, tiny configs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_WORDS = ("el la los las un una de del en con por para que y o casa perro gato ciudad río montaña "
          "grande pequeño rojo verde azul come bebe corre vive canta lee escribe hoy mañana siempre "
          "nunca muy bien mal libro mesa agua pan sol luna árbol flor niño niña madre padre").split()


def make_corpus(folder: str, n_docs: int = 400, n_files: int = 2, seed: int = 0,
                text_column: str = "text") -> list[str]:
    """JSON-lines files of short pseudo-Spanish documents with a learnable structure; returns paths."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    paths = [os.path.join(folder, f"part-{i}.jsonl") for i in range(n_files)]
    files = [open(p, "w", encoding="utf-8") for p in paths]
    for d in range(n_docs):
        sentences = []
        for _ in range(int(rng.integers(1, 6))):
            start = int(rng.integers(0, len(_WORDS)))
            words = [_WORDS[(start + 3 * k) % len(_WORDS)] for k in range(int(rng.integers(4, 12)))]
            sentences.append(" ".join(words).capitalize() + ".")
        text = f"Documento {d}. " + " ".join(sentences)
        files[d % n_files].write(json.dumps({text_column: text, "url": f"https://example.org/{d}"}) + "\n")
    for f in files:
        f.close()
    return paths


def make_tokenizer(folder: str, corpus_paths: list[str], vocab_size: int = 400) -> str:
    from trainer.data.tokenizer import train_tokenizer

    texts = []
    for p in corpus_paths:
        with open(p, encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f]
    train_tokenizer(texts, folder, vocab_size=vocab_size, min_frequency=2, model_max_length=64)
    return folder


def tiny_overrides(corpus_paths: list[str], tokenizer: str, output_dir: str, **extra) -> list[str]:
    """``--set`` overrides turning tiny-cpu into a seconds-long run on the synthetic corpus."""
    sets = {
        "data.path": "json", "data.name": None, "data.kwargs": {}, "data.sampling": {}, "data.data_files": corpus_paths,
        "data.tokenizer": tokenizer, "data.max_seq_length": 32, "data.shuffle_buffer": 50,
        "data.tokenize_batch_size": 16, "data.num_eval_samples": 20, "data.eval_fraction": 0.5,
        "data.prefetch_batches": 2,
        "model.hidden_size": 32, "model.num_layers": 2, "model.num_heads": 2, "model.intermediate_size": 64,
        "model.max_position_embeddings": 40, "model.hidden_dropout": 0.1,
        "training.global_batch_size": 8, "training.max_steps": 12, "training.eval_every_steps": 6,
        "training.eval_batch_size": 8, "training.output_dir": output_dir,
        "schedule.warmup_steps": 3, "checkpoint.every_steps": 4, "checkpoint.keep": 3,
        "checkpoint.async_save": False, "logging.every_steps": 1, "logging.progress_bar": False,
    }
    sets.update(extra)
    return [f"{k}={json.dumps(v)}" for k, v in sets.items()]


def run_trainer(args: list[str], env: dict | None = None, timeout: int = 240,
                kill_after_step: int | None = None, signal: str = "KILL") -> subprocess.CompletedProcess:
    """``python -m trainer ARGS`` on CPU; with ``kill_after_step``, a run that sends itself SIG``signal``
    (KILL, TERM or INT) after that step."""
    full_env = {**os.environ, "JAX_PLATFORMS": "cpu", "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    if kill_after_step is None:
        cmd = [sys.executable, "-m", "trainer", *args]
    else:
        script = os.path.join(REPO, "tests", "trainer_with_fault.py")
        cmd = [sys.executable, script, "--kill-after-step", str(kill_after_step), "--signal", signal, *args]
    return subprocess.run(cmd, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout)
