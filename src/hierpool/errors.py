"""Errors that carry a user-facing message: what went wrong, where, and what to do."""


class DataError(ValueError):
    """Input data cannot be used; the message names the file, column/row/site and the fix.

    ``details`` (optional) is a long listing (every site, every row) that belongs in the job's
    log rather than in the message.
    """

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.details = details


class ConfigError(ValueError):
    """The workflow configuration is inconsistent; the message names the key."""


class ModelError(ValueError):
    """A configured model cannot be built; the message names the model and the problem."""
