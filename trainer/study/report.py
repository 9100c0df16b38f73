"""The study's report: per arm and metric mean ± sd and a confidence interval, the difference to the baseline
arm with Welch's t-test, each arm's kept size and composition, the same comparison at each step of
``eval.revision_steps``; as ``report.json`` and ``report.md`` (and the pictures of :mod:`.plots`)."""

from __future__ import annotations

import math
import os
from collections import defaultdict
from typing import Optional

from ..statistics.bootstrap import describe, lower_is_better
from ..statistics.welch import summarize, welch_test
from .config import AVERAGED, StudyConfig
from .units import write_json, write_text

TEST = ("Welch's unequal-variance t-test, two-sided, of the difference of the per-seed values of an arm "
        "and the baseline arm (Welch-Satterthwaite degrees of freedom); suited to few seeds with unequal spread")


def unit_metrics(result: dict) -> dict:
    """The metrics of one unit: ``mlm.<subset>.loss|accuracy`` and ``<task>.accuracy|macro_f1``."""
    out = {}
    for subset, m in result["mlm"].items():
        out[f"mlm.{subset}.loss"] = m["loss"]
        out[f"mlm.{subset}.accuracy"] = m["accuracy"]
    for task, d in result.get("downstream", {}).items():
        for name, v in d["metrics"].items():
            out[f"{task}.{name}"] = v
    return out


def unit_seed(result: dict, metric: str):
    """One unit as a Multi-Bootstrap seed for ``metric``: ``(its example tables, the tables' metric name)``
    (a masked-LM subset's packed sequences; each downstream run's eval examples, averaged), or
    ``(its value, name)`` when the unit keeps no per-example scores (results made before they were kept)."""
    if metric.startswith("mlm."):
        _, subset, name = metric.split(".")
        table = result["mlm"][subset].get("examples")
        return ([table] if table else unit_metrics(result)[metric]), name
    for task, d in result.get("downstream", {}).items():
        for name in d["metrics"]:
            if metric == f"{task}.{name}":
                tables = [r.get("examples") for r in d.get("runs", ())]
                ok = tables and all(t and name in t["metrics"] for t in tables)
                return (tables if ok else d["metrics"][name]), name
    raise KeyError(metric)


def bootstrap_vs(cfg: StudyConfig, arm: list[dict], base: list[dict], metric: str) -> dict:
    """The Multi-Bootstrap of ``arm - base`` on ``metric`` (units holding it), with the study's samples, seed and
    confidence."""
    from ..statistics.bootstrap import multi_bootstrap

    a = [unit_seed(r, metric) for r in arm if metric in unit_metrics(r)]
    b = [unit_seed(r, metric) for r in base if metric in unit_metrics(r)]
    name = (a or b)[0][1] if (a or b) else metric
    return multi_bootstrap([s for s, _ in a], [s for s, _ in b], name, cfg.bootstrap.samples, cfg.bootstrap.seed,
                           cfg.confidence, lower_is_better(metric))._asdict()


def by_arm(cfg: StudyConfig, results: list[dict]) -> dict[str, list[dict]]:
    """``{arm: its results in seed order}`` for every arm of the config (in the config's order)."""
    out: dict = {a.name: [] for a in cfg.arms}
    for r in sorted(results, key=lambda r: r["unit"]["index"]):
        out.setdefault(r["unit"]["arm"], []).append(r)
    return {a.name: out[a.name] for a in cfg.arms}


def compare_arms(cfg: StudyConfig, results: list[dict]) -> tuple[list[str], dict]:
    """The metrics of the results (sorted: masked-LM first, ``all`` first) and per arm ``{"metrics": {m: summary
    and values}}``, with ``"vs_baseline": {m: Welch test}`` and ``"bootstrap_vs_baseline": {m: Multi-Bootstrap}``
    for every arm but the baseline."""
    metrics = sorted({m for r in results for m in unit_metrics(r)},
                     key=lambda m: (not m.startswith("mlm."), m.split(".")[1] != "all", m))
    arms, units = {}, by_arm(cfg, results)
    for arm, rs in units.items():
        values = {m: [unit_metrics(r)[m] for r in rs if m in unit_metrics(r)] for m in metrics}
        arms[arm] = {"metrics": {m: {**summarize(v, cfg.confidence)._asdict(), "values": v} for m, v in values.items()}}
    baseline = cfg.baseline_arm
    if baseline is not None and baseline in arms:
        for arm, rec in arms.items():
            if arm != baseline:
                rec["vs_baseline"] = {m: welch_test(rec["metrics"][m]["values"],
                                                    arms[baseline]["metrics"][m]["values"], cfg.confidence)._asdict()
                                      for m in metrics}
                rec["bootstrap_vs_baseline"] = {m: bootstrap_vs(cfg, units[arm], units[baseline], m) for m in metrics}
    return metrics, arms


def best_accuracy(result: dict) -> float:
    """A unit's best masked-LM accuracy on the curve documents during training (the artificial-pretraining blog's
    measure: the maximum over the evaluations of its curve; NaN without a curve)."""
    values = [c["accuracy"] for c in result.get("curve", ()) if c.get("accuracy") is not None]
    return max(values) if values else float("nan")


def compare_best(cfg: StudyConfig, results: list[dict]) -> dict:
    """Per arm the best accuracy of its units (:func:`best_accuracy`): summary, values, the step reached, and
    Welch's test against the baseline arm."""
    units = by_arm(cfg, results)
    out = {}
    for arm, rs in units.items():
        values = [best_accuracy(r) for r in rs]
        steps = [max(r["curve"], key=lambda c: c["accuracy"])["step"] if r.get("curve") else None for r in rs]
        out[arm] = {**summarize([v for v in values if not math.isnan(v)], cfg.confidence)._asdict(),
                    "values": values, "steps": steps}
    baseline = cfg.baseline_arm
    if baseline in out:
        for arm, rec in out.items():
            if arm != baseline:
                rec["vs_baseline"] = welch_test(rec["values"], out[baseline]["values"], cfg.confidence)._asdict()
    return out


def revision_results(results: list[dict], step: int) -> list[dict]:
    """The results as if the checkpoint at ``step`` were the final one (units without it left out)."""
    return [{"unit": r["unit"], **r["revisions"][str(step)]} for r in results if str(step) in r.get("revisions", {})]


def build_report(cfg: StudyConfig, data: dict, results: list[dict]) -> dict:
    metrics, compared = compare_arms(cfg, results)
    baseline = cfg.baseline_arm
    arms = {}
    for arm, rs in by_arm(cfg, results).items():
        comp: dict = defaultdict(list)
        for r in rs:
            for label, (kept, total) in r["sample"]["composition"].items():
                comp[label].append(kept / total if total else 0.0)
        arms[arm] = {
            "method": next(a.sampling_method for a in cfg.arms if a.name == arm),
            "match": next(a.match for a in cfg.arms if a.name == arm),
            "source": source_label(next(a for a in cfg.arms if a.name == arm)),
            "seeds_done": len(rs),
            "documents": summarize([r["sample"]["documents"] for r in rs])._asdict(),
            "tokens": summarize([r["sample"]["tokens"] for r in rs])._asdict(),
            "factors": [r["sample"]["factor"] for r in rs],
            "composition": {label: sum(v) / len(v) for label, v in sorted(comp.items())},
            **compared[arm],
        }
    revisions = {}
    for step in list(cfg.eval.revision_steps) + ([AVERAGED] if cfg.eval.average_last else []):
        rev_metrics, rev_arms = compare_arms(cfg, revision_results(results, step))
        revisions[str(step)] = {"metrics": rev_metrics, "arms": rev_arms}
    return {"study": cfg.name, "fingerprint": cfg.fingerprint(), "baseline": baseline, "confidence": cfg.confidence,
            "test": TEST, "bootstrap": {"samples": cfg.bootstrap.samples, "seed": cfg.bootstrap.seed,
                                        "test": describe(cfg.bootstrap.samples, cfg.bootstrap.seed, cfg.confidence)},
            "data": data, "units_done": len(results),
            **({"best_accuracy": compare_best(cfg, results)} if any(a.source for a in cfg.arms) else {}),
            "units_total": len(cfg.arms) * cfg.seeds.count, "metrics": metrics, "arms": arms,
            "units": [{"name": f"{r['unit']['arm']}/seed{r['unit']['index']}", "steps": r["steps"],
                       "seconds": r["seconds"], "metrics": unit_metrics(r),
                       "collapsed_downstream": sorted(t for t, d in r.get("downstream", {}).items()
                                                      if d.get("collapsed_kept"))} for r in results],
            **({"revisions": revisions} if revisions else {})}


def _f(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return f"{p:.2g}" if p >= 0.001 else "<0.001"


def _difference(w: dict, alpha: float) -> str:
    """A difference cell: ``+0.0123 (p 0.02)``, in bold only where the test rejects at ``alpha`` (p < alpha)."""
    cell = f"{w['difference']:+.4f} (p {_p(w['p'])})"
    significant = w["p"] is not None and not math.isnan(w["p"]) and w["p"] < alpha
    return f"**{cell}**" if significant else cell


def _significance_note(report: dict) -> str:
    alpha = 1 - report["confidence"]
    return f"Bold: p < {alpha:.3g} (significant at the report's {100 * report['confidence']:.3g} % level); " \
           "other differences are not significant."


def markdown(report: dict) -> str:
    arms, metrics, base = report["arms"], report["metrics"], report["baseline"]
    pct = f"{100 * report['confidence']:.3g}"
    d = report["data"]
    lines = [f"# Study `{report['study']}`", "",
             f"{report['units_done']} of {report['units_total']} units done. Training corpus: "
             f"{d['train_documents']:,} documents ({d['train_tokens']:,} tokens) after holding out "
             f"{d['held_out_duplicates']} whose content is in the eval set; eval set: {d['eval_documents']} documents"
             + (" (" + ", ".join(f"{k}: {v}" for k, v in d["eval_subsets"].items() if k != "all") + ")"
                if len(d["eval_subsets"]) > 1 else "") + ".",
             "", f"Cells: mean ± sd over seeds [{pct} % Student-t confidence interval]. Baseline: `{base}`. "
             f"Test: {report['test']}.", "", "## Kept by each arm", ""]
    labels = sorted({lab for a in arms.values() for lab in a["composition"]})
    lines.append("| arm | method | documents | tokens | factor | " + " | ".join(f"{lab} kept" for lab in labels) + " |")
    lines.append("|---|---|---:|---:|---:|" + "---:|" * len(labels))
    for name, a in arms.items():
        docs, toks = a["documents"], a["tokens"]
        factors = [f for f in a["factors"] if f is not None]
        factor = (f"{min(factors):.4g}" + (f"-{max(factors):.4g}" if max(factors) != min(factors) else "")
                  ) if factors else "default"
        method = a["method"] + (f" (matched to `{a['match']}`)" if a["match"] else "")
        lines.append(f"| `{name}` | {method} | {_f(docs['mean'], 0)} ± {_f(docs['sd'], 0)} | {_f(toks['mean'], 0)} "
                     f"| {factor} | " + " | ".join(f"{100 * a['composition'].get(lab, 0):.0f} %" for lab in labels)
                     + " |")
    lines += ["", "## Results", "", "| metric | " + " | ".join(f"`{n}`" for n in arms) + " |",
              "|---|" + "---:|" * len(arms)]
    for m in metrics:
        arrow = " (lower is better)" if lower_is_better(m) else ""
        cells = []
        for a in arms.values():
            s = a["metrics"][m]
            cells.append(f"{_f(s['mean'])} ± {_f(s['sd'])} [{_f(s['ci_low'])}, {_f(s['ci_high'])}]")
        lines.append(f"| {m}{arrow} | " + " | ".join(cells) + " |")
    if base is not None and base in arms:
        others = [n for n in arms if n != base]
        lines += ["", f"## Difference to `{base}` (arm minus baseline; Welch's t-test)", "", _significance_note(report),
                  "", "| metric | " + " | ".join(f"`{n}`" for n in others) + " |", "|---|" + "---:|" * len(others)]
        for m in metrics:
            cells = []
            for n in others:
                w = arms[n].get("vs_baseline", {}).get(m)
                cells.append("n/a" if w is None else _difference(w, 1 - report["confidence"]))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines += bootstrap_lines(report, arms, metrics, others)
    lines += best_lines(report)
    collapsed = [f"{u['name']} ({', '.join(u['collapsed_downstream'])})" for u in report["units"]
                 if u.get("collapsed_downstream")]
    if collapsed:
        lines += ["", "Downstream runs still collapsed after their reruns (accuracy at the majority/chance rate; kept "
                  "in the means): " + ", ".join(collapsed) + "."]
    lines += revision_lines(report)
    lines += ["", "Pictures: `eval_loss_curves.png` (eval loss of every arm and seed during training), "
              + ("`eval_accuracy_curves.png` (the same for the accuracy), " if report.get("best_accuracy") else "")
              + "`final_metrics.png` (final metrics: each arm's mean with its confidence interval, one dot per "
              "seed).", ""]
    return "\n".join(lines)


def best_lines(report: dict) -> list[str]:
    """The "Best masked-LM accuracy" table (studies with transfer arms): per arm mean ± sd [interval] of each
    unit's best curve accuracy, the step it was reached at, and the difference to the baseline (Welch)."""
    best = report.get("best_accuracy")
    if not best:
        return []
    base, pct, alpha = report["baseline"], f"{100 * report['confidence']:.3g}", 1 - report["confidence"]
    lines = ["", "## Best masked-LM accuracy during training", "",
             "Each unit's highest masked-LM accuracy on the curve documents (`eval.curve_documents` of the eval set, "
             "evaluated every `training.eval_every_steps`), as the artificial-pretraining blog reports it; "
             f"mean ± sd over seeds [{pct} % Student-t interval]; difference: arm minus `{base}`, Welch's t-test. "
             + _significance_note(report), "",
             "| arm | source | best accuracy | per seed (step) | difference to baseline |", "|---|---|---:|---|---:|"]
    for name, b in best.items():
        seeds = ", ".join(f"{_f(v)} ({s})" for v, s in zip(b["values"], b["steps"]))
        diff = "baseline" if name == base else ("n/a" if "vs_baseline" not in b else _difference(b["vs_baseline"],
                                                                                                 alpha))
        source = report["arms"].get(name, {}).get("source") or "from scratch"
        lines.append(f"| `{name}` | {source} | {_f(b['mean'])} ± {_f(b['sd'])} [{_f(b['ci_low'])}, "
                     f"{_f(b['ci_high'])}] | {seeds} | {diff} |")
    return lines


def source_label(arm) -> Optional[str]:
    """How the report names a transfer arm's source: the study's other documents or its files (their last two path
    parts), and its options."""
    s = arm.source
    if s is None:
        return None
    def short(path: str) -> str:  # its last two parts: pcfg-zipf/train
        return "/".join(os.path.normpath(path).split(os.sep)[-2:])

    what = "the study's other documents" if s.corpus == "study" else ", ".join(short(f) for f in s.files)
    opts = [o for o, on in (("frozen embeddings", s.freeze_embeddings), ("embeddings kept", not s.reinit_embeddings),
                            ("positions reset", s.reset_position_embeddings)) if on]
    return what + (f" ({', '.join(opts)})" if opts else "")


def bootstrap_lines(report: dict, arms: dict, metrics: list, others: list) -> list[str]:
    """The Multi-Bootstrap table: per metric and arm the difference to the baseline, its percentile interval
    and P(arm better); ``†`` where only the seeds were resampled (no per-example scores)."""
    boot = report.get("bootstrap")
    if not boot or not any("bootstrap_vs_baseline" in arms[n] for n in others):
        return []
    pct = int(round(100 * report["confidence"]))
    lines = ["", f"## Difference to `{report['baseline']}`: Multi-Bootstrap", "",
             f"Cells: difference [{pct} % bootstrap interval], P(arm better). {boot['test']}.", "",
             "| metric | " + " | ".join(f"`{n}`" for n in others) + " |", "|---|" + "---:|" * len(others)]
    seeds_only = False
    for m in metrics:
        cells = []
        for n in others:
            b = arms[n].get("bootstrap_vs_baseline", {}).get(m)
            if b is None or b["difference"] is None or math.isnan(b["difference"]):
                cells.append("n/a")
                continue
            seeds_only |= not b["examples"]
            mark = "" if b["examples"] else " †"
            cells.append(f"{b['difference']:+.4f} [{_f(b['ci_low'])}, {_f(b['ci_high'])}]{mark}, {b['p_better']:.3f}")
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    if seeds_only:
        lines += ["", "† no per-example scores in these units (made before they were kept): the seeds only are "
                  "resampled."]
    return lines


def revision_tables(metrics: list[str]) -> dict[str, list[tuple[str, str]]]:
    """The tables of one revision: ``{title: [(row name, metric)]}``, one per masked-LM metric (a row per
    subset), and one of the downstream metrics (a row per task metric)."""
    out: dict = defaultdict(list)
    for m in metrics:
        parts = m.split(".")
        if parts[0] == "mlm":
            out["masked-LM " + parts[2] + (" (lower is better)" if lower_is_better(m) else "")].append((parts[1], m))
        else:
            out["downstream"].append((m, m))
    return out


def revision_lines(report: dict) -> list[str]:
    """The report's "Intermediate revisions" section (none without ``eval.revision_steps``): per step and
    metric, the arms' mean ± sd and each arm's difference to the baseline (Welch's t-test)."""
    if not report.get("revisions"):
        return []
    base = report["baseline"]
    lines = ["", "## Intermediate revisions", "",
             "The checkpoints at the steps of `eval.revision_steps`, evaluated as the final ones "
             f"(mean ± sd over seeds; difference: arm minus `{base}`, Welch's t-test). " + _significance_note(report)]
    for step, rev in report["revisions"].items():
        arms = rev["arms"]
        others = [n for n in arms if n != base and "vs_baseline" in arms[n]]
        for title, rows in revision_tables(rev["metrics"]).items():
            head = [f"`{n}`" for n in arms] + [f"`{n}` − `{base}`" for n in others]
            name = "The average of the last checkpoints (`eval.average_last`)" if step == AVERAGED else f"Step {step}"
            lines += ["", f"### {name}: {title}", "",
                      f"| {'metric' if title == 'downstream' else 'subset'} | " + " | ".join(head) + " |",
                      "|---|" + "---:|" * len(head)]
            for name, m in rows:
                cells = [f"{_f(a['metrics'][m]['mean'])} ± {_f(a['metrics'][m]['sd'])}" for a in arms.values()]
                for n in others:
                    cells.append(_difference(arms[n]["vs_baseline"][m], 1 - report["confidence"]))
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        if not rev["metrics"]:
            lines += ["", f"### Step {step}", "", "No unit has this revision's metrics (results made before "
                      "`eval.revision_steps` was set)."]
    return lines


def write_report(cfg: StudyConfig, data: dict, results: list[dict]) -> dict:
    """``report.json``, ``report.md`` and the two pictures in the study folder (each written atomically)."""
    from .plots import plot_curves, plot_final

    report = build_report(cfg, data, results)
    write_json(os.path.join(cfg.output_dir, "report.json"), report)
    write_text(os.path.join(cfg.output_dir, "report.md"), markdown(report))
    if results:
        plot_curves(results, [a.name for a in cfg.arms], os.path.join(cfg.output_dir, "eval_loss_curves.png"))
        if report.get("best_accuracy"):  # transfer studies compare the accuracy curves (the blog's figure)
            plot_curves(results, [a.name for a in cfg.arms], os.path.join(cfg.output_dir, "eval_accuracy_curves.png"),
                        "accuracy")
        plot_final(report, os.path.join(cfg.output_dir, "final_metrics.png"))
    return report
