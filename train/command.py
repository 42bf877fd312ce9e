"""What every `python -m train...` command does around its work: logging, SIGTERM, one-line errors.

    >>> import logging
    >>> run_command(lambda: int("x"), "INFO", (ValueError,), logging.getLogger("demo"))
    2

An expected error (a bad config, data file, path or value) is logged as one line naming what and where,
and the command exits with status 2; `--log-level debug` raises it with its traceback instead.
"""

from __future__ import annotations

import logging
from typing import Callable

from infer.termination import exit_on_sigterm

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def start_command(log_level: str, fmt: str = LOG_FORMAT) -> None:
    """Configure logging at `log_level` and handle SIGTERM like Ctrl-C (temporary outputs are removed)."""
    logging.basicConfig(level=log_level.upper(), format=fmt)
    exit_on_sigterm()


def run_command(work: Callable[[], object], log_level: str, errors: tuple[type[BaseException], ...],
                logger: logging.Logger) -> int:
    """Run `work`; 0 when it returns, 2 (one logged line) when it raises one of `errors`."""
    try:
        work()
    except errors as exc:
        if log_level.upper() == "DEBUG":
            raise
        logger.error("%s", exc)
        return 2
    return 0
