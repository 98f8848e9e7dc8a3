"""Progress: a tqdm bar on a terminal, plain lines (no carriage returns) in logs."""

import io

import pytest

from deepseg_core.io.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run(stream, total=5, **kwargs):
    bar = Progress(total, "predict tiles", stream=stream, **kwargs)
    for _ in range(total):
        bar.update()
    bar.update()  # past the end: nothing more
    return stream.getvalue(), bar


def test_a_log_gets_whole_lines_and_one_final_line():
    text, bar = run(io.StringIO())  # default interval 30 s: only the final line
    assert "\r" not in text and text.count("\n") == 1
    assert text.startswith("predict tiles: 5/5 (100%)") and bar.done == 6


def test_plain_lines_every_interval():
    text, _ = run(io.StringIO(), interval=0)
    lines = text.splitlines()
    assert [line.split(" (")[0] for line in lines] == [f"predict tiles: {i}/5"
                                                      for i in range(1, 6)]
    assert all("tile/s" in line for line in lines)


def test_a_terminal_gets_a_tqdm_bar():
    text, _ = run(Terminal())
    assert "\r" in text and "100%|" in text and text.endswith("\n")


def test_plain_mode_on_a_terminal_and_bar_mode_in_a_log():
    assert "\r" not in run(Terminal(), mode="plain")[0]
    assert "\r" in run(io.StringIO(), mode="bar")[0]


def test_disabled_prints_nothing_but_counts():
    text, bar = run(Terminal(), enabled=False)
    assert text == "" and bar.done == 6 and bar.elapsed >= 0


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="progress mode 'fancy': expected auto, bar or plain"):
        Progress(3, "x", mode="fancy")
