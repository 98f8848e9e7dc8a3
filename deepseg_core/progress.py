"""A small progress reporter: a live bar on a terminal, a few log lines elsewhere (Slurm logs)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Counts work items and prints rate and ETA to stderr."""

    def __init__(self, total: int, label: str, enabled: bool = True, stream=None):
        self.total, self.label, self.done = max(total, 0), label, 0
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.start = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if not self.enabled or (now - self.last < (0.2 if self.tty else 30)
                                and self.done < self.total):
            return
        self.last = now
        self._print(now)

    def _print(self, now):
        rate = self.done / max(now - self.start, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else 0
        text = (f"{self.label}: {self.done}/{self.total} ({rate:.1f}/s, "
                f"ETA {int(eta) // 60}:{int(eta) % 60:02d})")
        if self.tty:
            width = 30
            filled = int(width * self.done / max(self.total, 1))
            self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {text}")
            if self.done >= self.total:
                self.stream.write("\n")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start
