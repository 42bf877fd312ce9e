"""What every command-line entry point (`python -m train`, `train.evaluate`, ..., `python -m infer`) does around
its work: one log format, `--log-level`, SIGTERM handled like Ctrl-C, one-line errors and one exit-code
convention. It lives in `infer` because `infer` never imports `train`, and both use it.

Exit codes:
    0  success
    1  failure: the work ran and did not succeed (a Hub upload refused, a full disk, a crash), or a check
       found problems (`train.data check`, `near-copies`)
    2  bad usage or input: a bad flag (argparse), config key or value, data file, path or missing extra

Every error is one logged line naming what and where; `--log-level debug` raises it with its traceback instead.

Example:
    >>> import logging
    >>> run_command(lambda: int("x"), "INFO", logging.getLogger("demo"))
    2
    >>> run_command(lambda: None, "INFO", logging.getLogger("demo"))
    0
"""

from __future__ import annotations

import argparse
import logging
from typing import Callable

from infer.termination import exit_on_sigterm

__all__ = ["BAD_INPUT", "EXIT_FAILURE", "EXIT_OK", "EXIT_USAGE", "LOG_FORMAT", "add_log_level", "run_command",
           "start_command"]

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

# What a user can fix in the command line or its inputs (ValueError covers train's ConfigError and DataError; an
# ImportError is a missing optional extra, whose message says what to install).
BAD_INPUT: tuple[type[BaseException], ...] = (
    ValueError, FileNotFoundError, FileExistsError, NotADirectoryError, IsADirectoryError, PermissionError,
    ImportError,
)


def add_log_level(parser: argparse.ArgumentParser, default: str = "INFO") -> None:
    """Add `--log-level` (debug, info, warning, error; any case) to `parser`."""
    parser.add_argument("--log-level", default=default, type=str.upper, choices=LOG_LEVELS,
                        help=f"logging level (default: {default.lower()}; debug also shows error tracebacks)")


def start_command(log_level: str) -> None:
    """Configure logging at `log_level` and handle SIGTERM like Ctrl-C (temporary outputs are removed)."""
    logging.basicConfig(level=log_level.upper(), format=LOG_FORMAT)
    exit_on_sigterm()


def run_command(work: Callable[[], object], log_level: str, logger: logging.Logger,
                bad_input: tuple[type[BaseException], ...] = BAD_INPUT,
                failures: tuple[type[BaseException], ...] = ()) -> int:
    """Run `work` and turn its outcome into an exit code.

    Args:
        work: the command's work; it may return an exit code (e.g. 1 when a check found problems); any other
            return value (None, the path written, ...) means success.
        log_level: the command's `--log-level`; at DEBUG errors are raised with their traceback.
        logger: where the one-line error goes.
        bad_input: exceptions that mean bad usage or input (exit 2); any other exception is a failure (exit 1).
        failures: expected failures whose message already says what failed (logged as is; other exceptions are
            logged with their type).

    Returns:
        0, 1 or 2 (see the module docstring).
    """
    try:
        status = work()
    except bad_input as exc:
        if log_level.upper() == "DEBUG":
            raise
        logger.error("%s", exc)
        return EXIT_USAGE
    except failures as exc:
        if log_level.upper() == "DEBUG":
            raise
        logger.error("%s", exc)
        return EXIT_FAILURE
    except Exception as exc:  # noqa: BLE001 - every failure is one line; --log-level debug shows the traceback
        if log_level.upper() == "DEBUG":
            raise
        logger.error("%s: %s (--log-level debug shows the traceback)", type(exc).__name__, exc)
        return EXIT_FAILURE
    return status if isinstance(status, int) and not isinstance(status, bool) else EXIT_OK
