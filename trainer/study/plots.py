"""The study's pictures: eval loss curves of every arm and seed, and final metrics with error bars."""

from __future__ import annotations

LINESTYLES = ["-", "--", ":", "-."]


def _save(fig, path: str) -> None:
    from mc4_sampling.common.outputs import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")


def plot_curves(results: list[dict], arm_order: list[str], path: str) -> None:
    """One line per unit (colour: arm, line style: seed) of the eval loss on the whole eval set."""
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
        ax.plot([c["step"] for c in r["curve"]], [c["loss"] for c in r["curve"]], color=colors[i % len(colors)],
                linestyle=LINESTYLES[k % len(LINESTYLES)], linewidth=1.4, label=f"{arm} seed {k}")
    ax.set_xlabel("training step")
    ax.set_ylabel("masked-LM loss on the eval set")
    ax.set_title("Eval loss during training (every arm and seed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)
    plt.close(fig)


def plot_final(report: dict, path: str) -> None:
    """One panel per metric: the mean of each arm (bar), ± sd (error bar) and each seed's value (dots)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics, arms = report["metrics"], report["arms"]
    cols = min(4, len(metrics))
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.0 * rows), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    names = list(arms)
    for ax, m in zip(axes.flat, metrics):
        means = [arms[n]["metrics"][m]["mean"] for n in names]
        sds = [arms[n]["metrics"][m]["sd"] for n in names]
        ax.bar(range(len(names)), means, yerr=sds, capsize=4,
               color=[colors[i % len(colors)] for i in range(len(names))], alpha=0.6)
        for i, n in enumerate(names):
            vals = arms[n]["metrics"][m]["values"]
            ax.plot([i] * len(vals), vals, "k.", markersize=5)
        finite = [v for n in names for v in arms[n]["metrics"][m]["values"]]
        if finite:
            lo, hi = min(finite), max(finite)
            pad = (hi - lo) * 0.6 + 1e-3 * max(abs(hi), 1.0)
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, fontsize=8)
        ax.set_title(m + (" (lower better)" if m.endswith(".loss") else ""), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    fig.suptitle("Final metrics per arm: mean ± sd over seeds, dots = seeds", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
