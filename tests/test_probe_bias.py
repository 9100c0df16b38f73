"""``trainer probe-bias``: fill-mask completions per attribute across models of two families, checked against
PyTorch transformers; the prompt file's mistakes are one line naming the file and line."""

from __future__ import annotations

import csv
import functools
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from finetune_data import corpus_texts  # noqa: E402

from trainer.cli import main  # noqa: E402
from trainer.finetune.probe_bias import read_prompt_file  # noqa: E402

PROMPTS = """\
# two groups, one prompt each
attributes:
  gender: [Él, Ella]
  origin: [chinos, europeos, indios]
prompts:
  - "{gender} come [MASK] en la casa."
  - "Los {origin} son [MASK]."
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A random tiny RoBERTa and a random tiny ModernBERT, written by transformers (not by our export), sharing
    one small byte-level BPE tokenizer."""
    from transformers import ModernBertConfig, ModernBertForMaskedLM, RobertaConfig, RobertaForMaskedLM

    from trainer.data.tokenizer import train_tokenizer

    tmp = tmp_path_factory.mktemp("probe")
    tok = train_tokenizer(corpus_texts(60), str(tmp / "tok"), vocab_size=200, min_frequency=1, model_max_length=64)
    ids = dict(pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    torch.manual_seed(0)
    configs = {
        "roberta": RobertaForMaskedLM(RobertaConfig(
            vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
            max_position_embeddings=66, type_vocab_size=1, layer_norm_eps=1e-5, **ids)),
        "modernbert": ModernBertForMaskedLM(ModernBertConfig(
            vocab_size=len(tok), hidden_size=16, intermediate_size=24, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=64, local_attention=8, cls_token_id=tok.bos_token_id,
            sep_token_id=tok.eos_token_id, **ids)),
    }
    out = {}
    for name, model in configs.items():
        with torch.no_grad():  # sharper than the initial weights: distinct top completions
            for p in model.parameters():
                p.mul_(8.0 if p.dim() > 1 else 1.0)
        folder = str(tmp / name)
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        out[name] = folder
    return out


@functools.lru_cache(maxsize=None)
def _torch_model(folder: str):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    return AutoTokenizer.from_pretrained(folder), AutoModelForMaskedLM.from_pretrained(
        folder, attn_implementation="eager").eval()


def _reference(folder: str, text: str) -> np.ndarray:
    """PyTorch transformers' p(token | text) at the mask (the independent reference)."""
    tok, model = _torch_model(folder)
    enc = tok(text, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits[0].double()
    pos = int((enc["input_ids"][0] == tok.mask_token_id).nonzero()[0, 0])
    return torch.softmax(logits[pos], -1).numpy()


def test_probe_bias_table_and_pictures_match_pytorch(models, tmp_path, capsys):
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(PROMPTS, encoding="utf-8")
    out = tmp_path / "bias"
    assert main(["probe-bias", str(prompts), "--model", models["roberta"], "--model", models["modernbert"],
                 "--top-k", "3", "--output", str(out)]) == 0
    assert "2 model(s) x 5 prompts, top 3: wrote" in capsys.readouterr().out
    labels = [os.path.relpath(models[m], os.path.dirname(os.path.dirname(models[m]))) for m in models]
    assert {"bias.md", "bias.csv", "bias.json"} | {f"bias_{lab.replace('/', '_')}.png" for lab in labels} \
        <= set(os.listdir(out))
    rows = json.loads((out / "bias.json").read_text(encoding="utf-8"))["rows"]
    assert len(rows) == 2 * 5 * 3
    assert {(r["group"], r["value"]) for r in rows} == {("gender", "Él"), ("gender", "Ella"), ("origin", "chinos"),
                                                         ("origin", "europeos"), ("origin", "indios")}
    for label, folder in zip(labels, models.values()):
        for prompt in sorted({r["prompt"] for r in rows if r["model"] == label}):
            assert "<mask>" in prompt and "[MASK]" not in prompt  # the slot became the model's mask token
            mine = sorted((r for r in rows if r["model"] == label and r["prompt"] == prompt), key=lambda r: r["rank"])
            ref = _reference(folder, prompt)
            ours = np.array([r["probability"] for r in mine])
            np.testing.assert_allclose(ours, ref[[r["token"] for r in mine]], atol=1e-5)
            np.testing.assert_allclose(ours, np.sort(ref)[::-1][:3], atol=1e-5)  # the top 3, in order
            assert np.all(np.diff(ours) <= 0)
    table = list(csv.DictReader((out / "bias.csv").open(encoding="utf-8")))
    assert len(table) == len(rows) and set(table[0]) == {"model", "group", "value", "prompt", "rank", "completion",
                                                          "probability"}
    md = (out / "bias.md").read_text(encoding="utf-8")
    assert "### origin: Los {origin} son [MASK]." in md and md.count("| indios | ") == 2
    from matplotlib.image import imread

    pictures = [n for n in os.listdir(out) if n.endswith(".png")]
    assert len(pictures) == 2
    for name in pictures:
        img = imread(out / name)
        assert img.shape[0] > 400 and img[..., :3].std() > 0.05


def test_jsonl_prompt_file_reads_as_the_yaml_one(tmp_path):
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text(PROMPTS, encoding="utf-8")
    lines = [{"attributes": {"gender": ["Él", "Ella"], "origin": ["chinos", "europeos", "indios"]}},
             {"prompt": "{gender} come [MASK] en la casa."}, {"prompt": "Los {origin} son [MASK]."}]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n", encoding="utf-8")
    a, b = read_prompt_file(str(yaml_file)), read_prompt_file(str(jsonl))
    assert a.attributes == b.attributes and [p.text for p in a.prompts] == [p.text for p in b.prompts]
    assert [p.line for p in a.prompts] == [6, 7] and [p.line for p in b.prompts] == [2, 3]
    shipped = read_prompt_file("bias-es")  # the shipped example, by name
    assert set(shipped.attributes) == {"gender", "religion", "origin"} and len(shipped.prompts) >= 4


@pytest.mark.parametrize("text, needle", [
    (PROMPTS.replace('"{gender} come', '"Él come'), "p.yaml, line 6: the prompt 'Él come [MASK] en la casa.' has no "
                                                    "placeholder; write one of {gender}, {origin}"),
    (PROMPTS.replace("{origin} son", "{region} son"), "p.yaml, line 7: the placeholder {region} names no attribute "
                                                      "group; groups: gender, origin"),
    (PROMPTS.replace("son [MASK]", "son"), "p.yaml, line 7: the prompt 'Los {origin} son.' has 0 mask slots; write "
                                           "exactly one [MASK]"),
    (PROMPTS.replace("come [MASK]", "[MASK] come [MASK]"), "p.yaml, line 6: the prompt '{gender} [MASK] come [MASK] "
                                                           "en la casa.' has 2 mask slots"),
    (PROMPTS.replace("gender: [Él, Ella]", "gender: []"), "p.yaml: attribute group 'gender' must be a non-empty list"),
    (PROMPTS.replace("prompts:", "prompt:"), "p.yaml: a prompt file has the keys 'attributes' and 'prompts', got "
                                             "['attributes', 'prompt']"),
    (PROMPTS.replace("son [MASK].\"", "son [MASK]."), "p.yaml, line 8 column 1: not valid YAML"),
    (PROMPTS.replace("  - \"Los", "  -  - \"Los"), "p.yaml, line 7: a prompt must be a non-empty string"),
])
def test_bad_prompt_file_is_one_line_naming_file_and_line(tmp_path, capsys, text, needle):
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    assert main(["probe-bias", str(path), "--model", "nobody/nothing", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in err[0] and needle in err[0], err
    assert not (tmp_path / "o").exists()


def test_bad_jsonl_line_and_unknown_model_are_one_line(tmp_path, capsys, models):
    path = tmp_path / "p.jsonl"
    path.write_text('{"attributes": {"g": ["a", "b"]}}\n{"prompt": "{g} es [MASK]."}\n{"promt": "x"}\n')
    assert main(["probe-bias", str(path), "--model", models["roberta"], "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'p.jsonl, line 3: each line is {"attributes": {...}} or {"prompt": "..."}' in err[0]
    path.write_text('{"attributes": {"g": ["a", "b"]}}\n{"prompt": "{g} es [MASK]."}\n')
    for model, needle in [(str(tmp_path / "missing"), "--model " + str(tmp_path / "missing") + ": no such model "
                                                      "folder (and not a Hub model id owner/name)"),
                          (str(tmp_path), f"--model {tmp_path}: no config.json (not a transformers model folder)")]:
        assert main(["probe-bias", str(path), "--model", models["roberta"], "--model", model,
                     "--output", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
        assert not (tmp_path / "o").exists()
    assert main(["probe-bias", str(tmp_path / "none.yaml"), "--model", "x", "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "prompt file " in err and "not found: give a .yaml or .jsonl file, or a shipped one (bias-es)" in err


def test_a_hub_id_gives_what_its_folder_gives(models, loopback_hub, tmp_path, capsys):
    folder = models["roberta"]
    loopback_hub({f"me/tiny-roberta/{name}": open(os.path.join(folder, name), "rb").read()
                  for name in os.listdir(folder)})
    path = tmp_path / "p.jsonl"
    path.write_text('{"attributes": {"origin": ["chinos", "indios"]}}\n{"prompt": "Los {origin} son [MASK]."}\n',
                    encoding="utf-8")
    out = tmp_path / "o"
    assert main(["probe-bias", str(path), "--model", "me/tiny-roberta", "--model", folder, "--top-k", "4",
                 "--output", str(out)]) == 0
    rows = json.loads((out / "bias.json").read_text(encoding="utf-8"))["rows"]
    hub = [(r["value"], r["token"], r["probability"]) for r in rows if r["model"] == "me/tiny-roberta"]
    local = [(r["value"], r["token"], r["probability"]) for r in rows if r["model"] != "me/tiny-roberta"]
    assert len(hub) == 8 and hub == local
