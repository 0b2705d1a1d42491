"""The evidence report of one drill or failover: one self-contained HTML page (no script, no network at view time;
the timeline is inline SVG) an auditor can file. Built from the instance's Durable status alone: what was asked
and by whom, what was checked (preflight, where FSLogix looks, replication), every step with its times, the
approval, RPO, and the expected and measured RTO.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

BAR_H, GAP, LABEL_W, CHART_W = 18, 6, 220, 640
COLOURS = {"done": "#2e7d32", "rehearsed": "#1565c0", "approved": "#2e7d32", "waiting": "#f9a825", "running": "#f9a825",
           "failed": "#c62828", "rolled back": "#c62828", "cancelled": "#6d4c41", "needs operator": "#ef6c00"}  # fmt: skip
USERS_MOVE = ("move assignments", "point of no return")  # the measured RTO ends when users can be moved


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 time, or None when absent or not one."""
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def timeline(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each step with its start and end in seconds from the first step's start (end None while running)."""
    starts = [t for t in (parse_time(s.get("started")) for s in steps) if t is not None]
    if not starts:
        return []
    zero = min(starts)
    out = []
    for s in steps:
        began, ended = parse_time(s.get("started")), parse_time(s.get("ended"))
        out.append({"step": str(s.get("step", "")), "status": str(s.get("status", "")), "detail": str(s.get("detail", "")),
                    "start_s": (began - zero).total_seconds() if began else 0.0,
                    "end_s": (ended - zero).total_seconds() if ended else None})  # fmt: skip
    return out


def measured_rto_s(rows: list[dict[str, Any]]) -> float | None:
    """From the first step to the end of moving the users (None for a drill, or before the move)."""
    ends = [r["end_s"] for r in rows if r["step"] in USERS_MOVE and r["status"] == "done" and r["end_s"] is not None]
    return max(ends) if ends else None


def gantt(rows: list[dict[str, Any]]) -> str:
    """The steps as an inline SVG Gantt chart: one labelled bar per step, coloured by its status, on a seconds axis."""
    span = max([r["end_s"] or r["start_s"] for r in rows] + [1.0])
    height = len(rows) * (BAR_H + GAP) + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="failover steps over time" '
             f'width="{LABEL_W + CHART_W + 20}" height="{height}" class="gantt">']  # fmt: skip
    for i, r in enumerate(rows):
        y = 10 + i * (BAR_H + GAP)
        x = LABEL_W + CHART_W * r["start_s"] / span
        w = max(2.0, CHART_W * ((r["end_s"] if r["end_s"] is not None else span) - r["start_s"]) / span)
        colour = COLOURS.get(r["status"], "#757575")
        title = f"{r['step']}: {r['status']} {r['start_s']:.0f}-{'' if r['end_s'] is None else f'{r["end_s"]:.0f}'} s"
        parts.append(f'<text x="{LABEL_W - 8}" y="{y + BAR_H - 5}" text-anchor="end" font-size="12">{escape(r["step"])}</text>')
        parts.append(f'<rect class="step" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{BAR_H}" fill="{colour}">'
                     f"<title>{escape(title)}</title></rect>")  # fmt: skip
    axis_y = height - 22
    parts.append(f'<line x1="{LABEL_W}" y1="{axis_y}" x2="{LABEL_W + CHART_W}" y2="{axis_y}" stroke="#444"/>')
    for k in range(5):
        x = LABEL_W + CHART_W * k / 4
        tick = span * k / 4
        label = f"{tick:.0f} s" if span >= 20 else f"{tick:.1f} s"
        parts.append(f'<text x="{x:.1f}" y="{axis_y + 16}" text-anchor="middle" font-size="11">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _rpo(mode: str, rpo_s: Any) -> str:
    if isinstance(rpo_s, int | float):
        return f"{rpo_s:.0f} s (the newest recovery point's age at the start)"
    return "none lost (planned: the last job ran after the fence)" if mode in ("planned", "failback") else "no recovery point yet"


def _where(path: Any) -> str:
    """One pool's FSLogix settings as a sentence."""
    if not isinstance(path, dict):
        return str(path)
    locations = ", ".join(str(x) for x in path.get("locations") or []) or "nowhere"
    problems = "; ".join(str(x) for x in path.get("problems") or []) or "no problem"
    how = f"{path.get('kind', '')}, {path.get('source', '')}"
    return f"{path.get('pool', '')}: {path.get('host', '')} looks in {locations} ({how}); {problems}"


def _moved(output: dict[str, Any], steps: list[Any]) -> str:
    """Who moved: the sessions the target was sized for, and the first sign-ins the verify step sampled."""
    if output.get("outcome") != "completed":
        return "nobody" + (" (a drill moves nobody)" if output.get("outcome") == "drill" else "")
    profiles = next(
        (_dict(s.get("profiles")) for s in steps if isinstance(s, dict) and s.get("step") == "verify" and s.get("profiles")), {}
    )
    sampled = (f"; first sign-ins in the target: {profiles.get('own_profile', 0)} own profile, {profiles.get('new_profile', 0)} new "
               f"profile, {profiles.get('failed_signin', 0)} failed") if profiles else "; no first sign-in sampled"  # fmt: skip
    return f"the users of {output.get('sessions', 0)} sessions, with {output.get('seats', 0)} seats ready{sampled}"


def section(status: dict[str, Any]) -> str:
    """The report's body for one instance's status ({instance, runtime_status, input, custom_status, output}):
    its facts, the Gantt of its steps, what was checked, where FSLogix looks and every step."""
    request, custom, output = (_dict(status.get(k)) for k in ("input", "custom_status", "output"))
    steps = [s for s in custom.get("steps", []) if isinstance(s, dict)]
    rows = timeline(steps)
    approval = next((r for r in reversed(rows) if r["step"] == "approval" and r["status"] != "waiting"), None)
    checked = [r for r in rows if r["step"] in ("preflight", "profile paths", "replication caught up", "target writable", "verify")]
    measured = measured_rto_s(rows)
    facts = [
        ("Instance", status.get("instance", "")),
        ("Mode", f"{request.get('mode', '')}: {request.get('source', '')} to {request.get('target', '')}"),
        ("Outcome", output.get("outcome") or status.get("runtime_status", "")),
        ("Reason", request.get("reason", "")),
        ("Requested by", request.get("requested_by", "")),
        ("Approved", f"{approval['status']} {approval['detail']}".strip() if approval else "not asked"),
        ("RPO", _rpo(request.get("mode", ""), output.get("rpo_s"))),
        ("Expected RTO", f"{output['expected_rto_s']:.0f} s" if isinstance(output.get("expected_rto_s"), int | float) else ""),
        ("Measured RTO", f"{measured:.0f} s" if measured is not None else "not measured: no users moved"),
        ("Users moved", _moved(output, steps)),
    ]
    table = "".join(
        f"<tr><td>{escape(r['step'])}</td><td>{escape(r['status'])}</td><td>{r['start_s']:.0f}</td>"
        f"<td>{'' if r['end_s'] is None else f'{r["end_s"]:.0f}'}</td><td>{escape(r['detail'])}</td></tr>"
        for r in rows
    )
    checks = "".join(f"<li><b>{escape(r['step'])}</b>: {escape(r['status'])} {escape(r['detail'])}</li>" for r in checked)
    found = output.get("profile_paths")
    paths: list[Any] = found if isinstance(found, list) else []
    fslogix = "".join(f"<li>{escape(_where(p))}</li>" for p in paths[:50])
    return f"""<dl class="facts">{"".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in facts)}</dl>
<h3>Timeline</h3>{gantt(rows) if rows else "<p>No step has run.</p>"}
<h3>What was checked</h3><ul class="checks">{checks or "<li>nothing yet</li>"}</ul>
<h3>Where FSLogix looks</h3><ul>{fslogix or "<li>as in the steps above</li>"}</ul>
<h3>Steps</h3><table class="steps"><tr><th>step</th><th>status</th><th>start (s)</th><th>end (s)</th><th>detail</th></tr>
{table}</table>"""


STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;color:#222}svg{display:block;margin:.5rem 0}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
dt{font-weight:bold}"""


def page(title: str, body: str) -> str:
    """One self-contained HTML page: no script, nothing fetched (the CSP says so to the browser too)."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>{STYLE}</style></head>
<body><h1>{escape(title)}</h1>{body}</body></html>
"""


def render(status: dict[str, Any]) -> str:
    """The HTML page for one instance's status ({instance, runtime_status, input, custom_status, output})."""
    return page(f"Failover report: {status.get('instance', '')}", section(status))
