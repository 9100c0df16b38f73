"""``mc4_sampling.hub``: card templates and folder uploads, against the loopback Hub."""

import pytest
import yaml

from mc4_sampling.hub import HubError, push_folder, write_card


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
