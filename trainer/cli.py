"""Command line: ``trainer [train] --config C [--set k=v]``, ``trainer export``, ``trainer fill-mask``,
``trainer tokenizer``.

User mistakes (:class:`~trainer.errors.TrainerError`) are printed as one line and exit with
status 2; tracebacks are reserved for bugs.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Optional

from .errors import TrainerError

COMMANDS = ("train", "export", "fill-mask", "tokenizer")


def configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("absl", "jax._src", "orbax", "httpx", "urllib3", "datasets", "huggingface_hub", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_guarded(fn: Callable[[], int]) -> int:
    try:
        return fn()
    except TrainerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _train(args) -> int:
    from .config import load_config
    from .train import train

    cfg = load_config(args.config, args.set)
    result = train(cfg)
    for ev in result.eval_history:
        print(f"step {ev['step']}: eval loss {ev['loss']:.4f}  masked accuracy {ev['accuracy']:.4f}")
    print(f"done at step {result.step}; checkpoints in {result.checkpoint_dir}")
    return 0


def _export(args) -> int:
    from .export import export_checkpoint

    push = args.push_to_hub
    private = False
    if args.config:
        from .config import load_config

        cfg = load_config(args.config, args.set)
        push = push or cfg.hub.push_to_hub
        private = cfg.hub.private
    out = export_checkpoint(args.checkpoint, args.output, step=args.step, tokenizer_dir=args.tokenizer,
                            push_to_hub=push, private=private, hub_endpoint=args.hub_endpoint)
    print(f"exported to {out}" + (f" and uploaded to {push}" if push else ""))
    return 0


def _fill_mask(args) -> int:
    from .fill_mask import fill_mask

    for i, preds in enumerate(fill_mask(args.model, args.text, args.top_k)):
        print(f"<mask> #{i + 1}:")
        for p in preds:
            print(f"  {p['score']:.4f}  {p['token_str']!r:20}  {p['sequence']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trainer", description="Flax RoBERTa masked-LM pretraining on a streaming dataset")
    sub = p.add_subparsers(dest="command")

    t = sub.add_parser("train", help="train or resume (the default command)")
    t.add_argument("--config", required=True, help="YAML file or shipped config name (tiny-cpu, roberta-base-128, ...)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override, e.g. training.max_steps=100")

    e = sub.add_parser("export", help="write a transformers folder from a checkpoint")
    e.add_argument("--checkpoint", required=True, help="checkpoints folder, a step folder in it, or a run folder")
    e.add_argument("--output", required=True)
    e.add_argument("--step", type=int, help="step to export (default: the latest)")
    e.add_argument("--tokenizer", help="tokenizer folder (default: the one saved with the run)")
    e.add_argument("--push-to-hub", metavar="REPO", help="upload to this Hub repository")
    e.add_argument("--hub-endpoint", default=os.environ.get("HF_ENDPOINT"), help=argparse.SUPPRESS)
    e.add_argument("--config", help="read hub.push_to_hub / hub.private from this config")
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")

    f = sub.add_parser("fill-mask", help="top-k predictions for <mask> in a sentence")
    f.add_argument("--model", required=True, help="an exported transformers folder")
    f.add_argument("--top-k", type=int, default=5)
    f.add_argument("text")

    sub.add_parser("tokenizer", help="train a byte-level BPE tokenizer (see python -m trainer.tokenizer -h)",
                   add_help=False)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "tokenizer":
        from .tokenizer import main as tokenizer_main

        return tokenizer_main(argv[1:])
    if not argv or argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        argv = ["train"] + argv
    args = build_parser().parse_args(argv)
    configure_logging()
    handlers = {"train": _train, "export": _export, "fill-mask": _fill_mask}
    return run_guarded(lambda: handlers[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
