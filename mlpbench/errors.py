"""The one exception family that the CLI turns into a one-line error and exit code 2."""


class UsageError(ValueError):
    """Bad input from the user: the message names the bad value."""
