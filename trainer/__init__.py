"""Flax/JAX RoBERTa masked-LM pretraining on a streaming ``datasets`` source (BERTIN's recipe).

Entry points: ``python -m trainer`` / ``trainer`` (train, export, fill-mask, tokenizer); library
use: :func:`trainer.config_loading.load_config` then :func:`trainer.train.train` (or
``trainer.train.Trainer(cfg)``, ``add_hook``, ``run``).
"""
