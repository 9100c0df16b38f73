"""Data-selection studies (``trainer study CONFIG.yaml``): BERTIN's comparison as one resumable command.

A study trains the same model on several *arms* (samplings of one corpus) for several seeds, evaluates
every final checkpoint on a common held-out eval set (by label subsets) and on downstream tasks, and
writes a report with per-arm statistics and the difference to a baseline arm (Welch's t-test).

Modules, in flow order: :mod:`.config` (the YAML schema and its checks), :mod:`.corpus` (documents,
labels, content hold-out), :mod:`.sampling` (the one adapter to ``mc4_sampling``), :mod:`.arms`
(match order, kept sets, exact matching), :mod:`.units` (one folder per arm and seed), :mod:`.transfer` (transfer
arms: a source stage, then the target), :mod:`.evaluate`
(final checkpoints), :mod:`.runner` (local and Ray engines, progress, resume), :mod:`trainer.statistics`,
:mod:`.report`, :mod:`.plots`, :mod:`.command` (the CLI).
"""

from .config import StudyConfig, load_study_config  # noqa: F401


def run_study(config, overrides=None, engine=None, progress=print):
    """Run (or resume) the study of ``config`` (a YAML path, a shipped name or a :class:`StudyConfig`)."""
    from .runner import run_study as _run

    return _run(config, overrides or [], engine=engine, progress=progress)
