"""Nox sessions: the whole test suite, lint, each plugin alone against the core, and the
backend tests on JAX."""

import os

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]

CORE = ".[cpu,test,export]"  # export: onnx, onnxruntime, tf2onnx (deepseg export's tests)
PLUGINS = {
    "unet64": "plugins/deepseg_unet64",
    "resunet": "plugins/deepseg_resunet",
    "maskrcnn": "plugins/deepseg_maskrcnn",
    "kea_io": "plugins/deepseg_kea_io",
    "albumentations": "plugins/deepseg_albumentations",
}
# imgaug 0.4 uses NumPy APIs removed in NumPy 2: its plugin gets its own environment (imgaug)
# and stays out of `tests`, which would otherwise downgrade NumPy for everything.
IMGAUG = "plugins/deepseg_imgaug"
IMGAUG_NUMPY = "numpy>=1.26,<2"
# JAX's CPU build, as tested (pyproject.toml's jax extra allows the 0.10 and 0.11 lines)
JAX_PINS = ("jax==0.10.2", "jaxlib==0.10.2")
# what the suite proves, on JAX: training, resume after SIGKILL, runs, the schedule, losses
# and metrics, crossval and its reuse, streaming prediction and its resume, shards and merge,
# pretrained weights, the model plugins, and the backend tests themselves
JAX_TESTS = (
    "tests/training/test_backends.py", "tests/models/test_losses.py",
    "tests/training/test_backends_distributed.py", "tests/training/test_backends_cross.py",
    "tests/stages/test_train.py", "tests/stages/test_train_kill.py", "tests/training/test_runs.py",
    "tests/training/test_schedule.py", "tests/stages/test_crossval.py",
    "tests/stages/test_crossval_reuse.py", "tests/stages/test_predict.py",
    "tests/stages/test_predict_kill.py", "tests/hpc/test_hpc.py",
    "tests/contracts/test_conformance.py", "tests/models/test_pretrained.py",
    "tests/plugins/test_manager.py", "tests/test_cli.py",
    "plugins/deepseg_unet64/tests", "plugins/deepseg_resunet/tests",
    "plugins/deepseg_maskrcnn/tests",
)
JAX_DESELECT = (  # TensorFlow's own: MirroredStrategy
    "tests/hpc/test_hpc.py::test_distributed_training_runs_on_one_cpu_replica",
)


@nox.session(reuse_venv=True)
def tests(session):
    """The core with every plugin installed: the whole test suite."""
    editable = [arg for folder in PLUGINS.values() for arg in ("-e", folder)]
    session.install("-e", CORE, *editable)
    session.run("pytest", *session.posargs)


@nox.session(reuse_venv=True)
def lint(session):
    """Ruff over the repository, then mypy over deepseg_core (pyproject.toml [tool.mypy])."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(reuse_venv=True)
def jax(session):
    """The backend tests on JAX's CPU build, in an environment without TensorFlow, then the
    GPU kit's CPU rehearsal (benchmarks/device/run.sh --small --rehearse)."""
    editable = [arg for name in ("unet64", "resunet", "maskrcnn")
                for arg in ("-e", PLUGINS[name])]
    session.install("-e", ".[jax,test]", *JAX_PINS, *editable)
    session.run("python", "-c", "import importlib.util as u, sys; "
                "sys.exit('TensorFlow is installed' if u.find_spec('tensorflow') else 0)")
    workers = str(min(4, len(os.sched_getaffinity(0))))
    deselect = [arg for test in JAX_DESELECT for arg in ("--deselect", test)]
    session.run("pytest", "--backend", "jax", "-n", workers, "--dist", "loadgroup",
                *JAX_TESTS, *deselect, *session.posargs)
    python = os.path.join(session.virtualenv.location, "bin", "python")
    session.run("bash", "benchmarks/device/run.sh", "--small", "--rehearse", external=True,
                env={"PYTHON": python, "OUT": os.path.join(session.create_tmp(), "gpu-results")})


def plugin_session(name: str, folder: str):
    """A session that installs the core and this one plugin, then runs its tests."""

    def session_function(session):
        session.install("-e", CORE)
        session.install("-e", folder)
        session.run("pytest", f"{folder}/tests", *session.posargs)

    session_function.__doc__ = f"The {name} plugin alone, against the core."
    return nox.session(name=name, reuse_venv=True)(session_function)


@nox.session(reuse_venv=True)
def imgaug(session):
    """The imgaug plugin with the core in a NumPy 1.26 environment (TensorFlow accepts it)."""
    session.install("-e", CORE, "-e", IMGAUG, IMGAUG_NUMPY)
    session.run("python", "-c", "import numpy, tensorflow, imgaug; "
                "assert numpy.__version__ < '2', numpy.__version__; "
                "print('numpy', numpy.__version__, 'tensorflow', tensorflow.__version__, "
                "'imgaug', imgaug.__version__)")
    session.run("pytest", f"{IMGAUG}/tests", "tests/builtin/test_augment.py", *session.posargs)


for _name, _folder in PLUGINS.items():
    plugin_session(_name, _folder)  # nox registers a session when it is decorated
