"""Local processes for the demo and integration tests: the Xero sandbox and a worker.

Everything binds to 127.0.0.1. Each helper returns a handle whose `stop()` ends what it started.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import httpx
from sqlalchemy.orm import Session, sessionmaker

from connectors.xero.oauth import XeroOAuth
from connectors.xero.settings import XeroSettings
from store.connections import TokenCipher

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
