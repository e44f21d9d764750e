"""`XeroConnector`: the `LedgerConnector` for Xero (binder + orchestration over client and mapper).

post(tenant_id, commands), for ≤ 50 commands of one tenant, in this order:
  1. load the bindings of every source id (and of referenced invoices); bound → already_bound;
  2. recover pending intents (see below) by searching Xero;
  3. resolve contacts for the whole batch (`_resolve_contacts`): in-memory cache per tenant →
     `GET /Contacts?where=EmailAddress=="a" OR …` (25 terms a call) → ONE `PUT /Contacts` of the
     missing ones; a refused element is looked up by name (taken name) or rejects its documents.
     About 3 calls per batch however many customers are new;
  4. invoices and sales receipts: ONE `PUT /Invoices?summarizeErrors=false` (Idempotency-Key =
     `mapper.batch_key`: the sorted member keys and a hash of the body, so a corrected replay of
     the same commands gets a new key); each OK element is bound (committed) at once;
  5. payments settling sales receipts (Xero has no sales receipt, see mapper);
  6. credit notes: one `PUT /CreditNotes`, then an allocation per credit note against the
     invoice bound to `invoice_source_id` (missing → NotFound("invoice not posted yet"));
     a successful allocation gets its own binding `<credit note source id>#allocation`. A
     rejected allocation does not undo the note: the result is Rejected("credit note … created
     but its allocation was rejected: …", pending_source_id=`<sid>#allocation`); a replay finds
     the note bound without that binding, reads the note (`GET /CreditNotes/{id}`: allocated
     already? then only bind) and retries only the allocation;
  7. payments: one `PUT /Payments` against bound invoices (missing → NotFound as above);
  8. gateway fees: every payment of the batch that is bound and carries a fee (`fee` and
     `fee_account_code`) whose own binding `<payment source id>#fee` is missing gets a SPEND
     bank transaction (`mapper.fee_transaction`), all in ONE `PUT /BankTransactions`; the gateway
     contact ("Stripe") is resolved like the customers (step 3, cached). A rejected fee does not
     undo the payment: that command's result is Rejected("payment … posted but its fee was
     rejected: …") with the payment's id, so it is dead-lettered for finance; a replay finds the
     payment bound and retries only the fee.
A failure of the second part of a command (fee, allocation, a sales receipt's settling payment
`<sid>#payment`) carries `pending_source_id`: the binding that proves the command finished.
A batch is posted with its duplicates collapsed (`XeroConnector.post`): a copy of a command (same
idempotency key) gets the first copy's result; a second command for the same source id (another
key) is posted after the first, so it is answered already_bound once the first has bound.
Per-element rejections become results; whole-call errors (429, 5xx, transport, auth) are raised.

Crash safety (a crash after Xero created a document and before its binding was written)
-------------------------------------------------------------------------------------
Xero has no external-id field, and the Idempotency-Key only replays within 6 minutes and only
for the identical batch. So before every create the connector writes a *pending intent* row
(`store.bindings.record_intent`: the binding row with `external_id` NULL) and commits. A
command whose row is pending when it is posted again may already exist in Xero: the connector
searches for it (`GET /Invoices|CreditNotes|Payments|BankTransactions?where=Reference=="…"`)
and binds the match instead of creating. A match is: same Reference, same type, same currency
and total (invoice number too when the command sets one; for payments: same invoice and amount;
for fees: SPEND from the same bank account, fee account on a line), not DELETED/VOIDED.
Commands never attempted cost no search; a failed element (ValidationErrors: not created) drops
its intent. This relies on enrichment giving each document a Reference that identifies its
source (the tenant's template includes the order number; a fee carries its payment's
Reference); the Idempotency-Key still covers an immediate replay of the same batch.

401 → the access token is refreshed once (unless another worker already did) and the call is
repeated once with the same Idempotency-Key. 403 → the connection is marked
`needs_reconnect` and AuthRevoked raised. A daily-limit 429 sets `day_parked_until`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from connectors.errors import (
    AuthRevoked,
    LedgerError,
    NotFound,
    RateLimited,
    Rejected,
    RetryableError,
    Transient,
)
from connectors.protocol import PostResult, Quota
from connectors.xero import mapper
from connectors.xero.client import Auth, XeroClient, where_any, where_chunks
from connectors.xero.tokens import TokenManager
from connectors.xero.translate import element_messages
from schemas.commands import (
    ContactDetails,
    CreateCreditNote,
    CreateInvoice,
    CreatePayment,
    CreateSalesReceipt,
    PostingCommand,
    UpsertContact,
)
from schemas.ledger import LedgerAccount, LedgerTaxRate
from store import bindings, connections
from store.base import utcnow

log = logging.getLogger(__name__)
LEDGER = "xero"
T = TypeVar("T")
SEARCH_CHUNK = 10  # references per `where` clause (keeps URLs short)
CONTACT_CHUNK = 25  # emails or names per `GET /Contacts?where=` (a batch of 50: two calls)
DEAD = {"DELETED", "VOIDED"}
FEE_KIND = "payment.fee"  # binding kind of a payment's fee bank transaction
ALLOCATION_KIND = "credit_note.allocation"  # binding kind of a credit note's allocation
ZERO_ID = "00000000-0000-0000-0000-000000000000"  # the id Xero echoes on elements it did not create
BODIES: dict[str, Callable[[list[dict[str, Any]]], dict[str, Any]]] = {
    "invoices": mapper.invoices_body,
    "credit_notes": mapper.credit_notes_body,
}


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _failed(element: dict[str, Any]) -> bool:
    return (
        bool(element.get("HasErrors"))
        or bool(element.get("HasValidationErrors"))  # how contacts and payments flag them
        or element.get("StatusAttributeString") == "ERROR"
    )


def _name_key(name: str) -> str:
    return name.strip().lower()


def _contact_keys(details: ContactDetails) -> list[str]:
    """In-memory cache keys of a contact: by email (checked first), then by name."""
    return ([f"email:{details.email.lower()}"] if details.email else []) + [f"name:{_name_key(details.name)}"]


class _Person:
    """The commands of one post() that need the same, not yet cached, Xero contact."""

    def __init__(self, details: ContactDetails) -> None:
        self.details = details  # the first command's details: what a create sends
        self.members: list[int] = []
        self.all_details: list[ContactDetails] = []
        self.keys: set[str] = set()
        self.contact_id: str | None = None
        self.error: LedgerError | None = None

    def add(self, i: int, details: ContactDetails) -> None:
        self.members.append(i)
        self.all_details.append(details)
        self.keys.update(_contact_keys(details))

    def merge(self, other: _Person) -> None:
        self.members += other.members
        self.all_details += other.all_details
        self.keys |= other.keys

    def emails(self) -> list[str]:
        """Distinct emails (case-insensitively), in the order the commands gave them."""
        seen: dict[str, str] = {}
        for d in self.all_details:
            if d.email and d.email.lower() not in seen:
                seen[d.email.lower()] = d.email
        return list(seen.values())


def _rejected(element: dict[str, Any], what: str) -> Rejected:
    messages = tuple(element_messages(element)) or (f"Xero rejected the {what}",)
    return Rejected(messages[0], messages=messages, status=200, body=element)


def allocation_source_id(command: CreateCreditNote) -> str:
    """The binding written once a credit note's allocation against its invoice is done."""
    return f"{command.source_id}#allocation"


def needs_allocation(command: PostingCommand) -> bool:
    return isinstance(command, CreateCreditNote) and command.status == "authorised" and command.allocate > 0


def _partial(error: LedgerError, what: str, pending_source_id: str) -> LedgerError:
    """The error of a command whose main document exists but whose second part failed: a
    Rejected saying so (permanent failures) or a copy of the error, naming the pending part."""
    if isinstance(error, RetryableError):
        out = copy.copy(error)
        out.pending_source_id = pending_source_id
        return out
    return Rejected(
        f"{what}: {error.message}",
        messages=getattr(error, "messages", (error.message,)),
        status=error.status,
        body=error.body,
        pending_source_id=pending_source_id,
    )


def collapse(commands: Sequence[PostingCommand]) -> tuple[list[list[int]], dict[int, int]]:
    """Positions of `commands` in rounds without a repeated source id, and each duplicate's first copy.

    A command whose idempotency key came earlier is a copy: not posted, it gets the first copy's
    result. A command for a source id already in a round (another key) goes to a later round.
    """
    rounds: list[list[int]] = []
    sources: list[set[str]] = []
    first: dict[str, int] = {}
    copies: dict[int, int] = {}
    for i, cmd in enumerate(commands):
        if cmd.idempotency_key in first:
            copies[i] = first[cmd.idempotency_key]
            continue
        first[cmd.idempotency_key] = i
        n = 0
        while n < len(rounds) and cmd.source_id in sources[n]:
            n += 1
        if n == len(rounds):
            rounds.append([])
            sources.append(set())
        rounds[n].append(i)
        sources[n].add(cmd.source_id)
    return rounds, copies


def _dec(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except ArithmeticError:
        return None


class _TenantCalls:
    """Auth for one post(): token from the TokenManager, one forced refresh on a 401."""

    def __init__(self, connector: XeroConnector, tenant_id: str) -> None:
        self.connector = connector
        self.tenant_id = tenant_id
        self.auth: Auth | None = None
        self.refreshed = False

    async def __call__(self, fn: Callable[..., Awaitable[T]], *args: Any, **kw: Any) -> T:
        tokens = self.connector.tokens
        if self.auth is None:
            token, org = await tokens.access_token(self.tenant_id)
            self.auth = Auth(token, org)
            self.connector._orgs[self.tenant_id] = org
        try:
            try:
                return await fn(self.auth, *args, **kw)
            except Transient as exc:
                if exc.status != 401 or self.refreshed:
                    raise
                self.refreshed = True
                token, org = await tokens.refresh(self.tenant_id, stale_token=self.auth.access_token)
                self.auth = Auth(token, org)
                return await fn(self.auth, *args, **kw)
        except AuthRevoked as exc:
            if exc.status == 403:
                await self.connector._mark(self.tenant_id, status="needs_reconnect", error=exc.message)
            raise
        except RateLimited as exc:
            if exc.scope == "day" and exc.retry_after:
                until = utcnow() + timedelta(seconds=exc.retry_after)
                await self.connector._mark(self.tenant_id, parked_until=until)
            raise


class XeroConnector:
    ledger = LEDGER
    max_batch = 50

    def __init__(
        self,
        client: XeroClient,
        tokens: TokenManager,
        sessions: sessionmaker[Session],
        *,
        use_item_codes: bool = False,
        fee_tax_type: str = mapper.FEE_TAX_TYPE,
    ) -> None:
        self.client = client
        self.tokens = tokens
        self.sessions = sessions
        self.use_item_codes = use_item_codes
        self.fee_tax_type = fee_tax_type
        self._contacts: dict[str, dict[str, str]] = {}
        self._orgs: dict[str, str] = {}

    def __repr__(self) -> str:
        return "XeroConnector()"

    # ------------------------------------------------------------ protocol

    def quota(self, tenant_id: str) -> Quota:
        org = self._orgs.get(tenant_id)
        return self.client.quota(org) if org else Quota()

    async def tax_rates(self, tenant_id: str) -> list[LedgerTaxRate]:
        rows = await _TenantCalls(self, tenant_id)(self.client.tax_rates)
        out = []
        for row in rows:
            rate = _dec(row.get("EffectiveRate", row.get("DisplayTaxRate"))) or Decimal(0)
            out.append(
                LedgerTaxRate(
                    code=row["TaxType"],
                    name=row.get("Name") or row["TaxType"],
                    rate=rate.quantize(Decimal("0.0001")),
                    active=row.get("Status", "ACTIVE") == "ACTIVE",
                )
            )
        return out

    async def accounts(self, tenant_id: str) -> list[LedgerAccount]:
        rows = await _TenantCalls(self, tenant_id)(self.client.accounts)
        return [
            LedgerAccount(
                code=row["Code"],
                name=row.get("Name") or row["Code"],
                type=row.get("Type", ""),
                active=row.get("Status", "ACTIVE") == "ACTIVE",
                accepts_payments=bool(row.get("EnablePaymentsToAccount")) or row.get("Type") == "BANK",
            )
            for row in rows
            if row.get("Code")
        ]

    async def post(self, tenant_id: str, commands: Sequence[PostingCommand]) -> list[PostResult]:
        if not commands:
            return []
        if len(commands) > self.max_batch:
            raise ValueError(f"at most {self.max_batch} commands per post, got {len(commands)}")
        for cmd in commands:
            if cmd.tenant_id != tenant_id or cmd.ledger != LEDGER:
                raise ValueError(f"command {cmd.source_id} is not for xero tenant {tenant_id}")
        rounds, copies = collapse(commands)
        results: dict[int, PostResult] = {}
        for members in rounds:
            answer = await _Post(self, tenant_id, [commands[i] for i in members]).run()
            results.update(zip(members, answer, strict=True))
        for i, first in copies.items():
            results[i] = results[first]
        return [results[i] for i in range(len(commands))]

    # ------------------------------------------------------------ DB helpers (sync, in threads)

    async def _db(self, fn: Callable[[Session], T]) -> T:
        def work() -> T:
            with self.sessions() as session:
                result = fn(session)
                session.commit()
                return result

        return await asyncio.to_thread(work)

    async def _mark(
        self,
        tenant_id: str,
        *,
        status: connections.ConnectionStatus | None = None,
        error: str | None = None,
        parked_until: datetime | None = None,
        success: bool = False,
    ) -> None:
        def work(session: Session) -> None:
            row = connections.get(session, tenant_id, LEDGER)
            if row is None:
                return
            if status is not None:
                connections.mark(session, row, status, error)
            if parked_until is not None:
                row.day_parked_until = parked_until
            if success:
                row.last_success_at = utcnow()

        await self._db(work)


class _Post:
    """One post() call: its results, bindings and contacts."""

    def __init__(self, connector: XeroConnector, tenant_id: str, commands: list[PostingCommand]) -> None:
        self.c = connector
        self.client = connector.client
        self.tenant_id = tenant_id
        self.commands = commands
        self.call = _TenantCalls(connector, tenant_id)
        self.results: dict[int, PostResult] = {}
        self.bound: dict[str, str] = {}  # source id → external id
        self.pending: set[str] = set()  # source ids with an intent row (maybe created in Xero)
        self.contacts: dict[int, str] = {}
        self.payees: set[str] = set()  # name keys of gateway contacts (created without IsCustomer)

    # ------------------------------------------------------------ bindings

    async def _load_bindings(self, source_ids: set[str]) -> None:
        rows = await self.c._db(lambda s: bindings.get_many(s, self.tenant_id, LEDGER, source_ids))
        for sid, row in rows.items():
            if row.bound:
                self.bound[sid] = row.external_id  # type: ignore[assignment]
                self.pending.discard(sid)
            else:
                self.pending.add(sid)

    async def _intents(self, members: list[tuple[str, str, str]]) -> None:
        """(source_id, kind, idempotency_key) of creates about to be sent; committed before the call."""

        def work(session: Session) -> None:
            for sid, kind, key in members:
                bindings.record_intent(
                    session,
                    tenant_id=self.tenant_id,
                    ledger=LEDGER,
                    source_id=sid,
                    kind=kind,
                    idempotency_key=key,
                )

        await self.c._db(work)

    async def _bind(self, sid: str, external_id: str, kind: str, key: str) -> str:
        row = await self.c._db(
            lambda s: bindings.record(
                s,
                tenant_id=self.tenant_id,
                ledger=LEDGER,
                source_id=sid,
                external_id=external_id,
                kind=kind,
                idempotency_key=key,
            )
        )
        stored = row.external_id or external_id
        self.bound[sid] = stored
        self.pending.discard(sid)
        return stored

    async def _forget(self, sids: list[str]) -> None:
        if sids:
            await self.c._db(lambda s: bindings.forget_intents(s, self.tenant_id, LEDGER, sids))
            self.pending.difference_update(sids)

    def _result(self, i: int, **kw: Any) -> None:
        self.results[i] = PostResult(self.commands[i].idempotency_key, **kw)

    # ------------------------------------------------------------ run

    async def run(self) -> list[PostResult]:
        receipts_payments: dict[int, CreatePayment] = {
            i: mapper.receipt_payment(cmd)
            for i, cmd in enumerate(self.commands)
            if isinstance(cmd, CreateSalesReceipt)
        }
        fees: dict[int, CreatePayment] = {
            i: cmd
            for i, cmd in enumerate(self.commands)
            if isinstance(cmd, CreatePayment) and mapper.has_fee(cmd)
        }
        wanted = {cmd.source_id for cmd in self.commands}
        wanted |= {p.source_id for p in receipts_payments.values()}
        wanted |= {mapper.fee_source_id(p) for p in fees.values()}
        allocations = [i for i, cmd in enumerate(self.commands) if needs_allocation(cmd)]
        wanted |= {allocation_source_id(self.commands[i]) for i in allocations}  # type: ignore[arg-type]
        wanted |= {
            cmd.invoice_source_id
            for cmd in self.commands
            if isinstance(cmd, CreateCreditNote | CreatePayment)
        }
        await self._load_bindings(wanted)

        todo: list[int] = []
        for i, cmd in enumerate(self.commands):
            if cmd.source_id in self.bound:
                if i in receipts_payments and receipts_payments[i].source_id not in self.bound:
                    continue  # invoice exists, its settling payment still to do (step 5)
                if i in fees and mapper.fee_source_id(fees[i]) not in self.bound:
                    continue  # payment exists, its fee still to do (step 8)
                if i in allocations and allocation_source_id(cmd) not in self.bound:  # type: ignore[arg-type]
                    continue  # credit note exists, its allocation still to do (step 6)
                self._result(i, external_id=self.bound[cmd.source_id], already_bound=True)
            else:
                todo.append(i)

        await self._recover([i for i in todo if self.commands[i].source_id in self.pending])
        todo = [i for i in todo if i not in self.results and self.commands[i].source_id not in self.bound]
        in_batch = {c.source_id for c in self.commands if isinstance(c, CreateInvoice | CreateSalesReceipt)}
        for i in todo:  # credit notes for invoices neither bound nor in this batch: no contact lookups
            cmd = self.commands[i]
            if (
                isinstance(cmd, CreateCreditNote)
                and cmd.invoice_source_id not in self.bound.keys() | in_batch
            ):
                self._result(i, error=NotFound(f"invoice not posted yet: {cmd.invoice_source_id}"))
        todo = [i for i in todo if i not in self.results]

        await self._contacts([i for i in todo if not isinstance(self.commands[i], CreatePayment)])
        await self._invoices(
            [i for i in todo if isinstance(self.commands[i], CreateInvoice | CreateSalesReceipt)]
        )
        await self._receipt_payments(receipts_payments)
        await self._credit_notes([i for i in todo if isinstance(self.commands[i], CreateCreditNote)])
        await self._pending_allocations(allocations)
        payments = {i: self.commands[i] for i in todo if isinstance(self.commands[i], CreatePayment)}
        await self._payments(payments)  # type: ignore[arg-type]
        await self._fees(fees)

        if self.call.auth is not None:
            await self.c._mark(self.tenant_id, success=True)
        missing = [i for i in range(len(self.commands)) if i not in self.results]
        if missing:  # defensive: every branch above sets a result
            raise Transient(f"internal: no result for commands {missing}")
        return [self.results[i] for i in range(len(self.commands))]

    # ------------------------------------------------------------ recovery of pending intents

    async def _search(
        self, fetch: Callable[..., Awaitable[list[dict[str, Any]]]], refs: list[str]
    ) -> list[dict]:
        found: list[dict[str, Any]] = []
        unique = sorted(set(refs))
        for start in range(0, len(unique), SEARCH_CHUNK):
            found += await self.call(
                fetch, where=where_any("Reference", unique[start : start + SEARCH_CHUNK])
            )
        return found

    async def _recover(self, idx: list[int]) -> None:
        """Bind documents that a previous attempt created in Xero but never bound (payments: `_payments`)."""
        invoices = [i for i in idx if isinstance(self.commands[i], CreateInvoice | CreateSalesReceipt)]
        notes = [i for i in idx if isinstance(self.commands[i], CreateCreditNote)]
        if invoices:
            found = await self._search(
                self.client.get_invoices, [self.commands[i].document.reference for i in invoices]
            )
            for i in invoices:
                await self._match_document(i, found, "InvoiceID", "InvoiceNumber", "ACCREC")
        if notes:
            found = await self._search(
                self.client.get_credit_notes, [self.commands[i].document.reference for i in notes]
            )
            for i in notes:
                await self._match_document(i, found, "CreditNoteID", "CreditNoteNumber", "ACCRECCREDIT")

    async def _match_document(
        self, i: int, found: list[dict[str, Any]], id_key: str, number_key: str, typ: str
    ) -> None:
        cmd = self.commands[i]
        doc = cmd.document  # type: ignore[union-attr]
        for el in found:
            if (
                el.get("Type") == typ
                and el.get("Reference") == doc.reference
                and el.get("CurrencyCode") == doc.currency
                and _dec(el.get("Total")) == doc.total
                and el.get("Status") not in DEAD
                and (not doc.number or el.get(number_key) == doc.number)
            ):
                log.info("xero: recovered %s %s for %s", typ, el[id_key], cmd.source_id)
                if isinstance(cmd, CreateCreditNote):
                    await self._allocate_and_bind(i, el[id_key], el)
                else:
                    await self._bind(cmd.source_id, el[id_key], cmd.kind, cmd.idempotency_key)
                    if not isinstance(cmd, CreateSalesReceipt):
                        self._result(i, external_id=el[id_key], already_bound=True)
                return

    # ------------------------------------------------------------ contacts

    async def _contacts(self, idx: list[int]) -> None:
        """Resolve the contact of every command in `idx` (see `_resolve_contacts`); a contact Xero
        refuses makes each command that needs it Rejected; UpsertContact commands are bound."""
        wanted: dict[int, ContactDetails] = {}
        for i in idx:
            cmd = self.commands[i]
            wanted[i] = cmd.contact if isinstance(cmd, UpsertContact) else cmd.document.contact  # type: ignore[union-attr]
        resolved = await self._resolve_contacts(wanted)
        for i in idx:
            outcome = resolved[i]
            if isinstance(outcome, LedgerError):
                self._result(i, error=outcome)
                continue
            self.contacts[i] = outcome
            cmd = self.commands[i]
            if isinstance(cmd, UpsertContact):
                stored = await self._bind(cmd.source_id, outcome, cmd.kind, cmd.idempotency_key)
                self._result(i, external_id=stored)

    async def _resolve_contacts(self, wanted: dict[int, ContactDetails]) -> dict[int, str | LedgerError]:
        """ContactIDs for a batch, in a few calls however many customers are new:

        1. the tenant's in-memory cache (by email, then by name): no call;
        2. the others are grouped into people (same email or same name: one Xero contact, names
           being unique in Xero) and looked up together: `GET /Contacts?where=EmailAddress=="a"
           OR ...` (people without email: `Name=="..."`), ≤ 25 terms per call;
        3. those not found are created by ONE `PUT /Contacts?summarizeErrors=false`
           (Idempotency-Key from the members and the body);
        4. elements Xero refuses (typically: the name belongs to a contact with another or no
           email) are looked up by name in one more call and that contact is used; a refused
           element with no such contact is Rejected with Xero's message.
        """
        cache = self.c._contacts.setdefault(self.tenant_id, {})
        out: dict[int, str | LedgerError] = {}
        people: list[_Person] = []
        by_key: dict[str, _Person] = {}
        for i, details in wanted.items():
            keys = _contact_keys(details)
            hit = next((cache[k] for k in keys if k in cache), None)
            if hit is not None:
                out[i] = hit
                continue
            groups: list[_Person] = []
            for k in keys:
                if k in by_key and not any(g is by_key[k] for g in groups):
                    groups.append(by_key[k])
            person = groups[0] if groups else _Person(details)
            if not groups:
                people.append(person)
            for other in groups[1:]:  # this command links two people: they are one contact
                person.merge(other)
                people.remove(other)
            person.add(i, details)
            for k in person.keys:
                by_key[k] = person

        if people:
            terms: list[tuple[str, str]] = []
            for person in people:
                emails = person.emails()
                terms += [("EmailAddress", e) for e in emails] if emails else [("Name", person.details.name)]
            by_email, by_name = await self._find_contacts(terms)
            for person in people:
                emails = person.emails()
                match = (
                    next((by_email[e.lower()] for e in emails if e.lower() in by_email), None)
                    if emails
                    else by_name.get(_name_key(person.details.name))
                )
                if match is not None:
                    person.contact_id = match["ContactID"]
            await self._create_contacts([p for p in people if p.contact_id is None])

        for person in people:
            failure = person.error or Rejected("Xero did not create the contact")
            for i in person.members:
                out[i] = person.contact_id or failure
            if person.contact_id:
                for k in person.keys:
                    cache[k] = person.contact_id
        return out

    async def _find_contacts(
        self, terms: list[tuple[str, str]]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """Active contacts matching any term, indexed by lower-cased email and by name."""
        by_email: dict[str, dict[str, Any]] = {}
        by_name: dict[str, dict[str, Any]] = {}
        for where in where_chunks(terms, max_terms=CONTACT_CHUNK):
            for found in await self.call(self.client.find_contacts, where):
                if not found.get("ContactID"):
                    continue
                if found.get("EmailAddress"):
                    by_email.setdefault(str(found["EmailAddress"]).lower(), found)
                if found.get("Name"):
                    by_name.setdefault(_name_key(str(found["Name"])), found)
        return by_email, by_name

    async def _create_contacts(self, missing: list[_Person]) -> None:
        if not missing:
            return
        elements = [
            mapper.contact(p.details, customer=_name_key(p.details.name) not in self.payees) for p in missing
        ]
        members = [_sha(self.tenant_id, "contact", p.details.name, p.details.email or "") for p in missing]
        key = mapper.batch_key(members, "contacts", mapper.contacts_body(elements))
        try:
            created = await self.call(self.client.create_contacts, elements, key)
        except Rejected as exc:  # a whole-request 400: every new contact carries it
            for person in missing:
                person.error = exc
            return
        if len(created) != len(elements):
            raise Transient(f"Xero returned {len(created)} contacts for {len(elements)} sent")
        refused: list[tuple[_Person, dict[str, Any]]] = []
        for person, element in zip(missing, created, strict=True):
            if _failed(element) or not element.get("ContactID") or element["ContactID"] == ZERO_ID:
                refused.append((person, element))
            else:
                person.contact_id = element["ContactID"]
        if not refused:
            return
        _, by_name = await self._find_contacts([("Name", p.details.name) for p, _ in refused])
        for person, element in refused:
            match = by_name.get(_name_key(person.details.name))
            if match is not None:
                log.info("xero: contact name already taken by %s: using it", match["ContactID"])
                person.contact_id = match["ContactID"]
            else:
                person.error = _rejected(element, "contact")

    # ------------------------------------------------------------ invoices and receipts

    async def _invoices(self, idx: list[int]) -> None:
        idx = [i for i in idx if i not in self.results]
        if not idx:
            return
        elements = [
            mapper.invoice(self.commands[i], self.contacts[i], use_item_codes=self.c.use_item_codes)  # type: ignore[arg-type]
            for i in idx
        ]
        await self._create_batch(
            idx, elements, self.client.create_invoices, "invoices", "InvoiceID", "invoice", self._invoice_ok
        )

    async def _invoice_ok(self, i: int, element: dict[str, Any]) -> None:
        cmd = self.commands[i]
        stored = await self._bind(cmd.source_id, element["InvoiceID"], cmd.kind, cmd.idempotency_key)
        if not isinstance(cmd, CreateSalesReceipt):  # receipts finish after their payment
            self._result(i, external_id=stored)

    async def _create_batch(
        self,
        idx: list[int],
        elements: list[dict[str, Any]],
        create: Callable[..., Awaitable[list[dict[str, Any]]]],
        operation: str,
        id_key: str,
        what: str,
        on_ok: Callable[[int, dict[str, Any]], Awaitable[None]],
    ) -> None:
        cmds = [self.commands[i] for i in idx]
        await self._intents([(c.source_id, c.kind, c.idempotency_key) for c in cmds])
        key = mapper.batch_key([c.idempotency_key for c in cmds], operation, BODIES[operation](elements))
        try:
            created = await self.call(create, elements, key)
        except Rejected as exc:  # a whole-request 400: every member carries it; intents kept
            for i in idx:
                self._result(i, error=exc)
            return
        if len(created) != len(elements):
            raise Transient(f"Xero returned {len(created)} {operation} for {len(elements)} sent")
        failed: list[str] = []
        for i, element in zip(idx, created, strict=True):
            if _failed(element) or not element.get(id_key):
                self._result(i, error=_rejected(element, what))
                failed.append(self.commands[i].source_id)
            else:
                await on_ok(i, element)
        await self._forget(failed)

    async def _receipt_payments(self, receipts: dict[int, CreatePayment]) -> None:
        todo = {
            i: p
            for i, p in receipts.items()
            if i not in self.results and self.commands[i].source_id in self.bound
        }
        if not todo:
            return
        outcome = await self._payments(todo, record=False)
        for i, result in outcome.items():
            invoice_id = self.bound[self.commands[i].source_id]
            if result.error is not None:
                error = _partial(
                    result.error,
                    f"sales receipt {invoice_id} created but its settling payment failed",
                    receipts[i].source_id,
                )
                self._result(i, external_id=invoice_id, error=error)
            else:
                self._result(i, external_id=invoice_id, already_bound=result.already_bound)

    # ------------------------------------------------------------ credit notes

    async def _credit_notes(self, idx: list[int]) -> None:
        ready: list[int] = []
        for i in idx:
            if i in self.results:
                continue
            cmd = self.commands[i]
            assert isinstance(cmd, CreateCreditNote)
            if cmd.invoice_source_id not in self.bound:
                self._result(i, error=NotFound(f"invoice not posted yet: {cmd.invoice_source_id}"))
            else:
                ready.append(i)
        if not ready:
            return
        elements = [
            mapper.credit_note(self.commands[i], self.contacts[i], use_item_codes=self.c.use_item_codes)  # type: ignore[arg-type]
            for i in ready
        ]
        await self._create_batch(
            ready,
            elements,
            self.client.create_credit_notes,
            "credit_notes",
            "CreditNoteID",
            "credit note",
            lambda i, el: self._allocate_and_bind(i, el["CreditNoteID"], el),
        )

    async def _allocate_and_bind(
        self, i: int, credit_note_id: str, element: dict[str, Any], existed: bool = False
    ) -> None:
        """Allocate (authorised notes, allocate > 0, not yet allocated to that invoice), then bind
        the note and, once allocated, `<sid>#allocation`. `existed`: the note was bound before."""
        cmd = self.commands[i]
        assert isinstance(cmd, CreateCreditNote)
        invoice_id = self.bound.get(cmd.invoice_source_id)
        error: LedgerError | None = None
        allocated_now = False
        done = any(
            (a.get("Invoice") or {}).get("InvoiceID") == invoice_id for a in element.get("Allocations") or ()
        )
        if invoice_id and needs_allocation(cmd) and not done:
            body = mapper.allocation(cmd, invoice_id)
            key = mapper.batch_key([cmd.idempotency_key], "allocation", body)
            try:
                allocated = await self.call(self.client.allocate_credit_note, credit_note_id, body, key)
                if allocated and _failed(allocated[0]):
                    error = _rejected(allocated[0], "allocation")
                else:
                    allocated_now = True
            except (Rejected, NotFound) as exc:
                error = exc
            if error is not None:
                error = _partial(
                    error,
                    f"credit note {credit_note_id} created but its allocation was rejected",
                    allocation_source_id(cmd),
                )
        elif needs_allocation(cmd) and not invoice_id:
            error = NotFound(
                f"invoice not posted yet: {cmd.invoice_source_id}",
                pending_source_id=allocation_source_id(cmd),
            )
        stored = await self._bind(cmd.source_id, credit_note_id, cmd.kind, cmd.idempotency_key)
        if error is None and needs_allocation(cmd):
            key = _sha(cmd.idempotency_key, "allocation")
            await self._bind(allocation_source_id(cmd), credit_note_id, ALLOCATION_KIND, key)
        self._result(i, external_id=stored, error=error, already_bound=existed and not allocated_now)

    async def _pending_allocations(self, idx: list[int]) -> None:
        """Credit notes bound earlier whose allocation is not bound (it was rejected, or an older
        version did not record it): read the note, then allocate unless it already is."""
        for i in idx:
            cmd = self.commands[i]
            assert isinstance(cmd, CreateCreditNote)
            if i in self.results or cmd.source_id not in self.bound:
                continue
            if allocation_source_id(cmd) in self.bound:
                continue
            credit_note_id = self.bound[cmd.source_id]
            found = await self.call(self.client.get_credit_note, credit_note_id)
            await self._allocate_and_bind(i, credit_note_id, found or {}, existed=True)

    # ------------------------------------------------------------ payments

    async def _payments(
        self, payments: dict[int, CreatePayment], record: bool = True
    ) -> dict[int, PostResult]:
        """Pay bound invoices; results go to self.results (record=True) or are returned."""
        outcome: dict[int, PostResult] = {}

        def put(i: int, **kw: Any) -> None:
            outcome[i] = PostResult(self.commands[i].idempotency_key, **kw)

        todo: list[int] = []
        recover: list[int] = []
        for i, p in payments.items():
            if record and i in self.results:
                continue
            if p.source_id in self.bound:
                put(i, external_id=self.bound[p.source_id], already_bound=True)
            elif p.invoice_source_id not in self.bound:
                put(i, error=NotFound(f"invoice not posted yet: {p.invoice_source_id}"))
            else:
                todo.append(i)
                if p.source_id in self.pending:
                    recover.append(i)
        if recover:  # a settling payment from an earlier, interrupted attempt
            found = await self._search(self.client.get_payments, [payments[i].reference for i in recover])
            for i in recover:
                p = payments[i]
                for el in found:
                    if (
                        (el.get("Invoice") or {}).get("InvoiceID") == self.bound[p.invoice_source_id]
                        and _dec(el.get("Amount")) == p.amount
                        and el.get("Status") != "DELETED"
                    ):
                        stored = await self._bind(p.source_id, el["PaymentID"], p.kind, p.idempotency_key)
                        put(i, external_id=stored, already_bound=True)
                        todo.remove(i)
                        break
        if todo:
            await self._intents(
                [(payments[i].source_id, payments[i].kind, payments[i].idempotency_key) for i in todo]
            )
            elements = [mapper.payment(payments[i], self.bound[payments[i].invoice_source_id]) for i in todo]
            key = mapper.batch_key(
                [payments[i].idempotency_key for i in todo], "payments", mapper.payments_body(elements)
            )
            try:
                created = await self.call(self.client.create_payments, elements, key)
            except Rejected as exc:
                created = None
                for i in todo:
                    put(i, error=exc)
            if created is not None:
                if len(created) != len(elements):
                    raise Transient(f"Xero returned {len(created)} payments for {len(elements)} sent")
                failed = []
                for i, el in zip(todo, created, strict=True):
                    p = payments[i]
                    if _failed(el) or not el.get("PaymentID"):
                        put(i, error=_rejected(el, "payment"))
                        failed.append(p.source_id)
                    else:
                        stored = await self._bind(p.source_id, el["PaymentID"], p.kind, p.idempotency_key)
                        put(i, external_id=stored)
                await self._forget(failed)
        if record:
            self.results.update(outcome)
        return outcome

    # ------------------------------------------------------------ gateway fees

    async def _fees(self, fees: dict[int, CreatePayment]) -> None:
        """Post the fee of every bound payment in `fees` whose fee is not bound yet (step 8)."""
        ready: list[int] = []
        for i, p in fees.items():
            done = self.results.get(i)
            if (done is not None and done.error is not None) or p.source_id not in self.bound:
                continue  # the payment itself failed or waits: its fee waits with it
            if mapper.fee_source_id(p) in self.bound:
                if done is None:
                    self._result(i, external_id=self.bound[p.source_id], already_bound=True)
                continue
            ready.append(i)
        if not ready:
            return
        errors: dict[int, LedgerError] = {}
        created: set[int] = set()

        recover = [i for i in ready if mapper.fee_source_id(fees[i]) in self.pending]
        if recover:  # a fee from an earlier, interrupted attempt may exist in Xero
            found = await self._search(
                self.client.get_bank_transactions, [fees[i].reference for i in recover]
            )
            for i in recover:
                p = fees[i]
                match = next((el for el in found if self._fee_matches(p, el)), None)
                if match is not None:
                    fee_id = match["BankTransactionID"]
                    log.info("xero: recovered fee %s for %s", fee_id, p.source_id)
                    await self._bind(mapper.fee_source_id(p), fee_id, FEE_KIND, mapper.fee_key(p))
        todo = [i for i in ready if mapper.fee_source_id(fees[i]) not in self.bound]

        if todo:
            wanted = {i: mapper.gateway_contact(fees[i]) for i in todo}
            self.payees |= {_name_key(d.name) for d in wanted.values()}
            resolved = await self._resolve_contacts(wanted)
            for i in todo:
                if isinstance(resolved[i], LedgerError):
                    errors[i] = resolved[i]  # type: ignore[assignment]
            todo = [i for i in todo if i not in errors]
        if todo:
            sids = {i: mapper.fee_source_id(fees[i]) for i in todo}
            keys = {i: mapper.fee_key(fees[i]) for i in todo}
            await self._intents([(sids[i], FEE_KIND, keys[i]) for i in todo])
            elements = [
                mapper.fee_transaction(fees[i], resolved[i], tax_type=self.c.fee_tax_type)  # type: ignore[arg-type]
                for i in todo
            ]
            key = mapper.batch_key(
                [keys[i] for i in todo], "bank_transactions", mapper.bank_transactions_body(elements)
            )
            try:
                answer: list[dict[str, Any]] | None = await self.call(
                    self.client.create_bank_transactions, elements, key
                )
            except Rejected as exc:  # a whole-request 400: every fee carries it; intents kept
                answer = None
                for i in todo:
                    errors[i] = exc
            if answer is not None:
                if len(answer) != len(elements):
                    raise Transient(f"Xero returned {len(answer)} bank transactions for {len(elements)} sent")
                failed: list[str] = []
                for i, el in zip(todo, answer, strict=True):
                    if _failed(el) or not el.get("BankTransactionID") or el["BankTransactionID"] == ZERO_ID:
                        errors[i] = _rejected(el, "fee")
                        failed.append(sids[i])
                    else:
                        await self._bind(sids[i], el["BankTransactionID"], FEE_KIND, keys[i])
                        created.add(i)
                await self._forget(failed)

        for i in ready:
            p = fees[i]
            payment_id = self.bound[p.source_id]
            earlier = self.results.get(i)
            error = errors.get(i)
            if error is not None:
                wrapped = _partial(
                    error, f"payment {payment_id} posted but its fee was rejected", mapper.fee_source_id(p)
                )
                self._result(i, external_id=payment_id, error=wrapped)
            else:
                payment_existed = earlier.already_bound if earlier is not None else True
                self._result(i, external_id=payment_id, already_bound=payment_existed and i not in created)

    @staticmethod
    def _fee_matches(p: CreatePayment, el: dict[str, Any]) -> bool:
        return (
            el.get("Type") == "SPEND"
            and el.get("Reference") == p.reference
            and (el.get("BankAccount") or {}).get("Code") == p.account_code
            and el.get("CurrencyCode", p.currency) == p.currency
            and _dec(el.get("Total")) == p.fee
            and any(li.get("AccountCode") == p.fee_account_code for li in el.get("LineItems") or ())
            and el.get("Status") not in DEAD
        )
