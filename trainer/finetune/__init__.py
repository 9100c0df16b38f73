"""Downstream fine-tuning and evaluation (BERTIN's Tables 3 and 4) of any model family the trainer builds.

* :mod:`.kinds`: the task kinds (token and sequence classification, span question answering, regression,
  multiple choice), each with its encoding, loss, metrics, head and transformers architecture, on any
  family's encoder (:mod:`trainer.models`);
* :mod:`.tasks`: task presets, dataset loading, label maps and encoding; :mod:`.conll`, :mod:`.squad`:
  the raw CoNLL-2002 files and SQuAD-format JSON;
* :mod:`.loading`: a checkpoint (Orbax folder, transformers folder or Hub id) -> spec, params, tokenizer;
* :mod:`.run`: the jitted, sharded fine-tuning loop, metrics, seeds and collapsed-run reruns, export;
* :mod:`.results`: the comparison table (Markdown, JSON, PNG); :mod:`.command`: ``trainer finetune``
  and ``trainer evaluate``.
"""
