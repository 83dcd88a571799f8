"""User-facing errors: the CLI prints their message as one line, without a traceback."""


class AdbenchError(Exception):
    """A problem with the user's input or environment, explained in one line."""


class DataError(AdbenchError):
    """A data file is missing, corrupt, or holds values adbench cannot use."""


class ConfigError(AdbenchError):
    """An unknown name, an impossible setting, or a preset that does not parse."""


class MethodFailure(Exception):
    """A method could not produce a result (diverged, empty sideband, ...).

    The harness records it as a failed task with this message and goes on with the scan.
    """
