"""Downstream fine-tuning and evaluation (BERTIN's Tables 3 and 4) of the trainer's RoBERTa.

* :mod:`.heads`: Flax token / sequence classification models (encoder + transformers' head layouts);
* :mod:`.tasks`: task presets, dataset loading, label maps and encoding;
* :mod:`.loading`: a checkpoint (Orbax folder, transformers folder or Hub id) -> spec, params, tokenizer;
* :mod:`.run`: the jitted, sharded fine-tuning loop, metrics, seeds and collapsed-run reruns, export;
* :mod:`.results`: the comparison table (Markdown, JSON, PNG).
"""
