"""STAC inputs: ``images: [{stac: item.json, assets: [B02, B03, B04, B08]}]``.

A STAC item (or a catalog or collection of items, or a saved item collection), given as a local
path or a ``file://`` URL, is read as plain JSON when the experiment is loaded (no network, no
pystac: an item is a few keys). Each asset key becomes one image source, stacked in the given
order like any source and resampled onto the grid with the source's options (Sentinel-2's 20 m
bands onto the 10 m grid); with several items, each key's files form a mosaic. Asset hrefs
resolve against their item's location; ``https://``, ``s3://`` and ``gs://`` hrefs become GDAL
paths (``/vsicurl/``, ``/vsis3/``, ``/vsigs/``). The expanded sources name their STAC file and
asset, so fingerprints (deepseg_core.io.fingerprint) cover the asset files themselves.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ..errors import ConfigError

GDAL_SCHEMES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/"}
MAX_ITEMS = 100_000  # a catalog larger than this is a search, not an input


def local(ref: str, base: Path) -> Path:
    """A path or ``file://`` URL, relative ones against ``base`` (a folder)."""
    parsed = urlparse(ref)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # not a Windows drive letter
        raise ValueError(f"{ref!r}: a STAC file must be local or file:// (no network while "
                         "loading the experiment); download it first")
    return Path(os.path.normpath(base / os.path.expanduser(ref)))


def asset_path(href: str, item: Path) -> str:
    """Where GDAL reads an asset: a local file, or a GDAL path for a URL."""
    parsed = urlparse(href)
    if parsed.scheme in GDAL_SCHEMES:
        rest = href if parsed.scheme.startswith("http") else href.split("://", 1)[1]
        return GDAL_SCHEMES[parsed.scheme] + rest
    return str(local(href, item.parent))


def read_items(path: Path, seen: set[Path] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """(file, item) for an item, or every item a catalog, collection or feature collection
    reaches through its local ``item`` and ``child`` links."""
    seen = set() if seen is None else seen
    if path in seen:
        return []
    seen.add(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path}: STAC file not found") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: not a STAC JSON file ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a STAC JSON object")
    kind = data.get("type")
    if kind == "Feature":
        return [(path, data)]
    if kind == "FeatureCollection":
        return [(path, f) for f in data.get("features", []) if isinstance(f, dict)]
    if kind not in ("Catalog", "Collection"):
        raise ValueError(f"{path}: type {kind!r} is no STAC item, catalog or collection")
    found: list[tuple[Path, dict[str, Any]]] = []
    for link in data.get("links", []):
        if isinstance(link, dict) and link.get("rel") in ("item", "child") and link.get("href"):
            found += read_items(local(str(link["href"]), path.parent), seen)
            if len(found) > MAX_ITEMS:
                raise ValueError(f"{path}: more than {MAX_ITEMS} items")
    return found


def expand(entry: dict[str, Any], folder: Path) -> list[dict[str, Any]]:
    """The image sources of one ``{stac: ..., assets: [...]}`` entry (ValueError: why not)."""
    if "path" in entry:
        raise ValueError("give 'path' (files) or 'stac' (a STAC item), not both")
    assets = entry.get("assets")
    if not isinstance(assets, list) or not assets or not all(isinstance(a, str) for a in assets):
        raise ValueError("'assets' must list the asset keys to stack, e.g. [B02, B03, B04]")
    path = local(str(entry["stac"]), folder)
    items = read_items(path)
    if not items:
        raise ValueError(f"{path}: no STAC item found")
    options = {k: v for k, v in entry.items() if k not in ("stac", "assets", "name")}
    sources = []
    for key in assets:
        files = []
        for where, item in items:
            found = item.get("assets", {}).get(key) if isinstance(item.get("assets"), dict) \
                else None
            if not isinstance(found, dict) or not found.get("href"):
                have = ", ".join(sorted(item.get("assets") or {})) or "none"
                raise ValueError(f"{where}: item {item.get('id')!r} has no asset {key!r} "
                                 f"(its assets: {have})")
            files.append(asset_path(str(found["href"]), where))
        name = f"{entry['name']}_{key}" if entry.get("name") else key
        sources.append({**options, "path": files[0] if len(files) == 1 else files,
                        "name": name, "stac": str(path), "assets": [key]})
    return sources


def expand_sources(items: list[Any], folder: Path, source: Path, key: str) -> list[Any]:
    """``items`` with every STAC entry replaced by its sources; one ConfigError line naming
    the experiment file and the key when one cannot be."""
    out: list[Any] = []
    for i, item in enumerate(items):
        if not (isinstance(item, dict) and "stac" in item):
            out.append(item)
            continue
        try:
            out += expand(item, folder)
        except ValueError as exc:
            raise ConfigError(f"{source}: {key}[{i}].stac: {exc}") from None
    return out
