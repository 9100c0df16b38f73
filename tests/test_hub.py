"""``mc4_sampling.common.hub``: card templates and folder uploads, against the loopback Hub."""

import pytest
import yaml

from mc4_sampling.common.hub import HubError, push_folder, write_card


def test_push_folder_uploads_one_commit_that_resolves_by_branch_and_commit_id(tmp_path, loopback_hub):
    from huggingface_hub import hf_hub_download

    hub = loopback_hub()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "a.txt").write_text("a")
    write_card(str(tmp_path), "---\nlicense: mit\n---\n# card\n")
    info = push_folder(str(tmp_path), "someone/thing", repo_type="dataset", commit_message="first")
    assert hub.created[0]["type"] == "dataset"
    assert hub.repo_files("someone/thing", repo_type="dataset") == {"README.md": b"---\nlicense: mit\n---\n# card\n",
                                                                    "data/a.txt": b"a"}
    assert [c["oid"] for c in hub.commits] == [info.oid] and hub.validated
    (tmp_path / "data" / "a.txt").write_text("b")
    push_folder(str(tmp_path), "someone/thing", repo_type="dataset", allow_patterns=["data/*"])
    assert hub.repo_files("someone/thing", repo_type="dataset")["data/a.txt"] == b"b"
    assert hub.repo_files("someone/thing", repo_type="dataset", revision=info.oid)["data/a.txt"] == b"a"
    old = hf_hub_download("someone/thing", "data/a.txt", repo_type="dataset", revision=info.oid, endpoint=hub.url)
    assert open(old).read() == "a"


def test_push_folder_failures_name_repo_and_folder_but_not_the_token(tmp_path, loopback_hub, monkeypatch):
    hub = loopback_hub()
    hub.close()  # nothing listens any more
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    with pytest.raises(HubError, match="someone/thing") as e:
        push_folder(str(tmp_path), "someone/thing", repo_type="model", token="hf_other_secret")
    assert str(tmp_path) in str(e.value) and "secret" not in str(e.value)


def test_the_model_card_has_yaml_front_matter():
    from trainer.export import model_card

    meta = {"config": {"data": {"path": "mc4-sampling", "name": "es", "max_seq_length": 128}},
            "spec": {"num_layers": 2, "hidden_size": 32, "num_heads": 2, "vocab_size": 400}}
    card = model_card(meta, 12, "someone/x", {"loss": 2.5, "accuracy": 0.25})
    assert yaml.safe_load(card.split("---")[1])["pipeline_tag"] == "fill-mask"
    assert "| held-out masked-LM loss / accuracy | 2.5000 / 0.2500 |\n\n```python" in card


def test_trainer_cards_live_in_the_trainer_and_render_byte_identical():
    """The trainer's templates moved from mc4_sampling/data/cards/ to trainer/cards/; the cards are
    the same bytes as before the move (sha256 of the cards rendered by the code before it)."""
    import hashlib
    from pathlib import Path

    from mc4_sampling.common.hub import CARDS_DIR, render_card
    from trainer.cards import CARDS_DIR as TRAINER_CARDS
    from trainer.export import model_card
    from trainer.finetune.run import classifier_card

    # the sampler's: mC4's and any other corpus source's
    assert sorted(p.name for p in CARDS_DIR.glob("*.md")) == ["dataset-source.md", "dataset.md"]
    assert sorted(p.name for p in TRAINER_CARDS.glob("*.md")) == ["finetuned.md", "model.md"]
    template = TRAINER_CARDS / "model.md"
    assert render_card(Path(template), **FIELDS_OF(template)) == template.read_text().format(**FIELDS_OF(template))
    meta = {"config": {"name": "tiny", "data": {"path": "mc4-sampling", "name": "es", "max_seq_length": 128,
                                                "kwargs": {"a": 1}},
                       "training": {"global_batch_size": 8}, "optimizer": {"learning_rate": 6e-4}},
            "spec": {"num_layers": 2, "hidden_size": 32, "num_heads": 2, "vocab_size": 400}}
    settings = {"max_length": 64, "batch_size": 8, "epochs": 2, "learning_rate": 5e-5, "warmup_steps": 3,
                "weight_decay": 0.01}

    def report(kind, cols):
        return {"kind": kind, "metrics": {"f1": {"mean": 0.5, "std": 0.1}}, "settings": settings, "task": "t",
                "dataset": "d", "dataset_config": "es", "revision": None, "eval_split": "validation",
                "labels": ["O", "B-PER"], "runs": [1, 2], "reruns": 1, "text_columns": cols}

    cards = [model_card(meta, 12, "someone/x", {"loss": 2.5, "accuracy": 0.25}, revisions="\n## Revisions\n"),
             model_card(meta, 3),
             classifier_card(report("token", ("tokens",)), "someone/base", None, "name", 1),
             classifier_card(report("sequence", ("premise", "hypothesis")), "/tmp/x", "me/y", None, None),
             classifier_card(report("sequence", ("text",)), "/tmp/x", None, None, 0)]
    assert [hashlib.sha256(c.encode()).hexdigest()[:16] for c in cards] == [
        "7d8573bfbb1301ff", "4c0d91a140abb1bf", "db6af6230a2ba186", "8b7008c8b684119d", "20bcb1e7208b292e"]


def FIELDS_OF(template) -> dict:
    """Every ``{field}`` of a template, filled with its own name."""
    import string

    return {f: f"<{f}>" for _, f, _, _ in string.Formatter().parse(template.read_text()) if f}


# --- the one resolver of Hub locations ----------------------------------------------------------


def test_hub_locations_parse():
    from mc4_sampling.common.hub import HubLocation

    assert HubLocation.parse("edugp/kenlm/wikipedia@v1") == HubLocation("edugp/kenlm", "wikipedia", "v1")
    assert HubLocation.parse("hf://me/model") == HubLocation("me/model")
    assert str(HubLocation("edugp/kenlm", "wikipedia")) == "edugp/kenlm/wikipedia@main"
    for not_one in ("./me/model", "/abs/path", "~/x/y", "justaname", "a b/c"):
        assert HubLocation.parse(not_one) is None


def test_fetch_downloads_files_of_a_subfolder(loopback_hub):
    from mc4_sampling.common.hub import HubLocation, fetch

    loopback_hub({"me/files/sub/a.txt": b"a", "me/files/sub/b.txt": b"b"})
    folder = fetch(HubLocation("me/files", "sub"), "files 'me/files'", ["a.txt", "c.txt"], missing_ok=True)
    assert open(f"{folder}/a.txt").read() == "a"


@pytest.mark.parametrize("load", ["scorer", "finetune", "transfer"])
def test_every_hub_download_fails_fast_when_the_hub_cannot_be_reached(monkeypatch, load):
    """The sampler's scorer models and the trainer's models use the same resolver: one line at once."""
    import time

    from mc4_sampling.common import hub
    from mc4_sampling.common.errors import HubUnreachableError

    monkeypatch.setattr(hub, "_PROBED", {})
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    start = time.monotonic()
    with pytest.raises(HubUnreachableError, match="the Hub cannot be reached at http://127.0.0.1:9"):
        if load == "scorer":
            from mc4_sampling.scoring.base import local_or_hub

            local_or_hub("someone/classifier", what="transformers model folder")
        elif load == "finetune":
            from trainer.finetune.loading import load_model

            load_model("someone/model")
        else:
            from trainer.research.transfer import _download

            _download("someone/model")
    assert time.monotonic() - start < 10
