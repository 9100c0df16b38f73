"""The comparison table of fine-tuning results: checkpoints side by side (BERTIN's Tables 3 and 4).

A results file (``results.json``, written by ``trainer finetune``) is
``{"models": {model name: {task name: report}}}``, a report as :func:`trainer.finetune.run.fine_tune_task`
returns it. :func:`merge` joins several files (a model/task pair in two of them is an error naming
both: rename the model, ``--model NAME=...``, or the task, ``--task NAME=PRESET``, of one run);
:func:`markdown_table`, :func:`bar_chart` render them.
"""

from __future__ import annotations

import json
import os
from typing import Optional

from mc4_sampling.common.outputs import atomic_path

from ..errors import ConfigError, DataError

_SHORT = {"f1": "F1", "accuracy": "Acc", "macro_f1": "macro-F1", "exact_match": "EM", "pearson": "Pearson",
          "spearman": "Spearman"}


def load_results(paths: list[str]) -> dict:
    return merge([_read(p) for p in paths], paths)


def _read(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read results file {path}: {e}") from None
    if not isinstance(data, dict) or "models" not in data:
        raise DataError(f"{path} is not a results file of `trainer finetune` (no 'models')")
    return data


def merge(results: list[dict], sources: Optional[list[str]] = None) -> dict:
    """One results dict of several; DataError when a model/task pair is in two of them (``sources``:
    the files' names, for the message), as the table could show only one of the two."""
    out: dict = {"models": {}}
    origin: dict = {}
    for i, r in enumerate(results):
        source = sources[i] if sources else f"results #{i + 1}"
        for model, tasks in r["models"].items():
            for task, report in tasks.items():
                if (model, task) in origin:
                    raise DataError(
                        f"model {model!r} / task {task!r} is in both {origin[model, task]} and {source}; the table "
                        "would keep only one: rename the model (--model NAME=...) or the task (--task NAME=PRESET) "
                        "of one of the runs, or compare them separately")
                origin[model, task] = source
                out["models"].setdefault(model, {})[task] = report
    return out


def _tasks(results: dict) -> list[str]:
    seen: list[str] = []
    for tasks in results["models"].values():
        seen += [t for t in tasks if t not in seen]
    return seen


def _metric_names(results: dict, task: str) -> list[str]:
    for tasks in results["models"].values():
        if task in tasks:
            return list(tasks[task]["metrics"])
    return []


def mean_sd(mean: float, sd, digits: int = 4) -> str:
    """``"mean ± sd"``; ``"mean ± n/a"`` when the sd is None or nan (one seed: no spread is measured)."""
    spread = "n/a" if sd is None or sd != sd else f"{sd:.{digits}f}"
    return f"{mean:.{digits}f} ± {spread}"


def metric_sd(summary: dict):
    """A metric's sd over seeds, None with one seed (also in files written before the sd of one seed was None)."""
    return None if len(summary.get("values") or ()) == 1 else summary.get("std")


def stability_note(settings: dict) -> str:
    """The stability options a report's settings hold (:mod:`.stability`), in words; "" when all are off."""
    parts = []
    if settings.get("layer_lr_decay", 1.0) != 1.0:
        parts.append(f"layer-wise learning-rate decay {settings['layer_lr_decay']:g}")
    if settings.get("reinit_layers"):
        parts.append(f"top {settings['reinit_layers']} layer(s) re-initialised")
    if settings.get("freeze_layers"):
        parts.append(f"lower {settings['freeze_layers']} layer(s) frozen")
    if settings.get("freeze_embeddings"):
        parts.append("embeddings frozen")
    return "; ".join(parts)


def markdown_table(results: dict, std: bool = True) -> str:
    """One row per model, one column per task (``F1 / Acc`` as BERTIN's tables), mean ± std over seeds;
    ``*`` marks a task where collapsed runs were rerun, ``!`` one where a collapsed run remains."""
    tasks = _tasks(results)
    heads = [f"{t} ({' / '.join(_SHORT.get(m, m) for m in _metric_names(results, t))})" for t in tasks]
    lines = ["| Model | " + " | ".join(heads) + " |", "|---" * (len(tasks) + 1) + "|"]
    best = {}
    for t in tasks:
        metric = _metric_names(results, t)[0]
        scores = [tasks_[t]["metrics"][metric]["mean"] for tasks_ in results["models"].values() if t in tasks_]
        best[t] = max(scores) if len(scores) > 1 else None
    for model, model_tasks in results["models"].items():
        cells = []
        for t in tasks:
            r = model_tasks.get(t)
            if r is None:
                cells.append("–")
                continue
            parts = []
            for m in _metric_names(results, t):
                v = r["metrics"][m]
                parts.append(mean_sd(v["mean"], metric_sd(v)) if std else f"{v['mean']:.4f}")
            cell = " / ".join(parts)
            if best[t] is not None and r["metrics"][_metric_names(results, t)[0]]["mean"] == best[t]:
                cell = f"**{cell}**"
            cell += "\\*" if r.get("reruns") else ""  # escaped: BERTIN's star, not emphasis
            cell += "!" if r.get("collapsed_kept") else ""
            cells.append(cell)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    notes = []
    for model, model_tasks in results["models"].items():
        for t, r in model_tasks.items():
            n = len(r["runs"])
            if r.get("reruns"):
                seeds = ", ".join(str(x["seed"]) for x in r["replaced_runs"])
                notes.append(f"* {model} / {t}: {r['reruns']} collapsed run(s) (seeds {seeds}) rerun with other seeds")
            if r.get("collapsed_kept"):
                notes.append(f"* {model} / {t}: {r['collapsed_kept']} of {n} runs still collapsed after the reruns")
            options = stability_note(r.get("settings", {}))
            if options:
                notes.append(f"* {model} / {t}: {options}")
            tr = r.get("truncated", {})
            if tr.get("train") or tr.get("eval"):
                notes.append(f"* {model} / {t}: {tr.get('train', 0)} training and {tr.get('eval', 0)} evaluation "
                             "examples truncated at the max length")
    seeds = sorted({len(r["runs"]) for m in results["models"].values() for r in m.values()})
    text = "\n".join(lines) + "\n\n" + f"Mean ± standard deviation over {'/'.join(map(str, seeds))} seeds."
    if any(v is not None for v in best.values()):
        text += " Bold: the highest mean of the task (not a significance test)."
    text += "\n"
    if notes:
        text += "\n" + "\n".join(notes) + "\n"
    return text


def _seeds(report: dict, metric: str) -> list:
    """A report's kept runs as the Multi-Bootstrap's seeds: the run's example table, or its value (runs
    written before per-example scores were kept)."""
    return [[r["examples"]] if r.get("examples") and metric in r["examples"]["metrics"] else r["metrics"][metric]
            for r in report["runs"]]


def compare_models(results: dict, baseline: Optional[str] = None, samples: int = 1000, seed: int = 0,
                   confidence: float = 0.95) -> dict:
    """Every model against ``baseline`` (default: the first) on each task they share and each metric: Welch's
    t-test of the per-seed values (:func:`trainer.statistics.welch.welch_test`) and the Multi-Bootstrap of seeds and
    examples (:func:`trainer.statistics.bootstrap.multi_bootstrap`). ``{"baseline", "samples", "seed",
    "confidence", "test", "tasks": {task: {model: {metric: {"welch": ..., "bootstrap": ...}}}}}``."""
    from ..statistics.bootstrap import describe, lower_is_better, multi_bootstrap
    from ..statistics.welch import welch_test

    models = list(results["models"])
    baseline = baseline or (models[0] if models else None)
    if baseline not in results["models"]:
        raise ConfigError(f"--baseline {baseline!r} is not a model of the results ({', '.join(models)})")
    base = results["models"][baseline]
    out: dict = {}
    for task in _tasks(results):
        if task not in base:
            continue
        for model in models:
            other = results["models"][model].get(task)
            if model == baseline or other is None:
                continue
            for metric in _metric_names(results, task):
                if metric not in base[task]["metrics"] or metric not in other["metrics"]:
                    continue
                w = welch_test(other["metrics"][metric]["values"], base[task]["metrics"][metric]["values"],
                               confidence)
                mb = multi_bootstrap(_seeds(other, metric), _seeds(base[task], metric), metric, samples, seed,
                                     confidence, lower_is_better(metric))
                out.setdefault(task, {}).setdefault(model, {})[metric] = {"welch": w._asdict(),
                                                                          "bootstrap": mb._asdict()}
    return {"baseline": baseline, "samples": samples, "seed": seed, "confidence": confidence,
            "test": describe(samples, seed, confidence), "tasks": out}


def comparison_markdown(comparison: dict) -> str:
    """The comparison's table: per task, metric and model the difference to the baseline, Welch's p, the
    Multi-Bootstrap interval and P(model better)."""
    if not comparison.get("tasks"):
        return ""
    pct = int(round(100 * comparison["confidence"]))
    base = comparison["baseline"]
    lines = [f"## Difference to `{base}` (model minus baseline)", "",
             f"| task | metric | model | difference | Welch p | Multi-Bootstrap {pct} % interval | P(better) |",
             "|---|---|---|---:|---:|---:|---:|"]
    notes = set()
    for task, models in comparison["tasks"].items():
        for model, metrics in models.items():
            for metric, c in metrics.items():
                w, b = c["welch"], c["bootstrap"]
                p = "n/a" if w["p"] is None or w["p"] != w["p"] else (f"{w['p']:.2g}" if w["p"] >= 1e-3 else
                                                                      f"{w['p']:.1e}")
                mark = "" if b["examples"] else " †"
                notes |= {"†"} if not b["examples"] else set()
                lines.append(f"| {task} | {metric} | {model} | {b['difference']:+.4f} | {p} | "
                             f"[{b['ci_low']:+.4f}, {b['ci_high']:+.4f}]{mark} | {b['p_better']:.3f} |")
    lines += ["", comparison["test"] + "; Welch's unequal-variance t-test (two-sided) of the per-seed values."]
    if notes:
        lines.append("† no per-example scores in these results (written by an older version or a task kind that "
                     "keeps none): only the seeds are resampled.")
    return "\n".join(lines) + "\n"


def bar_chart(results: dict, path: str, title: Optional[str] = None) -> str:
    """Grouped bars (one group per task, one bar per model) of each task's headline metric, std error bars.

    The y-axis starts at 0 (never truncated). Each kept run is a dot on its bar; a collapsed run that
    was rerun is a red ``x`` (not in the bar) and the bar's value gets ``*``; a bar still holding a
    collapsed run is hatched and its value gets ``!`` (as in :func:`markdown_table`)."""
    import matplotlib.pyplot as plt

    fig = chart_figure(results, title)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path


def chart_figure(results: dict, title: Optional[str] = None):
    """The matplotlib figure of :func:`bar_chart`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks = _tasks(results)
    models = list(results["models"])
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(tasks) * max(1, len(models)) / 2 + 2), 4))
    x = np.arange(len(tasks))
    highs = []
    marked = {"rerun": False, "collapsed": False}
    for i, model in enumerate(models):
        means, stds, reports = [], [], []
        for t in tasks:
            r = results["models"][model].get(t)
            metric = _metric_names(results, t)[0]
            means.append(r["metrics"][metric]["mean"] if r else np.nan)
            sd = metric_sd(r["metrics"][metric]) if r else None
            stds.append(np.nan if sd is None else sd)  # one seed: no error bar (not a bar of 0)
            reports.append((r, metric))
        highs += [m + (0.0 if np.isnan(s) else s) for m, s in zip(means, stds) if not np.isnan(m)]
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=model)
        for b, m, s, (r, metric) in zip(bars, means, stds, reports):
            if np.isnan(m):
                continue
            cx = b.get_x() + b.get_width() / 2
            kept = [run["metrics"].get(metric) for run in r.get("runs", ())]
            kept = [v for v in kept if v is not None]
            ax.plot([cx] * len(kept), kept, "o", color="black", markersize=2.5, zorder=3)
            replaced = [run["metrics"].get(metric) for run in r.get("replaced_runs", ())]
            replaced = [v for v in replaced if v is not None]
            if replaced:
                ax.plot([cx] * len(replaced), replaced, "x", color="red", markersize=6, mew=1.5, zorder=3)
                highs += replaced
            mark = ("*" if r.get("reruns") else "") + ("!" if r.get("collapsed_kept") else "")
            marked["rerun"] |= bool(r.get("reruns"))
            marked["collapsed"] |= bool(r.get("collapsed_kept"))
            if r.get("collapsed_kept"):
                b.set_hatch("//")
                b.set_edgecolor("red")
            top = max([m + (0.0 if np.isnan(s) else s)] + kept)
            ax.annotate(f"{m:.3f}{mark}", (cx, top), ha="center", va="bottom",  # the value above the error bar
                        fontsize=7, xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(x, [f"{t}\n({_SHORT.get(_metric_names(results, t)[0], _metric_names(results, t)[0])})"
                      for t in tasks])
    ax.set_ylim(0.0, max(1.0, max(highs, default=1.0)) + 0.08)  # from 0: bar heights compare as values
    ax.set_ylabel("score (mean ± std over seeds)")
    ax.set_title(title or "Downstream fine-tuning")
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=c.patches[0].get_facecolor()) for c in ax.containers if hasattr(c, "patches")]
    labels = list(models)
    handles.append(Line2D([], [], marker="o", color="black", linestyle="", markersize=3))
    labels.append("a run (seed)")
    if marked["rerun"]:
        handles.append(Line2D([], [], marker="x", color="red", linestyle="", markersize=6, mew=1.5))
        labels.append("collapsed, rerun (*)")
    if marked["collapsed"]:
        handles.append(Patch(facecolor="white", edgecolor="red", hatch="//"))
        labels.append("holds a collapsed run (!)")
    ax.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="checkpoint")
    fig.tight_layout()
    return fig


def strict_json(obj):
    """``obj`` with NaN and infinities (a diverged run's loss) as None: standard JSON."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def write_tables(results: dict, out_dir: str, png: bool = True) -> list[str]:
    """``results.json``, ``results.md`` (and ``results.png``) in ``out_dir``; their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = [os.path.join(out_dir, "results.json"), os.path.join(out_dir, "results.md")]
    with open(paths[0], "w", encoding="utf-8") as f:
        json.dump(strict_json(results), f, indent=2)
    with open(paths[1], "w", encoding="utf-8") as f:
        f.write(markdown_table(results))
        if results.get("comparison"):
            f.write("\n" + comparison_markdown(results["comparison"]))
    if png:
        paths.append(bar_chart(results, os.path.join(out_dir, "results.png")))
    return paths
