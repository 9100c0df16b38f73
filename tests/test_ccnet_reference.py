"""The ``ccnet_document`` mode against an independent reference written from CCNet's published code.

The reference below follows ``cc_net/text_normalizer.py`` (``normalize``) and ``cc_net/perplexity.py``
(``SentencePiece`` with ``normalize=True``, then ``DocLM`` with ``normalize=False`` on the tokenized
field, and ``pp``): straightforward, unoptimised, and sharing no code with the package (it loads the
KenLM and SentencePiece files itself).
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest

import mc4_sampling
from mc4_sampling import load_perplexity_model

MODEL_DIR = Path(mc4_sampling.DEFAULT_MODEL_DIR)
SAMPLE = Path(mc4_sampling.SAMPLE_DATA_DIR) / "multilingual"

# --- cc_net/text_normalizer.py ------------------------------------------------------------------

UNICODE_PUNCT = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"', "１": '"', "」": '"',
    "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":", "？": "?", "！": "!", "（": "(", "）": ")",
    "；": ";", "–": "-", "—": " - ", "．": ". ", "～": "~", "’": "'", "…": "...", "━": "-", "〈": "<",
    "〉": ">", "【": "[", "】": "]", "％": "%", "►": "-",
}  # fmt: skip
DIGIT_RE = re.compile(r"\d")
NON_PRINTING_CHARS_RE = re.compile(f"[{''.join(map(chr, list(range(0, 32)) + list(range(127, 160))))}]")


def strip_accents(line: str) -> str:
    nfd = unicodedata.normalize("NFD", line)
    output = [c for c in nfd if unicodedata.category(c) != "Mn"]
    if len(output) == line:  # (sic) CCNet compares a length with a string: always joins
        return line
    return "".join(output)


def replace_unicode_punct(text: str) -> str:
    return "".join(UNICODE_PUNCT.get(c, c) for c in text)


def remove_non_printing_char(text: str) -> str:
    return NON_PRINTING_CHARS_RE.sub("", text)


def normalize(line: str, accent=True, case=True, numbers=True, punct=1) -> str:
    line = line.strip()
    if not line:
        return line
    if case:
        line = line.lower()
    if accent:
        line = strip_accents(line)
    if numbers:
        line = DIGIT_RE.sub("0", line)
    if punct == 1:
        line = replace_unicode_punct(line)
    line = remove_non_printing_char(line)
    return line


# --- cc_net/perplexity.py -----------------------------------------------------------------------


def pp(log_score, length):
    return 10.0 ** (-log_score / length)


class ReferenceCCNet:
    def __init__(self, folder: Path, lang: str = "es"):
        import kenlm
        import sentencepiece

        self.sp = sentencepiece.SentencePieceProcessor()
        self.sp.load(str(folder / f"{lang}.sp.model"))
        self.lm = kenlm.Model(str(folder / f"{lang}.arpa.bin"))

    def tokenize(self, document: dict) -> dict:  # SentencePiece(field="raw_content", normalize=True)
        text = normalize(document["raw_content"])
        document["tokenized"] = " ".join(self.sp.encode_as_pieces(text))
        return document

    def perplexity(self, document: dict) -> dict:  # DocLM(field="tokenized", normalize=False)
        lines = document["tokenized"].split("\n")
        doc_log_score, doc_length = 0, 0
        for line in lines:
            log_score = self.lm.score(line)
            length = len(line.split()) + 1
            doc_log_score += log_score
            doc_length += length
        document["perplexity"] = round(pp(doc_log_score, doc_length), 1)
        return document

    def __call__(self, text: str) -> float:
        return self.perplexity(self.tokenize({"raw_content": text}))["perplexity"]


# --- the tests ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_texts() -> list[str]:
    texts = []
    for path in sorted(SAMPLE.glob("*.json.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f]
    return texts


def test_ccnet_document_mode_equals_ccnet_on_the_bundled_sample(sample_texts):
    reference = ReferenceCCNet(MODEL_DIR)
    model = load_perplexity_model(None, "es", "ccnet_document")
    ours = model.perplexities(sample_texts)
    theirs = np.array([reference(t) for t in sample_texts])
    assert len(sample_texts) == 4000  # the 3 600 training and 400 validation documents
    assert ours.tolist() == theirs.tolist()  # equal values, not close ones


def test_ccnet_document_mode_on_edge_cases():
    reference = ReferenceCCNet(MODEL_DIR)
    model = load_perplexity_model(None, "es", "ccnet_document")
    texts = ["", "   \n\t ", "Hola", "línea uno\nlínea dos", "  sangría \n  otra\r\nmás\tTAB ",
             "Precio: １２３，45 € — «oferta»…", "ΣΟΦΊΑ Σοφία\nκαι λόγος", "a\x00b\u0085c\u00a0d",
             "日本語のテキスト。\n第二行"]
    assert model.perplexities(texts).tolist() == [reference(t) for t in texts]


def test_the_modes_differ_where_the_newlines_matter(sample_texts):
    """Whole-document normalisation glues lines together: ccnet (line by line) and ccnet_document differ."""
    texts = sample_texts[:300]
    by_line = load_perplexity_model(None, "es", "ccnet").perplexities(texts)
    by_doc = load_perplexity_model(None, "es", "ccnet_document").perplexities(texts)
    multi = np.array(["\n" in t.strip() for t in texts])
    ratio = by_doc / by_line
    assert np.median(np.abs(ratio[multi] - 1)) > 0.03
    one_line = ~multi
    if one_line.any():  # one line: the same computation, but for the rounding
        assert np.allclose(by_doc[one_line], by_line[one_line], atol=0.05 + 1e-9, rtol=0)


def test_the_builder_and_the_calibration_accept_the_mode(tmp_path):
    from itertools import islice

    from mc4_sampling import Mc4Sampling
    from mc4_sampling.calibration import build_calibration, load_calibration, save_calibration

    reference = ReferenceCCNet(MODEL_DIR)
    ds = Mc4Sampling(config_name="es", sampling_method="none", perplexity_mode="ccnet_document", return_perplexity=True,
                     data_dir=mc4_sampling.SAMPLE_DATA_DIR, shards=[0]).as_streaming_dataset(split="train")
    docs = list(islice(ds, 40))
    assert [d["perplexity"] for d in docs] == [reference(d["text"]) for d in docs]
    model = load_perplexity_model(None, "es", "ccnet_document")
    calib = build_calibration([d["perplexity"] for d in docs], 0.5, model_id=model.model_id, mode=model.mode)
    path = save_calibration(calib, tmp_path / "calibration.json")
    assert load_calibration(path).mode == "ccnet_document"
    kept = Mc4Sampling(config_name="es", sampling_method="gaussian", perplexity_mode="ccnet_document",
                       calibration=str(path), data_dir=mc4_sampling.SAMPLE_DATA_DIR,
                       shards=[0]).as_streaming_dataset(split="train")
    assert 0 < sum(1 for _ in kept) < 900  # the shard's 900 documents
