"""Contract: refund events published to ledger-service (PAY-12)."""

import json
from pathlib import Path

import jsonschema

SPEC = Path(__file__).parents[3] / "api" / "openapi.yaml"


def refund_event_schema():
    import yaml

    spec = yaml.safe_load(SPEC.read_text())
    return spec["components"]["schemas"]["RefundEvent"]


def test_refund_succeeded_event_matches_schema(publisher):
    event = publisher.build("refund.succeeded", refund_id="re_123")
    jsonschema.validate(json.loads(event.body), refund_event_schema())


def test_event_is_signed(publisher):
    event = publisher.build("refund.created", refund_id="re_124")
    assert event.headers["X-Acme-Signature"].startswith("v1=")
