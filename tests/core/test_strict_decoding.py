"""Stored payloads must have the JSON types their fields were written with: no coercion."""

from __future__ import annotations

import enum
import json

import attrs
import pytest

from ferroq_core import Job, JobDecodeError
from ferroq_core.serialization import JsonSerializer


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@attrs.define
class Typed(Job):
    job_name = "tests.core.strict.Typed"

    name: str
    count: int
    ratio: float
    flag: bool
    level: Level = Level.LOW
    by_id: dict[int, str] = attrs.Factory(dict)

    def handle(self) -> None:
        pass


GOOD = {"name": "a", "count": 1, "ratio": 0.5, "flag": True, "level": 2, "by_id": {"3": "x"}}


def test_good_payload_decodes_with_int_enum_and_number_keys() -> None:
    job = JsonSerializer().decode(Typed, json.dumps(GOOD))
    assert job == Typed("a", 1, 0.5, True, Level.HIGH, {3: "x"})
    assert job.level is Level.HIGH


def test_an_int_is_accepted_for_a_float() -> None:
    job = JsonSerializer().decode(Typed, json.dumps({**GOOD, "ratio": 2}))
    assert job.ratio == 2.0
    assert isinstance(job.ratio, float)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", {"a": 1}),  # would become "{'a': 1}"
        ("name", 5),
        ("count", 1.9),  # would become 1
        ("count", "5"),
        ("count", True),
        ("ratio", "0.5"),
        ("flag", "false"),  # would become True
        ("flag", 0),
        ("by_id", {"three": "x"}),
    ],
)
def test_wrong_json_types_are_decode_errors(field: str, value: object) -> None:
    with pytest.raises(JobDecodeError, match="does not fit job type"):
        JsonSerializer().decode(Typed, json.dumps({**GOOD, field: value}))
