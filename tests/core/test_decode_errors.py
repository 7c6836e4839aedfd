"""A payload that does not decode is reported by job type, field path and what was expected,
never with the value: payloads hold personal data, and the error reaches logs and the job's
``error`` column (with its traceback)."""

from __future__ import annotations

import enum
import json
import traceback

# Runtime imports: cattrs resolves the field annotations when it decodes a payload.
from datetime import date, datetime  # noqa: TC003
from decimal import Decimal
from typing import Any
from uuid import UUID  # noqa: TC003

import attrs
import pytest

from ferroq_core import Job, JobDecodeError
from ferroq_core.execution import describe_error
from ferroq_core.serialization import JsonSerializer

#: A card number: it must appear in no error text.
SECRET = "4111111111111111"


class Brand(enum.Enum):
    VISA = "visa"


@attrs.define
class Card:
    number: str
    brand: Brand = Brand.VISA


@attrs.define
class Payment(Job):
    job_name = "tests.core.payment"

    card: Card
    amount: Decimal = Decimal(0)
    when: datetime | None = None
    day: date | None = None
    ref: UUID | None = None
    count: int = 0
    ratio: float = 0.0
    flag: bool = False
    by_id: dict[int, str] = attrs.Factory(dict)
    notes: list[str] = attrs.Factory(list)


GOOD: dict[str, Any] = {"card": {"number": "x"}}


@pytest.mark.parametrize(
    ("payload", "path", "expected"),
    [
        ({"card": {"number": int(SECRET)}}, "$.card.number", "expected str, got int"),
        ({**GOOD, "count": SECRET}, "$.count", "expected int, got str"),
        ({**GOOD, "ratio": SECRET}, "$.ratio", "expected float, got str"),
        ({**GOOD, "flag": SECRET}, "$.flag", "expected bool, got str"),
        ({"card": {"number": "x", "brand": SECRET}}, "$.card.brand", "Brand"),
        ({**GOOD, "amount": SECRET + "x"}, "$.amount", "expected a decimal"),
        ({**GOOD, "when": SECRET}, "$.when", "expected an ISO 8601 datetime"),
        ({**GOOD, "day": SECRET}, "$.day", "expected an ISO 8601 date"),
        ({**GOOD, "ref": SECRET + "zz"}, "$.ref", "expected a UUID"),
        ({**GOOD, "by_id": {SECRET + "x": "v"}}, "$.by_id", "expected int keys"),
        ({**GOOD, "notes": ["ok", int(SECRET)]}, "$.notes[1]", "expected str, got int"),
        ({"card": SECRET}, "$.card", "expected"),
    ],
)
def test_decode_errors_name_the_type_and_path_never_the_value(
    payload: dict[str, Any], path: str, expected: str
) -> None:
    with pytest.raises(JobDecodeError) as info:
        JsonSerializer().decode(Payment, json.dumps(payload))
    message = str(info.value)
    assert "tests.core.payment" in message
    assert path in message, message
    assert expected in message, message
    # What a worker stores: the message and the traceback, with every chained cause.
    stored = describe_error(info.value)
    full = "".join(traceback.format_exception(info.value))
    for text in (message, stored, full):
        assert SECRET not in text, text
        assert SECRET[:6] not in text, text
