"""Errors that carry a user-facing message: what went wrong, where, and what to do."""


class DataError(ValueError):
    """Input data cannot be used; the message names the file, column/row/site and the fix."""


class ConfigError(ValueError):
    """The workflow configuration is inconsistent; the message names the key."""


class ModelError(ValueError):
    """A configured model cannot be built; the message names the model and the problem."""
