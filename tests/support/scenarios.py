"""What the kill tests and ``benchmarks/kill_campaign.py`` kill: a stage run on a small scene,
its uninterrupted run's outputs to compare with, and a fresh start between rounds.

Each scenario has ``args`` (the ``deepseg`` command line), ``boundaries`` (the uninterrupted
run's I/O boundaries, tests.support.child), ``seconds`` (how long that run worked),
``restart()``, ``prepare()`` (before each run), ``began()`` (the work began: random moments
count from then), ``finished()`` (the outputs once a run ended, compared with ``reference``)
and ``test_models`` (whether the children need the test models).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

from . import cli, kills
from .models import save_untrained
from .synthetic import labelled_scene, predict_experiment, squares_scene, write_experiment


def timed_trace(args, folder: Path, **launch):
    """The I/O boundaries of an uninterrupted run, and its seconds."""
    began = time.monotonic()
    boundaries = kills.trace(*args, folder=folder, **launch)
    return boundaries, time.monotonic() - began


def passes(check, *args) -> bool:
    """Whether ``check(*args)``, a function that asserts, passes."""
    try:
        check(*args)
    except AssertionError:
        return False
    return True


class Scenario:
    test_models = False
    reference: object = None

    def prepare(self) -> None:
        """Before each run (nothing by default)."""

    def began(self) -> bool:
        return True

    def equal(self) -> bool:
        return self.same(self.finished(), self.reference)

    @staticmethod
    def same(found, expected) -> bool:
        return found == expected


# ------------------------------------------------------------------------------- predict

SEMANTIC = dict(model="numpyfcn", tilesize=32, overlap=8)
INSTANCE = dict(model="numpyblobs", segmentation_type="instance", tilesize=64, overlap=32,
                classes=[{"name": "background"}, {"name": "blob"}])
PREDICT_MODES = {  # name: experiment settings, predict arguments of the killed runs
    "cores": (dict(SEMANTIC, predict={"probabilities": "uint8", "commit_seconds": 0}), []),
    "blend": (dict(SEMANTIC, predict={"blend": True, "probabilities": "float32",
                                      "commit_seconds": 0}), []),
    "instance": (dict(INSTANCE, predict={"output": "predictions/blobs.tif",
                                         "commit_seconds": 0}), []),
    "instance-shard": (dict(INSTANCE, predict={"output": "predictions/blobs.tif",
                                               "commit_seconds": 0}), ["--shard", "0/2"]),
}


def predict_outputs(out: Path) -> dict:
    """What a finished prediction left beside ``out``: raster bytes; GeoPackage features (not
    bytes: SQLite pages carry timestamps)."""
    import geopandas as gpd

    found = {}
    for path in sorted(out.parent.iterdir()):
        if path.name.endswith(".published.json"):  # bookkeeping: its shard count differs
            found[path.name] = "record"
        elif path.suffix == ".gpkg":
            frame = gpd.read_file(path)
            found[path.name] = sorted(zip(frame.geometry.to_wkb(), frame["score"] if "score"
                                          in frame else frame["class_id"]))
        else:
            found[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def committed(out: Path) -> str:
    """Tiles in the commit records (semantic) or progress records (instances) beside ``out``."""
    records = [json.loads(p.read_text()) for p in out.parent.glob("*.json")]
    return ",".join(str(r["tiles"]) for r in records if "tiles" in r) or "none"


def run(*args, **launch):
    """``deepseg ARGS`` with the test models, to its end."""
    done = cli.deepseg(*args, test_models=True, merged=True, **launch)
    assert done.returncode == 0, done.stdout[-3000:]
    return done


class Predict(Scenario):
    """``deepseg predict`` of a 300 px squares scene with a NumPy test model, in one of
    :data:`PREDICT_MODES`; a shard's outputs are those of the merge with the other shard."""

    test_models = True

    def __init__(self, folder: Path, registry, mode: str, size: int = 300, seed: int = 7):
        settings, self.extra = PREDICT_MODES[mode]
        img, _, _ = squares_scene(folder, size=size, nsquares=size // 7, seed=seed)
        self.exp = predict_experiment(folder, img, **settings)
        save_untrained(self.exp, registry, img)
        self.path = self.exp.source
        from deepseg_core.stages import predict

        self.out = predict.output_path(self.exp)
        self.args = ["predict", str(self.path), *self.extra]
        self.boundaries, self.seconds = timed_trace(self.args, folder, test_models=True)
        self.kept = folder / "other-shard"
        if self.extra:  # a shard: the rest of the grid and the merge make the outputs
            run("predict", self.path, "--shard", "1/2")
            self.kept.mkdir()
            for p in self.out.parent.glob("*part-0001*"):
                shutil.copy(p, self.kept / p.name)
            run("merge", self.path)
        self.reference = predict_outputs(self.out)
        assert self.reference and not any(".part-" in name for name in self.reference)

    def restart(self) -> None:
        """No outputs and no partials of this shard: a fresh start."""
        shutil.rmtree(self.out.parent)
        self.out.parent.mkdir()

    def began(self) -> bool:
        return any(".part-" in p.name for p in self.out.parent.iterdir())

    def probe(self) -> str:
        return committed(self.out)

    def finished(self) -> dict:
        """The outputs, once the other shard and the merge are added to a shard's run."""
        if self.extra:
            for p in self.kept.iterdir():
                shutil.copy(p, self.out.parent / p.name)
            run("merge", self.path)
        return predict_outputs(self.out)


class Merge(Scenario):
    """``deepseg merge`` of three shards of the ``cores`` mode; the reference is the single
    run's outputs (``predict``)."""

    test_models = True

    def __init__(self, folder: Path, predict: Predict):
        self.out, self.reference = predict.out, predict.reference
        predict.restart()
        for i in range(3):
            run("predict", predict.path, "--shard", f"{i}/3")
        self.shards = folder / "shards"
        shutil.copytree(self.out.parent, self.shards)
        self.args = ["merge", str(predict.path)]
        self.boundaries, self.seconds = timed_trace(self.args, folder, test_models=True)
        assert predict_outputs(self.out) == self.reference

    def restart(self) -> None:
        shutil.rmtree(self.out.parent)
        shutil.copytree(self.shards, self.out.parent)

    def finished(self) -> dict:
        return predict_outputs(self.out)


# --------------------------------------------------------------------------------- train

def model_weights(path: Path) -> list[np.ndarray]:
    import keras

    return keras.saving.load_model(path, compile=False).get_weights()


def same_training(a: Path, b: Path) -> None:
    """The outputs of two training runs are equal bit for bit (TensorBoard and hashes aside)."""
    for name in ("last.keras", "best.keras"):
        wa, wb = model_weights(a / "model" / name), model_weights(b / "model" / name)
        assert all(np.array_equal(x, y) for x, y in zip(wa, wb)), name
    for name in ("logs/training.csv", "logs/curves.png", "model/model.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ra, rb = (json.loads((d / "model" / "state.json").read_text()) for d in (a, b))
    ra.pop("files"), rb.pop("files")  # .keras files hold their save date
    assert ra == rb
    assert not list((b / "model").glob("*.pending.keras"))


class Train(Scenario):
    """``deepseg train`` (a 1-level UNet64 with 2 filters, 5 epochs) of the experiment
    "killed"; the reference is the uninterrupted run of the same settings named "whole".
    Each run resumes once a checkpoint record exists, as a user would set it."""

    def __init__(self, folder: Path):
        img, gpkg, _ = squares_scene(folder, size=160, nsquares=20)
        over = dict(epochs=5, model={"name": "unet64", "filters": 2, "depth": 1},
                    training={"batch_size": 4, "seed": 3, "reduce_lr": 1})
        self.whole, self.killed = (write_experiment(folder, img, gpkg, name=n, **over)
                                   for n in ("whole", "killed"))
        self.runs = folder / "runs"
        run("dataprep", self.whole)
        self.boundaries, self.seconds = timed_trace(["train", self.whole], folder)
        self.reference = self.runs / "whole"
        self.state = self.runs / "killed" / "model" / "state.json"
        self.args = ["train", str(self.killed)]

    def restart(self) -> None:
        shutil.rmtree(self.runs / "killed", ignore_errors=True)

    def prepare(self) -> None:
        import yaml

        settings = yaml.safe_load(self.killed.read_text())
        settings["training"]["resume"] = self.state.exists()
        self.killed.write_text(yaml.safe_dump(settings, sort_keys=False))

    def began(self) -> bool:
        return (self.runs / "killed" / "logs").exists()

    def probe(self) -> int | None:
        """The epoch committed."""
        return json.loads(self.state.read_text())["epoch"] if self.state.exists() else None

    def finished(self) -> Path:
        return self.runs / "killed"

    @staticmethod
    def same(found, expected) -> bool:
        return passes(same_training, expected, found)


# ------------------------------------------------------------------------------ dataprep

def store_content(path: Path) -> dict:
    """Every dataset's values and every attribute of a store, by name."""
    import h5py

    found = {}
    with h5py.File(path, "r") as file:
        found["attrs"] = {k: np.asarray(v).tolist() for k, v in file.attrs.items()}
        file.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                        if isinstance(obj, h5py.Dataset) else None)
    return found


def assert_same_store(found: dict, expected: dict) -> None:
    assert sorted(found) == sorted(expected)
    assert found["attrs"] == expected["attrs"]
    for name in expected:
        if name != "attrs":
            np.testing.assert_array_equal(found[name], expected[name], err_msg=name)


class Dataprep(Scenario):
    """``deepseg dataprep`` of a 1280 px scene labelled everywhere (729 tiles of 64 px, every
    one written) into a store at a fixed path; a restart deletes the store."""

    def __init__(self, folder: Path):
        image, gpkg = labelled_scene(folder)
        self.store = folder / "stores" / "store.h5"
        self.exp = write_experiment(folder, image, gpkg, tilesize=64, overlap=16,
                                    store={"path": str(self.store)},
                                    classes=[{"name": "background", "value": "background"},
                                             {"name": "square", "value": "square"}])
        self.args = ["dataprep", str(self.exp)]
        self.boundaries, self.seconds = timed_trace(self.args, folder)
        self.reference = store_content(self.store)
        self.tiles = len(self.reference["tiles"])

    def restart(self) -> None:
        self.store.unlink(missing_ok=True)

    def began(self) -> bool:
        return any(".tmp-" in p.name for p in self.store.parent.iterdir())

    def probe(self) -> bool:
        """Whether a store is at the final name; if one is, it is complete and whole."""
        if self.store.exists():
            assert_same_store(store_content(self.store), self.reference)
        return self.store.exists()

    def finished(self) -> dict:
        assert not [p for p in self.store.parent.iterdir() if ".tmp-" in p.name]
        return store_content(self.store)

    @staticmethod
    def same(found, expected) -> bool:
        return passes(assert_same_store, found, expected)
