"""`trainer study` with ``eval.revision_steps``: the checkpoints at those steps survive ``checkpoint.keep``, are
evaluated as the final one (``result.json`` ``revisions``, the report's section), old results still make a
report, and bad steps are one line before any training."""

from __future__ import annotations

import json
import os

import pytest
from test_study import micro, write_config

from trainer.study.config import load_study_config

#: step 3 is no regular save (checkpoint.every_steps=5); step 5 is one the trainer also evaluates (the curve)
STEPS = [3, 5]


@pytest.fixture(scope="module")
def revision_study(tmp_path_factory):
    """The micro study (10 steps, 2 arms, 1 seed) keeping one regular checkpoint, with revisions at 3 and 5 and
    the average of the last two checkpoints (5 and 10); the random arm masks whole words (a masking arm)."""
    from trainer.study import run_study

    tmp = tmp_path_factory.mktemp("revisions")
    data = micro(tmp)
    data["trainer"]["set"] = data["trainer"]["set"] + ["checkpoint.keep=1"]
    data["eval"].update(revision_steps=STEPS, revision_downstream=True, average_last=2)
    data["arms"][1]["trainer_set"] = ["training.masking=whole-word"]
    path = write_config(tmp, data)
    report = run_study(path, progress=lambda s: None)
    return path, tmp / "out", report


def _results(out) -> dict:
    return {arm: json.loads((out / "units" / arm / "seed0" / "result.json").read_text())
            for arm in ("gaussian", "random")}


def test_revisions_are_kept_and_evaluated_as_the_final_checkpoint(revision_study):
    from trainer.config_loading import load_config, resolve_config_path
    from trainer.export import load_checkpoint_params
    from trainer.study.corpus import Documents
    from trainer.study.evaluate import eval_subsets, mlm_metrics
    from trainer.study.runner import budget_steps, unit_overrides
    from trainer.study.units import units_of

    path, out, _report = revision_study
    cfg = load_study_config(path)
    shared = out / "shared"
    rows = [json.loads(line) for line in (shared / "eval.jsonl").read_text().splitlines()]
    texts = eval_subsets(Documents([r["id"] for r in rows], [r["text"] for r in rows], [r["label"] for r in rows]),
                         cfg.eval.subsets)
    curve_texts = [r["text"] for r in rows[: cfg.eval.curve_documents]]
    results = _results(out)
    for unit in units_of(cfg):
        r = results[unit.arm]
        checkpoints = out / "units" / unit.arm / "seed0" / "run" / "checkpoints"
        assert sorted(int(n) for n in os.listdir(checkpoints) if n.isdigit()) == [3, 5, 10]  # keep=1 spared 3, 5
        assert list(r["revisions"]) == ["3", "5", "averaged"] and r["steps"] == 10
        averaged = load_checkpoint_params(str(out / "units" / unit.arm / "seed0" / "run" / "averaged"))[2]
        assert averaged["averaged"]["steps"] == [5, 10]
        assert averaged["config"]["training"]["masking"] == ("whole-word" if unit.arm == "random" else "token")
        for rev in r["revisions"].values():
            assert set(rev["mlm"]) == set(r["mlm"]) == {"all", "clean", "junk"}
            assert set(rev["downstream"]) == {"kind"} and set(rev["downstream"]["kind"]["metrics"]) == \
                set(r["downstream"]["kind"]["metrics"])
            for subset, m in rev["mlm"].items():
                assert m["masked_tokens"] == r["mlm"][subset]["masked_tokens"]  # the same masks
                assert m["loss"] != r["mlm"][subset]["loss"]  # training went on after the revision
        assert r["revisions"]["3"]["mlm"]["all"]["loss"] > r["revisions"]["5"]["mlm"]["all"]["loss"] \
            > r["mlm"]["all"]["loss"]
        if unit.arm != "gaussian":
            continue
        # an independent re-evaluation of each step's checkpoint gives the recorded metrics
        tcfg = load_config(resolve_config_path(cfg.trainer.config),
                           unit_overrides(cfg, unit, str(shared / "tokenizer"),
                                          budget_steps(cfg, load_config("tiny-cpu", cfg.trainer.set))))
        for step in STEPS:
            again = mlm_metrics(str(checkpoints / str(step)), str(shared / "tokenizer"), texts, tcfg,
                                cfg.eval.mask_seed)
            assert again == r["revisions"][str(step)]["mlm"]
        # and the trainer's own eval at step 5 (the curve documents, the same mask seed) is that checkpoint's
        at5 = mlm_metrics(str(checkpoints / "5"), str(shared / "tokenizer"), {"all": curve_texts}, tcfg,
                          cfg.eval.mask_seed)["all"]
        curve5 = next(c for c in r["curve"] if c["step"] == 5)
        assert at5["loss"] == pytest.approx(curve5["loss"], rel=1e-5)
        assert at5["accuracy"] == pytest.approx(curve5["accuracy"], abs=1e-6)


def test_report_has_the_intermediate_revisions(revision_study):
    _path, out, report = revision_study
    results = _results(out)
    assert list(report["revisions"]) == ["3", "5", "averaged"]
    for step in ("3", "5", "averaged"):
        rev = report["revisions"][step]
        assert "mlm.clean.loss" in rev["metrics"] and "kind.accuracy" in rev["metrics"]
        for arm, r in results.items():
            values = rev["arms"][arm]["metrics"]["mlm.junk.loss"]["values"]
            assert values == [r["revisions"][step]["mlm"]["junk"]["loss"]]
        w = rev["arms"]["gaussian"]["vs_baseline"]["mlm.all.loss"]
        assert w["difference"] == pytest.approx(results["gaussian"]["revisions"][step]["mlm"]["all"]["loss"]
                                                - results["random"]["revisions"][step]["mlm"]["all"]["loss"])
    final = report["arms"]["gaussian"]["metrics"]["mlm.all.loss"]["values"]
    assert final == [results["gaussian"]["mlm"]["all"]["loss"]]  # the final metrics stay where they were
    md = (out / "report.md").read_text()
    section = md[md.index("## Intermediate revisions"):]
    for title in ("### Step 3: masked-LM loss (lower is better)", "### Step 3: masked-LM accuracy",
                  "### Step 5: masked-LM loss (lower is better)", "### Step 5: downstream"):
        assert title in section
    start = section.index("### Step 3: masked-LM loss")
    loss3 = section[start:section.index("###", start + 3)]
    assert "| subset | `gaussian` | `random` | `gaussian` − `random` |" in loss3
    g = results["gaussian"]["revisions"]["3"]["mlm"]["clean"]["loss"]
    diff = g - results["random"]["revisions"]["3"]["mlm"]["clean"]["loss"]
    assert f"| clean | {g:.4f} ± n/a | " in loss3 and f"| {diff:+.4f} (p n/a) |" in loss3


def test_old_results_without_revisions_still_make_a_report(revision_study):
    from trainer.study.report import build_report, markdown

    path, out, _report = revision_study
    cfg = load_study_config(path)
    data = json.loads((out / "shared" / "data.json").read_text())
    old = [{k: v for k, v in r.items() if k != "revisions"} for r in _results(out).values()]
    report = build_report(cfg, data, old)
    assert report["revisions"]["3"]["metrics"] == [] and "No unit has this revision's metrics" in markdown(report)
    cfg.eval.revision_steps, cfg.eval.average_last = [], 0
    report = build_report(cfg, data, old)
    assert "revisions" not in report and "Intermediate revisions" not in markdown(report)


BAD = [([5, 3], "strictly increasing"), ([3, 3], "strictly increasing"), ([0], ">= 1"),
       ([10], "1..9"), ([2, 12], "step 12")]


@pytest.mark.parametrize("steps,needle", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_revision_steps_are_one_line_before_training(tmp_path, capsys, steps, needle):
    from trainer.cli import main

    data = micro(tmp_path)
    data["eval"]["revision_steps"] = steps
    assert main(["study", write_config(tmp_path, data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: eval.revision_steps") and needle in err[0], err
    assert not os.path.exists(tmp_path / "out" / "units")
