"""Errors a user sees as one clear line (the CLI prints them without a traceback)."""

from __future__ import annotations

from collections.abc import Iterable


class DeepSegError(Exception):
    """A problem with the user's input or environment, worded for the user."""


#: what a user can do about most failed writes
FREE_SPACE = "free space or fix the folder's permissions and rerun"


def cause(exc: BaseException) -> str:
    """The operating system's words for ``exc`` ('No space left on device'), else its text."""
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def io_error(path: object, exc: BaseException, what: str = "cannot write",
             advice: str | None = FREE_SPACE) -> DeepSegError:
    """The one line of a failed read or write: ``<path>: <what> (<cause>); <advice>``."""
    return DeepSegError(f"{path}: {what} ({cause(exc)})" + (f"; {advice}" if advice else ""))


class ConfigError(DeepSegError):
    """An invalid experiment file: one or more problems, each naming file, key and expectation."""

    def __init__(self, problems: str | Iterable[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class RegistryError(DeepSegError):
    """A plugin registration conflict or an unknown registered name."""


class PluginLoadError(DeepSegError):
    """A plugin could not be loaded (raised only in strict mode)."""
