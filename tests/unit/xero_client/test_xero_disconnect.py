"""Disconnect removes only the tenant's own Xero connection; connecting a tenant to another
organisation than the one its documents are bound in is refused."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from connectors.xero.oauth import OrganisationChanged, TokenSet, XeroOAuth, XeroOrganisation
from store import bindings, connections
from store.base import utcnow

ORG = "11111111-1111-1111-1111-111111111111"
OTHER_ORG = "22222222-2222-2222-2222-222222222222"
TENANT = "shop-1"


def org(organisation_id: str = ORG, connection_id: str = "c-1") -> XeroOrganisation:
    return XeroOrganisation(connection_id, organisation_id, "Demo Ltd", "ORGANISATION")


def token_set(fake: Any, expires_in: int = 1800) -> TokenSet:
    issued = fake.issue()
    return TokenSet(issued["access_token"], issued["refresh_token"], utcnow() + timedelta(seconds=expires_in))


def store(oauth: XeroOAuth, sessions: Any, fake: Any, organisation: XeroOrganisation, **kw: Any) -> None:
    with sessions.begin() as s:
        oauth.store_connection(s, TENANT, organisation, token_set(fake, **kw))


def bind_one(sessions: Any) -> None:
    with sessions.begin() as s:
        bindings.record(
            s,
            tenant_id=TENANT,
            ledger="xero",
            source_id="order:1",
            external_id="INV-1",
            kind="invoice.create",
            idempotency_key="k1",
        )


async def test_disconnect_deletes_only_this_connection_and_revokes_nothing(
    oauth: XeroOAuth, fake: Any, sessions: Any
) -> None:
    store(oauth, sessions, fake, org())
    with sessions() as s:
        assert connections.get(s, TENANT, "xero").connection_id == "c-1"  # type: ignore[union-attr]

    assert await oauth.disconnect(TENANT) is True

    assert fake.revoked == []
    assert [c["tenantId"] for c in fake.connections] == [OTHER_ORG]  # the user's other org stays
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert [r.url.path for r in deletes] == ["/connections/c-1"]
    with sessions() as s:
        assert connections.get(s, TENANT, "xero") is None


async def test_disconnect_refreshes_an_expired_token_first(
    oauth: XeroOAuth, fake: Any, sessions: Any
) -> None:
    store(oauth, sessions, fake, org(), expires_in=10)
    assert await oauth.disconnect(TENANT) is True
    assert fake.token_calls == 1
    assert [c["id"] for c in fake.connections] == ["c-2"]


async def test_a_row_without_connection_id_finds_it_by_organisation(
    oauth: XeroOAuth, fake: Any, sessions: Any
) -> None:
    store(oauth, sessions, fake, org(OTHER_ORG, connection_id="c-2"))
    with sessions.begin() as s:
        connections.get(s, TENANT, "xero").connection_id = None  # type: ignore[union-attr]
    assert await oauth.disconnect(TENANT) is True
    assert [c["id"] for c in fake.connections] == ["c-1"]


async def test_a_connection_already_gone_at_xero_is_still_deleted_here(
    oauth: XeroOAuth, fake: Any, sessions: Any
) -> None:
    store(oauth, sessions, fake, org(connection_id="c-gone"))
    assert await oauth.disconnect(TENANT) is True
    with sessions() as s:
        assert connections.get(s, TENANT, "xero") is None


async def test_connecting_another_organisation_while_documents_are_bound_is_refused(
    oauth: XeroOAuth, fake: Any, sessions: Any
) -> None:
    store(oauth, sessions, fake, org())
    bind_one(sessions)

    with pytest.raises(OrganisationChanged) as info:
        store(oauth, sessions, fake, org(OTHER_ORG, "c-2"))
    assert str(info.value) == (
        f"tenant {TENANT} has documents bound in organisation {ORG}; disconnect and clear bindings "
        f"before connecting organisation {OTHER_ORG}"
    )
    with sessions() as s:
        assert connections.get(s, TENANT, "xero").organisation_id == ORG  # type: ignore[union-attr]

    store(oauth, sessions, fake, org())  # reconnecting the same organisation is fine

    await oauth.disconnect(TENANT)  # the row goes, the bindings (and their organisation) stay
    with pytest.raises(OrganisationChanged):
        store(oauth, sessions, fake, org(OTHER_ORG, "c-2"))

    with sessions.begin() as s:  # finance clears the tenant's bindings: now it may move
        assert bindings.clear(s, TENANT, "xero") == 1
    store(oauth, sessions, fake, org(OTHER_ORG, "c-2"))


async def test_another_organisation_is_accepted_once_no_documents_are_bound(
    oauth: XeroOAuth, fake: Any, sessions: Any
) -> None:
    store(oauth, sessions, fake, org())
    store(oauth, sessions, fake, org(OTHER_ORG, "c-2"))  # nothing bound yet: fine
    with sessions() as s:
        assert connections.get(s, TENANT, "xero").organisation_id == OTHER_ORG  # type: ignore[union-attr]
        assert bindings.organisation(s, TENANT, "xero") == OTHER_ORG
        assert not bindings.has_documents(s, TENANT, "xero")
