"""Export a checkpoint to a transformers folder, model card, optional upload to the Hub."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Optional

import jax
import numpy as np

from .checkpoint import Checkpointer, split_checkpoint_path
from .convert import export_pretrained
from .errors import ExportError
from .model import RobertaSpec, init_params

log = logging.getLogger(__name__)


def load_checkpoint_params(path: str, step: Optional[int] = None):
    """``(spec, params as numpy, meta, step)`` of a checkpoint (folder, run folder or step folder)."""
    directory, path_step = split_checkpoint_path(path)
    step = step if step is not None else path_step
    ckpt = Checkpointer(directory, read_only=True, async_save=False)
    step, meta, _, _ = ckpt.restore_json(step)
    spec = RobertaSpec(**{**meta["spec"], "dtype": "float32", "param_dtype": "float32", "attention_impl": "xla"})
    cpu = jax.sharding.SingleDeviceSharding(jax.local_devices(backend="cpu")[0])
    abstract = jax.eval_shape(lambda k: init_params(spec, k), jax.random.key(0))
    abstract = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=cpu), abstract)
    params, _ = ckpt.restore_arrays(step, abstract)
    ckpt.close()
    return spec, jax.tree.map(np.asarray, params), meta, step


def model_card(meta: dict, step: int, repo_id: Optional[str] = None, eval_metrics: Optional[dict] = None) -> str:
    cfg = meta.get("config", {})
    spec = meta["spec"]
    data = cfg.get("data", {})
    training = cfg.get("training", {})
    lines = [
        "---",
        "language: es" if data.get("name") == "es" else "language: multilingual",
        "license: apache-2.0",
        "library_name: transformers",
        "pipeline_tag: fill-mask",
        "tags: [roberta, fill-mask, mc4-sampling, jax, flax]",
        "---",
        "",
        f"# {repo_id or cfg.get('name', 'roberta-mlm')}",
        "",
        "A RoBERTa masked-language model pretrained from scratch with the `trainer` of mc4-sampling "
        "(Flax/JAX), on documents streamed from "
        f"`{data.get('path')}` ({data.get('name')}, options {data.get('kwargs')}), BERTIN-style perplexity sampling.",
        "",
        "| | |",
        "|---|---|",
        f"| layers / hidden / heads | {spec['num_layers']} / {spec['hidden_size']} / {spec['num_heads']} |",
        f"| vocabulary | {spec['vocab_size']} |",
        f"| sequence length | {data.get('max_seq_length')} |",
        f"| steps | {step} |",
        f"| global batch | {training.get('global_batch_size')} |",
        f"| peak learning rate | {cfg.get('optimizer', {}).get('learning_rate')} |",
    ]
    if eval_metrics:
        lines.append(f"| held-out masked-LM loss / accuracy | {eval_metrics['loss']:.4f} / {eval_metrics['accuracy']:.4f} |")
    lines += ["", "```python", "from transformers import pipeline",
              f"fill = pipeline('fill-mask', model='{repo_id or 'PATH'}')", "fill('Madrid es la <mask> de España.')",
              "```", ""]
    return "\n".join(lines)


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
                      hub_token: Optional[str] = None) -> str:
    spec, params, meta, step = load_checkpoint_params(path, step)
    tokenizer_dir = tokenizer_dir or meta.get("tokenizer_dir")
    if not tokenizer_dir or not os.path.isdir(tokenizer_dir):
        raise ExportError(f"tokenizer folder {tokenizer_dir!r} not found; pass --tokenizer FOLDER")
    run_dir = meta.get("config", {}).get("training", {}).get("output_dir", "")
    card = model_card(meta, step, push_to_hub, last_eval(run_dir, step) if run_dir else None)
    spec_out = dataclasses.replace(spec, dtype="float32")
    export_pretrained(params, spec_out, output_dir, tokenizer_dir=tokenizer_dir, extra_files={"README.md": card})
    if push_to_hub:
        from .hub import push_folder

        push_folder(output_dir, push_to_hub, private=private, endpoint=hub_endpoint, token=hub_token)
    return output_dir
