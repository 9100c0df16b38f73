"""``scorer="transformers"``: a ``transformers`` model's output per document, batched, on CPU or an
accelerator.

- ``scorer_options={"task": "classification"}`` (default): a sequence-classification or regression
  model, FineWeb-Edu classifier style (``HuggingFaceFW/fineweb-edu-classifier``: one regression
  output, 0 to 5). With one output the score is that output; with several, the softmax probability
  of ``label`` (an index or a name of ``config.id2label``). Higher is better.
- ``{"task": "causal_lm"}``: a causal language model's perplexity, ``exp(mean token NLL)`` over
  the first ``max_length`` tokens (reference-model pruning). Lower is better.

Further options: ``batch_size`` (32), ``max_length`` (512), ``device`` (``auto``: CUDA when present,
else CPU; or any ``torch`` device string), ``dtype`` (``float32``; ``bfloat16`` on an accelerator).
Documents are sorted by length within a block so that batches pad little; scores come back in the
block's order.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from ..errors import ConfigError, ModelNotFoundError
from .base import Scorer, as_bool, check_options, folder_fingerprint, local_or_hub, register_scorer

TASKS = ("classification", "causal_lm")
OPTIONS = ("task", "label", "batch_size", "max_length", "device", "dtype", "higher_is_better", "name")


class TransformersScorer(Scorer):
    kind = "transformers"

    def __init__(self, path: str, task: str = "classification", label=None, batch_size: int = 32,
                 max_length: int = 512, device: str = "auto", dtype: str = "float32",
                 higher_is_better: bool | None = None, name: str | None = None):
        self.path = path
        self.task = task
        self.label = label
        self.batch_size = batch_size
        self.max_length = max_length
        self.device_option = device
        self.dtype = dtype
        self.higher_is_better = (task != "causal_lm") if higher_is_better is None else higher_is_better
        self.name = name or os.path.basename(os.path.normpath(path))

    @property
    def model_id(self) -> str:
        extra = f":{self.task}" + (f":{self.label}" if self.label is not None else "") + f":{self.max_length}"
        return f"transformers:{self.name}#{folder_fingerprint(self.path)}{extra}"

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_model", "_tokenizer", "_label_index", "_device"):
            state.pop(key, None)
        return state

    def load(self) -> "TransformersScorer":
        if "_model" in self.__dict__:
            return self
        try:
            import torch
            import transformers
        except ImportError:
            raise ConfigError("scorer='transformers' needs torch and transformers: "
                              "pip install 'mc4-sampling[trainer]' torch") from None
        if not os.path.isdir(self.path) or not os.path.isfile(os.path.join(self.path, "config.json")):
            raise ModelNotFoundError(f"scorer_model={self.path!r} is not a transformers model folder (no config.json); "
                                     "give a folder saved by save_pretrained or a Hub model id")
        try:
            config = transformers.AutoConfig.from_pretrained(self.path)
            tokenizer = transformers.AutoTokenizer.from_pretrained(self.path)
            auto = (transformers.AutoModelForCausalLM if self.task == "causal_lm"
                    else transformers.AutoModelForSequenceClassification)
            dtype = getattr(torch, self.dtype)
            model = auto.from_pretrained(self.path, dtype=dtype)
        except (OSError, ValueError, KeyError) as e:
            kind = "causal language model" if self.task == "causal_lm" else "sequence-classification model"
            raise ModelNotFoundError(f"scorer_model={self.path!r} is not a transformers {kind} "
                                     f"({type(e).__name__}: {str(e).splitlines()[0][:160]})") from None
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
        device = self.device_option
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model.to(device).eval()
        label_index = None
        if self.task == "classification":
            n = config.num_labels
            if n > 1:
                label_index = self._label_index(config)
            elif self.label is not None:
                raise ConfigError(f"scorer_options.label={self.label!r}: {self.name} has one (regression) output, "
                                  "no labels; leave label unset")
        self.__dict__.update(_model=model, _tokenizer=tokenizer, _label_index=label_index, _device=device)
        return self

    def _label_index(self, config) -> int:
        names = {str(v): int(k) for k, v in config.id2label.items()}
        label = self.label
        if label is None:
            raise ConfigError(f"scorer_options.label is needed: {self.name} has {config.num_labels} outputs "
                              f"({', '.join(names)}); give a label name or index")
        if isinstance(label, int) and not isinstance(label, bool) and 0 <= label < config.num_labels:
            return label
        if isinstance(label, str) and label in names:
            return names[label]
        raise ConfigError(f"scorer_options.label={label!r} is not a label of {self.name}; "
                          f"its labels: {', '.join(names)} (or an index below {config.num_labels})")

    def score(self, values: Sequence) -> np.ndarray:
        import torch

        self.load()
        model, tokenizer, device = self._model, self._tokenizer, self._device
        texts = list(values)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty(len(texts), dtype=np.float64)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start:start + self.batch_size]
                enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt").to(device)
                if self.task == "causal_lm":
                    scores = self._perplexity(model, enc)
                else:
                    logits = model(**enc).logits.float()
                    if self._label_index is None:
                        scores = logits[:, 0]
                    else:
                        scores = torch.softmax(logits, dim=-1)[:, self._label_index]
                out[idx] = scores.cpu().numpy().astype(np.float64)
        return out

    @staticmethod
    def _perplexity(model, enc):
        import torch

        logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits.float()
        target = enc["input_ids"][:, 1:]
        mask = enc["attention_mask"][:, 1:].float()
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), target, reduction="none")
        tokens = mask.sum(dim=1)
        mean = (nll * mask).sum(dim=1) / tokens.clamp(min=1)
        return torch.where(tokens > 0, torch.exp(mean), torch.full_like(mean, math.nan))


@register_scorer("transformers")
def _transformers(model, options, language) -> TransformersScorer:
    check_options("transformers", options, OPTIONS)
    task = options.get("task", "classification")
    if task not in TASKS:
        raise ConfigError(f"scorer_options.task={task!r} is not valid; choose one of {', '.join(TASKS)}")
    for key, default in (("batch_size", 32), ("max_length", 512)):
        value = options.get(key, default)
        if not (isinstance(value, int) and not isinstance(value, bool) and value > 0):
            raise ConfigError(f"scorer_options.{key}={value!r} is not valid; it must be an integer > 0")
    hib = options.get("higher_is_better")
    path = local_or_hub(model, what="transformers model folder")
    return TransformersScorer(
        path, task, options.get("label"), options.get("batch_size", 32), options.get("max_length", 512),
        options.get("device", "auto"), options.get("dtype", "float32"),
        None if hib is None else as_bool(options, "higher_is_better", True), options.get("name")).load()
