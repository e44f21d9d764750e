"""How one input ended: exactly one `Outcome` per event; `RuleViolation` leads to a dead letter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from schemas.dead_letter import Reason

OutcomeKind = Literal["emitted", "skipped", "parked", "dead_letter"]


@dataclass(frozen=True)
class Outcome:
    """`kind` plus a stable `reason_code` (a `Reason` value for dead letters) and human text."""

    kind: OutcomeKind
    reason_code: str
    reason: str

    @staticmethod
    def emitted(reason_code: str, reason: str) -> Outcome:
        return Outcome("emitted", reason_code, reason)

    @staticmethod
    def skipped(reason_code: str, reason: str) -> Outcome:
        return Outcome("skipped", reason_code, reason)

    @staticmethod
    def parked(reason_code: str, reason: str) -> Outcome:
        return Outcome("parked", reason_code, reason)

    @staticmethod
    def dead_letter(reason_code: Reason, reason: str) -> Outcome:
        return Outcome("dead_letter", reason_code.value, reason)


class RuleViolation(Exception):
    """An event that cannot be booked correctly; the engine turns it into a dead letter."""

    def __init__(self, code: Reason, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
