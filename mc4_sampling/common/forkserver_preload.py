"""Imported by the forkserver that forks ``publish``'s worker processes (its preload list), never elsewhere:
a worker ends quietly on SIGINT.

A terminal's Ctrl-C reaches the whole process group; each worker would die of a ``KeyboardInterrupt``
with a traceback. The forkserver ignores SIGINT itself and gives each child the handler it had when
its preloads were imported: this one, which ends the worker with ``SystemExit`` (no traceback; the
locks it holds are released as the stack unwinds, so the pool can still be stopped). The parent alone
reports the Ctrl-C and says what was kept.
"""

import signal


def _end_quietly(signum, frame):
    raise SystemExit(128 + signum)


signal.signal(signal.SIGINT, _end_quietly)
