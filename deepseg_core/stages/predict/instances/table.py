"""Class names of an instance-id raster: an attribute table with a row per instance id (its
class id and class name; row 0 = nodata), read from the finished GeoPackage and handed to the
writer that wrote the raster (``writer.add_attribute_table(path, columns)``, where it has one:
GeoTIFF keeps it in the ``.aux.xml`` sidecar, KEA in the band's own table)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ....contracts.raster import RasterWriter

INSTANCE_LAYER = "instances"
BATCH = 200_000  # features read at a time: memory bounded by this, not by the instance count


def instance_columns(gpkg: Path, layer: str = INSTANCE_LAYER) -> dict[str, np.ndarray]:
    """``{"instance_id", "class_id", "ClassName"}`` indexed by instance id (0 = nodata)."""
    import pyogrio

    total = pyogrio.read_info(gpkg, layer=layer)["features"]
    parts: list[np.ndarray] = []
    classes: list[np.ndarray] = []
    names: list[np.ndarray] = []
    for start in range(0, total, BATCH):
        frame = pyogrio.read_dataframe(gpkg, layer=layer, read_geometry=False,
                                       columns=["instance_id", "class_id", "class_name"],
                                       skip_features=start, max_features=BATCH)
        parts.append(frame["instance_id"].to_numpy("int64"))
        classes.append(frame["class_id"].to_numpy("int64"))
        names.append(frame["class_name"].astype(str).to_numpy(object))
    ids = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    rows = int(ids.max()) + 1 if ids.size else 1
    class_id = np.full(rows, -1, np.int64)
    class_name = np.full(rows, "", dtype=object)
    class_name[0] = "nodata"
    if ids.size:
        class_id[ids] = np.concatenate(classes)
        class_name[ids] = np.concatenate(names)
    return {"instance_id": np.arange(rows, dtype=np.int64), "class_id": class_id,
            "ClassName": class_name}


def attach_instance_table(writer: RasterWriter, raster: Path, gpkg: Path,
                          layer: str = INSTANCE_LAYER) -> bool:
    """Give ``raster`` (written by ``writer``) its instance table; False when the writer
    cannot store one."""
    add = getattr(writer, "add_attribute_table", None)
    if add is None:
        return False
    add(raster, instance_columns(gpkg, layer))
    return True
