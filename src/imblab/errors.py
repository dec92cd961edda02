"""User-facing errors: each message says what went wrong and what to do about it."""

import signal


class ImblabError(ValueError):
    """Bad input or configuration that the user can fix; the CLI prints it without a traceback."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the command: its runs end KILLED, it exits with 128 + the signal number.

    A ``KeyboardInterrupt``, so that everything that cleans up after Ctrl-C (joblib aborting its workers,
    Optuna failing the trial, ``tracked_run``) does the same for SIGTERM.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)  # args stay (signum,): the exception pickles across processes
        self.signum = int(signum)

    def __str__(self) -> str:
        return f"interrupted by {signal.Signals(self.signum).name}"

    @property
    def exit_status(self) -> int:
        return 128 + self.signum
