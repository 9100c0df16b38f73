#!/usr/bin/env python
"""Trainer throughput: training tokens/s and MFU, memory, and the input pipeline's tokens/s with workers.

    python benchmarks/bench_trainer.py                      # tiny-cpu on CPU (what `make bench` runs)
    python benchmarks/bench_trainer.py --config roberta-base-128 --set training.per_device_batch_size=256
    python benchmarks/bench_trainer.py --config roberta-base-128 --beside modernbert-base-128

* Model families: ``--beside CONFIG`` also times CONFIG's train step (head on the masked
  positions) with the same tokenizer, batch and ``--set`` overrides, and prints the two
  tokens/s side by side; by default tiny-cpu (RoBERTa) is compared with tiny-modernbert-cpu
  (ModernBERT of the same size), ``--beside none`` skips it.

* Training: the jitted train step on random token batches (no data loading), after ``--warmup``
  compiled steps, timed over ``--steps`` steps, with the LM head on the masked positions only (the
  default) and, for comparison, at every position (``--skip-full-head`` leaves it out). MFU
  convention (:mod:`trainer.flops`): model FLOPs needed per token = 6 x encoder matmul params +
  6 x head matmul params x predicted fraction (0.15; 1 for the full head) + 12 x layers x length
  x hidden; MFU = achieved / (devices x peak bf16). CPUs have no entry in the peak table: MFU is
  n/a, the achieved GFLOP/s are printed. Memory: XLA's estimate for the compiled step and the
  device's peak bytes in use (when the backend reports them; CPUs do not).
* Input pipeline: documents -> batched tokenisation -> packing -> batches
  (``TOKENIZERS_PARALLELISM=false``: one core per tokeniser), in the pipeline's thread
  (``data.num_workers=0``) and with 1 and ``--workers`` tokenizer processes, in two variants:
  from texts already in memory (tokeniser and packer only) and from the configured stream (the
  main process reads the stream; the mc4-sampling builder scores perplexity there too). The
  ratio to the training consumption says whether one host keeps the device busy.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
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

    from trainer import flops as F, memory
    from trainer.masking import masking_rule
    from trainer.models import family_of
    from trainer.optim import make_optimizer, schedule_fn
    from trainer.run_setup import accumulation_steps, build_spec, check_devices
    from trainer.sharding import batch_sharding, make_mesh, replicated, state_shardings
    from trainer.steps import make_train_step, run_keys

    spec = build_spec(cfg, tok)
    init_params = family_of(spec).init_params
    n_dev = jax.device_count()
    micro = check_devices(cfg, n_dev, 1)
    accum = accumulation_steps(cfg, n_dev)
    t, L = cfg.training, cfg.data.max_seq_length
    mesh = make_mesh()
    tx = make_optimizer(cfg)
    keys = run_keys(t.seed)
    abstract = jax.eval_shape(lambda k: init_params(spec, k), keys.init)
    psh = state_shardings(abstract, mesh, t.fsdp)
    params = jax.jit(lambda k: init_params(spec, k), out_shardings=psh)(keys.init)
    osh = state_shardings(jax.eval_shape(tx.init, abstract), mesh, t.fsdp)
    opt = jax.jit(tx.init, out_shardings=osh)(params)
    rule = masking_rule(cfg, tok)
    step_fn = jax.jit(make_train_step(spec, tx, schedule_fn(cfg), rule, keys.step),
                      in_shardings=(psh, osh, replicated(mesh), batch_sharding(mesh)),
                      out_shardings=(psh, osh, replicated(mesh)), donate_argnums=(0, 1))
    batch = jax.device_put(jax.random.randint(jax.random.key(1), (accum, micro, L), 5, tok.vocab_size,
                                              dtype=jnp.int32), batch_sharding(mesh))
    t0 = time.perf_counter()
    estimate = memory.compiled_bytes(step_fn.lower(params, opt, jnp.int32(0), batch).compile())
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
    predicted = F.predicted_fraction(rule.max_predictions, rule.rate.peak if rule.rate else rule.mlm_probability)
    fpt = F.flops_per_token(spec, L, predicted)
    return {"device": f"{n_dev} x {kind} ({jax.default_backend()})", "step_s": dt / steps, "tokens_per_s": tps,
            "flops_per_token": fpt, "achieved_tflops": tps * fpt / 1e12,
            "mfu": F.mfu(tps, spec, L, kind, n_dev, predicted), "warmup_s": compile_s,
            "attention": spec.attention_impl, "dtype": spec.dtype, "max_predictions": rule.max_predictions,
            "predicted": predicted, "accum": accum, "micro": micro, "remat": spec.remat,
            "padded_vocab": spec.padded_vocab_size, "estimate": estimate, "family": family_of(spec).name,
            "peak_bytes": memory.peak_bytes_in_use(jax.local_devices()[0])}


def bench_pipeline(cfg, tok, texts, seconds: float, workers: tuple = (0,)) -> dict:
    """Tokens/s of BatchStream: from in-memory texts, and from the configured stream, per worker count."""
    from trainer.data.batches import BatchStream

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

    import dataclasses

    out = {}
    for name, opener in [("in-memory texts", lambda *a: Memory(texts)), ("configured stream", None)]:
        for w in workers:
            kw = {"open_fn": opener} if opener else {}
            data = dataclasses.replace(cfg.data, text_column="text", num_workers=w)
            stream = BatchStream(data, tok, cfg.training.global_batch_size, cfg.training.seed, **kw)
            stream.num_eval = 0
            children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            it = stream.batches()
            for _ in range(2 + w):  # workers started, queues filled
                next(it)
            n, t0, c0 = 0, time.perf_counter(), time.process_time()
            while time.perf_counter() - t0 < seconds:
                try:
                    b = next(it)
                except Exception as e:  # e.g. a stream shorter than one epoch of batches
                    out[name, w] = f"failed: {e}"
                    break
                n += b.tokens.size
            else:
                wall, main_cpu = time.perf_counter() - t0, time.process_time() - c0
                it.close()  # the workers exit: their CPU time is in RUSAGE_CHILDREN (start-up included)
                children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                workers_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
                out[name, w] = {"tps": n / wall, "main_cores": main_cpu / wall, "worker_cores": workers_cpu / wall,
                                "tokens_per_cpu_s": n / max(main_cpu + workers_cpu, 1e-9)}
            it.close()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="tiny-cpu")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--pipeline-seconds", type=float, default=4.0)
    p.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 2),
                   help="tokenizer processes of the largest pipeline variant (default: 2, or 1 on one core)")
    p.add_argument("--skip-pipeline", action="store_true")
    p.add_argument("--skip-full-head", action="store_true", help="do not also time the LM head at every position")
    p.add_argument("--beside", default="auto", help="a config of another model family timed beside --config "
                                                     "(auto: tiny-modernbert-cpu beside tiny-cpu; none: no other)")
    p.add_argument("--skip-main", action="store_true", help="time only the --beside model (with --config's data)")
    args = p.parse_args(argv)

    import logging

    from trainer.config_loading import load_config
    from trainer.console import configure_logging
    from trainer.data.stream import stream_texts
    from trainer.data.tokenizer import TokenizerFns, train_tokenizer

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
    import dataclasses

    runs = [("LM head on masked positions", cfg)]
    if not args.skip_full_head and cfg.training.max_predictions_per_seq != 0:
        full = dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, max_predictions_per_seq=0))
        runs.append(("LM head at every position", full))
    print("MFU convention: model FLOPs needed per token = 6 x encoder matmul params + 6 x LM-head matmul params "
          "x predicted fraction + attention: 12 x layers x length x hidden, ModernBERT's local layers their window "
          "(trainer/flops.py)")
    results = []
    beside = {"auto": "tiny-modernbert-cpu" if args.config == "tiny-cpu" else None, "none": None}.get(args.beside,
                                                                                                     args.beside)
    if args.skip_main:
        runs = []
    for label, c in runs:
        tr = bench_training(c, tok, args.steps, args.warmup)
        results.append(tr)
        mfu = f"{100 * tr['mfu']:.1f} %" if tr["mfu"] is not None else (
            "n/a (no peak FLOP/s for this device kind; CPUs have no meaningful bf16 peak)")
        head = (f"{tr['max_predictions']} gathered positions per row, predicted fraction {tr['predicted']}"
                if tr["max_predictions"] else "every position, predicted fraction 1")
        print(f"training on {tr['device']}, attention {tr['attention']}, {label} ({head}); "
              f"{tr['accum']} x {tr['micro']} sequences per step, remat {tr['remat']}, "
              f"vocabulary rows {tr['padded_vocab']}:")
        print(f"  {tr['tokens_per_s']:,.0f} tokens/s  ({tr['step_s'] * 1e3:.1f} ms/step, "
              f"compile+warm-up {tr['warmup_s']:.1f} s)")
        print(f"  {tr['flops_per_token'] / 1e6:.1f} MFLOP/token -> {tr['achieved_tflops'] * 1e3:.1f} GFLOP/s "
              f"achieved; MFU {mfu}")
        est, peak = tr["estimate"], tr["peak_bytes"]
        print("  memory per device: XLA estimate " + (f"{est['total'] / 2 ** 30:.2f} GiB (temporaries "
              f"{est['temporaries'] / 2 ** 30:.2f} GiB)" if est else "n/a") + "; peak in use " +
              (f"{peak / 2 ** 30:.2f} GiB" if peak else "n/a (not reported by this backend)"))
    if len(results) == 2:
        print(f"  head on masked positions: {results[0]['tokens_per_s'] / results[1]['tokens_per_s']:.2f}x the "
              "tokens/s of the full head")
    if beside:
        other_cfg = load_config(beside, args.set)
        other = bench_training(other_cfg, tok, args.steps, args.warmup)
        m = other_cfg.model
        print(f"beside: {beside} ({other['family']}, {m.num_layers} layers x {m.hidden_size}, intermediate "
              f"{m.intermediate_size}), same tokenizer, length {other_cfg.data.max_seq_length} and batch "
              f"{other_cfg.training.global_batch_size}, LM head on masked positions:")
        print(f"  {other['tokens_per_s']:,.0f} tokens/s  ({other['step_s'] * 1e3:.1f} ms/step, compile+warm-up "
              f"{other['warmup_s']:.1f} s; {other['flops_per_token'] / 1e6:.1f} MFLOP/token, attention "
              f"{other['attention']})")
        if results:
            ref = results[0]
            print(f"  {other['family']} / {ref['family']}: {other['tokens_per_s'] / ref['tokens_per_s']:.2f}x the "
                  "tokens/s")
        results.append(other)
    consumption = results[0]["tokens_per_s"]
    if not args.skip_pipeline:
        print(f"input pipeline ({len(texts)} documents read from the stream in {read_s:.1f} s = "
              f"{len(texts) / read_s:,.0f} docs/s incl. sampling; {os.cpu_count()} cores on this machine):")
        workers = tuple(sorted({0, 1, max(1, args.workers)}))
        pipe = bench_pipeline(cfg, hf_tok, texts, args.pipeline_seconds, workers)
        print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: other jobs share them)")
        for (name, w), v in pipe.items():
            how = "in the pipeline thread" if w == 0 else f"{w} tokenizer process{'es' if w > 1 else ''}"
            if isinstance(v, str):
                print(f"  {name}, {how}: {v}")
                continue
            base = pipe.get((name, 0))
            ratio = f", {v['tps'] / base['tps']:.2f}x the in-thread rate" if w and isinstance(base, dict) else ""
            print(f"  {name}, {how}: {v['tps']:,.0f} tokens/s = {v['tps'] / consumption:.2f}x the training "
                  f"consumption{ratio}; CPU: main process {v['main_cores']:.2f} cores, workers "
                  f"{v['worker_cores']:.2f} cores, {v['tokens_per_cpu_s']:,.0f} tokens per CPU second")
    return 0


if __name__ == "__main__":
    sys.exit(main())
