"""Contract: payout batch files accepted by the bank gateway (PAY-14)."""

from pact import Consumer, Provider

pact = Consumer("payments-api").has_pact_with(Provider("bank-gateway"))


def test_submit_batch(batcher):
    (
        pact.given("merchant m_1 has an active IBAN")
        .upon_receiving("a payout batch")
        .with_request("POST", "/batches")
        .will_respond_with(202)
    )
    with pact:
        assert batcher.submit("m_1", currency="EUR").status_code == 202
