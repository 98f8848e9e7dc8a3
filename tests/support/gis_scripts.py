"""Scripts run by Debian's /usr/bin/python3 with osgeo.gdal (see gis_tools.system_python)."""

# For each (path, npy folder): what GDAL says about the file, with every band's pixels (and
# each overview's) saved as .npy files for the test to compare.
DESCRIBE = r"""
import json, sys
from pathlib import Path
import numpy as np
from osgeo import gdal
gdal.UseExceptions()
out = []
for path, folder in json.loads(sys.argv[1])[0]:
    ds = gdal.Open(path)
    folder = Path(folder); folder.mkdir(parents=True, exist_ok=True)
    item = {"driver": ds.GetDriver().ShortName, "size": [ds.RasterXSize, ds.RasterYSize],
            "count": ds.RasterCount, "geotransform": list(ds.GetGeoTransform()),
            "projection": ds.GetProjection(), "bands": []}
    for k in range(1, ds.RasterCount + 1):
        b = ds.GetRasterBand(k)
        ct = b.GetColorTable()
        rat = b.GetDefaultRAT()
        hist = b.GetDefaultHistogram(force=False)
        band = {"type": gdal.GetDataTypeName(b.DataType), "nodata": b.GetNoDataValue(),
                "interp": gdal.GetColorInterpretationName(b.GetColorInterpretation()),
                "metadata": b.GetMetadata(), "image_structure": b.GetMetadata("IMAGE_STRUCTURE"),
                "checksum": b.Checksum(), "categories": b.GetCategoryNames(),
                "colours": [list(ct.GetColorEntry(i)) for i in range(ct.GetCount())]
                if ct else None,
                "overviews": [[b.GetOverview(i).XSize, b.GetOverview(i).YSize]
                              for i in range(b.GetOverviewCount())],
                "histogram": [hist[0], hist[1], hist[2], list(hist[3])] if hist else None}
        if rat is not None and rat.GetColumnCount():
            cols = []
            for c in range(rat.GetColumnCount()):
                kind = rat.GetTypeOfCol(c)
                get = {gdal.GFT_Integer: rat.GetValueAsInt, gdal.GFT_Real: rat.GetValueAsDouble
                       }.get(kind, rat.GetValueAsString)
                cols.append({"name": rat.GetNameOfCol(c), "usage": rat.GetUsageOfCol(c),
                             "values": [get(r, c) for r in range(rat.GetRowCount())]})
            band["rat"] = cols
            band["binning"] = list(rat.GetLinearBinning())
        np.save(folder / f"band{k}.npy", b.ReadAsArray())
        for i in range(b.GetOverviewCount()):
            np.save(folder / f"band{k}_ovr{i + 1}.npy", b.GetOverview(i).ReadAsArray())
        item["bands"].append(band)
    out.append(item)
    ds = None
print(json.dumps(out))
"""

# A thematic KEA made through the GDAL API: colour table, a RAT with class names and a float
# column, nodata, georeference; pixels from a .npy file.
MAKE_KEA_WITH_RAT = r"""
import json, sys
import numpy as np
from osgeo import gdal, osr
gdal.UseExceptions()
path, pixels, names = json.loads(sys.argv[1])
data = np.load(pixels)
ds = gdal.GetDriverByName("KEA").Create(path, data.shape[1], data.shape[0], 1, gdal.GDT_Byte,
                                        ["THEMATIC=YES", "IMAGEBLOCKSIZE=16"])
ds.SetGeoTransform([500000, 5, 0, 6000000, 0, -5])
srs = osr.SpatialReference(); srs.ImportFromEPSG(32760)
ds.SetProjection(srs.ExportToWkt())
band = ds.GetRasterBand(1)
band.SetNoDataValue(255)
band.WriteArray(data)
ct = gdal.ColorTable()
for i in range(len(names)):
    ct.SetColorEntry(i, (40 * i, 255 - 40 * i, 7 * i, 255))
band.SetColorTable(ct)
rat = band.GetDefaultRAT()
rat.CreateColumn("ClassName", gdal.GFT_String, gdal.GFU_Name)
rat.CreateColumn("Area", gdal.GFT_Real, gdal.GFU_Generic)
rat.SetRowCount(len(names))
name_col, area_col = rat.GetColOfUsage(gdal.GFU_Name), rat.GetColumnCount() - 1
for i, name in enumerate(names):
    rat.SetValueAsString(i, name_col, name)
    rat.SetValueAsDouble(i, area_col, 1.5 * i)
ds = None
print(json.dumps({"written": path}))
"""

# QGIS (python3-qgis, headless): load each raster and the GeoPackage, report the renderer's
# classes, render each raster alone at one screen pixel per raster pixel to a PNG.
QGIS_RENDER = r"""
import json, os, sys
from qgis.core import (QgsApplication, QgsMapRendererSequentialJob, QgsMapSettings,
                       QgsRasterLayer, QgsVectorLayer, Qgis)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor
rasters, gpkg, layer_name, folder = json.loads(sys.argv[1])
app = QgsApplication([], False)
app.initQgis()
out = {"version": Qgis.QGIS_VERSION, "rasters": [], "layers": []}
keep = []
for path in rasters:
    layer = QgsRasterLayer(path, os.path.basename(path), "gdal")
    keep.append(layer)
    item = {"path": path, "valid": layer.isValid()}
    if layer.isValid():
        renderer = layer.renderer()
        item["renderer"] = renderer.type()
        item["classes"] = [[c.value, list(c.color.getRgb()), c.label]
                           for c in renderer.classes()] if renderer.type() == "paletted" else []
        settings = QgsMapSettings()
        settings.setLayers([layer])
        settings.setDestinationCrs(layer.crs())
        settings.setExtent(layer.extent())
        settings.setOutputSize(QSize(layer.width(), layer.height()))
        settings.setBackgroundColor(QColor(255, 255, 255))
        job = QgsMapRendererSequentialJob(settings)
        job.start()
        job.waitForFinished()
        png = os.path.join(folder, os.path.basename(path) + ".png")
        item["png"] = png if job.renderedImage().save(png, "PNG") else None
    out["rasters"].append(item)
vector = QgsVectorLayer(f"{gpkg}|layername={layer_name}", "vectors", "ogr")
keep.append(vector)
out["layers"].append({"valid": vector.isValid(), "features": vector.featureCount(),
                      "fields": [f.name() for f in vector.fields()],
                      "crs": vector.crs().authid(),
                      "class_names": sorted({f["class_name"] for f in vector.getFeatures()})})
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)  # QGIS 3.22's Python exit crashes after exitQgis() in some builds
"""
