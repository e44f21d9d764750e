"""`tenants apply/show/list/history` with click's CliRunner on SQLite (no Kafka: --no-publish)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from store.tenant_config import load_yaml
from streams.commands.tenants import tenants

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "tenants"
ACME = str(EXAMPLES / "acme-uk.yaml")


@pytest.fixture
def run(sqlite_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(tenants, [*args, "--database-url", sqlite_url], catch_exceptions=False)

    return invoke


def test_apply_then_show_list_history(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result = run("apply", ACME, "--no-publish", "--by", "alice", "-m", "first setup")
    assert result.exit_code == 0, result.output
    assert "acme-uk: new tenant:" in result.output
    assert "  + ledgers.xero.accounts.shipping: 425" in result.output
    assert "applied acme-uk version 1 (by alice)" in result.output

    again = run("apply", ACME, "--no-publish")
    assert again.exit_code == 0
    assert "acme-uk: unchanged; version 1 stays in effect" in again.output

    changed = tmp_path / "acme.yaml"
    changed.write_text(Path(ACME).read_text().replace('shipping: "425"', 'shipping: "430"'))
    dry = run("apply", str(changed), "--dry-run")
    assert dry.exit_code == 0
    assert "  ledgers.xero.accounts.shipping: 425 → 430" in dry.output
    assert "dry run: would write acme-uk version 2; nothing written" in dry.output

    second = run("apply", str(changed), "--no-publish", "--by", "bob")
    assert "acme-uk: changes from version 1:\n  ledgers.xero.accounts.shipping: 425 → 430\n" in second.output
    assert "applied acme-uk version 2 (by bob)" in second.output

    shown = run("show", "acme-uk")
    assert shown.exit_code == 0
    config = load_yaml(shown.output)
    assert (config.version, config.ledgers["xero"].accounts.shipping) == (2, "430")
    assert config == load_yaml(Path(changed).read_text()).model_copy(update={"version": 2})

    old = run("show", "acme-uk", "--version", "1", "--format", "json")
    data = json.loads(old.output)
    assert (data["version"], data["ledgers"]["xero"]["accounts"]["shipping"]) == (1, "425")

    listed = run("list")
    assert listed.output.splitlines()[0].split() == [
        "TENANT",
        "VERSION",
        "NAME",
        "LEDGERS",
        "APPLIED",
        "(UTC)",
        "BY",
    ]
    assert listed.output.splitlines()[1].split()[:5] == ["acme-uk", "2", "Acme", "Ltd", "xero"]

    history = run("history", "acme-uk")
    lines = history.output.splitlines()
    assert lines[1].split()[0] == "1" and lines[1].endswith("first setup") and "alice" in lines[1]
    assert lines[2].split()[0] == "2" and "bob" in lines[2]


def test_invalid_file_exits_1_with_field_and_line_on_stderr(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "tenant.yaml"
    bad.write_text(
        Path(ACME)
        .read_text()
        .replace("      fallback: {code: OUTPUT2, rate: 20}", "      fallback: {rate: 20}")
    )
    result = run("apply", str(bad), "--no-publish")
    assert result.exit_code == 1
    assert "tenant.yaml:30: ledgers.xero.tax.fallback.code: Field required" in result.stderr
    assert result.stdout == ""


def test_unknown_tenant_exits_1(run) -> None:  # type: ignore[no-untyped-def]
    assert run("show", "nobody").exit_code == 1
    assert "no configuration for tenant 'nobody'" in run("history", "nobody").stderr
    assert run("list").output == "no tenants\n"


def test_unreachable_kafka_warns_keeps_outbox_and_exits_0(run) -> None:  # type: ignore[no-untyped-def]
    # port 9 (discard) on loopback: nothing listens, the connection is refused at once
    result = run("apply", ACME, "--bootstrap-servers", "127.0.0.1:9", "--kafka-timeout", "3")
    assert result.exit_code == 0, result.output
    assert "applied acme-uk version 1" in result.stdout
    assert "1 message(s) stay in the outbox and the worker will publish them" in result.stderr


def test_default_database_is_a_sqlite_file_under_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(tenants, ["apply", ACME, "--no-publish"], catch_exceptions=False)
    assert result.exit_code == 0
    assert (tmp_path / "var" / "ledgerstream.db").is_file()
