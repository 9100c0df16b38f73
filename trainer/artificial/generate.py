"""An artificial corpus: sentences of a grammar learned from a treebank (:mod:`.pcfg`), relexicalised
(:mod:`.relexicalisers`), written as shards of JSON lines ``{"text": ...}`` or Parquet, with the tokenizer of
its vocabulary (one token one id) and the relation of each token.

Determinism: sentence ``i`` is drawn from its own generator, ``PCG64(SeedSequence([seed, i]))``
(:func:`sentence_rng`): its tree first, then its tokens; the log-linear vectors come from
``SeedSequence(seed, spawn_key=(1,))`` (:func:`lexicon_rng`, entropy ``[seed, 0, 0, 0, 1]``, not a sentence's
``[seed, i]``). So the corpus depends on the options alone, never on the number of worker processes, the shard
size or a restart.

Layout of ``--output``::

    manifest.json          the options, the treebank's SHA-256, the vocabulary, the shards written
                           ("complete": true once every shard is there)
    grammar.json           the learned grammar (tags, productions with counts, distinct forms per tag)
    train/NNNNN.jsonl      sentences [N·shard_size, (N+1)·shard_size), one {"text": "w12 w803 ..."} a line
                           (train/NNNNN.parquet with --format parquet: one column "text")
    tokenizer/             a transformers tokenizer folder: <s> <pad> </s> <unk> <mask>, then w0 .. w<V-1>
    labels.tsv             "token<TAB>relation" for every w<i> (after a header line), e.g. for a PCA of the
                           word embeddings coloured by relation

Every file is written under a temporary name and renamed when complete; a rerun with the same options skips
the shards already there (resume), one with other options is refused unless ``--overwrite``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from typing import Callable, Iterator, Optional

import numpy as np

from mc4_sampling.common.outputs import (
    atomic_folder,
    atomic_path,
    check_output_dir,
    is_ours,
    mark_as_ours,
    write_atomic,
)

from ..errors import ConfigError, DataError
from .conllu import read_treebank
from .pcfg import Grammar, Sampler, learn_grammar
from .relexicalisers import LexiconOptions, Vocabulary, get_relexicaliser, token_name

log = logging.getLogger(__name__)

#: the manifest's format
FORMAT = "pcfg-corpus/1"
#: the command that writes the folder (its marker)
COMMAND = "trainer generate-pcfg"
FORMATS = ("jsonl", "parquet")


@dataclasses.dataclass(frozen=True)
class GenerateOptions:
    """What the corpus depends on (the number of workers is not in it). Defaults: the post's recipe (top 20
    relations, 5000 tokens, Zipf exponent 1, dimension 10; 1 M sentences)."""

    relexicalise: str = "zipf"
    sentences: int = 1_000_000
    seed: int = 0
    top_k: int = 20
    strip_subtypes: bool = False
    max_depth: int = 10
    vocab_size: int = 5000
    zipf_exponent: float = 1.0
    dimension: int = 10
    temperature: float = 1.0
    shard_size: int = 100_000
    format: str = "jsonl"

    def lexicon(self) -> LexiconOptions:
        return LexiconOptions(self.zipf_exponent, self.dimension, self.temperature)


#: how each option is written on the command line (errors name it so)
FLAGS = {f.name: "--" + f.name.replace("_", "-") for f in dataclasses.fields(GenerateOptions)}


def check_options(o: GenerateOptions) -> None:
    """One ConfigError line naming the flag and its valid range for the first option out of range."""
    get_relexicaliser(o.relexicalise, FLAGS["relexicalise"])
    ints = {"sentences": 1, "top_k": 1, "max_depth": 1, "vocab_size": 1, "dimension": 1, "shard_size": 1,
            "seed": 0}
    for name, low in ints.items():
        v = getattr(o, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < low:
            raise ConfigError(f"{FLAGS[name]} must be an integer >= {low}, got {v!r}")
    if not (np.isfinite(o.zipf_exponent) and o.zipf_exponent >= 0):
        raise ConfigError(f"{FLAGS['zipf_exponent']} must be a finite number >= 0, got {o.zipf_exponent!r}")
    if not (np.isfinite(o.temperature) and o.temperature > 0):
        raise ConfigError(f"{FLAGS['temperature']} must be a finite number > 0, got {o.temperature!r}")
    if o.format not in FORMATS:
        raise ConfigError(f"{FLAGS['format']} must be one of {', '.join(FORMATS)}, got {o.format!r}")


def sentence_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of sentence ``index``: ``PCG64(SeedSequence([seed, index]))``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, index])))


def lexicon_rng(seed: int) -> np.random.Generator:
    """The generator of the vocabulary's own random draws (log-linear vectors)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(1,))))


class Language:
    """A grammar, a vocabulary and a relexicaliser: sentence ``i`` as tags, ids or text."""

    def __init__(self, grammar: Grammar, options: GenerateOptions):
        check_options(options)
        self.grammar = grammar
        self.options = options
        self.vocabulary = Vocabulary.of(grammar, options.vocab_size, FLAGS["vocab_size"])
        self.sampler = Sampler(grammar, options.max_depth)
        cls = get_relexicaliser(options.relexicalise, FLAGS["relexicalise"])
        self.relexicaliser = cls(self.vocabulary, options.lexicon(), lexicon_rng(options.seed))

    def sentence(self, index: int) -> tuple:
        """``(tags, ids)`` of sentence ``index``."""
        rng = sentence_rng(self.options.seed, index)
        tags = self.sampler.sample(rng)
        return tags, self.relexicaliser.draw(tags, rng)

    def text(self, index: int) -> str:
        return " ".join(token_name(int(i)) for i in self.sentence(index)[1])

    def texts(self, start: int = 0, stop: Optional[int] = None) -> Iterator[str]:
        """The sentences ``start .. stop - 1`` (default: to ``options.sentences``), one at a time."""
        for i in range(start, self.options.sentences if stop is None else stop):
            yield self.text(i)

    def tokens(self) -> list:
        return [token_name(i) for i in range(self.vocabulary.total)]


def learn(treebank: str, options: GenerateOptions) -> Grammar:
    """The grammar of ``treebank`` (a file or URL) with the options' ``top_k`` and ``strip_subtypes``."""
    check_options(options)
    return learn_grammar(read_treebank(treebank, "--treebank"), options.top_k, options.strip_subtypes,
                         FLAGS["top_k"], f"treebank {treebank}")


def iter_sentences(treebank: str, options: GenerateOptions) -> Iterator[str]:
    """Stream the corpus's sentences without writing anything (the same texts as the shards)."""
    lang = Language(learn(treebank, options), options)
    yield from lang.texts()


# --- writing ------------------------------------------------------------------------------------------------


def shard_path(folder: str, index: int, fmt: str) -> str:
    return os.path.join(folder, "train", f"{index:05d}.{fmt}")


def _write_shard(lang: Language, index: int, path: str) -> dict:
    o = lang.options
    start = index * o.shard_size
    stop = min(start + o.shard_size, o.sentences)
    texts = list(lang.texts(start, stop))
    tokens = sum(t.count(" ") + 1 for t in texts)
    with atomic_path(path) as tmp:
        if o.format == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"text": texts}), tmp)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                for t in texts:
                    f.write(json.dumps({"text": t}) + "\n")
    return {"file": os.path.relpath(path, os.path.dirname(os.path.dirname(path))), "sentences": len(texts),
            "tokens": tokens}


_WORKER_LANGUAGE: dict = {}


def _worker_init() -> None:
    from mc4_sampling.common.processes import die_with_parent

    die_with_parent()


def _shard_job(job: dict) -> dict:
    """Write one shard in a worker process (the language built once per process)."""
    key = job["key"]
    if key not in _WORKER_LANGUAGE:
        _WORKER_LANGUAGE.clear()
        _WORKER_LANGUAGE[key] = Language(Grammar.from_json(job["grammar"]), GenerateOptions(**job["options"]))
    return _write_shard(_WORKER_LANGUAGE[key], job["index"], job["path"])


def _sha256_file(path: str) -> Optional[str]:
    if not os.path.isfile(path):
        return None  # a URL: its bytes are read once, by the reader
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _settings(options: GenerateOptions, grammar: Grammar) -> dict:
    blob = json.dumps(grammar.to_json(), sort_keys=True).encode()
    return {"format": FORMAT, "options": dataclasses.asdict(options),
            "grammar_sha256": hashlib.sha256(blob).hexdigest()}


def _check_resume(output: str, settings: dict, overwrite: bool) -> None:
    """Refuse a folder of ours made with other settings (unless ``overwrite``: then it is emptied)."""
    manifest = os.path.join(output, "manifest.json")
    if not os.path.isfile(manifest):
        if overwrite and os.path.isdir(output) and not is_ours(output):  # --overwrite of somebody else's folder
            _empty(output)
        return
    try:
        with open(manifest, encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, ValueError):
        old = {}
    if {k: old.get(k) for k in settings} == settings:
        return
    if not overwrite:
        was, now = old.get("options", {}), settings["options"]
        diff = [f"{FLAGS.get(k, k)} {was.get(k)!r} -> {now[k]!r}" for k in now if was.get(k) != now.get(k)]
        why = ", ".join(diff) if diff else "another treebank or grammar"
        raise ConfigError(f"--output {output!r} holds a corpus generated with other settings ({why}); give a new "
                          "folder, the same options to resume, or --overwrite to replace it")
    _empty(output)


def _empty(folder: str) -> None:
    for name in os.listdir(folder):
        p = os.path.join(folder, name)
        shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)


def generate(treebank: str, output: str, options: GenerateOptions, workers: int = 1, overwrite: bool = False,
             progress: Optional[Callable[[int], None]] = None, model_max_length: int = 512) -> dict:
    """Write the corpus of the module's layout to ``output`` (resuming one of the same options); returns the
    manifest. ``progress(n)`` is called with the sentences of every shard written (or found)."""
    check_options(options)
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
    check_output_dir(output, "--output", overwrite, ours=is_ours)  # before reading the treebank
    grammar = learn(treebank, options)
    lang = Language(grammar, options)  # the vocabulary checks run before anything is written
    settings = _settings(options, grammar)
    _check_resume(output, settings, overwrite)
    mark_as_ours(output, COMMAND)
    os.makedirs(os.path.join(output, "train"), exist_ok=True)
    manifest = {**settings, "treebank": treebank, "treebank_sha256": _sha256_file(treebank), "complete": False,
                "vocabulary": {
        "size": lang.vocabulary.total, "tags": list(lang.vocabulary.tags), "sizes": list(lang.vocabulary.sizes),
        "relexicaliser": options.relexicalise, "parameters": lang.relexicaliser.parameters()}}
    write_atomic(os.path.join(output, "manifest.json"), json.dumps(manifest, indent=1) + "\n")
    write_atomic(os.path.join(output, "grammar.json"), json.dumps(grammar.to_json(), indent=1) + "\n")
    _write_tokenizer(lang, output, model_max_length)

    n_shards = -(-options.sentences // options.shard_size)
    shards: dict = {}
    todo = []
    for i in range(n_shards):
        path = shard_path(output, i, options.format)
        if os.path.isfile(path):
            shards[i] = _count_shard(path, options.format)
            if progress:
                progress(shards[i]["sentences"])
        else:
            todo.append((i, path))
    if workers <= 1 or len(todo) <= 1:
        for i, path in todo:
            shards[i] = _write_shard(lang, i, path)
            if progress:
                progress(shards[i]["sentences"])
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        base = {"key": settings["grammar_sha256"] + json.dumps(settings["options"]), "grammar": grammar.to_json(),
                "options": dataclasses.asdict(options)}
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_worker_init) as pool:
            futures = {pool.submit(_shard_job, {**base, "index": i, "path": p}): i for i, p in todo}
            for fut in as_completed(futures):
                shards[futures[fut]] = fut.result()
                if progress:
                    progress(shards[futures[fut]]["sentences"])
    manifest["shards"] = [shards[i] for i in range(n_shards)]
    manifest["sentences"] = sum(s["sentences"] for s in manifest["shards"])
    manifest["tokens"] = sum(s["tokens"] for s in manifest["shards"])
    manifest["complete"] = True
    write_atomic(os.path.join(output, "manifest.json"), json.dumps(manifest, indent=1) + "\n")
    log.info("%d sentences (%d tokens) in %d shards -> %s", manifest["sentences"], manifest["tokens"], n_shards,
             output)
    return manifest


def _count_shard(path: str, fmt: str) -> dict:
    """The counts of a shard written by an earlier run (resume)."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            texts = pq.read_table(path, columns=["text"]).column("text").to_pylist()
        else:
            with open(path, encoding="utf-8") as f:
                texts = [json.loads(line)["text"] for line in f]
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"cannot read the shard {path} of an earlier run ({type(e).__name__}: {e}); delete it "
                        "and run again") from None
    return {"file": os.path.join("train", os.path.basename(path)), "sentences": len(texts),
            "tokens": sum(t.count(" ") + 1 for t in texts)}


def _write_tokenizer(lang: Language, output: str, model_max_length: int) -> None:
    from ..data.tokenizer import word_level_tokenizer

    with atomic_folder(os.path.join(output, "tokenizer")) as tmp:
        word_level_tokenizer(lang.tokens(), str(tmp), model_max_length)
    rows = ["token\trelation"] + [f"{token_name(i)}\t{t}" for i, t in enumerate(lang.vocabulary.labels())]
    write_atomic(os.path.join(output, "labels.tsv"), "\n".join(rows) + "\n")
