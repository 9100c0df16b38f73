"""The ``mc4-sampling`` console command: ``sample``, ``score``, ``calibrate``, ``publish``, ``embed-map`` and
``train-model``."""

from __future__ import annotations

import argparse
import logging
import sys

from .common.console import add_version_argument, datasets_without_torch, run_guarded


def build_parser() -> argparse.ArgumentParser:
    from .commands import calibrate, embed_map, publish, sample, score, train_model

    parser = argparse.ArgumentParser(
        prog="mc4-sampling",
        description="Stream mC4 and keep documents by their KenLM perplexity (BERTIN-style sampling).",
    )
    add_version_argument(parser)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sample.add_parser(sub)
    score.add_parser(sub)
    calibrate.add_parser(sub)
    publish.add_parser(sub)
    embed_map.add_parser(sub)
    train_model.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # one line per user mistake or fault (2), Ctrl-C 130, SIGTERM 143 (mc4_sampling.common.console);
    # output files are renamed only when complete, so an interrupted run leaves none
    command = f"mc4-sampling {args.command}"
    with datasets_without_torch():
        return run_guarded(lambda: args.handler(args), prefix=f"{command}: error", cli_spelling=True,
                           interrupted=f"{command}: interrupted; no output file written", label=f"{command}: ")


if __name__ == "__main__":
    sys.exit(main())
