"""The trainer's networks: model families registered by ``model.type`` (:mod:`.base`).

* :mod:`.roberta` (``roberta``, the default) with its transformers mapping :mod:`.roberta_hf`;
* :mod:`.modernbert` (``modernbert``) with :mod:`.modernbert_hf`.
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
