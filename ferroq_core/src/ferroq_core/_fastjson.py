"""Faster JSON for job payloads, through internals of CPython's :mod:`json` accelerator.

The only module of ferroq that relies on them. Each function takes a public
``JSONEncoder``/``JSONDecoder`` and returns a function that gives exactly what the public one
gives; with ``fast=False``, or where the internals are missing or behave differently, the
returned function is the public API itself. The gain is recorded in docs/performance.md.

- :func:`compact_encoder`: ``JSONEncoder.encode`` builds the accelerator's encoder object on
  every call; here it is built once. The encoder must not check for cycles (no state is then
  kept between calls, so threads can share it): a cycle raises ``RecursionError`` either way.
- :func:`object_parser`: ``JSONDecoder.decode`` wraps the decoder's scanner in two
  whitespace matches and an exception handler; a payload as ferroq writes it (an object, no
  surrounding whitespace) needs neither. Anything else, valid or not, is left to the caller's
  full parse, so its error messages are the public API's.
"""

from __future__ import annotations

import json
import json.encoder
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["compact_encoder", "object_parser"]

#: Checked against the public encoder when the fast one is built: nesting, every JSON type,
#: escapes, text beyond ASCII and a big integer.
_SAMPLE = {"a": [1, 2.5, None, True, '\u00e9\u2028"\n\\'], "b": {"c": -(2**70)}, "": []}


def compact_encoder(encoder: json.JSONEncoder, *, fast: bool = True) -> Callable[[Any], str]:
    """``encoder.encode``, built once for every call.

    :param encoder: a compact encoder (``separators=(",", ":")``, no indent, no key sorting)
        with ``check_circular=False``.
    :param fast: False returns ``encoder.encode`` itself.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    plain_encode: Callable[[Any], str] = encoder.encode
    indent: object = encoder.indent  # None unless set (typeshed omits None)
    if not fast or make is None or encoder.check_circular or indent is not None:
        return plain_encode
    if encoder.ensure_ascii:
        quote = json.encoder.encode_basestring_ascii
    else:
        quote = json.encoder.encode_basestring
    join = "".join
    try:
        chunks = make(
            None, encoder.default, quote, None, encoder.key_separator, encoder.item_separator,
            encoder.sort_keys, encoder.skipkeys, encoder.allow_nan,
        )  # fmt: skip

        def encode(data: Any) -> str:
            return join(chunks(data, 0))

        if encode(_SAMPLE) != plain_encode(_SAMPLE):
            return plain_encode
    except Exception:  # a changed signature: the public path
        return plain_encode
    return encode


def object_parser(
    decoder: json.JSONDecoder, *, fast: bool = True
) -> Callable[[Any], dict[str, Any] | None]:
    """A function returning the object a compact payload holds, or None for anything else
    (text with whitespace around it, another JSON type, invalid JSON, not a ``str``), which
    the caller then parses with the public API.

    :param decoder: the decoder whose scanner (and so whose options) to use.
    :param fast: False returns a function that always returns None.
    """
    scan: Callable[[str, int], tuple[Any, int]] | None = getattr(decoder, "scan_once", None)
    if not fast or not callable(scan):
        return _none
    found: Callable[[str, int], tuple[Any, int]] = scan

    def parse(payload: Any) -> dict[str, Any] | None:
        if type(payload) is not str or not payload.startswith("{"):
            return None
        try:
            data, end = found(payload, 0)
        except (StopIteration, ValueError, RecursionError):
            return None
        return data if end == len(payload) and type(data) is dict else None

    return parse


def _none(_payload: Any) -> None:
    return None
