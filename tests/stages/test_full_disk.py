"""Full and read-only disks at every non-prediction write site, on real small tmpfs mounts.

The CLI runs in a subprocess; each case expects one 'error:' line naming the file and the
cause, a non-zero exit, no traceback or segfault, nothing half-written left that could pass
for complete, and (where noted) a rerun with space that completes.
"""

from __future__ import annotations

import contextlib
import json
import zipfile

import pytest

from deepseg_core.store import Store
from tests.support.cli import assert_one_line_error, deepseg
from tests.support.synthetic import squares_scene, write_experiment
from tests.support.tmpfs import mounted, need_root

ENOSPC, EROFS = "No space left on device", "Read-only file system"

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    need_root()
    folder = tmp_path_factory.mktemp("fulldisk")
    image, gpkg, _ = squares_scene(folder, size=128)
    exp = experiment(folder, image, gpkg, folder / "store.h5")
    done = deepseg("dataprep", exp)
    assert done.returncode == 0, done.stderr
    return folder, image, gpkg


def experiment(folder, image, gpkg, store, name="exp", **overrides):
    overrides.setdefault("training", {"batch_size": 4, "seed": 1, "steps_per_epoch": 2})
    return write_experiment(folder, image, gpkg, name=name, epochs=1,
                            store={"path": str(store), "compression": "none"}, **overrides)


@contextlib.contextmanager
def mounts(root, specs):
    """Nested tmpfs mounts under ``root``: (subfolder, size, free bytes | 'ro' | None);
    yields the Tmpfs of each subfolder."""
    with contextlib.ExitStack() as stack:
        yield {sub: stack.enter_context(mounted(root / sub, size,
                                                free if isinstance(free, int) else None,
                                                read_only=free == "ro"))
               for sub, size, free in specs}


def leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if ".tmp" in p.name or "staging" in p.name)


@pytest.mark.parametrize("free, cause", [(None, ENOSPC), ("ro", EROFS)])
def test_dataprep_store_on_a_full_or_read_only_disk(scene, tmp_path, free, cause):
    folder, image, gpkg = scene
    disk = tmp_path / "disk"
    exp = experiment(tmp_path, image, gpkg, disk / "store.h5")
    with mounts(tmp_path, [("disk", "96k", free)]) as disks:
        done = deepseg("dataprep", exp)
        assert_one_line_error(done, str(disk / "store.h5"), cause)
        assert not [p for p in disk.iterdir() if p.name != ".ballast"]
        disks["disk"].grow()
        again = deepseg("dataprep", exp)
        assert again.returncode == 0, again.stderr
        with Store(disk / "store.h5") as store:
            store.verify()
            assert len(store) > 3


TRAIN_CASES = {  # name: (mounts under the experiment folder, file named, cause)
    "model.json": ([("model", "1m", 0)], "model/model.json", ENOSPC),
    # the checkpoints: last.keras is saved (pending) first, so it is the file the error names
    "best.keras": ([("model", "1m", 24 * 1024)], "model/last.keras", ENOSPC),
    "model-readonly": ([("model", "1m", "ro")], "model/model.json", EROFS),
    "training.csv": ([("logs", "1m", 0), ("logs/tensorboard", "8m", None)],
                     "logs/training.csv", ENOSPC),
    "curves.png": ([("logs", "1m", 8 * 1024), ("logs/tensorboard", "8m", None)],
                   "logs/curves.png", ENOSPC),
    "tensorboard": ([("logs/tensorboard", "1m", 0)], "logs/tensorboard", ENOSPC),
    "logs-readonly": ([("logs", "1m", "ro")], "logs/training.csv", EROFS),
}


RERUN = {"best.keras": "model", "curves.png": "logs"}  # case: the disk given space again


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_train_outputs_on_a_full_or_read_only_disk(scene, case):
    folder, image, gpkg = scene
    specs, named, cause = TRAIN_CASES[case]
    outdir = folder / "runs" / case
    exp = experiment(folder, image, gpkg, folder / "store.h5", name=case)
    with mounts(outdir, specs) as disks:
        done = deepseg("train", exp)
        line = assert_one_line_error(done, str(outdir / named), cause)
        assert leftovers(outdir) == [] and not list(outdir.rglob("*.pending.keras"))
        for checkpoint in (outdir / "model").glob("*.keras"):  # none half-written
            assert zipfile.ZipFile(checkpoint).testzip() is None
        if case in RERUN:  # the callbacks' and the atomic writer's wording; a rerun completes
            assert line.startswith(f"error: {outdir / named}: cannot write "), line
            assert f"({cause}); free space" in line and "rerun" in line, line
            if case == "best.keras":  # the previous one (none) stays
                assert not (outdir / "model" / "best.keras").exists()
            disks[RERUN[case]].grow()
            again = deepseg("train", exp)
            assert again.returncode == 0, again.stderr
            assert zipfile.ZipFile(outdir / "model" / "best.keras").testzip() is None
            assert json.loads((outdir / "model" / "state.json").read_text())["epoch"] == 1
            assert leftovers(outdir) == [] and not list(outdir.rglob("*.pending.keras"))


@pytest.mark.parametrize("free, maps, named", [(0, True, "fold0_errors.tif"),
                                               (0, False, "metrics.json"),
                                               (8192, False, "fold0_pycm.html")])
def test_crossval_outputs_on_a_full_disk(scene, free, maps, named):
    folder, image, gpkg = scene
    name = f"cv{free}{maps}"
    outdir = folder / "runs" / name
    # resume: auto, as a user reruns after freeing space: the fold's finished training is kept
    exp = experiment(folder, image, gpkg, folder / "store.h5", name=name,
                     crossval={"folds": [0], "error_maps": maps},
                     training={"batch_size": 4, "seed": 1, "steps_per_epoch": 2, "resume": "auto"})
    fold = outdir / "crossval" / "fold0"
    # one page more: the fold's lock file (model.lock) takes it while the fold runs
    specs = [("crossval/fold0", "1m", free + 4096), ("crossval/fold0/model", "8m", None),
             ("crossval/fold0/logs", "8m", None)]
    with mounts(outdir, specs) as disks:
        done = deepseg("crossval", exp)
        line = assert_one_line_error(done, str(fold / named), ENOSPC)
        assert not (fold / "fold0_errors.tif").exists(), line  # no unreadable error map
        assert not (fold / "fold0_pycm.html").exists()
        assert leftovers(outdir) == []
        disks["crossval/fold0"].grow()
        again = deepseg("crossval", exp)
        assert again.returncode == 0, again.stderr
        assert (fold / "fold0_pycm.html").stat().st_size > 1000
        assert (outdir / "crossval" / "folds.csv").exists()
        if maps:
            import rasterio

            with rasterio.open(fold / "fold0_errors.tif") as errors:
                assert errors.read().any()


def test_train_on_a_full_disk_stops_at_its_lock_and_leaves_none(scene):
    """The run folder itself is full: the lock (the first file a run writes) cannot be
    written; one line names it, no lock is left to stop the rerun, which completes."""
    folder, image, gpkg = scene
    outdir = folder / "runs" / "lockfull"
    exp = experiment(folder, image, gpkg, folder / "store.h5", name="lockfull")
    with mounted(outdir, "1m", free=0) as disk:
        done = deepseg("train", exp)
        assert_one_line_error(done, str(outdir / "model.lock"), "cannot write the lock", ENOSPC)
        assert sorted(p.name for p in outdir.iterdir() if p.name != ".ballast") == []
        disk.grow()
        again = deepseg("train", exp)
        assert again.returncode == 0, again.stderr
        assert zipfile.ZipFile(outdir / "model" / "best.keras").testzip() is None
        assert not (outdir / "model.lock").exists()
