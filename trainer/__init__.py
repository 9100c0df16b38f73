"""Flax/JAX RoBERTa masked-LM pretraining on a streaming ``datasets`` source (BERTIN's recipe).

Entry points: ``python -m trainer`` / ``trainer`` (train, export, fill-mask), ``python -m
trainer.tokenizer``; library use: :func:`trainer.config.load_config` then
:func:`trainer.train.train`.
"""
