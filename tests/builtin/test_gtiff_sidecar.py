"""GeoTIFF class names in GDAL's .aux.xml sidecar (CategoryNames + a thematic attribute table),
and the sidecar moving with its raster through the temporary name."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from deepseg_core.builtin.gtiff_write import CogWriter, GTiffWriter
from deepseg_core.contracts.raster import RasterInfo, Window
from deepseg_core.io.sidecars import remove_output, replace_output

INFO = RasterInfo(32, 16, 1, "uint8", nodata=255, colormap={0: (0, 0, 0, 255),
                  1: (255, 0, 0, 255), 2: (0, 128, 0, 255)},
                  class_names=("background", "building", "tree"), thematic=True)


def write(writer, path, info=INFO):
    with writer.create(path, info) as sink:
        sink.write(np.arange(512, dtype=np.uint8).reshape(1, 16, 32) % 3, Window(0, 0, 16, 32))
    return path


def band1(path):
    root = ET.parse(f"{path}.aux.xml").getroot()
    (band,) = [b for b in root.findall("PAMRasterBand") if b.get("band") == "1"]
    return band


@pytest.mark.parametrize("writer", [GTiffWriter(), CogWriter()], ids=["gtiff", "cog"])
def test_class_names_and_colours_are_in_the_sidecar(tmp_path, writer):
    band = band1(write(writer, tmp_path / "classes.tif"))
    assert [c.text for c in band.find("CategoryNames")] == list(INFO.class_names)
    table = band.find("GDALRasterAttributeTable")
    assert table.get("tableType") == "thematic"
    fields = [f.find("Name").text for f in table.findall("FieldDefn")]
    assert fields == ["Value", "Red", "Green", "Blue", "Alpha", "ClassName"]
    rows = [[f.text for f in row.findall("F")] for row in table.findall("Row")]
    assert rows == [["0", "0", "0", "0", "255", "background"],
                    ["1", "255", "0", "0", "255", "building"],
                    ["2", "0", "128", "0", "255", "tree"]]


def test_no_sidecar_without_class_names(tmp_path):
    path = write(GTiffWriter(), tmp_path / "plain.tif", INFO.with_(class_names=None))
    assert not (tmp_path / "plain.tif.aux.xml").exists()
    assert path.exists()


def test_what_gdal_keeps_in_the_sidecar_stays(tmp_path):
    path = tmp_path / "kept.tif"
    (tmp_path / "kept.tif.aux.xml").write_text(
        '<PAMDataset><Metadata><MDI key="ORIGIN">field survey</MDI></Metadata>'
        '<PAMRasterBand band="1"><Description>old</Description><CategoryNames>'
        '<Category>stale</Category></CategoryNames></PAMRasterBand></PAMDataset>')
    band = band1(write(GTiffWriter(), path))
    root = ET.parse(f"{path}.aux.xml").getroot()
    assert root.find("Metadata/MDI").text == "field survey"
    assert band.find("Description").text == "old"
    assert [c.text for c in band.find("CategoryNames")] == list(INFO.class_names)


def test_sidecar_moves_with_the_raster_and_a_stale_one_goes(tmp_path):
    tmp, out = tmp_path / "p.incomplete.tif", tmp_path / "p.tif"
    write(GTiffWriter(), tmp)
    replace_output(tmp, out)
    assert out.exists() and (tmp_path / "p.tif.aux.xml").exists()
    assert not list(tmp_path.glob("*incomplete*"))
    write(GTiffWriter(), tmp, INFO.with_(class_names=None, colormap=None))  # a new run, no names
    replace_output(tmp, out)
    assert not (tmp_path / "p.tif.aux.xml").exists()  # not the old run's names
    write(GTiffWriter(), tmp)
    remove_output(tmp)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.tif"]
