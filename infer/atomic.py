"""Atomic output: write into a temporary sibling, rename into place on success, remove it on failure.

Every command that writes a file or a directory goes through these helpers, so a reader never sees a
half-written output and an error, Ctrl-C or SIGTERM (see `infer.termination`) leaves nothing behind:

    with atomic_file("out.jsonl") as fh:      # fh writes .out.jsonl.<random>.tmp in the same directory
        fh.write(...)                         # renamed to out.jsonl when the block ends normally
    with atomic_dir("runs/x") as staging:     # staging is .x.<random>.tmp beside runs/x
        (staging / "a.json").write_text(...)  # swapped in with renames; an old runs/x is removed after

The temporary lives in the target's own directory, so the final rename never crosses a file system.
`check_output_path` validates a user's output path before any expensive work, naming that path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Callable, Iterator

__all__ = ["atomic_dir", "atomic_file", "check_output_path", "replace_dir"]


def _umask() -> int:
    """The process umask, read without changing it (Linux); 0o022 where it cannot be read."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def check_output_path(path: str | os.PathLike, what: str = "output file") -> Path:
    """Raise a clear error if `path` cannot be written as a file: it is a directory, or its directory is missing.

    Example:
        >>> check_output_path("/")  # doctest: +IGNORE_EXCEPTION_DETAIL
        Traceback (most recent call last):
        IsADirectoryError: output file / is a directory; name a file inside it, e.g. /out.jsonl
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a directory; name a file inside it, e.g. {path / 'out.jsonl'}")
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"cannot write {what} {path}: its directory {parent} does not exist (create it first)")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"cannot write {what} {path}: no write permission in {parent}")
    return path


def report_stale_temporaries(path: str | os.PathLike, older_than_s: float = 600.0) -> list[Path]:
    """Remove the temporary files that `atomic_file` left beside `path` when a process writing it was killed
    (SIGKILL, power loss) more than `older_than_s` ago, with a warning naming them; return them.

    Younger ones may belong to a process still writing `path`: they are named in the warning but kept.
    """
    import logging
    import time

    path = Path(path)
    if not path.parent.is_dir():
        return []
    stale = sorted(path.parent.glob(f".{glob_escape(path.name)}.*.tmp"))
    removed = []
    for tmp in stale:
        with contextlib.suppress(FileNotFoundError):
            if time.time() - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed.append(tmp)
    if stale:
        kept = [t for t in stale if t not in removed]
        logging.getLogger(__name__).warning(
            "Temporary file(s) of an interrupted earlier write of %s: removed %s%s", path,
            ", ".join(t.name for t in removed) or "none",
            f"; kept (recent, maybe another process still writing): {', '.join(t.name for t in kept)}" if kept else "")
    return removed


def glob_escape(name: str) -> str:
    import glob

    return glob.escape(name)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Yield a handle on a temporary file beside `path`; rename it to `path` if the block succeeds.

    On any exception (KeyboardInterrupt and SystemExit included) the temporary file is removed and
    an existing `path` keeps its old content.

    Args:
        path: the final file.
        mode: `"w"` (text) or `"wb"` (binary).
        encoding: text encoding (ignored in binary mode).
    """
    path = check_output_path(path)
    tmp = None
    try:  # from before the temporary exists: a signal between its creation and the `try` would leave it behind
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())  # mkstemp: 0600
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def replace_dir(staging: str | os.PathLike, path: str | os.PathLike,
                keep_existing: Callable[[Path], bool] | None = None) -> Path:
    """Move the finished directory `staging` to `path` with renames only.

    An existing `path` is renamed aside first and removed after the swap. If `keep_existing(path)` is
    true for an existing `path` (another process published a valid copy first), `staging` is discarded
    instead. Returns `path`.
    """
    staging, path = Path(staging), Path(path)
    for _ in range(3):  # another process may publish between our rename-aside and our rename
        try:
            os.rename(staging, path)  # succeeds if path is missing (or an empty directory)
            return path
        except OSError:
            if not path.exists():
                raise
        if keep_existing is not None and keep_existing(path):
            shutil.rmtree(staging, ignore_errors=True)
            return path
        trash = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
        moved = False
        with contextlib.suppress(FileNotFoundError):  # someone else may have moved it already
            os.rename(path, trash / "old")
            moved = True
        try:
            os.rename(staging, path)
        except OSError:
            if moved and not path.exists():
                os.rename(trash / "old", path)  # put the old one back before giving up on this try
            continue
        finally:
            if not (trash / "old").exists() or path.exists():
                shutil.rmtree(trash, ignore_errors=True)
        return path
    raise OSError(f"could not move {staging} into place as {path}: it keeps being replaced")


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, keep_existing: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield an empty staging directory beside `path`; swap it in as `path` if the block succeeds.

    On any exception the staging directory is removed and an existing `path` is left as it was.
    `keep_existing`: see `replace_dir`.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} exists and is not a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it private
        replace_dir(staging, path, keep_existing)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


class DiskFullError(OSError):
    """A write failed because the file system is full; the message names the path, in one line."""


_FULL_DISK_MARKERS = ("no space left", "file write failed", "unexpected pos")  # OSError / torch.save's RuntimeError


def _free_bytes(path: Path) -> int | None:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free
    return None


@contextlib.contextmanager
def full_disk_said_plainly(path: str | os.PathLike, low_bytes: int = 64 * 2**20) -> Iterator[None]:
    """Re-raise a write that failed for want of space (errno ENOSPC, or torch.save's `unexpected pos` /
    `file write failed` RuntimeError on a file system with under `low_bytes` left) as one `DiskFullError`
    line naming `path`; any other error passes unchanged.

    Example:
        >>> with full_disk_said_plainly("runs/x"):  # doctest: +IGNORE_EXCEPTION_DETAIL
        ...     raise OSError(errno.ENOSPC, "No space left on device")
        Traceback (most recent call last):
        DiskFullError: [Errno 28] no space left on device while writing runs/x: free some space, then run again
    """
    path = Path(path)
    try:
        yield
    except DiskFullError:
        raise
    except (OSError, RuntimeError) as exc:
        text = str(exc).lower()
        full = getattr(exc, "errno", None) == errno.ENOSPC or (
            any(m in text for m in _FULL_DISK_MARKERS) and (_free_bytes(path) or 0) < low_bytes)
        if not full:
            raise
        raise DiskFullError(errno.ENOSPC, f"no space left on device while writing {path}: free some space, then "
                                          "run again") from None
