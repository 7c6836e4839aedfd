"""Faster JSON encoding of job payloads, through an internal of CPython's :mod:`json`.

The only module of ferroq that relies on interpreter internals. ``JSONEncoder.encode`` builds
the C accelerator's encoder object (``json.encoder.c_make_encoder``) on every call;
:func:`compact_encoder` builds it once. The function it returns gives exactly what the public
``encoder.encode`` gives; with ``fast=False``, or where the accelerator is missing or behaves
differently, it is ``encoder.encode`` itself. The gain is recorded in docs/performance.md.
"""

from __future__ import annotations

import json
import json.encoder
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["compact_encoder"]

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
