"""Wiring the inbox into the worker: its web pages on Faust's server, publishing via the app."""

from __future__ import annotations

from functools import cache

from inbox.auth import Sessions
from inbox.service import Inbox
from inbox.settings import inbox_settings
from inbox.web import Context, mount
from streams.app import app, conf, names
from streams.database import sessions


async def publish(topic: str, key: bytes, value: bytes) -> None:
    """Send one record and wait until the broker has it."""
    sent = await app.send(topic, key=key, value=value, key_serializer="raw", value_serializer="raw")
    await sent


@cache
def inbox() -> Inbox:
    return Inbox(sessions(), publish, names)


s = inbox_settings()
mount(
    app.web.web_app,
    Context(
        make_inbox=inbox,
        sessions=Sessions(s.session_secret, s.session_max_age, s.cookie_secure),
        api_token=conf.api_token,
        applied_topic=names.tenant_config,
    ),
)
