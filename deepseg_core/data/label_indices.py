"""Labels as dense indices for an augmentation library, and back (augmenter plugins use it).

Index 0 is "outside the tile": whatever the library fills in where a geometric transform
brings in pixels from beyond the edge becomes ``label_fill`` (the ignore label), never a
class or instance id. Any other index maps back to a value the tile already held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import DTypeLike


def to_indices(label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the values the label holds, the label as 1-based indices into them: uint16, or float32
    beyond 65534 values, types every OpenCV warp handles exactly with nearest neighbour)."""
    values, inverse = np.unique(label, return_inverse=True)
    dtype = np.uint16 if len(values) < 65535 else np.float32
    return values, (inverse.reshape(label.shape) + 1).astype(dtype)


def from_indices(indices: np.ndarray, values: np.ndarray, label_fill: float,
                 dtype: DTypeLike) -> np.ndarray:
    """The label back from indices; index 0 (outside) is ``label_fill``."""
    table = np.concatenate([np.array([label_fill], dtype=values.dtype), values])
    return table[np.clip(indices, 0, len(values))].astype(dtype, copy=False)
