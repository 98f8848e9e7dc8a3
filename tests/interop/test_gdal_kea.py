"""Interop through GDAL itself (a KEA-enabled system GDAL: gdalinfo -json and osgeo.gdal under
Debian's /usr/bin/python3): DeepSeg-written KEA and GeoTIFF files open in GDAL as written, and
KEA files GDAL writes read in DeepSeg with the same values."""

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

from deepseg_core.contracts.raster import RasterInfo
from tests.support.gis_outputs import (
    CLASSES,
    TRANSFORM,
    WKT,
    make_outputs,
    predict_instances,
    thematic_info,
    write_kea,
)
from tests.support.gis_tools import describe, gdal, gdalinfo_json, kea_gdal_missing

kea_io = pytest.importorskip("deepseg_kea_io", reason="the deepseg-kea-io plugin is not installed")
KeaReader, KeaWriter = kea_io.KeaReader, kea_io.KeaWriter

# under pytest-xdist, one worker runs this module: its fixtures are made once
pytestmark = [pytest.mark.interop,
              pytest.mark.skipif(kea_gdal_missing() is not None, reason=str(kea_gdal_missing())),
              pytest.mark.xdist_group("gis-gdal-kea")]

DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
          "float32", "float64"]
GDAL_TYPES = {"int8": "Byte", "int16": "Int16", "int32": "Int32", "int64": "Int64",
              "uint8": "Byte", "uint16": "UInt16", "uint32": "UInt32", "uint64": "UInt64",
              "float32": "Float32", "float64": "Float64"}  # GDAL 3.6: no Int8 (SIGNEDBYTE)


@pytest.fixture(scope="module")
def outputs(registry, tmp_path_factory):
    return make_outputs(registry, tmp_path_factory.mktemp("outputs"))


def extremes(dtype, shape, rng):
    if np.dtype(dtype).kind == "f":
        values = rng.normal(0, 1e3, shape).astype(dtype)
        values.flat[:2] = np.finfo(dtype).min, np.finfo(dtype).max
        return values
    lim = np.iinfo(dtype)
    values = rng.integers(lim.min, lim.max, shape, dtype=dtype, endpoint=True)
    values.flat[:2] = lim.min, lim.max
    return values


def same_georeference(item):
    assert item["geotransform"] == list(TRANSFORM.to_gdal())
    assert CRS.from_wkt(item["projection"]) == CRS.from_wkt(WKT)


def test_every_dtype_written_by_deepseg_reads_the_same_in_gdal(tmp_path):
    rng = np.random.default_rng(4)
    paths, pixels = [], {}
    for dtype in DTYPES:
        data = extremes(dtype, (2, 41, 53), rng)
        nodata = 7 if np.dtype(dtype).kind != "f" else -9999.5
        info = RasterInfo(53, 41, 2, dtype, WKT, TRANSFORM, nodata, ("first", "second"))
        paths.append(write_kea(tmp_path / f"{dtype}.kea", info, data))
        pixels[dtype] = data
    for dtype, item in zip(DTYPES, describe(tmp_path, *paths)):
        assert item["driver"] == "KEA" and item["size"] == [53, 41] and item["count"] == 2
        same_georeference(item)
        for k, band in enumerate(item["bands"]):
            assert band["type"] == GDAL_TYPES[dtype], dtype
            got = band["pixels"]
            if dtype == "int8":  # GDAL 3.6 has no Int8: the KEA driver gives the bytes as Byte
                got = got.view(np.int8)
            np.testing.assert_array_equal(got, pixels[dtype][k], err_msg=dtype)
            assert band["nodata"] == (7 if np.dtype(dtype).kind != "f" else -9999.5)
            assert band["interp"] == "Gray" and band["colours"] is None


def test_thematic_band_palette_names_nodata_overviews_and_histogram_in_gdal(tmp_path):
    info = thematic_info(90, 70)
    data = (np.indices((70, 90)).sum(axis=0) // 9 % 4).astype(np.uint8)[None]
    data[0, :3, :5] = 255
    path = write_kea(tmp_path / "classes.kea", info, data, overviews=[2, 4])
    (item,) = describe(tmp_path, path)
    band = item["bands"][0]
    same_georeference(item)
    np.testing.assert_array_equal(band["pixels"], data[0])
    assert band["interp"] == "Palette" and band["nodata"] == 255
    assert band["colours"] == [list(info.colormap[v]) for v in range(4)]
    rat = {c["name"]: c for c in band["rat"]}
    assert rat["ClassName"]["values"] == list(info.class_names)
    assert rat["ClassName"]["usage"] == 2  # GFU_Name
    for i, usage in enumerate(("Red", "Green", "Blue", "Alpha")):
        assert rat[usage]["values"] == [info.colormap[v][i] for v in range(4)]
    counts = np.bincount(data[data != 255], minlength=4).tolist()
    assert rat["Histogram"]["values"] == counts
    assert band["binning"] == [True, 0.0, 1.0]  # one value per bin
    assert band["histogram"][0] == 0.0 and band["histogram"][2:] == [4, counts]
    assert band["overviews"] == [[45, 35], [22, 17]]  # DeepSeg rounds down, GDAL reads it
    with KeaReader().open(path) as src:
        for level, got in enumerate(band["overview_pixels"], start=1):
            np.testing.assert_array_equal(got, src.read_overview(1, level))
    info_json = gdalinfo_json(path)["bands"][0]
    assert info_json["colorInterpretation"] == "Palette"
    assert info_json["noDataValue"] == 255
    assert [e for e in info_json["colorTable"]["entries"]] == band["colours"]
    assert [o["size"] for o in info_json["overviews"]] == [[45, 35], [22, 17]]
    # the palette survives gdal_translate to GeoTIFF (it did not with LAYER_USAGE=0)
    tif = tmp_path / "classes.tif"
    gdal("gdal_translate", "-q", "-of", "GTiff", path, tif)
    translated = gdalinfo_json(tif)["bands"][0]
    assert translated["colorInterpretation"] == "Palette"
    assert [e[:3] for e in translated["colorTable"]["entries"][:4]] == [  # TIFF: no alpha
        c[:3] for c in band["colours"]]


def test_large_file_written_in_windows_reads_the_same_in_gdal(tmp_path):
    rng = np.random.default_rng(9)
    data = rng.integers(0, 4000, (1, 2100, 2700), dtype=np.uint16)
    info = RasterInfo(2700, 2100, 1, "uint16", WKT, TRANSFORM, 0, ("big",))
    path = write_kea(tmp_path / "big.kea", info, data, tile=300, overviews="auto")
    (item,) = describe(tmp_path, path)
    band = item["bands"][0]
    np.testing.assert_array_equal(band["pixels"], data[0])
    with KeaReader().open(path) as src:
        assert [list(reversed(shape)) for shape in src.overviews(1)] == band["overviews"]
        np.testing.assert_array_equal(band["overview_pixels"][0], src.read_overview(1, 1))
    assert band["metadata"]["STATISTICS_MAXIMUM"] == str(int(data.max()))


def test_predict_output_kea_opens_in_gdal_with_its_classes(outputs, tmp_path):
    (item,) = describe(tmp_path, outputs.prediction_kea)
    band = item["bands"][0]
    with rasterio.open(outputs.prediction_tif) as tif:
        np.testing.assert_array_equal(band["pixels"], tif.read(1))  # same model, same pixels
        assert item["geotransform"] == list(tif.transform.to_gdal())
        assert CRS.from_wkt(item["projection"]) == tif.crs
    assert band["interp"] == "Palette" and band["nodata"] == 255
    names = [c["name"] for c in CLASSES]
    rat = {c["name"]: c["values"] for c in band["rat"]}
    assert rat["ClassName"][:3] == names
    assert [band["colours"][v][:3] for v in range(3)] == [[0, 0, 0], [255, 0, 0], [0, 255, 0]]
    assert band["metadata"]["LAYER_TYPE"] == "thematic"


def test_every_thematic_output_has_class_names_in_gdalinfo(outputs):
    names = [c["name"] for c in CLASSES]
    for path, expected in ((outputs.prediction_tif, names), (outputs.errors_tif,
                                                            list(outputs.error_names))):
        band = gdalinfo_json(path)["bands"][0]
        assert band["categories"][:len(expected)] == expected, path
        rat = gdalinfo_json(path)["rat"] if "rat" in gdalinfo_json(path) else None
        assert rat is not None and rat["row"][1]["f"][-1] == expected[1]
        assert band["colorInterpretation"] == "Palette"
    for path, expected in ((outputs.prediction_kea, names), (outputs.errors_kea,
                                                            list(outputs.error_names))):
        info = gdalinfo_json(path)
        fields = [f["name"] for f in info["rat"]["fieldDefn"]]
        column = fields.index("ClassName")
        assert [row["f"][column] for row in info["rat"]["row"]][:len(expected)] == expected
        assert info["bands"][0]["colorInterpretation"] == "Palette"


def test_sidecar_follows_the_output_through_its_temporary_name(outputs):
    folder = outputs.prediction_tif.parent
    assert (folder / "pred.tif.aux.xml").is_file()
    assert not list(folder.glob("*incomplete*"))


def test_instance_rasters_show_their_class_table_in_gdalinfo(registry, tmp_path):
    for name in ("blobs.tif", "blobs.kea"):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        out, frame = predict_instances(folder, registry, f"predictions/{name}")
        info = gdalinfo_json(out)
        fields = [f["name"] for f in info["rat"]["fieldDefn"]]
        rows = [row["f"] for row in info["rat"]["row"]]
        names = {int(r[fields.index("instance_id")]) if "instance_id" in fields else i:
                 r[fields.index("ClassName")] for i, r in enumerate(rows)}
        assert names[0] == "nodata"
        assert [names[i] for i in frame["instance_id"]] == list(frame["class_name"]), name
