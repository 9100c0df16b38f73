"""A checkpoint to fine-tune or evaluate: this trainer's Orbax folder, a transformers folder or a Hub id.

:func:`load_model` returns a :class:`LoadedModel`: the spec, the encoder parameters (numpy), the
classification head when the checkpoint has one (a fine-tuned export), and the tokenizer.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from typing import Any, Optional

from ..errors import CheckpointError, ExportError
from ..models import family_of, family_of_hf_config
from .kinds import KINDS

log = logging.getLogger(__name__)

#: The files of a transformers model repository a fine-tuning needs (the others are optional).
HUB_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
             "special_tokens_map.json", "vocab.json", "merges.txt")


@dataclasses.dataclass
class LoadedModel:
    source: str
    spec: Any  # the model family's spec (trainer.models)
    encoder: dict  # the fine-tuning network's parameters but its classifier (RoBERTa: embeddings, layers_{i})
    tokenizer: Any
    heads: dict = dataclasses.field(default_factory=dict)  # kind -> classifier params found in the checkpoint
    config: dict = dataclasses.field(default_factory=dict)  # the transformers config.json (folders)

    @property
    def id2label(self) -> Optional[list[str]]:
        m = self.config.get("id2label")
        return [m[str(i)] if str(i) in m else m[i] for i in range(len(m))] if m else None


def _is_orbax(path: str) -> bool:
    from ..checkpoint import split_checkpoint_path

    directory, _ = split_checkpoint_path(path)
    return os.path.isdir(directory) and not os.path.exists(os.path.join(path, "config.json")) and any(
        name.isdigit() for name in os.listdir(directory))


def _hub_snapshot(repo_id: str, revision: Optional[str]) -> str:
    """Download a model repository's files (those of :data:`HUB_FILES` it has) into the Hub cache, by the
    common resolver (fails at once when the Hub cannot be reached, instead of retrying for half a minute)."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    from mc4_sampling.common.errors import HubUnreachableError
    from mc4_sampling.common.hub import HubLocation, fetch

    try:
        folder = fetch(HubLocation(repo_id, revision=revision), f"model {repo_id!r}", HUB_FILES, missing_ok=True)
    except HubUnreachableError:
        raise
    except (RepositoryNotFoundError, RevisionNotFoundError) as e:
        raise CheckpointError(f"no model {repo_id!r} on the Hub ({type(e).__name__})") from None
    except Exception as e:  # offline, no such file in the cache...
        first = str(e).splitlines()[0] if str(e) else ""
        raise CheckpointError(f"cannot download {repo_id!r}: {type(e).__name__}: {first}") from None
    if folder is None or not os.path.exists(os.path.join(folder, "config.json")):
        raise CheckpointError(f"{repo_id!r} has no config.json (not a transformers model repository)")
    return folder


def _tokenizer(folder: str):
    from ..data.tokenizer import load_tokenizer

    return load_tokenizer(folder, "the model's tokenizer", CheckpointError, fast=False, add_prefix_space=True)


def _checkpoint(source: str, tokenizer: Optional[str]):
    """An Orbax checkpoint folder's ``(spec, params, meta, step, tokenizer folder)``."""
    from ..export import load_checkpoint_params

    spec, params, meta, step = load_checkpoint_params(source)
    tok_dir = tokenizer or meta.get("tokenizer_dir")
    if not tok_dir or not os.path.isdir(tok_dir):
        raise CheckpointError(f"tokenizer folder {tok_dir!r} of {source} not found; pass --tokenizer FOLDER")
    return spec, params, meta, step, tok_dir


def _model_folder(source: str, revision: Optional[str]) -> tuple[str, dict]:
    """A transformers folder, or a Hub id's snapshot, and its ``config.json``."""
    folder = source if os.path.isdir(source) else None
    if folder is None:
        if os.path.exists(source) or source.startswith((".", "/")) or source.count("/") != 1:
            raise CheckpointError(f"{source}: no such checkpoint folder (and not a Hub model id owner/name)")
        folder = _hub_snapshot(source, revision)
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise CheckpointError(f"{source}: no config.json and no Orbax checkpoint (not a model folder)")
    with open(path, encoding="utf-8") as f:
        return folder, json.load(f)


def load_model(source: str, tokenizer: Optional[str] = None, revision: Optional[str] = None,
               dtype: str = "float32") -> LoadedModel:
    """Read ``source`` (Orbax checkpoint folder, transformers folder or Hub id) and its tokenizer."""
    if os.path.isdir(source) and _is_orbax(source):
        spec, params, meta, step, tok_dir = _checkpoint(source, tokenizer)
        encoder = {k: v for k, v in params.items() if k not in family_of(spec).mlm_only_params}
        loaded = LoadedModel(f"{source}@{step}", spec, encoder, _tokenizer(tok_dir))
    else:
        folder, config = _model_folder(source, revision)
        try:
            hf = family_of_hf_config(config).hf
            spec = hf.hf_config_to_spec(config)
            sd = hf.read_state_dict(folder)
            encoder = hf.encoder_from_state_dict(sd, spec)
        except ExportError as e:
            raise CheckpointError(f"{source}: {e}") from None
        archs = config.get("architectures") or []
        kinds = [k for k in KINDS.values() if k.architecture(spec) in archs] or list(KINDS.values())
        heads = {k.name: h for k in kinds if (h := k.head_from_state_dict(spec, sd)) is not None}
        loaded = LoadedModel(source, spec, encoder, _tokenizer(tokenizer or folder), heads, config)
    loaded.spec = family_of(loaded.spec).for_inference(loaded.spec, dtype)
    check_vocabulary(loaded)
    return loaded


def check_vocabulary(loaded: LoadedModel) -> None:
    """The tokenizer's ids must all be rows of the model's embeddings (else: another vocabulary)."""
    n = len(loaded.tokenizer)
    if n > loaded.spec.vocab_size:
        raise CheckpointError(
            f"the tokenizer has {n} tokens but the model {loaded.source} has a vocabulary of "
            f"{loaded.spec.vocab_size}: they were not made together; pass the model's own tokenizer (--tokenizer)")
    pad = loaded.tokenizer.pad_token_id
    if pad is not None and pad != loaded.spec.pad_token_id:
        raise CheckpointError(f"the tokenizer's padding id is {pad}, the model's {loaded.spec.pad_token_id}: "
                              "another vocabulary; pass the model's own tokenizer (--tokenizer)")


@dataclasses.dataclass
class MaskedLM:
    """A masked-LM model to evaluate (``trainer evaluate --mlm``): spec, all its parameters (the LM head
    included), its fast tokenizer and, for one of this trainer's checkpoints, the run's saved config."""

    source: str
    spec: Any
    params: dict
    tokenizer: Any
    config: dict = dataclasses.field(default_factory=dict)  # the trainer config a checkpoint was trained with


def load_masked_lm(source: str, tokenizer: Optional[str] = None, revision: Optional[str] = None) -> MaskedLM:
    """Read ``source`` (Orbax checkpoint folder, exported or transformers folder, Hub id) with its LM head,
    through the family that ``config.json``'s ``model_type`` names (:func:`trainer.models.family_of_hf_config`)."""
    from ..data.tokenizer import load_tokenizer

    if os.path.isdir(source) and _is_orbax(source):
        spec, params, meta, step, tok_dir = _checkpoint(source, tokenizer)
        model = MaskedLM(f"{source}@{step}", spec, params, None, meta.get("config", {}))
    else:
        folder, config = _model_folder(source, revision)
        family = family_of_hf_config(config)
        try:  # what the folder lacks is NaN (a head-less model is refused, not evaluated with a random head)
            import jax
            import numpy as np

            shapes = jax.eval_shape(lambda k: family.init_params(family.hf.hf_config_to_spec(config), k),
                                    jax.random.key(0))
            nan = jax.tree.map(lambda a: np.full(a.shape, np.nan, a.dtype), shapes)
            spec, params = family.hf.import_pretrained(folder, fallback_params=nan)
        except ExportError as e:
            raise CheckpointError(f"{source}: {e}") from None
        from ..param_paths import flat_params

        missing = [k for k, a in flat_params(params).items() if np.isnan(np.asarray(a, np.float32)).any()]
        if missing:
            raise CheckpointError(f"{source} has no masked-LM head ({missing[0]} is not in its weights): "
                                  "evaluate --mlm needs a pretrained (masked-LM) model, not a fine-tuned one")
        model = MaskedLM(source, spec, params, None)
        tok_dir = tokenizer or folder
    model.tokenizer = load_tokenizer(tok_dir, "the model's tokenizer (--tokenizer)", CheckpointError)
    model.spec = family_of(model.spec).for_inference(model.spec, "float32")
    n = len(model.tokenizer)
    if n > model.spec.vocab_size:
        raise CheckpointError(f"the tokenizer has {n} tokens but the model {model.source} has a vocabulary of "
                              f"{model.spec.vocab_size}: pass the model's own tokenizer (--tokenizer)")
    return model

