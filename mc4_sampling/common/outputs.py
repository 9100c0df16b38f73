"""Output files written whole or not at all.

Every file a command writes (``sample -o``, the ``--report`` files, ``calibrate``'s
``calibration.json`` and pictures) is written under a temporary name in its folder and renamed
when complete, so an interrupted or failed run never leaves a file that looks complete. A device
or pipe (``/dev/null``, ``/dev/stdout``, a FIFO) is written in place. Any :class:`OSError` while
creating or writing becomes an :class:`~.errors.OutputError` naming the path.
"""

from __future__ import annotations

import os
import secrets
import stat
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import OutputError, output_error


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
        if not os.access(path, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied")
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
