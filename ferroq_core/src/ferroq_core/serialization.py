"""Payload encoding: one private cattrs converter to JSON text. Never pickle.

Round-trips tz-aware datetimes, dates, UUIDs, Decimals, enums, nested attrs classes, lists,
dicts and Optional fields. NaN and infinities are refused (they are not JSON).

A payload that does not decode is reported by job type, field path and what was expected,
never with the value itself: payloads hold personal data (a card number, an address), and the
error reaches the logs and the job's ``error`` column.
"""

from __future__ import annotations

import collections.abc
import enum
import json
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar, get_args, get_origin
from uuid import UUID

import attrs
import cattrs
import cattrs.v
from cattrs.errors import (
    BaseValidationError,
    ForbiddenExtraKeysError,
    StructureHandlerNotFoundError,
)

from ferroq_core._fastjson import compact_encoder
from ferroq_core.errors import JobDecodeError, SerializationError

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["JsonSerializer", "Serializer"]

T = TypeVar("T")


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_unstructure_hook(datetime, lambda v: v.isoformat())
    conv.register_structure_hook(datetime, _parsed(datetime.fromisoformat, "an ISO 8601 datetime"))
    conv.register_unstructure_hook(date, lambda v: v.isoformat())
    conv.register_structure_hook(date, _parsed(date.fromisoformat, "an ISO 8601 date"))
    conv.register_unstructure_hook(UUID, str)
    conv.register_structure_hook(UUID, _parsed(lambda v: UUID(str(v)), "a UUID"))
    # Decimals travel as strings so no precision is lost through a JSON float.
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Decimal, _parsed(lambda v: Decimal(str(v)), "a decimal"))
    # cattrs coerces primitives by default (a dict into a str field becomes its repr, 1.9 into
    # an int field becomes 1). A stored payload of the wrong shape is a bug to surface, not to
    # paper over, so primitives must arrive as the JSON type they were written as.
    conv.register_structure_hook(str, _strict(str))
    conv.register_structure_hook(bool, _strict(bool))
    conv.register_structure_hook(int, _strict(int))
    conv.register_structure_hook(float, _strict_float)
    # JSON object keys are always strings, so number keys come back as text and are parsed.
    conv.register_structure_hook_factory(_has_number_keys, lambda t: _number_key_dict(conv, t))
    return conv


class _Refused(ValueError):
    """A value our own hooks refuse; its message names what was expected and the kind of
    value found, never the value."""


def _parsed(parse: Callable[[Any], T], expected: str) -> Callable[[Any, Any], T]:
    """A structure hook running ``parse``, whose errors (which quote the value) become
    :class:`_Refused`."""

    def structure(value: Any, _: Any) -> T:
        try:
            return parse(value)
        except (TypeError, ValueError, ArithmeticError):
            raise _Refused(f"expected {expected}, got {_kind(value)}") from None

    return structure


def _kind(value: Any) -> str:
    """The kind of a decoded JSON value, for a message (``a str of 16 characters``)."""
    if isinstance(value, str):
        return f"a str of {len(value)} characters"
    return type(value).__name__


def _has_number_keys(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) in _MAPPINGS and len(args) == 2 and args[0] in (int, float)


def _number_key_dict(conv: cattrs.Converter, t: Any) -> Any:
    key_type, value_type = get_args(t)

    def structure(value: Any, _: Any) -> dict[Any, Any]:
        if not isinstance(value, dict):
            raise _Refused(f"expected an object, got {type(value).__name__}")
        out = {}
        for k, v in value.items():
            try:
                number = key_type(k)
            except ValueError:
                raise _Refused(f"expected {key_type.__name__} keys, got {_kind(k)}") from None
            out[number] = conv.structure(v, value_type)
        return out

    return structure


def _strict(kind: type[T]) -> Any:
    def structure(value: Any, target: Any) -> Any:
        # Class hooks also catch IntEnum/StrEnum fields (int and str subclasses): those
        # are looked up by value, as cattrs would.
        if target is not kind and isinstance(target, type) and issubclass(target, enum.Enum):
            try:
                return target(value)
            except ValueError:
                raise _Refused(f"expected a {target.__name__}, got {_kind(value)}") from None
        # bool is an int subclass: True is not a valid int field value.
        if type(value) is not kind:
            raise _Refused(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return structure


def _describe(exc: BaseException, type_: Any) -> str:
    """One decode problem in words, without the value: our own hooks' messages say what was
    expected and found; for any other error, what was expected."""
    if isinstance(exc, _Refused):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, ForbiddenExtraKeysError):  # names the keys, not their values
        return cattrs.v.format_exception(exc, type_)
    if type_ is None:
        return f"invalid value ({type(exc).__name__})"
    return f"invalid value, expected {getattr(type_, '__name__', None) or type_!r}"


def _strict_float(value: Any, _: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Refused(f"expected float, got {type(value).__name__}")
    return float(value)


_MAPPINGS = (dict, collections.abc.Mapping, collections.abc.MutableMapping)

_converter = _make_converter()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


#: One decoder for every payload: ``json.loads(..., parse_constant=...)`` builds a new
#: ``JSONDecoder`` per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
#: One encoder for every payload, for the same reason. No cycle check, so that the encoder
#: :func:`~ferroq_core._fastjson.compact_encoder` builds from it holds no state between calls;
#: a cycle still fails, with ``RecursionError``, which :meth:`JsonSerializer.encode` reports.
_ENCODER = json.JSONEncoder(
    separators=(",", ":"), allow_nan=False, ensure_ascii=False, check_circular=False
)


#: Structure hook per job class (see :meth:`JsonSerializer.decode`).
_structure_hooks: dict[type[Any], Callable[[Any, Any], Any]] = {}
#: Unstructure hook per job class (see :meth:`JsonSerializer.encode`).
_unstructure_hooks: dict[type[Any], Callable[[Any], Any]] = {}


class Serializer:
    """What a serializer plugin provides (see the ``ferroq_serializers`` hook)."""

    #: Short name, e.g. ``json``.
    name = "abstract"

    def encode(self, job: Any) -> str:
        raise NotImplementedError

    def decode(self, job_type: type[T], payload: str) -> T:
        raise NotImplementedError

    def encode_result(self, value: Any) -> str:
        """A handler's return value as text (for job types with ``store_result``)."""
        raise SerializationError(
            f"the {self.name} serializer cannot store results: implement encode_result and "
            "decode_result, or set store_result = False"
        )

    def decode_result(self, text: str) -> Any:
        """A stored result back as a value."""
        raise SerializationError(f"the {self.name} serializer cannot read stored results")


class JsonSerializer(Serializer):
    """attrs job -> dict (cattrs) -> compact JSON text.

    :param fast: encode through :mod:`ferroq_core._fastjson` (the same text and errors as
        the public :mod:`json` API, which ``fast=False`` uses).
    """

    name = "json"

    def __init__(self, *, fast: bool = True) -> None:
        self._encode = compact_encoder(_ENCODER, fast=fast)

    def encode(self, job: Any) -> str:
        cls = type(job)
        if not attrs.has(cls):
            raise SerializationError(
                f"job type {_name(cls)} is not an attrs class: decorate it with @attrs.define"
            )
        try:
            hook = _unstructure_hooks.get(cls)
            if hook is None:
                # As for decoding: the converter takes no hooks after it is built, so its
                # per-call dispatch to the class's hook can be done once per class.
                hook = _unstructure_hooks[cls] = _converter.get_unstructure_hook(cls)
            return self._encode(hook(job))
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            name = _name(cls)
            field = _culprit(job)
            where = f" field {field!r}" if field else ""
            raise SerializationError(
                f"cannot encode job {name}{where}: {exc}; use JSON-friendly types "
                "(str, int, float, bool, datetime, date, UUID, Decimal, Enum, attrs classes, "
                "lists and dicts of them) and no NaN or infinity"
            ) from exc

    def decode(self, job_type: type[T], payload: str) -> T:
        data = self._parse(job_type, payload)
        try:
            hook = _structure_hooks.get(job_type)
            if hook is None:
                # The converter is private and takes no hooks after it is built, so a class's
                # hook never changes and is looked up once per class, not per payload.
                hook = _structure_hooks[job_type] = _converter.get_structure_hook(job_type)
            return hook(data, job_type)  # type: ignore[no-any-return]
        except StructureHandlerNotFoundError as exc:
            name = _decode_name(job_type)
            # A field type the converter has no hook for: no payload can ever decode, so this
            # must fail as a decode error (at once, never retried), not as a raw cattrs error.
            raise JobDecodeError(
                f"job type {name} has a field of type {exc.type_!r} that ferroq cannot decode: "
                "use JSON-friendly field types"
            ) from exc
        # ``from None``: the causes quote the payload's values, and a stored error holds the
        # traceback with its chain.
        except BaseValidationError as exc:
            details = "; ".join(cattrs.transform_error(exc, format_exception=_describe))
            name = _decode_name(job_type)
            raise JobDecodeError(f"payload does not fit job type {name}: {details}") from None
        except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
            name = _decode_name(job_type)
            what = str(exc) if isinstance(exc, _Refused) else type(exc).__name__
            raise JobDecodeError(f"payload does not fit job type {name}: {what}") from None

    def encode_result(self, value: Any) -> str:
        """``value`` unstructured by the converter (attrs classes become objects, datetimes
        ISO text, Decimals and UUIDs strings) as compact JSON."""
        try:
            # Plain JSON values (the common small result) need no unstructuring, which costs
            # twice the encoding; anything the encoder refuses goes through the converter.
            return self._encode(value)
        except (TypeError, ValueError, OverflowError, RecursionError):
            pass
        try:
            return self._encode(_converter.unstructure(value))
        except (TypeError, ValueError, OverflowError, RecursionError) as exc:
            raise SerializationError(
                f"cannot encode the job's return value ({type(value).__name__}): {exc}; "
                "return JSON-friendly values (str, int, float, bool, None, datetime, date, UUID, "
                "Decimal, Enum, attrs classes, lists and dicts of them)"
            ) from exc

    def decode_result(self, text: str) -> Any:
        """The JSON value: attrs classes come back as dicts, datetimes as ISO strings."""
        return _DECODER.decode(text)

    @staticmethod
    def _parse(job_type: type[Any], payload: str) -> dict[str, Any]:
        """The object a payload holds, with the errors a stored payload may need explained."""
        name = _decode_name(job_type)
        try:
            if isinstance(payload, str) and not payload.startswith("\ufeff"):
                data = _DECODER.decode(payload)
            else:  # bytes, or a BOM json.loads rejects with its own message
                data = json.loads(payload, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise JobDecodeError(f"payload of {name} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise JobDecodeError(
                f"payload of {name} must be a JSON object, got {type(data).__name__}"
            )
        return data


def _decode_name(job_type: type[Any]) -> str:
    return getattr(job_type, "job_name", None) or job_type.__qualname__


def _name(cls: type) -> str:
    return getattr(cls, "job_name", None) or f"{cls.__module__}:{cls.__qualname__}"


def _culprit(job: Any) -> str | None:
    """The first field that does not encode on its own, to name it in the error."""
    for field in attrs.fields(type(job)):
        try:
            json.dumps(_converter.unstructure(getattr(job, field.name)), allow_nan=False)
        except (TypeError, ValueError, OverflowError, RecursionError):
            return str(field.name)
    return None
