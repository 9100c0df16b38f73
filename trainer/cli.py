"""Command line of the masked-LM trainer (any registered model family, ``model.type``):
``trainer train --config C [--set k=v]`` (or just ``trainer --config C``), ``trainer export``,
``trainer fill-mask``, ``trainer tokenizer``, ``trainer finetune`` / ``evaluate`` / ``compare`` /
``probe-bias`` (downstream evaluation, :mod:`trainer.finetune`), ``trainer stats`` / ``suite`` (research,
:mod:`trainer.research`), ``trainer study CONFIG.yaml`` (a data-selection study, :mod:`trainer.study`),
``trainer generate-pcfg`` (an artificial corpus, :mod:`trainer.artificial`), ``trainer devices`` (the backend
and devices).

User mistakes (:class:`~trainer.errors.TrainerError`) are printed as one line and exit with
status 2; tracebacks are reserved for bugs (:mod:`trainer.console`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

from mc4_sampling.common.cli_types import non_negative_int, positive_int
from mc4_sampling.common.console import add_version_argument, datasets_without_torch

from .config_loading import add_config_arguments, load_config
from .console import configure_logging, run_guarded
from .data import tokenizer_command as tokenizer


def _train(args) -> int:
    from .entry import train

    sets = list(args.set or []) + (["checkpoint.from_last_good=true"] if args.from_last_good else [])
    cfg = load_config(args.config, sets)
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
        cfg = load_config(args.config, args.set)
        push = push or cfg.hub.push_to_hub
        private = cfg.hub.private
    out = export_checkpoint(args.checkpoint, args.output, step=args.step, tokenizer_dir=args.tokenizer,
                            push_to_hub=push, private=private, hub_endpoint=args.hub_endpoint,
                            overwrite=args.overwrite, from_last_good=args.from_last_good)
    print(f"exported to {out}" + (f" and uploaded to {push}" if push else ""))
    return 0


def _fill_mask(args) -> int:
    from .fill_mask import fill_mask

    for i, preds in enumerate(fill_mask(args.model, args.text, args.top_k)):
        print(f"<mask> #{i + 1}:")
        for p in preds:
            print("  {score:.4f}  {token_str!r:20}  {sequence}".format(**p))
    return 0


def _add_from_last_good(p: argparse.ArgumentParser, default) -> None:
    p.add_argument("--from-last-good", action="store_true", default=default,
                   help="when the latest checkpoint is damaged, resume from the newest intact one "
                        "(checkpoint.from_last_good; without it a damaged checkpoint stops the run)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="trainer", description="Flax masked-LM pretraining (RoBERTa, ModernBERT) on a "
                                                            "streaming dataset or token shards")
    add_version_argument(p)
    add_config_arguments(p, help="train with this config when no command is given (as `trainer train --config`)")
    _add_from_last_good(p, default=False)
    sub = p.add_subparsers(dest="command",
                           metavar="{train,export,average,fill-mask,tokenizer,finetune,evaluate,compare,probe-bias,stats,"
                                   "suite,study,generate-pcfg,devices}")

    t = sub.add_parser("train", help="train or resume (the default command)")
    add_config_arguments(t, required=True)
    _add_from_last_good(t, default=argparse.SUPPRESS)  # the top-level flag is not overridden
    t.set_defaults(handler=_train)

    e = sub.add_parser("export", help="write a transformers folder from a checkpoint")
    e.add_argument("--checkpoint", required=True, help="checkpoints folder, a step folder in it, or a run folder")
    e.add_argument("--output", required=True, help="a new or empty folder, or one this command wrote")
    e.add_argument("--overwrite", action="store_true", help="replace --output even if it holds other files")
    e.add_argument("--step", type=non_negative_int, help="step to export (default: the latest)")
    e.add_argument("--from-last-good", action="store_true",
                   help="when that step is damaged, export the newest intact one before it")
    e.add_argument("--tokenizer", help="tokenizer folder (default: the one saved with the run)")
    e.add_argument("--push-to-hub", metavar="REPO", help="upload to this Hub repository")
    e.add_argument("--hub-endpoint", default=os.environ.get("HF_ENDPOINT"), help=argparse.SUPPRESS)
    add_config_arguments(e, help="read hub.push_to_hub / hub.private from this config")
    e.set_defaults(handler=_export)

    f = sub.add_parser("fill-mask", help="top-k predictions for <mask> in a sentence")
    f.add_argument("--model", required=True, help="an exported transformers folder")
    f.add_argument("--top-k", type=positive_int, default=5)
    f.add_argument("text")
    f.set_defaults(handler=_fill_mask)

    k = sub.add_parser("tokenizer", help="train a byte-level BPE tokenizer on the configured stream",
                       description=tokenizer.DESCRIPTION)
    tokenizer.add_arguments(k)
    k.set_defaults(handler=tokenizer.run)

    from .research import averaging, stats_report, suite

    a = sub.add_parser("average", help="average saved checkpoints (LAWA) into a new checkpoint")
    averaging.add_arguments(a)
    a.set_defaults(handler=averaging.run)

    w = sub.add_parser("stats", help="mean / std / max|w| of every module per layer, several checkpoints, PNG")
    stats_report.add_arguments(w)
    w.set_defaults(handler=stats_report.run)
    u = sub.add_parser("suite", help="train a config for seeds 0..K-1, each in its own folder and repository")
    suite.add_arguments(u)
    u.set_defaults(handler=suite.run)

    from .study import command as study_command

    st = sub.add_parser("study", help="a data-selection study: arms x seeds, trained, evaluated, compared (report)")
    study_command.add_arguments(st)
    st.set_defaults(handler=study_command.run)

    from .finetune import command as finetune_command

    ft = sub.add_parser("finetune", help="fine-tune checkpoints on downstream tasks (seeds, table, export)")
    finetune_command.add_finetune_arguments(ft)
    ev = sub.add_parser("evaluate", help="evaluate a fine-tuned model on a dataset split")
    finetune_command.add_evaluate_arguments(ev)
    cp = sub.add_parser("compare", help="merge fine-tuning results into one table (Markdown, JSON, PNG)")
    finetune_command.add_compare_arguments(cp)

    from .finetune import probe_bias

    pb = sub.add_parser("probe-bias", help="fill-mask completions of prompts per attribute (gender, religion, "
                        "origin...) across models: table and pictures")
    probe_bias.add_arguments(pb)
    pb.set_defaults(handler=probe_bias.run)

    from .artificial import command as artificial_command

    gp = sub.add_parser("generate-pcfg", help="an artificial corpus: a PCFG of a treebank's relations, relexicalised "
                        "(zipf, loglinear), with its tokenizer", description=artificial_command.DESCRIPTION)
    artificial_command.add_arguments(gp)
    gp.set_defaults(handler=artificial_command.run)

    from . import devices

    dv = sub.add_parser("devices", help="print the JAX backend and the devices the trainer will use",
                        description=devices.__doc__.split("\n\n")[0])
    devices.add_arguments(dv)
    dv.set_defaults(handler=devices.run)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `trainer --config C [--set ...]` trains
        if args.config is None:
            parser.error("give a command or --config (to train)")
        args.handler = _train
    configure_logging()
    with datasets_without_torch():
        return run_guarded(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
