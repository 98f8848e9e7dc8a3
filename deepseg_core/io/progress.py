"""Progress of long loops: a tqdm bar on a terminal, plain log lines elsewhere (Slurm logs).

A Slurm job's stderr is a file: a live bar there is one endless line of carriage returns, so
off a terminal (or with ``mode="plain"``) the same tqdm text is written as one line every
``interval`` seconds and once at the end.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

from .messages import progress_shown

PLAIN_INTERVAL = 30.0  # seconds between plain lines
BAR_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"
PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) [{elapsed}<{remaining}, " \
               "{rate_fmt}]"


class Progress:
    """Counts work items (``update``); ``mode`` is 'auto' (a bar on a TTY, else plain lines),
    'bar' or 'plain'. ``enabled=False`` prints nothing but still counts; by default it shows
    when progress is wanted (:func:`deepseg_core.io.messages.progress_shown`)."""

    def __init__(self, total: int, label: str, enabled: bool | None = None,
                 stream: TextIO | None = None, mode: str = "auto",
                 interval: float = PLAIN_INTERVAL, unit: str = "tile") -> None:
        if mode not in ("auto", "bar", "plain"):
            raise ValueError(f"progress mode {mode!r}: expected auto, bar or plain")
        self.total, self.label, self.done = max(total, 0), label, 0
        self.stream = stream or sys.stderr
        self.enabled = progress_shown() if enabled is None else enabled
        tty = getattr(self.stream, "isatty", lambda: False)()
        self.tty = self.enabled and (mode == "bar" or (mode == "auto" and tty))
        self.interval, self.unit = interval, unit
        self.start = self.last = time.monotonic()
        self._ended = False  # the final plain line is written
        self._bar = tqdm(total=self.total, desc=label, file=self.stream, unit=unit,
                         mininterval=0.2, dynamic_ncols=True, bar_format=BAR_FORMAT,
                         leave=True) if self.tty else None

    def update(self, n: int = 1) -> None:
        """Count ``n`` more items done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            if self.done >= self.total:
                self.close()
            return
        now = time.monotonic()
        finished = self.done >= self.total
        if self.enabled and not self._ended and (finished or now - self.last >= self.interval):
            self.last, self._ended = now, finished
            self.stream.write(self.line(now) + "\n")
            self.stream.flush()

    def line(self, now: float | None = None) -> str:
        """The plain-line text: label, count, percentage, elapsed, ETA and rate (tqdm's)."""
        elapsed = (now or time.monotonic()) - self.start
        return tqdm.format_meter(self.done, self.total or None, elapsed, prefix=self.label,
                                 unit=self.unit, bar_format=PLAIN_FORMAT if self.total else None)

    def close(self) -> None:
        """End the bar (a finished bar closes itself)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start
