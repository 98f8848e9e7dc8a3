"""Instance-id rasters carry their class names: a row per instance id (class id, class name)
in the raster's attribute table (GeoTIFF: the .aux.xml sidecar; KEA: the band's own table)."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from tests.support.gis_outputs import predict_instances


def sidecar_rows(path):
    table = ET.parse(f"{path}.aux.xml").getroot().find(
        "PAMRasterBand[@band='1']/GDALRasterAttributeTable")
    names = [f.find("Name").text for f in table.findall("FieldDefn")]
    return names, [[f.text for f in row.findall("F")] for row in table.findall("Row")]


def test_geotiff_instance_raster_has_a_class_row_per_instance(tmp_path, registry):
    out, frame = predict_instances(tmp_path, registry, "predictions/blobs.tif")
    names, rows = sidecar_rows(out)
    assert names == ["instance_id", "class_id", "ClassName"]
    assert len(frame) > 2 and len(rows) == frame["instance_id"].max() + 1
    assert rows[0] == ["0", "-1", "nodata"]
    for _, feature in frame.iterrows():
        assert rows[feature["instance_id"]] == [str(feature["instance_id"]),
                                                str(feature["class_id"]), feature["class_name"]]
    assert not list(out.parent.glob("*incomplete*"))


def test_kea_instance_raster_has_a_class_row_per_instance(tmp_path, registry):
    if "kea" not in registry.names("writer"):
        pytest.skip("the deepseg-kea-io plugin is not installed")
    out, frame = predict_instances(tmp_path, registry, "predictions/blobs.kea")
    with registry.reader_for(out).open(out) as src:
        table = src.attribute_table(1)
        ids = src.read()[0]
    assert list(table["ClassName"][:1]) == ["nodata"]
    np.testing.assert_array_equal(table["class_id"][frame["instance_id"]], frame["class_id"])
    assert list(table["ClassName"][frame["instance_id"]]) == list(frame["class_name"])
    hist = table["Histogram"]  # the pixel counts the writer computed stay beside the names
    assert len(hist) == len(table["ClassName"]) and hist[1:].sum() == (ids > 0).sum()
