"""Ctrl-C and SIGTERM at the edges of a long run: stop training early, never stop a write.

Training catches KeyboardInterrupt and ends early with what it has (the report is then
marked partial). :func:`terminate_as_interrupt` makes SIGTERM (what ``kill`` and job
schedulers send) do the same. :func:`interrupts_held` defers both signals while files are
written, so that a second Ctrl-C cannot leave a run with weights but no report.

Signal handlers can only be set from the main thread; elsewhere both are no-ops.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def terminate_as_interrupt():
    """Inside, SIGTERM raises KeyboardInterrupt, as Ctrl-C does."""
    if not _in_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def interrupts_held(note: str):
    """Inside, Ctrl-C and SIGTERM are held: recorded, ``note`` printed once on stderr.

    Yields the list of the signals received; the caller decides what they mean once the
    block is done (the run was written whole).
    """
    received: list[int] = []
    if not _in_main_thread():
        yield received
        return

    def hold(signum, frame):
        if not received:
            print(note, file=sys.stderr, flush=True)
        received.append(signum)

    signals = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, hold) for sig in signals}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
