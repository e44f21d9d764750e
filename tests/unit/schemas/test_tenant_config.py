"""Tenant configuration checks that keep a config which passes validation from crashing a worker."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.tenant import PostingPolicy


@pytest.mark.parametrize("zone", ["UTC", "Europe/Lisbon", "America/New_York", "Asia/Tokyo"])
def test_a_loadable_timezone_is_accepted(zone):
    assert PostingPolicy(timezone=zone).timezone == zone


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Europe/Lisbn", "", "../../etc/passwd", "GMT+25"])
def test_an_unknown_timezone_is_rejected(zone):
    with pytest.raises(ValidationError) as caught:
        PostingPolicy(timezone=zone)
    assert "timezone" in str(caught.value) and "unknown time zone" in str(caught.value)


@pytest.mark.parametrize(
    "template",
    ["Order {order_number}", "{channel}-{order_id}", "#{order_number:>8}", "plain text", "{{literal}}"],
)
@pytest.mark.parametrize("field", ["reference_template", "invoice_number_template"])
def test_templates_with_known_fields_are_accepted(field, template):
    assert getattr(PostingPolicy(**{field: template}), field) == template


@pytest.mark.parametrize(
    ("template", "needle"),
    [
        ("Order {number}", "unknown field {number}"),
        ("Order {}", "positional"),
        ("Order {0}", "unknown field {0}"),
        ("{order_number[3]}", "unknown field {order_number[3]}"),
        ("{order_id.upper}", "unknown field {order_id.upper}"),
        ("Order {order_number", "not a valid template"),
        ("{order_number:d}", "not a valid template"),
        ("{order_number:{width}}", "not a valid template"),
    ],
)
@pytest.mark.parametrize("field", ["reference_template", "invoice_number_template"])
def test_templates_with_unknown_fields_are_rejected_naming_them(field, template, needle):
    with pytest.raises(ValidationError) as caught:
        PostingPolicy(**{field: template})
    text = str(caught.value)
    assert field in text and needle in text
    if "unknown" in needle:
        assert "order_number, order_id, channel" in text
