"""Flax/JAX masked-LM pretraining of the registered model families (RoBERTa, BERTIN's recipe by default;
ModernBERT) on a streaming ``datasets`` source or token shards, with export to transformers,
downstream fine-tuning (:mod:`trainer.finetune`), research features (:mod:`trainer.research`) and
data-selection studies (:mod:`trainer.study`).

Entry points: ``python -m trainer`` / ``trainer`` (:mod:`trainer.cli`); library use:
:func:`trainer.config_loading.load_config` then :func:`trainer.entry.train` (or
``trainer.entry.build_trainer(cfg)``, ``add_hook``, ``run``). ``trainer.train.Trainer`` is the core
loop alone; :mod:`trainer.entry` composes it with the research features (:mod:`trainer.research`).
"""
