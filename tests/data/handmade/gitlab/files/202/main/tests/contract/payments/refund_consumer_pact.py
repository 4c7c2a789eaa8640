"""Provider-side verification of the payments-api refund event pact (PAY-12)."""

from pathlib import Path

from pact import Verifier

PACTS = Path(__file__).parent / "pacts"


def test_refund_events_pact(consumer_app_url):
    verifier = Verifier(provider="ledger-service", provider_base_url=consumer_app_url)
    code, _ = verifier.verify_pacts(str(PACTS / "ledger-payments-api.json"))
    assert code == 0
