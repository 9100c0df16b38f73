"""The trainer's networks: model families registered by ``model.type`` (:mod:`.base`: the interface, the
registry and the ``model`` section every family extends, :class:`~.base.ModelOptions`).

* :mod:`.roberta` (``roberta``, the default: config section, network) with its transformers mapping
  :mod:`.roberta_hf`;
* :mod:`.modernbert` (``modernbert``) with :mod:`.modernbert_hf`;
* shared by the families: :mod:`.layers` (attention choice, vocabulary-padding mask, masked-LM loss),
  :mod:`.state_dicts` (params <-> state dicts) and :mod:`.hf_folder` (a transformers folder on disk).

A new family is its module(s), its import here and its test.
"""

from . import modernbert, roberta  # noqa: F401  (each registers its family)
from .base import (
                   ModelFamily,
                   config_class,
                   family_names,
                   family_of,
                   family_of_hf_config,
                   family_of_meta,
                   get_family,
                   register_family,
                   spec_from_meta,
)

__all__ = ["ModelFamily", "config_class", "family_names", "family_of", "family_of_hf_config", "family_of_meta",
           "get_family", "register_family", "spec_from_meta"]
