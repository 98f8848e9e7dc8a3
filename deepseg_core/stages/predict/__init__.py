"""Predict: stream a trained model over whole rasters, tile by tile, resumable and shardable.

The route, top to bottom (docs/architecture.md):

    plan        the grid, its tiles and cores, the shards and the run's settings
    pipeline    reader thread -> batched inference -> writer thread
    writers     tile results into a shard's partial (tile cores, or blending)
    partials    crash-safe working files: append-only blocks + an fsync'ed commit record
    assemble    finished partials -> the output raster, verified, then renamed into place
    vectors     the class raster polygonized into a GeoPackage
    instances/  instance models: stitching, shard candidates, their merge
"""

from .plan import output_path
from .stage import run

__all__ = ["output_path", "run"]
