"""Cron expressions and their ticks in a timezone, with ferroq's daylight-saving rules.

The expression is parsed and stepped by croniter (docs/schedules.md says why that library);
this module adds what ferroq promises on top of it:

- an expression has five fields (minute hour day-of-month month day-of-week), or six with a
  leading *seconds* field, or is an alias (``@hourly``, ``@daily``, ``@midnight``,
  ``@weekly``, ``@monthly``, ``@yearly``, ``@annually``);
- ticks are wall-clock times of the schedule's timezone. A wall time that a spring-forward
  transition skips runs once, *at the transition* (several skipped ticks become that one
  tick); a wall time that a fall-back transition repeats runs once, at its *first*
  occurrence. Mapping wall times to instants this way never goes backwards, so ticks stay in
  order and every tick is one instant;
- a bad expression or timezone is a :class:`~ferroq_core.errors.InvalidSchedule` with a
  one-line message.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import attrs
from croniter import croniter

from ferroq_core.errors import InvalidSchedule

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["ALIASES", "Cron", "parse_cron", "parse_timezone", "wall_to_utc"]

#: The aliases an expression may be instead of fields.
ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_UTC = timezone.utc


def parse_timezone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``UTC``, ``Europe/Berlin``).

    :raises InvalidSchedule: no such zone.
    """
    try:
        if not name or name != name.strip():
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidSchedule(
            f"unknown timezone {name!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'"
        ) from None


def _check_expression(expression: str) -> bool:
    """Validate ``expression``; return whether it has a seconds field."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise InvalidSchedule(
                f"invalid cron expression {expression!r}: unknown alias (use one of "
                f"{', '.join(sorted(ALIASES))})"
            )
        return False
    fields = len(text.split(" ")) if text else 0
    if fields not in (5, 6):
        raise InvalidSchedule(
            f"invalid cron expression {expression!r}: {fields} fields; use 5 (minute hour "
            "day month weekday) or 6 (a seconds field first)"
        )
    seconds = fields == 6
    try:
        # A first tick too: an expression no date matches (30 February) is refused here.
        croniter(text, datetime(2000, 1, 1), second_at_beginning=seconds).get_next(datetime)
    except (ValueError, KeyError, TypeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InvalidSchedule(f"invalid cron expression {expression!r}: {detail}") from None
    return seconds


def wall_to_utc(wall: datetime, zone: ZoneInfo) -> datetime:
    """The instant of the naive wall time ``wall`` in ``zone``: a time a transition skips is
    the transition itself, a repeated time its first occurrence."""
    first = wall.replace(tzinfo=zone, fold=0)
    instant = first.astimezone(_UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant  # it exists (fold=0 is the first occurrence of a repeated time)
    # Skipped: the transition lies between the instants of the offsets before and after it.
    low = wall.replace(tzinfo=zone, fold=1).astimezone(_UTC)
    high = instant
    if low > high:
        low, high = high, low
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == high.astimezone(zone).utcoffset():
            high = middle
        else:
            low = middle
    # Transitions fall on whole seconds: the first one with the new offset.
    down = high.replace(microsecond=0)
    if down.astimezone(zone).utcoffset() == high.astimezone(zone).utcoffset():
        return down
    return down + timedelta(seconds=1)


@attrs.frozen
class Cron:
    """A validated cron expression in a timezone: ``Cron.parse("*/5 * * * *", "UTC")``."""

    #: The expression as given (whitespace normalised).
    expression: str
    #: The IANA timezone name.
    timezone: str
    #: Whether the expression has a leading seconds field.
    seconds: bool
    #: The zone itself.
    zone: ZoneInfo = attrs.field(eq=False, repr=False)

    @classmethod
    def parse(cls, expression: str, timezone_name: str = "UTC") -> Cron:
        """Validate and build.

        :raises InvalidSchedule: a bad expression or timezone (one line, nothing else done).
        """
        if not isinstance(expression, str):
            raise InvalidSchedule(f"a cron expression must be a string, got {expression!r}")
        if not isinstance(timezone_name, str):
            raise InvalidSchedule(f"a timezone must be a string, got {timezone_name!r}")
        zone = parse_timezone(timezone_name)
        seconds = _check_expression(expression)
        text = " ".join(expression.split())
        return cls(text.lower() if text.startswith("@") else text, timezone_name, seconds, zone)

    def ticks_after(self, after: datetime) -> Iterator[datetime]:
        """The ticks strictly after the aware instant ``after``, in order, as aware UTC
        datetimes (endless; callers bound it)."""
        wall = after.astimezone(self.zone).replace(tzinfo=None)
        steps = croniter(self.expression, wall, second_at_beginning=self.seconds)
        last = after
        while True:
            try:
                wall_tick = steps.get_next(datetime)
            except (ValueError, OverflowError) as exc:  # no match left (a last year passed)
                raise InvalidSchedule(
                    f"cron expression {self.expression!r} has no tick after {after}: {exc}"
                ) from None
            tick = wall_to_utc(wall_tick, self.zone)
            if tick > last:
                last = tick
                yield tick

    def next_after(self, after: datetime) -> datetime:
        """The first tick strictly after ``after``."""
        return next(self.ticks_after(after))


def parse_cron(expression: str, timezone_name: str = "UTC") -> Cron:
    """:meth:`Cron.parse`."""
    return Cron.parse(expression, timezone_name)
