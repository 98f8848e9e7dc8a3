"""A real Slurm for the tests (root on Debian): install, configure, start, stop.

Follows ../shared/docs/SLURM.md. Its configuration, state, logs and pid files live in a
private folder and it listens on free ports, so it never touches /etc/slurm or another
Slurm on the machine. Only the daemons started here are stopped, by their pid files.

One node by default. With ``nodes=2`` or more, each node is a ``slurmd -N NAME`` of its own
(Debian's slurm-wlm runs several slurmd per host) inside a network namespace of its own
(netns.py): its own address, ports and host names, so that the workers of a job step on two
nodes may listen on the same port, as SlurmClusterResolver has them do. Tasks are bound to
their CPUs by task/affinity (sched_setaffinity; no cgroups).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.netns import Nodes, alive

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


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def slurm_conf(folder: Path, host: str, nodes: Nodes | None = None) -> str:
    """The settings of SLURM.md, with state, logs and pid files under ``folder``; with
    ``nodes``, one node per namespace (``%n`` in a path: the node's name)."""
    with open("/proc/meminfo") as handle:
        fields = dict(line.split(":", 1) for line in handle)
    memory = int(int(fields["MemAvailable"].split()[0]) / 1024 * 0.8)
    if nodes is None:
        controller, task, names = "127.0.0.1", "task/none", [host]
        lines = [f"NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} "
                 f"RealMemory={memory} State=UNKNOWN"]
    else:
        controller, task, names = nodes.controller, "task/affinity", nodes.names
        lines = [f"NodeName={name} NodeHostname={name} NodeAddr={nodes.address[name]} "
                 f"CPUs={os.cpu_count()} RealMemory={memory // len(names)} State=UNKNOWN"
                 for name in names]
    node = "%n" if nodes else ""
    return "\n".join([
        "ClusterName=deepsegtest", f"SlurmctldHost={host}({controller})",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        "SlurmUser=root", "AuthType=auth/munge", "MpiDefault=none",
        f"StateSaveLocation={folder}/slurmctld", f"SlurmdSpoolDir={folder}/slurmd{node}",
        f"SlurmctldPidFile={folder}/slurmctld.pid", f"SlurmdPidFile={folder}/slurmd{node}.pid",
        f"SlurmctldLogFile={folder}/slurmctld.log", f"SlurmdLogFile={folder}/slurmd{node}.log",
        "ProctrackType=proctrack/linuxproc", f"TaskPlugin={task}",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core_Memory",
        "DefMemPerCPU=1024", "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none", "JobCompType=jobcomp/none",
        "MailProg=/bin/true", "SchedulerParameters=batch_sched_delay=0", "ReturnToService=2",
        "MinJobAge=300", *lines,
        f"PartitionName=debug Nodes={','.join(names)} Default=YES MaxTime=INFINITE State=UP",
        ""])


class Cluster:
    """A running Slurm of ``nodes`` nodes; clients find it through ``SLURM_CONF``."""

    def __init__(self, folder: Path, nodes: int = 1):
        self.folder, self.host = folder, socket.gethostname().split(".")[0]
        self.conf = folder / "slurm.conf"
        self.started: list[Path] = []  # pid files of the daemons started here
        self.nodes = Nodes([f"node{i + 1}" for i in range(nodes)]) if nodes > 1 else None
        self.names = self.nodes.names if self.nodes else [self.host]
        self.before = os.environ.get("SLURM_CONF")  # another cluster's, given back at stop()

    def start(self) -> None:
        node = "%n" if self.nodes else ""
        for sub in ["slurmctld", *(f"slurmd{node.replace('%n', n)}" for n in self.names)]:
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        if self.nodes:
            self.nodes.create()
        self.conf.write_text(slurm_conf(self.folder, self.host, self.nodes))
        os.environ["SLURM_CONF"] = str(self.conf)
        self._start_munge()
        self._daemon(["/usr/sbin/slurmctld", "-f", str(self.conf)], "slurmctld.pid")
        for name in self.names:
            slurmd = ["/usr/sbin/slurmd", "-f", str(self.conf), "-N", name]
            self._daemon(self.nodes.command(name, slurmd) if self.nodes else slurmd,
                         f"slurmd{node.replace('%n', name)}.pid")
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
        """The nodes' state in sinfo (idle, mixed, allocated, down...), when they share one."""
        done = subprocess.run(["sinfo", "-h", "-N", "-n", ",".join(self.names), "-o", "%T"],
                              capture_output=True, text=True)
        states = set(done.stdout.split())
        return states.pop() if len(states) == 1 and len(done.stdout.split()) == len(
            self.names) else " ".join(done.stdout.split())

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
        if self.nodes:  # job steps left behind end with their namespaces
            self.nodes.remove()
        if self.before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = self.before
