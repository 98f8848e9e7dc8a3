"""The two header values GDAL's KEA driver reads differently from what the layout alone says:
palette bands are LAYER_USAGE 2 (GCI_PaletteIndex), and HISTOMAX is the value of the last bin
(GDAL derives the bin width as (HISTOMAX - HISTOMIN) / (bins - 1))."""

import h5py
import numpy as np
from deepseg_kea_io import KeaReader, KeaWriter

from deepseg_core.contracts.raster import RasterInfo, Window


def write(path, info, data):
    with KeaWriter().create(path, info) as sink:
        sink.write(data, Window(0, 0, info.height, info.width))


def test_palette_band_is_layer_usage_2_and_histogram_bins_are_one_value_wide(tmp_path):
    info = RasterInfo(20, 10, 2, "uint8", colormap={0: (0, 0, 0, 255), 1: (255, 0, 0, 255),
                                                    2: (0, 0, 255, 255)},
                      class_names=("none", "red", "blue", "unused", "also unused"),
                      thematic=True)
    data = (np.arange(400).reshape(2, 10, 20) % 3).astype(np.uint8)
    write(tmp_path / "p.kea", info, data)
    with h5py.File(tmp_path / "p.kea") as f:
        assert f["BAND1/LAYER_USAGE"][0] == 2
        assert f["BAND2/LAYER_USAGE"][0] == 0  # the colour table belongs to band 1 only
        meta = {k: f[f"BAND1/METADATA/{k}"][0].decode() for k in f["BAND1/METADATA"]}
    rows = 5  # the table has a row per class name, the histogram is padded to it
    assert meta["STATISTICS_HISTOMIN"] == "0" and meta["STATISTICS_HISTOMAX"] == str(rows - 1)
    assert meta["STATISTICS_HISTONUMBINS"] == str(rows)
    with KeaReader().open(tmp_path / "p.kea") as src:
        assert len(src.attribute_table(1)["Histogram"]) == rows


def test_a_band_without_colour_table_stays_generic(tmp_path):
    info = RasterInfo(8, 8, 1, "uint16", thematic=True)
    write(tmp_path / "g.kea", info, np.ones((1, 8, 8), np.uint16))
    with h5py.File(tmp_path / "g.kea") as f:
        assert f["BAND1/LAYER_USAGE"][0] == 0
