"""Assemble finished shard partials into the output rasters through the writer plugins.

Blocks are copied one at a time, so nothing is loaded whole. Outputs are written under a
temporary name and renamed when complete.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DeepSegError
from ..raster import RasterInfo, Window
from ..sidecars import remove_output, replace_output
from .partial import open_complete

BLOCK = 1024


def temporary(path: Path) -> Path:
    """``name.tmp.ext`` beside ``path``: never mistaken for a finished output."""
    return path.with_name(f"{path.stem}.incomplete{path.suffix}")


def assemble(partials: list[tuple[Path, dict]], layer: str, writer, out: Path,
             info: RasterInfo, options: dict | None = None) -> Path:
    """Copy ``layer`` of every partial (row bands of one raster) into ``out``."""
    handles = [open_complete(path, key) for path, key in partials]
    tmp = temporary(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with writer.create(tmp, info, **(options or {})) as sink:
            for handle in handles:
                row0, row1 = int(handle.attrs["row0"]), int(handle.attrs["row1"])
                data = handle[layer]
                for r in range(row0, row1, BLOCK):
                    for c in range(0, info.width, BLOCK):
                        h, w = min(BLOCK, row1 - r), min(BLOCK, info.width - c)
                        block = data[:, r - row0:r - row0 + h, c:c + w]
                        sink.write(block, Window(r, c, h, w))
        replace_output(tmp, out)  # with its .aux.xml (class names)
    except OSError as exc:
        remove_output(tmp)
        raise DeepSegError(f"{out}: cannot write the prediction ({exc.strerror or exc})") from None
    except BaseException:
        remove_output(tmp)
        raise
    finally:
        for handle in handles:
            handle.close()
    return out
