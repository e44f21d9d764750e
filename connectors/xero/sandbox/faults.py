"""Fault switches set through `/__sandbox/faults`: injected statuses, 429 storms,
slow responses and "applied, then the answer was lost" (apply_then_fail)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Fault:
    """One queued fault; it fires on the next `count` matching calls."""

    count: int = 1
    status: int | None = None
    rate_limit: str | None = None
    retry_after: int = 1
    delay_seconds: float = 0.0
    apply_then_fail: bool = False
    target: str = "api"  # "api" (accounting API) or "token" (POST /connect/token)
    method: str | None = None
    path_contains: str | None = None
    tenant: str | None = None  # only calls for this organisation (xero-tenant-id), API target

    def matches(self, target: str, method: str, path: str, tenant: str | None = None) -> bool:
        """Whether this fault applies to a call."""
        return (
            self.count > 0
            and self.target == target
            and (self.method is None or self.method.upper() == method)
            and (self.path_contains is None or self.path_contains in path)
            and (self.tenant is None or (tenant or "").lower() == self.tenant.lower())
        )

    def describe(self) -> dict[str, Any]:
        """JSON view for the admin API."""
        return {k: v for k, v in self.__dict__.items() if v not in (None, False, 0.0)}


def parse_fault(body: dict[str, Any]) -> Fault:
    """Build a fault from the admin JSON; raises ValueError on nonsense."""
    common = {k: body[k] for k in ("target", "method", "path_contains", "tenant") if k in body}
    if "apply_then_fail" in body:
        spec = body["apply_then_fail"]
        return Fault(
            count=int(spec.get("count", 1)),
            status=int(spec.get("status", 500)),
            apply_then_fail=True,
            **common,
        )
    if "rate_limit" in body:
        return Fault(
            count=int(body.get("count", 1)),
            status=429,
            rate_limit=body["rate_limit"],
            retry_after=int(body.get("retry_after", 1)),
            **common,
        )
    if "status" in body or "delay_seconds" in body:
        return Fault(
            count=int(body.get("count", 1)),
            status=int(body["status"]) if "status" in body else None,
            delay_seconds=float(body.get("delay_seconds", 0)),
            **common,
        )
    raise ValueError("expected one of status, rate_limit, delay_seconds, apply_then_fail")


class Faults:
    """The queue of armed faults."""

    def __init__(self) -> None:
        self.armed: list[Fault] = []

    def arm(self, fault: Fault) -> None:
        """Queue a fault."""
        self.armed.append(fault)

    def clear(self) -> None:
        """Disarm everything."""
        self.armed.clear()

    def take(self, target: str, method: str, path: str, tenant: str | None = None) -> Fault | None:
        """Consume one firing of the first fault matching this call."""
        for fault in self.armed:
            if fault.matches(target, method, path, tenant):
                fault.count -= 1
                return fault
        return None
