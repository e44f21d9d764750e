"""Fixtures: a migrated SQLite database, a token cipher, and `FakeXero` (an httpx.MockTransport
emulating the identity endpoints and the Accounting API calls the client makes). Every write the
fake receives is validated against the Xero OpenAPI spec."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from cryptography.fernet import Fernet

from connectors.xero.client import XeroClient
from connectors.xero.connector import XeroConnector
from connectors.xero.mapper import decode, encode
from connectors.xero.oauth import XeroOAuth
from connectors.xero.settings import XeroSettings
from connectors.xero.tokens import TokenManager
from store import connections
from store.base import utcnow
from store.db import make_engine, make_sessions, migrate

_spec = importlib.util.spec_from_file_location("xero_client_spec", Path(__file__).with_name("spec.py"))
assert _spec and _spec.loader
spec_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(spec_module)
XeroSpec = spec_module.XeroSpec

BASE = "https://xero.test"
ORG = "11111111-1111-1111-1111-111111111111"
OTHER_ORG = "22222222-2222-2222-2222-222222222222"  # another organisation the same user authorised
TENANT = "shop-1"


@pytest.fixture(scope="session")
def xero_spec() -> Any:
    return XeroSpec.load()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    migrate(url)
    return url


@pytest.fixture
def sessions(db_url: str) -> Iterator[Any]:
    engine = make_engine(db_url)
    yield make_sessions(engine)
    engine.dispose()


@pytest.fixture
def cipher() -> connections.TokenCipher:
    return connections.TokenCipher([Fernet.generate_key()])


@pytest.fixture
def settings() -> XeroSettings:
    return XeroSettings.for_sandbox(BASE, redirect_uri="https://app.test/cb")


class FakeXero:
    """Just enough Xero: tokens (rotating refresh tokens), connections, contacts (unique names,
    `where` with OR), invoices, credit notes (+ allocations), payments, bank transactions, tax
    rates, accounts. Idempotency as Xero: a key reused with the same request replays the first
    200, with a different body it is a 400. Knobs: `fail_next`, `reject_references`,
    `reject_tax_types`, `reject_contact_names`, `reject_line_accounts` (bank transactions),
    `reject_allocations`. `GET /CreditNotes/{id}` returns one note with its allocations."""

    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.requests: list[httpx.Request] = []
        self.refresh_tokens: dict[str, bool] = {}  # refresh token → still valid
        self.access_tokens: set[str] = set()
        self.token_calls = 0
        self.on_api_call: Callable[[httpx.Request], None] | None = None
        self.contacts: list[dict[str, Any]] = []
        self.invoices: list[dict[str, Any]] = []
        self.credit_notes: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []
        self.bank_transactions: list[dict[str, Any]] = []
        self.fail_next: list[httpx.Response] = []  # API responses to return before processing
        self.reject_references: set[str] = set()
        self.reject_tax_types: set[str] = set()
        self.reject_contact_names: dict[str, str] = {}  # name → validation message
        self.reject_line_accounts: set[str] = set()  # bank-transaction line account codes refused
        self.reject_allocations: str | None = None  # validation message for every allocation
        self.idem: dict[str, tuple[bytes, bytes]] = {}  # key → (request body, response body)
        self.code_challenges: dict[str, str] = {}
        self.revoked: list[str] = []
        self.connections: list[dict[str, Any]] = [
            {"id": "c-1", "tenantId": ORG, "tenantType": "ORGANISATION", "tenantName": "Demo Ltd"},
            {"id": "c-2", "tenantId": OTHER_ORG, "tenantType": "ORGANISATION", "tenantName": "Other Ltd"},
        ]

    # ------------------------------------------------------------ helpers

    def issue(self, refresh: str | None = None) -> dict[str, Any]:
        access = f"at-{uuid.uuid4().hex}"
        refresh = refresh or f"rt-{uuid.uuid4().hex}"
        self.access_tokens.add(access)
        self.refresh_tokens[refresh] = True
        return {"access_token": access, "refresh_token": refresh, "expires_in": 1800, "token_type": "Bearer"}

    def api(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == f"/api.xro/2.0/{path}"]

    @staticmethod
    def json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
        h = {
            "Content-Type": "application/json",
            "X-MinLimit-Remaining": "59",
            "X-DayLimit-Remaining": "4990",
            "X-AppMinLimit-Remaining": "9999",
            **(headers or {}),
        }
        return httpx.Response(status, content=encode(body), headers=h)

    # ------------------------------------------------------------ dispatch

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/connect/token":
            return self.token(request)
        if path == "/connect/revocation":
            self.revoked.append(parse_qs(request.content.decode())["token"][0])
            return httpx.Response(200)
        if path.startswith("/connections"):
            if request.headers.get("Authorization", "").removeprefix("Bearer ") not in self.access_tokens:
                return self.json({"Type": "AuthenticationUnsuccessful"}, 401)
            if request.method == "DELETE":
                conn_id = path.rsplit("/", 1)[1]
                if not any(c["id"] == conn_id for c in self.connections):
                    return self.json({"Type": "NotFound"}, 404)
                self.connections = [c for c in self.connections if c["id"] != conn_id]
                return httpx.Response(204)
            return self.json([{**c, "authEventId": "e-1"} for c in self.connections])
        assert path.startswith("/api.xro/2.0/"), path
        auth = request.headers.get("Authorization", "")
        assert request.headers["Accept"] == "application/json"
        assert request.headers["xero-tenant-id"] == ORG
        if self.on_api_call:
            self.on_api_call(request)
        if auth.removeprefix("Bearer ") not in self.access_tokens:
            return self.json({"Type": "AuthenticationUnsuccessful"}, 401)
        if self.fail_next:
            return self.fail_next.pop(0)
        resource = path.removeprefix("/api.xro/2.0/")
        body = decode(request.content) if request.content else None
        if request.method in ("PUT", "POST"):
            assert request.headers["Content-Type"] == "application/json"
            assert request.headers.get("Idempotency-Key")
            self.spec.validate_request(request.method, "/" + resource, body)
            key = request.headers["Idempotency-Key"]
            if key in self.idem:
                sent, answer = self.idem[key]
                if sent != request.content:
                    message = "The Idempotency-Key has already been used with a different request."
                    return self.json(
                        {"ErrorNumber": 10, "Type": "ValidationException", "Message": message}, 400
                    )
                return httpx.Response(200, content=answer, headers={"Content-Type": "application/json"})
        response = self.route(request.method, resource, request, body)
        if request.method in ("PUT", "POST") and response.status_code == 200:
            self.idem[request.headers["Idempotency-Key"]] = (request.content, response.content)
        return response

    def token(self, request: httpx.Request) -> httpx.Response:
        self.token_calls += 1
        basic = base64.b64encode(b"ledgerstream-dev:dev-secret").decode()
        assert request.headers["Authorization"] == f"Basic {basic}"
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form["grant_type"] == "refresh_token":
            old = form["refresh_token"]
            if not self.refresh_tokens.get(old):
                return self.json({"error": "invalid_grant"}, 400)
            self.refresh_tokens[old] = False  # rotation: the old one is spent
            return self.json(self.issue())
        assert form["grant_type"] == "authorization_code"
        challenge = self.code_challenges.pop(form["code"], None)
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge is None or digest != challenge:
            return self.json({"error": "invalid_grant"}, 400)
        return self.json(self.issue())

    def route(self, method: str, resource: str, request: httpx.Request, body: Any) -> httpx.Response:
        params = request.url.params
        if resource == "Contacts" and method == "GET":
            terms = []
            for part in params.get("where", "").split(" OR "):  # test values hold no " OR "
                field, _, value = part.partition("==")
                terms.append((field, json.loads(value).lower()))
            found = [c for c in self.contacts if any(str(c.get(f, "")).lower() == v for f, v in terms)]
            return self.json({"Contacts": found})
        if resource == "Contacts" and method == "PUT":
            out = []
            for c in body["Contacts"]:
                taken = any(
                    x["Name"].lower() == c["Name"].lower() and x["ContactStatus"] == "ACTIVE"
                    for x in self.contacts
                )
                message = self.reject_contact_names.get(c["Name"]) or (
                    f"The contact name {c['Name']} is already assigned to another contact." if taken else None
                )
                if message:
                    out.append(
                        {
                            **c,
                            "ContactID": "00000000-0000-0000-0000-000000000000",
                            "HasValidationErrors": True,
                            "StatusAttributeString": "ERROR",
                            "ValidationErrors": [{"Message": message}],
                        }
                    )
                    continue
                c = {**c, "ContactID": str(uuid.uuid4()), "ContactStatus": "ACTIVE"}
                self.contacts.append(c)
                out.append(c)
            return self.json({"Contacts": out})
        if resource in ("Invoices", "CreditNotes") and method == "PUT":
            store = self.invoices if resource == "Invoices" else self.credit_notes
            id_key = "InvoiceID" if resource == "Invoices" else "CreditNoteID"
            out = []
            for el in body[resource]:
                bad_tax = [
                    li["TaxType"] for li in el["LineItems"] if li.get("TaxType") in self.reject_tax_types
                ]
                if el.get("Reference") in self.reject_references or bad_tax:
                    message = (
                        f"The TaxType code '{bad_tax[0]}' does not exist or cannot be used"
                        if bad_tax
                        else "Account code '999' is not a valid code."
                    )
                    out.append(
                        {
                            **el,
                            "HasErrors": True,
                            "StatusAttributeString": "ERROR",
                            "ValidationErrors": [{"Message": message}],
                        }
                    )
                    continue
                total = sum((li["LineAmount"] for li in el["LineItems"]), Decimal(0))
                if el["LineAmountTypes"] == "Exclusive":
                    total += sum((li["TaxAmount"] for li in el["LineItems"]), Decimal(0))
                doc = {
                    **el,
                    id_key: str(uuid.uuid4()),
                    "Total": total,
                    "StatusAttributeString": "OK",
                    "Allocations": [],
                    "RemainingCredit": total,
                }
                store.append(doc)
                out.append(doc)
            return self.json({resource: out})
        if resource in ("Invoices", "CreditNotes", "Payments", "BankTransactions") and method == "GET":
            store = {
                "Invoices": self.invoices,
                "CreditNotes": self.credit_notes,
                "Payments": self.payments,
                "BankTransactions": self.bank_transactions,
            }[resource]
            refs = [json.loads(part.split("==", 1)[1]) for part in params.get("where", "").split(" OR ")]
            return self.json({resource: [d for d in store if d.get("Reference") in refs]})
        if resource.startswith("CreditNotes/") and method == "GET":
            cn_id = resource.split("/")[1]
            return self.json({"CreditNotes": [c for c in self.credit_notes if c["CreditNoteID"] == cn_id]})
        if resource.startswith("CreditNotes/") and resource.endswith("/Allocations"):
            cn_id = resource.split("/")[1]
            cn = next(c for c in self.credit_notes if c["CreditNoteID"] == cn_id)
            out = []
            for a in body["Allocations"]:
                if self.reject_allocations:
                    out.append(
                        {
                            **a,
                            "StatusAttributeString": "ERROR",
                            "ValidationErrors": [{"Message": self.reject_allocations}],
                        }
                    )
                    continue
                cn["Allocations"].append(a)
                cn["RemainingCredit"] -= a["Amount"]
                out.append({**a, "AllocationID": str(uuid.uuid4()), "StatusAttributeString": "OK"})
            return self.json({"Allocations": out})
        if resource == "Payments" and method == "PUT":
            out = []
            for p in body["Payments"]:
                invoice_id = p["Invoice"]["InvoiceID"]
                if not any(i["InvoiceID"] == invoice_id for i in self.invoices):
                    out.append(
                        {**p, "HasErrors": True, "ValidationErrors": [{"Message": "Invoice not found"}]}
                    )
                    continue
                doc = {
                    **p,
                    "PaymentID": str(uuid.uuid4()),
                    "Status": "AUTHORISED",
                    "StatusAttributeString": "OK",
                }
                self.payments.append(doc)
                out.append(doc)
            return self.json({"Payments": out})
        if resource == "BankTransactions" and method == "PUT":
            out = []
            for bt in body["BankTransactions"]:
                bad = [
                    li["AccountCode"]
                    for li in bt["LineItems"]
                    if li.get("AccountCode") in self.reject_line_accounts
                ]
                if bad:
                    message = f"Account code '{bad[0]}' is not a valid code for this document."
                    out.append(
                        {
                            **bt,
                            "BankTransactionID": "00000000-0000-0000-0000-000000000000",
                            "StatusAttributeString": "ERROR",
                            "ValidationErrors": [{"Message": message}],
                        }
                    )
                    continue
                total = sum((li["Quantity"] * li["UnitAmount"] for li in bt["LineItems"]), Decimal(0))
                doc = {
                    **bt,
                    "BankTransactionID": str(uuid.uuid4()),
                    "Status": "AUTHORISED",
                    "Total": total,
                    "StatusAttributeString": "OK",
                }
                self.bank_transactions.append(doc)
                out.append(doc)
            return self.json({"BankTransactions": out})
        if resource == "TaxRates":
            return self.json(
                {
                    "TaxRates": [
                        {
                            "Name": "20% (VAT on Income)",
                            "TaxType": "OUTPUT2",
                            "EffectiveRate": Decimal("20.0000"),
                            "Status": "ACTIVE",
                        },
                        {
                            "Name": "Old",
                            "TaxType": "OLD",
                            "EffectiveRate": Decimal("17.5"),
                            "Status": "DELETED",
                        },
                    ]
                }
            )
        if resource == "Accounts":
            return self.json(
                {
                    "Accounts": [
                        {"Code": "200", "Name": "Sales", "Type": "REVENUE", "Status": "ACTIVE"},
                        {"Code": "090", "Name": "Bank", "Type": "BANK", "Status": "ACTIVE"},
                        {"Name": "No code", "Type": "BANK"},
                    ]
                }
            )
        return self.json({"Type": "NotFound"}, 404)


@pytest.fixture
def fake(xero_spec: Any) -> FakeXero:
    return FakeXero(xero_spec)


@pytest.fixture
def transport(fake: FakeXero) -> httpx.MockTransport:
    return httpx.MockTransport(fake)


@pytest.fixture
def oauth(
    settings: XeroSettings, sessions: Any, cipher: connections.TokenCipher, transport: httpx.MockTransport
) -> XeroOAuth:
    return XeroOAuth(settings, sessions, cipher, transport=transport)


@pytest.fixture
def tokens(sessions: Any, cipher: connections.TokenCipher, oauth: XeroOAuth) -> TokenManager:
    return TokenManager(sessions, cipher, oauth)


@pytest.fixture
def connect(sessions: Any, cipher: connections.TokenCipher, fake: FakeXero) -> Callable[..., dict[str, Any]]:
    """Store a connection for TENANT with fresh tokens (or `expires_in` seconds left)."""

    def make(expires_in: int = 1800, tenant_id: str = TENANT) -> dict[str, Any]:
        issued = fake.issue()
        with sessions() as s:
            connections.upsert(
                s,
                cipher,
                tenant_id=tenant_id,
                ledger="xero",
                organisation_id=ORG,
                organisation_name="Demo Ltd",
                access_token=issued["access_token"],
                refresh_token=issued["refresh_token"],
                access_expires_at=utcnow() + timedelta(seconds=expires_in),
            )
            s.commit()
        return issued

    return make


@pytest.fixture
def client(settings: XeroSettings, transport: httpx.MockTransport) -> XeroClient:
    return XeroClient(settings, transport=transport)


@pytest.fixture
def connector(client: XeroClient, tokens: TokenManager, sessions: Any) -> XeroConnector:
    return XeroConnector(client, tokens, sessions)


# ---------------------------------------------------------------- command factories

from datetime import date  # noqa: E402

from schemas.commands import (  # noqa: E402
    ContactDetails,
    CreateCreditNote,
    CreateInvoice,
    CreatePayment,
    CreateSalesReceipt,
    Document,
    DocumentLine,
    UpsertContact,
    idempotency_key,
)


def document(
    ref: str,
    *,
    email: str | None = "ann@example.com",
    name: str = "Ann Smith",
    number: str | None = None,
    discount: str = "0",
    sku: str | None = "MUG-1",
    exchange_rate: str | None = None,
) -> Document:
    line = DocumentLine(
        line_ref="l1",
        item_code=sku,
        description="Blue mug",
        quantity=Decimal("2"),
        unit_amount=Decimal("10.005"),
        discount_amount=Decimal(discount),
        account_code="200",
        tax_code="OUTPUT2",
        line_amount=Decimal("20.01") - Decimal(discount),
        tax_amount=Decimal("4.00"),
    )
    ship = DocumentLine(
        line_ref="shipping:1",
        description="Shipping",
        quantity=Decimal("1"),
        unit_amount=Decimal("4.99"),
        account_code="200",
        tax_code="OUTPUT2",
        line_amount=Decimal("4.99"),
        tax_amount=Decimal("1.00"),
    )
    subtotal = line.line_amount + ship.line_amount
    return Document(
        date=date(2026, 3, 1),
        currency="GBP",
        line_amount_type="exclusive",
        exchange_rate=Decimal(exchange_rate) if exchange_rate else None,
        contact=ContactDetails(
            name=name,
            email=email,
            phone="+44 20 1234",
            address_line1="1 High St",
            city="London",
            postcode="N1 1AA",
            country="GB",
            vat_id="GB123",
        ),
        reference=ref,
        number=number,
        lines=(line, ship),
        subtotal=subtotal,
        total_tax=Decimal("5.00"),
        total=subtotal + Decimal("5.00"),
    )


def _base(kind: str, source_id: str, revision: int = 0) -> dict[str, Any]:
    return {
        "idempotency_key": idempotency_key(TENANT, "xero", kind, source_id, revision),
        "tenant_id": TENANT,
        "ledger": "xero",
        "source_id": source_id,
        "event_id": f"ev-{source_id}",
        "revision": revision,
    }


def invoice_cmd(n: int, **doc: Any) -> CreateInvoice:
    return CreateInvoice(
        **_base("invoice.create", f"order:{n}"),
        source_type="order",
        status="authorised",
        due_date=date(2026, 3, 31),
        document=document(f"#{n}", **doc),
    )


def receipt_cmd(n: int) -> CreateSalesReceipt:
    return CreateSalesReceipt(
        **_base("sales_receipt.create", f"order:{n}"),
        source_type="order",
        document=document(f"#{n}"),
        deposit_account="090",
    )


def credit_note_cmd(n: int, invoice: int, allocate: str = "10.00") -> CreateCreditNote:
    return CreateCreditNote(
        **_base("credit_note.create", f"refund:{n}"),
        source_type="refund",
        status="authorised",
        document=document(f"R{n}", discount="1.00"),
        invoice_source_id=f"order:{invoice}",
        allocate=Decimal(allocate),
    )


def payment_cmd(
    n: int, invoice: int, amount: str = "30.00", fee: str | None = None, gateway: str | None = None
) -> CreatePayment:
    return CreatePayment(
        **_base("payment.create", f"payment:{n}"),
        source_type="payment",
        invoice_source_id=f"order:{invoice}",
        date=date(2026, 3, 2),
        currency="GBP",
        amount=Decimal(amount),
        account_code="090",
        reference=f"{gateway} p{n}" if gateway else f"P{n}",
        gateway=gateway,
        fee=Decimal(fee) if fee is not None else None,
        fee_account_code="404" if fee is not None else None,
    )


def contact_cmd(n: int) -> UpsertContact:
    return UpsertContact(
        **_base("contact.upsert", f"contact:{n}"),
        source_type="contact",
        contact=ContactDetails(name=f"Customer {n}", email=f"c{n}@example.com"),
    )


@pytest.fixture
def cmds() -> Any:
    class Factories:
        invoice = staticmethod(invoice_cmd)
        receipt = staticmethod(receipt_cmd)
        credit_note = staticmethod(credit_note_cmd)
        payment = staticmethod(payment_cmd)
        contact = staticmethod(contact_cmd)
        doc = staticmethod(document)

    return Factories
