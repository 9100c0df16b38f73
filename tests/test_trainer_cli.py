"""The command line (`trainer tokenizer`, `python -m trainer.data.tokenizer_command`, --help) and the upload plan."""

from __future__ import annotations

import json

import pytest
from trainer_helpers import make_corpus

from trainer.cli import main
from trainer.data.tokenizer_command import main as tokenizer_main
from trainer.errors import ExportError
from trainer.export import upload_plan


def test_tokenizer_command_writes_a_roberta_tokenizer(tmp_path, capsys):
    from transformers import AutoTokenizer

    paths = make_corpus(str(tmp_path / "c"), n_docs=150)
    out = str(tmp_path / "tok")
    sets = {"data.path": "json", "data.name": None, "data.kwargs": {}, "data.sampling": {}, "data.data_files": paths,
            "data.num_eval_samples": 10}
    argv = ["--config", "tiny-cpu", "--output", out, "--num-docs", "100", "--vocab-size", "350"]
    for k, v in sets.items():
        argv += ["--set", f"{k}={json.dumps(v)}"]
    assert tokenizer_main(argv) == 0
    assert "trained on 100 documents" in capsys.readouterr().out
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.is_fast and len(tok) == 350
    assert tok.model_max_length == 130 - 2  # tiny-cpu's positions, not its training length of 64
    assert [tok.convert_ids_to_tokens(i) for i in range(5)] == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    ids = tok("El perro <mask>.")["input_ids"]
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.mask_token_id in ids
    # <mask> takes the space before it (lstrip): no lone "Ġ" token in front of it
    before = tok.convert_ids_to_tokens(ids[ids.index(tok.mask_token_id) - 1])
    assert before != "Ġ"


def test_tokenizer_command_reports_bad_config(capsys):
    assert main(["tokenizer", "--config", "tiny-cpu", "--set", "data.txt_column=x", "--output", "/nonexistent"]) == 2
    assert "unknown config key 'data.txt_column'" in capsys.readouterr().err


@pytest.mark.parametrize("command", [[], ["train"], ["export"], ["fill-mask"], ["tokenizer"]])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith(" ".join(["usage: trainer", *command]))


def test_no_command_and_no_config_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2 and "give a command or --config" in capsys.readouterr().err


def test_upload_plan_needs_a_complete_export(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ExportError, match="missing model.safetensors, tokenizer.json, README.md"):
        upload_plan(str(tmp_path))


def test_from_last_good_flag_reaches_the_config(monkeypatch):
    """`trainer --config C --from-last-good` and `trainer train --config C --from-last-good` set
    checkpoint.from_last_good; without the flag it stays off; `export` takes it too."""
    import trainer.entry
    from trainer.cli import build_parser

    class Stop(Exception):
        pass

    seen = []

    def record(cfg):
        seen.append(cfg.checkpoint.from_last_good)
        raise Stop  # the config is all this test needs

    monkeypatch.setattr(trainer.entry, "train", record)
    for argv, want in ((["--config", "tiny-cpu", "--from-last-good"], True),
                       (["train", "--config", "tiny-cpu", "--from-last-good"], True),
                       (["--from-last-good", "train", "--config", "tiny-cpu"], True),
                       (["train", "--config", "tiny-cpu"], False)):
        args = build_parser().parse_args(argv)
        handler = getattr(args, "handler", None)
        if handler is None:
            from trainer.cli import _train as handler
        with pytest.raises(Stop):
            handler(args)
        assert seen.pop() is want, argv
    export = build_parser().parse_args(["export", "--checkpoint", "c", "--output", "o", "--from-last-good"])
    assert export.from_last_good
