"""The sampling options: their one declaration (:class:`SamplingOptions`, each field with its help,
command-line spelling and scope in its metadata) and their one validation
(:func:`check_sampling_options`, whose errors name each option as the user wrote it).

Every entry point takes these fields by these names: the builder's
:class:`~mc4_sampling.Mc4SamplingConfig` (a subclass), :func:`~mc4_sampling.sample_dataset`,
:func:`~mc4_sampling.score_texts`, :func:`~mc4_sampling.keep_weights`, ``publish`` and its
manifest, the ``mc4-sampling`` flags (generated from the metadata, :mod:`mc4_sampling.commands.common`),
the trainer's ``data.sampling`` and the study's arms. Only the spelling of an option in messages
differs: :func:`keyword` (Python), :func:`flag` (command line), or any ``spell(name)`` (the trainer's
``data.sampling.<name>``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Sequence

from .errors import ConfigError, option_value
from .perplexity import MODES
from .reader import BAD_RECORD_POLICIES
from .scoring import Scorer, ScorerSource, scorer_kinds
from .upsampling import DEFAULT_COLUMN, NO_UPSAMPLING, UPSAMPLE_FUNCTIONS
from .weightings import WEIGHTINGS, get_weighting

#: how messages spell an option: ``spell(field name) -> the key as the user wrote it``
Spell = Callable[[str], str]


def _option(default, help: str, *, group: str = "sampling", flag: str | None = None, mc4_only: bool = False,
            cli: Mapping | None = None, key_values: bool = False):
    """A sampling option's field. Metadata: ``help``; ``group`` (the title of its command-line group);
    ``flag`` (the command-line flag when it is not ``--<name>``; ``--<name>`` is accepted too);
    ``mc4_only`` (applies to mC4's splits, not to a corpus); ``cli`` (further ``argparse`` settings,
    ``aliases`` further flags; ``False``: no flag of its own);
    ``key_values`` (a dict given as repeated ``KEY=VALUE`` flags)."""
    meta = {"help": help, "group": group, "flag": flag, "mc4_only": mc4_only, "cli": cli, "key_values": key_values}
    return field(default=default, metadata=meta)


@dataclass
class SamplingOptions:
    """What decides which documents are kept: every sampling option, declared once (the field
    metadata holds each one's help, command-line spelling and scope; see :func:`option_help`)."""

    sampling_method: str = _option(
        "none", "the weighting: {weightings} (mc4_sampling.weightings)", flag="--method",
        cli={"choices": "weightings", "default": "gaussian", "metavar": "METHOD"})
    sampling_factor: float | None = _option(
        None, "the weighting's factor (default: the calibration file's, the scorer's, then the weighting's: "
        "BERTIN's for random, stepwise, gaussian)", flag="--factor", cli={"type": float, "metavar": "FACTOR"})
    validation_sampling_factor: float | None = _option(
        None, "factor for the validation split (default: not sampled, as BERTIN)", flag="--validation-factor",
        mc4_only=True, cli={"type": float, "metavar": "FACTOR"})
    width: float | None = _option(None, "gaussian width (default 4.5)", cli={"type": float})
    boundaries: Sequence[float] | None = _option(
        None, "three increasing scores (quartile perplexities) for stepwise/gaussian (default: the scorer's)",
        cli={"type": float, "nargs": 3, "metavar": ("B1", "B2", "B3")})
    weighting_options: dict | None = _option(
        None, "a further weighting parameter (repeatable): threshold low=3 / high=... (scores), or with "
        "--calibration top=0.1 / bottom=0.5 (fractions) / band=head|middle|tail (CCNet); pareto alpha=3",
        flag="--weighting-option", key_values=True)
    scorer: Any = _option(
        None, "the quality signal: a registered scorer (mc4_sampling.scoring; default: kenlm, or column with a "
        "score column); in Python also a Scorer or a callable texts -> scores",
        group="other scorers", cli={"choices": "scorers"})
    scorer_model: Any = _option(
        None, "the fastText .bin or transformers folder (or Hub location)", group="other scorers",
        cli={"metavar": "PATH"})
    scorer_options: dict | None = _option(
        None, "a scorer option, e.g. label=__label__hq, task=causal_lm, batch_size=64, higher_is_better=true "
        "(repeatable)", group="other scorers", flag="--scorer-option", key_values=True)
    score_column: str | None = _option(
        None, "a column of the data that already holds the scores (nothing is scored)", group="other scorers",
        cli={"metavar": "NAME"})
    perplexity_model: Any = _option(
        None, "KenLM file, KENLM SP pair, folder with <lang>.arpa.bin/<lang>.sp.model, or Hub location "
        "owner/name[/subfolder][@revision] (default: the embedded Spanish model)", group="perplexity model",
        cli={"nargs": "+", "metavar": "PATH"})
    perplexity_mode: str | None = _option(
        None, "raw (BERTIN), ccnet (line by line) or ccnet_document (CCNet's own numbers; default depends on "
        "the model)", group="perplexity model", cli={"choices": MODES})
    calibration: str | None = _option(
        None, "calibration JSON from `mc4-sampling calibrate` (replaces boundaries/factor/width)",
        cli={"metavar": "FILE"})
    seed: int = _option(2021, "seed of the keep decisions (default 2021)", cli={"type": int})
    max_copies: int = _option(
        1, "upsampling: the most copies of a document; its expected number of copies is min(max_copies, "
        "p(x) * g(m(x))) (default 1: kept or not, no upsampling)", cli={"type": int, "metavar": "N"})
    upsample: str = _option(
        NO_UPSAMPLING, "upsampling: the function g of --upsample-column in the expected copies: {upsample} "
        "(default none: g = 1)", cli={"choices": "upsample", "metavar": "G"})
    upsample_column: str = _option(
        DEFAULT_COLUMN, "upsampling: the metadata column m that g reads (default FineWeb-2's "
        f"{DEFAULT_COLUMN})", cli={"metavar": "NAME"})
    return_perplexity: bool = _option(
        False, "add each kept document's score (perplexity for KenLM, score otherwise)", group="output",
        cli={"action": "store_true", "aliases": ("--return-score",)})
    return_score: bool = _option(
        False, "the same as return_perplexity (the score's column is named after the scorer)", group="output",
        cli=False)
    on_bad_record: str = _option(
        "raise", "what to do with a corrupt or malformed record (raise, or skip and count it; default: raise)",
        group="data source", cli={"choices": BAD_RECORD_POLICIES})


#: every option name, in declaration order
OPTION_NAMES = tuple(f.name for f in fields(SamplingOptions))
#: the options a calibration file replaces
CALIBRATED = ("boundaries", "sampling_factor", "width", "weighting_options")
#: the options that apply to mC4's splits only (not to a corpus, which has one)
MC4_ONLY = tuple(f.name for f in fields(SamplingOptions) if f.metadata["mc4_only"])


def keyword(name: str) -> str:
    """The Python spelling of an option: its keyword, ``sampling_factor``."""
    return name


def flag(name: str) -> str:
    """The command-line spelling of an option: its flag, ``--factor`` (``--<name>`` unless declared)."""
    meta = SamplingOptions.__dataclass_fields__[name].metadata
    return meta["flag"] or "--" + name.replace("_", "-")


def option_help(name: str) -> str:
    """The declared help of an option (``{weightings}``: the weightings registered now)."""
    return (SamplingOptions.__dataclass_fields__[name].metadata["help"].replace("{weightings}", ", ".join(WEIGHTINGS))
            .replace("{upsample}", ", ".join(UPSAMPLE_FUNCTIONS)))


def options_doc(names: Sequence[str] = OPTION_NAMES, indent: str = "        ") -> str:
    """The ``Attributes:`` lines of a docstring, from the declaration (for the classes that take the options)."""
    return "\n".join(f"{indent}{name}: {option_help(name)}." for name in names)


def option(options, name: str):
    """``options.name``, or its :class:`SamplingOptions` default when the object lacks it."""
    return getattr(options, name, SamplingOptions.__dataclass_fields__[name].default)


def wants_score(options) -> bool:
    """Whether kept documents carry their score (``return_perplexity`` or ``return_score``)."""
    return bool(option(options, "return_perplexity") or option(options, "return_score"))


def is_number(x) -> bool:
    """A finite int or float (not a bool, not NaN or infinite)."""
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def is_int(x) -> bool:
    """An int that is not a bool."""
    return isinstance(x, int) and not isinstance(x, bool)


def sampling_options(values: Mapping[str, Any], spell: Spell = keyword, *, defaults: Mapping[str, Any] = (),
                     where: str = "sampling", corpus: bool = True) -> SamplingOptions:
    """Validated :class:`SamplingOptions` of ``values`` (``defaults`` under them): an unknown name, or
    an mC4-only one for a corpus (``corpus``), is a :class:`ConfigError` listing the valid names."""
    unknown = [k for k in values if k not in OPTION_NAMES]
    if unknown:
        raise ConfigError(f"{spell(unknown[0])} is not a {where} option; valid: "
                          f"{', '.join(spell(n) for n in OPTION_NAMES if not (corpus and n in MC4_ONLY))}",
                          option=unknown[0])
    if corpus:
        given = [k for k in MC4_ONLY if values.get(k) is not None]
        if given:
            raise ConfigError(f"{spell(given[0])} applies to mC4's validation split only, not to a corpus (one split)",
                              option=given[0])
    options = SamplingOptions(**{**dict(defaults), **values})
    check_sampling_options(options, spell)
    if not corpus:
        check_mc4_scorer(options, spell)
        check_mc4_upsampling(options, spell)
    return options


#: The fields of an mC4 document.
MC4_COLUMNS = ("text", "timestamp", "url")


def check_mc4_scorer(options, spell: Spell = keyword) -> None:
    """A scorer that reads scores from a column (``score_column``) cannot sample mC4, whose documents have
    only :data:`MC4_COLUMNS`: a :class:`ConfigError` before any reading (not "no finite score" after it)."""
    if ScorerSource.of(options, "es").kind != "column":
        return
    column = options.score_column or dict(options.scorer_options or {}).get("column")
    raise ConfigError(f"{option_value(spell('score_column'), column)}: mC4 has no such column (its documents have "
                      f"only {', '.join(MC4_COLUMNS)}); a score column is read from a corpus that holds one "
                      "(sample --dataset, sample_dataset)", option="score_column", value=column)


def check_mc4_upsampling(options, spell: Spell = keyword) -> None:
    """mC4's documents have no metadata column for ``upsample`` to read (:data:`MC4_COLUMNS` only): a
    :class:`ConfigError` before any reading when a function other than ``none`` is asked for."""
    if option(options, "upsample") == NO_UPSAMPLING:
        return
    column = option(options, "upsample_column")
    raise ConfigError(f"{option_value(spell('upsample_column'), column)}: mC4 has no such column (its documents "
                      f"have only {', '.join(MC4_COLUMNS)}); upsample a corpus that holds one (sample_dataset, "
                      f"sample --dataset), or use {option_value(spell('upsample'), NO_UPSAMPLING)}",
                      option="upsample_column", value=column)


def check_positive(options, names: Sequence[str], spell: Spell = keyword) -> None:
    """Each of ``names`` unset or a finite number > 0 (:class:`ConfigError` naming it)."""
    for name in names:
        value = getattr(options, name)
        if value is not None and not (is_number(value) and value > 0):
            raise ConfigError(f"{option_value(spell(name), value)} is not valid; it must be a finite number > 0",
                              option=name, value=value, expected="> 0")


def check_sampling_options(options, spell: Spell = keyword) -> None:
    """Check every sampling option of ``options`` (a :class:`SamplingOptions` or a subclass), once for
    every entry point: each :class:`ConfigError` names the option by ``spell(name)`` (:func:`keyword`,
    :func:`flag`, or the trainer's ``data.sampling.<name>``) and gives its valid range. ``boundaries``
    is made a tuple of floats. A calibration file replaces ``boundaries``, ``sampling_factor``,
    ``width`` and ``weighting_options`` (but for the fractions a weighting picks among its percentiles)."""

    def invalid(name: str, requirement: str, value=None) -> ConfigError:
        value = getattr(options, name) if value is None else value
        return ConfigError(f"{option_value(spell(name), value)} is not valid; {requirement}", option=name, value=value)

    method = options.sampling_method
    if not isinstance(method, str) or method not in WEIGHTINGS:
        raise invalid("sampling_method", f"choose one of {', '.join(WEIGHTINGS)}")
    check_positive(options, ("sampling_factor", "validation_sampling_factor", "width"), spell)
    b = options.boundaries
    if b is not None:
        if not (isinstance(b, (list, tuple)) and len(b) == 3 and all(is_number(x) for x in b)
                and 0 < b[0] < b[1] < b[2]):
            raise invalid("boundaries", "it must be three increasing positive finite perplexities (b1 < b2 < b3)")
        options.boundaries = tuple(float(x) for x in b)
    weighting_options = options.weighting_options
    if weighting_options is not None:
        if not isinstance(weighting_options, dict):
            raise invalid("weighting_options", "it must be a dict")
        try:  # the weighting checks its own parameters; its messages say weighting_options.<key>
            get_weighting(method).check_parameters(weighting_options)
        except ConfigError as e:
            if spell("weighting_options").startswith("-"):  # a flag gives KEY=VALUE: the key as written
                raise
            raise ConfigError(str(e).replace("weighting_options", spell("weighting_options"))) from None
    _check_scorer(options, spell, invalid)
    if not (is_int(options.seed) and options.seed >= 0):
        raise invalid("seed", "it must be an integer >= 0")
    if not (is_int(option(options, "max_copies")) and option(options, "max_copies") >= 1):
        raise invalid("max_copies", "it must be an integer >= 1 (1: no upsampling)", option(options, "max_copies"))
    upsample = option(options, "upsample")
    if not isinstance(upsample, str) or upsample not in UPSAMPLE_FUNCTIONS:
        raise invalid("upsample", f"choose one of {', '.join(UPSAMPLE_FUNCTIONS)}", upsample)
    column = option(options, "upsample_column")
    if not isinstance(column, str) or not column:
        raise invalid("upsample_column", "it must be a column name", column)
    for name in ("return_perplexity", "return_score"):
        if not isinstance(getattr(options, name), bool):
            raise invalid(name, "it must be True or False")
    if options.perplexity_mode is not None and options.perplexity_mode not in MODES:
        raise invalid("perplexity_mode", f"choose one of {', '.join(MODES)}")
    if not isinstance(options.on_bad_record, str) or options.on_bad_record not in BAD_RECORD_POLICIES:
        raise invalid("on_bad_record", f"choose one of {', '.join(BAD_RECORD_POLICIES)}")
    if options.calibration is not None:
        if not isinstance(options.calibration, (str, os.PathLike)):
            raise invalid("calibration", "it must be a string")
        clashes = [n for n in CALIBRATED if getattr(options, n) is not None]
        # fractions (threshold's top, bottom, band) pick among the file's percentiles: they go with it
        if weighting_options and set(weighting_options) <= set(get_weighting(method).quantile_keys):
            clashes.remove("weighting_options")
        if clashes:
            raise ConfigError(
                f"{option_value(spell('calibration'), options.calibration)} replaces "
                f"{', '.join(map(spell, clashes))}; pass one or the other",
                option="calibration", value=options.calibration, replaces=clashes)


def _check_scorer(options, spell: Spell, invalid) -> None:
    """``scorer``, ``scorer_model``, ``scorer_options``, ``score_column`` and which scorer the KenLM
    options (``perplexity_model``, ``perplexity_mode``) belong to."""
    scorer = options.scorer
    if scorer is not None and not isinstance(scorer, (str, Scorer)) and not callable(scorer):
        raise invalid("scorer", f"give a scorer name ({', '.join(scorer_kinds())}), a Scorer or a callable")
    if isinstance(scorer, str) and scorer not in scorer_kinds():
        raise invalid("scorer", f"choose one of {', '.join(scorer_kinds())}")
    if options.scorer_options is not None and not isinstance(options.scorer_options, dict):
        raise invalid("scorer_options", "it must be a dict")
    column = options.score_column
    if column is not None:
        if not isinstance(column, str) or not column:
            raise invalid("score_column", "it must be a column name")
        if scorer not in (None, "column"):
            raise ConfigError(f"{option_value(spell('score_column'), column)} reads scores from the data, "
                              f"{option_value(spell('scorer'), scorer)} computes them; pass one or the other",
                              option="score_column", value=column)
    kind = ScorerSource.of(options, "es").kind
    if kind != "kenlm":
        given = [n for n in ("perplexity_model", "perplexity_mode") if getattr(options, n) is not None]
        if given:
            raise ConfigError(f"{', '.join(map(spell, given))} apply to the KenLM scorer only; with "
                              f"{option_value(spell('scorer'), kind)} give the model as {spell('scorer_model')}",
                              option=given[0])
    elif options.scorer_model is not None:
        raise ConfigError(f"{spell('scorer_model')} is for the other scorers; give the KenLM model as "
                          f"{spell('perplexity_model')}", option="scorer_model")
    if kind == "column" and column is None and not dict(options.scorer_options or {}).get("column"):
        raise ConfigError(f"{option_value(spell('scorer'), 'column')} needs {spell('score_column')} (the column "
                          "that holds the scores)", option="scorer")
