"""Refunds: full and partial refunds of a charge (PAY-7)."""

from payments_api.money import Amount
from payments_api.store import charges, refunds


class AlreadyRefunded(Exception):
    """The charge has no amount left to refund (HTTP 409)."""


def create_refund(charge_id: str, amount: Amount | None = None, reason: str | None = None):
    charge = charges.get(charge_id)
    remaining = charge.amount - refunds.total_for(charge_id)
    if remaining.value <= 0:
        raise AlreadyRefunded(charge_id)
    return refunds.insert(charge_id, amount or remaining, reason)


def refund_status(refund_id: str) -> dict:
    refund = refunds.get(refund_id)
    return {"refund_id": refund.id, "status": refund.status, "updated_at": refund.updated_at}
