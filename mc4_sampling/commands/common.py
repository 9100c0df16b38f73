"""Options shared by several subcommands, mapped onto :class:`Mc4SamplingConfig` fields."""

from __future__ import annotations

import argparse
import json

from ..builder import Mc4Sampling, Mc4SamplingConfig
from ..errors import ConfigError
from ..perplexity import MODES
from ..reader import BAD_RECORD_POLICIES
from ..scoring import scorer_kinds
from ..weightings import WEIGHTINGS


def add_source_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data source")
    g.add_argument("--lang", nargs="+", default=["es"], metavar="LANG",
                   help="mC4 language code(s), e.g. es, or several: es ca (default: es)")
    g.add_argument("--data-dir", help="local folder laid out like allenai/c4's multilingual/ (e.g. the bundled "
                   "sample: see `python -c 'import mc4_sampling; print(mc4_sampling.SAMPLE_DATA_DIR)'`)")
    g.add_argument("--base-url", help="HTTP(S) mirror of allenai/c4's multilingual/ folder (default: the Hub)")
    g.add_argument("--shards", type=int, nargs="+", metavar="I", help="read only these shard indices")
    g.add_argument("--on-bad-record", choices=BAD_RECORD_POLICIES, default="raise",
                   help="what to do with a corrupt or malformed record (default: raise)")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("perplexity model")
    g.add_argument("--perplexity-model", nargs="+", metavar="PATH",
                   help="KenLM file, KENLM SP pair, folder with <lang>.arpa.bin/<lang>.sp.model, or Hub "
                   "location owner/name[/subfolder][@revision] (default: the embedded Spanish model)")
    g.add_argument("--perplexity-mode", choices=MODES,
                   help="raw (BERTIN), ccnet (line by line) or ccnet_document (CCNet's own numbers; "
                   "default depends on the model)")
    g = parser.add_argument_group("other scorers")
    g.add_argument("--scorer", choices=[k for k in scorer_kinds() if k != "callable"],
                   help="the quality signal (default: kenlm, or column with --score-column)")
    g.add_argument("--scorer-model", metavar="PATH", help="the fastText .bin or transformers folder (or Hub location)")
    g.add_argument("--scorer-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a scorer option, e.g. label=__label__hq, task=causal_lm, batch_size=64 (repeatable)")
    g.add_argument("--score-column", metavar="NAME", help="a column of --dataset that already holds the scores")


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


def scorer_kwargs(args) -> dict:
    """The scorer options of parsed arguments, as :class:`~mc4_sampling.options.SamplingOptions` fields."""
    return dict(scorer=getattr(args, "scorer", None), scorer_model=getattr(args, "scorer_model", None),
                scorer_options=key_values(getattr(args, "scorer_option", None), "--scorer-option"),
                score_column=getattr(args, "score_column", None))


def add_sampling_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("sampling")
    g.add_argument("--method", choices=tuple(WEIGHTINGS), default="gaussian", help="weighting (default: gaussian)")
    g.add_argument("--weighting-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a further weighting parameter (repeatable): threshold low=3 / high=... (scores), or with "
                   "--calibration top=0.1 / bottom=0.5 (fractions) / band=head|middle|tail (CCNet); pareto alpha=3")
    g.add_argument("--factor", type=float, help="sampling factor (default: BERTIN's for the method)")
    g.add_argument("--validation-factor", type=float, help="factor for the validation split (default: not sampled)")
    g.add_argument("--width", type=float, help="gaussian width (default 4.5)")
    g.add_argument("--boundaries", type=float, nargs=3, metavar=("B1", "B2", "B3"),
                   help="quartile perplexities (default: those of the model)")
    g.add_argument("--calibration",
                   help="calibration JSON from `mc4-sampling calibrate` (replaces boundaries/factor/width)")
    g.add_argument("--seed", type=int, default=2021, help="seed of the keep decisions (default 2021)")


def model_spec(args):
    spec = getattr(args, "perplexity_model", None)
    if spec is None:
        return None
    return spec[0] if len(spec) == 1 else tuple(spec)


def build_config(args, **overrides) -> Mc4SamplingConfig:
    """A validated builder config from parsed options (through the builder, as load_dataset does)."""
    kwargs = dict(
        languages=list(args.lang),
        data_dir=args.data_dir,
        base_url=args.base_url,
        shards=args.shards,
        on_bad_record=args.on_bad_record,
        perplexity_model=model_spec(args),
        perplexity_mode=args.perplexity_mode,
    )
    if hasattr(args, "method"):
        kwargs.update(
            sampling_method=args.method,
            sampling_factor=args.factor,
            validation_sampling_factor=args.validation_factor,
            width=args.width,
            boundaries=tuple(args.boundaries) if args.boundaries else None,
            calibration=args.calibration,
            seed=args.seed,
            weighting_options=key_values(args.weighting_option, "--weighting-option"),
        )
    kwargs.update(scorer_kwargs(args))
    kwargs.update(overrides)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return Mc4Sampling(config_name="+".join(args.lang), **kwargs).config
