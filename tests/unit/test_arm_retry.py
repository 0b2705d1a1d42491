"""Which ARM calls may be retried, and how long the service asked us to wait."""

from __future__ import annotations

import pytest

from shared.azure.retry import is_idempotent, retry_after

VM = "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"
SESSION = (
    "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.DesktopVirtualization"
    "/hostPools/hp/sessionHosts/h1/userSessions/3"
)


@pytest.mark.parametrize(
    ("method", "url", "expected"),
    [
        ("GET", VM, True),
        ("PATCH", SESSION, True),
        ("DELETE", SESSION, True),
        ("PUT", VM, True),
        ("POST", f"{VM}/start", True),
        ("POST", f"{VM}/deallocate?api-version=2026-04-01", True),
        ("POST", f"{SESSION}/disconnect", True),
        ("POST", f"{SESSION}/sendMessage", False),
        ("POST", f"{VM}/restart", False),
    ],
)
def test_only_calls_with_the_same_effect_twice_are_idempotent(method: str, url: str, expected: bool) -> None:
    assert is_idempotent(method, url) is expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after-ms": "250", "Retry-After": "1"}, 0.25),
        ({"x-ms-retry-after-ms": "1500"}, 1.5),
        ({}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),
    ],
)
def test_retry_after_reads_milliseconds_seconds_and_dates(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after(headers) == expected
