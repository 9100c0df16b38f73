"""Exceptions raised for user mistakes, each with a message that says what to do."""


class Mc4SamplingError(ValueError):
    """Base class: a parameter, file or record the user supplied is not usable."""


class ConfigError(Mc4SamplingError):
    """An option has an invalid value; the message names the option and the valid range."""


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
