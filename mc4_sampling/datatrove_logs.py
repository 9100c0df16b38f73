"""datatrove's own logging kept quiet (unless ``--verbose``), a progress bar over shards instead.

datatrove logs about 11 lines per task on standard error (about 22 000 for Spanish mC4) and a
failed task's traceback before our one-line error. :func:`quiet_datatrove` keeps every line in
the task log files (``<output>/.mc4-sampling/logs``, where the error line points) and sends to
standard error only the lines about the whole run (tasks skipped as already done, warnings); the
final statistics block is in ``logs/stats.json`` (the command prints its own summary). It applies
in worker processes too: importing this module in a process whose environment has
:data:`QUIET_ENV` set quiets it (the ``publish`` forkserver preloads it). :func:`start` and
:func:`stop` bracket one run: :func:`stop` gives the process back its environment and datatrove its
own logging, so nothing leaks into later runs of the same process. :class:`ShardProgress` counts
finished shards by their statistics files.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Callable, Optional

#: Set (to ``1``) in the environment of a process whose datatrove logging is quiet.
QUIET_ENV = "MC4_SAMPLING_QUIET_DATATROVE"

FORMAT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {name}:{function}:{line} - {message}"


def verbose() -> bool:
    """Whether the command runs with ``--verbose`` (the ``mc4_sampling`` loggers show INFO)."""
    return logging.getLogger("mc4_sampling").getEffectiveLevel() <= logging.INFO


def _task_logger_to_file_only(logging_dir, rank: int, local_rank: int = 0, node_rank: int = -1):
    """datatrove's ``add_task_logger`` without its standard-error sink."""
    from loguru import logger

    logger.remove()
    logfile = logging_dir.open(f"logs/task_{rank:05d}.log", "w")
    logger.add(logfile, colorize=False, level="DEBUG", format=FORMAT)
    logger.info(f"Launching pipeline for {rank=}")
    return logfile


#: datatrove functions whose lines are per task (the shard bar shows that progress).
PER_TASK_FUNCTIONS = frozenset({"_launch_run_for_rank", "_run_for_rank"})


#: How datatrove's statistics block begins (``PipelineStats.get_repr``); it is saved in ``logs/stats.json``.
STATS_BLOCK = "\U0001f4c9" * 3 + " Stats"


def _run_level_lines_only(record) -> bool:
    """datatrove's lines about the whole run (resumed tasks, warnings), not those of each task, nor
    the statistics block (in ``logs/stats.json``), nor a Slurm dry run's "launched with id=-1"."""
    if record["level"].no >= 30:
        return True
    if record["function"] in PER_TASK_FUNCTIONS or STATS_BLOCK in record["message"]:
        return False
    return not ("launched successfully" in record["message"] and "id=-1" in record["message"])


def _default_logger_warnings_only():
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, level="INFO", format="{message}", filter=_run_level_lines_only)


def quiet_datatrove() -> Callable[[], None]:
    """Quiet datatrove in this process and in the processes it starts from now on; returns the function
    that undoes it (the environment variable, datatrove's functions and its default logger restored)."""
    previous = os.environ.get(QUIET_ENV)
    os.environ[QUIET_ENV] = "1"
    replaced: list = []  # (module, name, original)
    try:
        import datatrove.utils.logging as dt_logging
    except ImportError:
        dt_logging = None
    if dt_logging is not None:
        replaced.append((dt_logging, "setup_default_logger", dt_logging.setup_default_logger))
        dt_logging.setup_default_logger = _default_logger_warnings_only
        for name in ("datatrove.executor.base", "datatrove.executor.ray", "datatrove.executor.jobs",
                     "datatrove.executor.slurm"):
            try:
                module = __import__(name, fromlist=["_"])
            except Exception:  # an executor whose extra is not installed
                continue
            for attr, quiet in (("add_task_logger", _task_logger_to_file_only),
                                ("setup_default_logger", _default_logger_warnings_only)):
                if hasattr(module, attr):
                    replaced.append((module, attr, getattr(module, attr)))
                    setattr(module, attr, quiet)
        _default_logger_warnings_only()

    def undo() -> None:
        if previous is None:
            os.environ.pop(QUIET_ENV, None)
        else:
            os.environ[QUIET_ENV] = previous
        for module, attr, original in reversed(replaced):
            setattr(module, attr, original)
        if replaced:
            replaced[0][2]()  # datatrove's own default logger again
    return undo


class ShardProgress:
    """A progress bar over shards, advanced by a thread that counts the ``done_files`` that exist.

    ``disable=None``: shown on a terminal only (tqdm's rule)."""

    def __init__(self, done_files: list[str], desc: str = "publishing", disable: Optional[bool] = None,
                 interval: float = 0.5, file=None):
        from tqdm import tqdm

        self.done_files = list(done_files)
        self.interval = interval
        self.bar = tqdm(total=len(self.done_files), unit="shard", desc=desc, disable=disable,
                        file=file or sys.stderr, dynamic_ncols=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="shard-progress", daemon=True)
        self.refresh()
        self._thread.start()

    def refresh(self) -> int:
        done = sum(os.path.exists(f) for f in self.done_files)
        if done > self.bar.n:
            self.bar.update(done - self.bar.n)
        return done

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self.refresh()
        self.bar.close()


def start(done_files: list[str]) -> Optional[ShardProgress]:
    """For ``publish``: quiet datatrove and start the shard bar, unless ``--verbose``; None then."""
    if verbose():
        return None
    undo = quiet_datatrove()
    try:
        progress = ShardProgress(done_files)
    except BaseException:
        undo()
        raise
    progress.undo_quiet = undo
    return progress


def stop(progress: Optional[ShardProgress]) -> None:
    """The end of what :func:`start` began: the bar closed, datatrove's logging and the environment restored."""
    if progress is not None:
        progress.stop()
        getattr(progress, "undo_quiet", lambda: None)()


if os.environ.get(QUIET_ENV) == "1":  # a worker process started by a quiet parent
    quiet_datatrove()
