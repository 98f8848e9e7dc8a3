"""Nox sessions: the whole test suite, lint, and each plugin alone against the core."""

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "tests"]

CORE = ".[cpu,test]"
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


@nox.session(reuse_venv=True)
def tests(session):
    """The core with every plugin installed: the whole test suite."""
    editable = [arg for folder in PLUGINS.values() for arg in ("-e", folder)]
    session.install("-e", CORE, *editable)
    session.run("pytest", *session.posargs)


@nox.session(reuse_venv=True)
def lint(session):
    """Ruff over the repository."""
    session.install("ruff>=0.5")
    session.run("ruff", "check", ".")


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
