"""What the three sources' payload validation shares.

Models validate only the parts of a payload the product reads (``extra="allow"`` keeps
the rest as received); a record that fails is quarantined with the one-line reason.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

from dagster_project.lib.sources.timeparse import parse_ts


class Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


def checked_timestamp(value: str | None) -> str | None:
    """Keep the text as received, refuse what :func:`parse_ts` cannot read."""
    if value is not None:
        parse_ts(value)
    return value


Timestamp = Annotated[str, AfterValidator(checked_timestamp)]


def validation_reason(exc: ValidationError) -> str:
    """``fields.updated: Field required``: where the first problem is, and what it is."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    return f"{where}: {first['msg']}"
