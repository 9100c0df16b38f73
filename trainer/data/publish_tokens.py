"""``mc4-sampling publish --tokenizer DIR``: token shards beside the Parquet, the hold-out already applied.

The trainer's contribution to ``publish``, reached through the sampler's extension point (the entry
point ``token-shards`` of the group ``mc4_sampling.publish_outputs`` in ``setup.cfg``, looked up by
:mod:`mc4_sampling.publish_outputs`): :data:`TOKEN_SHARDS` declares the options and runs after a
complete publish. For every config, the published ``train`` split (``data/<config>/train-*.parquet``,
in file order: the order the trainer streams it) is tokenised into ``tokens/<config>/`` in the format
of :mod:`trainer.data.token_shards` (datatrove's ``.ds`` / ``.ds.index`` / ``.ds.metadata``), written
by :class:`~trainer.data.shard_writer.TokenShardWriter`:

1. the eval set by the trainer's rule (:mod:`trainer.data.holdout`: keyed hash of the normalised
   text < ``--eval-fraction``, the first ``--eval-docs`` distinct candidates) -> ``eval/00000.ds`` and
   ``eval_manifest.json`` (SHA-256 of each eval document);
2. one train shard per Parquet file, every document except the eval documents and their exact
   (optionally ``--near-duplicates``) duplicates -> ``train/NNNNN.ds``;
3. ``manifest.json`` (tokenizer and its SHA-256, hold-out settings, document and token counts), last.

Every file is written under a temporary name and renamed; a rerun skips the finished train shards
(resume) and starts over when the settings changed. Token ids are the tokenizer's, each document
followed by its ``</s>``: the trainer (``data.token_shards``) packs them exactly like its stream.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import shutil

from ..errors import ConfigError, DataError
from .shard_writer import TokenShardWriter, write_json

logger = logging.getLogger(__name__)

TOKENS_DIR = "tokens"
ENCODE_BATCH = 512


class TokenShardsOutput:
    """The ``publish`` output ``token-shards`` (the interface of :mod:`mc4_sampling.publish_outputs`)."""

    flag = "--tokenizer"
    #: the extra that provides it, and the modules of that extra it needs
    extra = "trainer"
    requires = ("transformers", "tokenizers")

    def add_arguments(self, parser) -> None:
        add_arguments(parser)

    def wanted(self, args) -> bool:
        return bool(getattr(args, "tokenizer", None))

    def check(self, args) -> None:
        """Before any sampling: the options and the tokenizer folder (a missing one is told in seconds, not
        after every Parquet file is written)."""
        checked_tokenizer(args.tokenizer, args.eval_docs, args.eval_fraction, args.near_duplicates)
        check_eval_candidates(args)

    def check_documents(self, args, configs, source=None) -> None:
        """Before the first Parquet file is written: enough eval candidates among the kept documents."""
        check_kept_eval_candidates(args, configs, source)

    def run(self, args, result) -> None:
        run_after_publish(args, result)


#: The object the entry point names.
TOKEN_SHARDS = TokenShardsOutput()


def add_arguments(parser) -> None:
    """The ``publish`` options of this step (a group of their own)."""
    g = parser.add_argument_group("token shards (trainer.data.token_shards)")
    g.add_argument("--tokenizer", metavar="DIR",
                   help="also write token shards of the train split with this tokenizer folder (fast tokenizer) "
                        "in OUTPUT_DIR/tokens/<config>/, the trainer's hold-out applied")
    g.add_argument("--eval-docs", type=int, default=2000, help="eval documents held out (default 2000)")
    g.add_argument("--eval-fraction", type=float, default=0.1,
                   help="rate of eval candidates by content hash (default 0.1, as data.eval_fraction)")
    g.add_argument("--holdout-seed", type=int, default=0, help="key of the hold-out hash (default 0)")
    g.add_argument("--near-duplicates", type=float, metavar="JACCARD",
                   help="also keep out of training documents whose estimated word-5-gram Jaccard similarity "
                        "to an eval document is >= JACCARD (e.g. 0.8; default: exact duplicates only)")


def run_after_publish(args, result) -> None:
    """The ``publish`` command's hook: tokenise every config of ``result`` when ``--tokenizer`` is given."""
    if not getattr(args, "tokenizer", None) or not result.complete or "train" not in result.splits:
        return
    for name in result.configs:
        stats = tokenize_config(result.output_dir, name, args.tokenizer, num_eval=args.eval_docs,
                                eval_fraction=args.eval_fraction, holdout_seed=args.holdout_seed,
                                near_duplicates=args.near_duplicates)
        print(f"{name}: token shards in {stats['folder']}: {stats['train_documents']} train documents "
              f"({stats['train_tokens']} tokens), {stats['eval_documents']} eval documents, "
              f"{stats['held_out_duplicates']} duplicates of eval documents kept out of training")


def _settings(num_eval, eval_fraction, holdout_seed, near_duplicates, tok_sha) -> dict:
    return {"tokenizer_sha256": tok_sha, "num_eval_samples": num_eval, "eval_fraction": eval_fraction,
            "holdout_seed": holdout_seed, "holdout_near_duplicates": near_duplicates}


def _texts(path: str):
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(columns=["text"], batch_size=1024):
        yield from batch.column(0).to_pylist()


def checked_tokenizer(tokenizer_dir: str, num_eval: int, eval_fraction: float, near_duplicates: float | None):
    """The options' ranges checked and the ``--tokenizer`` folder loaded (:class:`TokenizerFns`): each a
    ConfigError naming the flag. ``publish`` runs it before any sampling (:meth:`TokenShardsOutput.check`)."""
    from .tokenizer import TokenizerFns, load_tokenizer

    if num_eval < 0:
        raise ConfigError(f"--eval-docs={num_eval} is not valid; it must be >= 0")
    if not 0.0 < eval_fraction <= 1.0:
        raise ConfigError(f"--eval-fraction={eval_fraction} is not valid; it must be in (0, 1]")
    if near_duplicates is not None and not 0.0 < near_duplicates <= 1.0:
        raise ConfigError(f"--near-duplicates={near_duplicates} is not valid; it must be in (0, 1]")
    hf = load_tokenizer(tokenizer_dir, "--tokenizer")
    try:
        return TokenizerFns(hf)
    except DataError as e:
        raise ConfigError(f"--tokenizer: {tokenizer_dir!r}: {e}") from None


def check_eval_candidates(args) -> None:
    """Before any sampling: ``--eval-docs`` within ``--max-docs`` (a ConfigError naming both numbers)."""
    if not args.eval_docs or "train" not in (getattr(args, "splits", None) or ["train"]):
        return
    max_docs = getattr(args, "max_docs", None)
    if max_docs is not None and max_docs < args.eval_docs:
        raise ConfigError(f"--eval-docs {args.eval_docs} is more than the --max-docs {max_docs} documents "
                          "kept per split; lower --eval-docs")


def _kept_train_documents(config, source, stats, max_docs):
    """The kept train documents of a config, in file order: mC4's (``source`` None) or a corpus source's."""
    from mc4_sampling.plan import iter_kept

    if source is None:
        yield from iter_kept(config, "train", stats=stats, max_docs=max_docs)
        return
    from mc4_sampling.corpus import source_examples
    from mc4_sampling.sources import make_source

    src = make_source(source)
    for n, (_, _, example) in enumerate(source_examples(config, src, src.units("train"), stats=stats,
                                                         language=source.language), 1):
        yield example
        if max_docs and n >= max_docs:
            return


def check_kept_eval_candidates(args, configs: dict, source=None) -> None:
    """Before the first Parquet file is written, for a local or a remote source: the train split each
    config publishes (the documents its sampling keeps, in file order, at most ``--max-docs``) holds
    ``--eval-docs`` distinct eval candidates. They are counted by sampling the shards in order until
    enough are found (at mC4 scale, part of the first shard); a ConfigError naming the numbers, the
    config and the source when the whole split holds fewer, instead of a failure after every Parquet
    file is written."""
    from mc4_sampling.sampler import SamplingStats

    from .holdout import content_key, is_candidate

    if not args.eval_docs or "train" not in (getattr(args, "splits", None) or ["train"]):
        return
    for name, config in configs.items():
        keys: set = set()
        stats = SamplingStats()
        for doc in _kept_train_documents(config, source, stats, getattr(args, "max_docs", None)):
            if is_candidate(doc["text"], args.holdout_seed, args.eval_fraction):
                keys.add(content_key(doc["text"]))
                if len(keys) >= args.eval_docs:
                    break
        else:
            where_from = (f"--source {source.source} --location {source.location}" if source is not None else
                          f"--data-dir {config.data_dir}" if config.data_dir else
                          f"--base-url {config.base_url}" if config.base_url else "the Hub")
            where = "of the corpus' train shards" if stats.kept == stats.read else \
                f"among the {stats.kept} of {stats.read} train documents that --method {name} keeps"
            raise ConfigError(f"--eval-docs {args.eval_docs} is more than the {len(keys)} eval candidates {where} "
                              f"({where_from}, --eval-fraction {args.eval_fraction}); lower --eval-docs or raise "
                              "--eval-fraction")


def tokenize_config(output_dir: str, config: str, tokenizer_dir: str, *, num_eval: int = 2000,
                    eval_fraction: float = 0.1, holdout_seed: int = 0, near_duplicates: float | None = None) -> dict:
    """Write ``OUTPUT_DIR/tokens/<config>/`` (see the module); returns its counts."""
    from types import SimpleNamespace

    from .holdout import HoldOut, eval_manifest, select_eval_texts

    tok = checked_tokenizer(tokenizer_dir, num_eval, eval_fraction, near_duplicates)
    name = os.path.basename(os.path.abspath(tokenizer_dir))
    files = sorted(glob.glob(os.path.join(output_dir, "data", config, "train-*.parquet")))
    folder = os.path.join(output_dir, TOKENS_DIR, config)
    writer = TokenShardWriter(folder, tok, name)
    settings = _settings(num_eval, eval_fraction, holdout_seed, near_duplicates, writer.tokenizer_sha256)
    settings_path = os.path.join(folder, ".settings.json")
    if os.path.isdir(folder):
        try:
            with open(settings_path, encoding="utf-8") as f:
                same = json.load(f) == settings
        except (OSError, ValueError):
            same = False
        if not same:
            logger.warning("%s: other tokenizer or hold-out settings: tokenising again", folder)
            shutil.rmtree(folder)
    for split in ("train", "eval"):
        os.makedirs(os.path.join(folder, split), exist_ok=True)
    write_json(settings_path, settings)

    # 1. the eval set: the first num_eval distinct candidates of the split, in file order
    eval_texts, _ = select_eval_texts((text for path in files for text in _texts(path)), num_eval, holdout_seed,
                                      eval_fraction)
    if len(eval_texts) < num_eval:
        raise ConfigError(f"the {config} train split holds only {len(eval_texts)} eval candidates (--eval-fraction "
                          f"{eval_fraction}), fewer than --eval-docs {num_eval}; lower --eval-docs or raise "
                          "--eval-fraction")
    cfg = SimpleNamespace(eval_fraction=eval_fraction, holdout_seed=holdout_seed,
                          holdout_near_duplicates=near_duplicates)
    eval_tokens = writer.write("eval", 0, tok.encode(eval_texts))
    writer.write_eval_manifest(eval_manifest(eval_texts, cfg))
    holdout = HoldOut(eval_texts, near_duplicates, holdout_seed)

    # 2. one train shard per Parquet file (finished ones are kept: resume)
    counts = {"train_documents": 0, "train_tokens": 0, "held_out_duplicates": 0, "near_duplicates": 0}
    for i, path in enumerate(files):
        shard = writer.shard_path("train", i)
        stats_path = shard + ".stats.json"
        if os.path.exists(shard) and os.path.exists(stats_path):
            with open(stats_path, encoding="utf-8") as f:
                done = json.load(f)
        else:
            docs, held, near = [], 0, 0
            for text in _texts(path):
                why = holdout.excluded(text)
                if why is None:
                    docs.append(text)
                elif why[0] == "near":
                    near += 1
                else:
                    held += 1
            ids = []
            for k in range(0, len(docs), ENCODE_BATCH):
                ids += tok.encode(docs[k: k + ENCODE_BATCH])
            tokens = writer.write("train", i, ids)
            done = {"source": os.path.basename(path), "documents": sum(1 for x in ids if len(x)), "tokens": tokens,
                    "held_out": held, "near_duplicates": near}
            write_json(stats_path, done)
        counts["train_documents"] += done["documents"]
        counts["train_tokens"] += done["tokens"]
        counts["held_out_duplicates"] += done["held_out"]
        counts["near_duplicates"] += done["near_duplicates"]
    counts["held_out_duplicates"] -= len(eval_texts)  # each eval document itself is in the split once at least

    # 3. the manifest, last: the folder is complete when it exists
    writer.write_manifest(
        config=config, source_split="train", source_files=[os.path.basename(p) for p in files],
        holdout={k: v for k, v in settings.items() if k != "tokenizer_sha256"},
        splits={"train": {"documents": counts["train_documents"], "tokens": counts["train_tokens"]},
                "eval": {"documents": len(eval_texts), "tokens": eval_tokens}},
        held_out_of_training={"exact_duplicates_of_eval": counts["held_out_duplicates"],
                              "near_duplicates_of_eval": counts["near_duplicates"]})
    return {"folder": folder, "eval_documents": len(eval_texts), **counts}
