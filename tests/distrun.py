"""One training process of the distributed tests: ``python distrun.py EXPERIMENT [WEIGHTS]``.

Trains through ``deepseg_core.stages.train`` with the test model plugins registered (the
cluster comes from TF_CONFIG or the Slurm step, as in ``deepseg train``) and, when WEIGHTS is
given, saves this worker's final weights there as .npz so a test can compare the workers.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import tinymodels  # noqa: E402

from deepseg_core.config import load_experiment  # noqa: E402
from deepseg_core.errors import DeepSegError  # noqa: E402
from deepseg_core.io.messages import show  # noqa: E402
from deepseg_core.plugins import load_plugins  # noqa: E402
from deepseg_core.stages import train  # noqa: E402

if __name__ == "__main__":
    show(progress=False)  # the lines the tests read, as `deepseg train` prints them
    exp = load_experiment(sys.argv[1])
    try:
        model = train.run(exp, load_plugins(extra=[("tinymodels", tinymodels)]).registry)
    except DeepSegError as exc:
        sys.exit(f"error: {exc}")
    if len(sys.argv) > 2:
        np.savez(sys.argv[2], *model.get_weights())
