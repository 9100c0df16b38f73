"""Extra outputs of ``mc4-sampling publish`` that other packages contribute: the extension point.

An output is an object registered as an entry point of the group :data:`GROUP`
(``setup.cfg``, ``[options.entry_points]``), with

* ``flag``: the option that asks for it (e.g. ``--tokenizer``), ``extra``: the extra of this
  distribution that provides it, ``requires``: the modules of that extra it needs;
* ``add_arguments(parser)``: its options, added to ``publish``'s;
* ``wanted(args)``: whether the command line asks for it;
* ``check(args)`` (optional): its checks that need no sampling, run before any work;
* ``check_documents(args, configs, source)`` (optional): its checks of the documents each config keeps
  (``{name: Mc4SamplingConfig}``), run before the first output file is written;
* ``run(args, result)``: called after a complete publish with its
  :class:`~mc4_sampling.publish.PublishResult`.

The trainer registers ``token-shards`` (``publish --tokenizer``: :mod:`trainer.data.publish_tokens`).
This package never imports the trainer: it finds the output by its entry point. When the output
cannot be loaded or its extra is missing, its flag still exists and fails up front, before any
sampling, with one line naming the ``pip install`` that provides it (:func:`check`).
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
from importlib.metadata import entry_points

from .errors import Mc4SamplingError

logger = logging.getLogger(__name__)

#: The entry-point group of ``publish`` outputs.
GROUP = "mc4_sampling.publish_outputs"

#: The outputs this distribution's extras provide: name -> (flag, extra). Their flags exist even when
#: the output cannot be loaded, so that asking for one says what to install.
KNOWN = {"token-shards": ("--tokenizer", "trainer")}


class MissingOutputError(Mc4SamplingError, ImportError):
    """A ``publish`` output was asked for whose extra is not installed."""


class _Unavailable:
    """Stands for a known output that cannot be loaded: its flag, failing when given."""

    requires = ()

    def __init__(self, flag: str, extra: str):
        self.flag, self.extra = flag, extra

    def add_arguments(self, parser) -> None:
        parser.add_argument(self.flag, dest=self.flag.lstrip("-").replace("-", "_"), metavar="DIR",
                            help=f"(needs the {self.extra} extra: pip install 'mc4-sampling[{self.extra}]')")

    def wanted(self, args) -> bool:
        return bool(getattr(args, self.flag.lstrip("-").replace("-", "_"), None))

    def run(self, args, result) -> None:  # never reached: check() refuses it first
        raise MissingOutputError(_missing(self.flag, self.extra))


def _missing(flag: str, extra: str, why: str = "") -> str:
    return f"{flag} needs the {extra} extra{why}; install it with: pip install 'mc4-sampling[{extra}]'"


def outputs() -> dict:
    """``{name: output}`` of every registered output, and a stand-in for each known one not loadable."""
    found = {}
    for ep in entry_points(group=GROUP):
        try:
            found[ep.name] = ep.load()
        except ImportError as e:
            logger.debug("publish output %s cannot be loaded: %s", ep.name, e)
    for name, (flag, extra) in KNOWN.items():
        if name not in found:
            found[name] = _Unavailable(flag, extra)
    return found


def add_arguments(parser: argparse.ArgumentParser) -> dict:
    """Add every output's options to ``publish``'s parser; returns the outputs (for :func:`check`, :func:`run`)."""
    found = outputs()
    for output in found.values():
        output.add_arguments(parser)
    parser.set_defaults(publish_outputs=found)
    return found


def check(args) -> None:
    """Before any work: refuse an output asked for whose extra (or one of its modules) is missing."""
    for output in (getattr(args, "publish_outputs", None) or {}).values():
        if not output.wanted(args):
            continue
        if isinstance(output, _Unavailable):
            raise MissingOutputError(_missing(output.flag, output.extra))
        absent = [m for m in output.requires if importlib.util.find_spec(m) is None]
        if absent:
            raise MissingOutputError(_missing(output.flag, output.extra, f" ({', '.join(absent)} missing)"))
        if hasattr(output, "check"):
            output.check(args)


def check_documents(args, configs: dict, source=None) -> None:
    """Before the first output file is written: every wanted output's checks of the documents each config
    keeps (e.g. enough eval documents for ``--eval-docs``); ``source``: the corpus source's
    :class:`~mc4_sampling.sources.base.SourceOptions` (None: mC4, the configs' own)."""
    for output in (getattr(args, "publish_outputs", None) or {}).values():
        if output.wanted(args) and hasattr(output, "check_documents"):
            output.check_documents(args, configs, source)


def run(args, result) -> None:
    """After a complete publish: every output the command line asks for."""
    for output in (getattr(args, "publish_outputs", None) or {}).values():
        if output.wanted(args):
            output.run(args, result)
