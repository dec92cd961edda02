"""A run's progress on the terminal: its stages and their timings, on stderr, only when stderr is a TTY.

Why only a TTY: progress is for someone watching. In a file, a pipe, CI or a notebook it would be noise
(a live line is control characters), so nothing is drawn there; every finished stage is still logged at
DEBUG on ``imblab.console.progress`` (``hydra.verbose=imblab.console`` shows it). What a run came to is
its closing summary (:mod:`imblab.console.summary`), printed on stdout whatever stdout is. The jobs of
a parallel sweep draw nothing either (``live=False``): their lines would overwrite each other.

On a TTY: a title line, then one line per finished stage (``  fit        41.2s  5 folds + final fit``);
the running stage is a transient tqdm bar (fold fits, epochs) that its finished line replaces. Log
records written to the console meanwhile go above the bar (tqdm's logging redirect), not through it.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any, TextIO

log = logging.getLogger(__name__)


def is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def duration(seconds: float) -> str:
    """``0.4s``, ``41.2s``, ``3m12s``."""
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes}m{rest:02d}s"


class Stage:
    """The running stage: :meth:`advance` after each counted step (a fold fit, an epoch); ``detail`` is
    what its finished line says."""

    def __init__(self, bar: Any = None) -> None:
        self.bar = bar
        self.detail = ""

    def advance(self, steps: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(steps)


class RunProgress:
    """The stages of one run on ``stream`` (stderr); a context manager around the run.

    ``live``: draw (True), draw nothing (False), or draw when ``stream`` is a terminal (None).
    """

    def __init__(self, title: str, live: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = is_terminal(self.stream) if live is None else live
        self.title = title
        self._exit = contextlib.ExitStack()

    def __enter__(self) -> RunProgress:
        if self.live:
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._exit.enter_context(logging_redirect_tqdm())
            self._line(self.title)
        log.debug("%s", self.title)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._exit.close()

    @contextlib.contextmanager
    def stage(
        self, name: str, total: int | None = None, unit: str = "step", bar: bool = True
    ) -> Iterator[Stage]:
        """Time the block as stage ``name``; ``total`` counted steps show as a bar. ``bar=False`` for a
        stage that draws its own (tuning's trial bar). A stage that raises prints no finished line."""
        start = time.perf_counter()
        stage = Stage(self._bar(name, total, unit) if self.live and bar else None)
        try:
            yield stage
        finally:
            if stage.bar is not None:
                stage.bar.close()
        self.done(name, time.perf_counter() - start, stage.detail)

    def done(self, name: str, seconds: float, detail: str = "") -> None:
        """The line of a finished stage."""
        text = f"  {name:<9}{duration(seconds):>7}  {detail}".rstrip()
        self._line(text)
        log.debug("%s", text.strip())

    def _line(self, text: str) -> None:
        if self.live:
            from tqdm import tqdm

            tqdm.write(text, file=self.stream)

    def _bar(self, name: str, total: int | None, unit: str) -> Any:
        from tqdm import tqdm

        # Without a total there is nothing to count: the stage's name and a clock.
        form = "{desc} ...  {elapsed}" if total is None else None
        return tqdm(
            total=total,
            desc=f"  {name}",
            unit=unit,
            leave=False,
            file=self.stream,
            dynamic_ncols=True,
            bar_format=form,
        )
