"""The package version (its own module, so that modules of the package can read it without importing ``__init__``)."""

__version__ = "0.1.0"
