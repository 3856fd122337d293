"""``python -m consensus.sim``: exit status, summary, and replayable failures."""

from __future__ import annotations

import shlex

import pytest

from consensus.sim.__main__ import main


def test_clean_run_exits_zero_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--validators", "4", "--byzantine", "1", "--seeds", "5", "--crashes", "--partition",
                 "--loss", "0.1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "scenarios=5 failed=0 violations=0" in out
    assert "FAIL" not in out


def test_failing_run_exits_one_and_prints_a_command_that_replays_it(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--validators", "4", "--byzantine", "2", "--strategy", "collude", "--seeds", "20"])
    out = capsys.readouterr().out
    assert code == 1
    assert "agreement:" in out and "exceeds f=1" in out
    replay = next(line.split("replay: ", 1)[1] for line in out.splitlines() if "replay: " in line)
    args = shlex.split(replay)[3:]  # drop "python -m consensus.sim"
    assert main(args) == 1
    again = capsys.readouterr().out
    assert "scenarios=1 failed=1" in again


def test_bad_options_exit_two(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--validators", "4", "--byzantine", "4"]) == 2
    assert "honest" in capsys.readouterr().err
