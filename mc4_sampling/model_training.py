"""Train a CCNet-style perplexity model folder for any language from text the user has.

:func:`train_model` is ``mc4-sampling train-model``: documents in (text files, JSON lines with a
``text`` field, or any corpus source of :mod:`mc4_sampling.sources`), a model folder out that
:func:`~mc4_sampling.kenlm_models.load_perplexity_model` loads like the embedded one:

1. **Text.** Each document's lines, normalised as the scorer normalises them
   (:func:`~mc4_sampling.normalization.normalize_line`: CCNet's steps, line by line), one line each.
   1 document in :data:`HOLDOUT_MODULUS` (by a SHA-256 of its text) is held out for the quartiles,
   unless a separate sample is given.
2. **SentencePiece** unigram model with CCNet's settings (``--vocab_size=65536 --hard_vocab_limit
   --character_coverage=0.9995 --model_type=unigram``; CCNet retrains without the hard limit when
   the text has too few pieces, and so do we), single-threaded (same bytes every run).
3. **KenLM 5-gram** over the pieces with CCNet's ``lmplz -o 5 --discount_fallback`` (no pruning by
   default): the project's estimator (:mod:`mc4_sampling.kneser_ney`) or a local ``lmplz``.
4. ``build_binary`` when it is on PATH (``<lang>.arpa.bin``); otherwise the ARPA (``<lang>.arpa``),
   which KenLM loads just as well, only more slowly.
5. **Quartiles** of the ``ccnet`` perplexity of the held-out documents -> ``model.json`` (the
   default boundaries, BERTIN's factors scaled as for the embedded model), and ``MANIFEST.md``.

Nothing half-written: every step writes under a temporary name and renames; the steps done so far
are kept in a work folder beside the output (``.<name>.train-model-work``) with a fingerprint of the
inputs and settings, so a rerun of the same command resumes after the last finished step; the model
folder appears whole at the end (:func:`~mc4_sampling.common.outputs.atomic_dir`).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import logging
import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .common.outputs import atomic_dir, atomic_path, check_output_dir, write_atomic
from .errors import ConfigError, DataNotFoundError, Mc4SamplingError
from .kneser_ney import FALLBACK_DISCOUNTS, KneserNeyOptions, TooLittleTextError, estimate, write_arpa
from .normalization import normalize_line
from .weightings import DEFAULT_WIDTH

logger = logging.getLogger(__name__)

#: 1 document in this many (by the SHA-256 of its text) is held out for the quartiles.
HOLDOUT_MODULUS = 20
#: Fewest words (whitespace-separated, before SentencePiece) train-model accepts.
MIN_WORDS = 10_000
#: CCNet's SentencePiece settings, plus what makes training deterministic (one thread, every line,
#: no shuffling), as for the embedded model.
SP_SETTINGS = dict(
    model_type="unigram",
    character_coverage=0.9995,
    input_sentence_size=0,
    shuffle_input_sentence=False,
    max_sentence_length=16384,
    num_threads=1,
    seed_sentencepiece_size=1000000,
    normalization_rule_name="nmt_nfkc",
    minloglevel=2,
)
ESTIMATORS = ("auto", "own", "lmplz")
#: BERTIN's first quartile: a factor in perplexity units (stepwise's) is scaled by Q1 / BERTIN_Q1.
BERTIN_Q1 = 536394.99320948
COMMAND = "mc4-sampling train-model"


class TrainingTextError(Mc4SamplingError):
    """The training text is unusable (too small, unreadable)."""


@dataclass(frozen=True)
class TrainModelOptions:
    """Settings of ``train-model``; the defaults are CCNet's (SentencePiece 65 536 pieces, 5-gram,
    no pruning, ``--discount_fallback``)."""

    language: str
    vocab_size: int = 65536
    order: int = 5
    prune: tuple[int, ...] = ()
    discount_fallback: bool = True
    estimator: str = "auto"
    lmplz: str | None = None
    build_binary: str | None = None
    build_binary_args: tuple[str, ...] = ()
    lower_case: bool = True
    strip_accents: bool = True
    sample_documents: int = 10_000
    min_words: int = MIN_WORDS

    def check(self) -> None:
        """One line per bad setting, naming the command-line option."""
        if not self.language or "/" in self.language or self.language.startswith("."):
            raise ConfigError(f"--lang {self.language!r}: give a language code such as 'es' or 'spa_Latn'")
        if self.estimator not in ESTIMATORS:
            raise ConfigError(f"--estimator {self.estimator!r}: must be one of {', '.join(ESTIMATORS)}")
        if not 100 <= self.vocab_size <= 1_000_000:
            raise ConfigError(f"--vocab-size {self.vocab_size}: must be between 100 and 1000000 (CCNet: 65536)")
        if not 1 <= self.order <= 6:
            raise ConfigError(f"--order {self.order}: must be between 1 and 6 (CCNet: 5)")
        if self.sample_documents < 4:
            raise ConfigError(f"--sample-documents {self.sample_documents}: must be at least 4 (quartiles)")
        self.kneser_ney().thresholds("--prune")
        if self.estimator == "lmplz" and self.lmplz_path() is None:
            raise ConfigError("--estimator lmplz: no lmplz on PATH; give --lmplz PATH, or --estimator own "
                              "(the project's estimator, same probabilities)")

    def kneser_ney(self) -> KneserNeyOptions:
        return KneserNeyOptions(self.order, tuple(self.prune), FALLBACK_DISCOUNTS if self.discount_fallback else None)

    def lmplz_path(self) -> str | None:
        return _tool(self.lmplz, "lmplz", "--lmplz")

    def build_binary_path(self) -> str | None:
        return _tool(self.build_binary, "build_binary", "--build-binary")


def _tool(given: str | None, name: str, option: str) -> str | None:
    if given:
        if not (os.path.isfile(given) and os.access(given, os.X_OK)):
            raise ConfigError(f"{option} {given!r}: not an executable file (KenLM's {name})")
        return given
    return shutil.which(name)


# --- reading documents ------------------------------------------------------------------------


def read_documents(paths: Sequence[str]) -> Iterator[str]:
    """Documents of text files and JSON-lines files.

    ``.jsonl``/``.json`` (optionally ``.gz``): the ``text`` field of each line (bad lines are one
    error naming the file and line). Any other file is UTF-8 text (optionally ``.gz``): documents
    separated by blank lines, each line a paragraph; a file without blank lines is one document per
    line (a Wikipedia dump's text, one paragraph a line)."""
    for path in paths:
        if not os.path.isfile(path):
            raise DataNotFoundError(f"training text {path!r}: no such file (give text files, one paragraph "
                                    "a line, or JSON lines with a 'text' field)")
        name = path[:-3] if path.endswith(".gz") else path
        if name.endswith((".jsonl", ".json", ".ndjson")):
            from .reader import iter_records

            for _, record in iter_records(path, on_bad_record="raise"):
                yield record["text"]
        else:
            yield from _text_documents(path)


def _text_documents(path: str) -> Iterator[str]:
    opener = gzip.open if path.endswith(".gz") else open
    number = 0
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            block: list[str] = []
            for number, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if line.strip():
                    block.append(line)
                elif block:
                    yield "\n".join(block)
                    block = []
            if block:
                yield "\n".join(block)
    except UnicodeDecodeError as e:
        raise TrainingTextError(f"{path}:{number + 1}: not UTF-8 text ({e.reason}); train-model reads UTF-8 "
                                "text files or JSON lines") from None
    except (OSError, EOFError) as e:
        raise TrainingTextError(f"{path}: cannot read it ({e})") from None


def source_documents(source, split: str = "train", limit: int | None = None) -> Iterator[str]:
    """The texts of a corpus source's split (a :class:`mc4_sampling.sources.CorpusSource`), unit by unit."""
    source.check()
    n = 0
    for unit in source.units(split):
        for _, record in source.records(unit):
            if record is None:
                continue
            yield record.text
            n += 1
            if limit is not None and n >= limit:
                return


def split_lines(documents: Iterable[str], options: TrainModelOptions, training, heldout: list[str] | None) -> dict:
    """Write the normalised lines of the training documents to ``training`` (a text file object); keep
    1 in :data:`HOLDOUT_MODULUS` documents in ``heldout`` (when not None). Returns counts."""
    stats = {"documents": 0, "lines": 0, "words": 0, "characters": 0, "held_out": 0}
    for text in documents:
        if heldout is not None and len(heldout) < options.sample_documents and _held_out(text):
            heldout.append(text)
            stats["held_out"] += 1
            continue
        stats["documents"] += 1
        for line in text.split("\n"):
            line = normalize_line(line, options.lower_case, options.strip_accents)
            if line:
                training.write(line + "\n")
                stats["lines"] += 1
                stats["words"] += len(line.split())
                stats["characters"] += len(line)
    return stats


def _held_out(text: str) -> bool:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") % HOLDOUT_MODULUS == 0


# --- the steps ----------------------------------------------------------------------------------


def train_sentencepiece(text: Path, prefix: Path, vocab_size: int) -> bool:
    """SentencePiece unigram model at ``prefix.model``; True when the hard vocabulary limit held
    (CCNet's first try), False when it was retrained with a soft one (too little text)."""
    import sentencepiece as spm

    cwd = os.getcwd()
    os.chdir(text.parent)  # relative names: the model's bytes do not depend on the folder
    try:
        try:
            spm.SentencePieceTrainer.train(input=text.name, model_prefix=prefix.name, vocab_size=vocab_size,
                                           hard_vocab_limit=True, **SP_SETTINGS)
            return True
        except RuntimeError as e:
            if "Vocabulary size" not in str(e) and "vocab_size" not in str(e):
                raise TrainingTextError(f"SentencePiece could not train on {text}: {e}") from None
            logger.warning("too few pieces for --vocab-size %d with a hard limit; retraining with a soft limit "
                           "(as CCNet does): %s", vocab_size, e)
            spm.SentencePieceTrainer.train(input=text.name, model_prefix=prefix.name, vocab_size=vocab_size,
                                           hard_vocab_limit=False, **SP_SETTINGS)
            return False
    finally:
        os.chdir(cwd)


def encode_pieces(sp_model: Path, text: Path, out: Path) -> int:
    """``text``'s lines as SentencePiece pieces joined by spaces (what the scorer feeds KenLM); the count."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_model))
    n = 0
    with open(text, encoding="utf-8") as fin, open(out, "w", encoding="utf-8") as fout:
        batch: list[str] = []
        for line in fin:
            batch.append(line.rstrip("\n"))
            if len(batch) == 10_000:
                n += _encode_batch(sp, batch, fout)
                batch = []
        n += _encode_batch(sp, batch, fout)
    return n


def _encode_batch(sp, lines: list[str], out) -> int:
    n = 0
    for pieces in sp.encode(lines, out_type=str, num_threads=1):
        out.write(" ".join(pieces) + "\n")
        n += len(pieces)
    return n


def too_small(words: int, needed: int, what: str) -> TrainingTextError:
    return TrainingTextError(
        f"the training text is too small for a 5-gram model: {what} {words:,} words after normalisation; "
        f"train-model needs at least {needed:,} (about {needed * 6 // 1000:,} KB of text; CCNet trains on "
        "a Wikipedia of millions of words); give more text"
    )


def run_lmplz(lmplz: str, pieces: Path, arpa: Path, options: KneserNeyOptions, work: Path,
              memory: str = "20%") -> None:
    """``lmplz`` with CCNet's flags on ``pieces`` -> ``arpa`` (``-S memory``); its failures as one line."""
    args = [lmplz, "-o", str(options.order), "-S", memory, "-T", str(work), "--skip_symbols"]
    if options.prune:
        args += ["--prune", *map(str, options.prune)]
    if options.discount_fallback is not None:
        args += ["--discount_fallback", *map(str, options.discount_fallback)]
    logger.info("running %s", " ".join(args))
    with open(pieces, "rb") as fin, atomic_path(arpa) as tmp, open(tmp, "wb") as fout:
        done = subprocess.run(args, stdin=fin, stdout=fout, stderr=subprocess.PIPE)
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace")
            if "discount" in message.lower():
                raise TooLittleTextError(
                    "lmplz cannot compute modified Kneser-Ney discounts for this text: it is too small or too "
                    "repetitive; give more text, or keep --discount-fallback on (CCNet's setting)")
            last = [line for line in message.splitlines() if line.strip()][-1:] or ["no message"]
            raise Mc4SamplingError(f"lmplz failed (exit {done.returncode}): {last[0]}")


def run_build_binary(build_binary: str, args: Sequence[str], arpa: Path, binary: Path) -> None:
    with atomic_path(binary) as tmp:
        done = subprocess.run([build_binary, *args, str(arpa), str(tmp)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
        if done.returncode != 0:
            message = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
            raise Mc4SamplingError(f"build_binary {' '.join(args)} failed (exit {done.returncode}): {message[0]}")


def quartiles(model_folder: Path, language: str, documents: Sequence[str], options: TrainModelOptions) -> list[float]:
    """25th, 50th and 75th percentiles of the ``ccnet`` perplexities of ``documents``."""
    from .kenlm_models import from_folder

    model = from_folder(str(model_folder), language, "ccnet", name=str(model_folder))
    ppl = model.perplexities(list(documents))
    return [float(x) for x in np.percentile(ppl, [25, 50, 75])]


# --- the command ---------------------------------------------------------------------------------


class _Work:
    """The work folder of a run: each step's file is kept once complete; a different fingerprint
    (other inputs or settings) starts it afresh."""

    def __init__(self, output: Path, fingerprint: dict):
        self.folder = output.with_name(f".{output.name}.train-model-work")
        fingerprint = json.loads(json.dumps(fingerprint))  # as read back: lists, not tuples
        stamp = self.folder / "fingerprint.json"
        if self.folder.is_dir():
            try:
                same = json.loads(stamp.read_text(encoding="utf-8")) == fingerprint
            except (OSError, ValueError):
                same = False
            if not same:
                shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if not stamp.exists():
            write_atomic(stamp, json.dumps(fingerprint, indent=1, sort_keys=True))
        self.state_path = self.folder / "state.json"
        self.state = json.loads(self.state_path.read_text(encoding="utf-8")) if self.state_path.exists() else {}

    def path(self, name: str) -> Path:
        return self.folder / name

    def done(self, step: str) -> bool:
        return step in self.state

    def finish(self, step: str, info) -> None:
        self.state[step] = info
        write_atomic(self.state_path, json.dumps(self.state, indent=1))


def _fingerprint(inputs: Sequence[str], source_desc: str | None, sample: Sequence[str] | None,
                 options: TrainModelOptions) -> dict:
    def files(paths):
        return [[os.path.abspath(p), os.path.getsize(p), os.path.getmtime(p)] for p in paths if os.path.isfile(p)]

    opts = dataclasses.asdict(options)
    for k in ("lmplz", "build_binary"):
        opts.pop(k)
    return {"inputs": files(inputs), "source": source_desc, "sample": files(sample or []), "options": opts,
            "estimator": _estimator_name(options), "build_binary": bool(options.build_binary_path())}


def _estimator_name(options: TrainModelOptions) -> str:
    if options.estimator == "own" or (options.estimator == "auto" and options.lmplz_path() is None):
        return "own"
    return "lmplz"


def train_model(output, inputs: Sequence[str] = (), options: TrainModelOptions | None = None, *,
                documents: Callable[[], Iterable[str]] | None = None, source_desc: str | None = None,
                sample: Sequence[str] | None = None, overwrite: bool = False,
                progress: Callable[[str], None] = lambda message: None) -> dict:
    """Train a model folder at ``output`` (module docstring) from the documents of ``inputs`` (files:
    :func:`read_documents`) or of ``documents()`` (e.g. :func:`source_documents`). ``sample``: files
    whose documents give the quartiles (default: 1 in 20 documents held out). Returns ``model.json``."""
    if options is None:
        raise ConfigError("train_model needs options (TrainModelOptions(language=...))")
    options.check()
    if not inputs and documents is None:
        raise ConfigError("give the training text: one or more files (text, or JSON lines with 'text'), "
                          "or --source")
    for path in [*inputs, *(sample or [])]:
        if not os.path.isfile(path):
            raise DataNotFoundError(f"{path!r}: no such file (give text files or JSON lines with a 'text' field)")
    output = Path(output).absolute()
    check_output_dir(output, "--output", overwrite)
    work = _Work(output, _fingerprint(inputs, source_desc, sample, options))
    try:
        return _train(output, inputs, options, work, documents, source_desc, sample, overwrite, progress)
    except BaseException:
        if not work.state:  # nothing worth resuming
            shutil.rmtree(work.folder, ignore_errors=True)
        raise


def _train(output: Path, inputs, options: TrainModelOptions, work: _Work, documents, source_desc, sample,
           overwrite: bool, progress) -> dict:
    lang = options.language
    timings: dict[str, float] = {}

    # 1. the normalised training text (and the held-out documents)
    text, heldout_file = work.path("text.txt"), work.path("heldout.jsonl")
    if not work.done("text"):
        progress("normalising the training text")
        t = time.time()
        heldout: list[str] | None = None if sample else []
        with atomic_path(text) as tmp, open(tmp, "w", encoding="utf-8") as f:
            docs = documents() if documents is not None else read_documents(inputs)
            stats = split_lines(docs, options, f, heldout)
        if stats["words"] < options.min_words:
            raise too_small(stats["words"], options.min_words, "it has")
        if sample:
            heldout = list(read_documents(sample))
        write_atomic(heldout_file, "".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in heldout))
        timings["text"] = time.time() - t
        work.finish("text", stats)
    stats = work.state["text"]

    # 2. SentencePiece
    sp_model = work.path("sp.model")
    if not work.done("sentencepiece"):
        progress(f"training SentencePiece ({options.vocab_size} pieces, unigram)")
        t = time.time()
        prefix = work.path("sp-training")  # a fixed name: the model records it, its bytes stay the same
        try:
            hard = train_sentencepiece(text, prefix, options.vocab_size)
            os.replace(f"{prefix}.model", sp_model)
        finally:
            for suffix in (".model", ".vocab"):
                Path(f"{prefix}{suffix}").unlink(missing_ok=True)
        import sentencepiece as spm

        pieces_in_model = spm.SentencePieceProcessor(model_file=str(sp_model)).get_piece_size()
        timings["sentencepiece"] = time.time() - t
        work.finish("sentencepiece", {"hard_vocab_limit": hard, "pieces": pieces_in_model})

    # 3. the pieces, then the n-gram model
    pieces = work.path("pieces.txt")
    if not work.done("pieces"):
        progress("encoding the text with SentencePiece")
        t = time.time()
        with atomic_path(pieces) as tmp:
            n_pieces = encode_pieces(sp_model, text, tmp)
        timings["encode"] = time.time() - t
        work.finish("pieces", {"pieces": n_pieces})
    arpa = work.path("lm.arpa")
    estimator = _estimator_name(options)
    if not work.done("ngram"):
        kn = options.kneser_ney()
        t = time.time()
        if estimator == "lmplz":
            progress(f"estimating the {options.order}-gram model with {options.lmplz_path()}")
            run_lmplz(options.lmplz_path(), pieces, arpa, kn, work.folder)
            counts, discounts = _arpa_counts(arpa), None
        else:
            progress(f"estimating the {options.order}-gram model (modified Kneser-Ney, the project's estimator)")
            with open(pieces, encoding="utf-8") as f:
                model = estimate(f, kn)
            with atomic_path(arpa) as tmp:
                write_arpa(model, tmp)
            counts, discounts = model.counts(), [list(d) for d in model.discounts]
            del model
        timings["ngram"] = time.time() - t
        work.finish("ngram", {"estimator": estimator, "counts": counts, "discounts": discounts})
    binary = work.path("lm.arpa.bin")
    build_binary = options.build_binary_path()
    if build_binary and not work.done("binary"):
        progress("build_binary")
        run_build_binary(build_binary, options.build_binary_args, arpa, binary)
        work.finish("binary", {"args": list(options.build_binary_args)})

    # 4. the folder: model files, then the quartiles of the held-out documents, model.json, MANIFEST.md
    heldout_docs = [json.loads(line)["text"] for line in heldout_file.read_text(encoding="utf-8").splitlines()]
    progress(f"scoring {len(heldout_docs)} held-out documents for the quartiles")
    with atomic_dir(output, COMMAND, "--output", overwrite) as tmp:
        kenlm_name = f"{lang}.arpa.bin" if build_binary else f"{lang}.arpa"
        _link_or_copy(binary if build_binary else arpa, tmp / kenlm_name)
        _link_or_copy(sp_model, tmp / f"{lang}.sp.model")
        meta = {"language": lang, "mode": "ccnet", "lower_case": options.lower_case,
                "strip_accents": options.strip_accents}
        (tmp / "model.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        source_of_sample = "the --sample documents" if sample else (
            f"1 in {HOLDOUT_MODULUS} documents of the training input (by SHA-256 of the text), held out from training")
        if len(heldout_docs) < 4:
            raise TrainingTextError(
                f"only {len(heldout_docs)} documents held out for the quartiles (at least 4 are needed): give more "
                f"documents (1 in {HOLDOUT_MODULUS} is held out) or --sample FILE")
        q = quartiles(tmp, lang, heldout_docs, options)
        if not q[0] < q[1] < q[2]:
            raise TrainingTextError(f"the quartiles of the held-out documents are not increasing ({q}); give more "
                                    "varied documents for --sample")
        meta = {
            "language": lang,
            "mode": "ccnet",
            "boundaries": [round(x, 4) for x in q],
            "factors": default_factors(q[0]),
            "width": DEFAULT_WIDTH,
            "boundaries_source": f"25th/50th/75th percentiles of the perplexity of {len(heldout_docs)} documents: "
                                 f"{source_of_sample}",
            "lower_case": options.lower_case,
            "strip_accents": options.strip_accents,
            "trained_by": COMMAND,
            "training": {"words": stats["words"], "pieces": work.state["pieces"]["pieces"],
                         "ngrams": work.state["ngram"]["counts"], "estimator": work.state["ngram"]["estimator"]},
        }
        (tmp / "model.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        _write_manifest(tmp, meta, work.state, options, kenlm_name, inputs, source_desc, timings)
    shutil.rmtree(work.folder, ignore_errors=True)
    return meta


def default_factors(q1: float) -> dict:
    """Each weighting's default factor; one in perplexity units (stepwise's, BERTIN's 1.5e5 for its
    quartiles) scaled by ``q1 / BERTIN_Q1``, as for the embedded model."""
    from .weightings import WEIGHTINGS

    return {name: round(w.default_factor * q1 / BERTIN_Q1, 6) if w.factor_depends_on_boundaries else w.default_factor
            for name, w in WEIGHTINGS.items() if not w.keeps_all}


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _arpa_counts(arpa: Path) -> list[int]:
    counts = []
    with open(arpa, encoding="utf-8") as f:
        for line in f:
            if line.startswith("ngram "):
                counts.append(int(line.split("=")[1]))
            elif line.startswith("\\1-grams"):
                break
    return counts


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_manifest(folder: Path, meta: dict, state: dict, options: TrainModelOptions, kenlm_name: str,
                    inputs: Sequence[str], source_desc: str | None, timings: dict) -> None:
    lang = options.language
    text, sp, ngram = state["text"], state["sentencepiece"], state["ngram"]
    kn = options.kneser_ney()
    flags = ["-o", str(options.order)] + (["--prune", *map(str, kn.prune)] if kn.prune else []) + (
        ["--discount_fallback"] if options.discount_fallback else [])
    lines = [
        f"# Perplexity model ({lang})",
        "",
        f"A CCNet-style {options.order}-gram KenLM model over SentencePiece pieces, made by `{COMMAND}`.",
        "",
        "## Files",
        "",
        "| file | bytes | sha256 |",
        "|---|---:|---|",
    ]
    for name in (kenlm_name, f"{lang}.sp.model", "model.json"):
        p = folder / name
        lines.append(f"| `{name}` | {p.stat().st_size:,} | `{_sha256(p)}` |")
    inputs_desc = source_desc or ", ".join(f"`{os.path.basename(p)}`" for p in inputs)
    lines += [
        "",
        "## Training text",
        "",
        f"- Input: {inputs_desc}.",
        f"- {text['documents']:,} documents, {text['lines']:,} lines, {text['words']:,} words, "
        f"{text['characters']:,} characters after normalisation ({text['held_out']:,} documents held out).",
        f"- Normalisation: `mc4_sampling.normalization.normalize_line` (lower_case={options.lower_case}, "
        f"strip_accents={options.strip_accents}), line by line.",
        "",
        "## Settings",
        "",
        f"- SentencePiece unigram, vocab_size={options.vocab_size} "
        f"({'hard limit' if sp['hard_vocab_limit'] else 'soft limit: too little text for a hard one'}; "
        f"{sp['pieces']:,} pieces), "
        + ", ".join(f"{k}={v}" for k, v in SP_SETTINGS.items() if k != "minloglevel") + ".",
        f"- Encoded text: {state['pieces']['pieces']:,} pieces.",
        f"- {options.order}-gram, modified Kneser-Ney as `lmplz {' '.join(flags)}`, estimated by "
        + ("the project's estimator (`mc4_sampling.kneser_ney`)" if ngram["estimator"] == "own" else "KenLM's `lmplz`")
        + ": " + ", ".join(f"{i + 1}-grams {n:,}" for i, n in enumerate(ngram["counts"])) + ".",
    ]
    if ngram.get("discounts"):
        lines.append("- Discounts (D1, D2, D3+) by order: " + "; ".join(
            f"{i + 1}: " + ", ".join(f"{d:.4f}" for d in ds) for i, ds in enumerate(ngram["discounts"])) + ".")
    lines.append(f"- KenLM file: `{kenlm_name}`" + (
        f" (`build_binary {' '.join(options.build_binary_args)}`)." if kenlm_name.endswith(".bin")
        else " (ARPA text: no `build_binary` on PATH; KenLM loads it as it is)."))
    q1, q2, q3 = meta["boundaries"]
    lines += [
        "",
        "## Sampling parameters (`model.json`)",
        "",
        f"- `boundaries` = {q1}, {q2}, {q3}: {meta['boundaries_source']}; `ccnet` mode.",
        "- `factors`: " + ", ".join(f"{k} {v}" for k, v in meta["factors"].items()) + ": each weighting's default "
        f"(BERTIN's), scaled by Q1 / {BERTIN_Q1} (BERTIN's first quartile) where the factor is in perplexity units; "
        f"`width` = {DEFAULT_WIDTH}.",
        "",
        "Use it with `--perplexity-model FOLDER --lang " + lang + "` (or `--scorer-model FOLDER`).",
        "",
    ]
    (folder / "MANIFEST.md").write_text("\n".join(lines), encoding="utf-8")


def parse_binary_args(text: str) -> tuple[str, ...]:
    """``--build-binary-args "-q 8 -b 8 -a 64 trie"`` as a tuple."""
    try:
        return tuple(shlex.split(text))
    except ValueError as e:
        raise ConfigError(f"--build-binary-args {text!r}: {e}") from None
