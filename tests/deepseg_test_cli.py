"""`deepseg` with the test-only model plugins (tinymodels) registered, for subprocess tests.

Run as ``python tests/deepseg_test_cli.py ARGS...``: the real CLI in a fresh process, the only
difference being the extra test plugins, so faults can come from outside (signals, disks).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tinymodels  # noqa: E402

from deepseg_core.plugins import manager  # noqa: E402

manager._cached = manager.load_plugins(extra=[("tinymodels", tinymodels)])

from deepseg_core.cli import main  # noqa: E402

if __name__ == "__main__":
    main()
