"""Transfer arms: a unit in two stages, the source stage then the target stage (``arms.<name>.source``).

The **source stage** pretrains the study's model on a source corpus with its own tokenizer: the study's
corpus documents that the arm's target sample leaves out (``corpus: study``: a natural source of the same
language, disjoint from the target), or files (``corpus: files``: JSON lines or plain text, e.g. a generated
artificial corpus with its one-token-one-id tokenizer). Its documents are written as token shards
(``units/<arm>/seed<k>/source/shards``, the first ``eval_documents`` of the files as its eval split) and
trained in ``source/run`` (training seed + :data:`SOURCE_SEED_OFFSET`, so that the target's fresh embeddings
are not the source's initial ones) with the study's trainer config, the source's ``trainer_set`` and budget, and, with
``freeze_embeddings``, ``model.freeze`` on the family's word embeddings (the blog's frozen-embeddings
experiment). ``source/result.json``, written last, marks it done: a rerun reuses the source checkpoint (an
interrupted source stage resumes from its own).

The **target stage** is the arm's ordinary unit on its sample of the study's corpus, started from the source's
last checkpoint through :mod:`trainer.research.transfer` (``model.transfer_from``; ``reinit_embeddings``,
``reset_position_embeddings``). Every weight is kept but the re-initialised ones; the optimizer starts fresh.

A source tokenizer that the options cannot take (``reinit_embeddings: false`` keeps the source's word
embeddings, so its vocabulary must be the study's) is one line before any training (:func:`check_tokenizers`).
"""

from __future__ import annotations

import glob
import gzip
import json
import math
import os
from typing import Iterator, Optional

from ..errors import ConfigError, DataError
from .config import ArmConfig, StudyConfig, resolve_path

#: the kinds of source files: JSON lines (their text column) and plain text (one document per line)
JSON_SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz")
TEXT_SUFFIXES = (".txt", ".txt.gz")
#: documents tokenised together
BATCH = 1024
#: the source stage of seed k trains with ``training seed + SOURCE_SEED_OFFSET``: the target's re-initialised
#: embeddings (drawn from the training seed) are then not the source's own initial draw
SOURCE_SEED_OFFSET = 1_000_003


def transfer_arms(cfg: StudyConfig) -> list[ArmConfig]:
    return [a for a in cfg.arms if a.source is not None]


def source_files(arm: ArmConfig) -> list[str]:
    """The files of ``arms.<name>.source.files`` (a folder: its JSON-lines and text files in name order)."""
    where = f"arms.{arm.name}.source.files"
    out: list[str] = []
    for given in arm.source.files or []:
        path = resolve_path(given)
        if os.path.isdir(path):
            found = sorted(p for p in glob.glob(os.path.join(path, "*"))
                           if os.path.isfile(p) and p.endswith(JSON_SUFFIXES + TEXT_SUFFIXES))
            if not found:
                raise DataError(f"{where}: the folder {path} holds no .jsonl/.json/.txt(.gz) file")
            out += found
        elif os.path.isfile(path):
            if not path.endswith(JSON_SUFFIXES + TEXT_SUFFIXES):
                raise DataError(f"{where}: {path} is neither JSON lines (.jsonl, .json) nor text (.txt), "
                                "optionally .gz")
            out.append(path)
        else:
            raise DataError(f"{where}: no file or folder {path!r} (generate the artificial corpus first, e.g. "
                            "`make study-artificial`)")
    return out


def read_documents(arm: ArmConfig, path: str) -> Iterator[str]:
    """The documents of one source file, streamed (a JSON line's ``text_column``; a text line, empty ones
    skipped); a bad line is one error naming the file and line."""
    s = arm.source
    opener = gzip.open if path.endswith(".gz") else open
    is_json = path.endswith(JSON_SUFFIXES)
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not is_json:
                    if line.strip():
                        yield line.rstrip("\n")
                    continue
                try:
                    row = json.loads(line)
                except ValueError as e:
                    raise DataError(f"arms.{arm.name}.source: line {number} of {path} is not a JSON object ({e})"
                                    ) from None
                if not isinstance(row, dict) or not isinstance(row.get(s.text_column), str):
                    raise DataError(f"arms.{arm.name}.source: line {number} of {path} has no text in "
                                    f"{s.text_column!r} (source.text_column)")
                yield row[s.text_column]
    except (OSError, EOFError, UnicodeDecodeError) as e:
        raise DataError(f"arms.{arm.name}.source: cannot read {path} ({type(e).__name__}: {e})") from None


def source_tokenizer(arm: ArmConfig, study_tokenizer: str) -> str:
    """The folder of the source stage's tokenizer."""
    t = arm.source.tokenizer
    return study_tokenizer if t == "study" else os.path.abspath(resolve_path(t))


def word_embedding_pattern(trainer_cfg) -> str:
    """The ``model.freeze`` regex of the family's word embeddings (``embeddings/word_embeddings/embedding``)."""
    import re

    from ..models import family_of

    return re.escape("/".join(family_of(trainer_cfg.model).reinit_paths[0]))


def stage_sets(arm: ArmConfig, base_cfg) -> list[str]:
    """The source stage's own overrides: its ``trainer_set`` and, with ``freeze_embeddings``, ``model.freeze``."""
    sets = list(arm.source.trainer_set)
    if arm.source.freeze_embeddings:
        sets.append(f"model.freeze={json.dumps([word_embedding_pattern(base_cfg)])}")
    return sets


def source_steps(arm: ArmConfig, source_cfg, study_steps: Optional[int]) -> Optional[int]:
    """The source stage's ``training.max_steps``: from ``source.budget_tokens`` with its own batch and length,
    else the study's (``budget_tokens``; None: the trainer config's)."""
    budget = arm.source.budget_tokens
    if budget is None:
        return study_steps
    return max(1, math.ceil(budget / (source_cfg.training.global_batch_size * source_cfg.data.max_seq_length)))


def check_sources(cfg: StudyConfig, trainer_config: str, study_steps: Optional[int]) -> dict[str, Optional[int]]:
    """Before any work: each source's files are there and readable (the first document), its tokenizer folder
    exists, and its stage's trainer config loads (its overrides, budget and freezing); ``{arm: its steps}``."""
    from ..config_loading import load_config

    steps = {}
    for arm in transfer_arms(cfg):
        s, where = arm.source, f"arms.{arm.name}.source"
        if s.corpus == "files":
            for path in source_files(arm):
                next(read_documents(arm, path), None)
        if s.tokenizer != "study" and not os.path.isdir(resolve_path(s.tokenizer)):
            raise ConfigError(f"{where}.tokenizer: no tokenizer folder at {resolve_path(s.tokenizer)!r} (the "
                              "artificial corpus's is written beside it by its generator; 'study': the study's)")
        base = load_config(trainer_config, list(cfg.trainer.set))
        try:
            src = load_config(trainer_config, list(cfg.trainer.set) + stage_sets(arm, base))
            steps[arm.name] = source_steps(arm, src, study_steps)
            if steps[arm.name] is not None:
                load_config(trainer_config, list(cfg.trainer.set) + stage_sets(arm, base)
                            + [f"training.max_steps={steps[arm.name]}"])
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return steps


def check_tokenizers(cfg: StudyConfig, study_tokenizer: str) -> None:
    """Each source tokenizer loads and has the specials the trainer needs; ``reinit_embeddings: false`` (the
    source's word embeddings kept) needs the study's vocabulary exactly. One line each, before any training."""
    from ..data.tokenizer import TokenizerFns, load_tokenizer

    study = None
    for arm in transfer_arms(cfg):
        s, where = arm.source, f"arms.{arm.name}.source"
        folder = source_tokenizer(arm, study_tokenizer)
        tok = load_tokenizer(folder, option=f"{where}.tokenizer")
        try:
            TokenizerFns(tok)
        except DataError as e:
            raise ConfigError(f"{where}.tokenizer {folder}: {e}") from None
        if s.reinit_embeddings or folder == study_tokenizer:
            continue
        if study is None:
            study = load_tokenizer(study_tokenizer).backend_tokenizer.get_vocab(with_added_tokens=True)
        mine = tok.backend_tokenizer.get_vocab(with_added_tokens=True)
        if mine != study:
            differ = sorted(set(mine.items()) ^ set(study.items()), key=lambda kv: kv[1])
            raise ConfigError(
                f"{where}: reinit_embeddings false keeps the source's word embeddings, but its tokenizer {folder} "
                f"({len(mine)} tokens) is not the study's ({len(study)} tokens; first difference: token "
                f"{differ[0][0]!r} id {differ[0][1]}); set {where}.reinit_embeddings: true, or tokenizer: study")


def write_source_shards(arm: ArmConfig, folder: str, tokenizer_dir: str, index=None, mask=None,
                        curve: Optional[list] = None) -> dict:
    """The source stage's token shards at ``folder``: ``corpus: study``, the indexed documents outside the
    target's ``mask`` (the first ``max_documents``), the study's curve documents as eval split; ``corpus: files``,
    the files' documents (the first ``eval_documents`` as eval split, then at most ``max_documents`` to train on),
    one train shard per file. Written under a temporary name and renamed whole."""
    import numpy as np

    from mc4_sampling.common.outputs import atomic_folder

    from ..data.holdout import content_key, text_sha256
    from ..data.shard_writer import TokenShardWriter
    from ..data.tokenizer import TokenizerFns, load_tokenizer
    from .index import write_selection
    from .units import write_json

    s = arm.source
    if s.corpus == "study":
        rest = ~mask
        if s.max_documents is not None and rest.sum() > s.max_documents:
            rest[np.flatnonzero(rest)[s.max_documents:]] = False
        if not rest.any():
            raise ConfigError(f"arms.{arm.name}.source: the target sample keeps every document of the study's "
                              "corpus; nothing is left for the source stage (sample fewer target documents)")
        return write_selection(index, rest, folder, tokenizer_dir, curve or [])
    tok = TokenizerFns(load_tokenizer(tokenizer_dir))
    evals: list[str] = []
    documents = tokens = 0
    with atomic_folder(folder) as tmp:
        writer = TokenShardWriter(tmp, tok, f"study-source-{arm.name}", dump=write_json)
        os.makedirs(os.path.join(tmp, "train"))
        for i, path in enumerate(source_files(arm)):
            texts: list[str] = []
            for text in read_documents(arm, path):
                if len(evals) < s.eval_documents:
                    evals.append(text)
                elif s.max_documents is None or documents + len(texts) < s.max_documents:
                    texts.append(text)
                else:
                    break
            ids = [x for k in range(0, len(texts), BATCH) for x in tok.encode(texts[k: k + BATCH])]
            ids = [x for x in ids if len(x)]
            if ids:
                tokens += writer.write("train", i, ids)
                documents += len(ids)
            if s.max_documents is not None and documents >= s.max_documents:
                break
        if not documents:
            raise DataError(f"arms.{arm.name}.source: the files give no training document after the "
                            f"{len(evals)} eval documents (source.eval_documents)")
        eval_tokens = writer.write("eval", 0, [x for x in tok.encode(evals) if len(x)])
        writer.write_eval_manifest({
            "rule": "trainer study, source stage: the first source.eval_documents documents of the source files",
            "num_documents": len(evals),
            "documents": [{"sha256": text_sha256(t), "content_sha256": content_key(t).hex()} for t in evals]})
        writer.write_manifest(holdout={"study": "the first documents of the source files"},
                              splits={"train": {"documents": documents, "tokens": tokens},
                                      "eval": {"documents": len(evals), "tokens": eval_tokens}},
                              held_out_of_training={})
    return {"documents": documents, "tokens": tokens}


def source_overrides(cfg: StudyConfig, arm: ArmConfig, unit, tokenizer_dir: str, steps: Optional[int],
                     base_cfg) -> list[str]:
    """The ``--set`` overrides of the source stage of ``unit`` (its shards, tokenizer, seed, run folder)."""
    d = json.dumps
    sets = list(cfg.trainer.set) + stage_sets(arm, base_cfg) + [
        f"data.token_shards={d(os.path.abspath(unit.source_shards_dir))}", "data.sampling.sampling_method=none",
        f"data.tokenizer={d(os.path.abspath(tokenizer_dir))}", "data.eval_files=null",
        f"training.seed={unit.training_seed + SOURCE_SEED_OFFSET}", f"training.eval_seed={cfg.eval.mask_seed}",
        f"training.output_dir={d(os.path.abspath(unit.source_run_dir))}", "checkpoint.directory=null",
        f"name={d(f'{cfg.name}-{unit.arm}-seed{unit.index}-source')}", "logging.progress_bar=false",
        "logging.tensorboard=false"]
    if steps is not None:
        sets.append(f"training.max_steps={steps}")
    return sets


def target_sets(arm: ArmConfig, source_checkpoints: str) -> list[str]:
    """The target stage's transfer overrides: start from the source's last checkpoint."""
    s = arm.source
    return [f"model.transfer_from={json.dumps(os.path.abspath(source_checkpoints))}",
            f"model.reinit_embeddings={str(s.reinit_embeddings).lower()}",
            f"model.reset_position_embeddings={str(s.reset_position_embeddings).lower()}"]


def run_source_stage(payload: dict, say=None) -> dict:
    """Train the source stage of a unit (or reuse it: ``source/result.json``); its summary."""
    import time

    from ..config_loading import load_config
    from ..entry import build_trainer
    from ..monitor import read_metrics
    from .units import read_json, write_json

    src = payload["source"]
    if os.path.isfile(src["result"]):
        return read_json(src["result"])
    start = time.perf_counter()
    scfg = load_config(payload["trainer_config"], src["overrides"])

    def on_eval(step: int, ev: dict) -> None:
        if say:
            say(f"step {step}/{scfg.training.max_steps}, source eval loss {ev['loss']:.4f}")

    result = build_trainer(scfg, on_eval=on_eval).run()
    metrics_file = os.path.join(scfg.training.output_dir, "metrics.jsonl")
    curve = [{"step": s, "loss": r["loss"], "accuracy": r["accuracy"]}
             for s, r in sorted(read_metrics(metrics_file, "eval").items())] if os.path.exists(metrics_file) else []
    out = {"steps": result.step, "checkpoints": scfg.checkpoint_dir, "curve": curve,
           "shards": read_json(os.path.join(scfg.data.token_shards, "manifest.json"))["splits"],
           "freeze": list(scfg.model.freeze), "seconds": time.perf_counter() - start}
    write_json(src["result"], out)
    return out
