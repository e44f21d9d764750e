"""`tenants apply --check-ledger` against the Xero sandbox: a wrong tax code is rejected by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from store import tenant_config
from streams.commands.tenants import tenants
from streams.devstack import REPO, Stack

GOOD = REPO / "examples" / "tenants" / "acme-uk.yaml"
BAD = REPO / "examples" / "tenants" / "acme-uk-bad-taxcode.yaml"


def _apply(stack: Stack, file: Path, *args: str) -> Result:
    return CliRunner().invoke(
        tenants,
        ["apply", str(file), "--no-publish", "--topic", stack.names.tenant_config, *args],
        env=stack.env(),
        catch_exceptions=False,
    )


@pytest.fixture
def connected(make_stack: Callable[[], Stack]) -> Stack:
    """Sandbox up; acme-uk configured (unchecked, version 1) and connected to "Demo UK Ltd"."""
    stack = make_stack()
    stack.start_sandbox()
    first = _apply(stack, GOOD, "--no-check-ledger", "-m", "before connecting")
    assert first.exit_code == 0, first.output
    stack.connect("acme-uk", "Demo UK Ltd")
    return stack


def test_wrong_tax_code_is_rejected_by_name_and_the_good_file_applies(connected: Stack) -> None:
    bad = _apply(connected, BAD, "--check-ledger")
    assert bad.exit_code == 1, bad.output
    assert bad.output.splitlines()[-2:] == [
        "Error: acme-uk-bad-taxcode.yaml: rejected:",
        "ledgers.xero.tax.rules[0].tax.code: tax rate 'OUTPUT3' is archived in xero",
    ]
    with connected.sessions() as session:  # nothing written
        assert [v.version for v in tenant_config.history(session, "acme-uk")] == [1]

    # The default (no flag) checks too, because the tenant has an active Xero connection.
    default = _apply(connected, BAD)
    assert default.exit_code == 1
    assert "'OUTPUT3' is archived in xero" in default.output

    good = _apply(connected, GOOD, "--check-ledger", "-m", "checked")
    assert good.exit_code == 0, good.output
    assert "acme-uk: tax codes and accounts checked against xero" in good.output
    assert "unchanged; version 1 stays in effect" in good.output

    changed = GOOD.read_text().replace("name: Acme Ltd", "name: Acme Limited")
    path = connected.workdir / "acme-renamed.yaml"
    path.write_text(changed)
    renamed = _apply(connected, path, "--check-ledger")
    assert renamed.exit_code == 0, renamed.output
    assert "applied acme-uk version 2" in renamed.output


def test_an_unknown_account_and_a_rate_that_differs_are_named(connected: Stack) -> None:
    text = GOOD.read_text().replace('revenue: "200"', 'revenue: "2999"')
    text = text.replace("tax: {code: OUTPUT2, rate: 20}", "tax: {code: OUTPUT2, rate: 17.5}", 1)
    path = connected.workdir / "acme-wrong.yaml"
    path.write_text(text)
    result = _apply(connected, path, "--check-ledger")
    assert result.exit_code == 1, result.output
    assert "ledgers.xero.tax.rules[0].tax.rate: 'OUTPUT2' is 20% in xero, not 17.5%" in result.output
    assert "ledgers.xero.accounts.revenue: account '2999' does not exist in xero" in result.output


def test_check_ledger_without_a_connection_is_an_error_but_the_default_skips(
    make_stack: Callable[[], Stack],
) -> None:
    stack = make_stack()
    forced = _apply(stack, BAD, "--check-ledger")
    assert forced.exit_code == 1
    assert "ledgers.xero: cannot check against xero: tenant 'acme-uk' has no connection" in forced.output

    default = _apply(stack, BAD)  # not connected yet: applies, and says it did not check
    assert default.exit_code == 0, default.output
    assert "acme-uk: not checked against xero (no connection)" in default.output
