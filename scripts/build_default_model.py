#!/usr/bin/env python3
"""Train the embedded Spanish perplexity model (``mc4_sampling/data/model/``) with ``mc4-sampling train-model``.

Run by ``scripts/build_default_model.sh`` after it has built KenLM's ``build_binary`` (and, only
with ``WITH_LMPLZ=1``, ``lmplz``), unpacked the Debian packages under ``scripts/.build/root/`` and
built the bundled sample (whose train split gives the quartiles). Steps:

1. Spanish prose paragraphs of the training packages (``spanish_text.TRAIN_SOURCES``, thinned
   by ``TRAIN_KEEP_MODULUS``, then ``EXTRA_TRAIN_SOURCES``), held-out documents removed,
   de-duplicated -> ``train.txt`` (one paragraph a line, a blank line between documents), and
   the documents of the bundled sample's train split -> ``sample.jsonl``.
2. ``mc4-sampling train-model --lang es --vocab-size 12000 --prune 0 0 1 1 1
   --no-discount-fallback --build-binary-args "-q 8 -b 8 -a 64 trie" --sample sample.jsonl
   train.txt``: normalisation (``mc4_sampling.normalization.normalize_line``, the runtime's),
   SentencePiece unigram (12 000 pieces, single-threaded, no sampling: deterministic), the pieces,
   a 5-gram with the project's estimator (``--estimator lmplz`` for KenLM's; same probabilities),
   ``build_binary``, the quartiles of the sample's ``ccnet`` perplexities.
3. ``model.json`` (BERTIN's factors, the stepwise one scaled by the first quartile), perplexity
   table by kind of document, ``MANIFEST.md`` with sources, versions, licences, counts, settings,
   checksums.

Usage: ``.venv/bin/python scripts/build_default_model.py [--estimator own|lmplz]
[--kenlm-bin scripts/.build/kenlm-src/build/bin]``
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

from mc4_sampling.model_training import SP_SETTINGS  # noqa: E402
from mc4_sampling.normalization import normalize_line  # noqa: E402

LANG = "es"
VOCAB_SIZE = 12000
PRUNE = ["0", "0", "1", "1", "1"]
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
    """The training paragraphs, one a line (a paragraph's own newlines dropped, as the normalisation
    drops them), a blank line between documents; statistics per package."""
    train, _heldout = st.load_corpus(root, normalize_line, extra=True)
    stats = {}
    with open(path, "w", encoding="utf-8") as f:
        for package, docs in train.items():
            n_par = n_words = n_bytes = 0
            for _doc_id, paras in docs:
                for p in paras:
                    f.write(p.replace("\n", "") + "\n")
                    n_par += 1
                    n_words += len(p.split())
                    n_bytes += len(p.encode("utf-8"))
                f.write("\n")
            stats[package] = {"documents": len(docs), "paragraphs": n_par, "words": n_words, "bytes": n_bytes}
    return stats


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
    ap.add_argument("--estimator", choices=("own", "lmplz"), default="own",
                    help="the n-gram estimator of train-model: the project's (default) or KenLM's lmplz "
                    "(built by build_default_model.sh only with WITH_LMPLZ=1)")
    args = ap.parse_args()
    work, out = args.work, args.out
    work.mkdir(parents=True, exist_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}

    t = time.time()
    text = work / "train.txt"
    stats = write_training_text(args.root, text)
    texts, by_kind, sample_desc = read_sample(args.kinds, args.sample)
    sample = work / "sample.jsonl"
    sample.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in texts), encoding="utf-8")
    timings["text"] = time.time() - t
    total = {k: sum(s[k] for s in stats.values()) for k in ("documents", "paragraphs", "words", "bytes")}
    print("training text:", total, flush=True)

    t = time.time()
    trained = work / "trained"
    lmplz = ["--lmplz", str(args.kenlm_bin / "lmplz")] if args.estimator == "lmplz" else []
    run([sys.executable, "-m", "mc4_sampling.cli", "train-model", "--lang", LANG, "-o", str(trained), "--overwrite",
         "--vocab-size", str(VOCAB_SIZE), "--prune", *PRUNE, "--no-discount-fallback", "--estimator", args.estimator,
         *lmplz, "--build-binary", str(args.kenlm_bin / "build_binary"), "--build-binary-args",
         " ".join(BUILD_BINARY_ARGS), "--sample", str(sample), str(text)], cwd=REPO)
    timings["train-model"] = time.time() - t
    training = json.loads((trained / "model.json").read_text(encoding="utf-8"))["training"]
    n_tokens, ngram_counts = training["pieces"], training["ngrams"]

    shutil.copyfile(trained / f"{LANG}.arpa.bin", out / f"{LANG}.arpa.bin")
    shutil.copyfile(trained / f"{LANG}.sp.model", out / f"{LANG}.sp.model")

    # --- quartiles on held-out text and the perplexity table ---------------------------------
    from mc4_sampling.perplexity import PerplexityModel

    model = PerplexityModel(str(out / f"{LANG}.arpa.bin"), str(out / f"{LANG}.sp.model"), mode="ccnet")
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

    write_manifest(args, stats, total, n_tokens, ngram_counts, meta, table, all_p, training)
    print("timings:", ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))


def write_manifest(args, stats, total, n_tokens, ngram_counts, meta, table, all_p, training) -> None:
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
        f"- `mc4-sampling train-model --lang {LANG} --vocab-size {VOCAB_SIZE} --prune {' '.join(PRUNE)} "
        f"--no-discount-fallback --build-binary-args \"{' '.join(BUILD_BINARY_ARGS)}\" --sample <sample> <text>`.",
        "- SentencePiece " + _version("sentencepiece") + ": " + f"`vocab_size={VOCAB_SIZE}`, "
        + ", ".join(f"`{k}={v}`" for k, v in SP_SETTINGS.items() if k != "minloglevel") + ".",
        f"- Encoded training text: {n_tokens:,} pieces (pieces of a line joined by spaces, one line per paragraph).",
        f"- 5-gram, modified Kneser-Ney as `lmplz -o 5 --prune {' '.join(PRUNE)}`, estimated by "
        + ("the project's estimator (`mc4_sampling.kneser_ney`)" if training["estimator"] == "own" else
           "KenLM 0.3.0's `lmplz`") + ": n-gram counts after pruning "
        + ", ".join(f"{i + 1}-grams {n:,}" for i, n in enumerate(ngram_counts)) + ".",
        f"- KenLM 0.3.0's `build_binary` (`pip download --no-deps --no-binary kenlm kenlm==0.3.0`, sha256 "
        f"`{sha256(kenlm_src) if kenlm_src.exists() else 'n/a'}`), built with cmake (Release).",
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
        "It installs the build dependencies, builds `build_binary` (and `lmplz` with `WITH_LMPLZ=1`),",
        "downloads and unpacks the packages under `scripts/.build/` (git-ignored), rebuilds the sample and this model.",
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
