"""The HDF5 store: one file holding every training tile, its labels, windows, folds and stats.

Layout (docs/store.md)::

    /images     (N, T, T, B)  source dtype, chunk (1, T, T, B), compressed
    /labels     (N, T, T)     uint16 class ids (semantic)  -- or --
    /instances  (N, T, T)     uint32 instance ids + /instance_classes (M,) class of id 1..M
    /valid      (N, T, T)     uint8, 1 where every image source has data
    /tiles      (N,) compound row, col, fold, geotransform[6], scene
    /stats/{count,mean,std,min,max}  per band, over valid grid pixels
    /class_counts (C,)        labelled pixels per class (tile cores: each pixel once)
    attrs       crs, transform, width, height, scenes, tilesize, overlap, nbands, band_names,
                classes, colours, segmentation_type, folds, settings_hash, deepseg_version,
                complete

It is written under a temporary name and renamed when complete (:mod:`.writer`), read
through :class:`Store` (:mod:`.reader`), named by the hash of its data settings
(:mod:`.identity`), checked chunk by chunk before reuse (:mod:`.checksums`, :mod:`.reuse`)
and written through a file object that survives a full disk (:mod:`.guarded`).
"""

from .reader import Store, decode_attr
from .writer import TILE_DTYPE, StoreWriter

__all__ = ["TILE_DTYPE", "Store", "StoreWriter", "decode_attr"]
