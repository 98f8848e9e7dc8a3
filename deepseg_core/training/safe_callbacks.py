"""Training callbacks that fail in one line and never leave a half-written model file.

``guard(callbacks)`` wraps the hooks of every callback of a run, whatever class it is:

- a ``.keras`` checkpoint (any callback with a ``filepath`` ending in ``.keras``) is written
  under a temporary name and renamed into place only when the save succeeded, so a full disk
  keeps the previous good ``best.keras``/``last.keras``;
- an OSError (ENOSPC, EIO, EROFS) or the backend's own I/O error (TensorFlow's) in a hook
  becomes one ``DeepSegError`` naming the file the callback writes and the cause.
"""

from __future__ import annotations

import errno
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import DeepSegError, io_error
from ..io.atomic import commit, discard
from .distributed import io_errors

HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
         "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
         "on_test_batch_begin", "on_test_batch_end")
PATH_ATTRIBUTES = ("filepath", "filename", "png_path", "path", "log_dir")


def target_of(callback: object) -> str:
    """The file or folder a callback writes (for the error message)."""
    for name in PATH_ATTRIBUTES:
        value = getattr(callback, name, None)
        if isinstance(value, (str, Path)):
            return str(value)
    return type(callback).__name__


def _cause(exc: BaseException) -> OSError:
    """The OSError of ``exc``; TensorFlow's I/O errors carry only a long message."""
    if isinstance(exc, OSError):
        return exc
    message = getattr(exc, "message", None) or str(exc)
    for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES):
        if os.strerror(code) in message:
            return OSError(code, os.strerror(code))
    return OSError(" ".join(message.split())[:200])


def guard(callbacks: list[Any]) -> list[Any]:
    """``callbacks``, each hook wrapped as described in the module docstring (in place)."""
    errors = io_errors()
    for callback in callbacks:
        path = getattr(callback, "filepath", None)
        atomic = isinstance(path, str) and path.endswith(".keras") and "{" not in path
        final = Path(path) if atomic and isinstance(path, str) else None
        if atomic:  # Keras wants the suffix: best.keras -> best.keras.tmp-<pid>.keras
            callback.filepath = f"{path}.tmp-{os.getpid()}.keras"
        for hook in HOOKS:
            method = getattr(callback, hook, None)
            if method is not None:
                setattr(callback, hook, _wrap(method, callback, errors, final))
    return callbacks


def _wrap(method: Callable[..., Any], callback: Any, errors: tuple[type[BaseException], ...],
          final: Path | None) -> Callable[..., Any]:
    @functools.wraps(method)
    def hook(*args: Any, **kwargs: Any) -> Any:
        tmp = Path(callback.filepath) if final is not None else None
        try:
            result = method(*args, **kwargs)
            if final is not None and tmp is not None and tmp.exists():
                commit(tmp, final)
            return result
        except DeepSegError:
            raise
        except errors as exc:
            if tmp is not None:
                discard(tmp)
            shown = final or getattr(exc, "filename", None) or target_of(callback)
            raise io_error(shown, _cause(exc)) from None
    return hook
