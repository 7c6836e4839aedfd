"""The JSON serializer: round trips of every supported type, and clear errors."""

from __future__ import annotations

import enum
import json
import math
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Optional
from uuid import UUID, uuid4

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferroq_core import Job, JobDecodeError, SerializationError
from ferroq_core.serialization import JsonSerializer

serializer = JsonSerializer()


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.frozen
class Address:
    street: str
    zip_code: Optional[str] = None  # noqa: UP045 - Optional spelled out on purpose


@attrs.frozen
class Customer:
    name: str
    addresses: list[Address]
    since: date


@attrs.define
class Everything(Job):
    job_name = "tests.everything"

    when: datetime
    day: date
    ident: UUID
    amount: Decimal
    color: Color
    level: Level
    customer: Customer
    tags: list[str]
    scores: dict[str, float]
    nested: dict[str, list[int]]
    by_id: dict[int, str]
    maybe: Optional[int] = None  # noqa: UP045 - Optional spelled out on purpose
    maybe_too: int | None = 5
    flag: bool = False

    def handle(self) -> None:
        pass


@attrs.define
class Holder(Job):
    job_name = "tests.holder"

    count: int
    value: Any = None
    ratio: float = 0.0

    def handle(self) -> None:
        pass


def _everything(**changes: object) -> Everything:
    base = Everything(
        when=datetime(
            2024, 2, 29, 23, 59, 59, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))
        ),
        day=date(1999, 12, 31),
        ident=UUID("12345678-1234-5678-1234-567812345678"),
        amount=Decimal("12345678901234567890.000000001"),
        color=Color.BLUE,
        level=Level.HIGH,
        customer=Customer(
            name="Zoë 🚀",
            addresses=[Address("Main St 1"), Address("Side 2", zip_code="0100")],
            since=date(2020, 1, 1),
        ),
        tags=["a", "b"],
        scores={"x": 1.5, "y": -0.0},
        nested={"k": [1, 2, 3], "empty": []},
        by_id={1: "one", -20: "minus twenty", 0: "zero"},
    )
    return attrs.evolve(base, **changes)


def test_round_trip_of_every_supported_type() -> None:
    job = _everything()
    payload = serializer.encode(job)
    back = serializer.decode(Everything, payload)
    assert back == job
    assert back.by_id == {1: "one", -20: "minus twenty", 0: "zero"}, "int keys survive JSON"
    assert back.when.utcoffset() == timedelta(hours=5, minutes=30), "the offset is kept"
    assert back.when == job.when
    assert isinstance(back.amount, Decimal)
    assert back.amount == Decimal("12345678901234567890.000000001"), "no float rounding"
    assert back.color is Color.BLUE
    assert back.level is Level.HIGH
    assert isinstance(back.customer.addresses[1], Address)


def test_optional_fields_round_trip_as_null() -> None:
    job = _everything(maybe=None, maybe_too=None)
    assert serializer.decode(Everything, serializer.encode(job)) == job
    job = _everything(maybe=7)
    assert serializer.decode(Everything, serializer.encode(job)).maybe == 7


def test_payload_is_compact_json_text() -> None:
    payload = serializer.encode(Holder(count=1))
    assert payload == '{"count":1,"value":null,"ratio":0.0}'
    utc = serializer.encode(_everything(when=datetime(2024, 1, 1, tzinfo=timezone.utc)))
    assert '"when":"2024-01-01T00:00:00+00:00"' in utc
    assert '"amount":"12345678901234567890.000000001"' in utc


@settings(max_examples=60, deadline=None)
@given(
    when=st.datetimes(
        min_value=datetime(1900, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [timezone.utc, timezone(timedelta(hours=-7)), timezone(timedelta(hours=13, minutes=45))]
        ),
    ),
    amount=st.decimals(allow_nan=False, allow_infinity=False, places=6),
    tags=st.lists(st.text(max_size=8), max_size=4),
    scores=st.dictionaries(st.text(max_size=5), st.floats(allow_nan=False, allow_infinity=False)),
    maybe=st.none() | st.integers(),
)
def test_round_trip_property(
    when: datetime,
    amount: Decimal,
    tags: list[str],
    scores: dict[str, float],
    maybe: int | None,
) -> None:
    job = _everything(when=when, amount=amount, tags=tags, scores=scores, maybe=maybe)
    assert serializer.decode(Everything, serializer.encode(job)) == job


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(value=_json_values)
def test_payload_text_is_the_standard_librarys(value: Any) -> None:
    # The serializer keeps json's C encoder between calls instead of going through
    # JSONEncoder.encode: the text must stay byte for byte what json.dumps writes.
    expected = json.dumps(
        {"count": 3, "value": value, "ratio": 0.5},
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
    assert serializer.encode(Holder(count=3, value=value, ratio=0.5)) == expected


def test_a_cyclic_value_is_a_serialization_error() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(SerializationError, match="field 'value'"):
        serializer.encode(Holder(count=1, value=cycle))


def test_unencodable_field_names_the_job_type_and_the_field() -> None:
    with pytest.raises(SerializationError) as info:
        serializer.encode(Holder(count=1, value={1, 2}))
    assert "tests.holder" in str(info.value)
    assert "field 'value'" in str(info.value)

    with pytest.raises(SerializationError, match="field 'value'"):
        serializer.encode(Holder(count=1, value=object()))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_refused(bad: float) -> None:
    with pytest.raises(SerializationError, match=r"field .ratio.*no NaN or infinity"):
        serializer.encode(Holder(count=1, ratio=bad))


def test_a_plain_class_is_refused() -> None:
    class NotAttrs(Job):
        def handle(self) -> None:
            pass

    with pytest.raises(SerializationError, match="not an attrs class"):
        serializer.encode(NotAttrs())


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        ("{not json", "not valid JSON"),
        ('{"count": NaN}', "not valid JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ('"text"', "must be a JSON object, got str"),
        ('{"count": "many"}', "count"),
        ("{}", "count"),
        ('{"count": 1, "ratio": "fast"}', "ratio"),
        # Shapes the compact fast path hands to the full parser.
        ('{"count": 1} x', "not valid JSON"),
        ('{"count": 1}{"count": 2}', "not valid JSON"),
        ('{"count": Infinity}', "not valid JSON"),
        ('{"count": 1', "not valid JSON"),
        ("\ufeff{}", "not valid JSON"),
    ],
)
def test_bad_payloads_raise_job_decode_error(payload: str, needle: str) -> None:
    with pytest.raises(JobDecodeError) as info:
        serializer.decode(Holder, payload)
    assert "tests.holder" in str(info.value)
    assert needle in str(info.value)


@pytest.mark.parametrize(
    "payload",
    ['{"count":2}', ' {"count": 2}', '{"count": 2}\n', '\t{ "count" : 2 } ', b'{"count":2}'],
)
def test_payloads_with_whitespace_or_as_bytes_decode(payload: str) -> None:
    # ferroq writes compact text, but a payload edited or written by hand is JSON all the same.
    assert serializer.decode(Holder, payload) == Holder(count=2)


def test_wrong_nested_types_raise_job_decode_error() -> None:
    payload = serializer.encode(_everything())
    for old, new in [
        ('"by_id":{"1":"one"', '"by_id":{"one":"one"'),
        ('"color":"blue"', '"color":"green"'),
        ('"ident":"12345678-1234-5678-1234-567812345678"', '"ident":"not-a-uuid"'),
        ('"when":"2024-02-29T23:59:59.123456+05:30"', '"when":12'),
        ('"since":"2020-01-01"', '"since":"yesterday"'),
    ]:
        assert old in payload
        with pytest.raises(JobDecodeError, match=r"tests\.everything"):
            serializer.decode(Everything, payload.replace(old, new))


def test_a_field_type_without_a_decoder_is_a_decode_error() -> None:
    """Such a job can never run: it must fail as a decode error (at once, never retried)."""

    @attrs.define
    class Opaque(Job):
        job_name = "tests.opaque"

        thing: object = None

        def handle(self) -> None:
            pass

    payload = serializer.encode(Opaque(thing=1))
    with pytest.raises(JobDecodeError, match=r"tests\.opaque.*cannot decode"):
        serializer.decode(Opaque, payload)


def test_uuid4_round_trip() -> None:
    ident = uuid4()
    job = _everything(ident=ident)
    assert serializer.decode(Everything, serializer.encode(job)).ident == ident
