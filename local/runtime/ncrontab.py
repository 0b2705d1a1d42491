"""NCRONTAB schedules as the Functions host reads them: six fields, seconds first, `%SETTING%` resolved."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.errors import ConfigError

_MONTHS = {m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_FIELDS = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day_of_week", 0, 6, _DAYS),
)
_SETTING = re.compile(r"^%([^%]+)%$")


def resolve(expression: str, settings: Mapping[str, str]) -> str:
    """Replace a `%NAME%` schedule with the app setting NAME, as the host does at start-up."""
    match = _SETTING.match(expression.strip())
    if not match:
        return expression
    name = match.group(1)
    if not settings.get(name):
        raise ConfigError(f"schedule {expression!r} names app setting {name}, which is not set")
    return settings[name]


def _parse_field(text: str, name: str, low: int, high: int, names: Mapping[str, int]) -> frozenset[int]:
    values: set[int] = set()

    def number(token: str) -> int:
        token = token.upper()
        value = names[token] if token in names else int(token) if token.isdigit() else None
        if value is None or not low <= value <= high:
            raise ConfigError(f"{name} value {token!r} is outside {low}-{high}")
        return value

    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            if not step_text.isdigit() or int(step_text) == 0:
                raise ConfigError(f"{name} step {step_text!r} must be a positive number")
            step = int(step_text)
        if part == "*":
            start, end = low, high
        elif "-" in part:
            first, last = part.split("-", 1)
            start, end = number(first), number(last)
            if start > end:
                raise ConfigError(f"{name} range {part!r} runs backwards")
        else:
            start = number(part)
            end = high if step > 1 else start
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Schedule:
    """A parsed six-field NCRONTAB expression (day of month and day of week must both match)."""

    expression: str
    second: frozenset[int]
    minute: frozenset[int]
    hour: frozenset[int]
    day: frozenset[int]
    month: frozenset[int]
    day_of_week: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> Schedule:
        """Parse `{second} {minute} {hour} {day} {month} {day-of-week}`."""
        parts = expression.split()
        if len(parts) != 6:
            raise ConfigError(f"schedule {expression!r} must have six fields: second minute hour day month day-of-week")
        fields = [_parse_field(p, n, lo, hi, names) for p, (n, lo, hi, names) in zip(parts, _FIELDS, strict=True)]
        return cls(expression, *fields)

    def matches(self, when: datetime) -> bool:
        """Whether `when` (to the second) is an occurrence."""
        return (
            when.second in self.second
            and when.minute in self.minute
            and when.hour in self.hour
            and self._day_ok(when)
            and when.month in self.month
        )

    def _day_ok(self, when: datetime) -> bool:
        return when.day in self.day and (when.isoweekday() % 7) in self.day_of_week

    def next_after(self, when: datetime) -> datetime:
        """The first occurrence strictly after `when` (same timezone as `when`)."""
        t = when.replace(microsecond=0) + timedelta(seconds=1)
        for _ in range(100_000):
            if t.month not in self.month:
                t = (t.replace(day=1, hour=0, minute=0, second=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_ok(t):
                t = t.replace(hour=0, minute=0, second=0) + timedelta(days=1)
            elif t.hour not in self.hour:
                t = t.replace(minute=0, second=0) + timedelta(hours=1)
            elif t.minute not in self.minute:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.second:
                t += timedelta(seconds=1)
            else:
                return t
        raise ConfigError(f"schedule {self.expression!r} never fires")
