"""QGIS styles of DeepSeg's outputs, so a class raster, an error map or a polygon layer opens in
QGIS with the experiment's classes, colours and names and nothing else: rasters get a ``.qml``
sidecar of the same name (QGIS applies ``<name>.qml`` beside ``<name>.tif`` by itself),
GeoPackage layers a default style in the file's ``layer_styles`` table (QGIS's own place)."""
