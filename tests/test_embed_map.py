"""``mc4-sampling embed-map`` on the bundled sample with a tiny random encoder made here: the embeddings are the
masked mean of the last hidden states, the kept/dropped colouring is exactly what ``sample`` keeps, the same
seed gives the same map, the HTML page fetches nothing."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

import mc4_sampling  # noqa: E402
from mc4_sampling.cli import main  # noqa: E402

DOCS = 100


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    """A random tiny RoBERTa encoder (transformers folder) with a byte-level BPE tokenizer."""
    from finetune_data import corpus_texts
    from transformers import RobertaConfig, RobertaModel

    from trainer.data.tokenizer import train_tokenizer

    folder = str(tmp_path_factory.mktemp("encoder"))
    tok = train_tokenizer(corpus_texts(40), folder, vocab_size=200, min_frequency=1, model_max_length=64)
    torch.manual_seed(0)
    RobertaModel(RobertaConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=32, max_position_embeddings=66, type_vocab_size=1,
                               pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
                               eos_token_id=tok.eos_token_id), add_pooling_layer=False).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def map_run(encoder, tmp_path_factory):
    out = tmp_path_factory.mktemp("map") / "m"
    assert main(["embed-map", "--encoder", encoder, "--docs", str(DOCS), "--method", "gaussian", "--factor", "0.5",
                 "--max-length", "32", "--shards-to-read", "2", "-o", str(out)]) == 0
    return out


def test_embeddings_are_the_masked_mean_of_the_last_hidden_states(encoder):
    from transformers import AutoModel, AutoTokenizer

    from mc4_sampling.embedding import embed_texts

    texts = ["El perro come pan.", "La casa grande del río azul tiene un árbol muy verde y una flor roja."]
    ours = embed_texts(texts, encoder, batch_size=2, max_length=24)  # padded together, the second truncated
    tok, model = AutoTokenizer.from_pretrained(encoder), AutoModel.from_pretrained(encoder).eval()
    for text, row in zip(texts, ours):  # one at a time: no padding at all
        ids = tok(text, return_tensors="pt", truncation=True, max_length=24)
        with torch.no_grad():
            hidden = model(**ids).last_hidden_state[0].numpy()
        np.testing.assert_allclose(row, hidden.mean(axis=0), atol=1e-5)


def test_map_of_the_bundled_sample_matches_sampling(map_run):
    from mc4_sampling.builder import Mc4Sampling
    from mc4_sampling.plan import SamplingPlan
    from mc4_sampling.shards import shard_refs_for

    record = json.loads((map_run / "embed_map.json").read_text())
    docs = record["documents"]
    assert len(docs) == DOCS and record["method"] == "gaussian" and record["factor"] == 0.5
    assert record["score_name"] == "perplexity" and all(d["score"] > 0 for d in docs)
    # kept here <=> kept by `sample` (the builder's sampler: the same draw of the same shard and line, the same rule)
    config = Mc4Sampling(config_name="es", data_dir=mc4_sampling.SAMPLE_DATA_DIR, sampling_method="gaussian",
                         sampling_factor=0.5).config
    sampler = SamplingPlan.resolve(config, "es").document_sampler("train")
    shards = {d["where"].split(",")[0] for d in docs}
    kept_lines = set()
    for shard in shard_refs_for(config, "train"):
        name = shard.path.rsplit("/", 1)[-1]
        if name in shards:
            kept_lines |= {f"{name}, line {pos + 1}" for pos, _ in sampler.sample(shard)}
    assert [d["kept"] for d in docs] == [d["where"] in kept_lines for d in docs]
    assert 0.2 < np.mean([d["kept"] for d in docs]) < 0.8  # both colours on the map
    # the pictures: a PNG with two panels, and a page that fetches nothing
    from matplotlib.image import imread

    img = imread(map_run / "embed_map.png")
    assert img.shape[1] > 1000 and img[..., :3].std() > 0.05
    page = (map_run / "embed_map.html").read_text(encoding="utf-8")
    code = re.sub(r"const points = \[.*?\];\n", "", page, flags=re.S)  # the page without its data (texts hold URLs)
    assert not re.search(r"\b(src|href)=|@import|url\(|fetch\(|XMLHttpRequest|https?://(?!www\.w3\.org/2000/svg)",
                         code), "the page loads something"
    points = json.loads(re.search(r"const points = (\[.*?\]);\n", page, re.S).group(1))
    assert len(points) == DOCS and {"x", "y", "c", "k", "s", "p", "kept", "w", "t"} <= set(points[0])
    assert sorted((p["w"], p["kept"]) for p in points) == sorted((d["where"], d["kept"]) for d in docs)
    assert [p["kept"] for p in points] == sorted(p["kept"] for p in points)  # the kept drawn over the dropped


def test_the_same_run_gives_the_same_map(encoder, map_run, tmp_path):
    """The documents (a seeded reservoir), the embeddings and the t-SNE: run again, the same map."""
    out = tmp_path / "again"
    assert main(["embed-map", "--encoder", encoder, "--docs", str(DOCS), "--method", "gaussian", "--factor", "0.5",
                 "--max-length", "32", "--shards-to-read", "2", "-o", str(out)]) == 0
    assert (out / "embed_map.json").read_text() == (map_run / "embed_map.json").read_text()
    assert (out / "embed_map.html").read_text() == (map_run / "embed_map.html").read_text()


@pytest.mark.parametrize("argv, needle", [
    (["--encoder", "{tmp}/missing"], "--encoder {tmp}/missing: no such folder (and not a Hub model id owner/name)"),
    (["--encoder", "{tmp}"], "--encoder {tmp}: no config.json (not a transformers model folder)"),
    (["--encoder", "{enc}", "--projection", "umap"], None),
    (["--encoder", "{enc}", "--lang", "es", "ca"], "--lang: a map is of one language, got es ca"),
])
def test_bad_input_is_one_line(encoder, tmp_path, capsys, argv, needle):
    argv = [a.format(tmp=tmp_path, enc=encoder) for a in argv]
    if "umap" in argv:
        try:
            import umap  # noqa: F401

            pytest.skip("umap-learn is installed")
        except ImportError:
            needle = "--projection umap needs umap-learn: pip install umap-learn"
        argv += ["--docs", "10"]
    assert main(["embed-map", *argv, "-o", str(tmp_path / "o")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and needle.format(tmp=tmp_path) in err[0], err
    assert not (tmp_path / "o").exists()
