"""What a ledger tells us about itself: tax rates and chart of accounts, ledger-neutral."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from schemas.money import Rate


class LedgerTaxRate(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    name: str
    rate: Rate
    active: bool = True


class LedgerAccount(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: str
    name: str
    type: str
    active: bool = True
    accepts_payments: bool = False
