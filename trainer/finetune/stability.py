"""Fine-tuning stability options (each off by default): layer-wise learning-rate decay, re-initialising the top
``k`` encoder layers, freezing the lower ``k`` layers (and the embeddings).

The usual remedies for runs that collapse (BERTIN's PAWS-X and XNLI): layer-wise decay (Howard & Ruder 2018;
Clark et al. 2020, ELECTRA), re-initialising the top layers (Zhang et al. 2021, "Revisiting Few-sample BERT
Fine-tuning"), freezing the lower layers. Which layer a parameter belongs to is the model family's
(:meth:`trainer.models.base.ModelFamily.layer_of`): every family works, whatever its parameter names.

The options become one scale per parameter, applied to the optimizer's update in the train step
(:func:`trainer.finetune.run.make_steps`): ``p <- p + lr * scale * update``; a scale of 0 is a frozen
parameter (its gradient is zeroed before clipping and AdamW, its value never written: bit-identical).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional

import jax
import numpy as np

from ..errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Stability:
    """The options (defaults: off, the update of every parameter unscaled)."""

    layer_lr_decay: float = 1.0  # in (0, 1]; 1: off
    reinit_layers: int = 0  # the top k encoder layers start from the family's initialiser
    freeze_layers: int = 0  # the lower k encoder layers get no update
    freeze_embeddings: bool = False  # the embeddings get no update

    @property
    def enabled(self) -> bool:
        return self != Stability()

    @property
    def layerwise(self) -> bool:
        """Whether the update is scaled per parameter (decay or freezing)."""
        return self.layer_lr_decay != 1.0 or self.freeze_layers > 0 or self.freeze_embeddings

    def check(self, num_layers: int, spell: Callable[[str], str] = lambda key: "--" + key.replace("_", "-")) -> None:
        """One line naming the option (``spell(field)``: as the user wrote it) and its range."""
        d = self.layer_lr_decay
        if not (isinstance(d, (int, float)) and 0 < d <= 1):
            raise ConfigError(f"{spell('layer_lr_decay')} must be in (0, 1] (1: off), got {d}")
        for key in ("reinit_layers", "freeze_layers"):
            k = getattr(self, key)
            if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= num_layers:
                raise ConfigError(f"{spell(key)} must be an integer in [0, {num_layers}] (the model's "
                                  f"{num_layers} encoder layers), got {k}")
        if self.reinit_layers + self.freeze_layers > num_layers:
            raise ConfigError(f"{spell('reinit_layers')} {self.reinit_layers} + {spell('freeze_layers')} "
                              f"{self.freeze_layers} exceed the model's {num_layers} encoder layers: a re-initialised "
                              "layer would stay frozen at random weights")

    def record(self) -> dict:
        return dataclasses.asdict(self)


def layer_scale(layer: Optional[int], num_layers: int, decay: float) -> float:
    """The learning-rate factor of layer-wise decay: ``decay^(L - l)`` for encoder layer ``l`` (0 at the bottom,
    so the top layer gets ``decay``), ``decay^(L + 1)`` for the embeddings (``layer == -1``), 1 above the
    encoder (``layer is None``: the head gets the full rate)."""
    if layer is None:
        return 1.0
    if layer < 0:
        return float(decay ** (num_layers + 1))
    return float(decay ** (num_layers - layer))


def frozen(layer: Optional[int], options: Stability) -> bool:
    """Encoder layers ``l < freeze_layers`` and, with ``freeze_embeddings``, the embeddings."""
    if layer is None:
        return False
    if layer < 0:
        return options.freeze_embeddings
    return layer < options.freeze_layers


def _names(path) -> tuple[str, ...]:
    return tuple(getattr(k, "key", str(k)) for k in path)


def update_scales(params, layer_of: Callable, num_layers: int, options: Stability):
    """A tree like ``params`` of float32 scalars: 0 for a frozen parameter, else :func:`layer_scale`."""
    def scale(path, _leaf):
        layer = layer_of(_names(path))
        return np.float32(0.0 if frozen(layer, options) else layer_scale(layer, num_layers, options.layer_lr_decay))

    return jax.tree_util.tree_map_with_path(scale, params)


def reinit_top_layers(params: dict, fresh: dict, layer_of: Callable, num_layers: int, k: int) -> dict:
    """``params`` with every parameter of the top ``k`` encoder layers (``l >= L - k``) taken from ``fresh``
    (the same network freshly initialised)."""
    def pick(path, old, new):
        layer = layer_of(_names(path))
        return new if layer is not None and layer >= num_layers - k else old

    return jax.tree_util.tree_map_with_path(pick, params, fresh)
