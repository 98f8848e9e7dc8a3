"""A real single-node Slurm for the tests (root on Debian): install, configure, start, stop.

Follows ../shared/docs/SLURM.md. Its configuration, state, logs and pid files live in a
private folder and it listens on free ports, so it never touches /etc/slurm or another
Slurm on the machine. Only the daemons started here are stopped, by their pid files.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
DAEMONS = ["/usr/sbin/slurmctld", "/usr/sbin/slurmd", "/usr/sbin/munged"]
DONE = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
        "BOOT_FAIL", "DEADLINE", "PREEMPTED"}


def installed() -> bool:
    """Whether the Slurm daemons, munged and sbatch are there."""
    return all(Path(d).exists() for d in DAEMONS) and shutil.which("sbatch") is not None


def install() -> str | None:
    """Install the Slurm packages if missing; returns why not, or None when they are there."""
    if installed():
        return None
    if os.geteuid() != 0:
        return "Slurm is not installed and installing it needs root"
    if shutil.which("apt-get") is None:
        return "Slurm is not installed and there is no apt-get to install it"
    policy, created = Path("/usr/sbin/policy-rc.d"), False
    if not policy.exists():  # keeps the packages' scripts from starting the daemons
        policy.write_text("#!/bin/sh\nexit 101\n")
        policy.chmod(0o755)
        created = True
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
        if done.returncode != 0:  # stale package lists: update once and retry
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, env=env,
                           timeout=600)
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    except subprocess.TimeoutExpired:
        return "Slurm packages not installable: apt-get took over 10 minutes"
    finally:
        if created:
            policy.unlink()
    if done.returncode != 0 or not installed():
        reason = (done.stderr.strip().splitlines() or ["apt-get failed"])[-1]
        return f"Slurm packages not installable: {reason}"
    return None


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie left for an absent reaper counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_conf(folder: Path, host: str) -> str:
    """The settings of SLURM.md, with state, logs and pid files under ``folder``."""
    with open("/proc/meminfo") as handle:
        fields = dict(line.split(":", 1) for line in handle)
    memory = int(int(fields["MemAvailable"].split()[0]) / 1024 * 0.8)
    return "\n".join([
        "ClusterName=deepsegtest", f"SlurmctldHost={host}(127.0.0.1)",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        "SlurmUser=root", "AuthType=auth/munge", "MpiDefault=none",
        f"StateSaveLocation={folder}/slurmctld", f"SlurmdSpoolDir={folder}/slurmd",
        f"SlurmctldPidFile={folder}/slurmctld.pid", f"SlurmdPidFile={folder}/slurmd.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log", f"SlurmdLogFile={folder}/slurmd.log",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
        "DefMemPerCPU=1024", "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none", "JobCompType=jobcomp/none",
        "MailProg=/bin/true", "SchedulerParameters=batch_sched_delay=0", "ReturnToService=2",
        "MinJobAge=300",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} RealMemory={memory} "
        "State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""])


class Cluster:
    """A running single-node Slurm; clients find it through ``SLURM_CONF``."""

    def __init__(self, folder: Path):
        self.folder, self.host = folder, socket.gethostname().split(".")[0]
        self.conf = folder / "slurm.conf"
        self.started: list[Path] = []  # pid files of the daemons started here

    def start(self) -> None:
        for sub in ("slurmctld", "slurmd"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(slurm_conf(self.folder, self.host))
        os.environ["SLURM_CONF"] = str(self.conf)
        self._start_munge()
        self._daemon(["/usr/sbin/slurmctld", "-f", str(self.conf)], "slurmctld.pid")
        self._daemon(["/usr/sbin/slurmd", "-f", str(self.conf), "-N", self.host], "slurmd.pid")
        deadline = time.monotonic() + 60
        while self.node_state() != "idle":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Slurm node is {self.node_state()!r}, not idle, after "
                                   f"60 s:\n{self.logs()}")
            time.sleep(0.5)

    def _start_munge(self) -> None:
        if subprocess.run(["munge", "-n"], capture_output=True).returncode == 0:
            return  # a munged is running already: use it, leave it alone
        run = Path("/run/munge")
        run.mkdir(exist_ok=True)
        shutil.chown(run, "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], check=True)
        self.started.append(run / "munged.pid")

    def _daemon(self, command: list[str], pidfile: str) -> None:
        subprocess.run(command, check=True, capture_output=True, timeout=30)
        self.started.append(self.folder / pidfile)

    def node_state(self) -> str:
        """The node's state in sinfo: idle, mixed, allocated, down..."""
        done = subprocess.run(["sinfo", "-h", "-n", self.host, "-o", "%T"],
                              capture_output=True, text=True)
        return done.stdout.strip()

    def job_states(self, job_id: str) -> list[str]:
        """States of a job, or of every task of an array job."""
        done = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True,
                              text=True)
        return [f.split("=", 1)[1] for line in done.stdout.splitlines()
                for f in line.split() if f.startswith("JobState=")]

    def wait(self, ids: list[str], timeout: float) -> dict[str, list[str]]:
        """Wait until every job ended (bounded); returns job -> states of its tasks."""
        deadline = time.monotonic() + timeout
        while True:
            states = {i: self.job_states(i) for i in ids}
            if all(s and set(s) <= DONE for s in states.values()):
                return states
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs not done after {timeout} s: {states}")
            time.sleep(1)

    def logs(self) -> str:
        """The ends of the daemons' logs, for failure messages."""
        return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}"
                         for p in sorted(self.folder.glob("*.log")))

    def stop(self) -> None:
        """Cancel leftover jobs, then stop the daemons started here (newest first)."""
        subprocess.run(["scancel", "--user", str(os.getuid())], capture_output=True)
        for pidfile in reversed(self.started):
            try:
                pid = int(pidfile.read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
            except (OSError, ValueError, IndexError):
                continue
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and alive(pid):
                time.sleep(0.2)
        os.environ.pop("SLURM_CONF", None)
