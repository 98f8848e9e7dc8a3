"""The settings of instance stitching, one value handed from the experiment to the stitcher."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StitchOptions:
    """How tiles' detections become objects (stitcher.py, duplicates.py, output.py).

    ``iou``/``ios``: two detections are one object when their IoU, or their intersection over
    the smaller one, exceeds these; ``per_class``: only detections of the same class are
    compared; ``tolerance``: px a box centre may lie outside its tile's core and still be
    owned; ``simplify``: polygon simplification (map units); ``multipart``: keep every part of
    a mask (else its largest); ``block_size``: rows and columns of the id raster's blocks;
    ``write_empty``: also write blocks without instances (sinks that do not start as nodata).
    """

    iou: float = 0.5
    ios: float = 0.8
    per_class: bool = False
    tolerance: float = 2.0
    simplify: float = 0.0
    multipart: bool = False
    block_size: int = 1024
    write_empty: bool = True
