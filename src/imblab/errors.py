"""User-facing errors: each message says what went wrong and what to do about it."""


class ImblabError(ValueError):
    """Bad input or configuration that the user can fix; the CLI prints it without a traceback."""
