"""argparse ``type=`` checks that name the valid range: ``--batch-size 0`` is refused with
``argument --batch-size: 0 is out of range: it must be an integer >= 1`` (exit 2, before any work)."""

from __future__ import annotations

import argparse
import math
from typing import Callable, Optional


def int_at_least(low: int, why: str = "") -> Callable[[str], int]:
    """An integer ``>= low`` (``why``: a reason shown after the range)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"{value} is out of range: it must be an integer >= {low}{why}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def finite_float(low: Optional[float] = None, high: Optional[float] = None, low_open: bool = False,
                 high_open: bool = False) -> Callable[[str], float]:
    """A finite number in the range [low, high] (``low_open``/``high_open``: the bound itself excluded)."""
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    rule = "a finite number" + (" " + " and ".join(parts) if parts else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        bad = not math.isfinite(value)
        bad = bad or (low is not None and (value <= low if low_open else value < low))
        bad = bad or (high is not None and (value >= high if high_open else value > high))
        if bad:
            raise argparse.ArgumentTypeError(f"{text} is out of range: it must be {rule}")
        return value

    parse.__name__ = rule
    return parse


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
positive_float = finite_float(0, low_open=True)
