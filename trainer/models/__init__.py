"""The trainer's networks: model families registered by ``model.type`` (:mod:`.base`: the interface, the
registry and the ``model`` section every family extends, :class:`~.base.ModelOptions`).

* :mod:`.roberta` (``roberta``, the default: config section, network) with its transformers mapping
  :mod:`.roberta_hf`;
* :mod:`.modernbert` (``modernbert``) with :mod:`.modernbert_hf`;
* shared by the families: :mod:`.layers` (attention choice, vocabulary-padding mask, masked-LM loss),
  :mod:`.state_dicts` (params <-> state dicts) and :mod:`.hf_folder` (a transformers folder on disk).

Every module of this package is imported here, so a family registers itself (:func:`register_family` in
its module): a new family is its module (with, if it likes, its transformers mapping in a ``<name>_hf``
module beside it) and its test, nothing else.
"""

import pkgutil
from importlib import import_module

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

for _module in pkgutil.iter_modules(__path__):  # each family module registers its family when imported
    import_module(f"{__name__}.{_module.name}")

__all__ = ["ModelFamily", "config_class", "family_names", "family_of", "family_of_hf_config", "family_of_meta",
           "get_family", "register_family", "spec_from_meta"]
