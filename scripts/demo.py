#!/usr/bin/env python
"""`make demo`: offline, on the bundled Spanish sample, the whole trainer path in a few minutes.

1. gaussian perplexity sampling through ``load_dataset("mc4-sampling", ...)``;
2. a small byte-level BPE tokenizer trained on the sampled stream;
3. the ``tiny-cpu`` RoBERTa trained for a few hundred steps, held-out eval printed as it improves;
4. a checkpoint, a transformers export, and fill-mask predictions for Spanish sentences.

Everything is written under ``demo-output/`` (git-ignored).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_UPDATE_DOWNLOAD_COUNTS", "0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

SENTENCES = ["Madrid es la capital <mask> España.", "Los niños juegan en <mask> parque.",
             "La <mask> de la casa está abierta."]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--output", default=os.path.join(ROOT, "demo-output"))
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the tiny-cpu config's)")
    p.add_argument("--vocab-size", type=int, default=4000)
    args = p.parse_args(argv)

    from trainer.console import configure_logging

    configure_logging(logging.WARNING)
    from trainer.config_loading import load_config
    from trainer.data.stream import stream_holdout, stream_texts
    from trainer.data.tokenizer import train_tokenizer
    from trainer.entry import train
    from trainer.export import export_checkpoint
    from trainer.fill_mask import FillMask

    t0 = time.perf_counter()
    out = os.path.abspath(args.output)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    tok_dir, run_dir, model_dir = (os.path.join(out, d) for d in ("tokenizer", "tiny-cpu", "model"))
    overrides = [f"data.tokenizer={tok_dir}", f"training.output_dir={run_dir}"]
    if args.steps:
        overrides.append(f"training.max_steps={args.steps}")
    cfg = load_config("tiny-cpu", overrides)
    from trainer.data.stream import builder_options

    kwargs = {**cfg.data.kwargs, **builder_options(cfg.data.sampling)}  # data.sampling goes to the builder
    print(f"== 1. sampling: load_dataset({cfg.data.path!r}, {cfg.data.name!r}, **{kwargs}) "
          "on the bundled sample (no network)")

    # 2. tokenizer on the sampled stream without the documents the trainer holds out (its content rule)
    t = time.perf_counter()
    holdout = stream_holdout(cfg)
    texts = list(stream_texts(cfg, num_docs=10**9, holdout=holdout))
    tok = train_tokenizer(texts, tok_dir, vocab_size=args.vocab_size, min_frequency=2,
                          model_max_length=cfg.data.max_seq_length)
    chars = sum(len(x) for x in texts)
    print(f"   {len(texts)} documents kept by gaussian sampling for the tokenizer, {chars / 1e6:.1f} M characters; "
          f"{holdout.summary()}")
    print(f"== 2. tokenizer: byte-level BPE, {len(tok)} tokens, in {time.perf_counter() - t:.1f} s -> {tok_dir}")

    # 3. training
    m, tr = cfg.model, cfg.training
    print(f"== 3. training tiny-cpu: {m.num_layers} layers x {m.hidden_size} hidden, length "
          f"{cfg.data.max_seq_length}, batch {tr.global_batch_size}, {tr.max_steps} steps "
          f"(held-out eval every {tr.eval_every_steps} steps)")
    best = [float("inf")]

    def on_eval(step, ev):
        mark = "  (best so far)" if ev["loss"] < best[0] else ""
        best[0] = min(best[0], ev["loss"])
        print(f"   step {step:4d}  eval loss {ev['loss']:.3f}  masked-token accuracy {ev['accuracy']:.3f}{mark}",
              flush=True)

    t = time.perf_counter()
    result = train(cfg, on_eval=on_eval)
    train_s = time.perf_counter() - t
    tps = result.train_metrics.get("tokens_per_second", float("nan"))
    print(f"   trained {result.step} steps in {train_s:.0f} s ({tps:,.0f} tokens/s at the end); "
          f"checkpoints in {result.checkpoint_dir}: {sorted(os.listdir(result.checkpoint_dir))}")

    # 4. export and fill-mask
    export_checkpoint(result.checkpoint_dir, model_dir)
    print(f"== 4. exported to {model_dir} (AutoModelForMaskedLM.from_pretrained loads it): "
          f"{', '.join(sorted(os.listdir(model_dir)))}")
    runner = FillMask(model_dir)
    for sentence in SENTENCES:
        preds = runner(sentence, top_k=5)[0]
        print(f"   {sentence}")
        print("      " + "   ".join(f"{p['token_str']!r} {p['score']:.3f}" for p in preds))
    print(f"== demo done in {time.perf_counter() - t0:.0f} s")
    return 0


def _guarded() -> int:
    from trainer.errors import TrainerError

    try:
        return main()
    except TrainerError as e:  # a user-facing problem (data, config): one line, no traceback
        print(f"demo failed: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(_guarded())
