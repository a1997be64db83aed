"""Time, injected: the scheduler and the handlers take `now` from a Clock, so tests drive trial
ends, renewals and dunning by moving a clock, never by sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """The wall clock, plus an offset a test may move forward."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, delta: timedelta) -> None:
        self.offset += delta


class FixedClock(Clock):
    """A clock that shows what it is set to."""

    def __init__(self, at: datetime) -> None:
        super().__init__()
        self.at = at

    def now(self) -> datetime:
        return self.at + self.offset
