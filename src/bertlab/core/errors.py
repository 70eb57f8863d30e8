"""User-facing errors.

Anything raised as a `BertlabError` is a problem with the user's input (config, data, model
name), not a bug: the entry point prints its message alone, without a traceback, and exits
non-zero. Messages name the key, the bad value and what would be valid.
"""


class BertlabError(Exception):
    """Base class for errors caused by user input."""


class ConfigError(BertlabError):
    """A config value is invalid (unknown name, out of range, inconsistent)."""


class DataError(BertlabError):
    """The data cannot be read or does not match the task (missing file, wrong columns, labels)."""


class ModelError(BertlabError):
    """The model cannot be found or loaded."""
