"""The study's report: per arm and metric mean ± sd and a confidence interval, the difference to the baseline
arm with Welch's t-test, each arm's kept size and composition; as ``report.json`` and ``report.md``
(and the pictures of :mod:`.plots`)."""

from __future__ import annotations

import math
import os
from collections import defaultdict

from .config import StudyConfig
from .stats import summarize, welch_test
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


def lower_is_better(metric: str) -> bool:
    return metric.endswith(".loss")


def build_report(cfg: StudyConfig, data: dict, results: list[dict]) -> dict:
    by_arm: dict = defaultdict(list)
    for r in results:
        by_arm[r["unit"]["arm"]].append(r)
    metrics = sorted({m for r in results for m in unit_metrics(r)},
                     key=lambda m: (not m.startswith("mlm."), m.split(".")[1] != "all", m))
    baseline = cfg.baseline_arm
    arms = {}
    for arm in (a.name for a in cfg.arms):
        rs = sorted(by_arm.get(arm, []), key=lambda r: r["unit"]["index"])
        values = {m: [unit_metrics(r)[m] for r in rs if m in unit_metrics(r)] for m in metrics}
        comp: dict = defaultdict(list)
        for r in rs:
            for label, (kept, total) in r["sample"]["composition"].items():
                comp[label].append(kept / total if total else 0.0)
        arms[arm] = {
            "method": next(a.method for a in cfg.arms if a.name == arm),
            "match": next(a.match for a in cfg.arms if a.name == arm),
            "seeds_done": len(rs),
            "documents": summarize([r["sample"]["documents"] for r in rs])._asdict(),
            "tokens": summarize([r["sample"]["tokens"] for r in rs])._asdict(),
            "factors": [r["sample"]["factor"] for r in rs],
            "composition": {label: sum(v) / len(v) for label, v in sorted(comp.items())},
            "metrics": {m: {**summarize(v, cfg.confidence)._asdict(), "values": v} for m, v in values.items()},
        }
    if baseline is not None and baseline in arms:
        for arm, rec in arms.items():
            if arm == baseline:
                continue
            rec["vs_baseline"] = {m: welch_test(rec["metrics"][m]["values"], arms[baseline]["metrics"][m]["values"],
                                                cfg.confidence)._asdict() for m in metrics}
    return {"study": cfg.name, "fingerprint": cfg.fingerprint(), "baseline": baseline, "confidence": cfg.confidence,
            "test": TEST, "data": data, "units_done": len(results),
            "units_total": len(cfg.arms) * cfg.seeds.count, "metrics": metrics, "arms": arms,
            "units": [{"name": f"{r['unit']['arm']}/seed{r['unit']['index']}", "steps": r["steps"],
                       "seconds": r["seconds"], "metrics": unit_metrics(r),
                       "collapsed_downstream": sorted(t for t, d in r.get("downstream", {}).items()
                                                      if d.get("collapsed_kept"))} for r in results]}


def _f(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return f"{p:.2g}" if p >= 0.001 else "<0.001"


def markdown(report: dict) -> str:
    arms, metrics, base = report["arms"], report["metrics"], report["baseline"]
    pct = int(round(100 * report["confidence"]))
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
        arrow = " (lower is better)" if m.endswith(".loss") else ""
        cells = []
        for a in arms.values():
            s = a["metrics"][m]
            cells.append(f"{_f(s['mean'])} ± {_f(s['sd'])} [{_f(s['ci_low'])}, {_f(s['ci_high'])}]")
        lines.append(f"| {m}{arrow} | " + " | ".join(cells) + " |")
    if base is not None and base in arms:
        others = [n for n in arms if n != base]
        lines += ["", f"## Difference to `{base}` (arm minus baseline; Welch's t-test)", "",
                  "| metric | " + " | ".join(f"`{n}`" for n in others) + " |", "|---|" + "---:|" * len(others)]
        for m in metrics:
            cells = []
            for n in others:
                w = arms[n].get("vs_baseline", {}).get(m)
                cells.append("n/a" if w is None else f"{w['difference']:+.4f} (p {_p(w['p'])})")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    collapsed = [f"{u['name']} ({', '.join(u['collapsed_downstream'])})" for u in report["units"]
                 if u.get("collapsed_downstream")]
    if collapsed:
        lines += ["", "Downstream runs still collapsed after their reruns (accuracy at the majority/chance rate; kept "
                  "in the means): " + ", ".join(collapsed) + "."]
    lines += ["", "Pictures: `eval_loss_curves.png` (eval loss of every arm and seed during training), "
              "`final_metrics.png` (final metrics, mean and sd over seeds, one dot per seed).", ""]
    return "\n".join(lines)


def write_report(cfg: StudyConfig, data: dict, results: list[dict]) -> dict:
    """``report.json``, ``report.md`` and the two pictures in the study folder (each written atomically)."""
    from .plots import plot_curves, plot_final

    report = build_report(cfg, data, results)
    write_json(os.path.join(cfg.output_dir, "report.json"), report)
    write_text(os.path.join(cfg.output_dir, "report.md"), markdown(report))
    if results:
        plot_curves(results, [a.name for a in cfg.arms], os.path.join(cfg.output_dir, "eval_loss_curves.png"))
        plot_final(report, os.path.join(cfg.output_dir, "final_metrics.png"))
    return report
