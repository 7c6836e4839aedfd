"""The fast JSON encoder gives what the public ``json`` API gives, and the plain fallback works.

The serializer checks run twice: with :mod:`ferroq_core._fastjson`'s encoder and with the
fallback forced (``JsonSerializer(fast=False)``, the public API throughout).
"""

from __future__ import annotations

import json
import json.encoder
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferroq_core import Job, JobDecodeError, SerializationError
from ferroq_core._fastjson import compact_encoder
from ferroq_core.serialization import JsonSerializer

FAST = JsonSerializer()
PLAIN = JsonSerializer(fast=False)


@attrs.define
class Doc(Job):
    job_name = "tests.fastjson.doc"

    title: str
    data: Any = None
    count: int = 0


def _encoder() -> json.JSONEncoder:
    return json.JSONEncoder(
        separators=(",", ":"), allow_nan=False, ensure_ascii=False, check_circular=False
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def test_the_fast_encoder_is_in_use_on_cpython() -> None:
    encoder = _encoder()
    assert compact_encoder(encoder) != encoder.encode
    assert FAST._encode != PLAIN._encode


def test_fast_false_is_the_public_api() -> None:
    encoder = _encoder()
    assert compact_encoder(encoder, fast=False) == encoder.encode


def test_without_the_accelerator_the_encoder_is_the_public_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoder = _encoder()
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    assert compact_encoder(encoder) == encoder.encode


def test_an_accelerator_with_another_signature_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    encoder = _encoder()
    monkeypatch.setattr(json.encoder, "c_make_encoder", lambda *args: None)
    assert compact_encoder(encoder) == encoder.encode


def test_an_encoder_that_checks_cycles_keeps_the_public_path() -> None:
    encoder = json.JSONEncoder(separators=(",", ":"))
    assert compact_encoder(encoder) == encoder.encode


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_fast_encoding_equals_the_public_encoding(value: Any) -> None:
    encoder = _encoder()
    assert compact_encoder(encoder)(value) == encoder.encode(value)
    escaping = json.JSONEncoder(separators=(",", ":"), check_circular=False)
    assert compact_encoder(escaping)(value) == escaping.encode(value)


@settings(max_examples=200, deadline=None)
@given(st.text(), json_values, st.integers())
def test_serializers_agree_on_encode_and_decode(title: str, data: Any, count: int) -> None:
    job = Doc(title, data, count)
    payload = FAST.encode(job)
    assert payload == PLAIN.encode(job)
    assert FAST.decode(Doc, payload) == PLAIN.decode(Doc, payload) == job


def _error(call: Any) -> tuple[type[BaseException], str]:
    with pytest.raises((SerializationError, JobDecodeError)) as info:
        call()
    return type(info.value), str(info.value)


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        '{"title": "x"',
        '{"title": NaN}',
        '{"title": "x"} trailing',
        "[1, 2]",
        '"text"',
        '{"title": 5}',
        '{"count": 1}',
        '{"title": "x", "count": 1.5}',
        "\ufeff" + '{"title": "x"}',
        "",
        "[" * 100_000,
    ],
)
def test_decode_errors_are_the_same_with_and_without_the_fast_path(payload: str) -> None:
    assert _error(lambda: FAST.decode(Doc, payload)) == _error(lambda: PLAIN.decode(Doc, payload))


@pytest.mark.parametrize("payload", [' {"title": "x"}\n', '{"title":"x","data":[1,{"b":null}]}'])
def test_valid_payloads_decode_the_same(payload: str) -> None:
    assert FAST.decode(Doc, payload) == PLAIN.decode(Doc, payload)


@pytest.mark.parametrize("data", [float("nan"), float("inf"), {1j: 2}, object()])
def test_encode_errors_are_the_same_with_and_without_the_fast_path(data: Any) -> None:
    job = Doc("x", data)
    assert _error(lambda: FAST.encode(job)) == _error(lambda: PLAIN.encode(job))


def test_a_cycle_fails_the_same_way_on_both_paths() -> None:
    loop: list[Any] = []
    loop.append(loop)
    job = Doc("x", loop)
    fast, plain = _error(lambda: FAST.encode(job)), _error(lambda: PLAIN.encode(job))
    assert fast == plain
    assert fast[0] is SerializationError
