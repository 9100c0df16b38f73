"""Parameter paths: a parameter tree's leaves named by their ``/``-joined key path, and ``model.freeze``.

A leaf of the tree ``{"embeddings": {"word_embeddings": {"embedding": W}}}`` is named
``embeddings/word_embeddings/embedding``. Transfer (:mod:`trainer.research.transfer`), weight
statistics (:mod:`trainer.research.weight_stats`) and freezing (:func:`trainer.optim.make_optimizer`)
all name parameters this way.

``model.freeze`` lists regular expressions matched in full (``re.fullmatch``) against these paths;
the leaves they match are frozen (no optimizer update, no weight decay).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from .errors import ConfigError

log = logging.getLogger(__name__)


def path_str(path) -> str:
    """A ``jax.tree_util`` key path as ``a/b/c``."""
    return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def flat_params(params) -> dict[str, Any]:
    """``{"/"-joined path: leaf}`` of a parameter tree."""
    import jax

    return {path_str(p): leaf for p, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}


def freeze_labels(params, patterns: list[str]):
    """A tree like ``params`` of ``"frozen"`` (a pattern matches the leaf's path) or ``"train"``."""
    import jax

    compiled = [re.compile(p) for p in patterns]
    return jax.tree_util.tree_map_with_path(
        lambda path, _: "frozen" if any(c.fullmatch(path_str(path)) for c in compiled) else "train", params)


def check_freeze(params, patterns: list[str]) -> list[str]:
    """The frozen paths; ConfigError for a pattern that matches no parameter (naming a few paths)."""
    paths = list(flat_params(params))
    frozen = []
    for pattern in patterns:
        hits = [p for p in paths if re.fullmatch(pattern, p)]
        if not hits:
            examples = ", ".join(paths[:3] + [p for p in paths if p.startswith("layers_0/")][:2])
            raise ConfigError(f"model.freeze: pattern {pattern!r} matches no parameter (matched in full against "
                              f"'/'-joined paths such as {examples}; e.g. 'embeddings/.*')")
        frozen += [p for p in hits if p not in frozen]
    if frozen:
        log.info("frozen: %d parameters (%s)", len(frozen), ", ".join(frozen[:6]) + (" ..." if len(frozen) > 6 else ""))
    return frozen
