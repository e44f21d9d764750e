"""Determinism across processes and versions: a fixed lifecycle's commands against a committed file.

placed → fulfilled (part) → fulfilled (rest) → refund of one unit → payment, in Xero and
QuickBooks: every command's JSON and idempotency key must equal `golden/lifecycle.json`.
Any change to document lines, rounding, source ids or idempotency keys fails here; a key
that changes for an already posted document would post it twice.

When a change is intended, regenerate and review the diff before committing it:

    LEDGERSTREAM_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/accounting/test_golden.py
    git diff tests/unit/accounting/golden/
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import captured, fulfilled, line, order, placed, refunded, run, uk_config

GOLDEN = Path(__file__).parent / "golden" / "lifecycle.json"
CONFIG = uk_config(("xero", "quickbooks"))
ORDER = order(
    line("a", "3", "19.99", sku="MUG-1"),
    line("b", "1", "5.00"),
    shipping="4.99",
    discounts=("3.00",),
    total="80.35",
)


def lifecycle() -> list[dict]:
    decisions = run(
        CONFIG,
        placed(ORDER, 1),
        fulfilled(ORDER, 2, lines={"a": "1"}),
        fulfilled(ORDER, 3, lines={"a": "2", "b": "1"}),
        refunded(4, lines={"a": "1"}),
        captured("50.00", n=5, fee="1.20"),
    )
    return [
        {
            "outcome": [d.outcome.kind, d.outcome.reason_code],
            "commands": [
                {"idempotency_key": c.idempotency_key, "json": json.loads(c.model_dump_json())}
                for c in d.commands
            ],
        }
        for d in decisions
    ]


def test_the_lifecycle_matches_the_golden_file():
    got = lifecycle()
    text = json.dumps(got, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("LEDGERSTREAM_UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), f"missing {GOLDEN}: regenerate it (see the module docstring)"
    assert text == GOLDEN.read_text(), "commands changed: if intended, regenerate (module docstring)"
    assert sum(len(step["commands"]) for step in got) == 10
