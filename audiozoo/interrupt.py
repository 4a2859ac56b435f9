"""Ctrl-C that stops a long job at a safe point.

A KeyboardInterrupt raised inside XLA (while it compiles or runs a computation) unwinds out of
C++ with the runtime mid-operation: the interpreter can then crash at exit (a segfault after
the "interrupted" message), and a train state donated to the interrupted step is gone. So,
inside `graceful_interrupt()`, the first Ctrl-C only sets a flag that the training loop and the
generation stream poll between steps (`stop_requested()`), and they stop there, saving what
is finished; a second Ctrl-C raises KeyboardInterrupt at once for a user who will not wait.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

_requested = threading.Event()


def stop_requested() -> bool:
    """Whether Ctrl-C was pressed inside the current `graceful_interrupt()` block."""
    return _requested.is_set()


@contextlib.contextmanager
def graceful_interrupt(what: str = "the current step") -> Iterator[None]:
    """Defers the first Ctrl-C to the next `stop_requested()` check; see the module docstring.
    Outside the main thread (where signal handlers cannot be set) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum, frame):
        if _requested.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        _requested.set()
        print(f"\naudiozoo: stopping after {what} (press Ctrl-C again to quit at once)",
              file=sys.stderr, flush=True)

    _requested.clear()
    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _requested.clear()
