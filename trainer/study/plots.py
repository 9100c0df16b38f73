"""The study's pictures: eval loss curves of every arm and seed, and final metrics with error bars."""

from __future__ import annotations

from ..statistics.bootstrap import lower_is_better

LINESTYLES = ["-", "--", ":", "-."]


def _save(fig, path: str) -> None:
    from mc4_sampling.common.outputs import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")


def plot_curves(results: list[dict], arm_order: list[str], path: str, metric: str = "loss") -> None:
    """One line per unit (colour: arm, line style: seed) of the eval ``metric`` (loss or accuracy) on the curve
    documents during training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for r in sorted(results, key=lambda r: (arm_order.index(r["unit"]["arm"]), r["unit"]["index"])):
        arm, k = r["unit"]["arm"], r["unit"]["index"]
        if not r["curve"]:
            continue
        i = arm_order.index(arm)
        ax.plot([c["step"] for c in r["curve"]], [c[metric] for c in r["curve"]], color=colors[i % len(colors)],
                linestyle=LINESTYLES[k % len(LINESTYLES)], linewidth=1.4, label=f"{arm} seed {k}")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"masked-LM {metric} on the eval set")
    ax.set_title(f"Eval {metric} during training (every arm and seed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)
    plt.close(fig)


def metric_title(metric: str) -> str:
    """A readable title of a study metric: ``mlm.clean.loss`` -> "Masked-LM loss, eval subset 'clean' (lower is
    better)", ``mlm.all.accuracy`` -> "Masked-LM accuracy, whole eval set", ``kinds.macro_f1`` -> "kinds: macro F1"."""
    parts = metric.split(".")
    what = {"loss": "loss", "accuracy": "accuracy", "macro_f1": "macro F1", "f1": "F1"}.get(parts[-1], parts[-1])
    if parts[0] == "mlm" and len(parts) == 3:
        subset = "whole eval set" if parts[1] == "all" else f"eval subset '{parts[1]}'"
        title = f"Masked-LM {what}, {subset}"
    else:
        title = f"{'.'.join(parts[:-1])}: {what}"
    return title + (" (lower is better)" if lower_is_better(metric) else "")


def plot_final(report: dict, path: str) -> None:
    """:func:`final_figure` as a PNG."""
    import matplotlib.pyplot as plt

    fig = final_figure(report)
    _save(fig, path)
    plt.close(fig)


def final_figure(report: dict):
    """One panel per metric: each arm's mean (a point) with its Student-t confidence interval (a line), and each
    seed's value (small dots beside it). Points, not bars: a loss of 6.8 drawn as a bar from zero hides every
    difference, and a bar on a truncated axis exaggerates it. Accuracies and F1 stay within [0, 1]."""
    import math

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics, arms = report["metrics"], report["arms"]
    pct = f"{100 * report.get('confidence', 0.95):.3g}"
    cols = min(3, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(arms)
    for ax, m in zip(axes.flat, metrics):
        shown = []
        rate = not m.endswith(".loss") and all(0 <= v <= 1 for n in names for v in arms[n]["metrics"][m]["values"])
        for i, n in enumerate(names):
            s = arms[n]["metrics"][m]
            color = colors[i % len(colors)]
            vals = s["values"]
            ax.plot([i + 0.18] * len(vals), vals, ".", color="#444444", markersize=4)
            shown += vals
            if s["mean"] is None or math.isnan(s["mean"]):
                continue
            lo, hi = s.get("ci_low"), s.get("ci_high")
            if lo is not None and not math.isnan(lo):
                if rate:  # an interval of a rate ends at 0 and 1
                    lo, hi = max(lo, 0.0), min(hi, 1.0)
                ax.errorbar([i], [s["mean"]], yerr=[[s["mean"] - lo], [hi - s["mean"]]], fmt="o", color=color,
                            capsize=4, markersize=6, linewidth=1.6)
                shown += [lo, hi]
            else:
                ax.plot([i], [s["mean"]], "o", color=color, markersize=6)
        if shown and rate:  # a rate's axis: never below 0 or above 1
            lo, hi = ax.get_ylim()
            ax.set_ylim(max(lo, 0.0), min(hi, 1.0))
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, fontsize=8)
        ax.set_xlim(-0.5, len(names) - 0.5)
        ax.set_title(metric_title(m), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle(f"Final metrics per arm: mean (circle) with its {pct} % Student-t interval; small dots = seeds",
                 fontsize=10)
    fig.tight_layout()
    return fig
