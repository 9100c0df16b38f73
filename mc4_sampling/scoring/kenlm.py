"""``scorer="kenlm"`` (the default): KenLM perplexity, :class:`~mc4_sampling.perplexity.PerplexityModel`,
located by ``perplexity_model`` and ``perplexity_mode`` (:mod:`mc4_sampling.kenlm_models`)."""

from __future__ import annotations

from ..kenlm_models import ModelSource
from .base import check_options, register_scorer


@register_scorer("kenlm")
def _kenlm(model, options, language):
    check_options("kenlm", options, ("mode",))
    return ModelSource(model, language, options.get("mode")).load()
