"""Export a checkpoint of any model family to a transformers folder, model card, optional upload to the Hub
(its commit message naming the family, :func:`commit_message`)."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Optional

import jax
import numpy as np

from mc4_sampling.common.errors import HubError
from mc4_sampling.common.hub import push_folder
from mc4_sampling.common.outputs import MARKER, atomic_dir, check_output_dir

from . import cards
from .checkpoint import Checkpointer, split_checkpoint_path, usable_step
from .errors import ExportError
from .models import family_of, family_of_hf_config, family_of_meta

log = logging.getLogger(__name__)

#: What an upload must contain: model, config, tokenizer and model card.
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "README.md")


def load_checkpoint_params(path: str, step: Optional[int] = None, from_last_good: bool = False):
    """``(spec, params as numpy, meta, step)`` of a checkpoint (folder, run folder or step folder);
    a damaged step is refused in one line, or with ``from_last_good`` replaced by the newest intact one
    before it (:func:`~trainer.checkpoint.usable_step`)."""
    directory, path_step = split_checkpoint_path(path)
    step = step if step is not None else path_step
    ckpt = Checkpointer(directory, read_only=True, async_save=False)
    step = usable_step(ckpt, step, from_last_good, "export", "rerun with --from-last-good")
    step, meta, _, _ = ckpt.restore_json(step)
    family = family_of_meta(meta)  # checkpoints without model_type are RoBERTa
    spec = family.for_inference(family.spec_from_dict(meta["spec"]))
    cpu = jax.sharding.SingleDeviceSharding(jax.local_devices(backend="cpu")[0])
    abstract = jax.eval_shape(lambda k: family.init_params(spec, k), jax.random.key(0))
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=cpu), abstract)
    params, _ = ckpt.restore_arrays(step, abstract)
    ckpt.close()
    return spec, jax.tree.map(np.asarray, params), meta, step


def model_card(meta: dict, step: int, repo_id: Optional[str] = None, eval_metrics: Optional[dict] = None,
               revisions: str = "") -> str:
    """The model card (README.md with YAML metadata): the ``model`` template of :mod:`trainer.cards`;
    ``revisions``: a section listing the revision branches (:func:`trainer.research.revisions.revisions_section`)."""
    cfg = meta.get("config", {})
    spec = meta["spec"]
    family = family_of_meta(meta)
    data = cfg.get("data", {})
    eval_row = ""
    if eval_metrics:
        loss, accuracy = eval_metrics["loss"], eval_metrics["accuracy"]
        eval_row = f"| held-out masked-LM loss / accuracy | {loss:.4f} / {accuracy:.4f} |\n"
    return cards.render(
        "model",
        language="es" if data.get("name") == "es" else "multilingual",
        title=repo_id or cfg.get("name", f"{family.name}-mlm"),
        family=family.title,
        family_tag=family.name,
        data_path=data.get("path"),
        data_name=data.get("name"),
        data_kwargs=data.get("kwargs"),
        num_layers=spec["num_layers"],
        hidden_size=spec["hidden_size"],
        num_heads=spec["num_heads"],
        vocab_size=spec["vocab_size"],
        max_seq_length=data.get("max_seq_length"),
        step=step,
        global_batch_size=cfg.get("training", {}).get("global_batch_size"),
        learning_rate=cfg.get("optimizer", {}).get("learning_rate"),
        eval_row=eval_row,
        model_ref=repo_id or "PATH",
        revisions=revisions,
    )


def upload_plan(folder: str) -> list[str]:
    """The files an upload sends (checked: model, config, tokenizer and model card must be there)."""
    files = sorted(f for f in os.listdir(folder) if os.path.isfile(os.path.join(folder, f)) and f != MARKER)
    missing = [f for f in REQUIRED_FILES if f not in files]
    if missing:
        raise ExportError(f"{folder} is not a complete export (missing {', '.join(missing)})")
    return files


def commit_message(folder: str, what: str) -> str:
    """``"{what} {family title} {rest}"``-style Hub commit message of an exported folder: ``what`` with
    ``{family}`` replaced by the title of the family of its ``config.json`` (``RoBERTa``, ``ModernBERT``)."""
    import json

    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        return what.format(family=family_of_hf_config(json.load(f)).title)


def last_eval(output_dir: str, step: int) -> Optional[dict]:
    path = os.path.join(output_dir, "metrics.jsonl")
    if not os.path.exists(path):
        return None
    from .monitor import read_metrics

    evals = read_metrics(path, "eval")
    steps = [s for s in evals if s <= step]
    return evals[max(steps)] if steps else None


def export_checkpoint(path: str, output_dir: str, step: Optional[int] = None, tokenizer_dir: Optional[str] = None,
                      push_to_hub: Optional[str] = None, private: bool = False, hub_endpoint: Optional[str] = None,
                      hub_token: Optional[str] = None, overwrite: bool = False, from_last_good: bool = False) -> str:
    """Write ``output_dir`` whole or not at all; a folder holding files this tool did not write is
    refused unless ``overwrite`` (:mod:`mc4_sampling.common.outputs`)."""
    check_output_dir(output_dir, "--output", overwrite)
    spec, params, meta, step = load_checkpoint_params(path, step, from_last_good)
    tokenizer_dir = tokenizer_dir or meta.get("tokenizer_dir")
    if not tokenizer_dir or not os.path.isdir(tokenizer_dir):
        raise ExportError(f"tokenizer folder {tokenizer_dir!r} not found; pass --tokenizer FOLDER")
    run_dir = meta.get("config", {}).get("training", {}).get("output_dir", "")
    # an average's eval is not the run's at that step
    card = model_card(meta, step, push_to_hub, last_eval(run_dir, step) if run_dir and "averaged" not in meta else None)
    spec_out = dataclasses.replace(spec, dtype="float32")
    with atomic_dir(output_dir, "trainer export", "--output", overwrite) as folder:
        family_of(spec).hf.export_pretrained(params, spec_out, str(folder), tokenizer_dir=tokenizer_dir,
                                             extra_files={"README.md": card})
    if push_to_hub:
        files = upload_plan(output_dir)
        try:
            push_folder(output_dir, push_to_hub, repo_type="model", private=private, token=hub_token,
                        endpoint=hub_endpoint, allow_patterns=files,
                        commit_message=commit_message(output_dir, "Upload {family} MLM from mc4-sampling trainer"))
        except HubError as e:
            raise ExportError(str(e)) from None
        log.info("uploaded %d files to %s", len(files), push_to_hub)
    return output_dir
