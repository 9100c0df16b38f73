"""The ``mc4-sampling`` console command: ``sample``, ``score``, ``calibrate`` and ``publish``."""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import Mc4SamplingError


def build_parser() -> argparse.ArgumentParser:
    from .commands import calibrate, publish, sample, score

    parser = argparse.ArgumentParser(
        prog="mc4-sampling",
        description="Stream mC4 and keep documents by their KenLM perplexity (BERTIN-style sampling).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sample.add_parser(sub)
    score.add_parser(sub)
    calibrate.add_parser(sub)
    publish.add_parser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.handler(args) or 0
    except (Mc4SamplingError, ConnectionError) as e:
        print(f"mc4-sampling {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `mc4-sampling sample | head`
        return 0
    except KeyboardInterrupt:  # Ctrl-C: output files are renamed only when complete, so none is left
        print(f"mc4-sampling {args.command}: interrupted; no output file written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
