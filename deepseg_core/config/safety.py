"""What a value of experiment.yaml may hold where it becomes a folder name or a job-script line.

An experiment file is data: nothing in it may run a command or write outside
``<workdir>/<name>/`` (docs/crash-safety.md, "Trust model"). The name becomes a folder and a
Slurm job name, so it is limited to a safe set; a newline in any value that reaches a job
script would start a new line of it (a ``#SBATCH`` directive or a command), so control
characters are refused there.
"""

from __future__ import annotations

import os
import re

NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")
NAME_RULE = ("letters, digits, '.', '_' and '-' (at most 100, not '.' or '..', not starting "
             "with '-'), such as 'trees-2024'")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot name an experiment (its folder and its Slurm jobs), or None."""
    if NAME.fullmatch(value) and value not in (".", "..") and not value.startswith("-"):
        return None
    return f"{value!r} is not a safe experiment name; expected {NAME_RULE}"


def control_problem(value: str) -> str | None:
    """Why ``value`` cannot go into a job script line (a control character), or None."""
    found = CONTROL.search(value)
    if found is None:
        return None
    return (f"{value!r} holds the control character {found.group()!r}; expected one line of "
            "printable text (a newline would start a new line of a job script)")


def one_line(value):
    """Pydantic validator body: ``value`` (a string or a list of them) without control
    characters, else a ValueError naming the value."""
    for item in value if isinstance(value, list) else [value]:
        why = control_problem(item) if isinstance(item, str) else None
        if why:
            raise ValueError(why)
    return value


def escapes(relative: str) -> bool:
    """Whether the relative path ``relative`` leads out of the folder it is relative to."""
    parts = os.path.normpath(relative).split(os.sep)
    return parts[0] == ".."
