"""The sampler's exceptions for user mistakes, each with a message that says what to do, and the helpers
that word the common ones. :class:`Mc4SamplingError` is a :class:`~mc4_sampling.common.errors.UserError`
(the errors of the common layer, such as ``OutputError``, live in :mod:`mc4_sampling.common.errors`)."""

from __future__ import annotations

from .common.errors import UserError


class Mc4SamplingError(UserError, ValueError):
    """Base class: a parameter, file or record the user supplied is not usable."""


class ConfigError(Mc4SamplingError):
    """An option has an invalid value; the message names the option and the valid range.

    Where it helps another front end (the trainer's ``data.sampling``) word the same mistake in
    its own terms, the error also carries ``option`` (the option's name), ``value``, ``expected``
    (what the value must be) or ``replaces`` (the options a given one excludes)."""

    def __init__(self, message: str, *, option: str | None = None, value=None, expected: str | None = None,
                 replaces: tuple = ()):
        super().__init__(message)
        self.option, self.value, self.expected, self.replaces = option, value, expected, tuple(replaces)


class ModelNotFoundError(Mc4SamplingError, FileNotFoundError):
    """A perplexity model file is missing or unreadable."""


class DataNotFoundError(Mc4SamplingError, FileNotFoundError):
    """No mC4 shard was found where the configuration points."""


class BadRecordError(Mc4SamplingError):
    """A data file holds a record that cannot be read (corrupt gzip, bad JSON, no ``text``)."""

    def __init__(self, path: str, line: int | None, reason: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(
            f"{where}: {reason} (pass on_bad_record='skip' to skip and count such records)"
        )
        self.path = path
        self.line = line
        self.reason = reason


class BadFileError(Mc4SamplingError):
    """A data file that is not what its name says (a ``.parquet`` file that is not Parquet, a file of
    another format) or whose columns are not those the source reads; the message names the file."""


class RemoteReadError(Mc4SamplingError, ConnectionError):
    """A remote shard could not be read (network error, server error, a transfer that kept breaking
    off, a response that does not match the request); the message names the URL, the byte, the
    cause and what to try. Also a :class:`ConnectionError`."""

    def __init__(self, url: str, message: str):
        super().__init__(message)
        self.url = url

    def __reduce__(self):  # survives pickling (DataLoader workers, multiprocessing)
        return type(self), (self.url, str(self)), self.__dict__


class RemoteFileChangedError(RemoteReadError):
    """A remote shard changed on the server while it was being read (its ``ETag``/``Last-Modified``,
    size or content differs from the first response's)."""


def invalid_choice(option: str, value, choices) -> ConfigError:
    """``<option>=<value> is not valid; choose one of <choices>``."""
    return ConfigError(f"{option}={value!r} is not valid; choose one of {', '.join(choices)}")


def option_value(option: str, value) -> str:
    """How a message shows an option's value: ``name=value``, or ``--flag value`` for a command-line flag."""
    return f"{option} {value}" if option.startswith("-") else f"{option}={value!r}"


def out_of_range(option: str, value, requirement: str) -> ConfigError:
    """``<option>=<value> is out of range: <requirement>`` (``--flag value`` for a command-line flag)."""
    return ConfigError(f"{option_value(option, value)} is out of range: {requirement}")
