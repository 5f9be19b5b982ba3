"""One process per run folder: an advisory lock on ``DIR/.orpr.lock``.

:func:`lock_run_dir` takes an exclusive ``fcntl.flock`` on the lock file without waiting
and writes the holder's process id, host and start time into it. The kernel drops the
lock when the holder's file descriptor closes: on :meth:`RunLock.release`, on any exit
of the process, and on a crash or ``SIGKILL``; the file left behind by a crash is stale
and the next process takes the lock over. A second process (or a second lock in the
same process) on a held folder gets :class:`RunDirInUse` at once.

``flock`` is advisory (it binds only processes that ask for it) and works on local
disks and on NFS (Linux emulates it with NFS byte-range locks); it needs a POSIX system.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from datetime import datetime
from pathlib import Path

__all__ = ["LOCK_NAME", "RunDirInUse", "RunLock", "lock_run_dir"]

#: Name of the lock file inside a run folder.
LOCK_NAME = ".orpr.lock"

# A holder writes its id right after taking the lock; a reader that comes in between
# retries this long before naming an unknown holder.
_READ_TRIES, _READ_PAUSE_S = 20, 0.025


class RunDirInUse(RuntimeError):
    """A run folder is locked by another process (or another lock of this one).

    Attributes:
        folder: the run folder.
        pid: the holder's process id (None if it could not be read).
        since: when the holder took the lock, ISO 8601 local time (or None).
        host: the holder's host name (or None).
    """

    def __init__(self, folder: Path, pid: int | None, since: str | None,
                 host: str | None = None):
        self.folder, self.pid, self.since, self.host = folder, pid, since, host
        who = f"process {pid}" if pid is not None else "another process"
        when = f" since {since}" if since else ""
        where = f" on host {host}" if host and host != socket.gethostname() else ""
        super().__init__(
            f"{folder} is in use by {who}{when}{where}; wait for it to finish or stop it, "
            "then run the command again (a run folder takes one process at a time)"
        )


class RunLock:
    """A held lock on a run folder; a context manager that releases it on exit.

    Attributes:
        folder: the run folder.
        path: the lock file.
    """

    def __init__(self, folder: Path, path: Path, fd: int):
        self.folder, self.path = folder, path
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Releases the lock (closing the descriptor drops it); a no-op when released.

        The lock file stays: deleting it could let a third process lock a new file while
        a second one still holds the old, unlinked one.
        """
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:  # a forgotten lock goes with its object, as with a file
        self.release()


def _holder(path: Path) -> dict:
    """What the holder wrote into the lock file (empty if nothing readable yet)."""
    for _ in range(_READ_TRIES):
        try:
            info = json.loads(path.read_text() or "null")
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and "pid" in info:
            return info
        time.sleep(_READ_PAUSE_S)
    return {}


def lock_run_dir(folder: str | os.PathLike) -> RunLock:
    """Locks the run folder ``folder`` (which must exist) for this process.

    Args:
        folder: the run folder.

    Returns:
        The held lock; release it with :meth:`RunLock.release` or a ``with`` block.

    Raises:
        RunDirInUse: if another process (or another :class:`RunLock` of this process)
            holds the folder; the message names its process id and since when.
        OSError: if the lock file cannot be created (e.g. a read-only folder).
    """
    folder = Path(folder)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        info = _holder(path)
        raise RunDirInUse(folder, info.get("pid"), info.get("since"), info.get("host")) from None
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return RunLock(folder, path, fd)
