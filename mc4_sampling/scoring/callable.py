"""``scorer=my_function``: any Python callable from a list of texts to one number each."""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

import numpy as np

from ..errors import ConfigError
from .base import Scorer


class CallableScorer(Scorer):
    """Wraps ``fn(texts) -> sequence of floats`` (a plain function pickles by name, so it runs in
    ``DataLoader`` workers; a lambda does not).

    Its identity is ``callable:<module>.<qualname>`` plus a hash of the function's bytecode, so that
    an edited function gives another calibration identity.
    """

    kind = "callable"

    def __init__(self, fn: Callable, higher_is_better: bool = True, name: str | None = None):
        if not callable(fn):
            raise ConfigError(f"scorer={fn!r} is not valid; give a scorer name, a Scorer or a callable")
        self.fn = fn
        self.higher_is_better = higher_is_better
        self.name = name or f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"

    @property
    def model_id(self) -> str:
        code = getattr(getattr(self.fn, "__code__", None), "co_code", b"")
        return f"callable:{self.name}#{hashlib.blake2b(code, digest_size=8).hexdigest()}"

    def score(self, values: Sequence) -> np.ndarray:
        out = self.fn(list(values))
        try:
            out = np.asarray(out, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ConfigError(f"scorer {self.name} returned {type(out).__name__}, not numbers") from None
        if out.size != len(values):
            raise ConfigError(f"scorer {self.name} returned {out.size} scores for {len(values)} documents; "
                              "it must return one number per text")
        out = out.copy()
        out[~np.isfinite(out)] = np.nan
        return out
