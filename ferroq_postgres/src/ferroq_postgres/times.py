"""Stored times Python cannot hold, read for listings.

``timestamptz`` reaches year 294276 and ``infinity``; a ``datetime`` stops at year 9999, and
psycopg fails the whole fetch on a value past it. ferroq never stores one (delays are
bounded at dispatch), but another program may, and a listing must still show that row: the
listing queries read times with :class:`ShownTimestamptz`, which reads such a value as
:data:`~ferroq_core.clock.FAR_FUTURE` or :data:`~ferroq_core.clock.FAR_PAST`. The worker's
queries keep psycopg's own (C) loader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
from psycopg.types.datetime import TimestamptzLoader

from ferroq_core.clock import FAR_FUTURE, FAR_PAST

if TYPE_CHECKING:
    from datetime import datetime

    from psycopg.abc import Buffer

__all__ = ["ShownTimestamptz"]


class ShownTimestamptz(TimestamptzLoader):
    """``timestamptz`` (text format) with out-of-range values clamped."""

    def load(self, data: Buffer) -> datetime:
        try:
            return super().load(data)
        except psycopg.DataError:
            text = bytes(data)
            return FAR_PAST if text.startswith(b"-") or text.endswith(b"BC") else FAR_FUTURE
