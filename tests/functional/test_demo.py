"""The demo a newcomer runs plays through and reports success."""

from local.demo.__main__ import play


def test_demo_plays_and_summarises_success(storage: str, capsys) -> None:
    assert play(storage) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("demo summary: OK: 2 regions, 2 host pools, health 200")
    assert "without a function key -> 401" in out
