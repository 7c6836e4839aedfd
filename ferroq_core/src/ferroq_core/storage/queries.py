"""Named SQL queries, kept as data in a backend's own ``.sql`` file.

A file holds blocks that each start with a ``-- name: <name>`` line; the lines up to the next
such line are the query. Other ``--`` comment lines document the query and are dropped::

    -- name: claim
    -- Claim up to :limit due jobs of one queue.
    UPDATE ferroq_jobs SET ...

Queries are loaded once per process (:func:`load_queries`) with :mod:`importlib.resources`, so
they ship inside the backend's package. Their parameters are bound by the driver in its own
style; a query is never built with string formatting.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from importlib import resources
from typing import TYPE_CHECKING

from ferroq_core.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["Queries", "load_queries", "parse_queries"]

_NAME = re.compile(r"^--\s*name:\s*([A-Za-z_][A-Za-z0-9_]*)\s*$")


class Queries(Mapping[str, str]):
    """Query texts by name; a missing name raises ``KeyError`` naming the file."""

    def __init__(self, source: str, texts: dict[str, str]) -> None:
        self.source = source
        self._texts = dict(texts)

    def __getitem__(self, name: str) -> str:
        try:
            return self._texts[name]
        except KeyError:
            raise KeyError(f"no query named {name!r} in {self.source}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._texts)

    def __len__(self) -> int:
        return len(self._texts)

    def __repr__(self) -> str:
        return f"Queries({self.source!r}, {sorted(self._texts)!r})"


def parse_queries(text: str, source: str = "<string>") -> Queries:
    """The named queries in ``text`` (see the module doc).

    :raises ConfigError: a query without a name, a name used twice, or an empty query.
    """
    texts: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []

    def close() -> None:
        if name is None:
            return
        sql = "\n".join(body).strip()
        if not sql:
            raise ConfigError(f"query {name!r} in {source} is empty")
        texts[name] = sql

    for number, line in enumerate(text.splitlines(), 1):
        found = _NAME.match(line.strip())
        if found:
            close()
            name, body = found.group(1), []
            if name in texts:
                raise ConfigError(f"query {name!r} is defined twice in {source} (line {number})")
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("--"):
            continue
        if name is None:
            raise ConfigError(f"SQL before the first '-- name:' line in {source} (line {number})")
        body.append(line.rstrip())
    close()
    return Queries(source, texts)


@functools.cache
def load_queries(package: str, resource: str = "queries.sql") -> Queries:
    """The named queries of ``resource`` in ``package`` (read once per process)."""
    text = resources.files(package).joinpath(resource).read_text(encoding="utf-8")
    return parse_queries(text, f"{package}/{resource}")
