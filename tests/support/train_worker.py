"""One training process of the multi-worker tests: ``python -m tests.support.train_worker
EXPERIMENT [WEIGHTS]``.

Trains through ``deepseg_core.stages.train`` with the test models registered (the cluster
comes from TF_CONFIG or the Slurm step, as in ``deepseg train``) and, when WEIGHTS is given,
saves this worker's final weights there as .npz so a test can compare the workers.
"""

import sys

import numpy as np

from deepseg_core.config import load_experiment
from deepseg_core.errors import DeepSegError
from deepseg_core.io.messages import show
from deepseg_core.plugins import load_plugins
from deepseg_core.stages import train
from tests.support import models

if __name__ == "__main__":
    show(progress=False)  # the lines the tests read, as `deepseg train` prints them
    exp = load_experiment(sys.argv[1])
    try:
        model = train.run(exp, load_plugins(extra=[("testmodels", models)]).registry)
    except DeepSegError as exc:
        sys.exit(f"error: {exc}")
    if len(sys.argv) > 2:
        np.savez(sys.argv[2], *model.get_weights())
