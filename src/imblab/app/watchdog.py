"""``python -m imblab.app.watchdog <pid>:<start>``: started by every imblab command (``imblab.app.main``);
waits for that command to end, then kills the workers it left (``imblab.process``)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence

from imblab.process import sweep, wait_for_end


def main(argv: Sequence[str]) -> int:
    # Ctrl-C and a closed terminal reach the whole process group: they must not stop the one process
    # that cleans up after the others.
    for signum in (signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    mark = argv[0]
    pid, _, start = mark.partition(":")
    wait_for_end(int(pid), start)
    sweep(mark)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
