"""Child processes never outlive their parent (even a parent killed with SIGKILL).

* :func:`die_with_parent`, called in a child: on Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (when the
  child was forked by its parent's main thread: the kernel signals on the death of the forking
  *thread*), and everywhere a daemon thread that exits the child once its parent is gone (its parent
  process id changes: it was re-parented).
* :func:`children_die_with_parent` makes every child forked from now on by this process call it
  (``os.register_at_fork``): datatrove's worker pool and its manager process, for instance.
* :func:`end_with`, called in a process: end it once another process (an ancestor that is not its
  parent, such as the process that started the forkserver that forked it) has ended.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1

#: Seconds between two checks of the parent process id.
POLL_SECONDS = 1.0

_forked_by_main_thread = [False]
_registered = [False]


def _pdeathsig(sig: int = signal.SIGTERM) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while True:
        time.sleep(POLL_SECONDS)
        if os.getppid() != parent:
            os._exit(143)


def ended(pid: int) -> bool:
    """Whether process ``pid`` has ended: gone, or a zombie (ended, not reaped yet) where ``/proc`` says so."""
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
                return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
        except (FileNotFoundError, ProcessLookupError):
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def _watch_process(pid: int) -> None:
    while not ended(pid):
        time.sleep(POLL_SECONDS)
    os._exit(143)


def end_with(pid: int) -> None:
    """Called in a process: end it (exit 143) once process ``pid`` has ended (checked every second)."""
    threading.Thread(target=_watch_process, args=(pid,), name="end-with", daemon=True).start()


def die_with_parent(use_prctl: bool = True) -> None:
    """Called in a child process: end it (SIGTERM, else exit 143) once its parent process is gone."""
    parent = os.getppid()
    if use_prctl:
        _pdeathsig()
    if parent == 1:  # already orphaned
        os._exit(143)
    threading.Thread(target=_watch, args=(parent,), name="die-with-parent", daemon=True).start()


def _before_fork() -> None:
    _forked_by_main_thread[0] = threading.current_thread() is threading.main_thread()


def _after_fork_in_child() -> None:
    die_with_parent(use_prctl=_forked_by_main_thread[0])


def children_die_with_parent() -> None:
    """From now on, every child this process forks calls :func:`die_with_parent` (idempotent)."""
    if _registered[0] or not hasattr(os, "register_at_fork"):
        return
    os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
    _registered[0] = True
