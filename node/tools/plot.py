"""``somnode bench --plot``: each run's committed throughput and latency percentiles over time.

The picture is one self-contained HTML page of inline SVG: no plotting
library to install, no script, nothing fetched, so the file can go into a
report or an email and open anywhere.  The page is also well-formed XML, so a
test or another tool can read it back with any XML parser.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from node.tools.bench import BenchResult, TimelinePoint

WIDTH, HEIGHT = 900, 260
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 30, 40
TICKS = 5
THROUGHPUT_COLOR = "#1d4ed8"
LATENCY_COLORS = (("p50", "#15803d"), ("p95", "#c2410c"), ("p99", "#b91c1c"))
STYLE = """
body { font-family: system-ui, sans-serif; color: #1b2633; margin: 32px; max-width: 960px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin: 28px 0 4px; }
p { margin: 4px 0; color: #4a5868; } svg { display: block; margin: 8px 0 4px; }
"""


def write_plot(path: Path, results: Sequence[BenchResult], cpus: int | None) -> None:
    path.write_text(render_plot(results, cpus), encoding="utf-8")


def render_plot(results: Sequence[BenchResult], cpus: int | None) -> str:
    sections = "\n".join(_section(number, result) for number, result in enumerate(results, 1))
    return f"""<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" lang="en">
<head>
<meta charset="utf-8"/>
<title>somnode bench</title>
<style>{STYLE}</style>
</head>
<body>
<h1>somnode bench</h1>
<p>{len(results)} run(s) on a machine with {cpus or "?"} CPUs. Time runs from each run's first submission;
each point is one step of the run: the rate at which transfers committed in it, and the latency from
submission to commit of those transfers.</p>
{sections}
</body>
</html>
"""


def _section(number: int, result: BenchResult) -> str:
    rate = "as fast as accepted" if not result.rate else f"{result.rate:,.0f} transfers/s offered"
    summary = (f"{result.committed:,} of {result.submitted:,} committed; {result.tps:,.0f} transfers/s in the steady "
               f"window, {result.efficiency:.2f} of the verify ceiling ({result.verify_ceiling:,.0f} signatures/s); "
               f"latency p50 {result.p50_ms:,.0f} ms, p95 {result.p95_ms:,.0f} ms, p99 {result.p99_ms:,.0f} ms; "
               f"checks {'passed' if result.ok else 'FAILED'}; steps of {result.timeline_step_s:g} s")
    timeline = result.timeline
    throughput = _chart("Committed transfers per second", "tx/s",
                        [("committed", THROUGHPUT_COLOR, [(p.t_s, p.tps) for p in timeline])])
    latency = _chart("Latency from submission to commit", "ms",
                     [(name, color, [(p.t_s, _latency(p, name)) for p in timeline]) for name, color in LATENCY_COLORS])
    return f"""<section>
<h2>Run {number}: {result.validators} validator(s), {escape(rate)}</h2>
<p>{escape(summary)}</p>
{throughput}
{latency}
</section>"""


def _latency(point: TimelinePoint, name: str) -> float | None:
    return {"p50": point.p50_ms, "p95": point.p95_ms, "p99": point.p99_ms}[name]


def _chart(title: str, unit: str, series: list[tuple[str, str, list[tuple[float, float | None]]]]) -> str:
    xs = [x for _, _, points in series for x, _ in points]
    ys = [y for _, _, points in series for _, y in points if y is not None]
    x_top = _nice(max(xs, default=1.0))
    y_top = _nice(max(ys, default=1.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def at(x: float, y: float) -> tuple[float, float]:
        return LEFT + plot_w * x / x_top, TOP + plot_h * (1 - y / y_top)

    parts = [f'<text x="{LEFT}" y="18" font-size="13" font-weight="600">{escape(title)}</text>',
             f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="#fafbfc" stroke="#dde3ea"/>']
    for i in range(TICKS + 1):
        tick_x, tick_y = LEFT + plot_w * i / TICKS, TOP + plot_h * (1 - i / TICKS)
        parts.append(f'<line x1="{LEFT}" y1="{tick_y:.1f}" x2="{LEFT + plot_w}" y2="{tick_y:.1f}" stroke="#e6eaef"/>')
        parts.append(f'<text x="{LEFT - 8}" y="{tick_y + 4:.1f}" font-size="11" text-anchor="end">'
                     f'{_label(y_top * i / TICKS)}</text>')
        parts.append(f'<text x="{tick_x:.1f}" y="{TOP + plot_h + 16}" font-size="11" text-anchor="middle">'
                     f'{_label(x_top * i / TICKS)} s</text>')
    parts.append(f'<text x="14" y="{TOP + plot_h / 2:.0f}" font-size="11" transform="rotate(-90 14 '
                 f'{TOP + plot_h / 2:.0f})" text-anchor="middle">{escape(unit)}</text>')
    for index, (name, color, points) in enumerate(series):
        path = _path(points, at)
        if path:
            parts.append(f'<path class="series" data-series={quoteattr(name)} d="{path}" fill="none" '
                         f'stroke="{color}" stroke-width="1.8"/>')
        # A dot on each value too, so a short run's one or two points still show.
        for x, y in points:
            if y is not None and math.isfinite(y):
                cx, cy = at(x, y)
                parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="2.2" fill="{color}"/>')
        legend_x = LEFT + plot_w - 90 * (len(series) - index)
        parts.append(f'<rect x="{legend_x}" y="8" width="12" height="3" fill="{color}"/>')
        parts.append(f'<text x="{legend_x + 16}" y="14" font-size="11">{escape(name)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label={quoteattr(title)}>\n'
            + "\n".join(parts) + "\n</svg>")


def _path(points: list[tuple[float, float | None]], at: Callable[[float, float], tuple[float, float]]) -> str:
    """An SVG path through the points; a step without a value breaks the line instead of bridging it."""
    commands, pen_down = [], False
    for x, y in points:
        if y is None or not math.isfinite(y):
            pen_down = False
            continue
        px, py = at(x, y)
        commands.append(f"{'L' if pen_down else 'M'}{px:.1f},{py:.1f}")
        pen_down = True
    return " ".join(commands)


def _nice(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times a power of ten at or above ``value``: round axis ends."""
    if not math.isfinite(value) or value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 2.5, 5, 10) if step * power >= value)


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
