"""Transfer to a new language (continued pretraining with a new tokenizer) and frozen parameters.

``model.transfer_from`` names the weights to start from: a checkpoint of this trainer (a
checkpoints folder, a step in it, or a run folder), a transformers folder of the model's family, or a Hub model
id (``owner/name`` or ``owner/name@revision``). Every parameter is taken from it except, with
``model.reinit_embeddings`` (the default), the token embeddings, the tied LM-head decoder (the
same matrix) and the LM-head bias, which start from this run's random initialisation, so the new
tokenizer may have any vocabulary ("re-initialised embeddings" of the artificial-pretraining
blog). ``model.reset_position_embeddings`` re-initialises the position embeddings too. The
optimizer state always starts fresh.

``model.freeze`` (often used with a transfer) lists regular expressions matched (``re.fullmatch``)
against the ``/``-joined parameter paths (:mod:`trainer.param_paths`: ``embeddings/word_embeddings/embedding``,
``layers_3/attention/self/query/kernel``, ...); the parameters they match get no optimizer update and
no weight decay (:func:`trainer.optim.make_optimizer`: ``optax.multi_transform`` with ``set_to_zero``).

The Trainer starts from these weights through :class:`TransferExtension` (composed by :mod:`trainer.entry`).
"""

from __future__ import annotations

import logging
import os

import numpy as np

from ..errors import ConfigError
from ..hooks import Extension
from ..models import family_of

log = logging.getLogger(__name__)


def _download(repo: str) -> str:
    """A Hub model's ``config.json`` and weights in the local cache, by the common resolver (one line at once
    when the Hub cannot be reached); the folder holding them."""
    from mc4_sampling.common.errors import HubUnreachableError
    from mc4_sampling.common.hub import HubLocation, fetch

    repo_id, _, revision = repo.partition("@")
    location = HubLocation(repo_id, revision=revision or None)
    what = f"model.transfer_from={repo!r}"
    try:
        folder = fetch(location, what, ["config.json"])
        try:
            fetch(location, what, ["model.safetensors"])
        except HubUnreachableError:
            raise
        except Exception:
            fetch(location, what, ["pytorch_model.bin"])
    except HubUnreachableError:
        raise
    except Exception as e:
        raise ConfigError(f"model.transfer_from={repo!r}: not a checkpoint or model folder here, and the Hub "
                          f"has no such model ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                          ) from None
    return folder


def load_source(source: str, spec, reinit_embeddings: bool = True) -> dict:
    """The numpy params of ``source``, checked against ``spec`` (every differing architecture field
    named; the vocabulary may differ when the embeddings are re-initialised)."""
    from ..errors import CheckpointError, ExportError

    family = family_of(spec)
    import_pretrained = family.hf.import_pretrained
    try:
        if os.path.isfile(os.path.join(source, "config.json")):
            src_spec, params = import_pretrained(source, pad_vocab_to_multiple_of=spec.pad_vocab_to_multiple_of)
        elif os.path.exists(source):
            from ..export import load_checkpoint_params

            src_spec, params, _, step = load_checkpoint_params(source)
            log.info("transfer: weights of %s step %d", source, step)
        else:
            src_spec, params = import_pretrained(_download(source),
                                                 pad_vocab_to_multiple_of=spec.pad_vocab_to_multiple_of)
    except (CheckpointError, ExportError) as e:
        raise ConfigError(f"model.transfer_from={source!r}: {e}") from None
    if family_of(src_spec) is not family:
        raise ConfigError(f"model.transfer_from={source!r} is a {family_of(src_spec).name} model, the config "
                          f"a {family.name} one (model.type)")
    free = {"vocab_size", "pad_vocab_to_multiple_of"} if reinit_embeddings else set()
    diffs = [f"{k}: source {getattr(src_spec, k)!r}, config {getattr(spec, k)!r}"
             for k in family.arch_fields() if k not in free and getattr(src_spec, k) != getattr(spec, k)]
    if diffs:
        hint = "" if reinit_embeddings else " (with model.reinit_embeddings=false the vocabulary must match too)"
        raise ConfigError(f"model.transfer_from={source!r} does not match the model config{hint}: " + "; ".join(diffs))
    return params


def _get(tree, path):
    for p in path:
        tree = tree[p]
    return tree


def _set(tree, path, value):
    for p in path[:-1]:
        tree = tree[p]
    tree[path[-1]] = value


def combine(source_params, fresh_params, reinit_embeddings: bool = True, reset_position_embeddings: bool = False,
            family=None):
    """``source_params`` with the re-initialised parts taken from ``fresh_params`` (numpy, float32
    dtypes of ``fresh_params``); every other leaf must have the same shape in both. ``family``: the
    model family naming those parts (``ModelFamily.reinit_paths``, ``position_paths``; None: the default,
    RoBERTa)."""
    import jax

    fresh = jax.tree.map(np.asarray, fresh_params)
    src = jax.tree.map(np.asarray, source_params)
    out = jax.tree.map(lambda a: a, fresh)  # same structure, fresh leaves (replaced below)
    replaced = set()
    if family is None:
        from ..models import get_family

        family = get_family(None)
    if reinit_embeddings:
        replaced |= set(family.reinit_paths)
    if reset_position_embeddings:
        replaced |= set(family.position_paths)
    for path_keys, leaf in jax.tree_util.tree_flatten_with_path(fresh)[0]:
        path = tuple(getattr(k, "key", k) for k in path_keys)
        if path in replaced:
            continue
        value = np.asarray(_get(src, path))
        if value.shape != leaf.shape:
            raise ConfigError(f"model.transfer_from: {'/'.join(path)} has shape {value.shape}, the model "
                              f"{leaf.shape}")
        _set(out, path, value.astype(leaf.dtype))
    return out


class TransferExtension(Extension):
    """``model.transfer_from``: start from the source's weights, the re-initialised parts fresh
    (:func:`load_source`, :func:`combine`); the optimizer state starts fresh."""

    options = ("model.transfer_from",)

    def __init__(self, model_cfg):
        self.model_cfg = model_cfg

    @classmethod
    def enabled(cls, cfg) -> bool:
        return bool(cfg.model.transfer_from)

    @classmethod
    def validate(cls, cfg) -> None:
        """One source of the starting weights; ``model.reset_position_embeddings`` only with a transfer."""
        m, c = cfg.model, cfg.checkpoint
        if m.transfer_from:
            others = [k for k, v in (("model.init_from_transformers", m.init_from_transformers),
                                     ("checkpoint.init_from", c.init_from)) if v]
            if others:
                raise ConfigError(f"model.transfer_from and {' and '.join(others)} both choose the starting "
                                  "weights; set only one")
        elif m.reset_position_embeddings:
            raise ConfigError("model.reset_position_embeddings needs model.transfer_from (the weights to start from)")

    @classmethod
    def from_config(cls, cfg) -> "TransferExtension":
        return cls(cfg.model)

    def initial_params(self, spec, fresh):
        m = self.model_cfg
        if not m.transfer_from:
            return None
        source = load_source(m.transfer_from, spec, m.reinit_embeddings)
        return combine(source, fresh(), m.reinit_embeddings, m.reset_position_embeddings, family_of(spec))
