"""`scripts/tandem report`: one self-contained HTML page (charts as inline SVG, no script, nothing fetched at view
time) from a benchmark's JSON (the autoscale day per policy side by side, the failover timelines), from the
snapshot report `GET /api/snapshots` answers (each directory's recovery points and their freshness), or from the
demo's run (each pool's day, every drill, failover and failback as its evidence report shows it, the snapshots)."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from shared.failover.report import gantt, page, parse_time, section

WIDTH, HEIGHT, LEFT, BOTTOM = 760, 220, 48, 28
COLOURS = {"native": "#8e24aa", "native_same": "#ab47bc", "legacy": "#6d4c41", "prestage": "#ef6c00", "tandem": "#1565c0",
           "clairvoyant": "#2e7d32", "sessions": "#424242", "logons": "#00838f"}  # fmt: skip
POLICIES = ("native", "native_same", "prestage", "clairvoyant", "tandem", "legacy")


def line_chart(title: str, series: dict[str, list[float]], labels: list[str], unit: str) -> str:
    """Lines over a shared x axis (`labels`, one per point), one colour per series, with a legend and y ticks."""
    top = 4 * math.ceil(max([max(v, default=0.0) for v in series.values()] + [1.0]) / 4)  # whole-number ticks
    n = max((len(v) for v in series.values()), default=1)
    inner_w, inner_h = WIDTH - LEFT - 130, HEIGHT - BOTTOM - 24

    def x(i: int) -> float:
        return LEFT + inner_w * i / max(1, n - 1)

    def y(v: float) -> float:
        return 14 + inner_h * (1 - v / top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" width="{WIDTH}" '
           f'height="{HEIGHT}" class="chart">',
           f'<text x="{LEFT}" y="11" font-size="12" font-weight="bold">{escape(title)}</text>']  # fmt: skip
    for k in range(5):
        value = top * k / 4
        out.append(f'<line x1="{LEFT}" x2="{LEFT + inner_w}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e0e0e0"/>'
                   f'<text x="{LEFT - 4}" y="{y(value) + 4:.1f}" text-anchor="end" font-size="10">{value:.0f}</text>')  # fmt: skip
    for i in range(0, n, max(1, n // 6)):
        out.append(f'<text x="{x(i):.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="10">{escape(labels[i])}</text>')
    for j, (name, values) in enumerate(series.items()):
        colour = COLOURS.get(name, "#757575")
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        out.append(f'<polyline class="series" data-name="{escape(name)}" fill="none" stroke="{colour}" stroke-width="1.6" '
                   f'points="{points}"/>')  # fmt: skip
        out.append(f'<text class="legend" x="{LEFT + inner_w + 10}" y="{24 + 15 * j}" font-size="11" fill="{colour}">'
                   f"{escape(name)}</text>")  # fmt: skip
    out.append(f'<text x="{LEFT + inner_w}" y="{HEIGHT - BOTTOM + 14}" text-anchor="end" font-size="10">{escape(unit)}</text></svg>')
    return "".join(out)


def day_charts(by_policy: dict[str, list[dict[str, Any]]]) -> str:
    """One day's four charts, every policy's curve side by side: hosts billed, hosts serving, sessions with the
    logons, and misses (points every few minutes: t, on, serving, sessions, logons, misses)."""
    names = [p for p in POLICIES if p in by_policy] + [p for p in by_policy if p not in POLICIES]
    first = by_policy[names[0]] if names else []
    labels = [str(p["t"]) for p in first]
    return "".join([
        line_chart("hosts running (billed)", {p: [float(q["on"]) for q in by_policy[p]] for p in names}, labels, "hosts"),
        line_chart("hosts serving (Available, taking sessions)", {p: [float(q["serving"]) for q in by_policy[p]] for p in names},
                   labels, "hosts"),
        line_chart("sessions, and logons per 5 minutes (as they landed under tandem)",
                   {"sessions": [float(q["sessions"]) for q in first],
                    "logons": [float(q["logons"]) for q in by_policy.get("tandem", first)]}, labels, "sessions; logons"),
        line_chart("logon misses per 5 minutes", {p: [float(q["misses"]) for q in by_policy[p]] for p in names}, labels, "misses"),
    ])  # fmt: skip


def _autoscale(result: dict[str, Any]) -> str:
    curves = result.get("curves") or {}
    parts = [f"<h2>Autoscale: one Monday per scenario (seed {escape(str(curves.get('seed', '')))})</h2>"]
    for scenario, by_policy in curves.items():
        if scenario == "seed" or not isinstance(by_policy, dict):
            continue
        parts.append(f"<h3>{escape(scenario)}</h3>")
        parts.append(day_charts(by_policy))
        figures = (result.get("scenarios") or {}).get(scenario) or {}
        rows = "".join(
            f"<tr><td>{escape(p)}</td><td>{f['logon_misses']['mean']}</td><td>{f['vm_hours']['mean']}</td>"
            f"<td>{f['p95_wait_s']['mean']}</td></tr>"
            for p, f in figures.items()
        )
        parts.append(f"<table><tr><th>policy</th><th>misses (mean)</th><th>VM-hours (mean)</th><th>p95 wait s</th></tr>{rows}</table>")
    return "".join(parts)


def _pools(result: dict[str, Any]) -> str:
    """The demo's day: each pool's curves under Tandem."""
    parts = [f"<h2>Autoscale: each pool over the day ({escape(str(result.get('day', '')))}, local time)</h2>"]
    for name, points in (result.get("pools") or {}).items():
        if isinstance(points, list) and points:
            parts.append(f"<h3>{escape(name)}</h3>{day_charts({'tandem': points})}")
    return "".join(parts)


def _failovers(result: dict[str, Any]) -> str:
    """Each drill, failover and failback of the run, as its evidence report shows it."""
    parts = ["<h2>Drills, failover and failback</h2>"]
    for status in result.get("failovers") or []:
        if isinstance(status, dict):
            request = status.get("input") if isinstance(status.get("input"), dict) else {}
            parts.append(f"<h3>{escape(str(request.get('mode', '')))} {escape(str(request.get('source', '')))} to "
                         f"{escape(str(request.get('target', '')))}</h3>{section(status)}")  # fmt: skip
    return "".join(parts)


def _failover(result: dict[str, Any]) -> str:
    parts = ["<h2>Failover: Tandem's steps and the manual runbook's</h2>"]
    for mode in ("planned", "unplanned", "failback"):
        facts = result.get(mode)
        if not isinstance(facts, dict):
            continue
        parts.append(f"<h3>{escape(mode)}: Tandem {facts.get('tandem_rto_s')} s, runbook {facts.get('sequential_rto_s')} s, "
                     f"bound {facts.get('lower_bound_s')} s ({escape(str(facts.get('formula', '')))})</h3>")  # fmt: skip
        tandem = [{"step": s["step"], "status": s.get("status", "done"), "detail": "", "start_s": s.get("started_s", 0.0),
                   "end_s": s.get("ended_s")} for s in facts.get("tandem_steps") or []]  # fmt: skip
        runbook = [{"step": s["step"], "status": "done", "detail": "", "start_s": s["start_s"], "end_s": s["end_s"]}
                   for s in facts.get("runbook_steps") or []]  # fmt: skip
        parts.append("<p>Tandem</p>" + (gantt(tandem) if tandem else "<p>no steps</p>"))
        parts.append("<p>Runbook</p>" + (gantt(runbook) if runbook else "<p>no steps</p>"))
    return "".join(parts)


TIERS = {"hourly": "#64b5f6", "daily": "#1565c0", "weekly": "#2e7d32", "monthly": "#6a1b9a", None: "#9e9e9e"}


def recovery_points(directories: list[dict[str, Any]]) -> str:
    """Each directory's recovery points on one time axis, one row per directory, coloured by retention tier."""
    rows = [d for d in directories if isinstance(d, dict)]
    times = [t for d in rows for p in d.get("recovery_points") or [] if (t := parse_time(p.get("taken"))) is not None]
    if not times:
        return "<p>No recovery point yet.</p>"
    first, last = min(times), max(times)
    span = max(1.0, (last - first).total_seconds())
    label_w, chart_w, row_h = 260, 560, 26
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="recovery points" width="{label_w + chart_w + 30}" '
           f'height="{len(rows) * row_h + 40}" class="chart">']  # fmt: skip
    for i, d in enumerate(rows):
        y = 14 + i * row_h
        fresh = "fresh" if d.get("fresh") else "STALE"
        out.append(f'<text x="{label_w - 8}" y="{y + 4}" text-anchor="end" font-size="11">{escape(str(d.get("path", "")))} '
                   f"({fresh})</text>")  # fmt: skip
        out.append(f'<line x1="{label_w}" x2="{label_w + chart_w}" y1="{y}" y2="{y}" stroke="#e0e0e0"/>')
        for p in d.get("recovery_points") or []:
            taken = parse_time(p.get("taken"))
            if taken is None:
                continue
            x = label_w + chart_w * (taken - first).total_seconds() / span
            out.append(f'<circle class="point" cx="{x:.1f}" cy="{y}" r="4" fill="{TIERS.get(p.get("tier"), "#9e9e9e")}">'
                       f"<title>{escape(str(p.get('name', '')))} {escape(str(p.get('taken', '')))}</title></circle>")  # fmt: skip
    axis = len(rows) * row_h + 22
    out.append(f'<text x="{label_w}" y="{axis}" font-size="10">{escape(first.strftime("%Y-%m-%d %H:%M"))}</text>'
               f'<text x="{label_w + chart_w}" y="{axis}" text-anchor="end" font-size="10">'
               f"{escape(last.strftime('%Y-%m-%d %H:%M'))} UTC</text></svg>")  # fmt: skip
    return "".join(out)


def _snapshots(result: dict[str, Any]) -> str:
    parts = ["<h2>Snapshots: recovery points per profile directory</h2>"]
    for cluster in result.get("clusters") or []:
        if not isinstance(cluster, dict):
            continue
        parts.append(f"<h3>{escape(str(cluster.get('region', '')))} ({escape(str(cluster.get('cluster', '')))})</h3>")
        if cluster.get("error"):
            parts.append(f"<p>unreadable: {escape(str(cluster['error']))}</p>")
            continue
        directories = [d for d in cluster.get("directories") or [] if isinstance(d, dict)]
        parts.append(recovery_points(directories))
        rows = "".join(
            f"<tr><td>{escape(str(d.get('path', '')))}</td><td>{'yes' if d.get('fresh') else 'no'}</td>"
            f"<td>{escape(str(d.get('newest') or d.get('error') or ''))}</td><td>{len(d.get('recovery_points') or [])}</td></tr>"
            for d in directories
        )
        parts.append(f"<table><tr><th>directory</th><th>fresh</th><th>newest</th><th>points</th></tr>{rows}</table>")
    return "".join(parts)


def render(result: dict[str, Any], title: str = "Tandem report") -> str:
    """The page for a benchmark result (autoscale-burst with its curves, failover-rto) or the demo's run (each pool's
    day, its failovers, its snapshot report); anything else says there is no chart for it."""
    body = ""
    if "curves" in result:
        body += _autoscale(result)
    if isinstance(result.get("pools"), dict):
        body += _pools(result)
    if any(isinstance(result.get(m), dict) and "tandem_rto_s" in result[m] for m in ("planned", "unplanned", "failback")):
        body += _failover(result)
    if isinstance(result.get("failovers"), list):
        body += _failovers(result)
    if isinstance(result.get("clusters"), list):
        body += _snapshots(result)
    return page(title, body or "<p>No chart for this result.</p>")
