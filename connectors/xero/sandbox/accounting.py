"""Accounting API handlers (`/api.xro/2.0/...`). Auth, limits and idempotency are
applied before these run (see `gateway.py`); each handler sees one tenant's org."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from connectors.xero.sandbox.banking import build_bank_transaction, commit_bank_transaction
from connectors.xero.sandbox.documents import (
    CREDIT_NOTE,
    INVOICE,
    Kind,
    build_contact,
    build_document,
    commit,
)
from connectors.xero.sandbox.payments import allocate_credit, apply_payment
from connectors.xero.sandbox.queries import QueryError, paginate, select
from connectors.xero.sandbox.state import AccessToken, Org, SandboxState
from connectors.xero.sandbox.wire import ms_date, problem, respond, validation_envelope

API = "/api.xro/2.0"
ZERO_ID = "00000000-0000-0000-0000-000000000000"
Outcome = tuple[dict[str, Any], list[str]]


class PostDataInvalid(ValueError):
    """The body is not the JSON Xero expects (Xero: PostDataInvalidException)."""


@dataclass
class ApiCall:
    """What the gateway established about the call being handled."""

    state: SandboxState
    org: Org
    access: AccessToken
    body: Any = None


CALL: ContextVar[ApiCall] = ContextVar("xero_sandbox_call")


def _ctx(request: web.Request) -> tuple[SandboxState, Org]:
    call = CALL.get()
    return call.state, call.org


def _envelope(
    request: web.Request, key: str, items: list[Any], pagination: dict[str, int] | None = None
) -> dict[str, Any]:
    call = CALL.get()
    state = call.state
    body: dict[str, Any] = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": state.clients[call.access.client_id].name,
        "DateTimeUTC": ms_date(state.now()),
    }
    if pagination is not None:
        body["pagination"] = pagination
    body[key] = items
    return body


def not_found() -> web.Response:
    """Xero's 404, as JSON."""
    return respond(problem(404, "NotFound", "The resource you're looking for cannot be found"), 404)


def query_error(message: str) -> web.Response:
    """400 for an unparseable `where`."""
    return respond({"ErrorNumber": 16, "Type": "QueryParseException", "Message": message}, 400)


def post_data_error(message: str) -> web.Response:
    """400 for a body that is not the expected JSON."""
    return respond({"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message}, 400)


def _elements(request: web.Request, key: str, single_marker: str) -> list[Any]:
    body = CALL.get().body
    if isinstance(body, dict) and isinstance(body.get(key), list):
        return body[key]
    if isinstance(body, dict) and single_marker in body:
        return [body]
    raise PostDataInvalid(f"The request body must be a JSON object with a '{key}' array.")


def _batch(
    request: web.Request,
    key: str,
    id_field: str | None,
    single_marker: str,
    process: Callable[[Any], Outcome],
) -> web.Response:
    """Run each element; apply Xero's summarizeErrors rules to the answer."""
    try:
        elements = _elements(request, key, single_marker)
    except PostDataInvalid as exc:
        return post_data_error(str(exc))
    summarize = request.query.get("summarizeErrors", "true").lower() != "false"
    results, failed = [], []
    for raw in elements:
        wire, errors = process(raw)
        if errors:
            echo = dict(wire) | {
                "StatusAttributeString": "ERROR",
                "ValidationErrors": [{"Message": m} for m in errors],
            }
            if key in ("Invoices", "CreditNotes"):
                echo["HasErrors"] = True
            elif key in ("Contacts", "Payments"):
                echo["HasValidationErrors"] = True
            if id_field and not echo.get(id_field):
                echo[id_field] = ZERO_ID
            results.append(echo)
            failed.append(echo)
        else:
            results.append(wire)
    if failed and summarize:
        return respond(validation_envelope(failed), 400)
    return respond(_envelope(request, key, results))


def _list(request: web.Request, key: str, docs: list[dict[str, Any]], lists: dict[str, str]) -> web.Response:
    state, _ = _ctx(request)
    try:
        chosen = select(docs, dict(request.query), lists)
        page, pagination = paginate(chosen, dict(request.query), state.config.page_size)
    except QueryError as exc:
        return query_error(str(exc))
    return respond(_envelope(request, key, page, pagination))


def _one(
    request: web.Request, key: str, docs: dict[str, dict[str, Any]], number_field: str | None
) -> web.Response:
    ident = request.match_info["ident"]
    doc = docs.get(ident.lower()) or next(
        (d for d in docs.values() if number_field and d.get(number_field) == ident), None
    )
    return respond(_envelope(request, key, [doc])) if doc else not_found()


def _doc_handlers(kind: Kind, key: str, lists: dict[str, str]) -> dict[str, Any]:
    async def list_docs(request: web.Request) -> web.Response:
        _, org = _ctx(request)
        return _list(request, key, list(getattr(org, kind.collection).values()), lists)

    async def get_doc(request: web.Request) -> web.Response:
        _, org = _ctx(request)
        return _one(request, key, getattr(org, kind.collection), kind.number_field)

    def writer(upsert: bool) -> Callable[[web.Request], Any]:
        async def write(request: web.Request) -> web.Response:
            state, org = _ctx(request)
            unitdp = int(request.query.get("unitdp", "2") or 2)

            def process(raw: Any) -> Outcome:
                draft = build_document(org, kind, raw, state.now(), upsert=upsert, unitdp=unitdp)
                if not draft.errors:
                    commit(org, kind, draft)
                return draft.doc, draft.errors

            return _batch(request, key, kind.id_field, "LineItems", process)

        return write

    return {"list": list_docs, "get": get_doc, "put": writer(False), "post": writer(True)}


async def list_contacts(request: web.Request) -> web.Response:
    """GET /Contacts."""
    _, org = _ctx(request)
    return _list(request, "Contacts", list(org.contacts.values()), {"IDs": "ContactID"})


async def get_contact(request: web.Request) -> web.Response:
    """GET /Contacts/{ContactID}."""
    _, org = _ctx(request)
    return _one(request, "Contacts", org.contacts, "ContactNumber")


def _contact_writer(upsert: bool) -> Callable[[web.Request], Any]:
    async def write(request: web.Request) -> web.Response:
        state, org = _ctx(request)

        def process(raw: Any) -> Outcome:
            if not isinstance(raw, dict):
                return {}, ["Contact must be an object."]
            draft = build_contact(org, raw, state.now(), upsert=upsert)
            if not draft.errors:
                org.contacts[draft.doc["ContactID"]] = draft.doc
            return draft.doc, draft.errors

        return _batch(request, "Contacts", "ContactID", "Name", process)

    return write


async def create_allocations(request: web.Request) -> web.Response:
    """PUT /CreditNotes/{CreditNoteID}/Allocations."""
    state, org = _ctx(request)
    credit_note = org.credit_notes.get(request.match_info["ident"].lower())
    if credit_note is None:
        return not_found()
    return _batch(
        request,
        "Allocations",
        None,
        "Amount",
        lambda raw: allocate_credit(org, credit_note, raw, state.now()),
    )


async def write_payments(request: web.Request) -> web.Response:
    """PUT or POST /Payments (a `Payments` array or one Payment)."""
    state, org = _ctx(request)
    return _batch(
        request, "Payments", "PaymentID", "Amount", lambda raw: apply_payment(org, raw, state.now())
    )


async def list_payments(request: web.Request) -> web.Response:
    """GET /Payments."""
    _, org = _ctx(request)
    return _list(request, "Payments", list(org.payments.values()), {})


async def get_payment(request: web.Request) -> web.Response:
    """GET /Payments/{PaymentID}."""
    _, org = _ctx(request)
    return _one(request, "Payments", org.payments, None)


async def write_bank_transactions(request: web.Request) -> web.Response:
    """PUT /BankTransactions (a `BankTransactions` array or one BankTransaction)."""
    state, org = _ctx(request)
    unitdp = int(request.query.get("unitdp", "2") or 2)

    def process(raw: Any) -> Outcome:
        draft = build_bank_transaction(org, raw, state.now(), unitdp=unitdp)
        if not draft.errors:
            commit_bank_transaction(org, draft)
        return draft.doc, draft.errors

    return _batch(request, "BankTransactions", "BankTransactionID", "LineItems", process)


async def list_bank_transactions(request: web.Request) -> web.Response:
    """GET /BankTransactions."""
    _, org = _ctx(request)
    return _list(request, "BankTransactions", list(org.bank_transactions.values()), {})


async def get_bank_transaction(request: web.Request) -> web.Response:
    """GET /BankTransactions/{BankTransactionID}."""
    _, org = _ctx(request)
    return _one(request, "BankTransactions", org.bank_transactions, None)


async def list_tax_rates(request: web.Request) -> web.Response:
    """GET /TaxRates."""
    _, org = _ctx(request)
    docs = list(org.tax_rates.values())
    if request.query.get("TaxType"):
        docs = [t for t in docs if t["TaxType"] == request.query["TaxType"]]
    return _list(request, "TaxRates", docs, {})


async def get_organisation(request: web.Request) -> web.Response:
    """GET /Organisation: the calling tenant's organisation (a subset of Xero's fields)."""
    _, org = _ctx(request)
    cfg = org.config
    country = {"GBP": "GB", "USD": "US", "EUR": "IE", "AUD": "AU", "NZD": "NZ"}.get(cfg.base_currency)
    body = {
        "OrganisationID": cfg.tenant_id,
        "Name": cfg.name,
        "LegalName": cfg.name,
        "BaseCurrency": cfg.base_currency,
        "CountryCode": country,
        "OrganisationType": "COMPANY",
        "OrganisationStatus": "ACTIVE",
    }
    return respond({"Organisations": [body]})


async def list_accounts(request: web.Request) -> web.Response:
    """GET /Accounts."""
    _, org = _ctx(request)
    return _list(request, "Accounts", list(org.accounts.values()), {})


def add_routes(app: web.Application) -> None:
    """Register the Accounting API routes."""
    invoices = _doc_handlers(
        INVOICE,
        "Invoices",
        {
            "IDs": "InvoiceID",
            "InvoiceNumbers": "InvoiceNumber",
            "ContactIDs": "Contact.ContactID",
            "Statuses": "Status",
        },
    )
    credits = _doc_handlers(CREDIT_NOTE, "CreditNotes", {"IDs": "CreditNoteID"})
    r = app.router
    for name, handlers in (("Invoices", invoices), ("CreditNotes", credits)):
        r.add_get(f"{API}/{name}", handlers["list"])
        r.add_put(f"{API}/{name}", handlers["put"])
        r.add_post(f"{API}/{name}", handlers["post"])
        r.add_get(f"{API}/{name}/{{ident}}", handlers["get"])
    r.add_put(f"{API}/CreditNotes/{{ident}}/Allocations", create_allocations)
    r.add_get(f"{API}/Contacts", list_contacts)
    r.add_put(f"{API}/Contacts", _contact_writer(False))
    r.add_post(f"{API}/Contacts", _contact_writer(True))
    r.add_get(f"{API}/Contacts/{{ident}}", get_contact)
    r.add_get(f"{API}/Payments", list_payments)
    r.add_put(f"{API}/Payments", write_payments)
    r.add_post(f"{API}/Payments", write_payments)
    r.add_get(f"{API}/Payments/{{ident}}", get_payment)
    r.add_get(f"{API}/BankTransactions", list_bank_transactions)
    r.add_put(f"{API}/BankTransactions", write_bank_transactions)
    r.add_get(f"{API}/BankTransactions/{{ident}}", get_bank_transaction)
    r.add_get(f"{API}/TaxRates", list_tax_rates)
    r.add_get(f"{API}/Accounts", list_accounts)
    r.add_get(f"{API}/Organisation", get_organisation)
