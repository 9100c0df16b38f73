"""Reading a :class:`~trainer.config.TrainerConfig`: YAML files, shipped config names, ``--set`` overrides.

``load_config(path, overrides)`` reads the YAML mapping (a file path, or the name of a file in
``trainer/configs/``), sets every ``section.key=value`` override in it (the value is read as
YAML), builds the dataclasses checking each key against its annotation, then runs
:func:`~trainer.config.validate` (the core fields, the model section by its family) and
:func:`~trainer.research.validate_extensions` (each research extension's options). An unknown key
raises :class:`~trainer.errors.ConfigError` naming the valid keys of its section; a value of the
wrong type, the expected type. Only lossless coercions are made: ``3.0`` -> ``3`` for integers,
``"6e-4"`` (a string in YAML 1.1) -> ``6e-4`` for numbers, a single string -> a list of one for lists.
"""

from __future__ import annotations

import argparse
import collections.abc
import dataclasses
import os
import types
import typing
from typing import Any, Literal, Optional, Union

import yaml

from .config import ModelOptions, TrainerConfig, validate
from .errors import ConfigError
from .models import config_class as model_config_class, family_names
from .models.base import DEFAULT_TYPE
from .research import validate_extensions

#: The shipped configs (``tiny-cpu`` -> ``trainer/configs/tiny-cpu.yaml``).
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


# ---------------------------------------------------------------------------------------------
# Building dataclasses from plain dicts with type checking


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is not None:
        return repr(tp).replace("typing.", "")
    return getattr(tp, "__name__", repr(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp`` (coercing only lossless cases)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            if dataclasses.is_dataclass(arg) and isinstance(value, dict):  # its own error names the wrong key
                return _coerce(value, arg, key)
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                pass
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"config key '{key}': expected {_type_name(tp)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping of {_valid_keys(tp)}, got {value!r}")
        return from_dict(tp, value, prefix=key + ".")
    if origin in (list, collections.abc.Sequence):  # the sampler's Sequence[float] is read as a list
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):  # a single path is a list of one
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}': expected a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"config key '{key}': expected a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key '{key}': expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(float(value)) if float(value).is_integer() else int(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}': expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "6e-4" as a string
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key '{key}': expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key '{key}': expected a string, got {value!r}")
    raise AssertionError(f"unsupported annotation {tp!r} for {key}")  # pragma: no cover


def _valid_keys(cls) -> str:
    return ", ".join(f.name for f in dataclasses.fields(cls))


def section_class(cls, data: dict, prefix: str = ""):
    """The dataclass a section of annotation ``cls`` is read as: the ``model`` section's follows its ``type``."""
    if cls is ModelOptions:
        kind = data.get("type", DEFAULT_TYPE) if isinstance(data, dict) else DEFAULT_TYPE
        try:
            return model_config_class(kind)
        except ConfigError:
            raise ConfigError(f"config key '{prefix}type': expected one of {', '.join(map(repr, family_names()))}, "
                              f"got {kind!r}") from None
    return cls


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ConfigError."""
    cls = section_class(cls, data, prefix)
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in names]
    former = getattr(cls, "FORMER_KEYS", {})
    renamed = [k for k in unknown if k in former]
    if renamed:
        raise ConfigError(f"config key '{prefix}{renamed[0]}' is now '{prefix}{former[renamed[0]]}' (the sampler's "
                          f"name, mc4_sampling.options.SamplingOptions); rename it")
    if unknown:
        where = f"in section '{prefix[:-1]}'" if prefix else "at the top level"
        raise ConfigError(
            f"unknown config key '{prefix}{unknown[0]}' {where}; valid keys: {_valid_keys(cls)}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# Overrides and files


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"a.b=value"`` -> (["a", "b"], value parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_override(data: dict, path: list[str], value: Any) -> None:
    """Set ``data[path[0]][path[1]]... = value`` checking every level is a known key."""
    cls = TrainerConfig
    node = data
    for depth, part in enumerate(path):
        key = ".".join(path[: depth + 1])
        if cls is not None:
            names = {f.name for f in dataclasses.fields(cls)}
            former = getattr(cls, "FORMER_KEYS", {})
            if part in former:
                new = ".".join(path[:depth] + [former[part]])
                raise ConfigError(f"config key '{key}' is now '{new}' (the sampler's name, "
                                  "mc4_sampling.options.SamplingOptions); rename it")
            if part not in names:
                where = ".".join(path[:depth]) or "the top level"
                raise ConfigError(f"unknown config key '{key}' (in {where}); valid keys: {_valid_keys(cls)}")
        if depth == len(path) - 1:
            node[part] = value
            return
        hint = typing.get_type_hints(cls)[part] if cls is not None else None
        if cls is not None and not dataclasses.is_dataclass(hint) and typing.get_origin(hint) is not dict:
            raise ConfigError(f"config key '{key}' is a value, not a section")
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"config key '{key}' is not a mapping")
        cls = section_class(hint, node, key + ".") if dataclasses.is_dataclass(hint) else None


def resolve_config_path(path: str, study: bool = False) -> str:
    """A file path, or the name of a shipped config (``tiny-cpu`` -> trainer/configs/tiny-cpu.yaml); the
    error lists the shipped trainer configs, or with ``study`` the study configs (``study-*.yaml``)."""
    if os.path.exists(path):
        return path
    shipped = os.path.join(CONFIG_DIR, path if path.endswith(".yaml") else path + ".yaml")
    if os.path.exists(shipped):
        return shipped
    raise ConfigError(f"config file {path!r} not found (shipped configs: {', '.join(shipped_configs(study))})")


def shipped_configs(study: bool = False) -> list[str]:
    """The names of the shipped trainer configs, by model family (RoBERTa's first, as registered), then by
    name; with ``study`` the study configs (``study-*.yaml``)."""
    families = list(family_names())

    def family(name: str) -> int:
        try:
            with open(os.path.join(CONFIG_DIR, name + ".yaml"), encoding="utf-8") as f:
                kind = ((yaml.safe_load(f) or {}).get("model") or {}).get("type", DEFAULT_TYPE)
        except (OSError, yaml.YAMLError, AttributeError):
            kind = None
        return families.index(kind) if kind in families else len(families)

    names = [n[:-5] for n in os.listdir(CONFIG_DIR) if n.endswith(".yaml") and n.startswith("study-") == study]
    return sorted(names, key=lambda n: (family(n), n))


def yaml_error(path: str, error: yaml.YAMLError) -> ConfigError:
    """``<path>:<line>:<column>: not valid YAML: <problem> (<context>)``, the place counted from 1 (the
    library's message spans several lines, of which a console line would keep only the first)."""
    mark = getattr(error, "problem_mark", None)
    where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    context = getattr(error, "context", None)
    return ConfigError(f"{where}: not valid YAML: {problem}" + (f" ({context})" if context else ""))


def load_config(path: Optional[str] = None, overrides: Optional[list[str]] = None) -> TrainerConfig:
    """Read a YAML file (or start from the defaults), apply overrides, check and validate."""
    data: dict = {}
    if path is not None:
        path = resolve_config_path(path)
        if os.path.isdir(path):
            raise ConfigError(f"--config {path!r} is a folder; give a YAML file or a shipped config name")
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise yaml_error(path, e) from None
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) else "not a text file"
            raise ConfigError(f"--config {path!r}: cannot read it: {reason}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping")
    for text in overrides or []:
        keys, value = parse_override(text)
        apply_override(data, keys, value)
    cfg = from_dict(TrainerConfig, data)
    validate(cfg)  # the core fields
    validate_extensions(cfg)  # the research options, each checked by its extension (trainer.research)
    return cfg


def add_config_arguments(parser: argparse.ArgumentParser, required: bool = False,
                         help: str = "config YAML file or shipped config name (tiny-cpu, roberta-base-128, ...)",
                         ) -> None:
    """``--config`` and repeatable ``--set KEY=VALUE``: the two arguments of :func:`load_config`."""
    parser.add_argument("--config", required=required, help=help)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="config override, e.g. training.max_steps=100 (repeatable; the value is YAML)")
