"""One root exception, with branches named after where a failure happened.

Only the CLI turns these into exit codes (see README, "Exit codes").
"""


class KatasterError(Exception):
    """Root of every error the library raises on purpose."""

    exit_code = 1


class UsageError(KatasterError):
    """The caller asked for something that cannot be done as asked."""

    exit_code = 2


class ConfigError(UsageError):
    """The configuration file or an environment override is invalid."""


class SourceError(KatasterError):
    """A source file is missing, unreadable, unsafe or not what it claims to be."""

    def __init__(self, path, message, feature=None, hint=None):
        self.path = str(path)
        self.message = message
        self.feature = feature
        self.hint = hint
        text = f"{self.path}"
        if feature is not None:
            text += f", feature {feature}"
        text += f": {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)

    def __reduce__(self):
        # Picklable with its parts, so that an error raised in an import worker process
        # reaches the run unchanged.
        return type(self), (self.path, self.message, self.feature, self.hint)


class CRSError(SourceError):
    """A coordinate reference system is missing, unknown or cannot be transformed."""


class SchemaError(SourceError):
    """A source's layers or fields do not fit the chosen profile."""


class DatabaseError(KatasterError):
    """The database could not be reached, prepared or written."""


class LockTimeout(DatabaseError):
    """Another import held the import lock longer than the configured timeout."""

    exit_code = 3


class ValidationFailed(KatasterError):
    """Validation found `error` findings and --strict was given."""

    exit_code = 4


class PluginError(UsageError):
    """An importer, exporter or stage name is unknown or cannot be loaded."""
