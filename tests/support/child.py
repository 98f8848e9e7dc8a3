"""``deepseg`` in a test's subprocess that SIGKILLs itself at a chosen I/O boundary.

    python -m tests.support.child [--kill WHEN:N:CALL:NAME] [--trace FILE]
                                  [--call MODULE:FUNCTION] -- ARGS...

The I/O boundaries are the calls through which the core makes what it wrote durable and
visible: ``os.fsync`` and ``os.replace`` (deepseg_core.io.atomic and the prediction partials,
checkpoints, records, stores and outputs all commit through them). ``--kill before:N:CALL:NAME``
sends this process SIGKILL just before the Nth boundary call that is CALL (fsync or replace;
empty: either) on a path ending in NAME (empty: any), ``after:...`` just after it returned; the
kernel ends every thread at once, no ``finally`` or ``atexit`` runs. CALL ``h5write`` counts
the writes into HDF5 datasets instead (``h5py.Dataset.__setitem__``: a kill in the middle of
writing a store); ``rename`` (the source's path) and ``unlink`` count those calls (a training
run's old files moved aside or deleted, deepseg_core.training.aside). ``--trace FILE`` writes
one JSON line per fsync/replace, ``[call, path]``, so a test can count them. The wrappers are
installed here, in the child, before the CLI starts: nothing in deepseg_core knows of them.
``--call MODULE:FUNCTION`` runs that function of the core on ARGS (as paths) instead of the
CLI, for a kill inside one step that the CLI reaches only among others.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading


def install(kill: str | None, trace) -> None:
    """Wrap the boundary calls: count those that match ``kill``, trace fsync and replace."""
    when, n, call, name = (kill or "none:0::").split(":", 3)
    lock, matching = threading.Lock(), [0]

    def wrap(label, function, where):
        def boundary(*args, **kwargs):
            path = where(*args)
            with lock:
                hit = call in ("", label) and path.endswith(name)
                matching[0] += hit
                chosen = hit and matching[0] == int(n)
                if trace is not None and label in ("fsync", "replace"):  # the commits
                    trace.write(json.dumps([label, path]) + "\n")
                    trace.flush()
            if chosen and when == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            result = function(*args, **kwargs)
            if chosen and when == "after":
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        return boundary

    def fd_path(fd, *_):
        try:
            return os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return str(fd)

    os.fsync = wrap("fsync", os.fsync, fd_path)
    os.replace = wrap("replace", os.replace, lambda src, dst, *_, **__: os.fspath(dst))
    if call == "h5write":
        import h5py

        h5py.Dataset.__setitem__ = wrap("h5write", h5py.Dataset.__setitem__,
                                        lambda dataset, *_: dataset.file.filename)
    elif call == "rename":
        os.rename = wrap("rename", os.rename, lambda src, *_, **__: os.fspath(src))
    elif call == "unlink":
        os.unlink = wrap("unlink", os.unlink, lambda path, *_, **__: os.fspath(path))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.child")
    parser.add_argument("--kill")
    parser.add_argument("--trace")
    parser.add_argument("--call")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    trace = open(options.trace, "w") if options.trace else None  # noqa: SIM115 - to the end
    install(options.kill, trace)
    if options.call:
        import importlib
        from pathlib import Path

        module, _, function = options.call.partition(":")
        getattr(importlib.import_module(module), function)(*map(Path, args))
        return

    from deepseg_core.cli import main as deepseg

    deepseg(args, prog_name="deepseg")


if __name__ == "__main__":
    main(sys.argv[1:])
