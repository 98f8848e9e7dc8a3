"""The test suite's own kit (``from tests.support import cli``); no test module imports another.

    cli           the one way to launch ``deepseg``: in-process (CliRunner) or a subprocess
    child         the subprocess entry that SIGKILLs itself at a chosen I/O boundary
    kills         the one kill loop: kill ``deepseg`` at chosen points, resume, finish
    scenarios     what is killed: stage runs on small scenes and their uninterrupted outputs
    tmpfs         the one real small filesystem (full and read-only disks)
    damage        bytes overwritten or cut off in real files
    synthetic     synthetic georeferenced rasters and experiment files
    models        tiny test model plugins (Keras and NumPy-only) and an untrained saved model
    fixtures      fixtures shared by the suite (imported by tests/conftest.py)
    hpc, slurm    tiny cluster experiments; a real single-node Slurm
    cluster_docs  the multi-node job scripts docs/cluster.md shows, as deepseg writes them
    gis_*         the system's GDAL (KEA) and QGIS; outputs for them to open
    benchmarks    benchmarks/ scripts loaded as modules
    train_worker  one process of the multi-worker training tests
    site/         a real dist-info whose entry point is ``models``: subprocesses given
                  ``cli.environment(test_models=True)`` find the test models as any installed
                  plugin is found

(deepseg_core.testing is the public kit for plugin authors; this one is the suite's.)
"""

from pathlib import Path

#: the repository's root folder (tests/, benchmarks/, docs/ and examples/ are in it)
ROOT = Path(__file__).resolve().parents[2]
