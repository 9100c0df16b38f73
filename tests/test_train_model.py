"""``mc4-sampling train-model`` and its estimator (mc4_sampling/kneser_ney.py, mc4_sampling/model_training.py).

The estimator against KenLM's own ``lmplz`` (ARPAs committed in tests/data/lmplz/, see its README):
the same n-grams, every log10 probability and backoff within 1e-4, with CCNet's flags, with pruning,
and with the fallback discounts of a text too small for the closed form. Then the command end to
end: a folder that loads like any model folder, an interrupted run that resumes, too little text,
a folder from another tool.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest

from mc4_sampling import kneser_ney as kn, model_training
from mc4_sampling.cli import main
from mc4_sampling.errors import ConfigError
from mc4_sampling.kenlm_models import load_perplexity_model

REF = Path(__file__).parent / "data" / "lmplz"
SAMPLE = Path(__file__).parents[1] / "mc4_sampling" / "data" / "sample" / "multilingual"
LOCAL_LMPLZ = shutil.which("lmplz") or str(Path(__file__).parents[1] / "scripts/.build/kenlm-src/build/bin/lmplz")


def read_arpa(path) -> tuple[list[int], dict[int, dict[str, tuple[float, float]]]]:
    """Header counts and {order: {n-gram: (log10 p, log10 backoff)}} of an ARPA file (.gz too)."""
    opener = gzip.open if str(path).endswith(".gz") else open
    counts, grams, order = [], {}, 0
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("ngram "):
                counts.append(int(line.split("=")[1]))
            elif line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1:-7])
                grams[order] = {}
            elif order and line and not line.startswith("\\"):
                parts = line.split("\t")
                grams[order][parts[1]] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else 0.0)
    return counts, grams


CASES = [  # text, lmplz's ARPA, --prune
    ("es_pieces.txt", "es_pieces.o5.arpa.gz", ()),
    ("es_pieces.txt", "es_pieces.o5.prune00111.arpa.gz", (0, 0, 1, 1, 1)),
    ("es_tiny.txt", "es_tiny.o5.arpa.gz", ()),  # orders 1 and 4 take the fallback discounts
]


@pytest.mark.parametrize("text, reference, prune", CASES, ids=["ccnet", "prune-0-0-1-1-1", "fallback"])
def test_estimator_matches_lmplz(tmp_path, text, reference, prune):
    with open(REF / text, encoding="utf-8") as f:
        model = kn.estimate(f, kn.KneserNeyOptions(prune=prune))
    kn.write_arpa(model, tmp_path / "mine.arpa")
    counts, mine = read_arpa(tmp_path / "mine.arpa")
    ref_counts, ref = read_arpa(REF / reference)
    assert counts == ref_counts
    for order in ref:
        assert set(mine[order]) == set(ref[order]), order
        worst = max(max(abs(a - b) for a, b in zip(mine[order][g], ref[order][g])) for g in ref[order])
        assert worst < 1e-4, (order, worst)
    # the KenLM binding loads it and scores sentences as with lmplz's ARPA
    import kenlm

    unpacked = tmp_path / "lmplz.arpa"
    unpacked.write_bytes(gzip.decompress((REF / reference).read_bytes()))
    ours, theirs = kenlm.Model(str(tmp_path / "mine.arpa")), kenlm.Model(str(unpacked))
    lines = (REF / text).read_text(encoding="utf-8").splitlines()[:30] + ["▁una ▁palabra ▁nunca ▁vista ▁xq"]
    for line in lines:
        assert ours.score(line) == pytest.approx(theirs.score(line), abs=1e-3)


def test_closed_form_discounts_and_their_failure():
    # Chen & Goodman eq. 26 on made-up count-of-counts
    n1, n2, n3, n4 = 100, 40, 20, 10
    y = n1 / (n1 + 2 * n2)
    assert kn.discount((n1, n2, n3, n4), 3, None) == pytest.approx(
        (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3))
    assert kn.discount((5, 0, 1, 1), 2, kn.FALLBACK_DISCOUNTS) == kn.FALLBACK_DISCOUNTS
    with open(REF / "es_tiny.txt", encoding="utf-8") as f:  # lmplz without --discount_fallback stops here too
        with pytest.raises(kn.TooLittleTextError, match="1-gram discount for count 3 is -1.095, outside"):
            kn.estimate(f, kn.KneserNeyOptions(discount_fallback=None))
    for prune, words in (((0, 2, 1),), "non-decreasing"), (((1,),), "unigram threshold must be 0"):
        with pytest.raises(ConfigError, match=words):
            kn.KneserNeyOptions(prune=prune[0]).thresholds("--prune")


@pytest.mark.skipif(not os.access(LOCAL_LMPLZ, os.X_OK),
                    reason="no local lmplz (scripts/build_default_model.sh builds one)")
def test_local_lmplz_gives_the_reference_and_a_clear_line(tmp_path):
    options = kn.KneserNeyOptions(prune=(0, 0, 1, 1, 1))
    model_training.run_lmplz(LOCAL_LMPLZ, REF / "es_pieces.txt", tmp_path / "lmplz.arpa", options, tmp_path, "64M")
    assert read_arpa(tmp_path / "lmplz.arpa") == read_arpa(REF / "es_pieces.o5.prune00111.arpa.gz")
    for order, prune in ((3, (0, 1)), (4, (0, 0, 2))):  # other orders and thresholds than the committed ones
        options = kn.KneserNeyOptions(order=order, prune=prune)
        model_training.run_lmplz(LOCAL_LMPLZ, REF / "es_pieces.txt", tmp_path / "o.arpa", options, tmp_path, "64M")
        with open(REF / "es_pieces.txt", encoding="utf-8") as f:
            kn.write_arpa(kn.estimate(f, options), tmp_path / "own.arpa")
        (counts, theirs), (own_counts, ours) = read_arpa(tmp_path / "o.arpa"), read_arpa(tmp_path / "own.arpa")
        assert counts == own_counts and all(set(ours[k]) == set(theirs[k]) for k in theirs)
        assert max(abs(a - b) for k in theirs for g in theirs[k] for a, b in zip(ours[k][g], theirs[k][g])) < 1e-4
        (tmp_path / "o.arpa").unlink(), (tmp_path / "own.arpa").unlink()
    with pytest.raises(kn.TooLittleTextError, match="lmplz cannot compute modified Kneser-Ney discounts"):
        model_training.run_lmplz(LOCAL_LMPLZ, REF / "es_tiny.txt", tmp_path / "tiny.arpa",
                                 kn.KneserNeyOptions(discount_fallback=None), tmp_path, "64M")
    assert not (tmp_path / "tiny.arpa").exists() and sorted(os.listdir(tmp_path)) == ["lmplz.arpa"]


# --- the command ---------------------------------------------------------------------------------


def _documents(path: Path, words: int) -> list[str]:
    docs, n = [], 0
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            docs.append(json.loads(line)["text"])
            n += len(docs[-1].split())
            if n >= words:
                break
    return docs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained on ~12 000 words of the sample's validation shard: first interrupted after the
    n-gram step, then resumed by the same command."""
    tmp = tmp_path_factory.mktemp("train")
    corpus = tmp / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": d}) + "\n"
                              for d in _documents(SAMPLE / "c4-es-validation.tfrecord-00000-of-00016.json.gz", 12_000)))
    out = tmp / "es-model"
    args = ["train-model", "--lang", "es", "-o", str(out), "--vocab-size", "400", "--estimator", "own", str(corpus)]
    mp = pytest.MonkeyPatch()
    mp.setattr(model_training, "quartiles", _interrupt)
    with pytest.raises(KeyboardInterrupt):
        model_training.train_model(out, [str(corpus)], model_training.TrainModelOptions(
            "es", vocab_size=400, estimator="own"))
    mp.undo()
    work = tmp / ".es-model.train-model-work"
    state = json.loads((work / "state.json").read_text())
    left = sorted(os.listdir(tmp))
    mp.setattr(model_training, "estimate", _must_not_run)  # the rerun resumes after the n-gram step
    mp.setattr(model_training, "train_sentencepiece", _must_not_run)
    assert main(args) == 0
    mp.undo()
    return {"out": out, "state": state, "left": left, "after": sorted(os.listdir(tmp)), "corpus": corpus}


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def _must_not_run(*args, **kwargs):
    raise AssertionError("a finished step ran again")


def test_interrupted_run_left_no_folder_and_resumed(trained):
    assert set(trained["state"]) == {"text", "sentencepiece", "pieces", "ngram"}
    assert trained["left"] == [".es-model.train-model-work", "corpus.jsonl"]  # no model folder, no temporary one
    assert trained["after"] == ["corpus.jsonl", "es-model"]  # the work folder is gone once the model is whole
    assert trained["state"]["text"]["words"] >= model_training.MIN_WORDS


def test_trained_folder_loads_like_any_model_folder(trained, capsys):
    out = trained["out"]
    names = set(os.listdir(out))
    assert {"es.sp.model", "model.json", "MANIFEST.md"} < names and names & {"es.arpa", "es.arpa.bin"}
    meta = json.loads((out / "model.json").read_text())
    q1, q2, q3 = meta["boundaries"]
    assert 0 < q1 < q2 < q3 and meta["mode"] == "ccnet" and meta["lower_case"] and meta["strip_accents"]
    model = load_perplexity_model(str(out), "es")
    assert model.default_boundaries == (q1, q2, q3)
    prose = "La ciudad tiene un parque grande donde los niños juegan por la tarde con sus amigos."
    salad = "parque tarde grande juegan niños ciudad amigos los donde con por la sus tiene un"
    assert model.perplexity(prose) < model.perplexity(salad)
    capsys.readouterr()
    assert main(["score", "--perplexity-model", str(out), "--lang", "es", prose]) == 0
    assert capsys.readouterr().out.startswith(f"{model.perplexity(prose):.2f}")
    assert "modified Kneser-Ney" in (out / "MANIFEST.md").read_text()


def test_too_little_text_and_a_folder_from_another_tool(tmp_path, capsys, trained):
    small = tmp_path / "small.txt"
    small.write_text("Una frase corta.\nOtra frase.\n" * 200)
    assert main(["train-model", "--lang", "es", "-o", str(tmp_path / "m"), str(small)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("error:") == 1
    assert ("too small for a 5-gram model: it has 1,000 words after normalisation; train-model needs at least "
            "10,000") in err
    assert sorted(os.listdir(tmp_path)) == ["small.txt"]  # no model folder, no work folder
    other = tmp_path / "other"  # what another tool writes: model.arpa + tokenizer.model
    other.mkdir()
    (other / "model.arpa").write_text("garbage\n")
    (other / "tokenizer.model").write_bytes(b"")
    assert main(["score", "--perplexity-model", str(other), "--lang", "es", "hola"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "has no es.arpa.bin (or es.arpa)" in err
    assert "model.arpa, tokenizer.model" in err
    assert "mc4-sampling train-model --lang es" in err
    shutil.copytree(trained["out"], tmp_path / "broken")
    kenlm_file = next(p for p in (tmp_path / "broken").iterdir() if p.name.startswith("es.arpa"))
    kenlm_file.write_text("garbage\n")
    assert main(["score", "--perplexity-model", str(tmp_path / "broken"), "--lang", "es", "hola"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and 'first non-empty line was "garbage"' in err and "not a KenLM model" in err
    mine = tmp_path / "mine"  # an output folder holding files we did not write is refused before any work
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main(["train-model", "--lang", "es", "-o", str(mine), str(trained["corpus"])]) == 2
    assert "it already holds files this tool did not write (notes.txt)" in capsys.readouterr().err


def test_a_corpus_source_plugs_in(tmp_path):
    """Any registered CorpusSource gives train-model its documents (units, then records)."""
    from mc4_sampling.sources import base

    class Lines(base.CorpusSource):
        name = "test-lines"

        def splits(self):
            return ("train",)

        def units(self, split):
            files = sorted(Path(self.options.location).glob("*.txt"))
            return [base.SourceUnit(split, i, len(files), self.language, str(f)) for i, f in enumerate(files)]

        def records(self, unit, **kwargs):
            for i, line in enumerate(Path(unit.path).read_text().splitlines()):
                yield i, (base.Record(line) if line != "bad" else None)

    (tmp_path / "a.txt").write_text("uno\nbad\ndos\n")
    (tmp_path / "b.txt").write_text("tres\ncuatro\n")
    saved = dict(base.SOURCES)
    try:
        base.register_source(Lines)
        source = base.make_source(base.SourceOptions(source="test-lines", language="es", location=str(tmp_path)))
        assert list(model_training.source_documents(source)) == ["uno", "dos", "tres", "cuatro"]
        assert list(model_training.source_documents(source, limit=3)) == ["uno", "dos", "tres"]
    finally:
        base.SOURCES.clear()
        base.SOURCES.update(saved)


def test_same_text_same_model_bytes(trained, tmp_path):
    """Deterministic: the same text and settings give the same SentencePiece model and n-gram file."""
    again = tmp_path / "again"
    model_training.train_model(again, [str(trained["corpus"])],
                               model_training.TrainModelOptions("es", vocab_size=400, estimator="own"))
    for name in os.listdir(trained["out"]):
        if name.startswith("es."):
            assert (again / name).read_bytes() == (trained["out"] / name).read_bytes(), name
    assert json.loads((again / "model.json").read_text()) == json.loads((trained["out"] / "model.json").read_text())


def test_loading_an_arpa_model_keeps_kenlm_chatter_off_stderr(tmp_path, capfd):
    """KenLM's 'Loading the LM will be faster...' and progress bar, written to fd 2 while an ARPA file is
    parsed, go to the debug log: a publish worker or a score command prints nothing of it."""
    from mc4_sampling.perplexity import _kenlm_chatter_to_log

    arpa = tmp_path / "tiny.arpa"
    arpa.write_bytes(gzip.decompress((Path(__file__).parent / "data" / "lmplz" / "es_tiny.o5.arpa.gz").read_bytes()))
    import kenlm

    with _kenlm_chatter_to_log(str(arpa)):
        kenlm.Model(str(arpa))
    assert capfd.readouterr().err == ""
    kenlm.Model(str(arpa))  # the same load, unwrapped, is what the wrapper hides
    assert "binary" in capfd.readouterr().err
