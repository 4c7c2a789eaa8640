"""Journal entries: balanced debit and credit lines, amounts in minor units (PAY-5)."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    account: str
    debit_minor: int = 0
    credit_minor: int = 0


def post(entry_id: str, lines: list[Line]) -> None:
    debits = sum(line.debit_minor for line in lines)
    credits = sum(line.credit_minor for line in lines)
    if debits != credits:
        raise ValueError(f"entry {entry_id} is unbalanced: {debits} != {credits}")
