"""Submission: ``sbatch`` each job script after the jobs it needs (afterok), from Python or bash."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import DeepSegError

#: job -> jobs it starts after (those of them that are submitted too)
DEPENDS = {"dataprep": [], "train": ["dataprep"], "crossval": ["dataprep", "train"],
           "crossval-report": ["crossval"], "predict": ["train"], "merge": ["predict"]}


def dependency_options(ids: list[str]) -> list[str]:
    """sbatch options that start a job after ``ids`` succeeded, and cancel it if one failed."""
    if not ids:
        return []
    return [f"--dependency=afterok:{':'.join(ids)}", "--kill-on-invalid-dep=yes"]


def sbatch(script: Path, options: list[str] | tuple = ()) -> str:
    """Submit one script with ``sbatch --parsable``; returns the job id."""
    command = ["sbatch", "--parsable", *options, str(script)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120,
                              cwd=script.parent)
    except FileNotFoundError:
        raise DeepSegError("sbatch: command not found (no Slurm here); run the job scripts "
                           "with bash instead") from None
    except subprocess.TimeoutExpired:
        raise DeepSegError(f"sbatch {script.name}: no answer from Slurm within 120 s") from None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise DeepSegError(f"sbatch {script.name} failed: {reason}")
    return done.stdout.strip().split(";")[0]  # 'id' or 'id;cluster'


def submit_all(scripts: dict[str, Path]) -> dict[str, str]:
    """Submit the scripts in order, each depending on the jobs it needs; returns job -> id."""
    ids: dict[str, str] = {}
    for job, path in scripts.items():
        after = [ids[d] for d in DEPENDS[job] if d in ids]
        try:
            ids[job] = sbatch(path, dependency_options(after))
        except DeepSegError as exc:
            if not ids:
                raise
            done = ", ".join(f"{j} {i}" for j, i in ids.items())
            raise DeepSegError(f"{exc}; already submitted: {done} (scancel them, or submit "
                               "the rest by hand)") from None
    return ids


def submit_lines(scripts: dict[str, Path]) -> list[str]:
    """The lines of ``submit.sh``: what ``submit_all`` does, for a user to read and edit."""
    var = {job: job.replace("-", "_") for job in scripts}
    lines = ["#!/bin/bash", "# Submit the experiment's jobs: each starts when the jobs it "
             "needs ended well (afterok);", "# when one of those fails, Slurm cancels it "
             "(--kill-on-invalid-dep).", "# Without Slurm: bash " +
             "; bash ".join(p.name for p in scripts.values()),
             "set -euo pipefail", 'cd "$(dirname "$0")"']
    for job, path in scripts.items():
        after = [f'"${{{var[d]}%%;*}}"' for d in DEPENDS[job] if d in scripts]
        options = " ".join(dependency_options(after))
        lines.append(f"{var[job]}=$(sbatch --parsable {options + ' ' if options else ''}"
                     f"{path.name})")
    lines.append('echo "submitted: ' + ", ".join(f"{job} ${var[job]}" for job in scripts) + '"')
    return lines
