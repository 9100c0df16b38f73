"""``mc4-sampling publish`` (and ``sample``) over a corpus source: a FineWeb-2-shaped folder end to end with
2 workers, the same kept ids as an independent reader (``datasets``' Parquet reader + ``sample_dataset``)
whatever the tasks and workers, resume after a partial run, the card, and bad input as one line."""

from __future__ import annotations

import glob
import json
import os

import pyarrow.parquet as pq
import pytest
import yaml
from source_fixtures import make_fineweb2

from mc4_sampling.cli import main
from mc4_sampling.corpus import sample_dataset
from mc4_sampling.datatrove_logs import QUIET_ENV
from mc4_sampling.options import SamplingOptions
from mc4_sampling.publish import method_configs, publish
from mc4_sampling.sources import SourceOptions

LANG = "spa_Latn"
COLUMNS = ["text", "id", "url", "date", "language_score", "minhash_cluster_size", "perplexity"]


@pytest.fixture(scope="session")
def fw2(tmp_path_factory):
    """A small FineWeb-2-shaped folder: 3 train files of 160 documents (row groups of 64), a test file of 40."""
    return make_fineweb2(tmp_path_factory.mktemp("fw2"), files=3, docs_per_file=160, test_docs=40, row_group_size=64)


def cli(args) -> int:
    """The command line in this process; datatrove's quiet setting it makes is not left to later tests'
    subprocesses (which would inherit it)."""
    saved = os.environ.get(QUIET_ENV)
    try:
        return main(args)
    finally:
        if saved is None:
            os.environ.pop(QUIET_ENV, None)
        else:
            os.environ[QUIET_ENV] = saved


@pytest.fixture(autouse=True)
def _quiet_setting_restored():
    """publish() in this process quiets datatrove for the processes it starts from then on: restored after
    each test, so that later tests' subprocesses do not inherit it."""
    saved = os.environ.get(QUIET_ENV)
    yield
    if saved is None:
        os.environ.pop(QUIET_ENV, None)
    else:
        os.environ[QUIET_ENV] = saved


def kept(out, config="gaussian", split="train", column="id"):
    files = sorted(glob.glob(os.path.join(out, "data", config, f"{split}-*.parquet")))
    return [v for f in files for v in pq.read_table(f, columns=[column]).column(0).to_pylist()]


def reference_ids(fw2, split="train", **options):
    """What an independent reader keeps: datasets' own Parquet reader, sample_dataset (CorpusSampler)."""
    import datasets

    files = sorted(glob.glob(str(fw2 / "data" / LANG / split / "*.parquet")))
    ds = datasets.load_dataset("parquet", data_files=files, split="train", streaming=True)
    return [x["id"] for x in sample_dataset(ds, id_column="id", language=LANG, **options)]


def one_error_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="session")
def published(fw2, tmp_path_factory):
    """The CLI's publish of the folder with 2 workers, gaussian and random (the embedded model, spa_Latn -> es)."""
    out = tmp_path_factory.mktemp("pub") / "subset"
    code = cli(["publish", str(out), "--source", "fineweb2", "--location", str(fw2), "--lang", LANG,
                 "--method", "gaussian", "random", "--workers", "2", "--seed", "7"])
    assert code == 0
    return out


def test_two_workers_keep_what_an_independent_reader_keeps(published, fw2):
    test_ids = pq.read_table(str(fw2 / "data" / LANG / "test"), columns=["id"]).column(0).to_pylist()
    for method in ("gaussian", "random"):
        ids = kept(published, method, "train")
        assert ids == reference_ids(fw2, "train", sampling_method=method, seed=7)
        assert 0 < len(ids) < 480
        assert kept(published, method, "test") == test_ids  # other splits kept whole, as mC4's validation
    from datasets import load_dataset

    streamed = load_dataset("mc4-sampling", source="fineweb2", language=LANG, data_dir=str(fw2), seed=7,
                            sampling_method="gaussian", streaming=True, split="train")
    assert [x["id"] for x in streamed] == kept(published, "gaussian", "train")  # the builder keeps the same
    table = pq.read_table(sorted(glob.glob(str(published / "data" / "gaussian" / "train-*.parquet")))[0])
    assert table.column_names == COLUMNS
    source = pq.read_table(sorted(glob.glob(str(fw2 / "data" / LANG / "train" / "*.parquet")))[0])
    by_id = {r["id"]: r for r in source.to_pylist()}
    for row in table.to_pylist()[:20]:  # the source's values, unchanged
        assert {k: v for k, v in row.items() if k != "perplexity"} == {k: by_id[row["id"]][k] for k in COLUMNS[:-1]}


def test_card_names_the_source_and_its_columns(published, fw2):
    card = (published / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["language"] == ["spa"] and "fineweb2" in meta["tags"]
    info = meta["dataset_info"][0]
    assert [f["name"] for f in info["features"]] == COLUMNS
    assert {f["name"]: f["dtype"] for f in info["features"]}["minhash_cluster_size"] == "int64"
    assert {s["name"]: s["num_examples"] for s in info["splits"]} == {
        "train": len(kept(published, "gaussian", "train")), "test": len(kept(published, "gaussian", "test"))}
    assert "| FineWeb-2 (`fineweb2`) | `spa_Latn` |" in card and str(fw2) in card
    assert "the `id` column" in card
    manifest = json.loads((published / ".mc4-sampling" / "options.json").read_text())
    assert manifest["source"]["source"] == "fineweb2" and manifest["source"]["location"] == str(fw2)


def test_sample_on_the_source_keeps_the_same_documents(published, tmp_path):
    out = tmp_path / "kept.jsonl"
    assert cli(["sample", "--source", "fineweb2", "--location", str(published.parent.parent / "x"), "--lang", LANG,
                 "-o", str(out)]) == 2  # a folder that is not there: refused
    fw2 = json.loads((published / ".mc4-sampling" / "options.json").read_text())["source"]["location"]
    assert cli(["sample", "--source", "fineweb2", "--location", fw2, "--lang", LANG, "--seed", "7",
                 "-o", str(out)]) == 0
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == kept(published, "gaussian", "train")
    assert cli(["sample", "--source", "fineweb2", "--location", fw2, "--lang", LANG, "--seed", "7", "--split", "test",
                 "--validation-factor", "0.5", "-o", str(out), "--overwrite"]) == 0
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert 5 < len(ids) < 35  # the test split by the validation rule: half of gaussian's keep probability


def test_same_kept_ids_for_1_2_3_tasks_and_a_resume(fw2, tmp_path):
    options = SamplingOptions(sampling_method="gaussian", seed=3)
    source = SourceOptions("fineweb2", LANG, str(fw2))
    results = {}
    for tasks in (1, 2, 3):
        out = tmp_path / f"t{tasks}"
        publish(method_configs(options, ["gaussian"]), str(out), source=source, splits=["train"], tasks=tasks,
                workers=1)
        results[tasks] = kept(out), kept(out, column="perplexity")
    assert results[1] == results[2] == results[3]
    assert results[1][0] == reference_ids(fw2, sampling_method="gaussian", seed=3)

    out = tmp_path / "t3"  # a partial run: one unit lost its file and marker, a temporary file left behind
    units = sorted(glob.glob(str(out / ".mc4-sampling" / "units" / "*.json")))
    assert len(units) >= 3
    lost = os.path.basename(units[1])[:-len(".json")]
    os.unlink(units[1])
    os.unlink(out / "data" / "gaussian" / f"{lost}.parquet")
    (out / "data" / "gaussian" / f".tmp.{lost}.1.parquet").write_bytes(b"partial")
    others = {f: os.stat(f).st_mtime_ns for f in glob.glob(str(out / "data" / "gaussian" / "*.parquet"))}
    result = publish(method_configs(options, ["gaussian"]), str(out), source=source, splits=["train"], tasks=3,
                     workers=1)
    assert result.complete and (kept(out), kept(out, column="perplexity")) == results[1]
    assert {f: os.stat(f).st_mtime_ns for f in others} == others  # the finished units were not redone
    assert not glob.glob(str(out / "data" / "gaussian" / ".tmp.*"))


@pytest.mark.parametrize("args, words", [
    (["--source", "fineweb3"], "--source"),
    (["--source", "fineweb2", "--lang", "spa_Latm"], "spa_Latn"),
    (["--source", "fineweb2", "--lang", LANG, "--text-column", "body"], "body"),
    (["--source", "fineweb2", "--lang", LANG, "--score-column", "quality"],
     "--score-column quality: the FineWeb-2 source has no such column"),
    (["--source", "fineweb2", "--lang", LANG, "--splits", "validation"], "--splits validation"),
    (["--source", "fineweb2", "--lang", LANG, "--data-dir", "x"], "--data-dir locates mC4 files"),
    (["--lang", "es", "--text-column", "body"], "--text-column applies to a corpus source"),
    (["--lang", "es", "--score-column", "quality"], "--score-column quality: mC4 has no such column"),
])
def test_bad_input_is_one_line_before_any_work(fw2, tmp_path, capsys, args, words):
    out = tmp_path / "out"
    assert cli(["publish", str(out), "--location", str(fw2), *args]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert words in line, line
    assert not out.exists()


def test_score_reads_a_split_of_the_source(fw2, capsys):
    assert cli(["score", "--source", "fineweb2", "--location", str(fw2), "--lang", LANG, "--split", "test"]) == 0
    out, err = capsys.readouterr()
    scores = [float(line.split("\t")[0]) for line in out.splitlines()]
    assert len(scores) == 40 and all(s > 1 for s in scores) and err.startswith("perplexity\t")
    assert cli(["score", "--source", "fineweb2", "--location", str(fw2), "--lang", LANG, "--split", "dev"]) == 2
    out, err = capsys.readouterr()
    assert not out and "--split dev: the FineWeb-2 source has the splits train, test" in one_error_line(err)


def test_hplt3_score_column_is_the_score_and_is_kept_once(tmp_path):
    """HPLT 3.0's doc_scores[0] as the score (--score-column doc_score, threshold 7): exactly the documents
    whose overall score is at least 7 (the fixture's rows, not read back through the source), the column once."""
    from source_fixtures import hplt3_rows, make_hplt3, sample_documents

    root = make_hplt3(tmp_path / "hplt3", n=300)
    out = tmp_path / "out"
    assert cli(["publish", str(out), "--source", "hplt3", "--location", str(root), "--lang", LANG,
                 "--score-column", "doc_score", "--method", "threshold", "--weighting-option", "low=7",
                 "--workers", "1"]) == 0
    expected = {r["id"] for r in hplt3_rows(sample_documents(300)) if r["doc_scores"][0] >= 7}
    assert set(kept(out, "threshold")) == expected and len(kept(out, "threshold")) == len(expected)
    files = sorted(glob.glob(str(out / "data" / "threshold" / "train-*.parquet")))
    assert pq.read_schema(files[0]).names == ["text", "id", "url", "web_register", "doc_score"]
    meta = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert [f["name"] for f in meta["dataset_info"][0]["features"]] == ["text", "id", "url", "web_register",
                                                                         "doc_score"]


def test_tokenizer_options_are_checked_for_a_source_before_any_work(fw2, tmp_path, capsys):
    """publish --tokenizer on a source (no --splits: the source's own): the eval-docs check runs before any work."""
    from trainer_helpers import make_tokenizer

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in
                              pq.read_table(str(fw2 / "data" / LANG / "test")).to_pylist()))
    tok = make_tokenizer(str(tmp_path / "tok"), [str(corpus)], vocab_size=200)
    out = tmp_path / "out"
    assert cli(["publish", str(out), "--source", "fineweb2", "--location", str(fw2), "--lang", LANG,
                 "--tokenizer", tok, "--eval-docs", "20", "--max-docs", "10", "--tasks", "1"]) == 2
    assert "--eval-docs 20 is more than the --max-docs 10" in one_error_line(capsys.readouterr().err)
    assert not out.exists()
    # more eval documents than the kept train documents hold: counted on the source before any Parquet file
    assert main(["publish", str(out), "--source", "fineweb2", "--location", str(fw2), "--lang", LANG,
                 "--method", "random", "--factor", "0.05", "--tokenizer", tok, "--eval-docs", "500",
                 "--tasks", "1"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "--eval-docs 500 is more than the" in line and f"--source fineweb2 --location {fw2}" in line, line
    assert not list(out.rglob("*.parquet"))


def test_files_source_with_its_own_columns(tmp_path):
    """--source files on JSON lines with other text and id columns and a dict column: publish keeps what
    sample keeps, the id as ``id``, the dict as its JSON text."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    docs = [{"body": f"Documento {i}. El perro corre por el parque y la casa es grande.", "doc": f"d{i}",
             "meta": {"k": i}, "n": i} for i in range(60)]
    (folder / "a.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    flags = ["--source", "files", "--data-files", f"train={folder}/*.jsonl", "--lang", "es", "--text-column", "body",
             "--id-column", "doc", "--metadata-columns", "meta", "n", "--method", "random", "--seed", "5"]
    out = tmp_path / "out"
    assert cli(["publish", str(out), *flags, "--workers", "1"]) == 0
    assert cli(["sample", *flags, "-o", str(tmp_path / "kept.jsonl")]) == 0
    sampled = [json.loads(line) for line in (tmp_path / "kept.jsonl").read_text().splitlines()]
    table = pq.read_table(glob.glob(str(out / "data" / "random" / "train-*.parquet"))[0])
    assert table.column_names == ["text", "id", "meta", "n", "perplexity"]
    rows = table.to_pylist()
    assert [r["id"] for r in rows] == [d["id"] for d in sampled] and 10 < len(rows) < 50
    by_id = {d["doc"]: d for d in docs}
    assert all(json.loads(r["meta"]) == by_id[r["id"]]["meta"] and r["n"] == by_id[r["id"]]["n"] for r in rows)
