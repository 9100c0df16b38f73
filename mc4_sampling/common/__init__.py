"""The layer below both packages: what the sampler and the trainer share.

``errors`` (the one base class of user errors, and the errors raised here), ``console`` (the console
error policy), ``outputs`` (the one atomic writer and the no-overwrite policy), ``hub`` (the
reachability probe, the one resolver of Hub locations, uploads, cards), ``processes`` (child
processes that die with their parent), ``cli_types`` (command-line argument types) and ``version``.
Nothing here imports the rest of :mod:`mc4_sampling` or :mod:`trainer` (``tests/test_layering.py``).
"""
