"""Imported by the forkserver that forks ``publish``'s worker processes (its preload list), never elsewhere:
a worker ends quietly on SIGINT, and ends with the forkserver.

A terminal's Ctrl-C reaches the whole process group; each worker would die of a ``KeyboardInterrupt``
with a traceback. The forkserver ignores SIGINT itself and gives each child the handler it had when
its preloads were imported: this one, which ends the worker with ``SystemExit`` (no traceback; the
locks it holds are released as the stack unwinds, so the pool can still be stopped). The parent alone
reports the Ctrl-C and says what was kept.

Every worker ends with the process that started the forkserver
(:func:`~mc4_sampling.common.processes.end_with`), not with the forkserver: the forkserver lives as
long as any of its workers does (each holds its "alive" pipe). A worker the pool starts while the
parent is stopping the others, which no SIGINT reached, would otherwise wait forever on the task
queue's lock that a stopped worker held.
"""

import os
import signal

from mc4_sampling.common.processes import end_with

#: The process that started this forkserver (``publish``).
STARTED_BY = os.getppid()


def _end_quietly(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGINT, _end_quietly)
os.register_at_fork(after_in_child=lambda: end_with(STARTED_BY))
