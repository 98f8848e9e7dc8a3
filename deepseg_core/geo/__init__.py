"""Geometry helpers: tile grids and cores, streaming polygonization, GeoPackage output."""
