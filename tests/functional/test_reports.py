"""The reports an administrator looks at: a drill's evidence report (`GET /api/failover/{instance}/report`) on the whole
estate, the benchmark report `scripts/tandem report` draws, and what a browser renders of each.

A drill runs through the real app on the local runtime; its report is fetched with the route's function key over
the front door's TLS. Headless Chromium (Debian's `chromium`; `.ci/run` installs it) then opens the page, and the
test reads the DOM it built and keeps a screenshot in the test's temporary folder (never in git).
"""

from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from local.demo.estate import Estate, running
from local.runtime import VirtualClock
from tests.functional.test_failover import BUSY, QUICK, call, run_to_end

MORNING = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
OPERATOR = ("Tandem.Failover.Operator",)
REASON = "quarterly DR test <b>not bold</b>"


@pytest.fixture(scope="module")
def drilled(storage: str) -> Iterator[tuple[Estate, str]]:
    with running(storage, VirtualClock(MORNING), hub="treport", settings=BUSY, failover=QUICK) as estate:
        status, started = call(estate, "POST", "failover", {"source": "east", "target": "central", "mode": "drill",
                                                            "reason": REASON}, roles=OPERATOR)  # fmt: skip
        assert status == 202
        assert run_to_end(estate, started["instance"])["output"]["outcome"] == "drill"
        yield estate, started["instance"]


def _get(estate: Estate, path: str) -> tuple[int, dict[str, str], str]:
    host = estate.host
    url = f"{host.front_door.base_url}/api/{path}?code={host.function_keys['failover_report']}"
    context = ssl.create_default_context(cafile=host.front_door.ca.ca_path)
    try:
        with urllib.request.urlopen(url, timeout=30, context=context) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()


def test_the_drill_report_says_what_was_checked_who_asked_and_each_step(drilled: tuple[Estate, str]) -> None:
    estate, instance = drilled
    status, headers, page = _get(estate, f"failover/{instance}/report")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in headers["content-security-policy"]
    steps = estate.host.durable.status(instance)["customStatus"]["steps"]
    assert len(re.findall(r'<rect class="step"', page)) == len(steps) > 5  # one bar per step, every step
    for name in ("preflight", "profile paths", "drain source", "make writable", "drill"):
        assert f">{name}<" in page, name
    assert "ana@contoso.com" in page and "drill: east to central" in page and "Expected RTO" in page
    assert "&lt;b&gt;not bold&lt;/b&gt;" in page and "<b>not bold</b>" not in page  # the reason is text, never markup
    assert "<script" not in page.lower() and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_an_unknown_instance_has_no_report(drilled: tuple[Estate, str]) -> None:
    estate, _ = drilled
    status, headers, body = _get(estate, "failover/failover-mars-venus/report")
    assert status == 404 and headers["content-type"].startswith("application/problem+json") and "Unknown instance" in body


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _browse(page: str, tmp_path: Path, height: int) -> tuple[str, Path]:
    """Open `page` in headless Chromium: the DOM it built, and a PNG screenshot of it in tmp_path."""
    html = tmp_path / "page.html"
    html.write_text(page, encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", f"--user-data-dir={tmp_path / 'profile'}",
             f"--window-size=1100,{height}"]  # fmt: skip
    browser: Any = _chromium()
    dom = subprocess.run([browser, *flags, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    shot = tmp_path / "page.png"
    taken = subprocess.run([browser, *flags, f"--screenshot={shot}", html.as_uri()], capture_output=True, text=True,
                           timeout=120)  # fmt: skip
    assert taken.returncode == 0 and shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", taken.stderr[-2000:]
    return dom.stdout, shot


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on this machine (.ci/run installs Debian's chromium)")
def test_chromium_renders_the_report_with_its_timeline(drilled: tuple[Estate, str], tmp_path: Path) -> None:
    estate, instance = drilled
    _, _, page = _get(estate, f"failover/{instance}/report")
    dom, shot = _browse(page, tmp_path, 1400)
    assert "<svg" in dom and dom.count('class="step"') > 5  # the browser built the chart
    labels = re.findall(r'<text[^>]*text-anchor="end"[^>]*>([^<]+)</text>', dom)
    assert labels and all(label.strip() for label in labels)
    assert shot.stat().st_size > 10_000


def _bench_result(tmp_path: Path) -> Path:
    """A real autoscale-burst result for one Monday (two policies, one seed), as the benchmark writes it."""
    import json

    from bench import autoscale_burst as bench
    from shared.autoscale.forecast import ArrivalHistory

    rows = bench.policies(bench.recorded_peak(1))
    days = {"tandem": bench.play(bench.MEASURED, "typical", "tandem", ArrivalHistory(), 1, rows["tandem"]),
            "clairvoyant": bench.play(bench.MEASURED, "typical", "clairvoyant", ArrivalHistory(), 1)}  # fmt: skip
    figures = {"1": {"typical": {name: bench._summary(day) for name, day in days.items()}}}
    result = {"seeds": [1], "scenarios": bench.aggregate(figures), "per_seed": figures,
              "curves": {"seed": 1, "typical": {name: day.curve for name, day in days.items()}}}  # fmt: skip
    path = tmp_path / "burst.json"
    path.write_text(json.dumps(result), encoding="utf-8")
    return path


def test_the_cli_draws_a_benchmark_day_per_policy(tmp_path: Path) -> None:
    import sys

    out = tmp_path / "report.html"
    done = subprocess.run([sys.executable, "-m", "local.cli", "report", str(_bench_result(tmp_path)), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == out.resolve().as_uri()
    page = out.read_text(encoding="utf-8")
    assert page.count('class="chart"') == 4  # hosts running, hosts serving, sessions and logons, misses
    assert page.count('data-name="tandem"') == 3 and page.count('data-name="clairvoyant"') == 3
    assert page.count('data-name="sessions"') == page.count('data-name="logons"') == 1
    assert "<script" not in page.lower()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    refused = subprocess.run([sys.executable, "-m", "local.cli", "report", str(bad), "--out", str(tmp_path / "no.html")],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert refused.returncode == 1 and "not JSON" in refused.stderr and not (tmp_path / "no.html").exists()


@pytest.mark.skipif(_chromium() is None, reason="no Chromium on this machine (.ci/run installs Debian's chromium)")
def test_chromium_renders_the_benchmark_report_with_every_policys_curve(tmp_path: Path) -> None:
    import json

    from local.report import render

    page = render(json.loads(_bench_result(tmp_path).read_text(encoding="utf-8")))
    dom, _ = _browse(page, tmp_path, 2000)
    lines = re.findall(r'<polyline class="series" data-name="([^"]+)"[^>]*points="([^"]+)"', dom)
    assert {name for name, _ in lines} >= {"tandem", "clairvoyant", "sessions"}
    assert all(len(points.split()) > 100 for _, points in lines)  # a point every 5 minutes of the day
    assert [t for t in re.findall(r'<text class="legend"[^>]*>([^<]+)</text>', dom) if t.strip()]


def test_the_cli_draws_each_directorys_recovery_points_from_the_snapshot_report(drilled: tuple[Estate, str], tmp_path: Path) -> None:
    import json
    import sys
    from datetime import timedelta

    estate, _ = drilled
    estate.host.advance(timedelta(hours=2))  # the snapshot timer (every 15 minutes here) takes its recovery points
    status, snapshots = estate.host.http("GET", "snapshots", function="snapshots_report")
    assert status == 200
    taken = sum(len(d["recovery_points"]) for c in snapshots["clusters"] for d in c.get("directories", []))
    assert taken >= 3
    source = tmp_path / "snapshots.json"
    source.write_text(json.dumps(snapshots), encoding="utf-8")
    out = tmp_path / "snapshots.html"
    done = subprocess.run([sys.executable, "-m", "local.cli", "report", str(source), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert page.count('class="point"') == taken  # every recovery point drawn once
    for cluster in snapshots["clusters"]:
        for d in cluster.get("directories", []):
            assert f"{d['path']} ({'fresh' if d['fresh'] else 'STALE'})" in page
