"""The progress line: silent for quick work, shown on stderr once a second has passed."""
from tinygrad_rnn.diagnostics import progress as P


def test_quick_work_prints_nothing(capsys):
    for make in (P.progress, P._Line):
        with make(3, "quick") as bar:
            for _ in range(3):
                bar.update(1)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_slow_work_shows_a_line_on_stderr(capsys, monkeypatch):
    monkeypatch.setattr(P, "DELAY_S", 0.0)
    with P._Line(2, "slow") as bar:
        bar.update(1)
        bar.update(1)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "\rslow: 1/2\rslow: 2/2\n"


def test_in_a_log_the_line_is_printed_without_repaints(capsys, monkeypatch):
    monkeypatch.setattr(P, "DELAY_S", 0.0)
    monkeypatch.setattr(P, "LOG_EVERY_S", 3600.0)
    with P.progress(3, "slow") as bar:   # capsys's stderr is not a terminal
        for _ in range(3):
            bar.update(1)
    captured = capsys.readouterr()
    assert "\r" not in captured.err
    assert captured.err == "slow: 1/3\nslow: 3/3\n"
