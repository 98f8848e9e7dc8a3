"""The QGIS style of a GeoPackage layer: a row of the file's ``layer_styles`` table.

QGIS keeps a layer's styles in the GeoPackage itself, in the table ``layer_styles`` it creates
(the schema below is QGIS 3.22's own, so a style saved later from QGIS lands in the same table);
the row marked ``useAsDefault`` is applied whenever the layer is opened. The table is written
with SQLite in one transaction, into the output's temporary file before it is published, and
registered in ``gpkg_contents`` as an attributes table, as QGIS and GDAL register it.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import DeepSegError, io_error
from .qml import Entry, categorized_polygons

TABLE = "layer_styles"
SCHEMA = (f'CREATE TABLE IF NOT EXISTS "{TABLE}" ("id" INTEGER PRIMARY KEY AUTOINCREMENT '
          'NOT NULL, "f_table_catalog" TEXT(256), "f_table_schema" TEXT(256), "f_table_name" '
          'TEXT(256), "f_geometry_column" TEXT(256), "styleName" TEXT(30), "styleQML" TEXT, '
          '"styleSLD" TEXT, "useAsDefault" BOOLEAN, "description" TEXT, "owner" TEXT(30), '
          '"ui" TEXT(30), "update_time" DATETIME DEFAULT '
          "(strftime('%Y-%m-%dT%H:%M:%fZ','now')))")
STYLE_NAME = "deepseg"
CROWN_FILL_ALPHA = 70  # instance crowns: a light fill and a strong outline in the class
CROWN_OUTLINE = 0.5  # colour (mm), so every crown shows as its own outline


def class_entries(class_names: Sequence[str], colours: Mapping[int, Sequence[int]],
                  skip: Sequence[int] = ()) -> list[Entry]:
    """A category per class id (``skip``: ids the layer never holds)."""
    out = []
    for value, name in enumerate(class_names):
        if value in skip:
            continue
        r, g, b, *a = (int(c) for c in colours.get(value, (128, 128, 128, 255)))
        out.append(Entry(value, (r, g, b, a[0] if a else 255), name))
    return out


def class_polygons_style(class_names: Sequence[str], colours: Mapping[int, Sequence[int]],
                         skip: Sequence[int] = ()) -> str:
    """Class polygons: filled in their class colour, outlined a shade darker."""
    return categorized_polygons("class_id", class_entries(class_names, colours, skip))


def crowns_style(class_names: Sequence[str], colours: Mapping[int, Sequence[int]]) -> str:
    """Instance polygons (tree crowns): each its own outline in its class colour."""
    return categorized_polygons("class_id", class_entries(class_names, colours, skip=(0,)),
                                fill_alpha=CROWN_FILL_ALPHA, outline_width=CROWN_OUTLINE,
                                outline_shade=1.0)


def write_layer_style(gpkg: Path, layer: str, qml: str, description: str = "") -> None:
    """Make ``qml`` the default style of ``layer`` in ``gpkg`` (replacing DeepSeg's earlier one)."""
    try:
        with contextlib.closing(sqlite3.connect(gpkg)) as db, db:
            found = db.execute("SELECT column_name FROM gpkg_geometry_columns WHERE "
                               "lower(table_name) = lower(?)", (layer,)).fetchone()
            if found is None:
                raise DeepSegError(f"{gpkg}: no layer {layer!r} to give a style")
            db.execute(SCHEMA)
            db.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier) "
                       "VALUES (?, 'attributes', ?)", (TABLE, TABLE))
            db.execute(f'UPDATE "{TABLE}" SET useAsDefault = 0 WHERE f_table_name = ?', (layer,))
            db.execute(f'DELETE FROM "{TABLE}" WHERE f_table_name = ? AND styleName = ?',
                       (layer, STYLE_NAME))
            db.execute(f'INSERT INTO "{TABLE}" (f_table_catalog, f_table_schema, f_table_name, '
                       'f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, '
                       "description, owner, ui) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '')",
                       (layer, found[0], STYLE_NAME, qml, description))
    except sqlite3.Error as exc:
        raise DeepSegError(f"{gpkg}: cannot write the style of layer {layer!r} ({exc})") from None
    except OSError as exc:
        raise io_error(gpkg, exc, f"cannot write the style of layer {layer!r}") from None


def layer_style(gpkg: Path, layer: str) -> str | None:
    """The default style (QML) of ``layer`` in ``gpkg``, None when it has none."""
    with contextlib.closing(sqlite3.connect(gpkg)) as db:
        try:
            row = db.execute(f'SELECT styleQML FROM "{TABLE}" WHERE f_table_name = ? AND '
                             "useAsDefault = 1 ORDER BY id DESC LIMIT 1", (layer,)).fetchone()
        except sqlite3.OperationalError:  # no layer_styles table
            return None
    return row[0] if row else None
