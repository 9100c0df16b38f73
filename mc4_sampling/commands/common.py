"""Options shared by several subcommands: the mC4 source's flags, and the sampling flags generated
from the one declaration of the sampling options (:class:`~mc4_sampling.options.SamplingOptions`,
each field's metadata: flag, help, type, group), read back as the same field names."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields

from ..builder import Mc4Sampling, Mc4SamplingConfig
from ..errors import ConfigError
from ..options import SamplingOptions, flag, option_help, sampling_options
from ..upsampling import UPSAMPLE_FUNCTIONS
from ..weightings import WEIGHTINGS


def add_source_options(parser: argparse.ArgumentParser) -> None:
    g = _group(parser, "data source")
    g.add_argument("--lang", nargs="+", default=["es"], metavar="LANG",
                   help="mC4 language code(s), e.g. es, or several: es ca (default: es)")
    g.add_argument("--data-dir", help="local folder laid out like allenai/c4's multilingual/ (e.g. the bundled "
                   "sample: see `python -c 'import mc4_sampling; print(mc4_sampling.SAMPLE_DATA_DIR)'`)")
    g.add_argument("--base-url", help="HTTP(S) mirror of allenai/c4's multilingual/ folder (default: the Hub)")
    g.add_argument("--shards", type=int, nargs="+", metavar="I", help="read only these shard indices")
    add_option_flags(parser, "data source")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The scorer's flags: ``perplexity model`` (KenLM) and ``other scorers``."""
    add_option_flags(parser, "perplexity model")
    add_option_flags(parser, "other scorers")


def add_sampling_options(parser: argparse.ArgumentParser) -> None:
    """The weighting's flags (``--method``, ``--factor``, ... ``--seed``)."""
    add_option_flags(parser, "sampling")


def _group(parser: argparse.ArgumentParser, title: str):
    """The parser's argument group ``title`` (made when missing)."""
    return next((g for g in parser._action_groups if g.title == title), None) or parser.add_argument_group(title)


def add_option_flags(parser: argparse.ArgumentParser, group: str) -> None:
    """A flag for every sampling option of the declared ``group``, from its metadata: ``flag`` (and
    ``--<name>`` when it differs), its help, its ``argparse`` settings; the value lands in the field's
    name (``args.sampling_factor``); a dict is given as repeated ``KEY=VALUE``."""
    from ..scoring import scorer_kinds

    g = _group(parser, group)
    given = list(parser.get_default("option_fields") or ())
    for f in fields(SamplingOptions):
        meta = f.metadata
        if meta["group"] != group or meta["cli"] is False:
            continue
        settings = dict(meta["cli"] or {})
        flags = [flag(f.name), *settings.pop("aliases", ())]
        own = "--" + f.name.replace("_", "-")
        if own not in flags:
            flags.append(own)
        if settings.get("choices") == "scorers":  # the registries as they are when the parser is built
            settings["choices"] = [k for k in scorer_kinds() if k != "callable"]
        elif settings.get("choices") == "weightings":
            settings["choices"] = tuple(WEIGHTINGS)
        elif settings.get("choices") == "upsample":
            settings["choices"] = tuple(UPSAMPLE_FUNCTIONS)
        if meta["key_values"]:
            settings.update(action="append", default=[], metavar="KEY=VALUE")
        settings.setdefault("default", f.default)
        help = option_help(f.name)
        if settings["default"] not in (None, False, []) and "default" not in help:
            help += f" (default: {settings['default']})"
        g.add_argument(*flags, dest=f.name, help=help, **settings)
        given.append(f.name)
    parser.set_defaults(option_fields=tuple(given))


def key_values(items, flag: str) -> dict | None:
    """``["a=1", "b=x"]`` as ``{"a": 1, "b": "x"}`` (values read as JSON when they parse, else strings)."""
    out = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} {item!r} is not valid; write KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out or None


def model_spec(args):
    """``--perplexity-model``: one path, or a KENLM SP pair."""
    spec = getattr(args, "perplexity_model", None)
    if spec is None or isinstance(spec, str):
        return spec
    return spec[0] if len(spec) == 1 else tuple(spec)


def option_values(args) -> dict:
    """The sampling options the parsed flags give (unset ones left out), as
    :class:`~mc4_sampling.options.SamplingOptions` field names and values."""
    out = {}
    given = getattr(args, "option_fields", ())
    for f in fields(SamplingOptions):
        if f.name not in given:
            continue
        value = getattr(args, f.name)
        if f.metadata["key_values"]:
            value = key_values(value, flag(f.name))
        elif f.name == "perplexity_model":
            value = model_spec(args)
        elif f.name == "boundaries" and value is not None:
            value = tuple(value)
        if value is not None:
            out[f.name] = value
    return out


def build_config(args, **overrides) -> Mc4SamplingConfig:
    """A validated builder config from parsed options (through the builder, as load_dataset does);
    the sampling options are checked first, their errors naming the flags."""
    values = {**option_values(args), **overrides}
    values = {k: v for k, v in values.items() if v is not None}
    sampling_options({k: v for k, v in values.items() if k in SamplingOptions.__dataclass_fields__}, flag,
                     corpus=False)
    source = dict(languages=list(args.lang), data_dir=args.data_dir, base_url=args.base_url, shards=args.shards)
    values.update({k: v for k, v in source.items() if v is not None})
    return Mc4Sampling(config_name="+".join(args.lang), **values).config
