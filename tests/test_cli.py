"""The mc4-sampling command line."""

import json
import subprocess
import sys

import pytest

import mc4_sampling
from mc4_sampling.cli import build_parser, main


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "mc4_sampling.cli", *args], capture_output=True, text=True,
                          input=stdin)


def test_sample_writes_json_lines_and_a_summary(tmp_path, capsys):
    out = tmp_path / "kept.jsonl"
    rc = main(["sample", "--data-dir", mc4_sampling.SAMPLE_DATA_DIR, "--method", "gaussian", "--return-perplexity",
               "-o", str(out)])
    assert rc == 0
    docs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert docs and all(set(d) == {"text", "timestamp", "url", "perplexity"} for d in docs)
    err = capsys.readouterr().err
    assert f"documents kept: {len(docs)}" in err
    assert "documents read:" in err and "keep rate:" in err and "median" in err
    from datasets import load_dataset

    same = load_dataset("mc4-sampling", "es", data_dir=mc4_sampling.SAMPLE_DATA_DIR, sampling_method="gaussian",
                        streaming=True, split="train")
    assert [d["url"] for d in docs] == [d["url"] for d in same]


def test_sample_to_stdout_with_max_docs():
    result = run_cli("sample", "--data-dir", mc4_sampling.SAMPLE_DATA_DIR, "--method", "random", "--max-docs", "7")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 7
    assert "documents kept: 7" in result.stderr


def test_score_texts_and_stdin():
    result = run_cli("score", "El perro corre por el parque.", "")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and float(lines[0].split("\t")[0]) > 0
    result = run_cli("score", stdin="Una línea\\ny otra\nsegundo documento\n")
    assert len(result.stdout.splitlines()) == 2


@pytest.mark.parametrize("command", ["sample", "score", "calibrate", "publish"])
def test_help_documents_every_option(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    sub = next(a for a in build_parser()._subparsers._group_actions[0].choices.items() if a[0] == command)[1]
    for action in sub._actions:
        for flag in action.option_strings:
            assert flag in text
        if action.option_strings and action.dest != "help":
            assert action.help, f"{command} {action.option_strings} has no help"


def test_bad_input_is_a_clean_error_not_a_traceback():
    result = run_cli("sample", "--data-dir", mc4_sampling.SAMPLE_DATA_DIR, "--factor", "0")
    assert result.returncode == 2
    assert "--factor 0.0 is not valid" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("sample", "--lang", "xx")
    assert result.returncode == 2 and "language='xx'" in result.stderr
    result = run_cli("score", "--perplexity-model", "/nonexistent/es.arpa.bin", "hola")
    assert result.returncode == 2 and "/nonexistent/es.arpa.bin" in result.stderr
