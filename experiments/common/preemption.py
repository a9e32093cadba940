"""Living beside other processes: SIGTERM as a stop request, and a file lock."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading


class StopOnSigterm:
    """Context manager: while active, SIGTERM sets `requested` instead of killing.

    Only the main thread can install signal handlers; elsewhere (e.g. a test
    runner's worker thread) this does nothing and `requested` stays False.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        del signum, frame
        self.requested = True

    def __enter__(self) -> StopOnSigterm:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


@contextlib.contextmanager
def file_lock(path: str):
    """Holds an exclusive lock on `path` (created if needed) across processes."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
