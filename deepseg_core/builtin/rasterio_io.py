"""Built-in plugin rasterio_io."""
