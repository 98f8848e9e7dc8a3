"""What DeepSeg's engines tell the user, and who decides how it is shown.

Below the CLI nothing prints: modules report through ``logging.getLogger(__name__)`` (every
logger under ``deepseg_core``), info lines for what a stage did, warnings for what the user
may want to change. The CLI, and the worker processes it starts, call :func:`show`: info lines
then go to stdout and warnings to stderr as ``warning: ...``, the way a terminal or a Slurm
log shows them. A library user configures ``logging`` as they like; without :func:`show`
only warnings reach them (through logging's last resort).

Progress bars (:mod:`.progress`) follow the ``deepseg_core.progress`` logger: shown when it is
enabled for INFO, so ``show(progress=False)`` keeps the messages and drops the bars.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

ROOT = "deepseg_core"
PROGRESS = "deepseg_core.progress"


class Lines(logging.Handler):
    """Each message as one line: info on stdout, ``warning: ...`` on stderr (click.echo, so a
    test runner's captured streams receive them too)."""

    def emit(self, record: logging.LogRecord) -> None:
        import click

        try:
            text = record.getMessage()
            if record.levelno >= logging.WARNING:
                click.echo(f"warning: {text}", err=True)
            else:
                click.echo(text)
        except Exception:  # logging's rule: a failing handler reports, never raises
            self.handleError(record)


def show(progress: bool = True) -> None:
    """Show the engines' messages as the CLI does (idempotent); ``progress``: bars too."""
    logger = logging.getLogger(ROOT)
    if not any(isinstance(h, Lines) for h in logger.handlers):
        logger.addHandler(Lines())
    logger.setLevel(logging.INFO)
    # not passed on to the root logger: TensorFlow's absl installs a handler there, which
    # would print every line a second time in its own format
    logger.propagate = False
    logging.getLogger(PROGRESS).setLevel(logging.INFO if progress else logging.WARNING)


def progress_shown() -> bool:
    """Whether progress bars are wanted (see the module docstring)."""
    return logging.getLogger(PROGRESS).isEnabledFor(logging.INFO)


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Whatever plugins print while they load goes to stderr, so stdout stays machine-readable
    (``deepseg plugins --json``); C-level writes to fd 1 are redirected too."""
    sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no fd 1 at all
        saved = None
    try:
        if saved is not None:
            os.dup2(2, 1)
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)
