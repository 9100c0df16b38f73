"""The one atomic writer and the no-overwrite policy: outputs never overwrite somebody else's files and
never appear half written.

Files: every file a command writes (``sample -o``, the ``--report`` files, ``calibrate``'s
``calibration.json`` and pictures, the trainer's run files, token shards, the study's results...) is
written under a temporary name in its folder and renamed when complete (:func:`atomic_path`,
:func:`write_atomic`, :class:`OutputFile`, :func:`output_stream`), so an interrupted or failed run
never leaves a file that looks complete. A device or pipe (``/dev/null``, ``/dev/stdout``, a FIFO)
is written in place. Any :class:`OSError` while creating or writing becomes an
:class:`~.errors.OutputError` naming the path.

Folders, the policy shared by every command of ``mc4-sampling`` and ``trainer`` that writes one:

* :func:`check_output_dir` runs before any work: the path must be a folder (or not exist yet, under
  a folder that can be written), writable, and either empty or holding a :data:`MARKER` this tool
  wrote there (so a rerun may replace its own output); anything else is refused unless
  ``overwrite`` (the command's ``--overwrite``), naming the option and the path.
  :func:`check_output_file` is the same for a file.
* :func:`atomic_dir` writes a folder under a temporary sibling name and renames it into place when
  complete (the marker included), so a failed or interrupted run leaves nothing behind, and a
  replaced folder is swapped whole; :func:`atomic_folder` does the same for a folder inside a
  tool's own output (no policy check, no marker).
* :func:`os_error_message` words an :class:`OSError` (full disk, no permission, missing path) as
  one line naming the path.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import stat
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from .errors import OutputError, os_error_reason, output_error

#: The extended attribute of a folder that says "this tool wrote this folder" (a rerun may replace
#: it): invisible in listings and uploads, kept by renames.
MARKER_XATTR = "user.mc4-sampling.written-by"
#: The marker file used instead where the file system has no extended attributes.
MARKER = ".written-by-mc4-sampling"

def os_error_message(error: OSError, path=None) -> str:
    """``<path>: <reason> (<the real cause and what to do>)`` for an OSError (``path``: the one to name
    when the error has none); the cause from :func:`~.errors.os_error_reason`."""
    where = path if path is not None else (error.filename if error.filename is not None else None)
    reason = os_error_reason(error)
    return f"{str(where)!r}: {reason}" if where is not None else reason


def not_writable(path) -> Optional[OSError]:
    """None when the folder (or file) ``path`` can be written, else the OSError a write would meet:
    EROFS on a read-only file system (``os.access`` alone says no without saying why), else EACCES."""
    if os.access(path, os.W_OK | (os.X_OK if os.path.isdir(path) else 0)):
        return None
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        read_only = False
    code = errno.EROFS if read_only else errno.EACCES
    return OSError(code, os.strerror(code), str(path))


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
        if (fault := not_writable(p)) is not None:
            raise OutputError(f"{shown}: {os_error_reason(fault)}")
        entries = sorted(os.listdir(p))
        if entries and not overwrite and not ours(p):
            some = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise OutputError(f"{shown}: it already holds files this tool did not write ({some}); {hint}")
        return
    parent = _nearest_existing(p)
    if not parent.is_dir():
        raise OutputError(f"{shown}: Not a directory ({str(parent)!r} is a file, not a folder)")
    if (fault := not_writable(parent)) is not None:
        raise OutputError(f"{shown}: cannot create it in {str(parent)!r}: {os_error_reason(fault)}")


def _sibling_folder(final: Path) -> Path:
    """A new empty folder with a fresh temporary name beside ``final`` (its parents created)."""
    tmp = final.with_name(f".{final.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    return tmp


@contextmanager
def atomic_dir(path, command: str, option: str = "--output", overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path`` to fill; on success it gets the marker and is
    renamed to ``path`` (replacing a previous folder whole); on any failure it is removed.
    :func:`check_output_dir` runs first; an OSError becomes one OutputError line naming ``path``."""
    check_output_dir(path, option, overwrite)
    final = Path(path).absolute()
    try:
        tmp = _sibling_folder(final)
    except OSError as e:
        raise OutputError(f"cannot write {option} {os_error_message(e, path)}") from None
    try:
        yield tmp
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if not _about_output(e, tmp):  # an input, the network...: that fault's own words, not the output's
            raise
        raise OutputError(f"cannot write {option} {os_error_message(e, path)}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        write_marker(tmp, command)
        replace_dir(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write {option} {os_error_message(e, path)}") from None


#: Faults that, when an error names no file, come from writing (the output's), not from reading.
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _about_output(error: OSError, folder: Path) -> bool:
    """Whether ``error``, raised while ``folder`` was filled, is a fault of writing it: it names a
    path inside ``folder``, or names none and is a write fault (a full disk deep in a library)."""
    if isinstance(error, (OutputError, ConnectionError, TimeoutError)):
        return False
    if error.filename is None:
        return error.errno in WRITE_ERRNOS
    return os.path.abspath(str(error.filename)).startswith(str(folder.absolute()) + os.sep)


@contextmanager
def atomic_folder(path) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path`` to fill; renamed to ``path`` when the block ends
    normally (replacing a previous folder whole), removed when it raises. For a folder inside a tool's
    own output (no policy check, no marker; a command's output folder: :func:`atomic_dir`). An OSError
    creating or renaming the folder becomes an OutputError naming ``path``; the block's own errors pass."""
    final = Path(path).absolute()
    try:
        tmp = _sibling_folder(final)
    except OSError as e:
        raise output_error(path, e) from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        replace_dir(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise output_error(path, e) from None


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
        if (fault := not_writable(p)) is not None:
            raise OutputError(f"{shown}: {os_error_reason(fault)}")
        return
    parent = _nearest_existing(p.parent)
    if not parent.is_dir():
        raise OutputError(f"{shown}: Not a directory ({str(parent)!r} is a file, not a folder)")
    if (fault := not_writable(parent)) is not None:
        raise OutputError(f"{shown}: cannot create it in {str(parent)!r}: {os_error_reason(fault)}")


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


# --- files ------------------------------------------------------------------------------------


def _in_place(path: str) -> bool:
    """An existing target that is not a regular file (a device, a FIFO): written directly, never replaced."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode) and not os.path.isdir(path)
    except OSError:
        return False


def _temporary_name(path: Path) -> Path:
    """A fresh name beside ``path`` (beside the file a symbolic link points to, so the link stays)."""
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    return path.with_name(f".{path.stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{path.suffix}")


def _check_target(path: Path) -> None:
    if path.is_dir():
        raise OutputError(f"cannot write {str(path)!r}: it is a folder; give a file name")


def make_output_dir(path) -> Path:
    """Create the folder ``path`` (and its parents) if needed; OutputError naming it if that fails."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if (fault := not_writable(path)) is not None:
            raise fault
    except FileExistsError:
        raise OutputError(f"cannot write into {str(path)!r}: it is a file, not a folder") from None
    except OSError as e:
        raise output_error(path, e) from None
    return path


@contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix) to write; renamed to ``path`` on success,
    removed on failure. OSError becomes OutputError naming ``path``."""
    path = Path(path)
    if _in_place(str(path)):
        try:
            yield path
        except OSError as e:
            raise output_error(path, e) from None
        return
    _check_target(path)
    tmp = _temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, os.path.realpath(path))
    except OSError as e:
        _remove(tmp)
        raise output_error(path, e) from None
    except BaseException:
        _remove(tmp)
        raise


def write_atomic(path, data: str | bytes) -> None:
    """Write ``data`` (bytes, or text as UTF-8) to the file ``path`` whole or not at all (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        if isinstance(data, bytes):
            with open(tmp, "wb") as f:
                f.write(data)
        else:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(data)


def _remove(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class OutputFile:
    """A text file opened for writing now, under a temporary name, renamed to ``path`` by :meth:`commit`.

    As a context manager: committed when the block ends normally, discarded (temporary file
    removed) when it raises or is interrupted. Raises OutputError naming ``path`` on any OSError.
    """

    def __init__(self, path):
        self.path = Path(path)
        self._tmp: Path | None = None
        try:
            if _in_place(str(self.path)):
                self._file = open(self.path, "w", encoding="utf-8")
            else:
                _check_target(self.path)
                self._tmp = _temporary_name(self.path)
                fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                self._file = os.fdopen(fd, "w", encoding="utf-8")
        except OSError as e:
            raise output_error(self.path, e) from None

    def write(self, text: str) -> None:
        try:
            self._file.write(text)
        except OSError as e:
            self.discard()
            raise output_error(self.path, e) from None

    def commit(self) -> None:
        try:
            self._file.close()
            if self._tmp is not None:
                os.replace(self._tmp, os.path.realpath(self.path))
                self._tmp = None
        except OSError as e:
            self.discard()
            raise output_error(self.path, e) from None

    def discard(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass
        if self._tmp is not None:
            _remove(self._tmp)
            self._tmp = None

    def __enter__(self) -> "OutputFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


@contextmanager
def output_stream(path: str):
    """A command's text output: standard output for ``-``, else an :class:`OutputFile` committed when
    the block ends normally and discarded when it raises or is interrupted."""
    if path == "-":
        yield sys.stdout
        return
    with OutputFile(path) as out:
        yield out
