"""Stored text that is not valid UTF-8.

SQLite stores whatever bytes another program puts in a TEXT column, and :mod:`sqlite3` fails
the whole fetch on the first value it cannot decode, so one such row would stop every claim
and listing that meets it. Reads are run again with a text factory that decodes every value
(:func:`lenient_text`); a claim that meets one finds the rows with undecodable text
(:func:`undecodable_columns`) and parks them as failed with a clear error, so they fail alone.
Nothing here runs unless a fetch failed that way.
"""

from __future__ import annotations

import contextlib
import sqlite3
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["is_undecodable", "lenient_text", "not_utf8_error", "undecodable_columns"]

#: sqlite3's message for a TEXT value it cannot decode.
_MARK = "Could not decode to UTF-8"


def is_undecodable(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from, is sqlite3's failure to decode text."""
    seen: BaseException | None = exc
    while seen is not None:
        orig = getattr(seen, "orig", None) or seen
        if isinstance(orig, sqlite3.OperationalError) and _MARK in str(orig):
            return True
        seen = seen.__cause__
    return False


def _escaped(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def _replaced(value: bytes) -> str:
    return value.decode("utf-8", "replace")


@contextlib.contextmanager
def lenient_text(db: sqlite3.Connection, *, escape: bool) -> Iterator[None]:
    """Decode every TEXT value on ``db`` while inside: bytes that are not UTF-8 become
    lone surrogates (``escape``, so they can be found) or U+FFFD (to be shown)."""
    db.text_factory = _escaped if escape else _replaced
    try:
        yield
    finally:
        db.text_factory = str


def undecodable_columns(row: Sequence[Any], names: Sequence[str]) -> list[str]:
    """The names of the values of ``row`` (read under ``lenient_text(escape=True)``) that
    were not valid UTF-8."""
    bad = []
    for name, value in zip(names, row, strict=False):
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                bad.append(name)
    return bad


def not_utf8_error(job_id: int, columns: Sequence[str]) -> str:
    """The error a job gets when its stored text is not valid UTF-8."""
    return (
        f"job {job_id}: stored {', '.join(columns)} is not valid UTF-8 (written by another "
        "program?); it cannot be decoded: inspect it with `ferroq show "
        f"{job_id}`, then `ferroq forget {job_id}`"
    )
