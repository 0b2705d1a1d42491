"""The code base passes ruff (the handbook's lint and complexity gate), is formatted as `ruff format` leaves it,
and type-checks under mypy strict (shared/, functions/ and function_app.py, as pyproject.toml configures it)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_ruff_finds_nothing() -> None:
    result = _run("ruff", "check", "--output-format", "concise", str(ROOT))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_is_formatted() -> None:
    result = _run("ruff", "format", "--check", str(ROOT))
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_passes() -> None:
    result = _run("mypy", "--no-incremental")  # the files, strictness and plugin come from pyproject.toml
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr
