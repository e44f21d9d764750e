"""`XeroClient`: the adapter over Xero's Accounting API (httpx), one instance per app.

It authenticates each call with the access token and organisation it is handed, records the
quota headers, classifies every non-2xx response with `translate()` and raises. It never
sleeps, never retries and holds no mapping logic: the connector decides, the mapper shapes.
Nothing raw from httpx escapes: transport failures become `Transient`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.errors import Transient
from connectors.protocol import Quota
from connectors.xero import mapper
from connectors.xero.mapper import Json, decode, encode
from connectors.xero.settings import XeroSettings
from connectors.xero.translate import translate, translate_transport

log = logging.getLogger(__name__)

WRITE_PARAMS = {"summarizeErrors": "false", "unitdp": "4"}


@dataclass(frozen=True)
class Auth:
    """What one call needs to reach an organisation. The token is never logged."""

    access_token: str
    organisation_id: str

    def __repr__(self) -> str:
        return f"Auth(organisation_id={self.organisation_id!r}, access_token=***)"


def where_equals(field: str, value: str) -> str:
    """A Xero `where` clause `Field=="value"` with the value's quotes and backslashes escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{field}=="{escaped}"'


def where_any(field: str, values: Iterable[str]) -> str:
    return " OR ".join(where_equals(field, v) for v in values)


def where_chunks(
    terms: Iterable[tuple[str, str]], *, max_terms: int = 25, max_chars: int = 1200
) -> list[str]:
    """`Field=="value" OR ...` clauses covering every (field, value) term, each with at most
    `max_terms` terms and (unless one term alone is longer) `max_chars` characters, so that the
    URL stays well inside common gateway limits (a 2 KB query string once percent-encoded)."""
    chunks: list[str] = []
    current: list[str] = []
    length = 0
    for field, value in terms:
        clause = where_equals(field, value)
        extra = len(clause) + (4 if current else 0)
        if current and (len(current) >= max_terms or length + extra > max_chars):
            chunks.append(" OR ".join(current))
            current, length, extra = [], 0, len(clause)
        current.append(clause)
        length += extra
    if current:
        chunks.append(" OR ".join(current))
    return chunks


class XeroClient:
    def __init__(
        self,
        settings: XeroSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.settings = settings
        self._http = http or httpx.AsyncClient(
            transport=transport, timeout=settings.timeout, follow_redirects=False
        )
        self._quota: dict[str, Quota] = {}
        self.app_minute_remaining: int | None = None

    async def aclose(self) -> None:
        await self._http.aclose()

    # ------------------------------------------------------------ plumbing

    def quota(self, organisation_id: str) -> Quota:
        return self._quota.get(organisation_id, Quota())

    def _record_quota(self, organisation_id: str, response: httpx.Response) -> None:
        def num(name: str) -> int | None:
            raw = response.headers.get(name)
            try:
                return int(raw) if raw is not None else None
            except ValueError:
                return None

        previous = self._quota.get(organisation_id, Quota())
        minute, day = num("X-MinLimit-Remaining"), num("X-DayLimit-Remaining")
        self._quota[organisation_id] = Quota(
            minute_remaining=minute if minute is not None else previous.minute_remaining,
            day_remaining=day if day is not None else previous.day_remaining,
        )
        app = num("X-AppMinLimit-Remaining")
        if app is not None:
            self.app_minute_remaining = app

    async def request(
        self,
        auth: Auth,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """One API call; returns the decoded JSON body (Decimals kept exact) or raises a LedgerError."""
        headers = {
            "Authorization": f"Bearer {auth.access_token}",
            "xero-tenant-id": auth.organisation_id,
            "Accept": "application/json",
        }
        content = None
        if body is not None:
            content = encode(body)
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key[:128]
        url = f"{self.settings.api_url}/{path.lstrip('/')}"
        try:
            response = await self._http.request(method, url, params=params, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise translate_transport(exc) from None
        self._record_quota(auth.organisation_id, response)
        if not response.is_success:
            error = translate(response)
            log.info("xero %s %s -> %s (%s)", method, path, response.status_code, type(error).__name__)
            raise error
        if not response.content:
            return None
        try:
            return decode(response.content)
        except ValueError:
            raise Transient(f"{method} {path}: non-JSON 2xx response", status=response.status_code) from None

    @staticmethod
    def _items(payload: Any, key: str) -> list[Json]:
        if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
            raise Transient(f"unexpected Xero response: no {key} array")
        return payload[key]

    # ------------------------------------------------------------ contacts

    async def find_contacts(self, auth: Auth, where: str) -> list[Json]:
        """The ACTIVE contacts matching a `where` clause (archived ones are left out)."""
        payload = await self.request(
            auth,
            "GET",
            "Contacts",
            params={"where": where, "includeArchived": "false", "summaryOnly": "true"},
        )
        return [c for c in self._items(payload, "Contacts") if c.get("ContactStatus", "ACTIVE") == "ACTIVE"]

    async def create_contacts(self, auth: Auth, elements: list[Json], idempotency_key: str) -> list[Json]:
        payload = await self.request(
            auth,
            "PUT",
            "Contacts",
            params={"summarizeErrors": "false"},
            body=mapper.contacts_body(elements),
            idempotency_key=idempotency_key,
        )
        return self._items(payload, "Contacts")

    # ------------------------------------------------------------ invoices

    async def create_invoices(self, auth: Auth, elements: list[Json], idempotency_key: str) -> list[Json]:
        """`PUT /Invoices?summarizeErrors=false&unitdp=4`: one result element per submitted element."""
        payload = await self.request(
            auth,
            "PUT",
            "Invoices",
            params=WRITE_PARAMS,
            body=mapper.invoices_body(elements),
            idempotency_key=idempotency_key,
        )
        return self._items(payload, "Invoices")

    async def get_invoices(
        self, auth: Auth, *, where: str | None = None, ids: Iterable[str] = (), page: int | None = None
    ) -> list[Json]:
        params: dict[str, str] = {"unitdp": "4"}
        if where:
            params["where"] = where
        ids = list(ids)
        if ids:
            params["IDs"] = ",".join(ids)
        if page is not None:
            params["page"] = str(page)
        return self._items(await self.request(auth, "GET", "Invoices", params=params), "Invoices")

    # ------------------------------------------------------------ credit notes

    async def create_credit_notes(self, auth: Auth, elements: list[Json], idempotency_key: str) -> list[Json]:
        payload = await self.request(
            auth,
            "PUT",
            "CreditNotes",
            params=WRITE_PARAMS,
            body=mapper.credit_notes_body(elements),
            idempotency_key=idempotency_key,
        )
        return self._items(payload, "CreditNotes")

    async def get_credit_notes(self, auth: Auth, *, where: str) -> list[Json]:
        payload = await self.request(auth, "GET", "CreditNotes", params={"where": where, "unitdp": "4"})
        return self._items(payload, "CreditNotes")

    async def get_credit_note(self, auth: Auth, credit_note_id: str) -> Json | None:
        """One credit note by id, with its `Allocations` (None if Xero returns none)."""
        payload = await self.request(auth, "GET", f"CreditNotes/{credit_note_id}", params={"unitdp": "4"})
        items = self._items(payload, "CreditNotes")
        return items[0] if items else None

    async def allocate_credit_note(
        self, auth: Auth, credit_note_id: str, body: Json, idempotency_key: str
    ) -> list[Json]:
        payload = await self.request(
            auth,
            "PUT",
            f"CreditNotes/{credit_note_id}/Allocations",
            params={"summarizeErrors": "false"},
            body=body,
            idempotency_key=idempotency_key,
        )
        return self._items(payload, "Allocations")

    # ------------------------------------------------------------ payments

    async def create_payments(self, auth: Auth, elements: list[Json], idempotency_key: str) -> list[Json]:
        payload = await self.request(
            auth,
            "PUT",
            "Payments",
            params={"summarizeErrors": "false"},
            body=mapper.payments_body(elements),
            idempotency_key=idempotency_key,
        )
        return self._items(payload, "Payments")

    async def get_payments(self, auth: Auth, *, where: str) -> list[Json]:
        return self._items(await self.request(auth, "GET", "Payments", params={"where": where}), "Payments")

    # ------------------------------------------------------------ bank transactions (gateway fees)

    async def create_bank_transactions(
        self, auth: Auth, elements: list[Json], idempotency_key: str
    ) -> list[Json]:
        """`PUT /BankTransactions?summarizeErrors=false&unitdp=4`: one result element per element."""
        payload = await self.request(
            auth,
            "PUT",
            "BankTransactions",
            params=WRITE_PARAMS,
            body=mapper.bank_transactions_body(elements),
            idempotency_key=idempotency_key,
        )
        return self._items(payload, "BankTransactions")

    async def get_bank_transactions(self, auth: Auth, *, where: str) -> list[Json]:
        payload = await self.request(auth, "GET", "BankTransactions", params={"where": where, "unitdp": "4"})
        return self._items(payload, "BankTransactions")

    # ------------------------------------------------------------ settings

    async def tax_rates(self, auth: Auth) -> list[Json]:
        return self._items(await self.request(auth, "GET", "TaxRates"), "TaxRates")

    async def accounts(self, auth: Auth) -> list[Json]:
        return self._items(await self.request(auth, "GET", "Accounts"), "Accounts")

    async def organisation(self, auth: Auth) -> Json | None:
        items = self._items(await self.request(auth, "GET", "Organisation"), "Organisations")
        return items[0] if items else None
