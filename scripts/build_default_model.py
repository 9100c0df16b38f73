#!/usr/bin/env python3
"""Train the embedded Spanish perplexity model (``mc4_sampling/data/model/``), CCNet style.

Run by ``scripts/build_default_model.sh`` after it has built KenLM's ``lmplz`` and
``build_binary``, unpacked the Debian packages under ``scripts/.build/root/`` and built the
bundled sample (whose train split gives the quartiles). Steps:

1. Spanish prose paragraphs of the training packages (``spanish_text.TRAIN_SOURCES``, thinned
   by ``TRAIN_KEEP_MODULUS``, then ``EXTRA_TRAIN_SOURCES``), held-out documents removed,
   de-duplicated, each normalised with
   ``mc4_sampling.normalization.normalize_line`` (the runtime's normalisation) -> one line each.
2. SentencePiece unigram model (12 000 pieces, single-threaded, no sampling: deterministic).
3. The lines encoded with it (pieces joined by spaces) -> ``lmplz -o 5 --prune 0 0 1 1 1`` ->
   ``build_binary -q 8 -b 8 -a 64 trie``.
4. Quartiles of the perplexity (``PerplexityModel(..., mode="ccnet")``) of the documents of the
   bundled sample's train split -> ``model.json``; perplexity table by kind of document.
5. ``MANIFEST.md`` with sources, versions, licences, counts, settings, checksums.

Usage: ``.venv/bin/python scripts/build_default_model.py [--kenlm-bin scripts/.build/kenlm-src/build/bin]``
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import spanish_text as st  # noqa: E402

from mc4_sampling.normalization import normalize_line  # noqa: E402

LANG = "es"
SP_SETTINGS = dict(
    model_type="unigram",
    vocab_size=12000,
    character_coverage=0.9995,
    input_sentence_size=0,  # use every line
    shuffle_input_sentence=False,
    max_sentence_length=16384,
    num_threads=1,  # single-threaded EM: bit-for-bit reproducible
    seed_sentencepiece_size=1000000,
    normalization_rule_name="nmt_nfkc",
    minloglevel=2,
)
LMPLZ_ARGS = ["-o", "5", "--prune", "0", "0", "1", "1", "1", "-S", "20%"]
BUILD_BINARY_ARGS = ["-q", "8", "-b", "8", "-a", "64", "trie"]
BERTIN_Q1 = 536394.99320948
BERTIN_STEPWISE_FACTOR = 1.5e5
GAUSSIAN_FACTOR = 0.78
RANDOM_FACTOR = 0.5
WIDTH = 4.5


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def run(cmd: list[str], **kw) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(cmd, check=True, **kw)


def write_training_text(root: Path, path: Path) -> dict:
    train, _heldout = st.load_corpus(root, normalize_line, extra=True)
    stats = {}
    with open(path, "w", encoding="utf-8") as f:
        for package, docs in train.items():
            n_par = n_words = n_bytes = 0
            for _doc_id, paras in docs:
                for p in paras:
                    f.write(normalize_line(p) + "\n")
                    n_par += 1
                    n_words += len(p.split())
                    n_bytes += len(p.encode("utf-8"))
            stats[package] = {"documents": len(docs), "paragraphs": n_par, "words": n_words, "bytes": n_bytes}
    return stats


def train_sentencepiece(text: Path, prefix: Path) -> None:
    import sentencepiece as spm

    # The model file records the input and prefix given here: relative names, from their folder,
    # so that the bytes do not depend on where the repository is checked out.
    assert text.parent == prefix.parent
    cwd = os.getcwd()
    os.chdir(text.parent)
    try:
        spm.SentencePieceTrainer.train(input=text.name, model_prefix=prefix.name, **SP_SETTINGS)
    finally:
        os.chdir(cwd)


def encode(sp_model: Path, text: Path, out: Path) -> int:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    lines = text.read_text(encoding="utf-8").split("\n")[:-1]
    n_tokens = 0
    with open(out, "w", encoding="utf-8") as f:
        for start in range(0, len(lines), 10000):
            for pieces in sp.encode(lines[start : start + 10000], out_type=str, num_threads=1):
                f.write(" ".join(pieces) + "\n")
                n_tokens += len(pieces)
    return n_tokens


def read_sample(kinds_path: Path, sample_dir: Path) -> tuple[list[str], dict[str, list[str]], dict]:
    """Texts of the sample's train split, texts by kind, and a description of the split."""
    kinds = {}
    for line in kinds_path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        kinds[rec["url"]] = (rec["kind"], rec["split"])
    texts, by_kind = [], defaultdict(list)
    files = sorted((sample_dir / "multilingual").glob("c4-es.tfrecord-*.json.gz"))
    for path in files:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                kind, split = kinds[rec["url"]]  # KeyError: sample and sample_kinds.jsonl disagree
                assert split == "train"
                texts.append(rec["text"])
                by_kind[kind].append(rec["text"])
    return texts, by_kind, {"files": [p.name for p in files], "documents": len(texts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=HERE / ".build" / "root")
    ap.add_argument("--work", type=Path, default=HERE / ".build" / "model")
    ap.add_argument("--kenlm-bin", type=Path, default=HERE / ".build" / "kenlm-src" / "build" / "bin")
    ap.add_argument("--out", type=Path, default=REPO / "mc4_sampling" / "data" / "model")
    ap.add_argument("--sample", type=Path, default=REPO / "mc4_sampling" / "data" / "sample")
    ap.add_argument("--kinds", type=Path, default=HERE / ".build" / "sample_kinds.jsonl")
    args = ap.parse_args()
    work, out = args.work, args.out
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}

    t = time.time()
    text = work / "train.txt"
    stats = write_training_text(args.root, text)
    timings["text"] = time.time() - t
    total = {k: sum(s[k] for s in stats.values()) for k in ("documents", "paragraphs", "words", "bytes")}
    print("training text:", total, flush=True)

    t = time.time()
    train_sentencepiece(text, work / "es.sp")
    timings["sentencepiece"] = time.time() - t
    t = time.time()
    encoded = work / "train.sp.txt"
    n_tokens = encode(work / "es.sp.model", text, encoded)
    timings["encode"] = time.time() - t
    print("pieces:", n_tokens, flush=True)

    t = time.time()
    arpa = work / "es.arpa"
    tmp = work / "tmp"
    tmp.mkdir(exist_ok=True)
    with open(encoded, "rb") as fin, open(arpa, "wb") as fout:
        run([str(args.kenlm_bin / "lmplz"), *LMPLZ_ARGS, "-T", str(tmp)], stdin=fin, stdout=fout)
    run([str(args.kenlm_bin / "build_binary"), *BUILD_BINARY_ARGS, str(arpa), str(work / "es.arpa.bin")])
    timings["kenlm"] = time.time() - t
    ngram_counts = []
    with open(arpa, encoding="utf-8") as f:
        for line in f:
            if line.startswith("ngram "):
                ngram_counts.append(int(line.split("=")[1]))
            elif line.startswith("\\1-grams"):
                break

    shutil.copyfile(work / "es.arpa.bin", out / f"{LANG}.arpa.bin")
    shutil.copyfile(work / "es.sp.model", out / f"{LANG}.sp.model")

    # --- quartiles on held-out text and the perplexity table ---------------------------------
    from mc4_sampling.perplexity import PerplexityModel

    model = PerplexityModel(str(out / f"{LANG}.arpa.bin"), str(out / f"{LANG}.sp.model"), mode="ccnet")
    texts, by_kind, sample_desc = read_sample(args.kinds, args.sample)
    t = time.time()
    ppl = model.perplexities(texts)
    timings["score_sample"] = time.time() - t
    q1, q2, q3 = (float(x) for x in np.percentile(ppl, [25, 50, 75]))
    stepwise = BERTIN_STEPWISE_FACTOR * q1 / BERTIN_Q1
    table = []
    kinds = ["prose", "prose_nav", "english", "word_salad", "boilerplate", "spam", "repeated", "short", "ui_strings"]
    for kind in kinds:
        p = model.perplexities(by_kind[kind])
        table.append((kind, len(p), *(float(x) for x in np.percentile(p, [10, 50, 90]))))
    all_p = (len(ppl), *(float(x) for x in np.percentile(ppl, [10, 50, 90])))

    meta = {
        "language": LANG,
        "mode": "ccnet",
        "boundaries": [round(q1, 4), round(q2, 4), round(q3, 4)],
        "factors": {"random": RANDOM_FACTOR, "stepwise": round(stepwise, 6), "gaussian": GAUSSIAN_FACTOR},
        "width": WIDTH,
        "boundaries_source": (
            f"25th/50th/75th percentiles of the perplexity of the {sample_desc['documents']} documents of the "
            "bundled sample's train split (mc4_sampling/data/sample, c4-es.tfrecord-0000[0-3]-of-02048; "
            "held out from the training text; about 62 % Spanish prose, 38 % low-quality web text)"
        ),
        "lower_case": True,
        "strip_accents": True,
    }
    (out / "model.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    print(f"\n{'kind':12s} {'docs':>5s} {'p10':>9s} {'median':>9s} {'p90':>9s}")
    for kind, n, p10, p50, p90 in table:
        print(f"{kind:12s} {n:5d} {p10:9.1f} {p50:9.1f} {p90:9.1f}")
    print("quartiles:", meta["boundaries"], "stepwise factor:", meta["factors"]["stepwise"])

    write_manifest(args, stats, total, n_tokens, ngram_counts, meta, table, all_p)
    print("timings:", ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))


def write_manifest(args, stats, total, n_tokens, ngram_counts, meta, table, all_p) -> None:
    out = args.out
    ver = lambda p: st.package_version(args.root, p)  # noqa: E731
    kenlm_src = HERE / ".build" / "kenlm-src" / "kenlm-0.3.0.tar.gz"
    q1, q2, q3 = meta["boundaries"]
    lines = [
        "# Embedded Spanish perplexity model",
        "",
        "A small Spanish 5-gram KenLM model over SentencePiece pieces, built like CCNet's models",
        "(normalise each line, SentencePiece-encode it, score the pieces joined by spaces) but from",
        "free Debian packages, so that it can ship inside the package. It is a stand-in for CCNet's",
        "Wikipedia model (`es.arpa.bin`, several GB) that BERTIN used, good enough to separate prose",
        "from boilerplate, word lists and spam; it is not a model of web Spanish.",
        "",
        "Generated by `scripts/build_default_model.sh` (which runs `scripts/build_sample.py` and",
        "`scripts/build_default_model.py`). Do not edit by hand.",
        "",
        "## Files",
        "",
        "| file | bytes | sha256 |",
        "|---|---:|---|",
    ]
    for name in (f"{LANG}.arpa.bin", f"{LANG}.sp.model", "model.json"):
        p = out / name
        lines.append(f"| `{name}` | {p.stat().st_size:,} | `{sha256(p)}` |")
    lines += [
        "",
        "## Training text",
        "",
        "Spanish paragraphs extracted from these Debian 12 (bookworm) packages (`apt-get download`,",
        "`dpkg -x`; markup stripped: HTML, roff, Mallard XML, OSIS, GNU `.mo` and Qt `.qm` message",
        "catalogues; see `scripts/spanish_text.py`). \"used\" is the share of a package's",
        "non-held-out documents in the training text:",
        "",
        "| package | version | licence | used | documents | paragraphs | words | bytes |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for package, s in stats.items():
        lic = {**st.TRAIN_SOURCES, **st.EXTRA_TRAIN_SOURCES}[package][1]
        n = st.BIBLE_KEEP_MODULUS if package == "sword-text-sparv" else st.TRAIN_KEEP_MODULUS.get(package, 1)
        used = "none" if n == 0 else "all" if n == 1 else f"1 in {n}"
        lines.append(
            f"| {package} | {ver(package)} | {lic} | {used} "
            f"| {s['documents']:,} | {s['paragraphs']:,} | {s['words']:,} | {s['bytes']:,} |"
        )
    lines += [
        f"| **total** | | | | {total['documents']:,} | {total['paragraphs']:,} | {total['words']:,} "
        f"| {total['bytes']:,} |",
        "",
        "- A paragraph is kept when it looks like prose (at least 30 characters, mostly letters,",
        "  few code symbols) and like Spanish (at least 6 words, at least 15 % of them frequent",
        "  Spanish function words, and at least 3 times as many of those as English ones).",
        "- Messages of `.mo` / `.qm` catalogues with placeholders (`%s`, `{x}`, `$x`) are dropped as",
        "  program messages; a catalogue's other messages are grouped 20 to a document.",
        "- Paragraphs are de-duplicated on their normalised form.",
        "- Software documentation (`used` = none above: menu paths, option lists, command lines)",
        "  is not trained on: it made the model score menus and boilerplate like prose and everyday",
        "  Spanish like noise. It still gives the held-out prose of the bundled sample; the",
        "  thinning comes after de-duplication, so the held-out split does not depend on it.",
        "- Game, educational and astronomy packages (Wesnoth, Freeciv, Widelands, Cataclysm: DDA,",
        "  FreedroidRPG, GCompris, Stellarium) give narrative, dialogue, descriptive and",
        "  encyclopedic modern Spanish; they are read after the split (training only), with the",
        "  same 1-in-20 hold-out rule, and any paragraph equal to a held-out one is dropped.",
        f"- Held out (never trained on): the packages {', '.join(st.HELDOUT_SOURCES)} and 1 in",
        f"  {st.HOLDOUT_MODULUS} documents of each package above (by a SHA-256 of `package/document`);",
        "  those of the packages listed in `TRAIN_SOURCES` (not the game and astronomy ones)",
        "  and the two packages make the prose of the bundled sample (`mc4_sampling/data/sample/`).",
        f"- The Reina-Valera 1909 Bible (archaic spelling) is thinned: 1 in {st.BIBLE_KEEP_MODULUS} of its",
        "  documents (groups of 20 verses).",
        "- Each paragraph becomes one line normalised with",
        "  `mc4_sampling.normalization.normalize_line` (lower-case, accents stripped, digits -> 0,",
        "  CCNet punctuation map, non-printing characters dropped): the runtime's normalisation.",
        "",
        "## Settings",
        "",
        "- SentencePiece " + _version("sentencepiece") + ": "
        + ", ".join(f"`{k}={v}`" for k, v in SP_SETTINGS.items() if k != "minloglevel") + ".",
        f"- Encoded training text: {n_tokens:,} pieces (pieces of a line joined by spaces, one line per paragraph).",
        f"- KenLM 0.3.0 (`pip download --no-deps --no-binary kenlm kenlm==0.3.0`, sha256 "
        f"`{sha256(kenlm_src) if kenlm_src.exists() else 'n/a'}`), built with cmake (Release).",
        f"- `lmplz {' '.join(LMPLZ_ARGS)} -T <tmp>`: n-gram counts after pruning "
        + ", ".join(f"{i + 1}-grams {n:,}" for i, n in enumerate(ngram_counts)) + ".",
        f"- `build_binary {' '.join(BUILD_BINARY_ARGS)}` (8-bit quantised probabilities and backoffs,",
        "  64-bit-aligned trie).",
        "",
        "## Sampling parameters (`model.json`)",
        "",
        f"- `boundaries` = quartiles {q1}, {q2}, {q3}: {meta['boundaries_source']}.",
        "  Scored with `mc4_sampling.perplexity.PerplexityModel(es.arpa.bin, es.sp.model, mode=\"ccnet\")`.",
        f"- `factors.stepwise` = 1.5e5 x Q1 / {BERTIN_Q1} = {meta['factors']['stepwise']}: BERTIN's stepwise",
        "  factor scaled by the ratio of the first quartiles, so that the lowest quartile keeps BERTIN's",
        f"  probability (1.5e5 / {BERTIN_Q1} = {BERTIN_STEPWISE_FACTOR / BERTIN_Q1:.4f}). The other quartiles then get",
        "  factor / (Q2 - Q1), factor / (Q3 - Q2), factor / (10 Q3), which depend on this model's spread.",
        f"- `factors.gaussian` = {GAUSSIAN_FACTOR}, `width` = {WIDTH}, `factors.random` = {RANDOM_FACTOR}: BERTIN's",
        "  defaults (the Gaussian is relative to the median, so it needs no rescaling).",
        "",
        "## Perplexity by kind of document (held-out sample, train split)",
        "",
        "| kind | documents | 10th pct | median | 90th pct |",
        "|---|---:|---:|---:|---:|",
    ]
    for kind, n, p10, p50, p90 in table:
        lines.append(f"| {kind} | {n} | {p10:,.1f} | {p50:,.1f} | {p90:,.1f} |")
    lines += [
        f"| all | {all_p[0]} | {all_p[1]:,.1f} | {all_p[2]:,.1f} | {all_p[3]:,.1f} |",
        "",
        "Kinds as in `mc4_sampling/data/sample/README.md`: `prose` is Spanish prose never seen in",
        "training, `prose_nav` the same inside menu and footer lines, `english` English prose,",
        "`word_salad` random words of a Spanish word list, `boilerplate` menus, cookie banners and",
        "footers, `spam` keyword stuffing, `repeated` repeated lines, `short` one-line pages,",
        "`ui_strings` program messages.",
        "",
        "## Rebuild",
        "",
        "On a Debian 12 machine, as root, from the repository root with the virtualenv installed",
        "(`make install`):",
        "",
        "```",
        "bash scripts/build_default_model.sh",
        "```",
        "",
        "It installs the build dependencies, builds `lmplz` and `build_binary`, downloads and unpacks",
        "the packages under `scripts/.build/` (git-ignored), rebuilds the sample and this model.",
        "With the same package versions the sample is identical byte for byte; the model files",
        "should be too (single-threaded SentencePiece, deterministic KenLM), and `model.json`",
        "follows from them. Debian point releases change package versions: compare with the",
        "table above.",
        "",
    ]
    (out / "MANIFEST.md").write_text("\n".join(lines), encoding="utf-8")


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except Exception:  # pragma: no cover
        return "?"


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
