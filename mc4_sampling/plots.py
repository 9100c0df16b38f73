"""PNG pictures of score distributions (perplexity or any scorer's) and of what each weighting keeps
(Matplotlib, headless).

Matplotlib is imported only inside the functions, and only through its object-oriented API with
the Agg canvas: nothing here touches ``pyplot`` or the user's interactive backend. It is part of
the ``calibrate`` extra (``pip install 'mc4-sampling[calibrate]'``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .common.outputs import atomic_path, make_output_dir
from .errors import ConfigError
from .weightings import DEFAULT_WIDTH, WEIGHTINGS, keep_probability

logger = logging.getLogger(__name__)

#: Colours of the curves that are no weighting's (colour-blind-safe Okabe-Ito palette); each
#: weighting's curve has its own colour (:attr:`~mc4_sampling.weightings.Weighting.color`).
COLORS = {
    "original": "#7f7f7f",
    "observed": "#CC79A7",
    "expected": "#000000",
    "quartile": "#E69F00",
}


def percent(fraction: float, digits: int = 3) -> str:
    """``fraction`` as a percentage with ``digits`` significant digits (``0.115833`` -> ``"11.6%"``), more where
    fewer would round it to 0 % or 100 % without being so (``0.999`` -> ``"99.9%"``, ``0.9999`` -> ``"99.99%"``)."""
    value = 100 * float(fraction)
    if not np.isfinite(value):
        return f"{value}%"
    for d in range(digits, 10):
        text = f"{value:.{d}g}"
        if "e" not in text and (float(text) not in (0.0, 100.0) or value in (0.0, 100.0)):
            return text + "%"
    return f"{value:.3g}%"


def _figure(nrows: int = 1, height: float = 4.5, width: float = 9.0):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the environment
        raise ConfigError(
            "pictures need matplotlib: pip install 'mc4-sampling[calibrate]'"
        ) from None
    fig = Figure(figsize=(width, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, 1, squeeze=False)[:, 0]
    return fig, axes


def _save(fig, path) -> Path:
    path = Path(path)
    make_output_dir(path.parent)
    with atomic_path(path) as tmp:  # renamed when complete
        fig.savefig(tmp, dpi=110)
    logger.info("wrote %s", path)
    return path


def bins_for(values, n_bins: int = 60, log_scale: bool = True) -> np.ndarray:
    """:func:`log_bins` for perplexities, else ``n_bins`` equal bins over the finite ``values``."""
    if log_scale:
        return log_bins(values, n_bins)
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ConfigError("no finite scores to plot")
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, n_bins + 1)


def _centers(bins, log_scale: bool):
    return np.sqrt(bins[:-1] * bins[1:]) if log_scale else (bins[:-1] + bins[1:]) / 2


def log_bins(values, n_bins: int = 60) -> np.ndarray:
    """``n_bins`` logarithmically spaced bin edges covering the positive ``values``."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x) & (x > 0)]
    if x.size == 0:
        raise ConfigError("no positive perplexities to plot")
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo * (1 + 1e-9):
        lo, hi = lo / 1.1, hi * 1.1
    return np.geomspace(lo, hi * (1 + 1e-9), n_bins + 1)


def _quartile_lines(ax, boundaries: Sequence[float] | None, label: bool = True) -> None:
    for name, b, style in zip(("Q1", "Q2 (median)", "Q3"), boundaries or (), (":", "--", ":")):
        ax.axvline(b, color=COLORS["quartile"], linestyle=style, linewidth=1.6,
                   label=f"{name} = {b:,.4g}" if label else None)


def _log_x(ax, xlabel: str = "perplexity (log scale)", log_scale: bool = True) -> None:
    if log_scale:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel if log_scale else "score")
    ax.grid(True, which="major", alpha=0.3)


def plot_perplexity_histogram(perplexities, boundaries: Sequence[float], path, *,
                              title: str | None = None, deciles: Sequence[float] = (),
                              n_bins: int = 60, log_scale: bool = True) -> Path:
    """Histogram of the scored perplexities on a log x-axis (scores: linear), with the quartile lines."""
    x = np.asarray(perplexities, dtype=np.float64)
    bins = bins_for(x, n_bins, log_scale)
    fig, (ax,) = _figure()
    ax.hist(x, bins=bins, color=COLORS["original"], alpha=0.75, label=f"{x.size:,} scored documents")
    for i, d in enumerate(deciles):
        ax.axvline(d, color="#555555", linewidth=0.6, alpha=0.5,
                   label="deciles" if i == 0 else None)
    _quartile_lines(ax, boundaries)
    _log_x(ax, log_scale=log_scale)
    ax.set_ylabel("documents per bin")
    ax.set_title(title or "Perplexity of the scored documents, with quartiles")
    ax.legend(loc="upper right")
    return _save(fig, path)


def plot_expected_distributions(perplexities, boundaries: Sequence[float],
                                methods: Mapping[str, Mapping], path, *,
                                title: str | None = None, n_bins: int = 60, log_scale: bool = True) -> Path:
    """What each calibrated weighting is expected to keep, overlaid on the original distribution.

    ``methods`` maps a method name to its parameters (``factor``, and ``width`` for a weighting that has one), as
    in a calibration file. Three panels: the keep probability ``min(1, p(x))``; the expected number
    of documents kept per bin (the sum of ``min(1, p)``) against all scored documents; and the same
    distributions normalised (fraction per bin; the bins are equal in log x) to compare shapes.
    """
    x = np.asarray(perplexities, dtype=np.float64)
    bins = bins_for(x, n_bins, log_scale)
    centers = _centers(bins, log_scale)
    fig, (ax_p, ax_n, ax_d) = _figure(3, height=3.6)
    grid = np.geomspace(bins[0], bins[-1], 800) if log_scale else np.linspace(bins[0], bins[-1], 800)
    ax_n.hist(x, bins=bins, color=COLORS["original"], alpha=0.45,
              label=f"all scored documents ({x.size:,})")
    ax_d.hist(x, bins=bins, weights=np.full(x.size, 1 / x.size), color=COLORS["original"],
              alpha=0.45, label="all scored documents")
    for method in WEIGHTINGS:
        if method not in methods:
            continue
        params = methods[method]
        factor = float(params["factor"])
        width = float(params.get("width", DEFAULT_WIDTH))
        extra = {k: params.get(k, d) for k, d in WEIGHTINGS[method].parameters.items()}
        p_grid = np.minimum(1.0, keep_probability(grid, method, factor, boundaries, width, extra))
        q = np.minimum(1.0, keep_probability(x, method, factor, boundaries, width, extra))
        rate = float(q.mean())
        desc = f"factor={factor:.4g}" + (f", width={width:.4g}" if WEIGHTINGS[method].uses_width else "")
        desc += "".join(f", {k}={v:.4g}" for k, v in extra.items() if v is not None)
        color = WEIGHTINGS[method].color
        ax_p.plot(grid, p_grid, color=color, linewidth=2, label=f"{method} ({desc})")
        kept, _ = np.histogram(x, bins=bins, weights=q)
        ax_n.step(centers, kept, where="mid", color=color, linewidth=2,
                  label=f"{method}: expected {percent(rate)} kept ({q.sum():,.0f} docs)")
        if q.sum() > 0:
            ax_d.step(centers, kept / q.sum(), where="mid", color=color, linewidth=2,
                      label=f"{method} (expected)")
    for ax in (ax_p, ax_n, ax_d):
        _quartile_lines(ax, boundaries, label=ax is ax_p)
        _log_x(ax, log_scale=log_scale)
    ax_p.set_ylabel("keep probability min(1, p)")
    ax_p.set_ylim(-0.02, 1.05)
    ax_p.set_title(title or "Calibrated weightings: keep probability and expected kept distribution")
    ax_n.set_ylabel("documents per bin")
    ax_n.set_title("Expected documents kept per bin, against all scored documents")
    ax_d.set_ylabel("fraction of documents per bin")
    ax_d.set_title("Shapes compared (each distribution normalised to sum 1; bins equal in "
                   + ("log x)" if log_scale else "x)"))
    ax_p.legend(loc="upper right", fontsize="small")
    ax_n.legend(loc="upper left", fontsize="small")
    ax_d.legend(loc="upper left", fontsize="small")
    return _save(fig, path)


def plot_observed_vs_expected(perplexities, kept, weights, path, *, boundaries=None,
                              ks_statistic: float | None = None, ks_pvalue: float | None = None,
                              observed_rate: float | None = None,
                              expected_rate: float | None = None,
                              title: str | None = None, n_bins: int = 50, log_scale: bool = True) -> Path:
    """The kept documents' perplexity (score) distribution beside the expected one.

    ``weights`` are the keep probabilities ``min(1, p)`` of all scored documents; the expected
    distribution of the kept documents is the scored distribution weighted by them. Top: the two
    histograms (normalised); bottom: the two cumulative distributions, whose largest vertical gap
    is the Kolmogorov-Smirnov statistic.
    """
    x = np.asarray(perplexities, dtype=np.float64)
    kept = np.asarray(kept, dtype=bool)
    q = np.asarray(weights, dtype=np.float64)
    bins = bins_for(x, n_bins, log_scale)
    centers = _centers(bins, log_scale)
    fig, (ax_h, ax_c) = _figure(2, height=4.0)
    n_kept = max(int(kept.sum()), 1)
    ax_h.hist(x[kept], bins=bins, weights=np.full(int(kept.sum()), 1 / n_kept),
              color=COLORS["observed"], alpha=0.55,
              label=f"observed: {int(kept.sum()):,} kept documents")
    if q.sum() > 0:
        exp_counts, _ = np.histogram(x, bins=bins, weights=q)
        ax_h.step(centers, exp_counts / q.sum(), where="mid",
                  color=COLORS["expected"], linewidth=2,
                  label=f"expected: {x.size:,} scored documents weighted by min(1, p)")
    ax_h.hist(x, bins=bins, weights=np.full(x.size, 1 / x.size), histtype="step", color=COLORS["original"],
              linewidth=1.2, linestyle="--", label="all scored documents")
    order = np.argsort(x, kind="stable")
    xs = x[order]
    if kept.any():
        ax_c.step(xs, np.cumsum(kept[order]) / kept.sum(), where="post",
                  color=COLORS["observed"], linewidth=2, label="observed (kept documents)")
    if q.sum() > 0:
        ax_c.step(xs, np.cumsum(q[order]) / q.sum(), where="post", color=COLORS["expected"],
                  linewidth=1.5, label="expected")
    ax_c.step(xs, np.arange(1, xs.size + 1) / xs.size, where="post", color=COLORS["original"],
              linewidth=1, linestyle="--", label="all scored documents")
    for ax in (ax_h, ax_c):
        if boundaries is not None:
            _quartile_lines(ax, boundaries, label=ax is ax_h)
        _log_x(ax, log_scale=log_scale)
    ax_h.set_ylabel("fraction of documents per bin")
    ax_h.set_title(title or "Kept documents: observed against expected perplexity distribution")
    ax_c.set_ylabel("cumulative fraction")
    ax_c.set_ylim(-0.02, 1.02)
    ax_c.set_title("Cumulative distributions")
    lines = []
    if observed_rate is not None and expected_rate is not None:
        lines.append(f"keep rate: observed {percent(observed_rate)}, expected {percent(expected_rate)}")
    if ks_statistic is not None:
        ks = f"Kolmogorov-Smirnov D = {ks_statistic:.4f}"
        if ks_pvalue is not None:
            ks += f" (p = {ks_pvalue:.3g})"
        lines.append(ks)
    if lines:
        ax_c.text(0.99, 0.04, "\n".join(lines), transform=ax_c.transAxes, ha="right",
                  va="bottom", fontsize="small",
                  bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85})
    ax_h.legend(loc="best", fontsize="small")
    ax_c.legend(loc="upper left", fontsize="small")
    return _save(fig, path)
