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
    """The data source's flags: ``--lang``, mC4's (``--data-dir``, ``--base-url``, ``--shards``), the
    corpus source's (:func:`add_corpus_source_options`) and ``--on-bad-record``."""
    g = _group(parser, "data source")
    g.add_argument("--lang", nargs="+", default=["es"], metavar="LANG",
                   help="language as the source spells it: mC4 code(s), e.g. es, or several: es ca (default: es); "
                   "one for another --source, e.g. spa_Latn for fineweb2")
    g.add_argument("--data-dir", help="local folder laid out like allenai/c4's multilingual/ (e.g. the bundled "
                   "sample: see `python -c 'import mc4_sampling; print(mc4_sampling.SAMPLE_DATA_DIR)'`)")
    g.add_argument("--base-url", help="HTTP(S) mirror of allenai/c4's multilingual/ folder (default: the Hub)")
    g.add_argument("--shards", type=int, nargs="+", metavar="I", help="read only these shard indices")
    add_corpus_source_options(parser)
    add_option_flags(parser, "data source")


#: the corpus-source flags of every command, declared once: (flag, SourceOptions field, argparse settings, help)
SOURCE_FLAGS = (
    ("--source", "source", {"default": "mc4", "metavar": "NAME"},
     "the corpus source: {sources} (mc4_sampling.sources; default: mc4)"),
    ("--location", "location", {"metavar": "PATH_OR_URL"},
     "where the source's files are: a local folder, an http(s):// base URL or hf://datasets/OWNER/NAME[@REV]/ "
     "(default: the source's public home; for mC4 the same as --data-dir or --base-url); a bundled "
     "FineWeb-2-shaped Spanish folder: mc4_sampling.SAMPLE_FINEWEB2_DIR"),
    ("--data-files", "data_files", {"action": "append", "metavar": "SPLIT=GLOB"},
     "the files of a split, repeatable (--source files), e.g. train=corpus/*.parquet"),
    ("--text-column", "text_column", {"metavar": "NAME"},
     "column with the documents (default: the source's, text)"),
    ("--id-column", "id_column", {"metavar": "NAME"},
     "column with a unique document id, the key of the draw (default: the source's; '': the text)"),
    ("--metadata-columns", "metadata_columns", {"nargs": "+", "metavar": "NAME"},
     "the columns kept beside the text (default: the source's; FineWeb-2: url date language_score "
     "minhash_cluster_size)"),
    ("--source-option", "source_options", {"action": "append", "metavar": "KEY=VALUE"},
     "a source's own option, repeatable, e.g. rows_per_unit=50000 (Parquet row-group runs as units), min_bin=7 "
     "(hplt3)"),
)
#: the flags that name a corpus source's columns or files: not mC4's
CORPUS_ONLY_FLAGS = ("--data-files", "--text-column", "--id-column", "--metadata-columns", "--source-option")


def add_corpus_source_options(parser: argparse.ArgumentParser) -> None:
    """The corpus-source flags (:data:`SOURCE_FLAGS`), in the ``data source`` group; the values land in
    the fields' names (``args.source``, ``args.location``, ...)."""
    from ..sources import source_names

    g = _group(parser, "data source")
    for option, dest, settings, help in SOURCE_FLAGS:
        g.add_argument(option, dest=dest, help=help.replace("{sources}", ", ".join(source_names())), **settings)


def reads_shards(args) -> bool:
    """Whether ``--source`` is read as mC4's shards, through the builder's own options (``--data-dir``,
    ``--base-url``, ``--shards``): the source whose draw is positional (asked of the registry); an
    unknown name is not (:func:`corpus_source` refuses it)."""
    from ..sources.base import SOURCES, source_names

    source_names()  # the built-in sources registered
    cls = SOURCES.get(args.source)
    return cls is not None and cls.draw_by_position


def is_corpus(args) -> bool:
    """Whether a command reads a corpus (a ``--dataset`` or a ``--source`` other than mC4), not mC4's shards."""
    return bool(getattr(args, "dataset", None)) or not reads_shards(args)


def source_flags_given(args) -> list[str]:
    """The corpus-source flags the command line gave (but ``--source`` and ``--location``)."""
    return [option for option, dest, _, _ in SOURCE_FLAGS
            if option in CORPUS_ONLY_FLAGS and getattr(args, dest, None) is not None]


def corpus_source(args, language: str | None = None):
    """The :class:`~mc4_sampling.sources.SourceOptions` of ``--source`` (not mC4), checked before any
    work (:meth:`~mc4_sampling.sources.CorpusSource.check`: the source exists, has the language, its
    columns are in the first file); None for mC4 (its ``--location`` becomes ``--data-dir`` or
    ``--base-url``). Errors name the flags."""
    from ..sources import SourceOptions, make_source

    if reads_shards(args):
        given = source_flags_given(args)
        if given and not getattr(args, "dataset", None):
            raise ConfigError(f"{given[0]} applies to a corpus source (--source NAME) or a --dataset, not to mC4")
        if args.location is not None:
            which = "base_url" if "://" in args.location else "data_dir"
            other = [f for f, v in (("--data-dir", getattr(args, "data_dir", None)),
                                    ("--base-url", getattr(args, "base_url", None))) if v is not None]
            if other:
                raise ConfigError(f"--location and {other[0]} both locate mC4's files; give one")
            if hasattr(args, which):
                setattr(args, which, args.location)
        return None
    if getattr(args, "dataset", None):
        raise ConfigError(f"--dataset and --source {args.source} both name the documents; give one")
    mc4_only = [f for f, v in (("--data-dir", getattr(args, "data_dir", None)),
                               ("--base-url", getattr(args, "base_url", None)),
                               ("--shards", getattr(args, "shards", None))) if v is not None]
    if mc4_only:
        raise ConfigError(f"{mc4_only[0]} locates mC4 files; with --source {args.source} give --location")
    if language is None:
        langs = args.lang if isinstance(args.lang, (list, tuple)) else [args.lang]
        if len(langs) != 1:
            raise ConfigError(f"--lang: --source {args.source} reads one language, got {' '.join(langs)}")
        language = langs[0]
    data_files = None
    if args.data_files:
        data_files = {}
        for item in args.data_files:
            split, sep, pattern = item.partition("=")
            if not sep or not split or not pattern:
                raise ConfigError(f"--data-files {item!r} is not valid; write SPLIT=GLOB, e.g. train=corpus/*.parquet")
            data_files.setdefault(split, []).append(pattern)
    options = SourceOptions(source=args.source, language=language, location=args.location, data_files=data_files,
                            text_column=args.text_column, id_column=args.id_column,
                            metadata_columns=args.metadata_columns,
                            options=key_values(args.source_options, "--source-option") or {})
    make_source(options, "--source").check()
    return options


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


def add_option_flags(parser: argparse.ArgumentParser, group: str, names: tuple[str, ...] | None = None,
                     title: str | None = None) -> None:
    """A flag for every sampling option of the declared ``group`` (only ``names`` when given; in the help
    under ``title``, default ``group``), from its metadata: ``flag`` (and ``--<name>`` when it differs),
    its help, its ``argparse`` settings; the value lands in the field's name (``args.sampling_factor``);
    a dict is given as repeated ``KEY=VALUE``."""
    from ..scoring import scorer_kinds

    g = _group(parser, title or group)
    given = list(parser.get_default("option_fields") or ())
    for f in fields(SamplingOptions):
        meta = f.metadata
        if meta["group"] != group or meta["cli"] is False or (names is not None and f.name not in names):
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


def source_sampling_options(args, **overrides) -> SamplingOptions:
    """The sampling options of a corpus source from the parsed flags (``overrides`` over them), checked
    once and named as flags (``--validation-factor`` applies to the source's splits other than train)."""
    from ..options import check_sampling_options

    values = {**option_values(args), **overrides}
    options = SamplingOptions(**{k: v for k, v in values.items() if v is not None})
    check_sampling_options(options, flag)
    return options


def source_config(args, source, **overrides) -> Mc4SamplingConfig:
    """The builder's config of a corpus source (:class:`~mc4_sampling.sources.SourceOptions`) and the
    sampling flags, as ``load_dataset("mc4-sampling", source=...)`` takes them (the flags checked first)."""
    options = source_sampling_options(args, **overrides)
    values = {f.name: getattr(options, f.name) for f in fields(SamplingOptions)}
    remote = source.location is not None and "://" in source.location
    return Mc4Sampling(
        config_name=f"{source.source}-{source.language}", source=source.source, language=source.language,
        data_dir=None if remote else source.location, base_url=source.location if remote else None,
        data_files={k: list(v) for k, v in source.data_files.items()} if source.data_files else None,
        text_column=source.text_column, id_column=source.id_column,
        metadata_columns=list(source.metadata_columns) if source.metadata_columns is not None else None,
        source_options=dict(source.options) or None, **values).config


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
