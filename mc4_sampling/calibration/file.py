"""Calibration files: the :class:`Calibration` record, its JSON format, writing and reading.

Reading needs neither SciPy nor Matplotlib, so the sampler can use a calibration file without
the ``calibrate`` extra. The format is described in docs/calibration.md ("calibration.json").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..common.outputs import atomic_path, make_output_dir
from ..errors import ConfigError
from ..perplexity import MODES
from ..upsampling import NO_UPSAMPLING
from ..weightings import WEIGHTINGS, are_quartiles
from .fit import calibratable_methods

#: Value of the ``format`` field of a calibration file.
CALIBRATION_FORMAT = "mc4-sampling-calibration"
#: Version of the calibration file layout; bumped on incompatible changes.
CALIBRATION_FORMAT_VERSION = 1


@dataclass
class Calibration:
    """A calibration file: the model it was scored with, the quartiles and per-method parameters."""

    model_id: str
    mode: str | None
    boundaries: tuple[float, float, float] | None
    methods: dict[str, dict]
    language: str | None = None
    split: str | None = None
    model_spec: str | None = None
    documents_scored: int | None = None
    seed: int | None = None
    target_rate: float | None = None
    deciles: list[float] = field(default_factory=list)
    percentiles: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)
    path: str | None = None
    #: the scorer's kind (``kenlm``, ``fasttext``, ``column``...) and direction
    scorer: str = "kenlm"
    higher_is_better: bool = False

    def check_model(self, model_id: str, mode: str) -> None:
        """Raise :class:`ConfigError` unless the calibration was made with this model and mode."""
        where = f"calibration file {self.path}" if self.path else "calibration"
        if model_id != self.model_id:
            spec = " ".join(self.model_spec) if isinstance(self.model_spec, list) else self.model_spec
            made_with = (f"give the model it was made with (--perplexity-model / perplexity_model= {spec}) or "
                         if spec else "")
            raise ConfigError(
                f"{where} was made with perplexity model {self.model_id!r}, but the model in use "
                f"is {model_id!r}; perplexities of different models are not comparable: "
                f"{made_with}run `mc4-sampling calibrate` with this model"
            )
        if mode != self.mode:
            raise ConfigError(
                f"{where} was made in perplexity mode {self.mode!r}, but the mode in use is "
                f"{mode!r}; use perplexity_mode={self.mode!r} or recalibrate"
            )

    @property
    def token_budget(self) -> dict | None:
        """The token budget the factors were solved for (``tokens``, ``total_docs``, the upsampling
        ``max_copies``/``upsample``/``upsample_column``...), None for a keep rate (every older file)."""
        budget = self.extra.get("token_budget")
        return budget if isinstance(budget, dict) else None

    def check_upsampling(self, upsampling) -> None:
        """Raise :class:`ConfigError` unless a run's ``upsampling`` (an
        :class:`~mc4_sampling.upsampling.Upsampling` or None) is the one a token budget was solved with:
        the factors meet the budget only with the same copies. Keep-rate files accept any."""
        budget = self.token_budget
        if budget is None:
            return
        want = (int(budget.get("max_copies") or 1), budget.get("upsample") or NO_UPSAMPLING)
        got = (upsampling.max_copies, upsampling.function) if upsampling is not None else (1, NO_UPSAMPLING)
        column = budget.get("upsample_column")
        same_column = column is None or upsampling is None or upsampling.column == column
        if want != got or not same_column:
            where = f"calibration file {self.path}" if self.path else "calibration"
            col = f" --upsample-column {column}" if column else ""
            raise ConfigError(
                f"{where} solved its factors for a budget of {budget.get('tokens', 0):.6g} words with "
                f"--max-copies {want[0]} --upsample {want[1]}{col}, but this run asks --max-copies {got[0]} "
                f"--upsample {got[1]}: give the same upsampling (max_copies={want[0]}, upsample={want[1]!r}) "
                "or recalibrate")

    def parameters(self, method: str) -> dict:
        """``{"factor": .., "width": ..?}`` for ``method``; :class:`ConfigError` if not calibrated."""
        if method not in self.methods:
            raise ConfigError(
                f"sampling_method={method!r} is not in the calibration file "
                f"{self.path or ''} (it holds: {', '.join(self.methods) or 'none'})"
            )
        return dict(self.methods[method])

    def to_dict(self) -> dict:
        d = {
            "format": CALIBRATION_FORMAT,
            "format_version": CALIBRATION_FORMAT_VERSION,
            "model": {"model_id": self.model_id, "mode": self.mode, "spec": self.model_spec},
            "language": self.language,
            "split": self.split,
            "documents_scored": self.documents_scored,
            "seed": self.seed,
            "target_rate": self.target_rate,
            "boundaries": None if self.boundaries is None else list(self.boundaries),
            "deciles": list(self.deciles),
            "percentiles": list(self.percentiles),
            "methods": self.methods,
        }
        if self.scorer != "kenlm":  # KenLM files stay as they were
            d["model"].update(scorer=self.scorer, direction="higher" if self.higher_is_better else "lower")
        d.update(self.extra)
        return d


def save_calibration(calibration: Calibration, path) -> Path:
    """Write ``calibration`` as indented JSON to ``path`` (parents created); return the path."""
    path = Path(path)
    make_output_dir(path.parent)
    with atomic_path(path) as tmp:  # renamed when complete; OutputError naming the path on failure
        tmp.write_text(json.dumps(calibration.to_dict(), indent=2) + "\n", encoding="utf-8")
    calibration.path = str(path)
    return path


def _bad(path, what: str) -> ConfigError:
    return ConfigError(f"calibration={str(path)!r} is not a valid calibration file: {what}")


def load_calibration(path) -> Calibration:
    """Read and validate a calibration file written by ``mc4-sampling calibrate``.

    Raises :class:`ConfigError` naming the file when it is missing, not JSON, of another format
    version, or holds invalid boundaries or parameters.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"calibration={str(path)!r}: file not found") from None
    except OSError as e:
        raise ConfigError(f"calibration={str(path)!r}: cannot be read ({e})") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise _bad(path, f"not JSON ({e})") from None
    if not isinstance(d, dict) or d.get("format") != CALIBRATION_FORMAT:
        raise _bad(path, f"the field format is not {CALIBRATION_FORMAT!r}")
    version = d.get("format_version")
    if version != CALIBRATION_FORMAT_VERSION:
        raise _bad(path, f"format_version {version!r} is not supported "
                         f"(this version reads {CALIBRATION_FORMAT_VERSION}); recalibrate")
    model = d.get("model")
    scorer = model.get("scorer", "kenlm") if isinstance(model, dict) else "kenlm"
    kenlm = scorer == "kenlm"
    if not isinstance(model, dict) or not isinstance(model.get("model_id"), str) \
            or (kenlm and model.get("mode") not in MODES):
        raise _bad(path, "model must hold a model_id string and a mode 'raw' or 'ccnet' (or 'ccnet_document')")
    b = d.get("boundaries")
    boundaries = None
    if b is not None or kenlm:
        try:
            boundaries = tuple(float(v) for v in b)
        except (TypeError, ValueError):
            raise _bad(path, "boundaries must be three numbers") from None
        if not are_quartiles(boundaries, positive=kenlm):
            raise _bad(path, f"boundaries must be three increasing {'positive ' if kenlm else ''}numbers, got {b!r}")
    methods = d.get("methods")
    if not isinstance(methods, dict):
        raise _bad(path, "methods must be an object")
    budget = d.get("token_budget")
    if budget is not None:
        tokens = budget.get("tokens") if isinstance(budget, dict) else None
        copies = budget.get("max_copies", 1) if isinstance(budget, dict) else None
        if not (isinstance(tokens, (int, float)) and math.isfinite(tokens) and tokens > 0
                and isinstance(copies, int) and copies >= 1):
            raise _bad(path, "token_budget must hold tokens > 0 and max_copies >= 1")
    for name, params in methods.items():
        if name not in calibratable_methods() or not isinstance(params, dict):
            raise _bad(path, f"methods.{name} is not a calibrated method")
        for key in ("factor",) + (("width",) if WEIGHTINGS[name].uses_width else ()):
            v = params.get(key)
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise _bad(path, f"methods.{name}.{key} must be a positive number, got {v!r}")
    known = {"format", "format_version", "model", "language", "split", "documents_scored",
             "seed", "target_rate", "boundaries", "deciles", "percentiles", "methods"}
    return Calibration(
        model_id=model["model_id"], mode=model["mode"], boundaries=boundaries,
        methods={k: dict(v) for k, v in methods.items()},
        language=d.get("language"), split=d.get("split"), model_spec=model.get("spec"),
        documents_scored=d.get("documents_scored"), seed=d.get("seed"), scorer=scorer,
        higher_is_better=model.get("direction") == "higher",
        target_rate=d.get("target_rate"), deciles=list(d.get("deciles") or []),
        percentiles=list(d.get("percentiles") or []),
        extra={k: v for k, v in d.items() if k not in known}, path=str(p),
    )
