"""Output folders that never overwrite somebody else's files and never appear half written.

The policy, shared by every command of ``mc4-sampling`` and ``trainer`` that writes a folder:

* :func:`check_output_dir` runs before any work: the path must be a folder (or not exist yet, under
  a folder that can be written), writable, and either empty or holding a :data:`MARKER` this tool
  wrote there (so a rerun may replace its own output); anything else is refused unless
  ``overwrite`` (the command's ``--overwrite``), naming the option and the path.
* :func:`atomic_dir` writes a folder under a temporary sibling name and renames it into place when
  complete (the marker included), so a failed or interrupted run leaves nothing behind, and a
  replaced folder is swapped whole.
* :func:`os_error_message` words an :class:`OSError` (full disk, no permission, missing path) as
  one line naming the path.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from .errors import OutputError

#: The extended attribute of a folder that says "this tool wrote this folder" (a rerun may replace
#: it): invisible in listings and uploads, kept by renames.
MARKER_XATTR = "user.mc4-sampling.written-by"
#: The marker file used instead where the file system has no extended attributes.
MARKER = ".written-by-mc4-sampling"

#: What to do about each fault, appended to its one line.
ADVICE = {
    errno.ENOSPC: "free some space or write elsewhere",
    errno.EDQUOT: "free some space or write elsewhere",
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
    errno.EROFS: "the file system is read-only; write elsewhere",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder; give a file name",
}


def os_error_message(error: OSError, path=None) -> str:
    """``<path>: <reason> (<what to do>)`` for an OSError (``path``: the one to name when the error has none)."""
    where = path if path is not None else (error.filename if error.filename is not None else None)
    reason = error.strerror or str(error) or type(error).__name__
    advice = ADVICE.get(error.errno)
    text = f"{str(where)!r}: {reason}" if where is not None else reason
    return f"{text} ({advice})" if advice else text


def is_ours(path) -> bool:
    """Whether ``path`` is a folder marked as written by this tool (:data:`MARKER_XATTR` or :data:`MARKER`)."""
    try:
        os.getxattr(path, MARKER_XATTR)
        return True
    except (OSError, AttributeError):
        return os.path.isfile(os.path.join(path, MARKER))


def write_marker(folder, command: str) -> None:
    """Record on ``folder`` that ``command`` wrote it (and when): an extended attribute, else a file."""
    record = json.dumps({"command": command, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    try:
        os.setxattr(folder, MARKER_XATTR, record.encode())
    except (OSError, AttributeError):  # no extended attributes here
        with open(os.path.join(folder, MARKER), "w", encoding="utf-8") as f:
            f.write(record + "\n")


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


#: What a refusal of a folder holding other files suggests.
OVERWRITE_HINT = "give a new or empty folder, or pass --overwrite to replace it"


def check_output_dir(path, option: str = "--output", overwrite: bool = False, ours=is_ours,
                     hint: str = OVERWRITE_HINT) -> None:
    """Refuse an output folder that cannot or must not be written, before any work (see the module doc).

    ``ours(path)``: whether an existing non-empty folder was written by this tool (default: it holds
    the marker). Raises :class:`~.errors.OutputError` naming ``option`` and ``path``.
    """
    p = Path(path)
    shown = f"cannot write {option} {str(path)!r}"
    if p.exists() and not p.is_dir():
        raise OutputError(f"{shown}: it is a file, not a folder; give a folder name")
    if p.is_dir():
        if not os.access(p, os.W_OK | os.X_OK):
            raise OutputError(f"{shown}: Permission denied (check its permissions or write elsewhere)")
        entries = sorted(os.listdir(p))
        if entries and not overwrite and not ours(p):
            some = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise OutputError(f"{shown}: it already holds files this tool did not write ({some}); {hint}")
        return
    parent = _nearest_existing(p)
    if not parent.is_dir():
        raise OutputError(f"{shown}: Not a directory ({str(parent)!r} is a file, not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{shown}: cannot create it in {str(parent)!r}: Permission denied")


@contextmanager
def atomic_dir(path, command: str, option: str = "--output", overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path`` to fill; on success it gets the marker and is
    renamed to ``path`` (replacing a previous folder whole); on any failure it is removed.
    :func:`check_output_dir` runs first; an OSError becomes one OutputError line naming ``path``."""
    check_output_dir(path, option, overwrite)
    final = Path(path).absolute()
    tmp = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as e:
        raise OutputError(f"cannot write {option} {os_error_message(e, path)}") from None
    try:
        yield tmp
        write_marker(tmp, command)
        replace_dir(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write {option} {os_error_message(e, path)}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def replace_dir(new: Path, final: Path) -> None:
    """Rename folder ``new`` to ``final``; an existing ``final`` is moved aside first and removed after."""
    old: Optional[Path] = None
    if final.exists():
        old = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.old")
        os.rename(final, old)
    try:
        os.rename(new, final)
    except OSError:
        if old is not None:
            os.rename(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def check_output_file(path, option: str = "--output", overwrite: bool = False, ours=None) -> None:
    """Refuse, before any work, an output file path that cannot or must not be written: a folder, a
    path under a file or a folder that cannot be written, or an existing non-empty regular file
    (unless ``overwrite``, or ``ours(path)``: it looks like this command's own output, e.g.
    :func:`looks_like_json_lines`). Devices and pipes (``/dev/null``) are fine."""
    p = Path(path)
    shown = f"cannot write {option} {str(path)!r}"
    if p.is_dir():
        raise OutputError(f"{shown}: it is a folder; give a file name")
    if p.exists():
        if p.is_file() and p.stat().st_size > 0 and not overwrite and not (ours is not None and ours(p)):
            raise OutputError(f"{shown}: it already exists; give a new file name, or pass --overwrite to replace it")
        if not os.access(p, os.W_OK):
            raise OutputError(f"{shown}: Permission denied (check its permissions or write elsewhere)")
        return
    parent = _nearest_existing(p.parent)
    if not parent.is_dir():
        raise OutputError(f"{shown}: Not a directory ({str(parent)!r} is a file, not a folder)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{shown}: cannot create it in {str(parent)!r}: Permission denied")


def mark_as_ours(folder, command: str) -> None:
    """Create ``folder`` if needed and write the marker into it (for folders filled step by step, whose
    partial contents are worth keeping, e.g. fine-tuning results)."""
    os.makedirs(folder, exist_ok=True)
    if not is_ours(folder):
        write_marker(folder, command)


#: Names of JSON-lines files (what ``sample -o`` may replace).
JSON_LINES_SUFFIXES = (".jsonl", ".json", ".ndjson", ".jsonl.gz")


def looks_like_json_lines(path) -> bool:
    """Whether the file is named like JSON lines or its first line is a JSON object (the output of a
    JSON-lines command): such a file may be replaced by ``sample -o``, any other is refused."""
    if str(path).endswith(JSON_LINES_SUFFIXES):
        return True
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline(1 << 20)
        return isinstance(json.loads(first), dict)
    except (OSError, ValueError):
        return False
