"""``score_column="score"``: the scores are already a column of the data; nothing is scored."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .base import Scorer, as_bool, check_options, register_scorer


def _to_float(value) -> float:
    if isinstance(value, bool) or value is None:
        return math.nan
    if isinstance(value, (int, float, np.integer, np.floating)):
        return float(value)
    return math.nan


class ColumnScorer(Scorer):
    """Reads ``column``; a missing, null, NaN, infinite or non-numeric value gives NaN (a bad record)."""

    kind = "column"

    def __init__(self, column: str, higher_is_better: bool = True):
        self.input_column = column
        self.score_name = column
        self.higher_is_better = higher_is_better
        self.name = f"column {column!r}"

    @property
    def model_id(self) -> str:
        return f"column:{self.input_column}"

    def score(self, values: Sequence) -> np.ndarray:
        """``float(value)`` of each value; NaN for null, NaN, infinite and non-numeric values."""
        if all(type(v) is float for v in values):  # the common case, converted at once
            out = np.array(values, dtype=np.float64)
        else:
            out = np.fromiter(map(_to_float, values), dtype=np.float64, count=len(values))
        out[~np.isfinite(out)] = np.nan
        return out

    def bad_value(self, value) -> str:
        return f"column {self.input_column!r} (score_column) holds {value!r:.40}, not a finite number"


@register_scorer("column")
def _column(model, options, language) -> ColumnScorer:
    check_options("column", options, ("column", "higher_is_better"))
    return ColumnScorer(options.get("column") or model, as_bool(options, "higher_is_better", True))
