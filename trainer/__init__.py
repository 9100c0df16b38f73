"""Flax/JAX RoBERTa masked-LM pretraining on a streaming ``datasets`` source (BERTIN's recipe).

Entry points: ``python -m trainer`` / ``trainer`` (train, export, fill-mask, tokenizer); library
use: :func:`trainer.config_loading.load_config` then :func:`trainer.entry.train` (or
``trainer.entry.build_trainer(cfg)``, ``add_hook``, ``run``). ``trainer.train.Trainer`` is the core
loop alone; :mod:`trainer.entry` composes it with the research features (:mod:`trainer.research`).
"""
