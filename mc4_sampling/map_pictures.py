"""The embedding map's outputs: a PNG (two panels: coloured by score, and kept against dropped) and a
self-contained interactive HTML page (inline SVG and a few lines of JavaScript, nothing fetched: hover a point
for its score, its decision and the start of its text; buttons switch the colouring)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from .plots import _figure, _save, percent
from .weightings import WEIGHTINGS

DROPPED = "#b0b0b0"
PREVIEW_CHARS = 200


def log_scaled(scores: np.ndarray) -> bool:
    """Colour by log score when every score is positive and they span at least a factor of 10 (perplexities)."""
    x = scores[np.isfinite(scores)]
    return bool(x.size and (x > 0).all() and x.max() / x.min() >= 10)


def _norm(scores: np.ndarray):
    """The colour scale: from the 1st to the 99th percentile of the scores (a few outliers do not wash out
    the others; beyond, the end colours), logarithmic for perplexities (:func:`log_scaled`)."""
    from matplotlib.colors import LogNorm, Normalize

    x = scores[np.isfinite(scores)]
    lo, hi = (float(np.percentile(x, 1)), float(np.percentile(x, 99))) if x.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    return (LogNorm if log_scaled(scores) else Normalize)(vmin=lo, vmax=hi)


def kept_color(method: str) -> str:
    return WEIGHTINGS[method].color if method in WEIGHTINGS else "#0072B2"


def _kept_title(docs) -> str:
    n, k = len(docs.kept), int(docs.kept.sum())
    factor = "" if docs.factor is None else f", factor {docs.factor:.4g}"
    return f"Kept by {docs.method}{factor}: {k:,} of {n:,} ({percent(k / n if n else 0)})"


def plot_map(coords: np.ndarray, docs, path, *, title: str) -> Path:
    """Left: each document at its 2-D position coloured by its score (log scale for perplexities); right: kept
    (the weighting's colour) over dropped (grey)."""
    import matplotlib

    fig, _ = _figure(1, height=5.0, width=13.0)
    fig.clear()
    ax_s, ax_k = fig.subplots(1, 2)
    norm = _norm(docs.scores)
    finite = np.isfinite(docs.scores)
    points = ax_s.scatter(coords[finite, 0], coords[finite, 1], c=docs.scores[finite], norm=norm, cmap="viridis",
                          s=14, linewidths=0)
    cbar = fig.colorbar(points, ax=ax_s, extend="both")
    cbar.set_label(docs.score_name + (" (log scale)" if isinstance(norm, matplotlib.colors.LogNorm) else ""))
    ax_s.set_title(f"Coloured by {docs.score_name} (1st to 99th percentile)")
    dropped = ~docs.kept
    ax_k.scatter(coords[dropped, 0], coords[dropped, 1], c=DROPPED, s=12, linewidths=0,
                 label=f"dropped ({int(dropped.sum()):,})")
    ax_k.scatter(coords[docs.kept, 0], coords[docs.kept, 1], c=kept_color(docs.method), s=14, linewidths=0,
                 label=f"kept ({int(docs.kept.sum()):,})")
    ax_k.set_title(_kept_title(docs))
    ax_k.legend(loc="best", fontsize="small")
    for ax in (ax_s, ax_k):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
    fig.suptitle(title)
    return _save(fig, path)


def _preview(text: str) -> str:
    return text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else "")


def _hex(rgba) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in rgba[:3])


def html_page(coords: np.ndarray, docs, *, title: str, width: int = 760, height: int = 600) -> str:
    """The interactive page (module doc) as a string; deterministic (no dates, no random ids)."""
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    norm = _norm(docs.scores)
    lo, hi = coords.min(axis=0), coords.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    pad = 12
    xy = pad + (coords - lo) / span * [width - 2 * pad, height - 2 * pad]
    xy[:, 1] = height - xy[:, 1]  # y up, as in the PNG
    keep_c = kept_color(docs.method)
    points = []
    for i in np.argsort(docs.kept, kind="stable"):  # the dropped first: the kept are drawn over them
        s = float(docs.scores[i])
        points.append({
            "x": round(float(xy[i, 0]), 2), "y": round(float(xy[i, 1]), 2),
            "c": _hex(cmap(norm(s))) if np.isfinite(s) else "#ff0000",
            "k": keep_c if docs.kept[i] else DROPPED,
            "s": f"{s:.6g}", "p": f"{docs.probability[i]:.3g}", "kept": bool(docs.kept[i]),
            "w": docs.where[i], "t": _preview(docs.texts[i]),
        })
    data = json.dumps(points, ensure_ascii=False).replace("</", "<\\/")
    ticks = [_hex(cmap(v)) for v in np.linspace(0, 1, 9)]
    scale = "log scale" if log_scaled(docs.scores) else "linear scale"
    vmin, vmax = float(norm.vmin), float(norm.vmax)
    name = html.escape(docs.score_name)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 16px; color: #222; }}
#map {{ border: 1px solid #ccc; background: #fff; }}
#tip {{ position: absolute; display: none; max-width: 420px; background: #fffff0; border: 1px solid #999;
        padding: 6px 8px; font-size: 12px; pointer-events: none; white-space: pre-wrap; }}
.legend {{ display: inline-block; margin: 6px 12px 6px 0; font-size: 13px; vertical-align: middle; }}
.bar {{ display: inline-block; width: 180px; height: 12px; vertical-align: middle;
        background: linear-gradient(to right, {", ".join(ticks)}); }}
.dot {{ display: inline-block; width: 10px; height: 10px; border-radius: 5px; vertical-align: middle; }}
button.on {{ font-weight: bold; }}
</style></head><body>
<h2>{html.escape(title)}</h2>
<p>{html.escape(_kept_title(docs))}. Hover a point for its {name}, its keep probability and the start of its text.</p>
<div><button id="by-score" class="on">colour by {name}</button> <button id="by-kept">kept / dropped</button></div>
<div id="legend-score" class="legend">{name} ({scale}, 1st to 99th percentile): &le; {vmin:.4g}
<span class="bar"></span> &ge; {vmax:.4g}</div>
<div id="legend-kept" class="legend" style="display:none"><span class="dot" style="background:{keep_c}"></span>
kept &nbsp; <span class="dot" style="background:{DROPPED}"></span> dropped</div>
<svg id="map" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg"></svg>
<div id="tip"></div>
<script>
const points = {data};
const svg = document.getElementById("map"), tip = document.getElementById("tip");
const ns = "http://www.w3.org/2000/svg";
let mode = "c";
const circles = points.map(function (d) {{
  const c = document.createElementNS(ns, "circle");
  c.setAttribute("cx", d.x); c.setAttribute("cy", d.y); c.setAttribute("r", 4);
  c.setAttribute("fill", d.c); c.setAttribute("fill-opacity", 0.85);
  c.addEventListener("mousemove", function (e) {{
    tip.textContent = "{name}: " + d.s + "\\nkeep probability: " + d.p + " (" + (d.kept ? "kept" : "dropped") +
      ")\\n" + d.w + "\\n\\n" + d.t;
    tip.style.left = (e.pageX + 12) + "px"; tip.style.top = (e.pageY + 12) + "px"; tip.style.display = "block";
  }});
  c.addEventListener("mouseleave", function () {{ tip.style.display = "none"; }});
  svg.appendChild(c);
  return c;
}});
function colour(m) {{
  mode = m;
  circles.forEach(function (c, i) {{ c.setAttribute("fill", points[i][m]); }});
  document.getElementById("by-score").className = m === "c" ? "on" : "";
  document.getElementById("by-kept").className = m === "k" ? "on" : "";
  document.getElementById("legend-score").style.display = m === "c" ? "" : "none";
  document.getElementById("legend-kept").style.display = m === "k" ? "" : "none";
}}
document.getElementById("by-score").onclick = function () {{ colour("c"); }};
document.getElementById("by-kept").onclick = function () {{ colour("k"); }};
</script>
</body></html>
"""
