"""Output files that are never half-written, and one training run per workdir.

Every finished output (audio, JSON, PNG, .npy, text) is written to a temporary file beside
its destination, `.NAME.RANDOM.tmp`, and renamed over it when complete: the rename is atomic
on one filesystem, so a reader (or a run killed mid-write) sees the old file or the whole new
one. A process killed between the two steps leaves its temporary behind; every temporary has
that one name pattern, so the next run in the same folder can find and remove it.

A training run holds an exclusive `flock` on `WORKDIR/.lock` for its whole life. The kernel
drops the lock when the process ends however it ends (Ctrl-C, crash, SIGKILL), so a lock file
left by a dead run is never mistaken for a live one; the file records the holder's PID and
host for the message a second run gets.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from audiozoo.config import ConfigError

TEMP_SUFFIX = ".tmp"
LOCK_FILE = ".lock"


class WorkdirBusyError(ConfigError):
    """Another live process is training in the same workdir."""


class NotWritableError(ConfigError):
    """A folder or file that audiozoo must write cannot be written."""


def not_writable(error: OSError, path: str | os.PathLike | None = None) -> NotWritableError:
    """A message naming the path (default: the error's) and the OS's reason."""
    path = path or error.filename
    reason = error.strerror or str(error)
    return NotWritableError(f"cannot write {path}: {reason}. Check the folder's permissions, "
                            "that its filesystem is not read-only or full, or choose another "
                            "--workdir / --out.")


def make_dir(path: str | os.PathLike) -> Path:
    """Creates `path` (and parents) if needed; a NotWritableError names it if it can't."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise not_writable(e, path) from None
    return path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path beside `path` to write; on success it replaces `path`, on any
    exception (KeyboardInterrupt included) it is removed and `path` is left as it was."""
    path = Path(path)
    tmp = temporary_name_for(path)
    try:
        yield tmp
        move_into_place(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Readers see the old file or the new one, never half of it."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def move_into_place(tmp: str | os.PathLike, path: str | os.PathLike) -> None:
    """Renames a finished temporary over `path`, atomically."""
    path = Path(path)
    # mkstemp makes the file owner-only: keep the replaced file's mode, else the usual one.
    os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask())
    os.replace(tmp, path)


def temporary_name_for(path: str | os.PathLike) -> Path:
    """A new empty file beside `path` named in the temporary pattern, its folder created; a
    NotWritableError names the folder if it cannot be written."""
    path = Path(path)
    make_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    except OSError as e:
        raise not_writable(e, path) from None
    os.close(fd)
    return Path(tmp)


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Deletes the `.NAME.RANDOM.tmp` files a killed writer left in `directory` (not below it);
    returns what was removed. Call it only where no other process is writing."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.glob(f".*{TEMP_SUFFIX}") if p.is_file()]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class WorkdirLock:
    """Exclusive lock on a workdir for one training run; use as a context manager."""

    def __init__(self, workdir: str | os.PathLike):
        self.workdir = Path(workdir)
        self.path = self.workdir / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> WorkdirLock:
        make_dir(self.workdir)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise not_writable(e, self.path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise WorkdirBusyError(
                f"{self.workdir} is being trained by another process (PID and host: {holder}); "
                "two runs in one workdir would interleave their checkpoints and metrics. Wait "
                "for it to finish or stop it, or use another --workdir.") from None
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            # Some network filesystems cannot lock: run, but say that nothing guards the workdir.
            warnings.warn(f"cannot lock {self.path} ({e.strerror}); make sure no other run "
                          "uses this workdir", stacklevel=2)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
