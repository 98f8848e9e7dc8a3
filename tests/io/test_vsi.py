"""GDAL's virtual file systems as inputs: /vsizip/ archives, and a COG served over HTTP with
range requests (/vsicurl/, a loopback server on 127.0.0.1 that stops itself)."""

import http.server
import threading
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio

from deepseg_core.builtin.gtiff_write import CogWriter
from deepseg_core.config import load_experiment
from deepseg_core.contracts.raster import RasterInfo, Window
from deepseg_core.errors import ConfigError
from deepseg_core.stages import dataprep
from tests.support.synthetic import squares_scene, write_experiment


def store_arrays(path):
    with h5py.File(path) as f:
        return f["images"][()], f["labels"][()]


def test_dataprep_reads_image_and_labels_inside_a_zip(tmp_path, registry):
    img, gpkg, _ = squares_scene(tmp_path, size=96)
    archive = tmp_path / "inputs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(img, "data/scene.tif")
        z.write(gpkg, "data/labels.gpkg")
    for name in ("local", "zipped"):
        (tmp_path / name).mkdir()
    local = load_experiment(write_experiment(tmp_path / "local", img, gpkg, name="local"))
    zipped = load_experiment(write_experiment(
        tmp_path / "zipped", f"/vsizip/{archive}/data/scene.tif",
        f"/vsizip/{archive}/data/labels.gpkg", name="zipped"))
    assert zipped.images[0].path == f"/vsizip/{archive}/data/scene.tif"  # not made relative
    expected = store_arrays(dataprep.run(local, registry))
    got = store_arrays(dataprep.run(zipped, registry))
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a, b)


def test_a_missing_member_of_a_zip_is_one_line_naming_it(tmp_path):
    img, gpkg, _ = squares_scene(tmp_path, size=64)
    archive = tmp_path / "inputs.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(img, "scene.tif")
    missing = f"/vsizip/{archive}/nothere.tif"
    with pytest.raises(ConfigError) as err:
        load_experiment(write_experiment(tmp_path, missing, gpkg))
    (line,) = [p for p in str(err.value).splitlines() if "images[0].path" in p]
    assert f"images[0].path: GDAL cannot open {missing}" in line


class RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one folder's files with HEAD and single-range GET (what GDAL's /vsicurl/ sends)."""

    folder: Path
    log: list

    def _file(self):
        path = self.folder / self.path.lstrip("/").split("?")[0]
        return path if path.is_file() else None

    def do_HEAD(self):
        path = self._file()
        self.send_response(200 if path else 404)
        self.send_header("Content-Length", str(path.stat().st_size if path else 0))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()

    def do_GET(self):
        path = self._file()
        if path is None:
            self.send_error(404)
            return
        data = path.read_bytes()
        ranges = self.headers.get("Range")
        if ranges and ranges.startswith("bytes="):
            start, _, end = ranges[6:].partition("-")
            start, end = int(start), min(int(end) if end else len(data) - 1, len(data) - 1)
            body = data[start:end + 1]
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
        else:
            body = data
            self.send_response(200)
        self.log.append((ranges, len(body)))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def http_folder(tmp_path, monkeypatch):
    """(folder, base URL, request log) of a server on 127.0.0.1 that stops after the test or
    after 120 s, whichever comes first."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR")  # no directory listings
    folder, log = tmp_path / "served", []
    folder.mkdir()
    handler = type("Handler", (RangeHandler,), {"folder": folder, "log": log})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopper = threading.Timer(120, server.shutdown)
    stopper.daemon = True
    stopper.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_a_cog_over_http_is_read_with_range_requests(http_folder, registry, tmp_path):
    folder, url, log = http_folder
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 255, (1, 1024, 1024), dtype=np.uint8)
    info = RasterInfo(1024, 1024, 1, "uint8", "EPSG:2193",
                      rasterio.Affine(1, 0, 1_750_000, 0, -1, 5_900_000))
    cog = folder / "scene.tif"
    with CogWriter().create(cog, info, blocksize=256) as sink:
        sink.write(pixels, Window(0, 0, 1024, 1024))
    remote = f"/vsicurl/{url}/scene.tif"
    window = Window(300, 500, 64, 64)
    with registry.reader_for(remote).open(remote) as src:
        assert (src.info.width, src.info.height) == (1024, 1024)
        got = src.read(window)
    np.testing.assert_array_equal(got, pixels[(slice(None), *window.slices)])
    ranged = [n for r, n in log if r]
    assert ranged, "GDAL sent no range request"
    assert sum(n for _, n in log) < cog.stat().st_size / 2  # a window, not the whole file
    # the config check accepts the URL, and names a missing one
    squares_scene(tmp_path, size=32)  # a local labels file for the experiment
    exp = load_experiment(write_experiment(tmp_path, remote, tmp_path / "scene.gpkg",
                                           nbands=1))
    assert exp.images[0].path == remote
    missing = f"/vsicurl/{url}/missing.tif"
    with pytest.raises(ConfigError, match=f"images\\[0\\].path: GDAL cannot open {missing}"):
        load_experiment(write_experiment(tmp_path, missing, tmp_path / "scene.gpkg", nbands=1))
