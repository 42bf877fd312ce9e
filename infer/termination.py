"""SIGTERM handled like Ctrl-C: every command that writes calls `exit_on_sigterm()` first.

Python turns SIGINT into KeyboardInterrupt, which unwinds the stack and runs the cleanup of
`infer.atomic`'s context managers; SIGTERM (what `kill`, schedulers and container runtimes send) by
default ends the process on the spot and leaves their temporary files behind. The handler makes it
raise SystemExit instead, so the same cleanup runs and the exit status is 143 (128 + SIGTERM).
"""

from __future__ import annotations

import signal
import threading

__all__ = ["exit_on_sigterm"]


def _raise_system_exit(signum: int, frame) -> None:
    raise SystemExit(128 + signum)


def exit_on_sigterm() -> None:
    """Install the SIGTERM handler (main thread only: elsewhere Python cannot install one, and does nothing)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_system_exit)
