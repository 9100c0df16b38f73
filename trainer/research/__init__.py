"""The research features composed into the core loop by :mod:`trainer.entry`, registered in :data:`EXTENSIONS`.

Each :class:`~trainer.hooks.Extension` is the one declaration of its config options (``options``,
``enabled``, ``validate``, ``from_config``): :func:`trainer.config_loading.load_config` asks every
registered extension to validate the config, and the entry composes those a config enables, in this
order (the order their hooks run in, after the default hooks). A new extension is its module and one
line here.
"""

from __future__ import annotations

from ..hooks import Extension
from .averaging import AveragingExtension
from .revisions import RevisionsExtension
from .transfer import TransferExtension
from .weight_stats import WeightStatsExtension

#: The registered extensions, in the order the entry composes them.
EXTENSIONS: tuple[type[Extension], ...] = (WeightStatsExtension, RevisionsExtension, TransferExtension,
                                           AveragingExtension)


def validate_extensions(cfg) -> None:
    """Every registered extension's config checks (ConfigError naming the key)."""
    for ext in EXTENSIONS:
        ext.validate(cfg)


def research_extensions(cfg) -> list[Extension]:
    """The extensions ``cfg`` enables, built, in :data:`EXTENSIONS` order (none: the plain core loop)."""
    return [ext.from_config(cfg) for ext in EXTENSIONS if ext.enabled(cfg)]
