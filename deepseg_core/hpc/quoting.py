"""How values of an experiment are written into its job scripts, so that none of them runs.

Two readers parse a job script. bash runs its commands: every value there is a single-quoted
word (``shlex.quote``) or the body of a quoted heredoc (``<<'YAML'``), in which bash expands
nothing. sbatch reads the ``#SBATCH`` lines, which bash skips as comments: sbatch splits them
at blanks, cuts them at ``#`` and takes double quotes with backslash escapes, so a value that
is not a plain word goes there in double quotes. Neither can hold a newline (it would start a
new command or a new directive): such values are refused with one line naming the key.
"""

from __future__ import annotations

import re
import shlex

import yaml

from ..config.safety import control_problem
from ..errors import DeepSegError

PLAIN = re.compile(r"[A-Za-z0-9_.,:/%=+@-]+")  # a word sbatch takes as it is
DELIMITER = "YAML"


def checked(key: str, value: object) -> str:
    """``value`` as text, or a DeepSegError naming ``key`` when it holds a control character."""
    text = str(value)
    why = control_problem(text)
    if why:
        raise DeepSegError(f"deepseg sbatch: {key}: {why}")
    return text


def shell_word(key: str, value: object) -> str:
    """``value`` as one bash word that expands nothing (``$(...)``, backticks, ``;``, blanks)."""
    return shlex.quote(checked(key, value))


def sbatch_word(key: str, value: object) -> str:
    """``value`` as one argument of an ``#SBATCH`` line, as sbatch parses it."""
    text = checked(key, value)
    if PLAIN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def log_folder(key: str, folder: object) -> str:
    """A folder as the fixed part of a Slurm file pattern (a literal ``%`` is ``%%``)."""
    return checked(key, folder).replace("%", "%%")


def yaml_heredoc(target: str, settings: dict, indent: str = "", tail: str = "") -> list[str]:
    """Lines writing the YAML of ``settings`` (then the shell ``tail`` command's output) to
    the file ``target`` (a shell word): the YAML goes through a quoted heredoc, verbatim."""
    body = yaml.safe_dump(settings, sort_keys=False, allow_unicode=True,
                          width=1 << 30).splitlines()  # one line a key: nothing folded
    if DELIMITER in body:  # cannot happen: the values are one line each, keys are ours
        raise DeepSegError(f"deepseg sbatch: a line of {target} would end its heredoc")
    return [f"{indent}{{ cat <<'{DELIMITER}'", *body, DELIMITER,
            *([f"{indent}  {tail}"] if tail else []), f"{indent}}} > {target}"]
