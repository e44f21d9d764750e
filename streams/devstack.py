"""Local processes for the demo and integration tests: the Xero sandbox and a worker.

Everything binds to 127.0.0.1. Each helper returns a handle whose `stop()` ends what it started.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from cryptography.fernet import Fernet
from sqlalchemy.orm import Session, sessionmaker

from connectors.xero.oauth import XeroOAuth
from connectors.xero.sandbox.config import SandboxConfig
from connectors.xero.settings import SANDBOX_CLIENT_ID, XeroSettings
from schemas.tenant import TenantConfig
from store import tenant_config
from store.connections import TokenCipher
from store.db import open_database
from streams.topics import TopicNames

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_or_free(port: int) -> int:
    """`port` when nothing listens on it, else any free port."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return free_port()
    return port


@dataclass
class Process:
    """A child process with its log file; `stop()` sends SIGINT, then SIGKILL after a grace period."""

    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, grace: float = 15.0) -> None:
        if self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGINT)
        try:
            self.popen.wait(grace)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)

    def kill(self) -> None:
        """Hard stop (no shutdown handlers): a crash."""
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)

    def tail(self, lines: int = 40) -> str:
        return (
            "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""
        )


def _spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> Process:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = log.open("ab")
    popen = subprocess.Popen(
        args, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, **(env or {})}
    )
    return Process(popen, log)


def start_sandbox(port: int, log: Path) -> Process:
    """The Xero sandbox on 127.0.0.1:port, ready when its admin state answers."""
    proc = _spawn(
        [sys.executable, "-m", "connectors.xero.sandbox", "--host", "127.0.0.1", "--port", str(port)], log
    )
    wait_http(f"http://127.0.0.1:{port}/__sandbox/state?log=false", proc)
    return proc


def start_worker(env: dict[str, str], log: Path, timeout: float = 90.0) -> Process:
    """`ledgerstream worker` with `env`; ready when Faust says "Worker ready"."""
    exe = Path(sys.executable).with_name("ledgerstream")
    proc = _spawn([str(exe), "worker", "-l", "info"], log, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.popen.returncode}:\n{proc.tail()}")
        if log.exists() and "Worker ready" in log.read_text(errors="replace"):
            return proc
        time.sleep(0.3)
    proc.stop()
    raise TimeoutError(f"worker not ready after {timeout}s:\n{proc.tail()}")


def wait_http(url: str, proc: Process | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise RuntimeError(f"process exited with {proc.popen.returncode}:\n{proc.tail()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def wait_for_config(web_port: int, tenant_id: str, version: int, timeout: float = 30.0) -> None:
    """Until the worker's metrics show it has loaded `version` of the tenant's config."""
    wanted = f'ledgerstream_tenant_config_version{{tenant="{tenant_id}"}} {float(version)}'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if wanted in httpx.get(f"http://127.0.0.1:{web_port}/metrics", timeout=2).text:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"worker did not load config version {version} of {tenant_id} within {timeout}s")


async def connect_xero(
    settings: XeroSettings,
    sessions: sessionmaker[Session],
    cipher: TokenCipher,
    tenant_id: str,
    organisation: str | None = None,
) -> str:
    """Run the authorization-code flow against a sandbox (its authorize step auto-approves).

    Picks the organisation named `organisation` (or the first one) and stores the connection.
    Returns the Xero organisation id.
    """
    oauth = XeroOAuth(settings, sessions, cipher)
    url, state, verifier = oauth.start(tenant_id)
    async with httpx.AsyncClient() as http:
        answer = await http.get(url, follow_redirects=False)
    if answer.status_code != 302:
        raise RuntimeError(f"authorize answered {answer.status_code}: {answer.text}")
    query = parse_qs(urlparse(answer.headers["location"]).query)
    if query.get("state") != [state]:
        raise RuntimeError("authorize returned a different state")
    tokens = await oauth.finish(query["code"][0], verifier)
    orgs = await oauth.list_connections(tokens.access_token)
    chosen = next((o for o in orgs if organisation in (None, o.name)), None)
    if chosen is None:
        raise RuntimeError(f"no organisation named {organisation!r} in {[o.name for o in orgs]}")
    with sessions.begin() as session:
        oauth.store_connection(session, tenant_id, chosen, tokens)
    return chosen.organisation_id


class Stack:
    """A whole local pipeline: sandbox, database, config, Xero connection and a worker.

    Used by `make demo` and by the integration tests; every topic, consumer group and the
    Faust app id carry a fresh `run` prefix so runs never see each other's data.
    """

    def __init__(self, bootstrap: str, database_url: str, workdir: Path, run: str, web_port: int = 0) -> None:
        self.bootstrap = bootstrap
        self.database_url = database_url
        self.workdir = workdir
        self.run = run
        self.names = TopicNames(f"{run}.")
        self.sandbox_port = free_port()
        self.web_port = web_port or free_port()
        self.key = Fernet.generate_key().decode()
        self.sandbox: Process | None = None
        self.worker: Process | None = None
        self.sessions = open_database(database_url)
        self._workers = 0
        self.extra_env: dict[str, str] = {}  # added to env(); see start_sandbox_with / api_token

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    def env(self) -> dict[str, str]:
        xero = XeroSettings.for_sandbox(
            self.sandbox_url, redirect_uri="http://127.0.0.1:6066/connect/xero/callback"
        )
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "DATABASE_URL": self.database_url,
            "LEDGERSTREAM_APP_ID": self.run,
            "LEDGERSTREAM_TOPIC_PREFIX": f"{self.run}.",
            "LEDGERSTREAM_DATA_DIR": str(self.workdir / "faust"),
            "LEDGERSTREAM_WEB_PORT": str(self.web_port),
            "LEDGERSTREAM_SECRET_KEYS": self.key,
            "LEDGERSTREAM_REDRIVE_INTERVAL": "1.0",
            "XERO_CLIENT_ID": xero.client_id,
            "XERO_CLIENT_SECRET": xero.client_secret.get_secret_value(),
            "XERO_REDIRECT_URI": xero.redirect_uri,
            "XERO_LOGIN_URL": xero.login_url,
            "XERO_TOKEN_URL": xero.token_url,
            "XERO_REVOKE_URL": xero.revoke_url,
            "XERO_CONNECTIONS_URL": xero.connections_url,
            "XERO_API_URL": xero.api_url,
        } | self.extra_env

    def xero_settings(self) -> XeroSettings:
        env = self.env()
        return XeroSettings(
            client_id=env["XERO_CLIENT_ID"],
            client_secret=env["XERO_CLIENT_SECRET"],
            redirect_uri=env["XERO_REDIRECT_URI"],
            login_url=env["XERO_LOGIN_URL"],
            token_url=env["XERO_TOKEN_URL"],
            revoke_url=env["XERO_REVOKE_URL"],
            connections_url=env["XERO_CONNECTIONS_URL"],
            api_url=env["XERO_API_URL"],
        )

    def start_sandbox(self) -> None:
        self.sandbox = start_sandbox(self.sandbox_port, self.workdir / "sandbox.log")

    @property
    def worker_callback(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/connect/xero/callback"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def start_sandbox_with(self, config: SandboxConfig | None = None) -> None:
        """The sandbox seeded with `config` (default: the demo seed), its dev client also accepting
        this stack's worker callback, which becomes the worker's `XERO_REDIRECT_URI`."""
        from connectors.xero.sandbox.config import default_config

        config = (config or default_config()).model_copy(deep=True)
        for client in config.clients:
            if client.client_id == SANDBOX_CLIENT_ID and self.worker_callback not in client.redirect_uris:
                client.redirect_uris.append(self.worker_callback)
        path = self.workdir / "sandbox-config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(config.model_dump_json())
        self.extra_env["XERO_REDIRECT_URI"] = self.worker_callback
        log = self.workdir / "sandbox.log"
        self.sandbox = _spawn(
            [
                sys.executable,
                "-m",
                "connectors.xero.sandbox",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.sandbox_port),
                "--config",
                str(path),
            ],
            log,
        )
        wait_http(f"{self.sandbox_url}/__sandbox/state?log=false", self.sandbox)

    def set_api_token(self, token: str) -> None:
        """The worker's `LEDGERSTREAM_API_TOKEN` (set before start_worker)."""
        self.extra_env["LEDGERSTREAM_API_TOKEN"] = token

    def sandbox_requests(self) -> list[dict]:
        """The sandbox's API request log (method, path, query, tenant_id, body, headers, status)."""
        return httpx.get(f"{self.sandbox_url}/__sandbox/state", timeout=30).json()["requests"]

    def advance_sandbox_clock(self, seconds: float) -> None:
        httpx.post(
            f"{self.sandbox_url}/__sandbox/clock", json={"advance_seconds": seconds}, timeout=10
        ).raise_for_status()

    def parked(self, tenant_id: str | None = None) -> list[dict]:
        """Parked commands (tenant, kind, waiting_for, reason), oldest first."""
        from store.parked import ParkedCommand

        with self.sessions() as session:
            rows = session.query(ParkedCommand).order_by(ParkedCommand.parked_at).all()
            return [
                {
                    "tenant_id": r.tenant_id,
                    "kind": r.kind,
                    "waiting_for": r.waiting_for,
                    "reason": r.reason,
                    "idempotency_key": r.idempotency_key,
                }
                for r in rows
                if tenant_id is None or r.tenant_id == tenant_id
            ]

    def connection(self, tenant_id: str, ledger: str = "xero") -> dict | None:
        """The stored connection's public fields (no tokens), or None."""
        from store import connections

        with self.sessions() as session:
            row = connections.get(session, tenant_id, ledger)
            if row is None:
                return None
            return {
                "organisation_id": row.organisation_id,
                "organisation_name": row.organisation_name,
                "status": row.status,
                "last_success_at": row.last_success_at,
                "last_error": row.last_error,
                "day_parked_until": row.day_parked_until,
            }

    def apply_config(self, config: TenantConfig) -> int:
        with self.sessions.begin() as session:
            result = tenant_config.apply(session, config, "devstack", topic=self.names.tenant_config)
        return result.version

    def connect(self, tenant_id: str, organisation: str | None = None) -> str:
        return asyncio.run(
            connect_xero(
                self.xero_settings(), self.sessions, TokenCipher([self.key]), tenant_id, organisation
            )
        )

    def start_worker(self) -> Process:
        self._workers += 1
        self.worker = start_worker(self.env(), self.workdir / f"worker-{self._workers}.log")
        return self.worker

    def sync_config(self, tenant_id: str, version: int) -> None:
        """Publish the outbox now and wait until the worker has loaded `version`."""
        from streams.commands.tenants import relay

        asyncio.run(relay(self.sessions, self.bootstrap, 10.0))
        wait_for_config(self.web_port, tenant_id, version)

    def publish(self, events: list[tuple[str, bytes]], topic: str | None = None) -> None:
        asyncio.run(_publish(self.bootstrap, topic or self.names.orders, events))

    def sandbox_state(self) -> dict:
        return httpx.get(f"{self.sandbox_url}/__sandbox/state?log=false", timeout=10).json()

    def org(self, name: str) -> dict:
        return next(o for o in self.sandbox_state()["orgs"].values() if o["name"] == name)

    def fault(self, spec: dict) -> None:
        httpx.post(f"{self.sandbox_url}/__sandbox/faults", json=spec, timeout=10).raise_for_status()

    def dead_letters(self, wait: float = 3.0) -> list[dict]:
        return asyncio.run(_read_all(self.bootstrap, self.names.dead_letter, wait))

    def read_topic(self, topic: str, wait: float = 3.0) -> list[tuple[bytes | None, bytes]]:
        return asyncio.run(_read_raw(self.bootstrap, topic, wait))

    def close(self) -> None:
        for proc in (self.worker, self.sandbox):
            if proc is not None:
                proc.stop()


def wait_until(predicate: Callable[[], object], timeout: float = 60.0, interval: float = 0.5) -> object:
    """Poll `predicate` until it returns something truthy; raise TimeoutError after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


async def _publish(bootstrap: str, topic: str, events: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in events:
            await producer.send_and_wait(topic, value=value, key=key.encode())
    finally:
        await producer.stop()


async def _read_raw(bootstrap: str, topic: str, wait: float) -> list[tuple[bytes | None, bytes]]:
    """Every record of `topic` from the beginning (stops after `wait` seconds of silence)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[tuple[bytes | None, bytes]] = []
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=int(wait * 1000))
            if not batches:
                return out
            out.extend((m.key, m.value) for msgs in batches.values() for m in msgs)
    finally:
        await consumer.stop()


async def _read_all(bootstrap: str, topic: str, wait: float) -> list[dict]:
    return [json.loads(value) for _, value in await _read_raw(bootstrap, topic, wait)]
