"""Reading a complete store: its tiles, labels, statistics, and a check of every checksum."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np

from ..errors import DeepSegError
from .checksums import damage

if TYPE_CHECKING:
    from typing import Self

    from _typeshed import StrPath


class Store:
    """Read access to a complete store (one handle per process; reopen in each worker)."""

    def __init__(self, path: StrPath) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise DeepSegError(f"{self.path}: store not found; run 'deepseg dataprep' first")
        try:
            self.file = h5py.File(self.path, "r")
        except OSError as exc:
            raise DeepSegError(f"{self.path}: not a readable HDF5 store ({exc}); delete it "
                               "and rerun 'deepseg dataprep'") from None
        try:
            if not self.file.attrs.get("complete", False):
                raise DeepSegError(f"{self.path}: store is incomplete; rerun 'deepseg dataprep'")
            self.attrs: dict[str, Any] = {k: decode_attr(v) for k, v in self.file.attrs.items()}
            self.instance = "instances" in self.file
            self.tiles: np.ndarray = self.file["tiles"][:]  # TILE_DTYPE records
        except (OSError, KeyError) as exc:
            self.file.close()
            raise self.damaged("the tile table", exc) from None
        except DeepSegError:
            self.file.close()
            raise

    def __len__(self) -> int:
        return len(self.tiles)

    @property
    def labels(self) -> h5py.Dataset:
        """The label tiles: class ids (semantic) or instance ids."""
        return self.file["instances" if self.instance else "labels"]

    def stats(self) -> dict[str, np.ndarray]:
        """Per-band statistics (count, mean, std, min, max) over valid pixels."""
        return {k: self.file["stats"][k][:] for k in self.file["stats"]}

    def class_counts(self) -> np.ndarray:
        """Labelled pixels per class."""
        return self.file["class_counts"][:]

    def instance_classes(self) -> np.ndarray | None:
        """The class of each instance id (instance stores), else None."""
        return self.file["instance_classes"][:] if "instance_classes" in self.file else None

    def tile(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image (T, T, B), label (T, T), valid (T, T)) of tile ``index``."""
        try:
            return (self.file["images"][index], self.labels[index],
                    self.file["valid"][index].astype(bool))
        except OSError as exc:
            raise self.damaged(f"tile {index}", exc) from None

    def damaged(self, what: str, exc: Exception) -> DeepSegError:
        """One line naming the store, the damaged part and the fix."""
        cause = " ".join(str(exc).split())
        return DeepSegError(f"store {self.path}: {what} is damaged ({cause}); delete the "
                            "store and rerun 'deepseg dataprep' to rebuild it")

    def verify(self) -> None:
        """Check every chunk of every dataset against its Fletcher32 checksum (and the chunk
        count); a DeepSegError names the first damaged tile or dataset and the fix."""
        problem = self.problem()
        if problem is not None:
            raise self.damaged(*problem)

    def problem(self) -> tuple[str, Exception] | None:
        """(damaged part, why) found by the checksum check (checksums.py), or None."""
        try:
            found = damage(self.file, self.path)
        except OSError as exc:
            return "the file", exc
        if found is None:
            return None
        name, index, why = found
        tiled = name in ("images", "labels", "instances", "valid") and index is not None
        return (f"tile {index} ({name})" if tiled else f"dataset {name}"), OSError(why)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decode_attr(value: Any) -> Any:
    """An HDF5 attribute as Python: bytes decoded, JSON lists and dicts parsed."""
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, np.generic):
        return value.item()
    return value
