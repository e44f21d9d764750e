"""Xero rate limits: fixed windows per tenant per app, per app, and calls in flight."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from connectors.xero.sandbox.config import LimitsConfig

MINUTE, DAY = 60.0, 86400.0


@dataclass
class Window:
    """A fixed window that starts at its first call (so resets differ per tenant)."""

    length: float
    start: float = -math.inf
    count: int = 0

    def roll(self, now: float) -> None:
        """Start a fresh window if the current one has ended."""
        if now >= self.start + self.length:
            self.start, self.count = now, 0

    def retry_after(self, now: float) -> int:
        """Whole seconds until the window resets (at least 1)."""
        return max(1, math.ceil(self.start + self.length - now))


@dataclass
class Refusal:
    """Why a call was refused: the `X-Rate-Limit-Problem` value and `Retry-After`."""

    problem: str
    retry_after: int | None


class RateLimiter:
    """Counts calls; `acquire` either admits a call (and counts it) or refuses it."""

    def __init__(self, limits: LimitsConfig, now: Callable[[], datetime]) -> None:
        self.limits = limits
        self.now = now
        self.minute: dict[tuple[str, str], Window] = {}
        self.day: dict[tuple[str, str], Window] = {}
        self.app: dict[str, Window] = {}
        self.in_flight: Counter[tuple[str, str]] = Counter()

    def _windows(self, app: str, tenant: str) -> tuple[Window, Window, Window]:
        t = self.now().timestamp()
        key = (app, tenant)
        windows = (
            self.minute.setdefault(key, Window(MINUTE)),
            self.day.setdefault(key, Window(DAY)),
            self.app.setdefault(app, Window(MINUTE)),
        )
        for w in windows:
            w.roll(t)
        return windows

    def acquire(self, app: str, tenant: str) -> Refusal | None:
        """Admit one call (returns None) or say which limit it hits."""
        minute, day, app_minute = self._windows(app, tenant)
        t = self.now().timestamp()
        if self.in_flight[(app, tenant)] >= self.limits.concurrent:
            return Refusal("concurrent", None)
        if day.count >= self.limits.day:
            return Refusal("day", day.retry_after(t))
        if minute.count >= self.limits.minute:
            return Refusal("minute", minute.retry_after(t))
        if app_minute.count >= self.limits.app_minute:
            return Refusal("appminute", app_minute.retry_after(t))
        for w in (minute, day, app_minute):
            w.count += 1
        self.in_flight[(app, tenant)] += 1
        return None

    def release(self, app: str, tenant: str) -> None:
        """Mark an admitted call as finished."""
        self.in_flight[(app, tenant)] -= 1

    def headers(self, app: str, tenant: str) -> dict[str, str]:
        """The `X-*Limit-Remaining` headers for a response."""
        minute, day, app_minute = self._windows(app, tenant)
        return {
            "X-DayLimit-Remaining": str(max(0, self.limits.day - day.count)),
            "X-MinLimit-Remaining": str(max(0, self.limits.minute - minute.count)),
            "X-AppMinLimit-Remaining": str(max(0, self.limits.app_minute - app_minute.count)),
        }
