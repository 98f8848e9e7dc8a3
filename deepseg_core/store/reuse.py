"""Whether dataprep may reuse, must rebuild, or must not touch the store at a path."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py

from ..errors import DeepSegError
from .reader import Store, decode_attr

log = logging.getLogger(__name__)


def existing_store(path: Path, settings_hash: str, replace: bool = False) -> str:
    """What dataprep may do with ``path``: 'absent', 'reuse' (complete, same settings, every
    checksum verified) or 'rebuild' (damaged, incomplete or other settings with ``replace``).
    A readable store of other settings, or a file that is no store, is an error unless
    ``replace``: ``store.path`` must not silently overwrite another experiment's data."""
    if not path.exists():
        return "absent"
    try:
        store = Store(path)
    except DeepSegError as exc:
        if replace or _hash_of(path) == settings_hash:
            log.info(f"store {path} cannot be reused ({exc}): rebuilding")
            return "rebuild"
        what = "not an HDF5 file" if not h5py.is_hdf5(path) else "an unreadable or other store"
        raise DeepSegError(f"store.path: {path} exists and is not a readable store of these "
                           f"data settings ({what}); delete it, or set 'store.replace: true' "
                           "to overwrite it") from None
    with store:
        found = store.attrs.get("settings_hash")
        if found != settings_hash:
            if replace:
                log.info(f"store {path} was built from other data settings (hash {found}): "
                         "replacing it (store.replace: true)")
                return "rebuild"
            raise DeepSegError(
                f"store.path: {path} was built from other data settings (settings hash "
                f"{found}, this experiment's is {settings_hash}); point store.path elsewhere, "
                "or set 'store.replace: true' to overwrite it")
        problem = store.problem()
        if problem is not None:
            log.info(f"store {path}: {problem[0]} is damaged ({problem[1]}): rebuilding")
            return "rebuild"
    return "reuse"


def _hash_of(path: Path) -> str | None:
    """The settings hash of a store whose data is unreadable, if its attributes still read."""
    try:
        with h5py.File(path, "r") as file:
            return decode_attr(file.attrs.get("settings_hash"))
    except (OSError, KeyError):
        return None
