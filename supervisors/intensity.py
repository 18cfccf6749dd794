"""OTP restart intensity: more than `max_restarts` restarts within `period` seconds is too many.

A sliding window of restart timestamps, as in OTP's supervisor.erl: each restart is recorded; the
supervisor gives up (stops its children and escalates) when the window holds more than
`max_restarts` entries.
"""

from __future__ import annotations

from collections import deque


class RestartIntensity:
    __slots__ = ("_stamps", "max_restarts", "period")

    def __init__(self, max_restarts: int, period: float) -> None:
        if max_restarts < 0 or period <= 0:
            raise ValueError("max_restarts must be >= 0 and period > 0")
        self.max_restarts = max_restarts
        self.period = period
        self._stamps: deque[float] = deque()

    def _expire(self, now: float) -> None:
        horizon = now - self.period
        while self._stamps and self._stamps[0] <= horizon:
            self._stamps.popleft()

    def record(self, now: float) -> bool:
        """Record a restart at `now`; True when this one exceeds the intensity."""
        self._expire(now)
        self._stamps.append(now)
        return len(self._stamps) > self.max_restarts

    def used(self, now: float) -> int:
        """Restarts inside the window ending at `now`."""
        self._expire(now)
        return len(self._stamps)
