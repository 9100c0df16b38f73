"""The layer below both packages: what the sampler and the trainer share.

Atomic outputs and the no-overwrite policy, Hub access and its reachability probe, child processes
that die with their parent, the console error policy, command-line argument types and the version.
Nothing here imports the rest of :mod:`mc4_sampling` or :mod:`trainer` (``tests/test_layering.py``).
"""
