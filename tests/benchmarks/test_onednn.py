"""benchmarks/onednn.py's abort detection on real processes: a pytest-xdist worker killed by
SIGABRT counts as an aborted run, a clean run does not, and a run pytest cannot start is
refused rather than counted as clean. (Its TensorFlow timings are what the benchmark runs.)"""

import sys

import pytest

from tests.support.benchmarks import load, present

pytestmark = present("onednn")


@pytest.fixture(scope="module")
def onednn():
    return load("onednn")


def test_an_aborting_worker_is_an_aborted_run(onednn, tmp_path):
    (tmp_path / "test_abort.py").write_text(
        "import os\n\ndef test_fine():\n    assert True\n\n"
        "def test_abort():\n    os.abort()  # what glibc does on a double free\n")
    result = onednn.run_tests(sys.executable, ["test_abort.py"], 2, tmp_path)
    assert result["aborted"] and result["rc"] != 0
    assert any("test_abort" in name for name in result["crashed_tests"]), result


def test_a_clean_run_is_not_aborted(onednn, tmp_path):
    (tmp_path / "test_clean.py").write_text("def test_fine():\n    assert 1 + 1 == 2\n")
    result = onednn.run_tests(sys.executable, ["test_clean.py"], 2, tmp_path)
    assert result == {**result, "rc": 0, "aborted": False, "evidence": [], "crashed_tests": []}
    assert "1 passed" in result["summary"]


def test_a_run_pytest_cannot_start_is_refused(onednn, tmp_path):
    with pytest.raises(SystemExit, match="pytest exited 4 without running the tests"):
        onednn.run_tests(sys.executable, ["--no-such-option"], 2, tmp_path)
