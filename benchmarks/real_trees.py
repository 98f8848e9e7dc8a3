"""Real-imagery benchmark: NEON tree crowns from the deepforest 2.1.0 wheel (issue 17).

    python benchmarks/real_trees.py [--workdir DIR] [--gpu | --smoke] [--only KIND]
        [--epochs N] [--steps N] [--set instance.model.anchor_octaves=3 ...]

Gets the wheel with ``pip download --no-deps deepforest==2.1.0`` (the only network use),
turns its NEON 0.1 m RGB PNGs into GeoTIFFs (a made-up UTM georeference) and their Pascal VOC
boxes into crown polygons (each box's inscribed ellipse), trains Mask R-CNN and the U-Net on
``2019_YELL_2_528000_4978000_image_crop2`` and predicts ``OSBS_029`` and ``SOAP_061`` (other
sites) and ``2019_YELL_2_541000_4977000_image_crop`` (the training site, another plot: tells
what the model learnt apart from the change of site).
Reports per validation image: box precision, recall and F1 at IoU >= 0.4 with one-to-one
matching (DeepForest's rule: Hungarian assignment); mask AP50; the U-Net's canopy IoU; CPU time.
The CPU schedule fits 30 minutes on 2 cores; ``--gpu`` trains longer; ``--smoke`` checks the
pipeline in a few minutes (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import yaml

TRAIN = "2019_YELL_2_528000_4978000_image_crop2"
VALIDATE = ("OSBS_029", "SOAP_061")  # other sites (Florida pines, Californian oak and pine)
SAME_SITE = "2019_YELL_2_541000_4977000_image_crop"  # another Yellowstone plot (279 trees)
CRS = "EPSG:32612"
CLASSES = [{"name": "background", "color": "#000000"},
           {"name": "tree", "color": "#1a9641", "value": "tree"}]
#: Mask R-CNN for 0.1 m crowns of 15-75 px on 256 px tiles: 3 anchor sides per level and RPN
#: positives from IoU 0.5 (one anchor scale per level left most crowns one positive anchor);
#: proposal and ROI counts scaled to a 256 px tile (the defaults suit 1024 px: 2.6x slower)
MASKRCNN = {"name": "maskrcnn", "backbone": "resnet_tiny", "fpn_channels": 64,
            "head_fc": 256, "mask_channels": 64, "anchor_scales": [8, 16, 32, 64, 128],
            "anchor_octaves": 3, "anchor_ratios": [1.0], "rpn_positive_iou": 0.5,
            "pre_nms_limit": 1000, "proposals_train": 300, "proposals_infer": 300,
            "rois_per_image": 64, "detection_min_confidence": 0.3}
UNET = {"name": "unet64", "filters": 16, "depth": 3}
#: (epochs, steps per epoch) of each model: CPU (<= 30 min on 2 cores), GPU, smoke
SCHEDULES = {"cpu": {"instance": (30, 40), "semantic": (8, 40)},
             "gpu": {"instance": (40, 100), "semantic": (40, 100)},
             "smoke": {"instance": (1, 2), "semantic": (1, 2)}}


def fetch(cache: Path) -> dict[str, tuple[bytes, bytes]]:
    """{image name: (png bytes, VOC xml bytes)} from the deepforest wheel (downloaded once)."""
    wheels = sorted(cache.glob("deepforest-2.1.0-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "deepforest==2.1.0", "-d", str(cache)], check=True)
        wheels = sorted(cache.glob("deepforest-2.1.0-*.whl"))
    with zipfile.ZipFile(wheels[0]) as wheel:
        return {name: (wheel.read(f"deepforest/data/{name}.png"),
                       wheel.read(f"deepforest/data/{name}.xml"))
                for name in (TRAIN, *VALIDATE, SAME_SITE)}


def voc_boxes(xml: bytes) -> np.ndarray:
    """``(n, 4)`` pixel boxes xmin, ymin, xmax, ymax of a Pascal VOC annotation."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml)
    return np.array([[float(o.find("bndbox").find(k).text) for k in
                      ("xmin", "ymin", "xmax", "ymax")] for o in root.iter("object")])


def convert(name: str, png: bytes, xml: bytes, folder: Path, origin) -> dict:
    """GeoTIFF and crown GeoPackage of one image; its transform and truth boxes."""
    import geopandas as gpd
    import rasterio
    from affine import Affine
    from rasterio.io import MemoryFile
    from shapely.affinity import scale
    from shapely.geometry import Point

    with MemoryFile(png) as mem, mem.open() as src:
        rgb = src.read([1, 2, 3])
    transform = Affine(0.1, 0, origin[0], 0, -0.1, origin[1])
    tif = folder / f"{name}.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=rgb.shape[2], height=rgb.shape[1],
                       count=3, dtype=rgb.dtype, crs=CRS, transform=transform) as dst:
        dst.write(rgb)
    boxes = voc_boxes(xml)
    crowns = []
    for x0, y0, x1, y1 in boxes:
        (a, b), (c, d) = transform @ (x0, y1), transform @ (x1, y0)
        crowns.append(scale(Point((a + c) / 2, (b + d) / 2).buffer(1), (c - a) / 2,
                            (d - b) / 2))
    gpkg = folder / f"{name}.gpkg"
    gpd.GeoDataFrame({"class": ["tree"] * len(crowns)}, geometry=crowns, crs=CRS).to_file(
        gpkg, driver="GPKG")
    return {"tif": tif, "gpkg": gpkg, "transform": transform, "boxes": boxes,
            "shape": rgb.shape[1:]}


def experiment(folder: Path, kind: str, data: dict, schedule, overrides=(),
               train=(TRAIN,)) -> Path:
    """The experiment file of one model; several ``train`` images become training scenes."""
    epochs, steps = schedule
    instance = kind == "instance"
    exp = {"name": kind, "workdir": str(folder / "runs"), "segmentation_type": kind,
           "tilesize": 256, "overlap": 64, "nbands": 3, "epochs": epochs, "folds": 1,
           "learning_rate": 2e-3,
           "images": [{"path": str(data[train[0]]["tif"])}],
           "labels": {"path": str(data[train[0]]["gpkg"]), "class_field": "class"},
           "classes": CLASSES, "model": dict(MASKRCNN if instance else UNET),
           "training": {"batch_size": 4 if instance else 8, "steps_per_epoch": steps,
                        "lr_schedule": "cosine", "warmup_epochs": 1},
           # colour jitter: the validation sites differ in light and vegetation
           "augmentation": ["flips", {"name": "jitter", "brightness": 0.2, "contrast": 0.2,
                                      "noise": 0.02}],
           "stages": ["dataprep", "train"]}
    if len(train) > 1:  # several training areas, each tiled on its own (issue 17, item 4)
        exp["scenes"] = [{"name": name, "images": [str(data[name]["tif"])],
                          "labels": {"path": str(data[name]["gpkg"]), "class_field": "class"}}
                         for name in train]
    for key, value in overrides:
        *parents, leaf = key.split(".")
        node = exp
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value
    path = folder / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def box_scores(truth: np.ndarray, pred: np.ndarray, threshold: float = 0.4) -> dict:
    """Precision, recall, F1 of ``pred`` boxes against ``truth``, matched one to one.

    DeepForest's rule: the assignment of predictions to truth boxes that maximizes the summed
    IoU (Hungarian method), of which the pairs with IoU >= ``threshold`` are true positives.
    """
    from scipy.optimize import linear_sum_assignment

    if len(pred) == 0 or len(truth) == 0:
        return {"precision": 0.0, "recall": 0.0, "F1": 0.0, "predicted": len(pred)}
    lo, hi = np.maximum(truth[:, None, :2], pred[None, :, :2]), np.minimum(
        truth[:, None, 2:], pred[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=-1)
    area = lambda b: np.prod(b[:, 2:] - b[:, :2], axis=-1)  # noqa: E731
    iou = inter / (area(truth)[:, None] + area(pred)[None, :] - inter)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    tp = int((iou[rows, cols] >= threshold).sum())
    precision, recall = tp / len(pred), tp / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {"precision": precision, "recall": recall, "F1": f1, "predicted": len(pred)}


def evaluate(exp, registry, kind: str, item: dict) -> dict:
    """Predict one validation image with the trained model and score it."""
    import geopandas as gpd
    import rasterio
    from rasterio.features import rasterize

    from deepseg_core.config.schema import ImageSource
    from deepseg_core.metrics.instances import InstanceMetric
    from deepseg_core.stages import predict

    exp.predict.images = [ImageSource(path=str(item["tif"]))]
    exp.predict.output = f"predictions/{item['tif'].stem}.tif"
    exp.predict.score_threshold = 0.3
    out = predict.run(exp, registry)
    truth = gpd.read_file(item["gpkg"])
    t = item["transform"]
    with rasterio.open(out) as src:
        predicted = src.read(1)
    if kind == "semantic":
        canopy = rasterize(list(truth.geometry), out_shape=item["shape"], transform=t) > 0
        tree = predicted == 1
        return {"canopy_IoU": float((canopy & tree).sum() / max((canopy | tree).sum(), 1))}
    frame = gpd.read_file(out.with_suffix(".gpkg"))
    inv = ~t
    boxes = []
    for x0, y0, x1, y1 in frame.geometry.bounds.to_numpy():
        (c0, r0), (c1, r1) = inv @ (x0, y1), inv @ (x1, y0)
        boxes.append([c0, r0, c1, r1])
    scores = box_scores(item["boxes"], np.array(boxes).reshape(-1, 4))
    ids = rasterize([(g, i + 1) for i, g in enumerate(truth.geometry)],
                    out_shape=item["shape"], transform=t, dtype="int32")
    metric = InstanceMetric(["background", "tree"])
    metric.update(ids, predicted.astype(np.int64),
                  scores=dict(zip(frame["instance_id"].tolist(), frame["score"].tolist())))
    return {**scores, "mask_AP50": metric.summary()["AP50"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("real_trees_run"))
    parser.add_argument("--gpu", action="store_true", help="the longer GPU schedule")
    parser.add_argument("--smoke", action="store_true", help="a few steps: checks the pipeline")
    parser.add_argument("--only", choices=("instance", "semantic"),
                        help="train one model only (the other's figures in results.json stay)")
    parser.add_argument("--train", nargs="+", choices=(TRAIN, SAME_SITE), default=[TRAIN],
                        help="training images (several: one training scene each)")
    parser.add_argument("--epochs", type=int, help="epochs instead of the schedule's")
    parser.add_argument("--steps", type=int, help="steps per epoch instead of the schedule's")
    parser.add_argument("--set", action="append", default=[], metavar="KIND.KEY=VALUE",
                        help="override an experiment key (YAML value), e.g. "
                             "instance.model.rpn_positive_iou=0.5 or semantic.learning_rate=0.01")
    args = parser.parse_args(argv)
    from deepseg_core.config import load_experiment
    from deepseg_core.plugins.manager import load_plugins
    from deepseg_core.stages import dataprep, train

    folder = args.workdir.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    raw = fetch(folder / "wheel")
    data = {name: convert(name, png, xml, folder, (500_000 + 10_000 * i, 4_900_000))
            for i, (name, (png, xml)) in enumerate(raw.items())}
    schedule = SCHEDULES["smoke" if args.smoke else "gpu" if args.gpu else "cpu"]
    overrides = {kind: [] for kind in schedule}
    for item in args.set:
        key, _, value = item.partition("=")
        kind, _, key = key.partition(".")
        if kind not in overrides or not key or not value:
            parser.error(f"--set {item!r}: expected instance.KEY=VALUE or semantic.KEY=VALUE")
        overrides[kind].append((key, yaml.safe_load(value)))
    registry = load_plugins().registry
    saved = folder / "results.json"
    # --only replaces one model's figures and keeps the other's from an earlier run
    results = json.loads(saved.read_text()) if args.only and saved.exists() else {}
    for kind in [args.only] if args.only else ("instance", "semantic"):
        epochs, steps = schedule[kind]
        chosen = (args.epochs or epochs, args.steps or steps)
        exp = load_experiment(experiment(folder, kind, data, chosen, overrides[kind],
                                         args.train))
        cpu, wall = time.process_time(), time.time()
        dataprep.run(exp, registry)
        train.run(exp, registry)
        results[kind] = {"cpu_s": time.process_time() - cpu,  # dataprep + training
                         "wall_s": time.time() - wall, "schedule": chosen,
                         "overrides": dict(overrides[kind]), "train": args.train,
                         "curve": curve(exp)}
        for name in (*VALIDATE, SAME_SITE):
            results[kind][name] = evaluate(exp, registry, kind, data[name])
    saved.write_text(json.dumps(results, indent=1))
    print(table(results))


def curve(exp) -> dict[str, list[float]]:
    """The learning curve: training.csv's columns (losses per epoch), empty ones left out."""
    from deepseg_core.training.curves import read_log

    columns = read_log(exp.outdir / "logs" / "training.csv")
    return {k: v for k, v in columns.items() if not all(np.isnan(x) for x in v)}


def table(results: dict) -> str:
    """The benchmark table (Markdown), one row per validation image."""
    lines = ["| image | box P | box R | box F1 (IoU 0.4) | mask AP50 | U-Net canopy IoU |",
             "|---|---|---|---|---|---|"]
    blank = {"precision": float("nan"), "recall": float("nan"), "F1": float("nan"),
             "mask_AP50": float("nan"), "canopy_IoU": float("nan")}
    trained = {n for r in results.values() for n in r.get("train", [TRAIN])}
    for name in (*VALIDATE, SAME_SITE):
        i = results.get("instance", {}).get(name, blank)
        s = results.get("semantic", {}).get(name, blank)
        label = f"{name} (a training scene)" if name in trained else name
        lines.append(f"| {label} | {i['precision']:.3f} | {i['recall']:.3f} | {i['F1']:.3f} | "
                     f"{i['mask_AP50']:.3f} | {s['canopy_IoU']:.3f} |")
    names = {"instance": "Mask R-CNN", "semantic": "U-Net"}
    lines.append("\ndataprep + training CPU time: " + ", ".join(
        f"{names[kind]} {results[kind]['cpu_s']:.0f} s" for kind in results))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
