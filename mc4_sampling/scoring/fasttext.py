"""``scorer="fasttext"``: a fastText classifier's probability of one label (DCLM's quality model:
``scorer_model="mlfoundations/fasttext-oh-eli5/openhermes_reddit_eli5_vs_rw_v2_bigram_200k_train.bin"``,
``scorer_options={"label": "__label__hq"}``).

The binding is ``fasttext-numpy2`` (the ``fasttext`` extra): the original ``fasttext`` package has no
wheels (it compiles from source) and its ``predict`` breaks on NumPy 2; ``fasttext-wheel`` and
``fasttext-numpy2-wheel`` stop at Python 3.12. ``fasttext-numpy2`` has wheels for Python 3.10 to
3.13 and a ``predict`` that works with NumPy 2; all install the same ``fasttext`` module.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ..errors import ConfigError, ModelNotFoundError
from .base import Scorer, as_bool, check_options, file_fingerprint, local_or_hub, register_scorer

EXTRA = "pip install 'mc4-sampling[fasttext]'"


class FastTextScorer(Scorer):
    """The probability fastText gives ``label`` for each document (newlines read as spaces, as DCLM
    does: fastText predicts one line at a time). All documents of a block go to fastText's C++
    ``multilinePredict`` in one call."""

    kind = "fasttext"

    def __init__(self, path: str, label: str = "__label__hq", higher_is_better: bool = True, name: str | None = None):
        self.path = path
        self.label = label if label.startswith("__label__") else f"__label__{label}"
        self.higher_is_better = higher_is_better
        self.name = name or os.path.basename(path)

    @property
    def model_id(self) -> str:
        return f"fasttext:{os.path.basename(self.path)}#{file_fingerprint(self.path)}:{self.label}"

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_model", None)
        return state

    @property
    def model(self):
        model = self.__dict__.get("_model")
        if model is None:
            try:
                import fasttext
            except ImportError:
                raise ConfigError(f"scorer='fasttext' needs the fastText binding: {EXTRA}") from None
            if not os.path.isfile(self.path):
                raise ModelNotFoundError(f"scorer_model={self.path!r} is not a file; give a fastText .bin model")
            try:
                model = fasttext.load_model(self.path)
            except (ValueError, RuntimeError, MemoryError) as e:
                raise ModelNotFoundError(f"scorer_model={self.path!r} is not a fastText model ({e}); give a "
                                         "supervised model saved by fastText (a .bin file)") from None
            labels = list(model.get_labels())
            if not model.is_quantized() and model.f.getArgs().model.name != "supervised" or not labels:
                raise ModelNotFoundError(f"scorer_model={self.path!r} is not a fastText classifier (no labels); "
                                         "give a supervised model")
            if self.label not in labels:
                raise ConfigError(f"scorer_options.label={self.label!r} is not a label of {self.name}; "
                                  f"its labels: {', '.join(labels[:20])}")
            self.__dict__["_model"] = model
            self.__dict__["_k"] = len(labels)
        return model

    def load(self) -> "FastTextScorer":
        self.model
        return self

    def score(self, values: Sequence) -> np.ndarray:
        """``P(label | text)`` per document."""
        model = self.model
        lines = [t.replace("\n", " ") + "\n" for t in values]
        all_labels, all_probs = model.f.multilinePredict(lines, self._k, 0.0, "replace")
        label = self.label
        out = np.empty(len(lines), dtype=np.float64)
        for i, (labels, probs) in enumerate(zip(all_labels, all_probs)):
            try:
                out[i] = probs[labels.index(label)]
            except ValueError:  # below the threshold: fastText leaves it out
                out[i] = 0.0
        return out


@register_scorer("fasttext")
def _fasttext(model, options, language) -> FastTextScorer:
    check_options("fasttext", options, ("label", "higher_is_better", "name"))
    label = options.get("label", "__label__hq")
    if not isinstance(label, str) or not label:
        raise ConfigError(f"scorer_options.label={label!r} is not valid; give a label such as '__label__hq'")
    path = local_or_hub(model, what="fastText .bin")
    return FastTextScorer(path, label, as_bool(options, "higher_is_better", True), options.get("name")).load()
