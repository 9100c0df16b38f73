"""Every shell command of README.md, as written: the two offline quickstarts (mC4 to a trained model; a
FineWeb-2-shaped folder with a perplexity model of its own) are run line by line, in order, each on a copy of
the checkout; the at-scale lines (the real mC4 on the Hub, full-size models on a GPU) are parsed
by the commands' own parsers and their configs loaded and validated, and those that read mC4 from the Hub
are also run against the loopback Hub on the sample's shards (``ON_LOOPBACK_HUB``; why each other one is
not run: ``AT_SCALE_NOT_RUN``); the few lines run by neither are listed below with the reason. A new
command line in a ```bash block is picked up by its block's rule, and
a line in a block with no rule fails the test until it is added to ``NOT_RUN``."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: How a block is checked, by the first line of the block (a comment).
RUN = "run"  # every line, as written, in order, offline, from the root of a copy of the checkout
PARSE = "parse"  # parsed by the command's parser; `--config` loaded with its `--set`s and validated
BLOCK_RULES = {"# Offline quickstart": RUN, "# At scale": PARSE}

#: At-scale lines that are also run, against the loopback Hub (``HF_ENDPOINT``) serving the bundled sample as
#: ``allenai/c4`` at its pinned revision: line prefix -> the substitutions that shrink them to the sample's shards
#: (each must apply). The other at-scale lines are only parsed; why each is not run is in ``AT_SCALE_NOT_RUN``.
ON_LOOPBACK_HUB = {
    "mc4-sampling calibrate --lang es ": [("--lang es", "--lang es --shards 0")],
    "mc4-sampling publish mc4-es-sampled/ ": [("--workers 8", "--workers 8 --shards 0 --eval-docs 4")],
}

#: Why each at-scale line that is not run on the loopback Hub is only parsed (a prefix of the line -> why).
AT_SCALE_NOT_RUN = {
    "trainer tokenizer --config roberta-base-128 ": "streams mC4 from the Hub until roberta-base-128's 10 000 eval "
        "documents are held out (about 100 000 documents, dozens of shards); the loopback Hub serves the sample's "
        "four. The test trains a small stand-in tokenizer in runs/tokenizer-es for the publish line; the quickstart "
        "runs the same command on the local sample",
    "trainer --config roberta-base-128": "a base-size model for 250 000 steps (a GPU day); the quickstart trains "
        "tiny-cpu on the same path",
    "trainer --config modernbert-base-128": "a base-size model (GPU); tests/test_trainer_modernbert.py trains a "
        "tiny one",
    "trainer export ": "needs the base-size run above; the quickstart exports its tiny run",
    "trainer fill-mask ": "needs the base-size export; the quickstart runs it on the tiny export",
    "trainer finetune ": "needs the base-size export and the presets' datasets from the Hub; tests/test_finetune*.py "
        "run each task kind on tiny models and loopback datasets",
    "trainer tokenizer --type wordpiece ": "streams mC4 from the Hub like the BPE tokenizer line",
    "trainer suite ": "five base-size BERT runs from the MultiBERTs checkpoints (Hub, GPU); tests/test_trainer_bert.py "
        "runs a tiny suite from loopback step-0 folders",
    "trainer average ": "needs the base-size run; tests/test_trainer_train.py averages the reference run",
    "trainer evaluate --mlm ": "needs the base-size export; tests/test_trainer_train.py evaluates the reference run",
    "trainer compare ": "needs the fine-tuning results above; tests/test_finetune.py compares tiny runs",
    "trainer probe-bias ": "downloads bertin-project/bertin-roberta-base-spanish (500 MB); tests/test_probe_bias.py "
        "probes tiny loopback models",
    "mc4-sampling embed-map ": "needs the base-size export; tests/test_embed_map.py maps with a tiny encoder",
    "mc4-sampling calibrate --source fineweb2 ": "reads the real FineWeb-2 Spanish subset from the Hub; the second "
        "offline quickstart runs the same command on the bundled FineWeb-2-shaped folder, and "
        "tests/test_sources.py::test_fineweb2_on_the_hub reads that layout through the loopback Hub (hf://)",
    "mc4-sampling publish fw2-es-sampled/ ": "publishes the real FineWeb-2 Spanish subset (the Hub); the second "
        "offline quickstart publishes the bundled FineWeb-2-shaped folder with 2 workers",
    "mc4-sampling publish fw2-es-rehydrated/ ": "FineWeb-2 from the Hub; tests/test_upsampling.py publishes a "
        "FineWeb-2-shaped folder with rehydration as the builder streams it",
    "mc4-sampling train-model --lang ca ": "needs a Catalan Wikipedia dump's text (not bundled); the second offline "
        "quickstart trains a model the same way on the sample's validation text",
    "mc4-sampling publish fw2-ca-sampled/ ": "needs the Catalan model above and FineWeb-2 from the Hub; "
        "tests/test_publish_sources.py publishes a FineWeb-2-shaped folder with both weightings' paths",
    "mc4-sampling publish hplt3-es-sampled/ ": "reads HPLT 3.0 over HTTPS (data.hplt-project.org); "
        "tests/test_publish_sources.py::test_hplt3_score_column_is_the_score_and_is_kept_once publishes an "
        "HPLT-shaped folder by its doc_score, and tests/test_sources.py reads one over loopback HTTP through its map",
    "mc4-sampling publish mine-sampled/ ": "corpus/*.parquet is the user's own corpus; tests/test_sources.py reads "
        "Parquet and JSONL globs per split, tests/test_publish_sources.py publishes them",
}

#: Lines of blocks without a rule that are deliberately not run (a prefix of the line -> why).
NOT_RUN = {
    "make demo": "sets up .venv (pip) and trains for about 3 minutes; the quickstart block runs the same path",
    "make test": "is this test suite",
    "make study-artificial": "the artificial-pretraining study trains 8 two-stage units (docs/study.md gives its "
                             "measured table); tests/test_study_transfer.py runs a two-stage unit end to end",
    "make study": "the shipped study trains 12 units (10-13 min on 2 cores); tests/test_study.py runs the study's "
                  "code on smaller configs",
    "trainer study trainer/configs/study-tiny.yaml --engine ray": "the same study on a Ray cluster; "
                                                                   "tests/test_study.py runs a unit on Ray",
}


def blocks() -> list[list[str]]:
    """The ```bash blocks of README.md, each a list of lines (continuations joined, blank lines dropped)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    found = []
    for body in re.findall(r"^```bash\n(.*?)^```", text, flags=re.S | re.M):
        lines = [line.strip() for line in body.replace("\\\n", " ").splitlines() if line.strip()]
        found.append(lines)
    return found


def commands(block: list[str]) -> list[str]:
    return [line for line in block if not line.startswith("#")]


def rule(block: list[str]) -> str | None:
    first = block[0] if block else ""
    return next((r for prefix, r in BLOCK_RULES.items() if first.startswith(prefix)), None)


def test_every_readme_command_is_run_parsed_or_listed():
    unclassified = [line for block in blocks() if rule(block) is None for line in commands(block)
                    if not any(line.startswith(prefix) for prefix in NOT_RUN)]
    assert not unclassified, ("README commands neither run nor parsed by tests/test_readme_commands.py: "
                              f"{unclassified}; put them in a block with a rule or list them in NOT_RUN")
    listed = [line for block in blocks() if rule(block) is None for line in commands(block)]
    stale = [p for p in NOT_RUN if not any(line.startswith(p) for line in listed)]
    assert not stale, f"NOT_RUN lists lines that are no longer in README.md: {stale}"
    assert sum(rule(b) == RUN for b in blocks()) == 3 and any(rule(b) == PARSE for b in blocks())


def _argv(line: str) -> list[str]:
    return shlex.split(line, comments=True)


def test_at_scale_lines_parse_and_their_configs_validate():
    """Each at-scale line through its command's own argparse parser (a missing required option or an unknown
    flag fails here); a `--config` with its `--set`s is loaded and validated as the command would."""
    from mc4_sampling.cli import build_parser as sampler_parser
    from trainer.cli import build_parser as trainer_parser
    from trainer.config_loading import load_config

    lines = [line for block in blocks() if rule(block) == PARSE for line in commands(block)]
    assert len(lines) >= 8
    parsers = {"mc4-sampling": sampler_parser, "trainer": trainer_parser}
    for line in lines:
        program, *argv = _argv(line)
        assert program in parsers, f"{line}: not an mc4-sampling or trainer command"
        try:
            args = parsers[program]().parse_args(argv)
        except SystemExit as e:  # argparse printed why
            pytest.fail(f"README line does not parse (exit {e.code}): {line}")
        if program == "trainer" and getattr(args, "config", None):
            load_config(args.config, getattr(args, "set", None) or [])  # validates, names a bad key


def run_block(index: int, tmp_path) -> tuple[Path, dict]:
    """The ``index``-th offline block, line by line in its order, offline, in a folder laid out like the checkout
    (its top-level entries linked), so that `runs/` and the commands' other outputs land in the test's folder.
    Returns that folder and each line's standard output."""
    lines = commands([b for b in blocks() if rule(b) == RUN][index])
    assert len(lines) >= 4
    root = tmp_path / "checkout"
    root.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in ("runs", ".git") and not entry.name.startswith(".venv"):
            (root / entry.name).symlink_to(entry)
    bin_dir = os.path.dirname(sys.executable)  # the environment's mc4-sampling and trainer
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "JAX_PLATFORMS": "cpu", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    outputs = {}
    for line in lines:
        r = subprocess.run(["bash", "-c", line], cwd=root, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, f"README line failed (exit {r.returncode}): {line}\n{r.stderr[-3000:]}"
        assert "Traceback" not in r.stderr, f"{line}\n{r.stderr[-3000:]}"
        outputs[_argv(line)[1] if _argv(line)[0] == "trainer" else line] = r.stdout
    return root, outputs


@pytest.mark.slow  # scheduled first (tests/conftest.py)
def test_the_offline_quickstart_runs_as_written(tmp_path):
    """The first offline block: mC4 sampled, tokenized, published; a tiny model trained, exported, asked."""
    root, outputs = run_block(0, tmp_path)
    runs = root / "runs"
    kept = (runs / "kept.jsonl").read_text().splitlines()
    low = (runs / "kept-low.jsonl").read_text().splitlines()
    assert 200 < len(kept) < 800 and 0 < len(low) < len(kept)  # 12 % of 3 600, then those under perplexity 400
    assert (runs / "mc4-es-sampled" / "tokens" / "gaussian" / "manifest.json").exists()
    assert (runs / "export" / "config.json").exists()
    predictions = re.findall(r"^\s*(0\.\d+|1\.0+)\s+'.*'\s+(.*)$", outputs["fill-mask"], flags=re.M)
    assert predictions and all(s.startswith("Madrid es la capital de") and "<mask>" not in s for _, s in predictions)


def test_the_offline_fineweb2_example_runs_as_written(tmp_path):
    """The second offline block: a model trained by train-model on the sample's validation split, the bundled
    FineWeb-2-shaped folder calibrated with it (gaussian) and published by 2 workers, the card shown. Checked
    against what each step claims: the published perplexities are the trained model's (loaded here on its
    own), the keep rate is the calibrated one within binomial bounds, and the test split is kept whole."""
    import json

    import pyarrow.parquet as pq

    from mc4_sampling import SAMPLE_FINEWEB2_DIR, load_perplexity_model

    root, outputs = run_block(1, tmp_path)
    runs = root / "runs"
    meta = json.loads((runs / "model-es" / "model.json").read_text())
    assert meta["trained_by"] == "mc4-sampling train-model" and meta["language"] == "es"
    calibration = json.loads((runs / "calib-fw2" / "calibration.json").read_text())
    assert calibration["documents_scored"] == 1600 and calibration["model"]["spec"] == "runs/model-es"
    assert "documents scored: 1600 (of 1600 read)" in outputs[[k for k in outputs if " calibrate " in k][0]]
    out = runs / "fw2-es-sampled" / "data" / "gaussian"
    train = pq.read_table(sorted(out.glob("train-*.parquet"))).to_pylist()
    assert len(sorted(out.glob("train-*.parquet"))) == 2
    # calibrated on all 1 600 train documents: expected 480 kept; 4 binomial standard deviations (18.3)
    assert abs(len(train) - 480) < 4 * 18.3
    model = load_perplexity_model(str(runs / "model-es"), "es", mode="ccnet")
    ours = model.perplexities([row["text"] for row in train[:20]]).tolist()
    assert ours == [pytest.approx(row["perplexity"], rel=1e-6) for row in train[:20]]
    source = pq.read_table(sorted((Path(SAMPLE_FINEWEB2_DIR) / "data" / "spa_Latn" / "train").glob("*.parquet")),
                           columns=["id"]).column(0).to_pylist()
    assert {row["id"] for row in train} <= set(source)
    assert pq.read_table(sorted(out.glob("test-*.parquet"))).num_rows == 200  # the test split is kept whole
    card = outputs[[k for k in outputs if k.startswith("sed ")][0]]
    assert "| `gaussian` | train | 1,600 |" in card and f"| {len(train):,} |" in card


def test_every_at_scale_line_is_run_on_the_loopback_hub_or_says_why_not():
    lines = [line for block in blocks() if rule(block) == PARSE for line in commands(block)]
    reasons = {**{p: "run" for p in ON_LOOPBACK_HUB}, **AT_SCALE_NOT_RUN}
    unexplained = [line for line in lines if not any(line.startswith(p) for p in reasons)]
    assert not unexplained, f"at-scale lines neither run on the loopback Hub nor in AT_SCALE_NOT_RUN: {unexplained}"
    stale = [p for p in reasons if not any(line.startswith(p) for line in lines)]
    assert not stale, f"ON_LOOPBACK_HUB / AT_SCALE_NOT_RUN list lines no longer in README.md: {stale}"


def test_at_scale_hub_lines_run_against_the_loopback_hub(tmp_path, loopback_hub):
    """The at-scale lines that read mC4 from the Hub, run in order as written except for the shard list (and the
    eval documents that list can hold), against a loopback Hub that serves the bundled sample where the Hub serves
    allenai/c4: the Hub's layout, pinned revision and reachability rule, not a local folder."""
    from mc4_sampling.languages import C4_REVISION
    from trainer.data.tokenizer import train_tokenizer

    sample = REPO / "mc4_sampling" / "data" / "sample" / "multilingual"
    hub = loopback_hub({f"datasets/allenai/c4/multilingual/{p.name}": p for p in sample.iterdir()})
    hub.pin("allenai/c4", C4_REVISION, repo_type="dataset")
    lines = [line for block in blocks() if rule(block) == PARSE for line in commands(block)
             if any(line.startswith(p) for p in ON_LOOPBACK_HUB)]
    assert len(lines) == len(ON_LOOPBACK_HUB)
    texts = [line for p in sorted(sample.glob("c4-es.*"))[:1] for line in _sample_texts(p)]
    train_tokenizer(texts, str(tmp_path / "runs" / "tokenizer-es"), vocab_size=400)  # stands in for the not-run line
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               HF_HOME=str(tmp_path / "hf"), JAX_PLATFORMS="cpu", TOKENIZERS_PARALLELISM="false",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    for line in lines:
        for old, new in next(subs for p, subs in ON_LOOPBACK_HUB.items() if line.startswith(p)):
            assert old in line, f"{line}: the substitution {old!r} no longer applies"
            line = line.replace(old, new, 1)
        r = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0 and "Traceback" not in r.stderr, f"{line}\n{r.stderr[-3000:]}"
    assert any(f"/datasets/allenai/c4/resolve/{C4_REVISION}/multilingual/c4-es.tfrecord-00000" in req
               for req in hub.requests)  # read from the (loopback) Hub
    assert (tmp_path / "calib-es" / "calibration.json").is_file()
    for method in ("random", "stepwise", "gaussian"):
        assert len(list((tmp_path / "mc4-es-sampled" / "data" / method).glob("train-*.parquet"))) == 1
        assert (tmp_path / "mc4-es-sampled" / "tokens" / method / "manifest.json").is_file()


def _sample_texts(path: Path) -> list[str]:
    import gzip
    import json

    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def test_the_offline_artificial_languages_run_as_written(tmp_path):
    """The third offline block: two corpora of trainer generate-pcfg from the shipped treebank, each with its
    tokenizer (one token, one id) and a relation for every token of the vocabulary."""
    import json

    from transformers import AutoTokenizer

    root, outputs = run_block(2, tmp_path)
    for name in ("pcfg-zipf", "pcfg-loglinear"):
        folder = root / "runs" / name
        texts = [json.loads(line)["text"] for f in sorted((folder / "train").glob("*.jsonl"))
                 for line in f.read_text().splitlines()]
        assert len(texts) == 2000 and all(texts)
        tok = AutoTokenizer.from_pretrained(str(folder / "tokenizer"))
        words = texts[0].split()
        assert len(tok(texts[0], add_special_tokens=False)["input_ids"]) == len(words)
    labels = (root / "runs" / "pcfg-loglinear" / "labels.tsv").read_text().splitlines()
    counted = outputs[next(k for k in outputs if k.startswith("grep -c . runs/pcfg-loglinear/labels.tsv"))]
    assert int(counted.strip()) == len(labels) > 1000
