"""The plugin registers through the entry point and the registry picks it for .kea paths."""

import numpy as np
from deepseg_kea_io import KeaReader, KeaWriter

from deepseg_core.contracts.raster import RasterInfo, Window
from deepseg_core.plugins import load_plugins


def test_registry_picks_the_kea_reader_and_writer(tmp_path):
    plugins = load_plugins()
    reg = plugins.registry
    assert not [p for p in plugins.plugins if p.name == "kea_io" and p.error]
    writer = reg.writer_for(tmp_path / "out.kea")
    assert isinstance(writer, KeaWriter) and writer is reg.get("writer", "kea")
    assert reg.writer_for(tmp_path / "out.tif", "kea") is writer
    info = RasterInfo(width=5, height=4, count=1, dtype="uint8")
    with writer.create(tmp_path / "x.kea", info) as sink:
        sink.write(np.full((1, 4, 5), 3, "uint8"), Window(0, 0, 4, 5))
    reader = reg.reader_for(tmp_path / "x.kea")
    assert isinstance(reader, KeaReader) and reader is reg.get("reader", "kea")
    assert reader.extensions == (".kea",) and writer.extensions == (".kea",)
    with reader.open(tmp_path / "x.kea") as src:
        assert (src.read() == 3).all()
