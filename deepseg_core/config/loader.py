"""Load experiment.yaml: YAML syntax, ``extends:`` chains, relative paths, schema validation.

Every problem becomes one line naming the file, the key path and what was expected.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..errors import ConfigError
from ..io.gdalpaths import gdal_open_problem, is_virtual
from .problems import schema_problems
from .safety import name_problem
from .schema import Experiment
from .stac import expand_sources

ENV_VAR = "DEEPSEG_EXPERIMENT"


class _Loader(yaml.SafeLoader):
    """YAML loader that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: experiment file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read experiment file ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file (byte {exc.start} is not UTF-8 text); "
                          "the experiment must be a YAML file such as experiment.yaml") from None
    try:
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, "
                          f"got {type(data).__name__}")
    return data


#: the model parameters that name a pretrained weights file (the U-Net family, maskrcnn)
PRETRAINED_FILES = ("encoder_weights", "backbone_weights")


def _resolve(value, folder: Path):
    if isinstance(value, list):
        return [_resolve(v, folder) for v in value]
    if isinstance(value, str) and value and not os.path.isabs(value) and not is_virtual(value):
        return str(folder / os.path.expanduser(value))
    return value


def _images(items, folder, source: Path, key: str):
    if isinstance(items, (str, dict)):
        items = [items]
    if not isinstance(items, list):
        return items
    items = expand_sources(items, folder, source, key)  # STAC items: a source per asset
    out = []
    for item in items:
        if isinstance(item, str):
            item = {"path": item}
        if isinstance(item, dict) and "path" in item:
            item = {**item, "path": _resolve(item["path"], folder)}
        out.append(item)
    return out


def _resolve_paths(data: dict, source: Path) -> dict:
    """Make the path keys of one file absolute against that file's folder."""
    data, folder = dict(data), source.parent
    if isinstance(data.get("model"), str):  # so `extends` can merge parameters into it
        data["model"] = {"name": data["model"]}
    if "workdir" in data:
        data["workdir"] = _resolve(data["workdir"], folder)
    if "images" in data:
        data["images"] = _images(data["images"], folder, source, "images")
    for section, keys in (("labels", ("path", "raster")), ("store", ("path",)),
                          ("model", ("weights", "path", *PRETRAINED_FILES))):
        sub = data.get(section)
        if isinstance(sub, dict):  # 'imagenet' names the Keras cache, not a file here
            data[section] = {k: (_resolve(v, folder) if k in keys and v != "imagenet" else v)
                             for k, v in sub.items()}
    if isinstance(data.get("scenes"), list):
        data["scenes"] = [_scene_paths(scene, source, f"scenes[{n}].images")
                          for n, scene in enumerate(data["scenes"])]
    pred = data.get("predict")
    if isinstance(pred, dict) and "images" in pred:
        data["predict"] = {**pred, "images": _images(pred["images"], folder, source,
                                                     "predict.images")}
    return data


def _scene_paths(scene, source: Path, key: str):
    if not isinstance(scene, dict):
        return scene
    scene, folder = dict(scene), source.parent
    if "images" in scene:
        scene["images"] = _images(scene["images"], folder, source, key)
    if isinstance(scene.get("labels"), dict):
        scene["labels"] = {k: (_resolve(v, folder) if k in ("path", "raster") else v)
                           for k, v in scene["labels"].items()}
    return scene


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_raw(path: Path, chain: tuple[Path, ...] = ()) -> dict:
    """The merged, path-resolved mapping of ``path`` and everything it extends."""
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise ConfigError(f"{chain[-1]}: extends: circular chain {cycle}")
    data = _resolve_paths(_read_yaml(path), path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends: expected a file name, got {parent!r}")
    base_path = path.parent / os.path.expanduser(parent)
    if not base_path.is_file():
        raise ConfigError(f"{path}: extends: file not found: {base_path}")
    base = load_raw(base_path, (*chain, path))
    base.pop("name", None)
    return _merge(base, data)


def _check_files(path: Path, exp: Experiment) -> list[str]:
    problems = []
    groups = [("images", exp.images or [], exp.labels, "labels")] if not exp.scenes else [
        (f"scenes[{n}].images", scene.images, scene.labels, f"scenes[{n}].labels")
        for n, scene in enumerate(exp.scenes)] + [("images", [], exp.labels, "labels")]
    for where, images, labels, lwhere in groups:
        for i, src in enumerate(images):
            for item in src.path if isinstance(src.path, list) else [src.path]:
                matches = expand_paths(item)
                if not matches:
                    problems.append(f"{path}: {where}[{i}].path: no files match {item}")
                asset = f" (asset {src.assets[0]} of {src.stac})" if src.stac and src.assets else ""
                for p in matches:
                    problems += _missing(path, f"{where}[{i}].path{asset}", p)
        if labels is not None:
            for key in ("path", "raster"):
                value = getattr(labels, key)
                if value:
                    problems += _missing(path, f"{lwhere}.{key}", value)
    return problems


def _missing(path: Path, key: str, value: str) -> list[str]:
    """A local file must exist; a GDAL virtual path or URL must open in GDAL."""
    if not is_virtual(value):
        return [] if Path(value).exists() else [f"{path}: {key}: file not found: {value}"]
    why = gdal_open_problem(value)
    return [f"{path}: {key}: GDAL cannot open {value}: {why}"] if why else []


def expand_paths(value: str | list[str]) -> list[str]:
    """A path, glob or list of them as a sorted list of paths (a missing plain path stays)."""
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        magic = glob.has_magic(item) and not is_virtual(item)  # a URL's '?' is no pattern
        matches = sorted(glob.glob(item)) if magic else [item]
        out.extend(matches)
    return out


def load_experiment(path: str | Path | None = None, check_files: bool = True) -> Experiment:
    """Load and validate an experiment (``DEEPSEG_EXPERIMENT`` when ``path`` is None)."""
    if path is None:
        path = os.environ.get(ENV_VAR)
        if not path:
            raise ConfigError(f"no experiment given: name an experiment.yaml or set {ENV_VAR}")
    path = Path(path).resolve()
    data = load_raw(path)
    if "name" not in data and (why := name_problem(path.stem)):
        raise ConfigError(f"{path}: name: not set, so the file name gives it, but {why}; "
                          "set 'name:' in the file or rename it")
    data.setdefault("name", path.stem)
    data.setdefault("workdir", str(path.parent))
    try:
        exp = Experiment.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(schema_problems(path, exc)) from None
    problems = _check_files(path, exp) if check_files else []
    if problems:
        raise ConfigError(problems)
    exp._source = path
    return exp
