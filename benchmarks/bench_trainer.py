#!/usr/bin/env python
"""Trainer throughput: training tokens/s and MFU, and the input pipeline's tokens/s per core.

    python benchmarks/bench_trainer.py                      # tiny-cpu on CPU (what `make bench` runs)
    python benchmarks/bench_trainer.py --config roberta-base-128 --set training.global_batch_size=256

* Training: the jitted train step on random token batches (no data loading), after ``--warmup``
  compiled steps, timed over ``--steps`` steps. FLOPs per token = 6 x matmul parameters +
  12 x layers x length x hidden (:mod:`trainer.flops`); MFU = achieved / (devices x peak bf16).
  CPUs have no entry in the peak table: MFU is reported as n/a with the achieved GFLOP/s.
* Input pipeline: documents -> batched tokenisation -> packing -> batches, on one core
  (``TOKENIZERS_PARALLELISM=false``), in two variants: from texts already in memory (tokeniser
  and packer only) and from the configured stream (the mc4-sampling builder scores perplexity
  too). The ratio to the training consumption says whether one host keeps the device busy.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")


def bench_training(cfg, tok, steps: int, warmup: int) -> dict:
    import jax
    import jax.numpy as jnp

    from trainer import flops as F
    from trainer.model import init_params
    from trainer.optim import make_optimizer, schedule_fn
    from trainer.sharding import batch_sharding, make_mesh, replicated, state_shardings
    from trainer.steps import MaskingRule, make_train_step, run_keys
    from trainer.train import build_spec, check_devices

    spec = build_spec(cfg, tok)
    n_dev = jax.device_count()
    micro = check_devices(cfg, n_dev, 1)
    t, L = cfg.training, cfg.data.max_seq_length
    mesh = make_mesh()
    tx = make_optimizer(cfg)
    keys = run_keys(t.seed)
    abstract = jax.eval_shape(lambda k: init_params(spec, k), keys.init)
    psh = state_shardings(abstract, mesh, t.fsdp)
    params = jax.jit(lambda k: init_params(spec, k), out_shardings=psh)(keys.init)
    osh = state_shardings(jax.eval_shape(tx.init, abstract), mesh, t.fsdp)
    opt = jax.jit(tx.init, out_shardings=osh)(params)
    rule = MaskingRule(tok.special_ids, tok.mask_id, spec.vocab_size, t.mlm_probability, t.mask_replace_prob,
                       t.random_replace_prob)
    step_fn = jax.jit(make_train_step(spec, tx, schedule_fn(cfg), rule, keys.step),
                      in_shardings=(psh, osh, replicated(mesh), batch_sharding(mesh)),
                      out_shardings=(psh, osh, replicated(mesh)), donate_argnums=(0, 1))
    batch = jax.device_put(jax.random.randint(jax.random.key(1), (t.grad_accum_steps, micro, L), 5, spec.vocab_size,
                                              dtype=jnp.int32), batch_sharding(mesh))
    t0 = time.perf_counter()
    for i in range(warmup):
        params, opt, m = step_fn(params, opt, jnp.int32(i), batch)
    jax.block_until_ready(m)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(steps):
        params, opt, m = step_fn(params, opt, jnp.int32(warmup + i), batch)
    jax.block_until_ready(m)
    dt = time.perf_counter() - t0
    tps = steps * t.global_batch_size * L / dt
    kind = jax.devices()[0].device_kind
    fpt = F.flops_per_token(spec, L)
    return {"device": f"{n_dev} x {kind} ({jax.default_backend()})", "step_s": dt / steps, "tokens_per_s": tps,
            "flops_per_token": fpt, "achieved_tflops": tps * fpt / 1e12, "mfu": F.mfu(tps, spec, L, kind, n_dev),
            "warmup_s": compile_s, "attention": spec.attention_impl, "dtype": spec.dtype}


def bench_pipeline(cfg, tok, texts, seconds: float) -> dict:
    """Tokens/s of BatchStream on one core: from in-memory texts, and from the configured stream."""
    from trainer.batches import BatchStream

    class Memory:  # a minimal IterableDataset stand-in over in-memory texts, cycled
        def __init__(self, texts):
            self.texts = texts

        def __iter__(self):
            return ({"text": x} for x in itertools.cycle(self.texts))

        def state_dict(self):
            return None

        @property
        def column_names(self):
            return ["text"]

    out = {}
    for name, opener in [("in-memory texts", lambda *a: Memory(texts)), ("configured stream", None)]:
        kw = {"open_fn": opener} if opener else {}
        cfg.data.text_column = "text"
        stream = BatchStream(cfg.data, tok, cfg.training.global_batch_size, cfg.training.seed, **kw)
        stream.num_eval = 0
        it = stream.batches()
        next(it)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            try:
                b = next(it)
            except Exception as e:  # e.g. a stream shorter than one epoch of batches
                out[name] = f"failed: {e}"
                break
            n += b.tokens.size
        else:
            out[name] = n / (time.perf_counter() - t0)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="tiny-cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--pipeline-seconds", type=float, default=8.0)
    p.add_argument("--skip-pipeline", action="store_true")
    args = p.parse_args(argv)

    import logging

    from trainer.batches import TokenizerFns
    from trainer.config_loading import load_config
    from trainer.console import configure_logging
    from trainer.tokenizer import stream_texts, train_tokenizer

    configure_logging(logging.WARNING)
    cfg = load_config(args.config, args.set)
    t0 = time.perf_counter()
    texts = list(stream_texts(cfg, num_docs=2000))
    read_s = time.perf_counter() - t0
    if cfg.data.tokenizer and os.path.isdir(cfg.data.tokenizer):
        from transformers import AutoTokenizer

        hf_tok = AutoTokenizer.from_pretrained(cfg.data.tokenizer)
    else:  # a tokenizer of the config's vocabulary size trained on the stream
        vocab = cfg.model.vocab_size or 4000
        hf_tok = train_tokenizer(texts, tempfile.mkdtemp(prefix="bench-tok-"), vocab_size=vocab)
    tok = TokenizerFns(hf_tok)

    print(f"== trainer benchmark: config {args.config} ({cfg.model.num_layers} layers x {cfg.model.hidden_size}, "
          f"vocab {tok.vocab_size}, length {cfg.data.max_seq_length}, batch {cfg.training.global_batch_size}, "
          f"{cfg.model.dtype})")
    tr = bench_training(cfg, tok, args.steps, args.warmup)
    mfu = f"{100 * tr['mfu']:.1f} %" if tr["mfu"] is not None else (
        "n/a (no peak FLOP/s for this device kind; CPUs have no meaningful bf16 peak)")
    print(f"training on {tr['device']}, attention {tr['attention']}:")
    print(f"  {tr['tokens_per_s']:,.0f} tokens/s  ({tr['step_s'] * 1e3:.1f} ms/step, "
          f"compile+warm-up {tr['warmup_s']:.1f} s)")
    print(f"  {tr['flops_per_token'] / 1e6:.1f} MFLOP/token -> {tr['achieved_tflops'] * 1e3:.1f} GFLOP/s achieved; "
          f"MFU {mfu}")
    if not args.skip_pipeline:
        print(f"input pipeline on one core ({len(texts)} documents read from the stream in {read_s:.1f} s = "
              f"{len(texts) / read_s:,.0f} docs/s incl. sampling):")
        pipe = bench_pipeline(cfg, hf_tok, texts, args.pipeline_seconds)
        for name, v in pipe.items():
            if isinstance(v, str):
                print(f"  {name}: {v}")
            else:
                print(f"  {name}: {v:,.0f} tokens/s per core = {v / tr['tokens_per_s']:.2f}x the training consumption")
    return 0


if __name__ == "__main__":
    sys.exit(main())
