"""The one way the tests launch ``deepseg``: in this process, or as a real subprocess.

``invoke`` runs the click command in this process (CliRunner); ``deepseg`` runs
``python -m deepseg_core.cli`` in a fresh process to its end; ``start`` starts one and returns
it running (for kills), through :mod:`tests.support.child` when it is to SIGKILL itself at an
I/O boundary. ``test_models=True`` lets the subprocess find the test model plugins through
their installed entry point (``site/``), as it would find any plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import ROOT

SITE = Path(__file__).resolve().parent / "site"
#: quiet, CPU-only, unbuffered children: their last line is what the tests read
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PYTHONWARNINGS": "ignore",
         "PYTHONUNBUFFERED": "1"}


def invoke(*args):
    """``deepseg ARGS`` in this process (click's CliRunner); the click Result."""
    from click.testing import CliRunner

    from deepseg_core.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def environment(test_models: bool = False, base: dict | None = None, **extra: str) -> dict:
    """The environment of a child ``deepseg``: ``base`` (this process's) made quiet, on the
    base's Keras backend (the session's: ``pytest --backend``; TensorFlow where none is set),
    this checkout first on PYTHONPATH (the child module is found from any folder) and, with
    ``test_models``, the test plugins' site before it."""
    base = os.environ if base is None else base
    env = {**base, "KERAS_BACKEND": base.get("KERAS_BACKEND", "tensorflow"), **QUIET, **extra}
    paths = [str(SITE)] * test_models + [str(ROOT)] + [env.get("PYTHONPATH") or ""]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    return env


def command(*args, kill: str | None = None, trace: Path | None = None,
            call: str | None = None) -> list[str]:
    """The argv of ``deepseg ARGS``: the real CLI, or the test child when it is to ``kill``
    itself at an I/O boundary (tests.support.kills.At.spec) or to ``trace`` its boundaries;
    ``call`` (MODULE:FUNCTION): the child runs that function on ARGS instead of the CLI."""
    if kill is None and trace is None and call is None:
        return [sys.executable, "-m", "deepseg_core.cli", *map(str, args)]
    options = [*(["--kill", kill] if kill else []), *(["--trace", str(trace)] if trace else []),
               *(["--call", call] if call else [])]
    return [sys.executable, "-m", "tests.support.child", *options, "--", *map(str, args)]


def deepseg(*args, test_models: bool = False, env: dict | None = None, merged: bool = False,
            cwd: Path | None = None, timeout: float = 600, **launch) -> subprocess.CompletedProcess:
    """``deepseg ARGS`` in a subprocess, to its end; its output captured (stdout and stderr
    apart, or ``merged`` into stdout). ``env``: the base environment instead of this one."""
    return subprocess.run(command(*args, **launch), text=True, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT if merged else subprocess.PIPE,
                          env=environment(test_models, env), cwd=cwd, timeout=timeout)


def start(*args, test_models: bool = False, cwd: Path | None = None,
          **launch) -> subprocess.Popen:
    """``deepseg ARGS`` started in a subprocess (stdout and stderr merged, as text)."""
    return subprocess.Popen(command(*args, **launch), cwd=cwd, env=environment(test_models),
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def assert_one_line_error(result, *fragments):
    """Non-zero exit, no traceback, no crash, and one 'error:' line holding every fragment
    (stderr; stdout when stderr was merged into it)."""
    text = result.stderr if result.stderr is not None else result.stdout
    assert result.returncode not in (0, -11, 139), (result.returncode, text[-3000:])
    assert result.returncode > 0, (result.returncode, text[-3000:])
    assert "Traceback" not in text, text[-3000:]
    errors = [line for line in text.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, text[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]
