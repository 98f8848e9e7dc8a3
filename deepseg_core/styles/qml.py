"""The QML documents: a paletted raster renderer and a categorized polygon renderer.

They hold only what the style is for (QGIS fills every other setting with its defaults when it
applies them), in the form QGIS 3.22 writes itself (``QgsMapLayer.saveNamedStyle``).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass

QGIS_VERSION = "3.22.0"  # the oldest QGIS these documents were checked with
HEADER = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
Rgba = tuple[int, int, int, int]


@dataclass(frozen=True)
class Entry:
    """One legend entry: a pixel value or attribute value, its colour and its label."""

    value: int
    rgba: Rgba
    label: str


def _document(root: ET.Element) -> str:
    ET.indent(root)
    return HEADER + ET.tostring(root, encoding="unicode") + "\n"


def paletted_raster(entries: Sequence[Entry], band: int = 1) -> str:
    """A raster style: band ``band`` paletted with exactly ``entries`` (values not listed, the
    band's nodata among them, are not drawn), nearest-neighbour resampling (class values)."""
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology")
    pipe = ET.SubElement(root, "pipe")
    provider = ET.SubElement(pipe, "provider")
    ET.SubElement(provider, "resampling", enabled="false", maxOversampling="2",
                  zoomedInResamplingMethod="nearestNeighbour",
                  zoomedOutResamplingMethod="nearestNeighbour")
    renderer = ET.SubElement(pipe, "rasterrenderer", type="paletted", band=str(band),
                             opacity="1", alphaBand="-1", nodataColor="")
    palette = ET.SubElement(renderer, "colorPalette")
    for e in entries:
        ET.SubElement(palette, "paletteEntry", value=str(e.value), color=_hex(e.rgba),
                      alpha=str(e.rgba[3]), label=e.label)
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    return _document(root)


def categorized_polygons(attribute: str, entries: Sequence[Entry], fill_alpha: int | None = None,
                         outline_width: float = 0.2, outline_shade: float = 0.6) -> str:
    """A polygon style: one category per entry on ``attribute``; the fill in the entry's colour
    (at ``fill_alpha`` when given), the outline in a darker shade (``outline_shade`` of it)."""
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology")
    renderer = ET.SubElement(root, "renderer-v2", type="categorizedSymbol", attr=attribute,
                             symbollevels="0", enableorderby="0", forceraster="0")
    categories = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    for i, e in enumerate(entries):
        ET.SubElement(categories, "category", value=str(e.value), label=e.label,
                      symbol=str(i), render="true")
        fill = (*e.rgba[:3], e.rgba[3] if fill_alpha is None else fill_alpha)
        outline = (*(round(v * outline_shade) for v in e.rgba[:3]), 255)
        symbol = ET.SubElement(symbols, "symbol", type="fill", name=str(i), alpha="1",
                               clip_to_extent="1", force_rhr="0")
        layer = ET.SubElement(symbol, "layer", attrib={"class": "SimpleFill", "pass": "0"},
                              enabled="1", locked="0")
        for key, value in (("color", _csv(fill)), ("style", "solid"),
                           ("outline_color", _csv(outline)), ("outline_style", "solid"),
                           ("outline_width", f"{outline_width:g}"),
                           ("outline_width_unit", "MM"), ("joinstyle", "bevel")):
            ET.SubElement(layer, "prop", k=key, v=value)
    return _document(root)


def _hex(rgba: Rgba) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def _csv(rgba: Sequence[int]) -> str:
    return ",".join(str(int(v)) for v in rgba)
