"""Network namespaces as the nodes of a test cluster on one machine (root; ``ip netns``).

Each node is a namespace with its own address, its own ports and its own /etc/hosts
(``/etc/netns/<namespace>/hosts`` bound over it in a mount namespace of its own), joined to
the machine by a veth pair on one bridge, whose address is the controller's. Only the network
and /etc/hosts differ: ``ip netns exec`` would also mount a /sys without the cgroup
filesystems that slurmd wants to find, so nodes are entered with nsenter and unshare. Two
workers of a job step may then listen on the same port, as on two machines.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path


def ip(*args: str) -> None:
    """Run ``ip ARGS``; a failure raises RuntimeError with ip's message."""
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


def alive(pid: int) -> bool:
    """Whether a process runs (a zombie left for an absent reaper counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no 'ip' command (iproute2) to make network namespaces"
    probe = f"dsprobe{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"ip netns add failed: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


class Nodes:
    """Namespaces ``names`` on a private /24, the controller at .1 of it on the bridge."""

    def __init__(self, names: list[str]):
        tag = os.getpid() % 10000
        self.names = names
        self.subnet = f"10.{200 + tag % 50}.{tag % 250}"
        self.controller = f"{self.subnet}.1"
        self.address = {name: f"{self.subnet}.{11 + i}" for i, name in enumerate(names)}
        self.namespace = {name: f"ds{tag}{name}" for name in names}
        self.bridge = f"dsbr{tag}"
        self.made: list[tuple[str, str]] = []  # ('link' | 'netns' | 'hosts', name)

    def create(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        self.made.append(("link", self.bridge))
        ip("addr", "add", f"{self.controller}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")
        hosts = Path("/etc/hosts").read_text() + "".join(
            f"{address} {name}\n" for name, address in self.address.items())
        for i, name in enumerate(self.names):
            space, outside = self.namespace[name], f"dsv{os.getpid() % 10000}n{i}"
            ip("netns", "add", space)
            self.made.append(("netns", space))
            folder = Path("/etc/netns") / space
            if not folder.parent.exists():
                folder.parent.mkdir()
                self.made.insert(0, ("hosts", str(folder.parent)))  # removed last, if empty
            folder.mkdir()
            self.made.append(("hosts", str(folder)))
            (folder / "hosts").write_text(hosts)
            ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", space)
            self.made.append(("link", outside))
            ip("link", "set", outside, "master", self.bridge, "up")
            ip("-n", space, "addr", "add", f"{self.address[name]}/24", "dev", "eth0")
            ip("-n", space, "link", "set", "eth0", "up")
            ip("-n", space, "link", "set", "lo", "up")

    def command(self, name: str, command: list[str]) -> list[str]:
        """``command`` to run inside node ``name``'s namespace, with its /etc/hosts."""
        space = self.namespace[name]
        return ["nsenter", f"--net=/run/netns/{space}", "--", "unshare", "--mount",
                "--propagation", "private", "--", "sh", "-c",
                f'mount --bind /etc/netns/{space}/hosts /etc/hosts && exec "$@"', "sh",
                *command]

    def pids(self, name: str) -> list[int]:
        """Processes still inside node ``name``'s namespace."""
        done = subprocess.run(["ip", "netns", "pids", self.namespace[name]],
                              capture_output=True, text=True)
        return [int(p) for p in done.stdout.split()]

    def remove(self) -> list[int]:
        """End what still runs in the namespaces (SIGKILL after 10 s of SIGTERM), then remove
        what was made, newest first; returns the processes that had to be ended."""
        left = [pid for name in self.names if ("netns", self.namespace[name]) in self.made
                for pid in self.pids(name)]
        ended = list(left)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = [pid for pid in left if alive(pid)]
            for pid in left:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(map(alive, left)):
                time.sleep(0.2)
        for kind, name in reversed(self.made):
            if kind == "hosts" and Path(name).name == "netns":
                with contextlib.suppress(OSError):
                    Path(name).rmdir()  # only when no other namespace's files are there
            elif kind == "hosts":
                shutil.rmtree(name, ignore_errors=True)
            else:
                subprocess.run(["ip", kind, "del", name], capture_output=True)
        self.made.clear()
        return ended
