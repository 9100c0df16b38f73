"""``publish``'s extension point: the trainer's ``--tokenizer`` found by its entry point, and refused up front,
with the ``pip install`` line, when it cannot be loaded or its extra is missing."""

from __future__ import annotations

import argparse

import pytest

from mc4_sampling import publish_outputs


def _parse(argv):
    parser = argparse.ArgumentParser()
    publish_outputs.add_arguments(parser)
    return parser.parse_args(argv)


def test_the_trainer_registers_token_shards(tmp_path):
    from trainer.data.publish_tokens import TOKEN_SHARDS
    from trainer.data.tokenizer import train_tokenizer

    found = publish_outputs.outputs()
    assert found["token-shards"] is TOKEN_SHARDS
    tok = train_tokenizer(["una casa roja", "la casa azul"] * 20, str(tmp_path / "tok"), vocab_size=300)
    args = _parse(["--tokenizer", str(tmp_path / "tok"), "--eval-docs", "5"])
    assert tok and args.tokenizer == str(tmp_path / "tok") and args.eval_docs == 5
    publish_outputs.check(args)  # the extra is installed here, the folder holds a tokenizer
    publish_outputs.check(_parse([]))


def test_without_the_entry_point_the_flag_says_what_to_install(monkeypatch):
    monkeypatch.setattr(publish_outputs, "entry_points", lambda group: [])
    assert "tokenizer" not in vars(_parse([])) or _parse([]).tokenizer is None
    publish_outputs.check(_parse([]))  # not asked for: nothing to say
    with pytest.raises(publish_outputs.MissingOutputError) as e:
        publish_outputs.check(_parse(["--tokenizer", "tok"]))
    assert str(e.value) == ("--tokenizer needs the trainer extra; install it with: "
                            "pip install 'mc4-sampling[trainer]'")


def test_a_missing_module_of_the_extra_is_refused_up_front(monkeypatch):
    from trainer.data.publish_tokens import TOKEN_SHARDS

    monkeypatch.setattr(type(TOKEN_SHARDS), "requires", ("transformers", "no_such_module_xyz"))
    with pytest.raises(publish_outputs.MissingOutputError,
                       match=r"^--tokenizer needs the trainer extra \(no_such_module_xyz missing\); install it with: "
                             r"pip install 'mc4-sampling\[trainer\]'$"):
        publish_outputs.check(_parse(["--tokenizer", "tok"]))


def test_the_command_refuses_before_any_work(monkeypatch, tmp_path, capsys):
    from mc4_sampling.cli import main

    monkeypatch.setattr(publish_outputs, "entry_points", lambda group: [])
    out = tmp_path / "out"
    assert main(["publish", str(out), "--method", "random", "--tokenizer", "tok"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith(
        "error: --tokenizer needs the trainer extra; install it with: pip install 'mc4-sampling[trainer]'")
    assert not out.exists()


def test_a_bad_tokenizer_or_option_is_refused_before_any_sampling(tmp_path):
    from trainer.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--tokenizer: no tokenizer folder at .*nowhere"):
        publish_outputs.check(_parse(["--tokenizer", str(tmp_path / "nowhere")]))
    with pytest.raises(ConfigError, match=r"--eval-fraction=1.5 is not valid; it must be in \(0, 1\]"):
        publish_outputs.check(_parse(["--tokenizer", str(tmp_path), "--eval-fraction", "1.5"]))
    with pytest.raises(ConfigError, match=r"--tokenizer: cannot load a tokenizer from"):
        publish_outputs.check(_parse(["--tokenizer", str(tmp_path)]))  # a folder without tokenizer files


@pytest.mark.parametrize("extra, words", [
    ([], "error: --eval-docs 100000 is more than the {n} eval candidates of the corpus' train shards (--data-dir "),
    (["--max-docs", "50", "--tasks", "1"], "error: --eval-docs 100000 is more than the --max-docs 50 documents"),
], ids=["candidates", "max-docs"])
def test_more_eval_documents_than_the_corpus_holds_is_refused_before_any_sampling(tmp_path, capsys, extra, words):
    """Before: every Parquet file was written, then "the es train split holds only N eval candidates". With
    --method none every document is kept: the corpus' candidates are the split's."""
    import mc4_sampling
    from mc4_sampling.cli import main
    from mc4_sampling.reader import iter_records
    from mc4_sampling.shards import shard_refs
    from trainer.data.holdout import content_key, is_candidate
    from trainer.data.tokenizer import train_tokenizer

    train_tokenizer(["una casa roja", "la casa azul"] * 20, str(tmp_path / "tok"), vocab_size=300)
    refs = shard_refs(["es"], "train", data_dir=mc4_sampling.SAMPLE_DATA_DIR)  # brute force: every train text
    n = len({content_key(r["text"]) for ref in refs for _, r in iter_records(ref.path)
             if is_candidate(r["text"], 0, 0.1)})
    out = tmp_path / "out"
    assert main(["publish", str(out), "--data-dir", mc4_sampling.SAMPLE_DATA_DIR, "--method", "none", "--tokenizer",
                 str(tmp_path / "tok"), "--eval-docs", "100000", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words.format(n=n) in err[0], err
    assert not out.exists()
