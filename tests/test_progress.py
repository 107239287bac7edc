"""Progress output: periodic plain lines when stderr is not a terminal."""

from __future__ import annotations

from harness import progress as progress_module
from harness.progress import progress


def test_plain_lines_instead_of_a_bar_off_a_terminal(capsys, monkeypatch):
    clock = iter(range(0, 10_000, 7))   # seconds: every update is 7 s after the last
    monkeypatch.setattr(progress_module.time, "time", lambda: float(next(clock)))
    bar = progress(total=100, desc="train", unit="step")
    for _ in range(100):
        bar.update(1)
    bar.set_postfix(loss="0.123")
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.strip().splitlines()
    assert 15 <= len(lines) <= 30, lines            # one per ≥ 30 s of 700 s, plus the last
    assert lines[-1].startswith("[train] 100/100 step") and "loss=0.123" in lines[-1]


def test_iterating_reports_at_the_end(capsys):
    assert list(progress(range(5), desc="decode", unit="batch")) == list(range(5))
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("[decode] 5 batch,")
