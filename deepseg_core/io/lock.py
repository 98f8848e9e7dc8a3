"""One writer at a time: a lock file beside what is written (a prediction shard's partial, a
published output, a store, a model folder), on Lustre, GPFS and NFS as on a local disk.

Taking the lock creates ``<target>.lock`` with ``O_CREAT | O_EXCL`` (atomic on each of those
filesystems, NFS v3 and later included). It records its holder: host, pid and the process's
start time, the Slurm job (array task, restart count), when, and a random token. While it works
the holder touches the file every :data:`HEARTBEAT` seconds (``DEEPSEG_LOCK_HEARTBEAT``).

A lock is stale, and is taken over, when

- its holder ran on this host and that process is gone (no such pid, or a pid reused by a
  process started at another time), or
- its holder ran on another host and the file was not touched for ``DEEPSEG_LOCK_STALE``
  seconds (default :data:`STALE`): a node that died stopped touching it.

Taking over renames the stale file away before creating a new one (a rename happens once),
so two processes that both found it stale cannot both take it. A live holder makes a second
writer fail at once with one line naming the holder, or wait where the caller asks to (two
experiments building one store), and always where the holder is an earlier incarnation of this
very Slurm task: Slurm requeues a task whose node it lost, which may still be writing.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import threading
import time
from pathlib import Path

from ..errors import DeepSegError, io_error

log = logging.getLogger(__name__)

HEARTBEAT = 30.0  # seconds between touches of a held lock (DEEPSEG_LOCK_HEARTBEAT)
STALE = 600.0  # seconds without a touch after which another host's lock is stale
STALE_VAR, HEARTBEAT_VAR = "DEEPSEG_LOCK_STALE", "DEEPSEG_LOCK_HEARTBEAT"
WAIT_NOTE = 600.0  # seconds between 'still waiting' lines


def _start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: starttime


def _slurm_task() -> str | None:
    job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{job}_{task}" if job and task else job


def holder_record() -> dict:
    """Who this process is, as a lock records it."""
    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": _start_time(os.getpid()), "slurm": _slurm_task(),
            "restarts": int(os.environ.get("SLURM_RESTART_COUNT") or 0),
            "since": time.time(), "token": secrets.token_hex(8)}


def describe(holder: dict) -> str:
    """The holder in words: host, pid, Slurm job, since when."""
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    job = f", Slurm job {holder['slurm']}" if holder.get("slurm") else ""
    return f"host {holder.get('host', '?')} pid {holder.get('pid', '?')}{job} since {when}"


def _seconds(var: str, default: float) -> float:
    try:
        value = float(os.environ.get(var, default))
    except ValueError:
        value = -1.0
    if not value > 0:
        raise DeepSegError(f"{var}: expected a number of seconds > 0, got {os.environ[var]!r}")
    return value


def _stale_after() -> float:
    return _seconds(STALE_VAR, STALE)


def judge(holder: dict, age: float) -> str:
    """'stale', 'requeued' (an earlier incarnation of this Slurm task, alive as far as we can
    tell) or 'live' for the holder of a lock last touched ``age`` seconds ago."""
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        started = _start_time(holder["pid"])
        alive = _alive(holder["pid"])
        if not alive or (started and holder.get("started") and started != holder["started"]):
            return "stale"
        if holder["pid"] == os.getpid():
            return "live"  # this very process holds it (a second Lock on one target)
    elif age > _stale_after():
        return "stale"
    mine = holder_record()
    if holder.get("slurm") and holder["slurm"] == mine["slurm"] and \
            int(holder.get("restarts", 0)) < mine["restarts"]:
        return "requeued"
    return "live"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


class Lock:
    """``with Lock(target, what):`` the one writer of ``target`` (a file or folder path);
    ``wait=True`` waits for a live holder instead of failing."""

    def __init__(self, target, what: str, wait: bool = False):
        self.target, self.what, self.wait = Path(target), what, wait
        self.path = self.target.with_name(self.target.name + ".lock")
        self.record: dict | None = None
        self._every = HEARTBEAT
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> Lock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        self._every, noted = _seconds(HEARTBEAT_VAR, HEARTBEAT), 0.0
        while True:
            if self._create():
                return
            holder, age = self._read()
            state = "live" if holder is None and age < _stale_after() else (
                "stale" if holder is None else judge(holder, age))
            if state == "stale":
                self._take_away(holder)
                continue
            shown = describe(holder) if holder else "a process that is writing its record"
            if not (self.wait or state == "requeued"):
                raise DeepSegError(
                    f"{self.path}: {self.what} is being written by {shown}; wait for it to "
                    f"finish (a lock of a dead process is taken over by itself: on this host "
                    f"at once, from another host after {_stale_after():.0f} s without a "
                    "heartbeat)")
            if time.monotonic() - noted > WAIT_NOTE:
                why = "an earlier run of this Slurm task" if state == "requeued" else shown
                log.info(f"waiting for {self.what} ({self.path}), held by {why}")
                noted = time.monotonic()
            time.sleep(min(self._every, 5.0))

    def _create(self) -> bool:
        record = holder_record()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise io_error(self.path, exc, f"cannot write the lock of {self.what}") from None
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise io_error(self.path, exc, f"cannot write the lock of {self.what}") from None
        try:
            os.write(fd, json.dumps(record).encode())
            os.fsync(fd)
        except OSError as exc:  # a full disk: no lock left behind that names no one
            os.close(fd)
            self.path.unlink(missing_ok=True)
            raise io_error(self.path, exc, f"cannot write the lock of {self.what}") from None
        os.close(fd)
        self.record = record
        self._beat = threading.Thread(target=self._heartbeat, daemon=True,
                                      name="deepseg-lock-heartbeat")
        self._beat.start()
        return True

    def _read(self) -> tuple[dict | None, float]:
        """The holder's record (None while it is being written or unreadable) and the
        seconds since the lock was last touched."""
        try:
            age = time.time() - os.stat(self.path, follow_symlinks=False).st_mtime
        except FileNotFoundError:
            return None, 0.0
        except OSError as exc:
            raise io_error(self.path, exc, f"cannot read the lock of {self.what}") from None
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None, age
        return (holder if isinstance(holder, dict) else None), age

    def _take_away(self, holder: dict | None) -> None:
        """Rename the stale lock away (only one process can), unless it changed meanwhile."""
        aside = self.path.with_name(f"{self.path.name}.stale-{secrets.token_hex(4)}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # another process took it away first
        try:
            taken = json.loads(aside.read_text())
        except (OSError, ValueError):
            taken = None
        if holder is not None and (taken or {}).get("token") != holder.get("token"):
            try:  # a fresh lock replaced the stale one between our look and the rename
                os.link(aside, self.path)
            except OSError:
                pass
        else:
            who = describe(holder) if holder else "a holder that never wrote its record"
            log.info(f"taking over {self.path} from {who}, which is gone")
        aside.unlink(missing_ok=True)

    def _heartbeat(self) -> None:
        while not self._stop.wait(self._every):
            try:
                os.utime(self.path, follow_symlinks=False)
            except OSError:
                pass  # the next touch tries again; a lost lock is seen at release

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if it is still this one's."""
        if self.record is None:
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
        holder, _ = self._read()
        if holder is not None and holder.get("token") == self.record["token"]:
            self.path.unlink(missing_ok=True)
        self.record = None
