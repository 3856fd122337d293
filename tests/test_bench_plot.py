"""``somnode bench --plot``: the timeline it draws, and a written file that is well formed."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from node.cli import bench as bench_cli
from node.cli import main
from node.tools.bench import BenchResult, TimelinePoint, _timeline, timeline_step
from node.tools.plot import render_plot, write_plot

XHTML = "{http://www.w3.org/1999/xhtml}"
SVG = "{http://www.w3.org/2000/svg}"


def test_the_timeline_counts_each_second_and_its_latencies():
    started = 100.0
    blocks = [(100.4, 2), (101.2, 1), (103.9, 1)]  # nothing commits in the third second
    submit = {b"a": 100.0, b"b": 100.2, b"c": 100.5, b"d": 103.0}
    commit = {b"a": 100.4, b"b": 100.4, b"c": 101.2, b"d": 103.9}
    points = _timeline(blocks, commit, submit, started, 1.0)
    assert [p.t_s for p in points] == [0.5, 1.5, 2.5, 3.5]
    assert [p.tps for p in points] == [2.0, 1.0, 0.0, 1.0]
    assert points[0].p50_ms == pytest.approx(400) and points[0].p99_ms == pytest.approx(400)
    assert points[1].p95_ms == pytest.approx(700)
    assert (points[2].p50_ms, points[2].p95_ms, points[2].p99_ms) == (None, None, None)
    assert points[3].p99_ms == pytest.approx(900)


@pytest.mark.parametrize(("duration", "step"), [(0.0, 0.5), (3.0, 0.5), (31.0, 1), (100.0, 2), (3600.0, 60)])
def test_a_run_is_drawn_in_at_most_sixty_round_steps(duration, step):
    assert timeline_step(duration) == step


def result(validators: int, seconds: int, gap_at: int | None = None) -> BenchResult:
    timeline = [TimelinePoint(k + 0.5, 0.0 if k == gap_at else 1000.0 + 10 * k,
                              *((None, None, None) if k == gap_at else (200.0 + k, 400.0 + k, 900.0 + k)))
                for k in range(seconds)]
    return BenchResult(
        validators=validators, submitted=10_000, committed=10_000, tps=1234.5, tps_overall=1100.0, window_blocks=40,
        p50_ms=210.0, p95_ms=420.0, p99_ms=910.0, blocks_per_s=4.0, txs_per_block=300.0, verify_ceiling=21000.0,
        efficiency=0.24, cpu_per_validator=[1.2] * validators, rate=0.0, duration_s=float(seconds),
        checks={"every transfer committed": True}, timeline=timeline, timeline_step_s=1.0)


def points_of(path: ET.Element) -> int:
    return len(re.findall(r"[ML][0-9.]+,[0-9.]+", path.get("d", "")))


def test_the_plot_is_a_well_formed_page_with_two_charts_per_run(tmp_path: Path):
    file = tmp_path / "bench.html"
    write_plot(file, [result(1, 30), result(4, 20, gap_at=7)], cpus=2)
    page = ET.parse(file).getroot()  # raises unless the file is well-formed XML
    assert page.tag == f"{XHTML}html"
    sections = page.findall(f".//{XHTML}section")
    assert len(sections) == 2
    for section, seconds in zip(sections, (30, 20)):
        throughput, latency = section.findall(f"{SVG}svg")
        (committed,) = throughput.findall(f".//{SVG}path")
        assert committed.get("data-series") == "committed" and points_of(committed) == seconds
        lines = {path.get("data-series"): path for path in latency.findall(f".//{SVG}path")}
        assert set(lines) == {"p50", "p95", "p99"}
    gapped = sections[1].findall(f"{SVG}svg")[1].find(f".//{SVG}path")
    assert points_of(gapped) == 19 and gapped.get("d").count("M") == 2  # the second without commits breaks the line
    assert "4 validator(s)" in ET.tostring(sections[1], encoding="unicode")


def test_an_empty_run_still_draws_a_page():
    empty = result(1, 0)
    ET.fromstring(render_plot([empty], cpus=None))


def test_somnode_bench_writes_the_plot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setattr(bench_cli, "run_bench", lambda directory, **options: result(options["validators"], 12))
    file = tmp_path / "plot.html"
    assert main(["bench", "--validators", "1", "4", "--quiet", "--plot", str(file)]) == 0
    assert f"plot: {file}" in capsys.readouterr().out
    assert len(ET.parse(file).getroot().findall(f".//{XHTML}section")) == 2


def test_a_plot_file_that_is_not_html_is_one_line(tmp_path: Path, capsys):
    assert main(["bench", "--plot", str(tmp_path / "plot.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--plot" in err[0] and ".html" in err[0]
