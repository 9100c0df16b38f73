"""Artificial languages for pretraining (a wing of the trainer; the core never imports it): a probabilistic
grammar over the dependency relations of a treebank, sampled and relexicalised into an arbitrary vocabulary,
written as a corpus every command reads (JSON lines or Parquet), with its one-token-one-id tokenizer.

* :mod:`.conllu`: the CoNLL-U reader (a file or an http(s) URL);
* :mod:`.pcfg`: the grammar learned from the trees and its top-down sampler (the formulas);
* :mod:`.relexicalisers`: the plug-in point of relexicalisers (``zipf``, ``loglinear``) and the vocabulary split;
* :mod:`.generate`: the corpus, deterministic by (seed, sentence index), in shards, resumable, with workers;
* :mod:`.command`: ``trainer generate-pcfg``.

The method is that of "Artificial Pretraining of Masked Language Models" (R. Castagné, 2023): see
docs/artificial.md.
"""
