"""Open DeepSeg outputs in QGIS as a user would and render them (run by a QGIS Python:
Debian's /usr/bin/python3 with python3-qgis; headless with QT_QPA_PLATFORM=offscreen).

    /usr/bin/python3 docs/qgis/render.py '[{"path": "pred.tif", "png": "pred.png"},
                                           {"path": "pred.gpkg", "layer": "classes", ...}]'

Each item is loaded with QGIS's defaults only (the layer applies its own default style: the
``.qml`` beside a raster, the GeoPackage's ``layer_styles``), then described (renderer, its
classes or categories, the legend's entries) and drawn to ``png`` (rasters at one screen pixel
per raster pixel unless ``size`` is given). The description
of every item is printed as JSON on the last line.
"""

import json
import os
import sys

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsLayerTreeLayer,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor


def rgba(colour):
    return list(colour.getRgb())


def describe_raster(layer):
    renderer = layer.renderer()
    out = {"renderer": renderer.type(), "classes": []}
    if renderer.type() == "paletted":
        out["classes"] = [[c.value, rgba(c.color), c.label] for c in renderer.classes()]
    return out


def describe_vector(layer):
    renderer = layer.renderer()
    out = {"renderer": renderer.type(), "features": layer.featureCount(),
           "fields": [f.name() for f in layer.fields()], "crs": layer.crs().authid(),
           "categories": []}
    if renderer.type() == "categorizedSymbol":
        out["attribute"] = renderer.classAttribute()
        for cat in renderer.categories():
            fill = cat.symbol().symbolLayer(0)
            props = fill.properties()
            out["categories"].append({
                "value": cat.value(), "label": cat.label(), "fill": rgba(fill.fillColor()),
                "outline": rgba(fill.strokeColor()), "outline_style": props.get("outline_style"),
                "outline_width": fill.strokeWidth()})
    return out


def legend(layer):
    nodes = layer.legend().createLayerTreeModelLegendNodes(QgsLayerTreeLayer(layer))
    return [str(n.data(0)) for n in nodes]


def render(layers, extent, size, png):
    settings = QgsMapSettings()
    settings.setLayers(layers)
    settings.setDestinationCrs(layers[0].crs())
    settings.setExtent(extent)
    settings.setOutputSize(QSize(*size))
    settings.setBackgroundColor(QColor(255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    return png if job.renderedImage().save(png, "PNG") else None


def main():
    items = json.loads(sys.argv[1])
    app = QgsApplication([], False)
    app.initQgis()
    out, keep = {"version": Qgis.QGIS_VERSION, "items": []}, []
    for item in items:
        if item.get("layer"):
            layer = QgsVectorLayer(f"{item['path']}|layername={item['layer']}", item["layer"],
                                   "ogr")
        else:
            layer = QgsRasterLayer(item["path"], os.path.basename(item["path"]), "gdal")
        keep.append(layer)
        described = {"path": item["path"], "layer": item.get("layer"), "valid": layer.isValid()}
        if layer.isValid():
            described.update(describe_vector(layer) if item.get("layer") else
                             describe_raster(layer))
            described["legend"] = legend(layer)
            size = item.get("size") or [layer.width(), layer.height()]
            described["png"] = render([layer], layer.extent(), size, item["png"]) \
                if item.get("png") else None
        out["items"].append(described)
    print(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)  # QGIS 3.22's Python exit crashes after exitQgis() in some builds


if __name__ == "__main__":
    main()
