"""Keep probabilities and the deterministic accept/reject draw.

A document with perplexity ``x`` is kept when a uniform draw ``u`` in [0, 1) is below its keep
probability ``p(x)``. The functions here are pure and vectorised: they take scalars or NumPy
arrays and return the same shape.

The draw ``u`` is a pure function of (seed, language, split, shard, position in shard), so the
same documents are kept however the stream is split over workers or nodes, or restarted.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

from .errors import ConfigError

METHODS = ("none", "random", "stepwise", "gaussian")

#: BERTIN's defaults for ``sampling_factor`` per method.
DEFAULT_FACTORS = {"random": 0.5, "stepwise": 1.5e5, "gaussian": 0.78}
#: BERTIN's default gaussian width (the ``width`` in ``exp(-(1/width) * r**2)``).
DEFAULT_WIDTH = 9 / 2
#: BERTIN's Spanish quartiles for CCNet's ``es.arpa.bin`` scored in ``raw`` mode.
BERTIN_ES_BOUNDARIES = (536394.99320948, 662247.50212365, 919250.87225178)


def random_keep_probability(x, factor: float):
    """``p(x) = factor`` whatever the perplexity."""
    return np.broadcast_to(np.float64(factor), np.shape(x)).astype(np.float64)


def stepwise_keep_probability(x, factor: float, boundaries: Sequence[float]):
    """Piecewise-constant weighting over the quartiles ``(b1, b2, b3)``::

        x <= b1       : p = factor / b1
        b1 < x < b2   : p = factor / (b2 - b1)
        b2 <= x < b3  : p = factor / (b3 - b2)
        x >= b3       : p = factor / (10 * b3)

    Every ``x`` falls in exactly one branch (a perplexity equal to a boundary included).
    ``p`` may exceed 1, which means "always kept".
    """
    b1, b2, b3 = boundaries
    x = np.asarray(x, dtype=np.float64)
    return np.select(
        [x <= b1, x < b2, x < b3],
        [factor / b1, factor / (b2 - b1), factor / (b3 - b2)],
        default=factor / (10 * b3),
    )


def gaussian_keep_probability(x, factor: float, width: float, median: float):
    """``p(x) = factor * exp(-(1 / width) * ((x - m) / m) ** 2)`` with ``m`` the median perplexity."""
    x = np.asarray(x, dtype=np.float64)
    return factor * np.exp(-(1.0 / width) * ((x - median) / median) ** 2)


def keep_probability(x, method: str, factor: float, boundaries=None, width: float = DEFAULT_WIDTH):
    """Dispatch to the weighting named by ``method`` (``none`` keeps everything: ``p = 1``)."""
    if method == "none":
        return np.ones(np.shape(x))
    if method == "random":
        return random_keep_probability(x, factor)
    if method == "stepwise":
        return stepwise_keep_probability(x, factor, boundaries)
    if method == "gaussian":
        return gaussian_keep_probability(x, factor, width, boundaries[1])
    raise ConfigError(f"sampling_method={method!r} is not valid; choose one of {', '.join(METHODS)}")


def max_keep_probability(method: str, factor: float, boundaries=None) -> float:
    """The largest ``p(x)`` the weighting can give, capped at 1.

    A draw ``u`` at or above it rejects the document whatever its perplexity, so the document
    need not be scored.
    """
    if method == "none":
        return 1.0
    if method in ("random", "gaussian"):  # the gaussian peaks at x = m with p = factor
        return min(1.0, float(factor))
    if method == "stepwise":
        b1, b2, b3 = boundaries
        return min(1.0, float(factor) * max(1 / b1, 1 / (b2 - b1), 1 / (b3 - b2), 1 / (10 * b3)))
    raise ConfigError(f"sampling_method={method!r} is not valid; choose one of {', '.join(METHODS)}")


# --- the deterministic draw -------------------------------------------------------------------

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def shard_key(seed: int, language: str, split: str, shard: int) -> int:
    """A 64-bit key for one shard: the first 8 bytes of BLAKE2b of ``seed/language/split/shard``."""
    digest = hashlib.blake2b(f"{seed}/{language}/{split}/{shard}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _splitmix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele, Lea & Flood 2014), a bijective 64-bit mixer."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def uniform_draws(key: int, positions) -> np.ndarray:
    """``u = mix(key + mix(position)) / 2**64`` in [0, 1) for each position, with 53 bits kept.

    A counter-based generator: each draw depends on the key and the position alone.
    """
    pos = np.asarray(positions, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = _splitmix64(np.uint64(key) + _splitmix64(pos))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
