"""One writer at a time (io/lock.py), proved with real processes: a second writer fails at once
naming the holder, a SIGKILLed holder's lock is taken over, another host's lock goes stale
only without heartbeats, a requeued Slurm task waits for its earlier incarnation."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from deepseg_core.errors import DeepSegError
from deepseg_core.io.lock import Lock, holder_record

HOLD = """
import sys, time
from deepseg_core.io.lock import Lock
with Lock(sys.argv[1], "the test output"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
print("released", flush=True)
"""


def holder(target, seconds=60.0, **env) -> subprocess.Popen:
    """A process that holds the lock of ``target`` for ``seconds`` (started when it says so)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(target), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **env})
    assert proc.stdout.readline().strip() == "held", proc.stderr.read()
    return proc


def take(target, **env) -> subprocess.CompletedProcess:
    """Another process trying to take the lock of ``target`` (and releasing it)."""
    code = ("import sys\nfrom deepseg_core.io.lock import Lock\n"
            "from deepseg_core.errors import DeepSegError\n"
            "try:\n    Lock(sys.argv[1], 'the test output', wait=len(sys.argv) > 2).acquire()\n"
            "except DeepSegError as exc:\n    sys.exit(f'error: {exc}')\nprint('taken')\n")
    args = [sys.executable, "-c", code, str(target)] + (["wait"] if env.pop("wait", 0) else [])
    return subprocess.run(args, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path):
    target = tmp_path / "map.tif"
    first = holder(target)
    try:
        done = take(target)
        assert done.returncode == 1 and "taken" not in done.stdout
        line = done.stderr.strip()
        assert line.startswith(f"error: {target}.lock: the test output is being written by "
                               f"host {socket.gethostname()} pid {first.pid} since ")
        assert len(line.splitlines()) == 1
    finally:
        first.kill()
        first.wait()


@pytest.mark.faults
def test_the_lock_of_a_sigkilled_holder_is_taken_over_and_a_release_removes_it(tmp_path):
    target = tmp_path / "map.tif"
    first = holder(target)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert (tmp_path / "map.tif.lock").exists()  # a kill leaves it
    assert take(target).stdout.strip() == "taken"
    second = holder(target, 0.1)
    assert second.stdout.readline().strip() == "released" and second.wait() == 0
    assert not (tmp_path / "map.tif.lock").exists()


def plant(target, record: dict, age: float):
    """A lock file of another holder, last touched ``age`` seconds ago."""
    path = target.with_name(target.name + ".lock")
    path.write_text(json.dumps(record))
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_another_hosts_lock_goes_stale_only_without_heartbeats(tmp_path):
    target = tmp_path / "shard"
    record = {**holder_record(), "host": "node-that-died", "pid": 4242}
    plant(target, record, age=30)
    refused = take(target)
    assert refused.returncode == 1 and "host node-that-died pid 4242" in refused.stderr
    plant(target, record, age=700)  # no heartbeat for longer than DEEPSEG_LOCK_STALE (600 s)
    assert take(target).stdout.strip() == "taken"
    plant(target, record, age=30)
    assert take(target, DEEPSEG_LOCK_STALE="10").stdout.strip() == "taken"


def test_a_reused_pid_does_not_keep_a_dead_holders_lock(tmp_path):
    target = tmp_path / "store.h5"
    alive = {**holder_record(), "pid": os.getppid(), "started": "1"}  # alive, other start
    plant(target, alive, age=1)
    assert take(target).stdout.strip() == "taken"


def test_a_requeued_slurm_task_waits_for_its_earlier_incarnation(tmp_path):
    target = tmp_path / "part-0001"
    task = {"SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "1", "SLURM_JOB_ID": "78"}
    first = holder(target, 3.0, **task)
    started = time.monotonic()
    done = take(target, wait=0, SLURM_RESTART_COUNT="1", **task)
    assert done.stdout.strip() == "taken" and time.monotonic() - started > 1.5
    assert first.wait() == 0
    other = holder(target, 3.0, **task)
    try:
        refused = take(target, **task)  # the same task, not requeued: a second writer
        assert refused.returncode == 1 and "Slurm job 77_1" in refused.stderr
    finally:
        other.kill()
        other.wait()


def test_the_holder_touches_its_lock(tmp_path):
    target = tmp_path / "model"
    first = holder(target, 60, DEEPSEG_LOCK_HEARTBEAT="0.2")
    try:
        path = tmp_path / "model.lock"
        before = path.stat().st_mtime_ns
        time.sleep(1.0)
        assert path.stat().st_mtime_ns > before
    finally:
        first.kill()
        first.wait()


def test_a_bad_setting_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPSEG_LOCK_STALE", "soon")
    plant(tmp_path / "x", {**holder_record(), "host": "elsewhere"}, age=1)
    with pytest.raises(DeepSegError, match="DEEPSEG_LOCK_STALE: expected a number of seconds "
                                           "> 0, got 'soon'"):
        Lock(tmp_path / "x", "x").acquire()


def test_a_symlink_at_the_lock_name_is_never_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.tif.lock").symlink_to(victim)
    done = take(tmp_path / "out.tif")
    assert done.returncode == 1 and victim.read_text() == "precious"
