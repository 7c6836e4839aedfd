"""The trace context's place in a job's row: the first key of its JSON payload.

``{"ferroq:trace":{"traceparent":"00-..."},"to":"ada"}`` — no column is added: the key cannot
be an attrs field name (it is no identifier), ferroq's JSON decoder ignores keys a job type
does not declare, and the worker finds it with one ``startswith``. Payloads that are not JSON
objects (another serializer's) carry nothing and their jobs start traces of their own.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ferroq_core import EnqueueRequest

__all__ = ["KEY", "carried", "with_carrier"]

#: The payload key that holds the propagation headers.
KEY = "ferroq:trace"

_PREFIX = '{"' + KEY + '":'
_DECODER = json.JSONDecoder()


def with_carrier(request: EnqueueRequest, headers: str) -> EnqueueRequest:
    """``request`` with ``headers`` (a JSON object's text) first in its payload."""
    payload = request.payload
    if not payload.startswith("{") or payload.startswith(_PREFIX):
        return request
    rest = payload[1:]
    body = rest if rest.lstrip().startswith("}") else "," + rest
    return attrs.evolve(request, payload=_PREFIX + headers + body)


def carried(payload: str) -> dict[str, str] | None:
    """The headers a payload carries, or None (also for a malformed carrier: the job still
    runs, in a trace of its own)."""
    if not payload.startswith(_PREFIX):
        return None
    try:
        headers, _end = _DECODER.raw_decode(payload, len(_PREFIX))
    except ValueError:
        return None
    if not isinstance(headers, dict):
        return None
    return {str(k): str(v) for k, v in headers.items()}
